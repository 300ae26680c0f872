//! Shared helpers: hosts, guests, and the WAT probe guest.

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

use std::time::Duration;

use subinterp::{Guest, Host, Limits, Run, RunResult};

/// A host with a small pool, so parallel tests do not reserve much address space.
/// `r`, after insisting the run completed (its error and stderr otherwise).
pub fn completed(r: RunResult) -> RunResult {
    assert!(
        r.completed,
        "script failed: {:?}\nstderr: {}",
        r.error,
        r.stderr_text()
    );
    r
}

pub fn host() -> Host {
    Host::builder().pool_size(32).build().expect("host")
}

const GOOD: &str = "let s = 0; for (let i = 0; i < 2e6; i++) s += i % 7; console.log(s);";

fn good_sum() -> u64 {
    (0..2_000_000u64).map(|i| i % 7).sum()
}

/// Runs `attack` while a well-behaved JS interpreter computes beside it,
/// then checks the good one's answer: the hostile suites' witness that the
/// host and its other interpreters carry on.
pub fn beside<T>(host: &Host, attack: impl FnOnce() -> T) -> T {
    let good = host
        .create_js(Limits::new().with_timeout(Duration::from_secs(120)))
        .unwrap();
    let job = good.start(Run::js(GOOD));
    let out = attack();
    let r = job.join().unwrap();
    assert!(r.completed, "the good interpreter failed: {:?}", r.error);
    assert_eq!(r.stdout_text().trim(), good_sum().to_string());
    out
}

/// The `subinterp` command line, with the JavaScript guest already in the
/// compiled-code cache its runs use (`target/cache`, from
/// `.cargo/config.toml`), so that no run's stderr carries the notice of a
/// first compile, whatever ran before.
pub fn subinterp() -> Command {
    static WARM: OnceLock<()> = OnceLock::new();
    WARM.get_or_init(|| {
        let out = Command::new(env!("CARGO_BIN_EXE_subinterp"))
            .args(["compile", "--js"])
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
    });
    Command::new(env!("CARGO_BIN_EXE_subinterp"))
}

pub fn guest_path(name: &str) -> PathBuf {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!("target/guest/{name}.wasm"));
    assert!(
        p.exists(),
        "{} is missing: run `make guest` first",
        p.display()
    );
    p
}

pub fn c_guest(host: &Host, name: &str) -> Guest {
    host.load_file(guest_path(name)).expect("load C guest")
}

pub fn probe(host: &Host) -> Guest {
    host.compile("probe", PROBE.as_bytes())
        .expect("probe compiles")
}

/// A WAT guest whose exports each exercise one ABI path and return the
/// result code. Channel ends are passed as "in" and "out".
pub const PROBE: &str = r#"(module
  (import "subinterp_v1" "lookup" (func $lookup (param i32 i32) (result i32)))
  (import "subinterp_v1" "send" (func $send (param i32 i32 i32 i64) (result i32)))
  (import "subinterp_v1" "send_handle" (func $send_handle (param i32 i32 i64) (result i32)))
  (import "subinterp_v1" "recv" (func $recv (param i32 i64) (result i32)))
  (import "subinterp_v1" "handle_kind" (func $kind (param i32) (result i32)))
  (import "subinterp_v1" "view_len" (func $view_len (param i32) (result i32)))
  (import "subinterp_v1" "view_read" (func $view_read (param i32 i32 i32 i32) (result i32)))
  (import "subinterp_v1" "view_slice" (func $view_slice (param i32 i32 i32) (result i32)))
  (import "subinterp_v1" "release" (func $release (param i32) (result i32)))
  (import "subinterp_v1" "close" (func $close (param i32) (result i32)))
  (import "subinterp_v1" "channel_create" (func $create (param i32 i32) (result i32)))
  (import "subinterp_v1" "interpreter_id" (func $id (result i64)))
  (import "subinterp_v1" "channel_len" (func $channel_len (param i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "in")
  (data (i32.const 8) "out")
  (data (i32.const 16) "\ff\fe")
  (data (i32.const 100) "ping")
  (func $in (result i32) (call $lookup (i32.const 0) (i32.const 2)))
  (func $out (result i32) (call $lookup (i32.const 8) (i32.const 3)))
  (func (export "recv_nowait") (result i32) (call $recv (call $in) (i64.const 0)))
  (func (export "recv_1ms") (result i32) (call $recv (call $in) (i64.const 1000)))
  (func (export "recv_block") (result i32) (call $recv (call $in) (i64.const -1)))
  (func (export "send_nowait") (result i32)
    (call $send (call $out) (i32.const 100) (i32.const 4) (i64.const 0)))
  (func (export "send_1ms") (result i32)
    (call $send (call $out) (i32.const 100) (i32.const 4) (i64.const 1000)))
  (func (export "send_block") (result i32)
    (call $send (call $out) (i32.const 100) (i32.const 4) (i64.const -1)))
  (func (export "send_oob") (result i32)
    (call $send (call $out) (i32.const 65530) (i32.const 100) (i64.const 0)))
  (func (export "send_wrap") (result i32)
    (call $send (call $out) (i32.const -1) (i32.const 2) (i64.const 0)))
  (func (export "send_huge") (result i32)
    (call $send (call $out) (i32.const 0) (i32.const -1) (i64.const 0)))
  (func (export "send_on_recv_end") (result i32)
    (call $send (call $in) (i32.const 100) (i32.const 4) (i64.const 0)))
  (func (export "close_out") (result i32) (call $close (call $out)))
  (func (export "len_in") (result i32) (call $channel_len (call $in)))
  (func (export "len_out") (result i32) (call $channel_len (call $out)))
  (func (export "len_forged") (result i32) (call $channel_len (i32.const 12345)))
  (func (export "close_in") (result i32) (call $close (call $in)))
  (func (export "forged") (result i32)
    (local $worst i32)
    ;; every forged value must give ERR_BAD_HANDLE (-1); return the first that does not
    (if (i32.ne (call $view_len (i32.const 12345)) (i32.const -1)) (then (return (i32.const 1))))
    (if (i32.ne (call $view_len (i32.const 0)) (i32.const -1)) (then (return (i32.const 2))))
    (if (i32.ne (call $release (i32.const -5)) (i32.const -1)) (then (return (i32.const 3))))
    (if (i32.ne (call $kind (i32.const 0x7fffffff)) (i32.const -1)) (then (return (i32.const 4))))
    (if (i32.ne (call $recv (i32.const 0x01000000) (i64.const 0)) (i32.const -1)) (then (return (i32.const 5))))
    (if (i32.ne (call $send_handle (call $out) (i32.const 77) (i64.const 0)) (i32.const -1)) (then (return (i32.const 6))))
    (if (i32.ne (call $view_read (i32.const -1) (i32.const 0) (i32.const 0) (i32.const 1)) (i32.const -1)) (then (return (i32.const 7))))
    ;; a handle one generation off the real one
    (if (i32.ne (call $kind (i32.xor (call $in) (i32.const 0x10000))) (i32.const -1)) (then (return (i32.const 8))))
    (i32.const 0))
  (func (export "stale") (result i32)
    (local $h i32)
    (local.set $h (call $recv (call $in) (i64.const -1)))
    (if (i32.lt_s (local.get $h) (i32.const 0)) (then (return (local.get $h))))
    (drop (call $release (local.get $h)))
    (call $view_len (local.get $h)))
  (func (export "release_in_then_lookup") (result i32)
    (drop (call $release (call $in)))
    (call $in))
  (func (export "read_oob") (result i32)
    (local $h i32)
    (local.set $h (call $recv (call $in) (i64.const -1)))
    (if (i32.ne (call $view_read (local.get $h) (i32.const 0) (i32.const 65534) (i32.const 100)) (i32.const -3))
      (then (return (i32.const 1))))
    (if (i32.ne (call $view_read (local.get $h) (i32.const 1000000) (i32.const 0) (i32.const 1)) (i32.const -3))
      (then (return (i32.const 2))))
    (if (i32.ne (call $view_slice (local.get $h) (i32.const 0) (i32.add (call $view_len (local.get $h)) (i32.const 1))) (i32.const -3))
      (then (return (i32.const 3))))
    (if (i32.ne (call $view_slice (local.get $h) (i32.const -1) (i32.const 2)) (i32.const -3))
      (then (return (i32.const 4))))
    (if (i32.ne (call $send_handle (local.get $h) (local.get $h) (i64.const 0)) (i32.const -2))
      (then (return (i32.const 5))))
    (i32.const 0))
  (func (export "lookup_bad_utf8") (result i32) (call $lookup (i32.const 16) (i32.const 2)))
  (func (export "lookup_missing") (result i32) (call $lookup (i32.const 0) (i32.const 1)))
  (func (export "lookup_oob") (result i32) (call $lookup (i32.const 65535) (i32.const 10)))
  (func (export "foreign") (result i32)
    ;; the message carries a handle value from another interpreter
    (local $h i32)
    (local.set $h (call $recv (call $in) (i64.const -1)))
    (drop (call $view_read (local.get $h) (i32.const 0) (i32.const 32) (i32.const 4)))
    (call $kind (i32.load (i32.const 32))))
  (func (export "my_in") (result i32) (call $in))
  (func (export "slice_and_forward") (result i32)
    ;; forwards bytes [2, 6) of a received view, without copying
    (local $h i32) (local $s i32)
    (local.set $h (call $recv (call $in) (i64.const -1)))
    (local.set $s (call $view_slice (local.get $h) (i32.const 2) (i32.const 4)))
    (drop (call $release (local.get $h)))
    (call $send_handle (call $out) (local.get $s) (i64.const -1)))
  (func (export "send_three_then_trap") (result i32)
    (drop (call $send (call $out) (i32.const 100) (i32.const 4) (i64.const -1)))
    (drop (call $send (call $out) (i32.const 100) (i32.const 4) (i64.const -1)))
    (drop (call $send (call $out) (i32.const 100) (i32.const 4) (i64.const -1)))
    unreachable)
  (func (export "own_channel") (result i32)
    ;; creates a channel, sends "ping" through it, returns the received length
    (local $v i32)
    (if (i32.ne (call $create (i32.const 1) (i32.const 40)) (i32.const 0)) (then (return (i32.const -100))))
    (drop (call $send (i32.load (i32.const 44)) (i32.const 100) (i32.const 4) (i64.const 0)))
    (local.set $v (call $recv (i32.load (i32.const 40)) (i64.const 0)))
    (if (i32.ne (call $kind (local.get $v)) (i32.const 1)) (then (return (i32.const -101))))
    (call $view_len (local.get $v)))
  (func (export "create_bad") (result i32)
    (if (i32.ne (call $create (i32.const -1) (i32.const 40)) (i32.const -10)) (then (return (i32.const 1))))
    (if (i32.ne (call $create (i32.const 1) (i32.const 65534)) (i32.const -3)) (then (return (i32.const 2))))
    (i32.const 0))
  (func (export "send_end") (result i32)
    ;; sends the "out" end itself over "in"... of another channel: over out
    (call $send_handle (call $out) (call $in) (i64.const -1)))
  (func (export "recv_end_and_use") (result i32)
    ;; receives a sending end on "in" and sends "ping" with it
    (local $e i32)
    (local.set $e (call $recv (call $in) (i64.const -1)))
    (if (i32.ne (call $kind (local.get $e)) (i32.const 3)) (then (return (i32.const -100))))
    (call $send (local.get $e) (i32.const 100) (i32.const 4) (i64.const -1)))
  (func (export "id") (result i32) (i32.wrap_i64 (call $id)))
  (func (export "spin") (loop $l (br $l)))
  (func (export "grow") (result i32)
    (loop $l (br_if $l (i32.ne (memory.grow (i32.const 16)) (i32.const -1))))
    (i32.const -1))
  (func $oob_load (export "oob_load") (result i32) (i32.load (i32.const 0x7ffffff0)))
)"#;

/// Figures of this process from /proc: (VmHWM KiB, RssAnon KiB, threads, open descriptors).
pub fn proc_figures() -> (u64, u64, u64, u64) {
    // Memory the allocator keeps after it was freed (glibc keeps per-thread
    // arenas' free pages) is nobody's: give it back first, so RssAnon counts
    // what is live.
    unsafe extern "C" {
        fn malloc_trim(pad: usize) -> i32;
    }
    // SAFETY: glibc's malloc_trim takes no pointers and may be called at any
    // time from any thread.
    unsafe {
        malloc_trim(0);
    }
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

/// Runs the ignored test at `path` (e.g. `hardening::child_stash`) in a
/// child process of this same test binary, so that its /proc figures are its
/// own; checks that it passed and printed its `figures:`, and returns its
/// output.
pub fn in_child(path: &str) -> String {
    in_child_with(path, &[])
}

/// [`in_child`], with more environment for the child.
pub fn in_child_with(path: &str, env: &[(&str, &std::path::Path)]) -> String {
    let out = Command::new(std::env::current_exe().unwrap())
        .args([path, "--exact", "--ignored", "--nocapture"])
        .env("SUBINTERP_CHILD", "1")
        .envs(env.iter().copied())
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("figures:"), "{text}");
    for line in text.lines().filter(|l| l.starts_with("figures:")) {
        println!("{path}: {line}");
    }
    text
}

/// Whether this process is such a child (see [`in_child`]).
pub fn is_child() -> bool {
    std::env::var_os("SUBINTERP_CHILD").is_some()
}
