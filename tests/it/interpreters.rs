//! Interpreters: isolation, runs, state, zero-copy forwarding, nothing lost,
//! deadlines and limits, typed errors.

use std::time::{Duration, Instant};

use bytes::Bytes;
use subinterp::{Error, ErrorKind, InterpreterId, Limits, Run};

use crate::common::{c_guest, host, probe};

fn text(m: subinterp::Message) -> String {
    String::from_utf8(m.into_view().expect("a view").to_vec()).unwrap()
}

#[test]
fn interpreters_cannot_see_each_others_memory() {
    let host = host();
    let guest = c_guest(&host, "relay");
    let a = host.create(&guest).unwrap();
    let b = host.create(&guest).unwrap();
    a.run(Run::export("poke")).unwrap().check().unwrap();
    assert_eq!(a.run(Run::export("peek")).unwrap().value, Some(42));
    assert_eq!(b.run(Run::export("peek")).unwrap().value, Some(0));
    // Same address in both, different memories.
    let addr_a = a.run(Run::export("buffer_addr")).unwrap().value;
    assert_eq!(addr_a, b.run(Run::export("buffer_addr")).unwrap().value);
    // Reaching outside its own memory is a trap, not another's bytes.
    let p = host.create(&probe(&host)).unwrap();
    let r = p.run(Run::export("oob_load")).unwrap();
    assert!(!r.completed);
    let e = r.error.unwrap();
    assert_eq!(e.kind, ErrorKind::Trap(subinterp::Trap::MemoryOutOfBounds));
    assert!(e.backtrace.unwrap_or_default().contains("oob_load"));
}

#[test]
fn state_persists_between_runs() {
    let host = host();
    let i = host.create(&c_guest(&host, "relay")).unwrap();
    let values: Vec<_> = (0..3)
        .map(|_| i.run(Run::export("counter")).unwrap().value)
        .collect();
    assert_eq!(values, [Some(1), Some(2), Some(3)]);
}

#[test]
fn three_interpreters_pass_a_message_along() {
    let host = host();
    let guest = c_guest(&host, "relay");
    let (rx0, tx0) = host.create_channel(4);
    let (rx1, tx1) = host.create_channel(4);
    let (rx2, tx2) = host.create_channel(4);
    let (rx3, tx3) = host.create_channel(4);
    let stages = [
        ("upper", rx0, tx1),
        ("relay", rx1, tx2),
        ("relay", rx2, tx3),
    ];
    let jobs: Vec<_> = stages
        .into_iter()
        .map(|(f, rx, tx)| {
            let i = host.create(&guest).unwrap();
            i.start(Run::export(f).channel("in", rx).channel("out", tx))
        })
        .collect();
    let msgs = ["hello", "wasm wörld", ""];
    for m in msgs {
        tx0.send(m).unwrap();
    }
    tx0.close();
    for m in msgs {
        assert_eq!(text(rx3.recv().unwrap()), m.to_ascii_uppercase());
    }
    assert_eq!(rx3.recv().unwrap_err(), subinterp::RecvError::Closed);
    for job in jobs {
        let r = job.join().unwrap().check().unwrap();
        assert_eq!(r.value, Some(3));
    }
}

#[test]
fn forwarding_64_mib_copies_nothing_and_reading_1_kib_copies_1_kib() {
    let host = host();
    let guest = c_guest(&host, "relay");
    let i = host.create(&guest).unwrap();
    let (in_rx, in_tx) = host.create_channel(1);
    let (out_rx, out_tx) = host.create_channel(1);
    let data = Bytes::from(vec![3u8; 64 << 20]);
    in_tx.send(data.clone()).unwrap();
    let r = i
        .run(
            Run::export("relay_one")
                .channel("in", in_rx.clone())
                .channel("out", out_tx),
        )
        .unwrap()
        .check()
        .unwrap();
    assert_eq!(r.value, Some(0));
    let view = out_rx.recv().unwrap().into_view().unwrap();
    assert_eq!(view.as_ptr(), data.as_ptr(), "the same memory came back");
    assert_eq!(view.len(), 64 << 20);
    let c = host.counters();
    assert_eq!(
        (c.bytes_copied_in, c.bytes_copied_out, c.buffers_forwarded),
        (0, 0, 1)
    );
    assert_eq!(r.stats.buffers_forwarded, 1);

    in_tx.send(data).unwrap();
    let r = i.run(Run::export("read_prefix")).unwrap().check().unwrap();
    assert_eq!(r.value, Some(3 * 1024));
    assert_eq!(r.stats.bytes_copied_in, 1024);
    assert_eq!(host.counters().bytes_copied_in, 1024);
}

#[test]
fn buffers_survive_a_closed_sender() {
    let host = host();
    let i = host.create(&c_guest(&host, "relay")).unwrap();
    let (in_rx, in_tx) = host.create_channel(8);
    let (out_rx, out_tx) = host.create_channel(8);
    for m in ["one", "two", "three"] {
        in_tx.send(m).unwrap();
    }
    in_tx.close();
    i.run(
        Run::export("upper")
            .channel("in", in_rx)
            .channel("out", out_tx),
    )
    .unwrap()
    .check()
    .unwrap();
    i.close();
    assert!(i.is_closed());
    assert!(matches!(
        i.run(Run::export("counter")),
        Err(Error::InterpreterClosed(_))
    ));
    let got: Vec<_> = (0..3).map(|_| text(out_rx.recv().unwrap())).collect();
    assert_eq!(got, ["ONE", "TWO", "THREE"]);
}

#[test]
fn buffers_survive_a_trapping_sender() {
    let host = host();
    let p = host.create(&probe(&host)).unwrap();
    let (out_rx, out_tx) = host.create_channel(8);
    let r = p
        .run(Run::export("send_three_then_trap").channel("out", out_tx))
        .unwrap();
    assert_eq!(
        r.error.as_ref().unwrap().kind,
        ErrorKind::Trap(subinterp::Trap::UnreachableCodeReached)
    );
    assert!(r.clone().check().is_err());
    p.close();
    for _ in 0..3 {
        assert_eq!(text(out_rx.recv().unwrap()), "ping");
    }
    assert!(out_rx.recv_nowait().is_err());
}

#[test]
fn deadline_stops_a_spinning_guest_and_a_blocked_one() {
    let host = host();
    let guest = probe(&host);
    let limits = Limits::new().with_timeout(Duration::from_millis(100));
    let spin = host.interpreter(&guest).limits(limits).build().unwrap();
    let t = Instant::now();
    let r = spin.run(Run::export("spin")).unwrap();
    let took = t.elapsed();
    assert_eq!(
        r.error.unwrap().kind,
        ErrorKind::Timeout {
            limit: Duration::from_millis(100)
        }
    );
    assert!(took < Duration::from_secs(2), "{took:?}");

    let blocked = host.interpreter(&guest).limits(limits).build().unwrap();
    let (rx, _tx) = host.create_channel(1);
    let t = Instant::now();
    let r = blocked
        .run(Run::export("recv_block").channel("in", rx))
        .unwrap();
    assert!(matches!(r.error.unwrap().kind, ErrorKind::Timeout { .. }));
    assert!(t.elapsed() >= Duration::from_millis(95) && t.elapsed() < Duration::from_secs(2));
    // The interpreter is fine afterwards.
    assert!(spin.run(Run::export("id")).unwrap().completed);
}

#[test]
fn closing_a_running_interpreter_stops_it() {
    let host = host();
    let guest = probe(&host);
    let spin = host.create(&guest).unwrap();
    let job = spin.start(Run::export("spin"));
    let (rx, _tx) = host.create_channel(1);
    let blocked = host.create(&guest).unwrap();
    let job2 = blocked.start(Run::export("recv_block").channel("in", rx));
    let t = Instant::now();
    while !(spin.is_running() && blocked.is_running()) {
        assert!(t.elapsed() < Duration::from_secs(5));
        std::thread::sleep(Duration::from_millis(1));
    }
    assert!(matches!(
        spin.run(Run::export("id")),
        Err(Error::InterpreterRunning(_))
    ));
    spin.close();
    blocked.close();
    assert_eq!(job.join().unwrap().error.unwrap().kind, ErrorKind::Closed);
    assert_eq!(job2.join().unwrap().error.unwrap().kind, ErrorKind::Closed);
    assert!(host.list_all().is_empty());
}

#[test]
fn memory_ceiling_is_a_typed_error() {
    let host = host();
    let limits = Limits::new().with_max_memory(4 << 20);
    let i = host
        .interpreter(&probe(&host))
        .limits(limits)
        .build()
        .unwrap();
    let r = i.run(Run::export("grow")).unwrap();
    assert_eq!(
        r.error.unwrap().kind,
        ErrorKind::MemoryLimit { limit: 4 << 20 }
    );
}

#[test]
fn output_is_captured_and_capped() {
    let host = host();
    let guest = c_guest(&host, "hello");
    let i = host
        .interpreter(&guest)
        .args(["hello", "x"])
        .build()
        .unwrap();
    let r = i.run(Run::start()).unwrap().check().unwrap();
    assert_eq!(r.exit_code, Some(0));
    assert_eq!(r.stdout_text(), "hello from wasm, argc=2\narg 1: x\n");

    let small = host
        .interpreter(&guest)
        .limits(Limits::new().with_max_output(10))
        .build()
        .unwrap();
    let r = small.run(Run::start()).unwrap();
    assert_eq!(r.error.unwrap().kind, ErrorKind::OutputLimit { limit: 10 });
    assert_eq!(r.stdout.len(), 10);
}

#[test]
fn exit_codes_and_no_environment() {
    let host = host();
    let guest = c_guest(&host, "hello");
    let i = host
        .interpreter(&guest)
        .args(["hello", "exit", "7"])
        .build()
        .unwrap();
    let r = i.run(Run::start()).unwrap();
    assert!(!r.completed);
    assert_eq!(r.exit_code, Some(7));
    assert_eq!(r.error.as_ref().unwrap().kind, ErrorKind::Exit(7));
    assert_eq!(r.stderr_text(), "exiting with 7\n");

    let i = host
        .interpreter(&guest)
        .args(["hello", "env"])
        .build()
        .unwrap();
    assert!(
        i.run(Run::start())
            .unwrap()
            .stdout_text()
            .contains("env count: 0")
    );
    let i = host
        .interpreter(&guest)
        .args(["hello", "ls"])
        .build()
        .unwrap();
    assert!(
        i.run(Run::start())
            .unwrap()
            .stdout_text()
            .contains("denied")
    );
}

#[test]
fn registry_ids_and_current() {
    let host = host();
    let guest = probe(&host);
    assert_eq!(host.get_main(), InterpreterId::MAIN);
    assert_eq!(host.get_current(), InterpreterId::MAIN);
    let a = host.create(&guest).unwrap();
    let b = host.create(&guest).unwrap();
    let ids: Vec<_> = host.list_all().iter().map(|i| i.id()).collect();
    assert_eq!(ids, [a.id(), b.id()]);
    assert_eq!(
        a.run(Run::export("id")).unwrap().value,
        Some(a.id().0 as i32)
    );
    assert!(host.get(b.id()).is_some());
    b.close();
    b.close();
    assert!(host.get(b.id()).is_none());
    assert_eq!(host.list_all().len(), 1);
}

#[test]
fn bad_modules_are_typed_errors() {
    let host = host();
    assert!(matches!(
        host.compile("x", b"\0asm\x01\0\0\0\xff"),
        Err(Error::InvalidModule(_))
    ));
    assert!(matches!(
        host.compile("x", b"not wasm at all"),
        Err(Error::InvalidModule(_))
    ));
    let missing = r#"(module (import "subinterp_v1" "no_such" (func)) )"#;
    assert!(matches!(
        host.compile("x", missing.as_bytes()),
        Err(Error::Link(_))
    ));
    let i = host.create(&probe(&host)).unwrap();
    assert!(matches!(
        i.run(Run::export("nope")),
        Err(Error::NoSuchExport(_))
    ));
    assert!(matches!(i.run(Run::start()), Err(Error::NoSuchExport(_))));
    let trap_at_start = r#"(module (func $s unreachable) (start $s))"#;
    let g = host.compile("t", trap_at_start.as_bytes()).unwrap();
    assert!(matches!(host.create(&g), Err(Error::Instantiate(_))));
}

#[test]
fn pool_exhaustion_is_a_typed_limit() {
    let host = subinterp::Host::builder().pool_size(2).build().unwrap();
    let guest = probe(&host);
    let _a = host.create(&guest).unwrap();
    let _b = host.create(&guest).unwrap();
    match host.create(&guest) {
        Err(Error::Limit(subinterp::LimitError::TooManyInterpreters { limit: 2 })) => {}
        other => panic!("expected the pool limit, got {other:?}"),
    }
    _a.close();
    drop(_a);
    host.create(&guest)
        .expect("a closed interpreter frees its slot");
}

#[test]
fn dropping_the_last_handle_closes_an_interpreter_and_frees_its_slot() {
    let host = subinterp::Host::builder().pool_size(3).build().unwrap();
    let guest = probe(&host);
    for _ in 0..10 {
        let i = host
            .create(&guest)
            .expect("a dropped interpreter frees its slot");
        assert_eq!(
            i.run(Run::export("id")).unwrap().value,
            Some(i.id().0 as i32)
        );
    }
    assert!(
        host.list_all().is_empty(),
        "the host keeps no strong handle"
    );
    // A clone keeps it alive; the last drop closes it.
    let a = host.create(&guest).unwrap();
    let id = a.id();
    let b = a.clone();
    drop(a);
    assert!(host.get(id).is_some() && !b.is_closed());
    drop(b);
    assert!(host.get(id).is_none());
    // A started run holds a handle until it ends.
    let (rx, tx) = host.create_channel(1);
    let i = host.create(&guest).unwrap();
    let id = i.id();
    let job = i.start(Run::export("recv_block").channel("in", rx));
    drop(i);
    assert!(host.get(id).is_some(), "running: still live");
    tx.send("go").unwrap();
    assert!(job.join().unwrap().completed);
    assert!(host.get(id).is_none());
    // With every handle dropped, three live at once still fit.
    let three: Vec<_> = (0..3).map(|_| host.create(&guest).unwrap()).collect();
    assert_eq!(host.list_all().len(), 3);
    drop(three);
    assert!(host.list_all().is_empty());
}

#[test]
fn public_types_are_debug_and_thread_safe_where_they_should_be() {
    fn send_sync<T: Send + Sync + std::fmt::Debug>() {}
    fn send<T: Send + std::fmt::Debug>() {}
    use subinterp::*;
    send_sync::<Host>();
    send_sync::<HostBuilder>();
    send_sync::<Guest>();
    send_sync::<Interpreter>();
    send_sync::<RecvChannel>();
    send_sync::<SendChannel>();
    send_sync::<Buffer>();
    send_sync::<View>();
    send_sync::<Message>();
    send_sync::<Limits>();
    send_sync::<CompileLimits>();
    send_sync::<RunResult>();
    send_sync::<Error>();
    send_sync::<Run>();
    send::<RunJob>();
    fn debug<T: std::fmt::Debug>() {}
    debug::<InterpreterBuilder<'static>>();
}

#[test]
fn stdin_bytes_are_the_guests_stdin() {
    let host = host();
    let js = host.js().unwrap();
    let w = host
        .interpreter(&js)
        .stdin_bytes(Bytes::from_static(b"line one\nline two\n"))
        .build()
        .unwrap();
    let r = w
        .run(Run::js(
            "console.log(process.stdin.text().split('\\n').length)",
        ))
        .unwrap();
    assert!(r.completed, "{:?}", r.error);
    assert_eq!(r.stdout_text(), "3\n");
    // By default a guest's stdin is empty.
    let w = host.interpreter(&js).build().unwrap();
    let r = w
        .run(Run::js("console.log(JSON.stringify(process.stdin.text()))"))
        .unwrap();
    assert_eq!(r.stdout_text(), "\"\"\n");
}
