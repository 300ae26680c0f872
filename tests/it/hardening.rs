//! Hardening: the attacks of issue 10, one class at a time. Each attack runs
//! beside a well-behaved interpreter whose result is checked, and ends in a
//! typed error while the host carries on. Where host resources are the
//! evidence (peak memory, threads, descriptors), the attack runs in a child
//! process of this same test binary and the figures come from its /proc.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use subinterp::{Error, ErrorKind, Host, Limits, Run, RunResult};

use crate::common::host;

/// Slack on top of a deadline for a noisy 2-core machine.
const MARGIN: Duration = Duration::from_millis(2000);

const GOOD: &str = "let s = 0; for (let i = 0; i < 2e6; i++) s += i % 7; console.log(s);";

fn good_sum() -> u64 {
    (0..2_000_000u64).map(|i| i % 7).sum()
}

/// Runs `attack` while a well-behaved JS interpreter computes beside it,
/// then checks the good one's answer.
pub fn beside<T>(host: &Host, attack: impl FnOnce() -> T) -> T {
    let good = host
        .create_js(Limits::new().timeout(Duration::from_secs(120)))
        .unwrap();
    let job = good.start(Run::js(GOOD));
    let out = attack();
    let r = job.join().unwrap();
    assert!(r.completed, "the good interpreter failed: {:?}", r.error);
    assert_eq!(r.stdout_text().trim(), good_sum().to_string());
    out
}

fn timeout(ms: u64) -> Limits {
    Limits::new().timeout(Duration::from_millis(ms))
}

fn failed(r: &RunResult) -> ErrorKind {
    assert!(
        !r.completed,
        "the attack completed: {} (value {:?})",
        r.stdout_text(),
        r.value
    );
    r.error.clone().unwrap().kind
}

/// A WASI module whose export `go` makes one blocking call.
fn wasi_blocker(call: &str) -> String {
    format!(
        r#"(module
  (import "wasi_snapshot_preview1" "poll_oneoff" (func $poll (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_read" (func $read (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "path_open"
    (func $open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 300) "fifo")
  (func $sleep (result i32)
    ;; one relative monotonic-clock subscription of 30 s
    (i32.store8 (i32.const 8) (i32.const 0))
    (i32.store (i32.const 16) (i32.const 1))
    (i64.store (i32.const 24) (i64.const 30000000000))
    (call $poll (i32.const 0) (i32.const 100) (i32.const 1) (i32.const 200)))
  (func $stdin (result i32)
    (i32.store (i32.const 400) (i32.const 1024))
    (i32.store (i32.const 404) (i32.const 64))
    (call $read (i32.const 0) (i32.const 400) (i32.const 1) (i32.const 420)))
  (func $fifo (result i32)
    (call $open (i32.const 3) (i32.const 0) (i32.const 300) (i32.const 4) (i32.const 0)
      (i64.const 2) (i64.const 2) (i32.const 0) (i32.const 440)))
  (func (export "go") (result i32) (call ${call}))
  (func (export "_start") (drop (call ${call}))))"#
    )
}

#[test]
fn a_blocking_sleep_ends_at_the_deadline() {
    let host = host();
    let g = host
        .compile("sleep", wasi_blocker("sleep").as_bytes())
        .unwrap();
    let (r, took) = beside(&host, || {
        let w = host.interpreter(&g).limits(timeout(300)).create().unwrap();
        let t = Instant::now();
        (w.run(Run::export("go")).unwrap(), t.elapsed())
    });
    assert_eq!(
        failed(&r),
        ErrorKind::Timeout {
            limit: Duration::from_millis(300)
        }
    );
    assert!(took < Duration::from_millis(300) + MARGIN, "{took:?}");
}

#[test]
fn close_stops_a_run_blocked_in_a_wasi_call() {
    let host = host();
    let g = host
        .compile("sleep", wasi_blocker("sleep").as_bytes())
        .unwrap();
    let w = host.create(&g).unwrap();
    let job = w.start(Run::export("go"));
    // Wait until the run has started (it then blocks in its 30 s sleep).
    while !w.is_running() && !job.is_finished() {
        std::thread::yield_now();
    }
    let t = Instant::now();
    w.close();
    let r = job.join().unwrap();
    assert_eq!(failed(&r), ErrorKind::Closed);
    assert!(t.elapsed() < MARGIN, "{:?}", t.elapsed());
}

#[test]
fn opening_a_fifo_nobody_writes_ends_at_the_deadline() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("fifo");
    let made = Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(made.success());
    let host = host();
    let g = host
        .compile("fifo", wasi_blocker("fifo").as_bytes())
        .unwrap();
    let (r, took) = beside(&host, || {
        let w = host
            .interpreter(&g)
            .limits(timeout(300))
            .dir(dir.path(), "/d", true)
            .create()
            .unwrap();
        let t = Instant::now();
        (w.run(Run::export("go")).unwrap(), t.elapsed())
    });
    assert!(matches!(failed(&r), ErrorKind::Timeout { .. }));
    assert!(took < Duration::from_millis(300) + MARGIN, "{took:?}");
    // Unblock the abandoned open so its pool thread ends.
    drop(std::fs::OpenOptions::new().write(true).open(&fifo));
}

fn subinterp() -> Command {
    Command::new(env!("CARGO_BIN_EXE_subinterp"))
}

#[test]
fn a_read_of_stdin_nobody_writes_ends_at_the_deadline() {
    let dir = tempfile::tempdir().unwrap();
    let wat = dir.path().join("stdin.wat");
    std::fs::write(&wat, wasi_blocker("stdin")).unwrap();
    let t = Instant::now();
    // stdin is a pipe the test holds open and never writes.
    let mut child = subinterp()
        .args(["run", "--timeout", "300ms"])
        .arg(&wat)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdin = child.stdin.take();
    let out = child.wait_with_output().unwrap();
    drop(stdin);
    assert_eq!(out.status.code(), Some(125), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("timeout"));
    assert!(t.elapsed() < Duration::from_millis(300) + MARGIN * 2);
}

#[test]
fn a_full_stdout_pipe_ends_at_the_deadline() {
    let dir = tempfile::tempdir().unwrap();
    let wat = dir.path().join("flood.wat");
    std::fs::write(
        &wat,
        r#"(module
  (import "wasi_snapshot_preview1" "fd_write" (func $write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 2)
  (func (export "_start")
    (i32.store (i32.const 0) (i32.const 1024))
    (i32.store (i32.const 4) (i32.const 65536))
    (loop (drop (call $write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 16))) (br 0))))"#,
    )
    .unwrap();
    let t = Instant::now();
    // stdout is a pipe the test holds open and never reads.
    let mut child = subinterp()
        .args(["run", "--timeout", "300ms", "--max-output", "1GiB"])
        .arg(&wat)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take();
    let status = child.wait().unwrap();
    drop(stdout);
    assert_eq!(status.code(), Some(125));
    assert!(t.elapsed() < Duration::from_millis(300) + MARGIN * 2);
}

#[test]
fn a_start_function_that_loops_ends_at_the_deadline() {
    let host = host();
    for wat in [
        r#"(module (func $f (loop (br 0))) (start $f))"#,
        r#"(module (memory (export "memory") 1) (func (export "_initialize") (loop (br 0))))"#,
    ] {
        let g = host.compile("start", wat.as_bytes()).unwrap();
        let e = beside(&host, || {
            let t = Instant::now();
            let e = host
                .interpreter(&g)
                .limits(timeout(300))
                .create()
                .unwrap_err();
            assert!(t.elapsed() < Duration::from_millis(300) + MARGIN);
            e
        });
        match e {
            Error::Instantiate(g) => {
                assert!(matches!(g.kind, ErrorKind::Timeout { .. }), "{wat}: {g}")
            }
            e => panic!("{wat}: {e}"),
        }
    }
}

#[test]
fn the_cli_ends_a_looping_start_function_with_the_limit_exit_code() {
    let dir = tempfile::tempdir().unwrap();
    let wat = dir.path().join("start.wat");
    std::fs::write(&wat, r#"(module (func $f (loop (br 0))) (start $f))"#).unwrap();
    let out = subinterp()
        .args(["run", "--timeout", "300ms"])
        .arg(&wat)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(125), "{out:?}");
    let mut err = std::io::stderr();
    let _ = err.write_all(&out.stderr);
}

/// Figures of this process from /proc: (VmHWM KiB, RssAnon KiB, threads, open descriptors).
pub fn proc_figures() -> (u64, u64, u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let field = |name: &str| -> u64 {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|n| n.parse().ok())
            .unwrap()
    };
    let fds = std::fs::read_dir("/proc/self/fd").unwrap().count() as u64;
    (field("VmHWM:"), field("RssAnon:"), field("Threads:"), fds)
}

/// Runs the ignored test `hardening::NAME` in a child process (this same
/// test binary), so that its /proc figures are its own; returns its output.
fn in_child(name: &str) -> String {
    let out = Command::new(std::env::current_exe().unwrap())
        .args([&format!("hardening::{name}"), "--exact", "--ignored", "--nocapture"])
        .env("SUBINTERP_CHILD", "1")
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("figures:"), "{text}");
    text
}

fn is_child() -> bool {
    std::env::var_os("SUBINTERP_CHILD").is_some()
}

#[test]
fn a_million_channels_chained_through_each_other_are_torn_down_without_recursion() {
    let host = host();
    let (mut head, _) = host.create_channel(1);
    for _ in 0..1_000_000 {
        let (rx, tx) = host.create_channel(1);
        tx.send(head).unwrap();
        head = rx;
    }
    assert_eq!(host.list_channels().len(), 1_000_001);
    drop(head);
    assert!(host.list_channels().is_empty());
}

/// A guest builds a chain of 200,000 channels, each holding the previous
/// one's receiving end, with two live handles, then lets go of the head.
const CHAIN: &str = "
let [r, s] = interpreters.createChannel(1);
for (let i = 0; i < 200000; i++) {
  const [r2, s2] = interpreters.createChannel(1);
  s2.send(r); r.release(); s.release();
  r = r2; s = s2;
}
r.release(); s.release();
console.log('done');";

#[test]
fn a_guest_built_chain_of_channels_is_torn_down_without_recursion() {
    let host = host();
    let r = beside(&host, || {
        let w = host.create_js(Limits::new()).unwrap();
        let r = w.run(Run::js(CHAIN)).unwrap();
        w.close();
        r
    });
    assert!(r.completed, "{:?}", r.error);
    assert_eq!(r.stdout_text(), "done\n");
    assert!(host.list_channels().is_empty());
}

/// A guest makes a channel that holds its own receiving end and 4 MiB.
const CYCLE: &str = "
const [r, s] = interpreters.createChannel(4);
s.send(r); s.send(new Uint8Array(4 << 20)); r.release(); s.release();";

#[test]
fn closing_an_interpreter_frees_the_cycles_its_channels_made() {
    let host = host();
    let w = host.create_js(Limits::new()).unwrap();
    let r = w.run(Run::js(CYCLE)).unwrap();
    assert!(r.completed, "{:?}", r.error);
    assert_eq!(host.list_channels().len(), 1, "the cycle keeps itself alive");
    w.close();
    assert!(host.list_channels().is_empty());
}

#[test]
fn a_host_that_creates_and_closes_interpreters_forever_stays_flat() {
    let text = in_child("child_create_close_forever");
    eprintln!("{text}");
}

#[test]
#[ignore = "run by a_host_that_creates_and_closes_interpreters_forever_stays_flat in its own process"]
fn child_create_close_forever() {
    if !is_child() {
        return;
    }
    let host = Host::builder().pool_size(8).build().unwrap();
    let round = |n: usize| {
        for _ in 0..n {
            let w = host.create_js(timeout(10_000)).unwrap();
            assert!(w.run(Run::js(CYCLE)).unwrap().completed);
            w.close();
        }
    };
    round(20);
    let (_, start, threads0, fds0) = proc_figures();
    round(300);
    let (peak, end, threads, fds) = proc_figures();
    println!(
        "figures: RssAnon {start} -> {end} KiB after 300 interpreters that each leaked a 4 MiB \
         cycle before; peak {peak} KiB; threads {threads0} -> {threads}; fds {fds0} -> {fds}"
    );
    assert!(host.list_channels().is_empty());
    assert!(end < start + start / 10 + 8192, "RssAnon {start} -> {end} KiB");
    assert!(threads <= threads0 + 2 && fds <= fds0 + 2);
}
