//! The `wait` import (waiting on several channel ends at once) under
//! ordinary and hostile arguments, from a WAT guest.

use std::time::Duration;

use bytes::Bytes;
use subinterp::abi::*;
use subinterp::{ErrorKind, Host, Interpreter, Limits, Run};

use crate::common::host;

/// Exports each make one `wait` and return its result. Ends are passed as
/// "in" (receiving) and "out" (sending); the list of ends is built at 64.
const WAITER: &str = r#"(module
  (import "subinterp_v1" "lookup" (func $lookup (param i32 i32) (result i32)))
  (import "subinterp_v1" "recv" (func $recv (param i32 i64) (result i32)))
  (import "subinterp_v1" "wait" (func $wait (param i32 i32 i64) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "in")
  (data (i32.const 8) "out")
  (func $in (result i32) (call $lookup (i32.const 0) (i32.const 2)))
  (func $out (result i32) (call $lookup (i32.const 8) (i32.const 3)))
  (func $set (param $at i32) (param $h i32) (param $len i32)
    (i32.store (local.get $at) (local.get $h))
    (i32.store offset=4 (local.get $at) (local.get $len)))
  (func $in_for (param $t i64) (result i32)
    (call $set (i32.const 64) (call $in) (i32.const 0))
    (call $wait (i32.const 64) (i32.const 1) (local.get $t)))
  (func (export "in_nowait") (result i32) (call $in_for (i64.const 0)))
  (func (export "in_1ms") (result i32) (call $in_for (i64.const 1000)))
  (func (export "in_block") (result i32) (call $in_for (i64.const -1)))
  (func $both (param $len i32) (result i32)
    (call $set (i32.const 64) (call $in) (i32.const 0))
    (call $set (i32.const 72) (call $out) (local.get $len))
    (call $wait (i32.const 64) (i32.const 2) (i64.const 0)))
  (func (export "in_or_out_4") (result i32) (call $both (i32.const 4)))
  (func (export "in_or_out_huge") (result i32) (call $both (i32.const 0x7fffffff)))
  (func (export "too_many") (result i32) (call $wait (i32.const 64) (i32.const 1025) (i64.const 0)))
  (func (export "negative_count") (result i32) (call $wait (i32.const 64) (i32.const -1) (i64.const 0)))
  (func (export "past_memory") (result i32) (call $wait (i32.const 60000) (i32.const 1024) (i64.const 0)))
  (func (export "wrapping") (result i32) (call $wait (i32.const -8) (i32.const 2) (i64.const 0)))
  (func (export "forged") (result i32)
    (call $set (i32.const 64) (call $in) (i32.const 0))
    (call $set (i32.const 72) (i32.const 12345) (i32.const 0))
    (call $wait (i32.const 64) (i32.const 2) (i64.const 0)))
  (func (export "a_view") (result i32)
    (call $set (i32.const 64) (call $recv (call $in) (i64.const -1)) (i32.const 0))
    (call $wait (i32.const 64) (i32.const 1) (i64.const 0)))
  ;; SI_WAIT_MAX copies of the same end: accepted.
  (func (export "max_ends") (result i32) (local $i i32)
    (loop $fill
      (call $set (i32.add (i32.const 64) (i32.mul (local.get $i) (i32.const 8))) (call $in) (i32.const 0))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $fill (i32.lt_u (local.get $i) (i32.const 1024))))
    (call $wait (i32.const 64) (i32.const 1024) (i64.const 0)))
  (func (export "sleep_1ms") (result i32) (call $wait (i32.const 0) (i32.const 0) (i64.const 1000)))
  (func (export "sleep_forever") (result i32) (call $wait (i32.const 0) (i32.const 0) (i64.const -1)))
)"#;

fn waiter(host: &Host, limits: Limits) -> Interpreter {
    let g = host.compile("waiter", WAITER.as_bytes()).unwrap();
    host.interpreter(&g).limits(limits).build().unwrap()
}

fn call(i: &Interpreter, f: &str, ends: &(subinterp::RecvChannel, subinterp::SendChannel)) -> i32 {
    let r = i
        .run(
            Run::export(f)
                .channel("in", ends.0.clone())
                .channel("out", ends.1.clone()),
        )
        .unwrap();
    assert!(r.completed, "{f}: {:?}", r.error);
    r.value.unwrap()
}

#[test]
fn wait_says_which_end_is_ready() {
    let host = host();
    let w = waiter(&host, Limits::new().with_timeout(Duration::from_secs(30)));
    let (in_rx, in_tx) = host.create_channel(2);
    let (out_rx, out_tx) = host.create_channel(1);
    let ends = (in_rx, out_tx.clone());
    assert_eq!(call(&w, "in_nowait", &ends), ERR_EMPTY);
    assert_eq!(call(&w, "in_1ms", &ends), ERR_TIMEOUT);
    assert_eq!(call(&w, "sleep_1ms", &ends), ERR_TIMEOUT);
    // The sending end has room; the receiving end nothing.
    assert_eq!(call(&w, "in_or_out_4", &ends), 1);
    out_tx.send(Bytes::from_static(b"full")).unwrap();
    assert_eq!(call(&w, "in_or_out_4", &ends), ERR_EMPTY);
    // A message too large for the channel fails at once: ready.
    assert_eq!(call(&w, "in_or_out_huge", &ends), 1);
    in_tx.send(Bytes::from_static(b"x")).unwrap();
    assert_eq!(call(&w, "in_or_out_4", &ends), 0);
    assert_eq!(call(&w, "max_ends", &ends), 0);
    drop(out_rx);
    // A blocked wait wakes for a message sent from another thread.
    let (in_rx2, in_tx2) = host.create_channel(1);
    let ends2 = (in_rx2, out_tx);
    let t = std::thread::spawn(move || in_tx2.send(Bytes::from_static(b"y")).unwrap());
    assert_eq!(call(&w, "in_block", &ends2), 0);
    t.join().unwrap();
}

#[test]
fn wait_refuses_hostile_arguments_with_codes() {
    let host = host();
    let w = waiter(&host, Limits::new().with_timeout(Duration::from_secs(30)));
    let (in_rx, in_tx) = host.create_channel(2);
    let (_out_rx, out_tx) = host.create_channel(1);
    let ends = (in_rx, out_tx);
    assert_eq!(MAX_WAIT_ENDS, 1024);
    assert_eq!(call(&w, "too_many", &ends), ERR_INVALID);
    assert_eq!(call(&w, "negative_count", &ends), ERR_INVALID);
    assert_eq!(call(&w, "past_memory", &ends), ERR_BOUNDS);
    assert_eq!(call(&w, "wrapping", &ends), ERR_BOUNDS);
    assert_eq!(call(&w, "forged", &ends), ERR_BAD_HANDLE);
    in_tx.send(Bytes::from_static(b"v")).unwrap();
    assert_eq!(call(&w, "a_view", &ends), ERR_WRONG_KIND);
    assert_eq!(call(&w, "max_ends", &ends), ERR_EMPTY);
}

/// A wait never outlives the run's deadline, even one that asks to block
/// forever on nothing.
#[test]
fn a_wait_on_nothing_ends_at_the_deadline() {
    let host = host();
    let w = waiter(
        &host,
        Limits::new().with_timeout(Duration::from_millis(200)),
    );
    let (in_rx, _in_tx) = host.create_channel(1);
    let (_out_rx, out_tx) = host.create_channel(1);
    for f in ["sleep_forever", "in_block"] {
        let r = w
            .run(
                Run::export(f)
                    .channel("in", in_rx.clone())
                    .channel("out", out_tx.clone()),
            )
            .unwrap();
        let kind = r.error.map(|e| e.kind);
        assert!(
            matches!(kind, Some(ErrorKind::Timeout { .. })),
            "{f}: {kind:?}"
        );
    }
}

#[test]
fn the_header_names_the_same_limit() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let header = std::fs::read_to_string(root.join("guest/include/subinterp.h")).unwrap();
    assert!(header.contains(&format!("#define SI_WAIT_MAX {MAX_WAIT_ENDS}\n")));
    let c = std::fs::read_to_string(root.join("guest/js/loop.js")).unwrap();
    assert!(c.contains(&format!("const WAIT_MAX = {MAX_WAIT_ENDS};")));
}
