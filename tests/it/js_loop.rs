//! The JavaScript event loop (timers, awaitable channel operations) and
//! structured messages (`sendValue`/`recvValue`), through the Rust API.

use std::time::Duration;

use bytes::Bytes;
use subinterp::{ErrorKind, Host, Interpreter, Limits, Run, RunResult};

use crate::common::{completed, host};

fn js(host: &Host) -> Interpreter {
    host.create_js(Limits::new().with_timeout(Duration::from_secs(60)))
        .expect("JS interpreter")
}

fn ok(host: &Host, src: &str) -> RunResult {
    completed(js(host).run(Run::js(src)).expect("run"))
}

fn kind(r: &RunResult) -> ErrorKind {
    r.error.as_ref().expect("the run failed").kind.clone()
}

#[test]
fn timers_fire_in_order_with_their_arguments_and_microtasks_between() {
    let host = host();
    let r = ok(
        &host,
        r#"
        const log = [];
        setTimeout(() => { log.push("t1"); Promise.resolve().then(() => log.push("micro after t1")); }, 1);
        setTimeout(() => log.push("t5"), 5);
        const gone = setTimeout(() => log.push("cleared"), 2);
        clearTimeout(gone);
        clearTimeout(12345); clearTimeout(undefined);
        let n = 0;
        const iv = setInterval((a) => {
          log.push(`iv${++n}${a}`);
          if (n === 3) {
            clearInterval(iv);
            setTimeout((x, y) => { log.push(`last ${x}${y}`); console.log(log.join(",")); }, 1, "x", "y");
          }
        }, 10, "!");
        queueMicrotask(() => log.push("microtask"));
        "#,
    );
    assert_eq!(
        r.stdout_text(),
        "microtask,t1,micro after t1,t5,iv1!,iv2!,iv3!,last xy\n"
    );
}

#[test]
fn equal_delays_fire_in_the_order_they_were_set() {
    let host = host();
    let r = ok(
        &host,
        "for (let i = 0; i < 20; i++) setTimeout(() => console.log(i), 3);",
    );
    let want: String = (0..20).map(|i| format!("{i}\n")).collect();
    assert_eq!(r.stdout_text(), want);
}

#[test]
fn a_bad_callback_is_a_type_error() {
    let host = host();
    let r = js(&host).run(Run::js("setTimeout('alert(1)', 1)")).unwrap();
    assert_eq!(
        kind(&r),
        ErrorKind::Exception {
            name: "TypeError".into()
        }
    );
}

#[test]
fn awaiting_a_timer_in_a_module_a_call_and_a_later_run() {
    let host = host();
    let w = js(&host);
    let sleep = "globalThis.sleep = (ms, v) => new Promise((r) => setTimeout(() => r(v), ms));";
    completed(w.run(Run::js(sleep)).unwrap());
    let r = completed(
        w.run(Run::js_module(
            "main.mjs",
            "console.log(await sleep(5, 'module'));",
        ))
        .unwrap(),
    );
    assert_eq!(r.stdout_text(), "module\n");
    completed(
        w.run(Run::js("globalThis.later = (x) => sleep(3, `got ${x}`);"))
            .unwrap(),
    );
    let out: String = w.call_json("later", &"it").unwrap();
    assert_eq!(out, "got it");
}

#[test]
fn an_interval_forever_ends_at_the_deadline_as_a_timeout_and_the_interpreter_lives_on() {
    let host = host();
    for src in [
        "setInterval(() => {}, 1)",
        "setInterval(() => {}, 0)",
        "setInterval(() => {}, 3600e3)",
        "(function tick() { setTimeout(tick, 0); })()",
    ] {
        let w = host
            .create_js(Limits::new().with_timeout(Duration::from_millis(300)))
            .unwrap();
        let r = w.run(Run::js(src)).unwrap();
        assert!(
            matches!(kind(&r), ErrorKind::Timeout { .. }),
            "{src}: {:?}",
            r.error
        );
        // The failed run's timers are gone: the next run ends by itself.
        let r = w.run(Run::js("console.log('after')")).unwrap();
        assert!(r.completed, "{src}: {:?}", r.error);
        assert_eq!(r.stdout_text(), "after\n");
    }
}

/// Waiting for a timer is a host-side sleep: a run whose only timer is due
/// after its deadline uses almost no fuel, where a loop polling the clock
/// would use it all.
#[test]
fn waiting_for_a_far_timer_sleeps_on_the_host_and_uses_no_fuel() {
    let host = Host::builder().pool_size(4).fuel(true).build().unwrap();
    let fuel = 200_000_000;
    let w = host
        .create_js(
            Limits::new()
                .with_timeout(Duration::from_millis(400))
                .with_fuel(fuel),
        )
        .unwrap();
    let r = w
        .run(Run::js("setTimeout(() => console.log('never'), 60000)"))
        .unwrap();
    assert!(
        matches!(kind(&r), ErrorKind::Timeout { .. }),
        "{:?}",
        r.error
    );
    let used = r.stats.fuel_used.expect("fuel was metered");
    assert!(used < fuel / 10, "the wait burned {used} fuel");
    assert_eq!(r.stdout_text(), "");
}

#[test]
fn a_throwing_timer_fails_the_run_and_its_siblings_never_fire() {
    let host = host();
    let w = js(&host);
    let r = w
        .run(Run::js(
            "setTimeout(() => console.log('sibling'), 20);\
             setTimeout(() => { throw new RangeError('boom'); }, 1);",
        ))
        .unwrap();
    assert_eq!(
        kind(&r),
        ErrorKind::Exception {
            name: "RangeError".into()
        }
    );
    assert!(r.error.unwrap().message.contains("boom"));
    let r = completed(
        w.run(Run::js("setTimeout(() => console.log('next'), 30)"))
            .unwrap(),
    );
    assert_eq!(r.stdout_text(), "next\n");
}

#[test]
fn an_unhandled_rejection_in_a_timer_fails_the_run() {
    let host = host();
    let r = js(&host)
        .run(Run::js(
            "setTimeout(() => Promise.reject(new TypeError('late')), 1);\
             setTimeout(() => console.log('not reached'), 50);",
        ))
        .unwrap();
    assert!(!r.completed);
    assert!(r.error.as_ref().unwrap().message.contains("late"));
    assert_eq!(r.stdout_text(), "");
}

#[test]
fn process_exit_in_a_timer_ends_the_run_with_its_code() {
    let host = host();
    let r = js(&host)
        .run(Run::js(
            "setTimeout(() => process.exit(7), 1); setInterval(() => {}, 1000);",
        ))
        .unwrap();
    assert_eq!(r.exit_code, Some(7));
}

/// Floods of timers and of waiting channel operations are bounded by the
/// interpreter's memory.
#[test]
fn timer_and_waiter_floods_are_bounded_by_memory() {
    let host = host();
    for src in [
        "for (;;) setTimeout(() => {}, 1e9);",
        // Both ends kept: with no sender left, recvAsync would fail at once.
        "const [r, s] = interpreters.createChannel(1); for (;;) r.recvAsync();",
        "const [r, s] = interpreters.createChannel(1); for (;;) s.sendAsync('x');",
    ] {
        let w = host
            .create_js(
                Limits::new()
                    .with_max_memory(32 << 20)
                    .with_timeout(Duration::from_secs(60)),
            )
            .unwrap();
        let r = w.run(Run::js(src)).unwrap();
        assert!(
            matches!(kind(&r), ErrorKind::MemoryLimit { .. }),
            "{src}: {:?}",
            r.error
        );
    }
}

#[test]
fn millions_of_cleared_timers_do_not_pile_up() {
    let host = host();
    let w = host
        .create_js(
            Limits::new()
                .with_max_memory(24 << 20)
                .with_timeout(Duration::from_secs(120)),
        )
        .unwrap();
    let r = completed(
        w.run(Run::js(
            "for (let i = 0; i < 1e6; i++) clearTimeout(setTimeout(() => {}, 1e9));\
             setTimeout(() => console.log('done'), 1);",
        ))
        .unwrap(),
    );
    assert_eq!(r.stdout_text(), "done\n");
}

/// One interpreter serves two channels and a timer at once: the host
/// answers on `a` only after the timer has fired (which it could not if
/// `recvAsync` blocked), and on `b` before `a`.
#[test]
fn recv_async_serves_several_channels_without_blocking_timers() {
    let host = host();
    let (a_rx, a_tx) = host.create_channel(4);
    let (b_rx, b_tx) = host.create_channel(4);
    let (out_rx, out_tx) = host.create_channel(4);
    let peer = std::thread::spawn(move || {
        b_tx.send(Bytes::from_static(b"from b")).unwrap();
        let tick = out_rx.recv_view().unwrap();
        assert_eq!(&tick[..], b"tick");
        a_tx.send(Bytes::from_static(b"from a")).unwrap();
        out_rx.recv_view().unwrap()
    });
    let r = completed(
        js(&host)
            .run(
                Run::js(
                    r#"
                    const { a, b, out } = channels;
                    const log = [];
                    setTimeout(() => { log.push("tick"); out.send("tick"); }, 5);
                    Promise.all([
                      a.recvAsync().then((m) => { log.push(m.text()); }),
                      b.recvAsync().then((m) => { log.push(m.text()); }),
                    ]).then(() => { out.send(log.join(",")); console.log(log.join(",")); });
                    "#,
                )
                .channel("a", a_rx)
                .channel("b", b_rx)
                .channel("out", out_tx),
            )
            .unwrap(),
    );
    let last = peer.join().unwrap();
    assert_eq!(&last[..], b"from b,tick,from a");
    assert_eq!(r.stdout_text(), "from b,tick,from a\n");
}

#[test]
fn send_async_waits_for_room_and_keeps_its_own_copy() {
    let host = host();
    let (rx, tx) = host.create_channel(1);
    let (go_rx, go_tx) = host.create_channel(1);
    let peer = std::thread::spawn(move || {
        go_rx.recv_view().unwrap();
        (0..3)
            .map(|_| String::from_utf8(rx.recv_view().unwrap().to_vec()).unwrap())
            .collect::<Vec<_>>()
    });
    let r = completed(
        js(&host)
            .run(
                Run::js(
                    r#"
                    const { tx, go } = channels;
                    const buf = new Uint8Array([49]);
                    const done = [tx.sendAsync(buf), tx.sendAsync(buf), tx.sendAsync("three")];
                    buf[0] = 50; // the waiting send keeps what it was given
                    go.send("go");
                    Promise.all(done).then(() => console.log("all sent"));
                    "#,
                )
                .channel("tx", tx)
                .channel("go", go_tx),
            )
            .unwrap(),
    );
    assert_eq!(r.stdout_text(), "all sent\n");
    assert_eq!(peer.join().unwrap(), ["1", "1", "three"]);
}

#[test]
fn recv_async_on_a_channel_that_closes_rejects_with_channel_closed() {
    let host = host();
    let (rx, tx) = host.create_channel(1);
    let (note_rx, note_tx) = host.create_channel(1);
    let peer = std::thread::spawn(move || {
        note_rx.recv_view().unwrap();
        tx.close();
    });
    let r = completed(
        js(&host)
            .run(
                Run::js(
                    r#"
                    const p = channels.rx.recvAsync();
                    channels.note.send("waiting");
                    p.then(() => console.log("a message?"),
                           (e) => console.log(e.name));
                    "#,
                )
                .channel("rx", rx)
                .channel("note", note_tx),
            )
            .unwrap(),
    );
    peer.join().unwrap();
    assert_eq!(r.stdout_text(), "ChannelClosedError\n");
}

#[test]
fn async_operations_time_out_and_released_ends_reject() {
    let host = host();
    let r = ok(
        &host,
        r#"
        const [r, s] = interpreters.createChannel(1);
        const out = [];
        r.recvAsync({ timeout: 5 }).catch((e) => out.push(e.name))
          .then(() => { s.send("x"); return s.sendAsync("y", { timeout: 5 }); })
          .catch((e) => out.push(e.name))
          .then(() => { r.release(); return r.recvAsync(); })
          .catch((e) => out.push(e.name))
          .then(() => console.log(out.join(",")));
        "#,
    );
    assert_eq!(
        r.stdout_text(),
        "TimeoutError,TimeoutError,ChannelReleasedError\n"
    );
}

/// A waiting recvAsync that nothing ever answers ends at the deadline.
#[test]
fn a_recv_async_that_never_completes_is_a_timeout() {
    let host = host();
    let (rx, _tx) = host.create_channel(1);
    let w = host
        .create_js(Limits::new().with_timeout(Duration::from_millis(200)))
        .unwrap();
    let r = w
        .run(Run::js("channels.rx.recvAsync()").channel("rx", rx))
        .unwrap();
    assert!(
        matches!(kind(&r), ErrorKind::Timeout { .. }),
        "{:?}",
        r.error
    );
}

/// A parent serves three children at once, each on its own channel, with
/// structured values both ways.
#[test]
fn one_interpreter_serves_several_children_with_structured_values() {
    let host = host();
    let r = ok(
        &host,
        r#"
        const jobs = [], replies = [];
        for (let i = 0; i < 3; i++) {
          const [req, reqTx] = interpreters.createChannel(1);
          const [repRx, rep] = interpreters.createChannel(1);
          const child = interpreters.create();
          jobs.push(child.start(`
            channels.req.sendValue({ n: ${i}, when: new Date(${i}), tags: new Set(["c${i}"]) });
            const v = channels.rep.recvValue();
            if (!(v.got instanceof Map) || v.got.get("n") !== ${i} * 10) throw new Error("bad reply");
          `, { channels: { req: reqTx, rep: repRx } }));
          replies.push(req.recvValueAsync().then((v) => {
            if (!(v.when instanceof Date) || !v.tags.has(`c${v.n}`)) throw new Error("bad request");
            return rep.sendValueAsync({ got: new Map([["n", v.n * 10]]) });
          }));
        }
        Promise.all(replies).then(() => {
          for (const j of jobs) j.join().check();
          console.log("served", jobs.length);
        });
        "#,
    );
    assert_eq!(r.stdout_text(), "served 3\n");
}

#[test]
fn structured_values_cross_interpreters_intact() {
    let host = host();
    let (rx, tx) = host.create_channel(4);
    let sender = js(&host);
    completed(
        sender
            .run(
                Run::js(
                    r#"
                    const cyc = { name: "cyc" }; cyc.self = cyc;
                    const shared = [1, 2];
                    const err = new TypeError("bad thing", { cause: new RangeError("deep") });
                    channels.tx.sendValue({
                      n: 1.5, s: "é✓", big: 12345678901234567890n, nul: null, u: undefined,
                      arr: [1, "two", [3]], map: new Map([[1, { a: 1 }], ["k", shared]]),
                      set: new Set([shared, "x"]), date: new Date(86400000), re: /a+b/gi,
                      bytes: new Uint8Array([1, 2, 3]), f64: new Float64Array([0.5]),
                      buf: new Uint16Array([7, 8]).buffer, cyc, err, errors: [new Error("plain")],
                    });
                    channels.tx.sendValue(42);
                    channels.tx.sendValue("just text");
                    "#,
                )
                .channel("tx", tx),
            )
            .unwrap(),
    );
    let r = completed(
        js(&host)
            .run(
                Run::js(
                    r#"
                    const v = channels.rx.recvValue();
                    const checks = {
                      n: v.n === 1.5, s: v.s === "é✓", big: v.big === 12345678901234567890n,
                      nul: v.nul === null, u: "u" in v && v.u === undefined,
                      arr: JSON.stringify(v.arr) === '[1,"two",[3]]',
                      map: v.map instanceof Map && v.map.get(1).a === 1,
                      shared: v.map.get("k") === [...v.set][0],
                      date: v.date instanceof Date && v.date.getTime() === 86400000,
                      re: v.re instanceof RegExp && v.re.source === "a+b" && v.re.flags === "gi",
                      bytes: v.bytes instanceof Uint8Array && v.bytes.join() === "1,2,3",
                      f64: v.f64 instanceof Float64Array && v.f64[0] === 0.5,
                      buf: v.buf instanceof ArrayBuffer && new Uint16Array(v.buf).join() === "7,8",
                      cyc: v.cyc.self === v.cyc,
                      err: v.err instanceof TypeError && v.err.message === "bad thing"
                        && v.err.cause instanceof RangeError && v.err.cause.message === "deep"
                        && typeof v.err.stack === "string",
                      errors: v.errors[0] instanceof Error && v.errors[0].message === "plain",
                      number: channels.rx.recvValue() === 42,
                      text: channels.rx.recvValue() === "just text",
                    };
                    const bad = Object.entries(checks).filter(([, ok]) => !ok).map(([k]) => k);
                    console.log(bad.length ? `bad: ${bad}` : "all intact");
                    "#,
                )
                .channel("rx", rx),
            )
            .unwrap(),
    );
    assert_eq!(r.stdout_text(), "all intact\n");
}

#[test]
fn functions_and_shared_array_buffers_are_a_data_clone_error() {
    let host = host();
    let r = ok(
        &host,
        r#"
        const [r, s] = interpreters.createChannel(4);
        const out = [];
        for (const v of [() => 1, { f: function named() {} }, new SharedArrayBuffer(8),
                         new Int32Array(new SharedArrayBuffer(8)), Symbol("s"), [new WeakMap()]]) {
          try { s.sendValue(v); out.push("sent"); } catch (e) { out.push(e.name); }
        }
        console.log(out.join(","), r.recvNowait(null));
        "#,
    );
    assert_eq!(
        r.stdout_text(),
        "DataCloneError,DataCloneError,DataCloneError,DataCloneError,DataCloneError,DataCloneError null\n"
    );
}

/// Received bytes are hostile: random buffers, and every truncation and
/// many single-byte corruptions of real messages (most with QuickJS's
/// checksum switched off, so they reach its parser), read as values, and a
/// message that claims a string far larger than the receiver's memory.
/// Each is a value or a DataCloneError (never out of memory: the bytes a
/// length claims are looked for before anything is allocated); the
/// receiver carries on.
#[test]
fn forged_structured_messages_are_errors_never_crashes() {
    let host = host();
    let w = host
        .create_js(
            Limits::new()
                .with_max_memory(64 << 20)
                .with_timeout(Duration::from_secs(120)),
        )
        .unwrap();
    let r = completed(
        w.run(Run::js(
            r#"
            const [r, s] = interpreters.createChannel(1);
            let seed = 0x2545f491;
            const rand = () => { seed ^= seed << 13; seed ^= seed >>> 17; seed ^= seed << 5; return seed >>> 0; };
            const samples = [
              { a: [1, "x", 2n], m: new Map([[1, new Set([2])]]), d: new Date(5), r: /x/g },
              [new Uint8Array([1, 2, 3]), new Float32Array(4).buffer, new Error("e", { cause: 1 })],
              "a string", 123456789n, { deep: { deeper: { deepest: [[[]]] } } },
            ];
            const valid = samples.map((v) => { s.sendValue(v); const m = r.recv(); return m.bytes(); });
            const inputs = [];
            for (const b of valid) {
              for (let n = 0; n < b.length; n++) inputs.push(b.slice(0, n));
              for (let k = 0; k < 300; k++) {
                // Past QuickJS's checksum (0xffffffff skips it), into the parser.
                const c = b.slice(); c.fill(255, 1, 5); c[5 + rand() % (c.length - 5)] = rand() & 255; inputs.push(c);
                const d = b.slice(); d.fill(255, 1, 5); d[5 + rand() % (d.length - 5)] ^= 1 << (rand() % 8); inputs.push(d);
                const t = b.slice(0, 5 + rand() % (b.length - 5)); t.fill(255, 1, 5); inputs.push(t);
              }
            }
            for (let k = 0; k < 3000; k++) {
              const c = new Uint8Array(rand() % 64);
              for (let i = 0; i < c.length; i++) c[i] = rand() & 255;
              if (c.length > 5 && k % 2) { c[0] = valid[0][0]; c.fill(255, 1, 5); } // past the version and checksum
              inputs.push(c);
            }
            // A 200-character string whose length (leb128 of 400) is made
            // 2^29 characters (2^30): far past the 64 MiB limit.
            s.sendValue("x".repeat(200));
            const str = r.recv().bytes();
            const at = str.findIndex((b, i) => b === 0x90 && str[i + 1] === 0x03);
            const huge = new Uint8Array([...str.slice(0, at), 0x80, 0x80, 0x80, 0x80, 0x04, ...str.slice(at + 2)]);
            huge.fill(255, 1, 5);
            inputs.push(huge);
            let values = 0, errors = 0;
            for (const bytes of inputs) {
              s.send(bytes);
              try { r.recvValue(); values++; }
              catch (e) {
                if (e.name === "DataCloneError") errors++;
                else throw new Error(`not a DataCloneError: ${e.name}: ${e.message}`);
              }
            }
            s.send(huge);
            try { r.recvValue(); } catch (e) { console.log(e.name, e.message); }
            s.sendValue({ still: "works" });
            console.log(r.recvValue().still, values + errors === inputs.length, errors > inputs.length / 2);
            "#,
        ))
        .unwrap(),
    );
    assert_eq!(
        r.stdout_text(),
        "DataCloneError recvValue: the message is not a structured value (read after the end of the buffer)\n\
         works true true\n"
    );
}

/// The same from the host: random bytes sent by Rust, read as values.
#[test]
fn random_bytes_from_the_host_are_data_clone_errors() {
    let host = host();
    let (rx, tx) = host.create_channel(64);
    let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for _ in 0..64 {
        let len = (next() % 200) as usize;
        let bytes: Vec<u8> = (0..len).map(|_| next() as u8).collect();
        tx.send(Bytes::from(bytes)).unwrap();
    }
    tx.close();
    let r = completed(
        js(&host)
            .run(
                Run::js(
                    r#"
                    let n = 0;
                    for (;;) {
                      try { channels.rx.recvValue(); }
                      catch (e) {
                        if (e.name === "ChannelClosedError") break;
                        if (e.name !== "DataCloneError") throw e;
                      }
                      n++;
                    }
                    console.log(n);
                    "#,
                )
                .channel("rx", rx),
            )
            .unwrap(),
    );
    assert_eq!(r.stdout_text(), "64\n");
}

#[test]
fn the_command_line_runs_the_loop_and_ends_an_endless_interval_at_its_timeout() {
    let out = crate::common::subinterp()
        .args([
            "run",
            "-e",
            "setTimeout(() => console.log('later'), 5); console.log('now')",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "now\nlater\n");

    let out = crate::common::subinterp()
        .args([
            "run",
            "--json",
            "--timeout",
            "200ms",
            "-e",
            "setInterval(() => console.log('tick'), 30)",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(125), "a limit, not a guest error");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["error"]["kind"], "timeout");
    assert!(v["stdout"].as_str().unwrap().starts_with("tick\n"));

    let script = r#"
        const [r, s] = interpreters.createChannel(1);
        const child = interpreters.create();
        const job = child.start("channels.s.sendValue({ when: new Date(0), ids: new Set([1, 2]) })",
                                { channels: { s } });
        r.recvValueAsync().then((v) => {
          job.join().check();
          console.log(v.when.toISOString(), [...v.ids].join("+"));
        });
    "#;
    let out = crate::common::subinterp()
        .args(["run", "-e", script])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "1970-01-01T00:00:00.000Z 1+2\n"
    );
}

/// Both sides awaiting on rendezvous channels (capacity 0): a waiting
/// `recvAsync` counts as a waiting receiver, so a `sendAsync` can hand over.
#[test]
fn async_sends_and_receives_meet_on_rendezvous_channels() {
    let host = host();
    let r = ok(
        &host,
        r#"
        const [r, s] = interpreters.createChannel(0);
        const [backRx, back] = interpreters.createChannel(0);
        const child = interpreters.create();
        const job = child.start(`(async () => {
          for (let i = 0; i < 3; i++) {
            const m = await channels.r.recvAsync();
            await channels.back.sendAsync(m.text() + "!");
          }
        })()`, { channels: { r, back } });
        (async () => {
          const got = [];
          for (const w of ["a", "b", "c"]) {
            await s.sendAsync(w);
            got.push((await backRx.recvAsync()).text());
          }
          job.join().check();
          console.log(got.join(" "));
        })();
        "#,
    );
    assert_eq!(r.stdout_text(), "a! b! c!\n");
}
