//! The hostile-guest suite: every attack ends in the right typed error within
//! its limit (plus a margin for a noisy machine), while a well-behaved
//! interpreter beside it finishes its work correctly.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use bytes::Bytes;
use subinterp::Trap;
use subinterp::{Error, ErrorKind, Host, Limits, Run, RunResult};

use crate::common::{beside, host, in_child, is_child, proc_figures};

/// Slack on top of a deadline: epoch ticks (5 ms), the JS stop grace
/// (100 ms), and a shared 2-core machine.
const MARGIN: Duration = Duration::from_millis(1500);

/// Runs hostile JS under `limits` beside a good interpreter; returns the
/// result and how long it took.
fn attack_js(host: &Host, limits: Limits, src: &str) -> (RunResult, Duration) {
    beside(host, || {
        let w = host.create_js(limits).unwrap();
        let t = Instant::now();
        let r = w.run(Run::js(src)).unwrap();
        (r, t.elapsed())
    })
}

fn attack_wat(host: &Host, limits: Limits, wat: &str) -> (RunResult, Duration) {
    let g = host.compile("hostile", wat.as_bytes()).unwrap();
    beside(host, || {
        let w = host.interpreter(&g).limits(limits).build().unwrap();
        let t = Instant::now();
        let r = w.run(Run::export("go")).unwrap();
        (r, t.elapsed())
    })
}

fn kind(r: &RunResult) -> ErrorKind {
    assert!(!r.completed, "the attack completed: {}", r.stdout_text());
    r.error.clone().unwrap().kind
}

fn timeout(ms: u64) -> Limits {
    Limits::new().with_timeout(Duration::from_millis(ms))
}

#[test]
fn infinite_loops_hit_the_deadline() {
    let host = host();
    for src in [
        "for (;;) {}",
        "while (true) { try { for (;;) {} } catch (e) {} }",
        "(async () => { for (;;) await null; })()",
        "function f() { Promise.resolve().then(f) } f()",
    ] {
        let (r, took) = attack_js(&host, timeout(300), src);
        assert_eq!(
            kind(&r),
            ErrorKind::Timeout {
                limit: Duration::from_millis(300)
            },
            "{src}"
        );
        assert!(
            took < Duration::from_millis(300) + MARGIN,
            "{src}: {took:?}"
        );
    }
    let (r, took) = attack_wat(
        &host,
        timeout(300),
        r#"(module (func (export "go") (loop (br 0))))"#,
    );
    assert!(matches!(kind(&r), ErrorKind::Timeout { .. }));
    assert!(took < Duration::from_millis(300) + MARGIN);
}

#[test]
fn a_loop_around_a_blocked_recv_hits_the_deadline() {
    let host = host();
    let (rx, _tx) = host.create_channel(1);
    for src in [
        "channels.r.recv()",
        "for (;;) { try { channels.r.recv({ timeout: 1 }) } catch (e) {} }",
        "for (;;) { try { channels.r.recv() } catch (e) {} }",
    ] {
        let r = beside(&host, || {
            let w = host.create_js(timeout(300)).unwrap();
            let t = Instant::now();
            let r = w.run(Run::js(src).channel("r", rx.clone())).unwrap();
            assert!(t.elapsed() < Duration::from_millis(300) + MARGIN, "{src}");
            r
        });
        assert!(matches!(kind(&r), ErrorKind::Timeout { .. }), "{src}");
    }
}

#[test]
fn memory_bombs_hit_the_memory_limit() {
    let host = host();
    let limits = timeout(20_000).with_max_memory(64 << 20);
    for src in [
        "const a = []; for (;;) a.push({ n: a.length, s: 'x' + a.length });",
        "let s = 'xy'; for (;;) s += s;",
        "let s = 'xy'; for (;;) s = s.repeat(2);",
        "const k = []; for (;;) k.push(new ArrayBuffer(1 << 20));",
        "const m = new Map(); for (let i = 0; ; i++) m.set(i, [i]);",
    ] {
        let (r, _) = attack_js(&host, limits, src);
        let e = r.error.clone().unwrap();
        // Out of memory, or (for strings, which QuickJS builds as ropes
        // without copying) past the longest string it allows.
        assert!(
            matches!(e.kind, ErrorKind::MemoryLimit { limit } if limit == 64 << 20)
                || e.kind.type_name() == "RangeError"
                || (e.kind.type_name() == "InternalError" && e.message == "string too long"),
            "{src}: {e:?}"
        );
    }
    // The JS heap limit comes first, so a script can catch it and go on.
    let (r, _) = attack_js(
        &host,
        limits,
        "let caught = false; try { const a = []; for (;;) a.push(new Array(1e5).fill(1)); } \
         catch (e) { caught = e instanceof InternalError || e instanceof RangeError; } \
         console.log(caught);",
    );
    assert!(r.completed, "{:?}", r.error);
    assert_eq!(r.stdout_text(), "true\n");
    let (r, _) = attack_wat(
        &host,
        Limits::new().with_max_memory(8 << 20),
        r#"(module (memory 1) (func (export "go") (loop (drop (memory.grow (i32.const 16))) (br 0))))"#,
    );
    assert_eq!(kind(&r), ErrorKind::MemoryLimit { limit: 8 << 20 });
}

#[test]
fn deep_recursion_is_a_range_error_or_a_stack_overflow_trap() {
    let host = host();
    let (r, _) = attack_js(
        &host,
        timeout(20_000),
        "function f(n) { return f(n + 1) + 1 } f(0)",
    );
    assert_eq!(kind(&r).type_name(), "RangeError");
    let (r, _) = attack_wat(
        &host,
        Limits::new(),
        r#"(module (func $f (export "go") (call $f)))"#,
    );
    assert_eq!(kind(&r), ErrorKind::Trap(Trap::StackOverflow));
    // A JS interpreter stopped by force (here by a recursion inside the
    // engine that outruns its own check) is closed, and says so.
    let w = host.create_js(timeout(20_000)).unwrap();
    let r = w
        .run(Run::js("JSON.parse('['.repeat(1e6) + ']'.repeat(1e6))"))
        .unwrap();
    assert!(!r.completed);
    if matches!(r.error.as_ref().unwrap().kind, ErrorKind::Trap(_)) {
        assert!(w.is_closed());
        assert!(matches!(
            w.run(Run::js("1")),
            Err(Error::InterpreterClosed(_))
        ));
    }
}

#[test]
fn output_floods_hit_the_output_limit() {
    let host = host();
    let limits = timeout(20_000).with_max_output(1 << 20);
    for src in [
        "for (;;) console.log('x'.repeat(1000))",
        "for (;;) console.error('flood')",
        "const w = interpreters.create(); w.run(\"for (;;) console.log('child flood')\").check()",
    ] {
        let (r, _) = attack_js(&host, limits, src);
        let e = r.error.clone().unwrap();
        assert!(
            e.kind == ErrorKind::OutputLimit { limit: 1 << 20 }
                || (e.kind.type_name() == "LimitError" && e.message.contains("output")),
            "{src}: {e:?}"
        );
        assert!(r.stdout.len() + r.stderr.len() <= 1 << 20);
    }
}

#[test]
fn channel_floods_block_or_are_refused_never_queue_without_bound() {
    let host = host();
    // Nobody receives: the sender blocks on the full channel until its deadline.
    let (rx, tx) = host.create_channel(16);
    let r = beside(&host, || {
        let w = host.create_js(timeout(300)).unwrap();
        w.run(Run::js("for (;;) channels.s.send('x'.repeat(1000))").channel("s", tx.clone()))
            .unwrap()
    });
    assert!(matches!(kind(&r), ErrorKind::Timeout { .. }));
    let mut queued = 0;
    while rx.recv_nowait().is_ok() {
        queued += 1;
    }
    assert_eq!(queued, 16, "exactly the capacity was queued");
    // A huge capacity is still bounded by the channel's queued bytes.
    let (rx, tx) = host.create_channel_with(1_000_000, 1 << 20);
    let r = beside(&host, || {
        let w = host.create_js(timeout(20_000)).unwrap();
        w.run(
            Run::js(
                "let n = 0; const b = new Uint8Array(64 << 10);\n\
                 while (channels.s.sendNowait(b)) n++;\n\
                 console.log(n);",
            )
            .channel("s", tx.clone()),
        )
        .unwrap()
    });
    assert!(r.completed, "{:?}", r.error);
    assert_eq!(r.stdout_text().trim(), "16", "1 MiB / 64 KiB");
    drop(rx);
}

#[test]
fn a_one_gib_message_is_refused() {
    let host = host();
    let (_rx, tx) = host.create_channel(4);
    // JS cannot even build it under the default 256 MiB ceiling.
    let r = beside(&host, || {
        let w = host.create_js(timeout(20_000)).unwrap();
        w.run(Run::js("channels.s.send(new Uint8Array(1 << 30))").channel("s", tx.clone()))
            .unwrap()
    });
    let e = r.error.unwrap();
    assert!(
        matches!(e.kind, ErrorKind::MemoryLimit { .. }) || e.kind.type_name() == "RangeError",
        "{e:?}"
    );
    // A raw guest asking to send 1 GiB gets an error code, not an allocation.
    let wat = r#"(module
      (import "subinterp_v1" "lookup" (func $lookup (param i32 i32) (result i32)))
      (import "subinterp_v1" "send" (func $send (param i32 i32 i32 i64) (result i32)))
      (memory (export "memory") 1) (data (i32.const 0) "s")
      (func (export "go") (result i32)
        (call $send (call $lookup (i32.const 0) (i32.const 1)) (i32.const 0) (i32.const 0x40000000) (i64.const 0))))"#;
    let g = host.compile("big", wat.as_bytes()).unwrap();
    let w = host.create(&g).unwrap();
    let r = w.run(Run::export("go").channel("s", tx.clone())).unwrap();
    assert_eq!(r.value, Some(subinterp::abi::ERR_TOO_LARGE));
    let (_rx, tx) = host.create_channel_with(4, 2 << 30);
    let r = w.run(Run::export("go").channel("s", tx)).unwrap();
    assert_eq!(
        r.value,
        Some(subinterp::abi::ERR_BOUNDS),
        "past its 64 KiB memory"
    );
}

#[test]
fn fork_bombs_hit_the_interpreter_limit_and_leave_nothing_behind() {
    let host = host();
    let baseline = host.list_all().len();
    let limits = timeout(20_000).with_max_interpreters(20).with_max_depth(3);
    let loop_bomb = "const keep = []; for (;;) keep.push(interpreters.create());";
    let (r, _) = attack_js(&host, limits, loop_bomb);
    let e = r.error.unwrap();
    assert_eq!(e.kind.type_name(), "LimitError", "{e:?}");
    // Each level creates a child and runs this same source in it.
    let rec_bomb = r#"const SRC = "const w = interpreters.create(); w.run('const SRC = ' + JSON.stringify(SRC) + ';' + SRC).check();"; eval(SRC);"#;
    let (r, _) = attack_js(&host, limits, rec_bomb);
    let e = r.error.unwrap();
    assert_eq!(e.kind.type_name(), "LimitError", "{e:?}");
    // The bombers still exist (they only failed); closing them frees all.
    for i in host.list_all().into_iter().skip(baseline) {
        if i.creator() == subinterp::InterpreterId::MAIN {
            i.close();
        }
    }
    assert_eq!(host.list_all().len(), baseline);
}

#[test]
fn deadlocked_interpreters_are_ended_by_their_deadlines() {
    let host = host();
    let (a_rx, a_tx) = host.create_channel(0);
    let (b_rx, b_tx) = host.create_channel(0);
    let src = "channels.mine.recv(); channels.theirs.send('never');";
    let a = host.create_js(timeout(300)).unwrap();
    let b = host.create_js(timeout(300)).unwrap();
    let t = Instant::now();
    let ja = a.start(Run::js(src).channel("mine", a_rx).channel("theirs", b_tx));
    let jb = b.start(Run::js(src).channel("mine", b_rx).channel("theirs", a_tx));
    for j in [ja, jb] {
        let r = j.join().unwrap();
        assert!(matches!(kind(&r), ErrorKind::Timeout { .. }));
    }
    assert!(t.elapsed() < Duration::from_millis(300) + MARGIN);
}

#[test]
fn directories_are_granted_only_explicitly_and_read_only_means_it() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_path_buf();
    std::fs::write(dir.join("f.txt"), "granted").unwrap();
    let host = host();
    let hello = crate::common::c_guest(&host, "hello");
    let run = |args: &[&str], grant: Option<bool>| {
        let mut b = host
            .interpreter(&hello)
            .args(std::iter::once("hello").chain(args.iter().copied()));
        if let Some(ro) = grant {
            b = b.dir(&dir, "/data", ro);
        }
        b.build().unwrap().run(Run::start()).unwrap()
    };
    let r = run(&["cat", "/data/f.txt"], None);
    assert_eq!(r.exit_code, Some(2), "nothing granted by default");
    let r = run(&["cat", "/data/f.txt"], Some(true));
    assert!(r.stdout_text().ends_with("granted"), "{}", r.stdout_text());
    let r = run(&["cat", "/data/../../../etc/hostname"], Some(true));
    assert_eq!(r.exit_code, Some(2), "no escape from the grant");
    let r = run(&["write", "/data/new.txt", "x"], Some(true));
    assert_eq!(r.exit_code, Some(2), "read-only");
    assert!(!dir.join("new.txt").exists());
    let r = run(&["write", "/data/new.txt", "x"], Some(false));
    assert_eq!(r.exit_code, Some(0));
    assert_eq!(std::fs::read_to_string(dir.join("new.txt")).unwrap(), "x");
}

/// A producer guest: sends 8-byte numbered messages `(id << 32) | seq` to
/// "out" until `count`, trapping on purpose at `trap_at` (when > 0).
fn producer(id: u32, count: u32, trap_at: u32) -> String {
    format!(
        r#"(module
      (import "subinterp_v1" "lookup" (func $lookup (param i32 i32) (result i32)))
      (import "subinterp_v1" "send" (func $send (param i32 i32 i32 i64) (result i32)))
      (memory (export "memory") 1) (data (i32.const 16) "out")
      (func (export "go") (result i32) (local $end i32) (local $seq i32)
        (local.set $end (call $lookup (i32.const 16) (i32.const 3)))
        (block $done (loop $next
          (br_if $done (i32.ge_u (local.get $seq) (i32.const {count})))
          (if (i32.eq (local.get $seq) (i32.const {trap_at})) (then unreachable))
          (i64.store (i32.const 0) (i64.or (i64.shl (i64.const {id}) (i64.const 32))
                                          (i64.extend_i32_u (local.get $seq))))
          (br_if $done (i32.ne (call $send (local.get $end) (i32.const 0) (i32.const 8) (i64.const -1)) (i32.const 0)))
          (local.set $seq (i32.add (local.get $seq) (i32.const 1)))
          (br $next)))
        (local.get $seq)))"#
    )
}

/// A relay guest: forwards every view from "in" to "out" without copying,
/// until "in" is closed.
const RELAY: &str = r#"(module
  (import "subinterp_v1" "lookup" (func $lookup (param i32 i32) (result i32)))
  (import "subinterp_v1" "recv" (func $recv (param i32 i64) (result i32)))
  (import "subinterp_v1" "send_handle" (func $fwd (param i32 i32 i64) (result i32)))
  (import "subinterp_v1" "release" (func $release (param i32) (result i32)))
  (memory (export "memory") 1) (data (i32.const 0) "in") (data (i32.const 8) "out")
  (func (export "go") (result i32) (local $in i32) (local $out i32) (local $v i32) (local $n i32)
    (local.set $in (call $lookup (i32.const 0) (i32.const 2)))
    (local.set $out (call $lookup (i32.const 8) (i32.const 3)))
    (block $done (loop $next
      (local.set $v (call $recv (local.get $in) (i64.const -1)))
      (br_if $done (i32.lt_s (local.get $v) (i32.const 0)))
      (if (i32.ne (call $fwd (local.get $out) (local.get $v) (i64.const -1)) (i32.const 0)) (then unreachable))
      (drop (call $release (local.get $v)))
      (local.set $n (i32.add (local.get $n) (i32.const 1)))
      (br $next)))
    (local.get $n)))"#;

/// Nothing lost: 6 producers and 2 relays exchange 1,000,000 numbered
/// messages while some producers trap and others are closed at random
/// moments. Every message a producer sent successfully (its run's
/// `messages_sent`) reaches the host exactly once, and each producer's
/// messages arrive as an unbroken prefix of its sequence.
#[test]
fn nothing_is_lost_when_interpreters_die_mid_stream() {
    let host = host();
    let per = 1_000_000 / 6 + 1;
    let (a_rx, a_tx) = host.create_channel(256);
    let (b_rx, b_tx) = host.create_channel(256);
    let relay = host.compile("relay", RELAY.as_bytes()).unwrap();
    let relays: Vec<_> = (0..2)
        .map(|_| {
            let r = host.create(&relay).unwrap();
            let job = r.start(
                Run::export("go")
                    .channel("in", a_rx.clone())
                    .channel("out", b_tx.clone()),
            );
            (r, job)
        })
        .collect();
    drop((a_rx, b_tx));
    let collector = std::thread::spawn(move || {
        let mut seen: HashSet<u64> = HashSet::new();
        while let Ok(m) = b_rx.recv() {
            let v = m.into_view().unwrap();
            let n = u64::from_le_bytes(v[..8].try_into().unwrap());
            assert!(seen.insert(n), "duplicate message {n:#x}");
        }
        seen
    });
    // Some producers trap at a chosen point, some are closed at a random
    // moment, the rest finish.
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut rand = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let mut producers = Vec::new();
    for id in 0..6u32 {
        let trap_at = if id % 3 == 1 {
            (rand() % per as u64) as u32
        } else {
            u32::MAX
        };
        let g = host
            .compile("p", producer(id, per, trap_at).as_bytes())
            .unwrap();
        let p = host.create(&g).unwrap();
        let job = p.start(Run::export("go").channel("out", a_tx.clone()));
        producers.push((id, p, job));
    }
    drop(a_tx);
    for (id, p, _) in &producers {
        if id % 3 == 2 {
            std::thread::sleep(Duration::from_millis(rand() % 200));
            p.close();
        }
    }
    let mut sent = 0u64;
    let mut sent_by = Vec::new();
    let mut outcomes = Vec::new();
    for (id, p, job) in producers {
        let r = job.join().unwrap();
        outcomes.push((id, r.completed, r.error.as_ref().map(|e| e.kind.name())));
        sent += r.stats.messages_sent;
        sent_by.push((id, r.stats.messages_sent));
        // Closing a producer releases its sending end of A; once all are
        // gone, the relays see A closed.
        p.close();
    }
    let mut relayed = 0;
    for (relay, j) in relays {
        let r = j.join().unwrap();
        assert!(r.completed, "relay failed: {:?}", r.error);
        relayed += r.value.unwrap() as u64;
        relay.close();
    }
    let seen = collector.join().unwrap();
    assert_eq!(seen.len() as u64, sent, "received == sent ({outcomes:?})");
    assert_eq!(relayed, sent);
    for (id, n) in sent_by {
        for seq in 0..n {
            assert!(
                seen.contains(&(u64::from(id) << 32 | seq)),
                "{id}:{seq} lost"
            );
        }
    }
    assert!(outcomes.iter().any(|o| o.2 == Some("trap")), "{outcomes:?}");
    // Two producers always finish: at least a third of the million went through.
    assert!(sent >= 2 * per as u64, "only {sent} sent: {outcomes:?}");
    eprintln!("nothing lost: {sent} messages sent and received once each; {outcomes:?}");
}

/// xorshift64: the fuzzers' deterministic randomness.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// An often-interesting constant: 0, ±1, bounds, small, or anything.
    fn constant(&mut self) -> i64 {
        match self.next() % 6 {
            0 => 0,
            1 => -1,
            2 => [1, 8, 65535, 65536, 131072, i32::MAX as i64, i32::MIN as i64]
                [(self.next() % 7) as usize],
            3 => (self.next() % 140_000) as i64,
            _ => self.next() as i32 as i64,
        }
    }
}

/// Every import of ABI v1: (name, parameter types, result type, index of a
/// timeout parameter).
const IMPORTS: &[(&str, &[&str], &str, Option<usize>)] = &[
    ("lookup", &["i32", "i32"], "i32", None),
    ("send", &["i32", "i32", "i32", "i64"], "i32", Some(3)),
    ("send_handle", &["i32", "i32", "i64"], "i32", Some(2)),
    ("recv", &["i32", "i64"], "i32", Some(1)),
    ("recv_kind", &["i32", "i64"], "i64", Some(1)),
    ("handle_kind", &["i32"], "i32", None),
    ("view_len", &["i32"], "i32", None),
    ("view_read", &["i32", "i32", "i32", "i32"], "i32", None),
    ("view_slice", &["i32", "i32", "i32"], "i32", None),
    ("release", &["i32"], "i32", None),
    ("close", &["i32"], "i32", None),
    ("channel_create", &["i32", "i32"], "i32", None),
    ("channel_len", &["i32"], "i32", None),
    ("call_output", &["i32", "i32"], "i32", None),
    ("wait", &["i32", "i32", "i64"], "i32", Some(2)),
    // In its own import module (see `import_of`).
    (
        "host_call",
        &["i32", "i32", "i32", "i32", "i32"],
        "i32",
        None,
    ),
    ("interpreter_id", &[], "i64", None),
    ("bound_names", &[], "i32", None),
    ("run_error", &["i32", "i32"], "i32", None),
    ("should_stop", &[], "i32", None),
    ("interp_create", &["i32", "i32"], "i64", None),
    (
        "interp_run",
        &["i64", "i32", "i32", "i32", "i32"],
        "i32",
        None,
    ),
    (
        "interp_start",
        &["i64", "i32", "i32", "i32", "i32"],
        "i32",
        None,
    ),
    ("interp_join", &["i32", "i64"], "i32", Some(1)),
    ("interp_close", &["i64"], "i32", None),
    ("interp_status", &["i64"], "i32", None),
    ("interp_list", &[], "i32", None),
    ("main_id", &[], "i64", None),
];

/// A guest whose `go` makes `calls` ABI calls with random arguments. Each
/// result is stored in memory, and later arguments are often loaded from
/// those slots, so live handles (and ids) get reused, released, reused
/// after release, and so on.
fn fuzz_guest(rng: &mut Rng, calls: usize) -> String {
    let mut wat = String::from("(module\n");
    for (name, params, res, _) in IMPORTS {
        let (module, field) = import_of(name);
        wat += &format!(
            "  (import \"{module}\" \"{field}\" (func ${name} (param {}) (result {res})))\n",
            params.join(" ")
        );
    }
    wat += "  (memory (export \"memory\") 2)\n  (data (i32.const 0) \"in\") (data (i32.const 8) \"out\")\n";
    // Host-function names the fuzzer's host has: "kv" granted, "secret" not.
    wat += "  (data (i32.const 16) \"kv\") (data (i32.const 24) \"secret\")\n";
    wat += "  (func (export \"go\")\n";
    for i in 0..calls {
        let (name, params, res, timeout) = IMPORTS[(rng.next() as usize) % IMPORTS.len()];
        let args: Vec<String> = params
            .iter()
            .enumerate()
            .map(|(k, ty)| {
                if Some(k) == timeout {
                    // Mostly "now", sometimes a short wait, never forever.
                    return format!("(i64.const {})", [0, 0, 0, 1000][(rng.next() % 4) as usize]);
                }
                if i > 0 && rng.next().is_multiple_of(2) {
                    let slot = 1024 + 8 * ((rng.next() as usize) % i.min(512));
                    return if *ty == "i64" {
                        format!("(i64.load (i32.const {slot}))")
                    } else {
                        format!("(i32.load (i32.const {slot}))")
                    };
                }
                format!("({ty}.const {})", rng.constant())
            })
            .collect();
        let slot = 1024 + 8 * (i % 512);
        let call = format!("(call ${name} {})", args.join(" "));
        let value = if res == "i32" {
            format!("(i64.extend_i32_s {call})")
        } else {
            call
        };
        wat += &format!("    (i64.store (i32.const {slot}) {value})\n");
    }
    wat += "  ))\n";
    wat
}

/// The import module and field of a fuzzed import.
fn import_of(name: &str) -> (&str, &str) {
    match name {
        "host_call" => (subinterp::abi::HOST_MODULE, "call"),
        _ => ("subinterp_v1", name),
    }
}

/// Drives every ABI import with random arguments from a guest for a
/// bounded time (`SUBINTERP_FUZZ_SECS`, default 3; `make fuzz` runs longer):
/// the host never panics, and results are codes or handles.
#[test]
fn fuzz_the_abi_with_random_arguments() {
    let secs: u64 = std::env::var("SUBINTERP_FUZZ_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3);
    let seed: u64 = std::env::var("SUBINTERP_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5eed_1234_abcd_0001);
    let host = subinterp::Host::builder()
        .pool_size(32)
        .func("kv", |_, v| Ok(Bytes::from(v.to_vec())))
        .func("secret", |_, _| Ok(Bytes::from_static(b"never")))
        .build()
        .unwrap();
    let mut rng = Rng(seed);
    let end = Instant::now() + Duration::from_secs(secs);
    let (mut programs, mut traps) = (0, 0);
    while Instant::now() < end {
        let wat = fuzz_guest(&mut rng, 200);
        let g = host.compile("fuzz", wat.as_bytes()).unwrap();
        let w = host
            .interpreter(&g)
            .limits(timeout(500).with_max_interpreters(4).with_max_handles(64))
            .allow("kv")
            .build()
            .unwrap();
        let (in_rx, in_tx) = host.create_channel(4);
        let (_out_rx, out_tx) = host.create_channel(4);
        in_tx.send(Bytes::from_static(b"fuzz input")).unwrap();
        let r = w
            .run(
                Run::export("go")
                    .channel("in", in_rx)
                    .channel("out", out_tx),
            )
            .unwrap();
        if !r.completed {
            traps += 1;
            let k = r.error.unwrap().kind;
            assert!(
                matches!(k, ErrorKind::Timeout { .. } | ErrorKind::Trap(_)),
                "seed {seed}, program {programs}: {k:?}"
            );
        }
        w.close();
        programs += 1;
    }
    eprintln!("fuzz: {programs} programs of 200 calls, {traps} ended early, seed {seed}");
    assert!(programs > 0);
    // The host is fine afterwards.
    let r = host
        .create_js(Limits::new())
        .unwrap()
        .run(Run::js("console.log(6 * 7)"))
        .unwrap();
    assert_eq!(r.stdout_text(), "42\n");
}

/// One of a rotation of hostile runs, each ending in a typed error.
fn one_hostile_run(host: &Host, i: usize) {
    let limits = timeout(50)
        .with_max_memory(32 << 20)
        .with_max_output(64 << 10);
    let src = match i % 6 {
        0 => "for (;;) {}",
        1 => "const a = []; for (;;) a.push(new Array(1000).fill(a.length));",
        2 => "for (;;) console.log('flood flood flood')",
        3 => "function f() { f() } f()",
        4 => "const k = []; for (;;) k.push(interpreters.create());",
        _ => "throw new Error('plain')",
    };
    let w = host.create_js(limits).unwrap();
    let r = w.run(Run::js(src)).unwrap();
    assert!(!r.completed, "{src}");
    w.close();
}

/// After 1,000 hostile runs in one process, private resident memory is back
/// within 10% of where it was after a warm-up. Runs in a child process
/// (this same test binary) so other tests' memory does not blur it.
#[test]
fn memory_returns_after_a_thousand_hostile_runs() {
    in_child("hostile::soak_child");
}

#[test]
#[ignore = "run by memory_returns_after_a_thousand_hostile_runs in its own process"]
fn soak_child() {
    if !is_child() {
        return;
    }
    let host = Host::builder().pool_size(64).build().unwrap();
    for i in 0..100 {
        one_hostile_run(&host, i);
    }
    let start = proc_figures().1;
    for i in 0..1000 {
        one_hostile_run(&host, i);
    }
    let end = proc_figures().1;
    println!("figures: RssAnon {start} KiB after warm-up, {end} KiB after 1,000 hostile runs");
    assert!(
        end as f64 <= start as f64 * 1.10,
        "RssAnon grew from {start} KiB to {end} KiB"
    );
}

#[test]
fn invalid_truncated_and_mislinked_modules_are_typed_errors() {
    let host = host();
    let good = std::fs::read(crate::common::guest_path("relay")).unwrap();
    beside(&host, || {
        for cut in [4, 9, good.len() / 3, good.len() / 2, good.len() - 1] {
            let e = host.compile("cut", &good[..cut]).unwrap_err();
            assert!(matches!(e, Error::InvalidModule(_)), "cut at {cut}: {e}");
        }
        let mut flipped = good.clone();
        let mid = flipped.len() / 2;
        flipped[mid..mid + 16].fill(0xff);
        assert!(host.compile("flipped", &flipped).is_err());
        for wat in [
            r#"(module (import "subinterp_v1" "no_such_call" (func)))"#,
            r#"(module (import "subinterp_v1" "send" (func (param i32))))"#,
            r#"(module (import "env" "anything" (func)))"#,
            r#"(module (import "wasi_snapshot_preview1" "sock_open" (func)))"#,
        ] {
            let e = host.compile("link", wat.as_bytes()).unwrap_err();
            assert!(matches!(e, Error::Link(_)), "{wat}: {e}");
        }
    });
    // The host compiles the good module afterwards all the same.
    assert!(host.compile("relay", &good).is_ok());
}
