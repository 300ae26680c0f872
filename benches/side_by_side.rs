//! `make bench`: subinterp measured side by side with its peers in one run on
//! one machine — CPython subinterpreters, Node.js worker_threads, and OS
//! processes over pipes (the scripts in `bench/peers/`) — printed as one
//! table of medians with ratios, and written to `target/bench/results.json`.
//!
//! Run: `make bench` (or `cargo bench --bench side_by_side -- [--quick]`).
//! Every figure is a median (or the percentile named) over the repetitions
//! named in the table, read from an HdrHistogram at three significant figures;
//! the machine is shared and noisy, so compare ratios from one run, not
//! figures across runs.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use hdrhistogram::Histogram;
use serde_json::{Value, json};
use subinterp::{Guest, Host, Interpreter, Limits, Run};

#[path = "remote/nats_msg64.rs"]
mod nats_msg64;
#[path = "remote/nats_run.rs"]
mod nats_run;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");
const MIB64: usize = 64 << 20;
/// The CPython versions measured as peers (each where installed).
const PEER_PYTHONS: [&str; 3] = ["cpython3.11", "cpython3.12", "cpython3.13"];

/// Whether a bigger figure is better (rates) or a smaller one (times, memory).
#[derive(Clone, Copy, PartialEq)]
enum Better {
    Lower,
    Higher,
}

struct Metric {
    name: &'static str,
    unit: &'static str,
    better: Better,
    what: String,
    subinterp: Option<f64>,
    peers: BTreeMap<String, Option<f64>>,
}

/// The samples of one measurement (nanoseconds, or a rate per second), kept
/// in an HdrHistogram at three significant figures that grows to fit them.
struct Samples(Histogram<u64>);

impl Samples {
    fn new() -> Self {
        Self(Histogram::new(3).expect("3 significant figures is a valid precision"))
    }

    fn record(&mut self, v: u64) {
        // `record` grows the histogram (`saturating_record` would clamp to
        // its current top); past i64::MAX / 2, which no sample here nears,
        // the value is clamped.
        if self.0.record(v).is_err() {
            self.0.saturating_record(v);
        }
    }

    /// The value at quantile `q` (0.5: the median), as the middle of the
    /// histogram bucket it falls in.
    fn quantile(&self, q: f64) -> f64 {
        self.0.median_equivalent(self.0.value_at_quantile(q)) as f64
    }

    fn median(&self) -> f64 {
        self.quantile(0.5)
    }
}

impl FromIterator<u64> for Samples {
    fn from_iter<I: IntoIterator<Item = u64>>(iter: I) -> Self {
        let mut s = Self::new();
        iter.into_iter().for_each(|v| s.record(v));
        s
    }
}

/// Proportional set size of this process, in KiB (private pages count whole,
/// shared copy-on-write pages are split between their users).
fn pss_kib() -> f64 {
    let text = std::fs::read_to_string("/proc/self/smaps_rollup").unwrap_or_default();
    text.lines()
        .find(|l| l.starts_with("Pss:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|n| n.parse().ok())
        .unwrap_or(f64::NAN)
}

fn ns(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

fn compile(host: &Host, name: &str, wat: &str) -> Guest {
    host.compile(name, wat.as_bytes())
        .expect("bench guest compiles")
}

const IMPORTS: &str = r#"
  (import "subinterp_v1" "lookup" (func $lookup (param i32 i32) (result i32)))
  (import "subinterp_v1" "send" (func $send (param i32 i32 i32 i64) (result i32)))
  (import "subinterp_v1" "send_handle" (func $fwd (param i32 i32 i64) (result i32)))
  (import "subinterp_v1" "recv" (func $recv (param i32 i64) (result i32)))
  (import "subinterp_v1" "view_read" (func $read (param i32 i32 i32 i32) (result i32)))
  (import "subinterp_v1" "release" (func $release (param i32) (result i32)))
  (import "wasi_snapshot_preview1" "clock_time_get" (func $clock (param i32 i64 i32) (result i32)))
"#;

/// A raw guest with loops over the ABI; `pages` of memory, "in" at 0 and
/// "out" at 8, scratch from 64.
fn raw_guest(pages: u32, body: &str) -> String {
    format!(
        r#"(module {IMPORTS}
  (memory (export "memory") {pages})
  (data (i32.const 0) "in") (data (i32.const 8) "out") (data (i32.const 16) "times")
  (func $in (result i32) (call $lookup (i32.const 0) (i32.const 2)))
  (func $out (result i32) (call $lookup (i32.const 8) (i32.const 3)))
  (func $now (result i64) (drop (call $clock (i32.const 1) (i64.const 0) (i32.const 32))) (i64.load (i32.const 32)))
  {body})"#
    )
}

fn send_loop(n: u32) -> String {
    format!(
        r#"(func (export "go") (local $i i32) (local $o i32) (local.set $o (call $out))
      (loop $l (drop (call $send (local.get $o) (i32.const 64) (i32.const 64) (i64.const -1)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br_if $l (i32.lt_u (local.get $i) (i32.const {n})))))"#
    )
}

fn recv_loop(n: u32) -> String {
    format!(
        r#"(func (export "go") (local $i i32) (local $r i32) (local.set $r (call $in))
      (loop $l (drop (call $release (call $recv (local.get $r) (i64.const -1))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br_if $l (i32.lt_u (local.get $i) (i32.const {n})))))"#
    )
}

/// Sends a 64-byte ping, waits for the pong, records each round trip in ns
/// from offset 4096, and sends the records to "times" at the end.
fn ping(n: u32) -> String {
    format!(
        r#"(func (export "go") (local $i i32) (local $t i64) (local $o i32) (local $r i32)
      (local.set $o (call $out)) (local.set $r (call $in))
      (loop $l
        (local.set $t (call $now))
        (drop (call $send (local.get $o) (i32.const 64) (i32.const 64) (i64.const -1)))
        (drop (call $release (call $recv (local.get $r) (i64.const -1))))
        (i64.store (i32.add (i32.const 4096) (i32.shl (local.get $i) (i32.const 3)))
                   (i64.sub (call $now) (local.get $t)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br_if $l (i32.lt_u (local.get $i) (i32.const {n}))))
      (drop (call $send (call $lookup (i32.const 16) (i32.const 5)) (i32.const 4096)
                  (i32.mul (i32.const {n}) (i32.const 8)) (i64.const -1))))"#
    )
}

/// Returns every message it receives to the sender, without copying.
fn pong(n: u32) -> String {
    format!(
        r#"(func (export "go") (local $i i32) (local $v i32) (local $o i32) (local $r i32)
      (local.set $o (call $out)) (local.set $r (call $in))
      (loop $l (local.set $v (call $recv (local.get $r) (i64.const -1)))
        (drop (call $fwd (local.get $o) (local.get $v) (i64.const -1)))
        (drop (call $release (local.get $v)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br_if $l (i32.lt_u (local.get $i) (i32.const {n})))))"#
    )
}

const FORWARD_ONE: &str = r#"(func (export "go") (local $v i32)
      (local.set $v (call $recv (call $in) (i64.const -1)))
      (drop (call $fwd (call $out) (local.get $v) (i64.const -1)))
      (drop (call $release (local.get $v))))"#;

const READ_ALL: &str = r#"(func (export "go") (result i32) (local $v i32) (local $n i32)
      (local.set $v (call $recv (call $in) (i64.const -1)))
      (local.set $n (call $read (local.get $v) (i32.const 0) (i32.const 65536) (i32.const 0x4000000)))
      (drop (call $release (local.get $v)))
      (local.get $n))"#;

/// Calls the host function "echo" with 64 bytes `n` times, releasing each
/// result; returns 0, or the first error code.
const HOST_FN_GUEST: &str = r#"(module
  (import "subinterp_host_v1" "call" (func $call (param i32 i32 i32 i32 i32) (result i32)))
  (import "subinterp_v1" "release" (func $release (param i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "echo")
  (func (export "go") (param $n i32) (result i32)
    (local $h i32)
    (block $done
      (loop $l
        (br_if $done (i32.eqz (local.get $n)))
        (local.set $h (call $call (i32.const 0) (i32.const 4) (i32.const 64) (i32.const 64) (i32.const 8)))
        (if (i32.lt_s (local.get $h) (i32.const 0)) (then (return (local.get $h))))
        (drop (call $release (local.get $h)))
        (local.set $n (i32.sub (local.get $n) (i32.const 1)))
        (br $l)))
    (i32.const 0)))"#;

/// The floors' guest: `id` for a host-to-wasm call, `go(n)` for n
/// wasm-to-host calls.
const FLOOR_GUEST: &str = r#"(module
  (import "host" "f" (func $f (param i32) (result i32)))
  (func (export "id") (param i32) (result i32) (local.get 0))
  (func (export "go") (param $n i32) (result i32)
    (local $acc i32)
    (block $done
      (loop $l
        (br_if $done (i32.eqz (local.get $n)))
        (local.set $acc (call $f (local.get $acc)))
        (local.set $n (i32.sub (local.get $n) (i32.const 1)))
        (br $l)))
    (local.get $acc)))"#;

struct Bench {
    quick: bool,
    host: Host,
}

impl Bench {
    fn reps(&self, full: usize) -> usize {
        if self.quick { (full / 10).max(5) } else { full }
    }

    /// Create an interpreter and complete a first trivial run.
    fn create_run_raw(&self) -> (f64, usize) {
        let g = compile(
            &self.host,
            "tiny",
            r#"(module (memory (export "memory") 1) (func (export "go")))"#,
        );
        let n = self.reps(5000);
        let mut v = Samples::new();
        for _ in 0..n {
            let t = Instant::now();
            let i = self.host.create(&g).unwrap();
            i.run(Run::export("go")).unwrap();
            v.record(ns(t.elapsed()));
            i.close();
        }
        (v.median() / 1e3, n)
    }

    fn create_run_js(&self) -> (f64, usize) {
        let n = self.reps(500);
        let mut v = Samples::new();
        for _ in 0..n {
            let t = Instant::now();
            let i = self.host.create_js(Limits::new()).unwrap();
            let r = i.run(Run::js("1+1")).unwrap();
            v.record(ns(t.elapsed()));
            assert!(r.completed);
            i.close();
        }
        (v.median() / 1e3, n)
    }

    /// A JS function called with 64 bytes that returns 64 bytes
    /// (`Interpreter::call`), median per call.
    fn call_js(&self) -> (f64, usize) {
        let n = self.reps(5000);
        let i = self.host.create_js(Limits::new()).unwrap();
        i.run(Run::js("function echo(v) { return v.bytes(); }"))
            .unwrap()
            .check()
            .unwrap();
        let input = Bytes::from(vec![7u8; 64]);
        let mut v = Samples::new();
        for _ in 0..n {
            let t = Instant::now();
            let out = i.call("echo", input.clone()).unwrap();
            v.record(ns(t.elapsed()));
            assert_eq!(out.len(), 64);
        }
        (v.median() / 1e3, n)
    }

    /// A wasm guest calling a host function with 64 bytes (which returns 64
    /// bytes), and releasing the result: ns per call, median of runs of
    /// `calls` calls each.
    fn host_fn_call(&self) -> (f64, usize) {
        let host = Host::builder()
            .pool_size(4)
            .func("echo", |_, v| Ok(Bytes::from(v.to_vec())))
            .build()
            .unwrap();
        let g = compile(&host, "hostfn", HOST_FN_GUEST);
        let i = host.interpreter(&g).allow("echo").build().unwrap();
        let go = i.typed::<i32, i32>("go").unwrap();
        let calls = 100_000;
        let reps = self.reps(20);
        let v: Samples = (0..reps)
            .map(|_| {
                let t = Instant::now();
                assert_eq!(go.call(calls).unwrap(), 0);
                ns(t.elapsed()) * 1000 / calls as u64 // ps per call
            })
            .collect();
        (v.median() / 1e3, reps)
    }

    /// The floors under both: a wasmtime `TypedFunc` call from the host
    /// (µs) and a wasm call of a host import through `Func::wrap` (ns), on a
    /// bare engine.
    fn wasmtime_floors(&self) -> (f64, f64) {
        use wasmtime::{Engine, Linker, Module, Store};
        let engine = Engine::default();
        let module = Module::new(&engine, FLOOR_GUEST).unwrap();
        let mut linker: Linker<()> = Linker::new(&engine);
        linker.func_wrap("host", "f", |x: i32| x + 1).unwrap();
        let mut store = Store::new(&engine, ());
        let inst = linker.instantiate(&mut store, &module).unwrap();
        let id = inst.get_typed_func::<i32, i32>(&mut store, "id").unwrap();
        let mut v = Samples::new();
        for _ in 0..self.reps(5000) {
            let t = Instant::now();
            std::hint::black_box(id.call(&mut store, 1).unwrap());
            v.record(ns(t.elapsed()));
        }
        let go = inst.get_typed_func::<i32, i32>(&mut store, "go").unwrap();
        let calls = 1_000_000;
        let w: Samples = (0..self.reps(20))
            .map(|_| {
                let t = Instant::now();
                std::hint::black_box(go.call(&mut store, calls).unwrap());
                ns(t.elapsed()) * 1000 / calls as u64 // ps per call
            })
            .collect();
        (v.median() / 1e3, w.median() / 1e3)
    }

    /// Create a Python interpreter and complete a first `1+1`.
    fn create_run_py(&self) -> (f64, usize) {
        let n = self.reps(300);
        let mut v = Samples::new();
        for _ in 0..n {
            let t = Instant::now();
            let i = self.host.create_python(Limits::new()).unwrap();
            let r = i.run(Run::python("1+1")).unwrap();
            v.record(ns(t.elapsed()));
            assert!(r.completed);
            i.close();
        }
        (v.median() / 1e3, n)
    }

    /// Private memory per live Python interpreter with `n` alive: just
    /// created (`run` false), or after one trivial run.
    fn rss_py(&self, run: bool, n: usize) -> f64 {
        let before = pss_kib();
        let mut live = Vec::with_capacity(n);
        for _ in 0..n {
            let i = self.host.create_python(Limits::new()).unwrap();
            if run {
                assert!(i.run(Run::python("x = 1 + 1")).unwrap().completed);
            }
            live.push(i);
        }
        let after = pss_kib();
        for i in live {
            i.close();
        }
        (after - before) / n as f64
    }

    /// Messages per second, one way, sender and receiver on separate threads.
    fn oneway(&self, sender: (Interpreter, Run), receiver: (Interpreter, Run), n: u32) -> u64 {
        let t = Instant::now();
        let rj = receiver.0.start(receiver.1);
        let sj = sender.0.start(sender.1);
        assert!(sj.join().unwrap().completed);
        assert!(rj.join().unwrap().completed);
        let rate = (f64::from(n) / t.elapsed().as_secs_f64()) as u64;
        sender.0.close();
        receiver.0.close();
        rate
    }

    fn msg64_raw(&self) -> (f64, usize) {
        let n = if self.quick { 100_000 } else { 1_000_000 };
        let s = compile(&self.host, "send", &raw_guest(1, &send_loop(n)));
        let r = compile(&self.host, "recv", &raw_guest(1, &recv_loop(n)));
        let reps = self.reps(5);
        let v: Samples = (0..reps)
            .map(|_| {
                let (rx, tx) = self.host.create_channel(1024);
                self.oneway(
                    (
                        self.host.create(&s).unwrap(),
                        Run::export("go").channel("out", tx),
                    ),
                    (
                        self.host.create(&r).unwrap(),
                        Run::export("go").channel("in", rx),
                    ),
                    n,
                )
            })
            .collect();
        (v.median(), reps)
    }

    fn msg64_js(&self) -> (f64, usize) {
        let n = if self.quick { 20_000 } else { 200_000 };
        let send = format!(
            "const b = new Uint8Array(64), o = channels.out; for (let i = 0; i < {n}; i++) o.send(b);"
        );
        let recv =
            format!("const r = channels.inbox; for (let i = 0; i < {n}; i++) r.recv().release();");
        self.msg64_script(
            n,
            || self.host.create_js(Limits::new()),
            || (Run::js(send.as_str()), Run::js(recv.as_str())),
        )
    }

    /// As [`msg64_js`](Self::msg64_js) with the batch forms: the sender
    /// sends arrays of 256 messages with `sendMany`, the receiver takes up to
    /// 256 at a time with `recvMany` (and releases each view).
    fn msg64_js_batch(&self) -> (f64, usize) {
        let n = if self.quick { 20_000 } else { 200_000 };
        let send = format!(
            "const o = channels.out, a = Array(256).fill(new Uint8Array(64));\n\
             for (let i = 0; i < {n}; i += 256) o.sendMany(i + 256 <= {n} ? a : a.slice(0, {n} - i));"
        );
        let recv = format!(
            "const r = channels.inbox;\n\
             for (let got = 0; got < {n};) {{\n\
               const vs = r.recvMany(256);\n\
               for (let i = 0; i < vs.length; i++) vs[i].release();\n\
               got += vs.length;\n\
             }}"
        );
        self.msg64_script(
            n,
            || self.host.create_js(Limits::new()),
            || (Run::js(send.as_str()), Run::js(recv.as_str())),
        )
    }

    /// 64-byte messages one way between two Python interpreters.
    fn msg64_py(&self) -> (f64, usize) {
        let n = if self.quick { 20_000 } else { 200_000 };
        let send = format!("b = bytes(64)\nfor _ in range({n}):\n    out.send(b)");
        let recv = format!("for _ in range({n}):\n    inbox.recv().release()");
        self.msg64_script(
            n,
            || self.host.create_python(Limits::new()),
            || (Run::python(send.as_str()), Run::python(recv.as_str())),
        )
    }

    /// `n` messages one way between two script interpreters from `create`,
    /// running the sender and receiver `runs` makes (bound to `out` and
    /// `inbox`): the median rate of a few runs.
    fn msg64_script(
        &self,
        n: u32,
        create: impl Fn() -> Result<Interpreter, subinterp::Error>,
        runs: impl Fn() -> (Run, Run),
    ) -> (f64, usize) {
        let reps = self.reps(5);
        let v: Samples = (0..reps)
            .map(|_| {
                let (rx, tx) = self.host.create_channel(1024);
                let (send, recv) = runs();
                self.oneway(
                    (create().unwrap(), send.channel("out", tx)),
                    (create().unwrap(), recv.channel("inbox", rx)),
                    n,
                )
            })
            .collect();
        (v.median(), reps)
    }

    /// Round trips of 64 bytes between two raw interpreters, timed inside
    /// the pinging guest: (p50, p99, count).
    fn roundtrip(&self) -> (f64, f64, usize) {
        let n: u32 = if self.quick { 2_000 } else { 20_000 };
        let pages = (4096 + n * 8).div_ceil(65536) + 1;
        let a = compile(&self.host, "ping", &raw_guest(pages, &ping(n)));
        let b = compile(&self.host, "pong", &raw_guest(1, &pong(n)));
        let (to_b_rx, to_b_tx) = self.host.create_channel(1);
        let (to_a_rx, to_a_tx) = self.host.create_channel(1);
        let (times_rx, times_tx) = self.host.create_channel(1);
        let ia = self.host.create(&a).unwrap();
        let ib = self.host.create(&b).unwrap();
        let jb = ib.start(
            Run::export("go")
                .channel("in", to_b_rx)
                .channel("out", to_a_tx),
        );
        let ra = ia
            .run(
                Run::export("go")
                    .channel("out", to_b_tx)
                    .channel("in", to_a_rx)
                    .channel("times", times_tx),
            )
            .unwrap();
        assert!(ra.completed, "{:?}", ra.error);
        assert!(jb.join().unwrap().completed);
        let view = times_rx.recv().unwrap().into_view().unwrap();
        let samples: Samples = view
            .chunks_exact(8)
            .skip(n as usize / 10) // warm-up
            .map(|c| u64::from_le_bytes(c.try_into().unwrap()))
            .collect();
        ia.close();
        ib.close();
        (
            samples.quantile(0.5) / 1e3,
            samples.quantile(0.99) / 1e3,
            n as usize,
        )
    }

    /// Host → guest → forwarded by the guest → host, for a 64 MiB buffer.
    fn forward_64mib(&self) -> (f64, usize) {
        let g = compile(&self.host, "fwd", &raw_guest(1, FORWARD_ONE));
        let i = self.host.create(&g).unwrap();
        let data = Bytes::from(vec![7u8; MIB64]);
        let n = self.reps(200);
        let mut v = Samples::new();
        for _ in 0..n {
            let (in_rx, in_tx) = self.host.create_channel(1);
            let (out_rx, out_tx) = self.host.create_channel(1);
            let t = Instant::now();
            in_tx.send(data.clone()).unwrap();
            i.run(
                Run::export("go")
                    .channel("in", in_rx)
                    .channel("out", out_tx),
            )
            .unwrap();
            let back = out_rx.recv().unwrap().into_view().unwrap();
            v.record(ns(t.elapsed()));
            assert_eq!(back.as_ptr(), data.as_ptr(), "the same memory came back");
        }
        (v.median() / 1e3, n)
    }

    /// A guest reading all of a 64 MiB view, and a plain memcpy of 64 MiB.
    fn read_64mib(&self) -> ((f64, f64), usize) {
        let g = compile(&self.host, "read", &raw_guest(1100, READ_ALL));
        let i = self.host.create(&g).unwrap();
        let data = Bytes::from(vec![7u8; MIB64]);
        let mut dst = vec![0u8; MIB64];
        let n = self.reps(30);
        // Bytes per second, read as GB/s.
        let (mut guest, mut copy) = (Samples::new(), Samples::new());
        for _ in 0..n {
            let (rx, tx) = self.host.create_channel(1);
            tx.send(data.clone()).unwrap();
            let r = i.run(Run::export("go").channel("in", rx)).unwrap();
            assert_eq!(r.value, Some(MIB64 as i32));
            // The run's own time includes the call; the read dominates it.
            guest.record((MIB64 as f64 / r.wall.as_secs_f64()) as u64);
            let t = Instant::now();
            dst.copy_from_slice(&data);
            std::hint::black_box(&dst);
            copy.record((MIB64 as f64 / t.elapsed().as_secs_f64()) as u64);
        }
        ((guest.median() / 1e9, copy.median() / 1e9), n)
    }

    /// Private memory per idle interpreter with `n` alive after a first run.
    fn rss_idle(&self, js: bool, n: usize) -> f64 {
        let tiny = compile(
            &self.host,
            "tiny",
            r#"(module (memory (export "memory") 1) (func (export "go")))"#,
        );
        let before = pss_kib();
        let mut live = Vec::with_capacity(n);
        for _ in 0..n {
            let i = if js {
                let i = self.host.create_js(Limits::new()).unwrap();
                i.run(Run::js("1+1")).unwrap();
                i
            } else {
                let i = self.host.create(&tiny).unwrap();
                i.run(Run::export("go")).unwrap();
                i
            };
            live.push(i);
        }
        let after = pss_kib();
        for i in live {
            i.close();
        }
        (after - before) / n as f64
    }
}

/// How many JS interpreters fit (up to `target`) and the time to create them.
fn live_js(target: usize) -> (f64, f64) {
    let host = Host::builder()
        .pool_size(target as u32 + 1)
        .pool_max_memory(64 << 20)
        .build()
        .unwrap();
    let js = host.js().unwrap();
    let t = Instant::now();
    let mut live = Vec::with_capacity(target);
    for _ in 0..target {
        match host
            .interpreter(&js)
            .limits(Limits::new().with_max_memory(32 << 20))
            .build()
        {
            Ok(i) => live.push(i),
            Err(e) => {
                eprintln!("  live JS interpreters: stopped at {}: {e}", live.len());
                break;
            }
        }
    }
    let secs = t.elapsed().as_secs_f64();
    let n = live.len();
    // Prove they are live: the last one still runs code.
    assert!(live.last().unwrap().run(Run::js("1+1")).unwrap().completed);
    drop(live);
    (n as f64, secs)
}

/// Median wall time of a whole process, in ms.
fn process_ms(cmd: &[&str], reps: usize) -> Option<f64> {
    let mut v = Samples::new();
    for i in 0..=reps {
        let t = Instant::now();
        let out = Command::new(cmd[0]).args(&cmd[1..]).output().ok()?;
        if !out.status.success() || String::from_utf8_lossy(&out.stdout).trim() != "2" {
            return None;
        }
        if i > 0 {
            v.record(ns(t.elapsed())); // the first run warms caches
        }
    }
    Some(v.median() / 1e6)
}

/// Python interpreters on this machine: PATH first, then pyenv's.
fn pythons() -> BTreeMap<String, PathBuf> {
    let mut found = BTreeMap::new();
    let mut candidates: Vec<PathBuf> = ["python3.11", "python3.12", "python3.13", "python3"]
        .iter()
        .map(PathBuf::from)
        .collect();
    if let Ok(dirs) = std::fs::read_dir("/root/.pyenv/versions") {
        for d in dirs.flatten() {
            candidates.push(d.path().join("bin/python3"));
        }
    }
    for c in candidates {
        let Ok(out) = Command::new(&c)
            .args(["-c", "import sys; print('%d.%d' % sys.version_info[:2])"])
            .output()
        else {
            continue;
        };
        let v = String::from_utf8_lossy(&out.stdout).trim().to_string();
        if out.status.success() && !v.is_empty() {
            found.entry(format!("cpython{v}")).or_insert(c);
        }
    }
    found
}

/// Runs a peer script and returns its metrics, or why it could not.
fn run_peer(cmd: &[&str], quick: bool) -> Result<Value, String> {
    let mut c = Command::new(cmd[0]);
    c.args(&cmd[1..]).current_dir(ROOT);
    if quick {
        c.arg("--quick");
    }
    let out = c.output().map_err(|e| format!("{}: {e}", cmd[0]))?;
    let v: Value = serde_json::from_slice(&out.stdout).map_err(|e| {
        format!(
            "{}: no JSON ({e}); stderr: {}",
            cmd.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        )
    })?;
    if let Some(m) = v.get("missing") {
        return Err(m.to_string());
    }
    Ok(v)
}

fn fmt(v: Option<f64>) -> String {
    match v {
        None => "—".into(),
        Some(x) if x.is_nan() => "—".into(),
        Some(x) if x >= 1e6 => format!("{:.2}M", x / 1e6),
        Some(x) if x >= 1e4 => format!("{:.0}k", x / 1e3),
        Some(x) if x >= 100.0 => format!("{x:.0}"),
        Some(x) if x >= 10.0 => format!("{x:.1}"),
        Some(x) => format!("{x:.2}"),
    }
}

fn main() {
    let quick =
        std::env::args().any(|a| a == "--quick") || std::env::var_os("BENCH_QUICK").is_some();
    let started = Instant::now();
    let host = Host::builder()
        .pool_size(2100)
        .pool_max_memory(256 << 20)
        .build()
        .unwrap();
    host.js().expect("the JS guest (run `make guest`)");
    let b = Bench { quick, host };
    let mut metrics: Vec<Metric> = Vec::new();
    let mut add = |name, unit, better, what: String, v: Option<f64>| {
        eprintln!("  {name:<24} {:>10} {unit:<8} {what}", fmt(v));
        metrics.push(Metric {
            name,
            unit,
            better,
            what,
            subinterp: v,
            peers: BTreeMap::new(),
        });
    };
    eprintln!(
        "subinterp bench{}: measuring subinterp",
        if quick { " (quick)" } else { "" }
    );
    // BENCH_ONLY=a,b measures only the metrics whose names start so (and no peers).
    let only: Option<Vec<String>> = std::env::var("BENCH_ONLY")
        .ok()
        .map(|s| s.split(',').map(str::to_string).collect());
    let want = |name: &str| {
        only.as_ref()
            .is_none_or(|o| o.iter().any(|p| name.starts_with(p.as_str())))
    };
    if want("create_run_raw") {
        let (v, n) = b.create_run_raw();
        add(
            "create_run_raw_us",
            "µs",
            Better::Lower,
            format!("median of {n}"),
            Some(v),
        );
    }
    if want("create_run_js") {
        let (v, n) = b.create_run_js();
        add(
            "create_run_js_us",
            "µs",
            Better::Lower,
            format!("median of {n}, `1+1`"),
            Some(v),
        );
    }
    let mut floors = None;
    if want("call_js") {
        let (v, n) = b.call_js();
        add(
            "call_js_us",
            "µs",
            Better::Lower,
            format!("median of {n}, 64 B in and out"),
            Some(v),
        );
    }
    if want("host_fn_call") {
        let (v, n) = b.host_fn_call();
        add(
            "host_fn_call_ns",
            "ns",
            Better::Lower,
            format!("median of {n} runs of 100k calls, 64 B in and out"),
            Some(v),
        );
    }
    if want("call_js") || want("host_fn_call") {
        floors = Some(b.wasmtime_floors());
    }
    if want("msg64_oneway_raw") {
        let (v, n) = b.msg64_raw();
        add(
            "msg64_oneway_raw_per_s",
            "msg/s",
            Better::Higher,
            format!("median of {n} runs"),
            Some(v),
        );
    }
    if want("msg64_oneway_js") {
        let (v, n) = b.msg64_js();
        add(
            "msg64_oneway_js_per_s",
            "msg/s",
            Better::Higher,
            format!("median of {n} runs"),
            Some(v),
        );
    }
    if want("msg64_batch_js") {
        let (v, n) = b.msg64_js_batch();
        add(
            "msg64_batch_js_per_s",
            "msg/s",
            Better::Higher,
            format!("median of {n} runs, recvMany/sendMany"),
            Some(v),
        );
    }
    if want("roundtrip") {
        let (p50, p99, n) = b.roundtrip();
        add(
            "roundtrip_p50_us",
            "µs",
            Better::Lower,
            format!("{n} round trips"),
            Some(p50),
        );
        add(
            "roundtrip_p99_us",
            "µs",
            Better::Lower,
            format!("{n} round trips"),
            Some(p99),
        );
    }
    if want("forward_64mib") {
        let (v, n) = b.forward_64mib();
        add(
            "forward_64mib_us",
            "µs",
            Better::Lower,
            format!("median of {n}"),
            Some(v),
        );
    }
    if want("guest_read") || want("memcpy") {
        let ((g, m), n) = b.read_64mib();
        add(
            "guest_read_64mib_gbps",
            "GB/s",
            Better::Higher,
            format!("median of {n}"),
            Some(g),
        );
        add(
            "memcpy_64mib_gbps",
            "GB/s",
            Better::Higher,
            format!("median of {n}, host memcpy"),
            Some(m),
        );
    }
    let idle = if quick { 200 } else { 1000 };
    if want("rss_idle_raw") {
        let v = b.rss_idle(false, idle);
        add(
            "rss_idle_raw_kib",
            "KiB",
            Better::Lower,
            format!("Pss / {idle} live"),
            Some(v),
        );
    }
    if want("rss_idle_js") {
        let v = b.rss_idle(true, idle);
        add(
            "rss_idle_js_kib",
            "KiB",
            Better::Lower,
            format!("Pss / {idle} live"),
            Some(v),
        );
    }
    // Python, when its guest is built (`make guest`).
    let python = b.host.python().is_ok();
    if python && want("create_run_py") {
        let (v, n) = b.create_run_py();
        add(
            "create_run_py_us",
            "µs",
            Better::Lower,
            format!("median of {n}, `1+1`"),
            Some(v),
        );
    }
    if python && want("msg64_oneway_py") {
        let (v, n) = b.msg64_py();
        add(
            "msg64_oneway_py_per_s",
            "msg/s",
            Better::Higher,
            format!("median of {n} runs"),
            Some(v),
        );
    }
    let idle_py = if quick { 50 } else { 200 };
    for (name, run) in [("rss_idle_py_kib", false), ("rss_after_run_py_kib", true)] {
        if python && want(name) {
            let v = b.rss_py(run, idle_py);
            let what = if run { "after `x = 1 + 1`" } else { "created" };
            add(
                name,
                "KiB",
                Better::Lower,
                format!("Pss / {idle_py} live, {what}"),
                Some(v),
            );
        }
    }
    drop(b);
    if want("live_js") || want("create_10k") {
        let target = if quick { 1000 } else { 10_000 };
        let (live, secs) = live_js(target);
        add(
            "live_js_max",
            "count",
            Better::Higher,
            format!("tried {target}"),
            Some(live),
        );
        add(
            "create_10k_js_s",
            "s",
            Better::Lower,
            format!("time to create {live}"),
            Some(secs),
        );
    }
    let reps = if quick { 5 } else { 20 };
    if want("cli") {
        let cli = Path::new(ROOT).join("target/release/subinterp");
        let cli = cli.to_string_lossy().into_owned();
        let v = process_ms(&[&cli, "run", "-e", "console.log(1+1)"], reps);
        add(
            "cli_js_hello_ms",
            "ms",
            Better::Lower,
            format!("median of {reps} processes"),
            v,
        );
        if python {
            let v = process_ms(&[&cli, "run", "--python", "-e", "print(1+1)"], reps);
            add(
                "cli_py_hello_ms",
                "ms",
                Better::Lower,
                format!("median of {reps} processes"),
                v,
            );
        }
    }
    let mut nats_floor = None;
    if want("nats_run") {
        match nats_run::measure(quick) {
            Ok(f) => {
                let what = |q: &str, floor: f64| {
                    format!(
                        "{q} of {} round trips; plain NATS request/reply of the same sizes: {floor:.3} ms",
                        f.n
                    )
                };
                add(
                    "nats_run_hello_ms",
                    "ms",
                    Better::Lower,
                    what("p50", f.floor.0),
                    Some(f.run.0),
                );
                add(
                    "nats_run_hello_p99_ms",
                    "ms",
                    Better::Lower,
                    what("p99", f.floor.1),
                    Some(f.run.1),
                );
                nats_floor = Some(f.floor);
            }
            Err(why) => eprintln!("  nats_run_hello_ms: not measured: {why}"),
        }
    }
    let mut msg64_floor = None;
    if want("nats_msg64") {
        match nats_msg64::measure(quick) {
            Ok(f) => {
                add(
                    "nats_msg64_per_s",
                    "msg/s",
                    Better::Higher,
                    format!(
                        "median of {} runs of {}, JS to JS; JetStream by async-nats alone: {}; \
                         plain NATS pub/sub of 64 B ({} a run): {}",
                        f.reps,
                        f.n.0,
                        fmt(f.jetstream),
                        f.n.1,
                        fmt(f.floor)
                    ),
                    Some(f.rate),
                );
                msg64_floor = f.floor;
            }
            Err(why) => eprintln!("  nats_msg64_per_s: not measured: {why}"),
        }
    }
    if only.is_some() {
        return;
    }

    // The peers, each in its own process.
    eprintln!("subinterp bench: measuring the peers");
    let mut notes: BTreeMap<String, String> = BTreeMap::new();
    let mut peer_results: Vec<(String, Result<Value, String>)> = Vec::new();
    let pys = pythons();
    for want in PEER_PYTHONS {
        match pys.get(want) {
            Some(py) => {
                let py = py.to_string_lossy().into_owned();
                peer_results.push((
                    want.into(),
                    run_peer(&[&py, "bench/peers/cpython.py"], quick),
                ));
            }
            None => peer_results.push((want.into(), Err("not installed on this machine".into()))),
        }
    }
    peer_results.push((
        "node".into(),
        run_peer(&["node", "bench/peers/node.js"], quick),
    ));
    peer_results.push((
        "process".into(),
        run_peer(&["python3", "bench/peers/process.py"], quick),
    ));
    for (peer, r) in peer_results {
        match r {
            Ok(v) => {
                notes.insert(
                    peer.clone(),
                    format!(
                        "{} {}",
                        v["runtime"].as_str().unwrap_or(""),
                        v["notes"].as_str().unwrap_or("")
                    ),
                );
                for m in metrics.iter_mut() {
                    m.peers
                        .insert(peer.clone(), v.get(m.name).and_then(Value::as_f64));
                }
            }
            Err(why) => {
                eprintln!("  {peer}: missing ({why})");
                notes.insert(peer.clone(), format!("missing: {why}"));
                for m in metrics.iter_mut() {
                    m.peers.insert(peer.clone(), None);
                }
            }
        }
    }
    // The floors under the call rows: bare wasmtime, in this process.
    if let Some((call_us, import_ns)) = floors {
        notes.insert(
            "wasmtime".into(),
            "bare wasmtime 48 (the floor, not a peer): call_js_us is a TypedFunc call of an \
             (i32) -> i32 identity export, host_fn_call_ns a wasm call of a Func::wrap import"
                .into(),
        );
        for m in metrics.iter_mut() {
            let v = match m.name {
                "call_js_us" => Some(call_us),
                "host_fn_call_ns" => Some(import_ns),
                _ => None,
            };
            m.peers.insert("wasmtime".into(), v);
        }
    }
    // The floor under the NATS rows: plain NATS through the same server.
    if nats_floor.is_some() || msg64_floor.is_some() {
        notes.insert(
            "nats".into(),
            "plain NATS through the same nats-server (the floor, not a peer): request/reply \
             under nats_run_*, core publish/subscribe under nats_msg64_per_s"
                .into(),
        );
        for m in metrics.iter_mut() {
            let v = match m.name {
                "nats_run_hello_ms" => nats_floor.map(|f| f.0),
                "nats_run_hello_p99_ms" => nats_floor.map(|f| f.1),
                "nats_msg64_per_s" => msg64_floor,
                _ => None,
            };
            m.peers.insert("nats".into(), v);
        }
    }
    // Whole-process start-up of the peers' runtimes, for cli_js_hello_ms.
    let node = process_ms(&["node", "-e", "console.log(1+1)"], reps);
    for m in metrics
        .iter_mut()
        .filter(|m| m.name == "cli_js_hello_ms" || m.name == "cli_py_hello_ms")
    {
        if m.name == "cli_js_hello_ms" {
            m.peers.insert("node".into(), node);
        }
        for (name, py) in pys
            .iter()
            .filter(|(n, _)| PEER_PYTHONS.contains(&n.as_str()))
        {
            let py = py.to_string_lossy();
            m.peers.insert(
                name.clone(),
                process_ms(&[&py, "-S", "-c", "print(1+1)"], reps),
            );
        }
    }

    print_table(&metrics, &notes);
    let commit = Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .current_dir(ROOT)
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    let date = humantime::format_rfc3339_seconds(SystemTime::now()).to_string();
    let results = json!({
        "commit": commit,
        "date": date,
        "quick": quick,
        "machine": machine(),
        "peers": notes,
        "metrics": metrics.iter().map(|m| json!({
            "name": m.name,
            "unit": m.unit,
            "subinterp": m.subinterp,
            "peers": m.peers,
            "what": m.what,
        })).collect::<Vec<_>>(),
    });
    let dir = Path::new(ROOT).join("target/bench");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("results.json"),
        serde_json::to_string_pretty(&results).unwrap(),
    )
    .unwrap();
    println!(
        "\nwrote target/bench/results.json (commit {commit}, {date}) in {:.0} s",
        started.elapsed().as_secs_f64()
    );
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_default();
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    format!("{cpu}, {cores} cores")
}

fn print_table(metrics: &[Metric], notes: &BTreeMap<String, String>) {
    let peers: Vec<&String> = metrics
        .first()
        .map(|m| m.peers.keys().collect())
        .unwrap_or_default();
    print!("\n{:<24} {:<6} {:>10}", "metric", "unit", "subinterp");
    for p in &peers {
        print!(" {:>20}", p);
    }
    println!("   repetitions");
    for m in metrics {
        print!("{:<24} {:<6} {:>10}", m.name, m.unit, fmt(m.subinterp));
        for p in &peers {
            let v = m.peers.get(*p).copied().flatten();
            let cell = match (v, m.subinterp) {
                (Some(peer), Some(ours)) if peer > 0.0 && ours > 0.0 => {
                    // "×N": how many times better subinterp is (below 1: worse).
                    let r = if m.better == Better::Lower {
                        peer / ours
                    } else {
                        ours / peer
                    };
                    format!("{} (×{})", fmt(Some(peer)), fmt(Some(r)))
                }
                (v, _) => fmt(v),
            };
            print!(" {cell:>20}");
        }
        println!("   {}", m.what);
    }
    println!(
        "\n(×N: subinterp is N times better than that peer; — : not measured or not available)"
    );
    for (p, n) in notes {
        println!("  {p}: {n}");
    }
}
