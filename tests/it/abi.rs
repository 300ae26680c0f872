//! The guest ABI under hostile input: every nowait/timeout path, forged,
//! stale and foreign handles, out-of-bounds pointers and lengths. Each ends
//! in an error code while the host carries on.

use std::time::{Duration, Instant};

use subinterp::abi::*;
use subinterp::{Host, Interpreter, Run};

use crate::common::{host, probe};

fn call(i: &Interpreter, run: Run) -> i32 {
    let r = i.run(run).unwrap();
    assert!(r.completed, "{:?}", r.error);
    r.value.unwrap()
}

fn with_ends(
    host: &Host,
    f: &str,
    cap: usize,
) -> (Run, subinterp::SendChannel, subinterp::RecvChannel) {
    let (in_rx, in_tx) = host.create_channel(cap);
    let (out_rx, out_tx) = host.create_channel(cap);
    (
        Run::export(f).channel("in", in_rx).channel("out", out_tx),
        in_tx,
        out_rx,
    )
}

#[test]
fn nowait_and_timeout_codes() {
    let host = host();
    let i = host.create(&probe(&host)).unwrap();
    let (run, in_tx, out_rx) = with_ends(&host, "recv_nowait", 1);
    assert_eq!(call(&i, run), ERR_EMPTY);
    let t = Instant::now();
    assert_eq!(call(&i, Run::export("recv_1ms")), ERR_TIMEOUT);
    assert!(t.elapsed() >= Duration::from_millis(1));
    assert_eq!(call(&i, Run::export("send_nowait")), 0);
    assert_eq!(call(&i, Run::export("send_nowait")), ERR_FULL);
    assert_eq!(call(&i, Run::export("send_1ms")), ERR_TIMEOUT);
    assert_eq!(&*out_rx.recv().unwrap().into_view().unwrap(), b"ping");
    in_tx.send("x").unwrap();
    let h = call(&i, Run::export("recv_nowait"));
    assert!(h > 0);
    // Closing: the sender's close shows as ERR_CLOSED once drained.
    assert_eq!(call(&i, Run::export("close_out")), 0);
    assert_eq!(call(&i, Run::export("send_nowait")), ERR_CLOSED);
    assert_eq!(call(&i, Run::export("close_in")), ERR_WRONG_KIND);
    in_tx.close();
    assert_eq!(call(&i, Run::export("recv_block")), ERR_CLOSED);
}

#[test]
fn channel_len_counts_queued_messages_from_either_end() {
    let host = host();
    let i = host.create(&probe(&host)).unwrap();
    let (run, in_tx, out_rx) = with_ends(&host, "len_in", 4);
    assert_eq!(call(&i, run), 0);
    in_tx.send("a").unwrap();
    in_tx.send("b").unwrap();
    assert_eq!(call(&i, Run::export("len_in")), 2);
    assert_eq!(call(&i, Run::export("send_nowait")), 0);
    assert_eq!(call(&i, Run::export("len_out")), 1);
    out_rx.recv().unwrap();
    assert_eq!(call(&i, Run::export("len_out")), 0);
    assert_eq!(call(&i, Run::export("len_forged")), ERR_BAD_HANDLE);
}

#[test]
fn rendezvous_from_a_guest() {
    let host = host();
    let i = host.create(&probe(&host)).unwrap();
    let (run, _in_tx, out_rx) = with_ends(&host, "send_nowait", 0);
    assert_eq!(call(&i, run), ERR_FULL, "no receiver waiting");
    let receiver = std::thread::spawn(move || out_rx.recv().unwrap().into_view().unwrap());
    assert_eq!(call(&i, Run::export("send_block")), 0);
    assert_eq!(&*receiver.join().unwrap(), b"ping");
}

#[test]
fn forged_stale_and_wrong_kind_handles() {
    let host = host();
    let i = host.create(&probe(&host)).unwrap();
    let (run, in_tx, _out_rx) = with_ends(&host, "forged", 1);
    assert_eq!(call(&i, run), 0);
    in_tx.send("abc").unwrap();
    assert_eq!(call(&i, Run::export("stale")), ERR_BAD_HANDLE);
    assert_eq!(call(&i, Run::export("send_on_recv_end")), ERR_WRONG_KIND);
    assert_eq!(
        call(&i, Run::export("release_in_then_lookup")),
        ERR_RELEASED
    );
}

#[test]
fn foreign_handles_are_refused() {
    let host = host();
    let guest = probe(&host);
    let a = host.create(&guest).unwrap();
    let b = host.create(&guest).unwrap();
    let (a_rx, _a_tx) = host.create_channel(1);
    let h = call(&a, Run::export("my_in").channel("in", a_rx));
    assert!(h > 0);
    let (b_rx, b_tx) = host.create_channel(1);
    b_tx.send(h.to_le_bytes().to_vec()).unwrap();
    assert_eq!(
        call(&b, Run::export("foreign").channel("in", b_rx)),
        ERR_BAD_HANDLE
    );
}

#[test]
fn out_of_bounds_pointers_lengths_and_names() {
    let host = host();
    let i = host.create(&probe(&host)).unwrap();
    let (run, in_tx, _out_rx) = with_ends(&host, "send_oob", 1);
    assert_eq!(call(&i, run), ERR_BOUNDS);
    assert_eq!(call(&i, Run::export("send_wrap")), ERR_BOUNDS);
    assert_eq!(call(&i, Run::export("send_huge")), ERR_TOO_LARGE);
    in_tx.send(vec![9u8; 100]).unwrap();
    assert_eq!(call(&i, Run::export("read_oob")), 0);
    assert_eq!(call(&i, Run::export("lookup_bad_utf8")), ERR_INVALID);
    assert_eq!(call(&i, Run::export("lookup_missing")), ERR_NOT_FOUND);
    assert_eq!(call(&i, Run::export("lookup_oob")), ERR_BOUNDS);
    assert_eq!(call(&i, Run::export("create_bad")), 0);
}

#[test]
fn slices_forward_without_copying() {
    let host = host();
    let i = host.create(&probe(&host)).unwrap();
    let (run, in_tx, out_rx) = with_ends(&host, "slice_and_forward", 1);
    let data = bytes::Bytes::from_static(b"0123456789");
    in_tx.send(data.clone()).unwrap();
    assert_eq!(call(&i, run), 0);
    let v = out_rx.recv().unwrap().into_view().unwrap();
    assert_eq!(&*v, b"2345");
    assert_eq!(v.as_ptr(), data[2..].as_ptr());
    assert_eq!(
        host.counters().bytes_copied_in + host.counters().bytes_copied_out,
        0
    );
}

#[test]
fn guests_create_channels_and_pass_ends() {
    let host = host();
    let guest = probe(&host);
    let i = host.create(&guest).unwrap();
    assert_eq!(call(&i, Run::export("own_channel")), 4);
    // The host sends a sending end to a guest, which sends through it.
    let (target_rx, target_tx) = host.create_channel(1);
    let (in_rx, in_tx) = host.create_channel(1);
    in_tx.send(target_tx).unwrap();
    assert_eq!(
        call(&i, Run::export("recv_end_and_use").channel("in", in_rx)),
        0
    );
    assert_eq!(&*target_rx.recv().unwrap().into_view().unwrap(), b"ping");
    // A guest sends one of its ends out.
    let (out_rx, out_tx) = host.create_channel(1);
    let (x_rx, x_tx) = host.create_channel(1);
    assert_eq!(
        call(
            &i,
            Run::export("send_end")
                .channel("in", x_rx)
                .channel("out", out_tx)
        ),
        0
    );
    let subinterp::Message::Recv(got) = out_rx.recv().unwrap() else {
        panic!("expected a receiving end")
    };
    x_tx.send("via guest").unwrap();
    assert_eq!(&*got.recv().unwrap().into_view().unwrap(), b"via guest");
}

#[test]
fn handle_cap_refuses_without_losing_messages() {
    let host = host();
    let guest = probe(&host);
    let i = host
        .interpreter(&guest)
        .limits(subinterp::Limits::new().with_max_handles(3))
        .build()
        .unwrap();
    let (in_rx, in_tx) = host.create_channel(4);
    let (_out_rx, out_tx) = host.create_channel(4);
    for m in ["a", "b"] {
        in_tx.send(m).unwrap();
    }
    let run = Run::export("recv_nowait")
        .channel("in", in_rx.clone())
        .channel("out", out_tx);
    // "in" and "out" take two handles; one view fits, the next is refused.
    assert!(call(&i, run) > 0);
    assert_eq!(call(&i, Run::export("recv_nowait")), ERR_LIMIT);
    // The refused message was not taken.
    assert_eq!(&*in_rx.recv_nowait().unwrap().into_view().unwrap(), b"b");
}

/// `NAME = value` pairs with integer values found by `pattern` in `text`,
/// names stripped of `prefix`.
fn constants(text: &str, prefix: &str) -> std::collections::BTreeMap<String, i32> {
    let mut out = std::collections::BTreeMap::new();
    let words: Vec<&str> = text
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '-'))
        .filter(|w| !w.is_empty())
        .collect();
    for pair in words.windows(2) {
        if let (Some(name), Ok(v)) = (pair[0].strip_prefix(prefix), pair[1].parse::<i32>()) {
            out.insert(name.to_string(), v);
        }
    }
    out
}

fn rust_table(t: &[(&str, i32)]) -> std::collections::BTreeMap<String, i32> {
    t.iter().map(|&(n, v)| (n.to_string(), v)).collect()
}

#[test]
fn the_c_header_and_the_js_prelude_agree_with_the_rust_abi_numbers() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let header = std::fs::read_to_string(root.join("guest/include/subinterp.h")).unwrap();
    assert_eq!(
        constants(&header, "SI_ERR_"),
        rust_table(subinterp::abi::ERRORS)
    );
    assert_eq!(
        constants(&header, "SI_KIND_"),
        rust_table(subinterp::abi::KINDS)
    );
    // The prelude names the codes without a prefix, in one `const` list.
    let prelude = std::fs::read_to_string(root.join("guest/js/prelude.js")).unwrap();
    let start = prelude.find("const BAD_HANDLE").unwrap();
    let list = &prelude[start..start + prelude[start..].find(';').unwrap()];
    let errors = constants(&format!(" {list}"), "");
    assert_eq!(errors, rust_table(subinterp::abi::ERRORS));
    let kinds = constants(&prelude, "KIND_");
    for (name, v) in subinterp::abi::KINDS.iter().filter(|(n, _)| *n != "JOB") {
        assert_eq!(kinds.get(*name), Some(v), "KIND_{name}");
    }
}

/// A guest whose `go` calls `recv_kind` on "in" (nowait) and returns, on
/// success, `10 * kind + handle_kind(handle)` (the kind in the upper 32
/// bits must be the kind of the handle in the lower ones), else the code.
/// `wrong` receives on the sending end "out"; `forged` on a made-up handle.
const RECV_KIND: &str = r#"(module
  (import "subinterp_v1" "lookup" (func $lookup (param i32 i32) (result i32)))
  (import "subinterp_v1" "recv_kind" (func $recv_kind (param i32 i64) (result i64)))
  (import "subinterp_v1" "handle_kind" (func $kind (param i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "in") (data (i32.const 8) "out")
  (func $check (param $r i64) (result i32)
    (if (i64.lt_s (local.get $r) (i64.const 0))
      (then (return (i32.wrap_i64 (local.get $r)))))
    (i32.add
      (i32.mul (i32.wrap_i64 (i64.shr_u (local.get $r) (i64.const 32))) (i32.const 10))
      (call $kind (i32.wrap_i64 (local.get $r)))))
  (func (export "go") (result i32)
    (call $check (call $recv_kind (call $lookup (i32.const 0) (i32.const 2)) (i64.const 0))))
  (func (export "wrong") (result i32)
    (call $check (call $recv_kind (call $lookup (i32.const 8) (i32.const 3)) (i64.const 0))))
  (func (export "forged") (result i32)
    (call $check (call $recv_kind (i32.const 12345) (i64.const 0)))))"#;

#[test]
fn recv_kind_gives_the_handle_and_its_kind_in_one_call() {
    let host = host();
    let g = host.compile("recv_kind", RECV_KIND.as_bytes()).unwrap();
    let i = host.create(&g).unwrap();
    let (run, in_tx, _out_rx) = with_ends(&host, "go", 4);
    assert_eq!(call(&i, run), ERR_EMPTY);
    in_tx.send("a view").unwrap();
    let (end_rx, end_tx) = host.create_channel(1);
    in_tx.send(end_rx).unwrap();
    in_tx.send(end_tx).unwrap();
    assert_eq!(call(&i, Run::export("go")), 10 * KIND_VIEW + KIND_VIEW);
    assert_eq!(call(&i, Run::export("go")), 10 * KIND_RECV + KIND_RECV);
    assert_eq!(call(&i, Run::export("go")), 10 * KIND_SEND + KIND_SEND);
    assert_eq!(call(&i, Run::export("go")), ERR_EMPTY);
    assert_eq!(call(&i, Run::export("wrong")), ERR_WRONG_KIND);
    assert_eq!(call(&i, Run::export("forged")), ERR_BAD_HANDLE);
    in_tx.close();
    assert_eq!(call(&i, Run::export("go")), ERR_CLOSED);
}
