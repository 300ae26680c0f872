//! JavaScript interpreters: the PEP 554 API inside scripts, from Rust and
//! from scripts, and real JavaScript written elsewhere (QuickJS-ng's tests).

use std::time::Duration;

use bytes::Bytes;
use subinterp::{ErrorKind, Host, Interpreter, Limits, Run, RunResult};

use crate::common::host;

fn js(host: &Host) -> Interpreter {
    host.create_js(Limits::new().with_timeout(Duration::from_secs(60)))
        .expect("JS interpreter")
}

/// Runs `src` in a fresh JS interpreter and insists it completed.
fn ok(host: &Host, src: &str) -> RunResult {
    crate::common::completed(js(host).run(Run::js(src)).expect("run"))
}

#[test]
fn runs_source_and_keeps_state_between_runs() {
    let host = host();
    let w = js(&host);
    let r = w
        .run(Run::js("globalThis.n = 40; console.log('hi', 1 + 1)"))
        .unwrap();
    assert!(r.completed);
    assert_eq!(r.stdout_text(), "hi 2\n");
    let r = w
        .run(Run::js("n += 2; console.log(n); console.error('e')"))
        .unwrap();
    assert_eq!(r.stdout_text(), "42\n");
    assert_eq!(r.stderr_text(), "e\n");
}

#[test]
fn js_interpreters_start_from_a_snapshot_yet_differ() {
    let host = host();
    assert!(host.js().unwrap().is_preinitialized());
    let a = ok(
        &host,
        "console.log(Math.random(), performance.now() < 1000)",
    );
    let b = ok(
        &host,
        "console.log(Math.random(), performance.now() < 1000)",
    );
    assert_ne!(
        a.stdout_text(),
        b.stdout_text(),
        "each gets its own random seed"
    );
    assert!(a.stdout_text().ends_with("true\n"), "a fresh time origin");
}

#[test]
fn es2023_features_and_promise_jobs_run_to_completion() {
    let host = host();
    let r = ok(
        &host,
        r#"
        class A { #x = 1; get x() { return this.#x } static s = 2 }
        function* g() { yield 1; yield 2 }
        let out = [];
        (async () => { await null; out.push("async") })();
        Promise.resolve(3).then(v => out.push(v));
        const big = 2n ** 64n;
        const re = /(?<y>\d{4})-(?<m>\d\d)/u.exec("on 2026-11");
        console.log(new A().x, A.s, [...g()].join(","), big.toString(),
                    re.groups.y, [3,1,2].toSorted().at(-1), Object.hasOwn({a:1}, "a"),
                    JSON.stringify({k: [1, "é"]}), new Float64Array([1.5])[0]);
        queueMicrotask(() => console.log(out.join(",")));
    "#,
    );
    assert_eq!(
        r.stdout_text(),
        "1 2 1,2 18446744073709551616 2026 3 true {\"k\":[1,\"é\"]} 1.5\nasync,3\n"
    );
}

#[test]
fn modules_import_modules_evaluated_earlier() {
    let host = host();
    let w = js(&host);
    let r = w
        .run(Run::js_module(
            "util.js",
            "export const twice = (x) => 2 * x;",
        ))
        .unwrap();
    assert!(r.completed, "{:?}", r.error);
    let r = w
        .run(Run::js_module(
            "main.js",
            "import { twice } from './util.js'; await null; console.log(twice(21));",
        ))
        .unwrap();
    assert!(r.completed, "{:?}", r.error);
    assert_eq!(r.stdout_text(), "42\n");
    let r = w
        .run(Run::js_module("bad.js", "import * as std from 'qjs:std';"))
        .unwrap();
    let e = r.error.unwrap();
    assert_eq!(e.kind.type_name(), "ReferenceError");
    assert!(e.message.contains("qjs:std"), "{}", e.message);
}

#[test]
fn uncaught_errors_reach_the_host_with_type_message_and_stack() {
    let host = host();
    let w = js(&host);
    let cases = [
        ("function f() { null.x }\nf()", "TypeError", "null", true),
        ("throw 'a string'", "ThrownValue", "a string", false),
        (
            "Promise.reject(new RangeError('nope'))",
            "UnhandledRejection",
            "unhandled promise rejection: nope",
            true,
        ),
        (
            "(async () => { await 1; throw new SyntaxError('late') })()",
            "SyntaxError",
            "late",
            true,
        ),
        ("let x = ;", "SyntaxError", "unexpected token", true),
    ];
    for (src, ty, msg, has_stack) in cases {
        let r = w.run(Run::js(src)).unwrap();
        assert!(!r.completed, "{src}");
        let e = r.error.clone().unwrap();
        let want = if ty == "UnhandledRejection" {
            "RangeError"
        } else {
            ty
        };
        assert_eq!(e.kind.type_name(), want, "{src}: {e:?}");
        assert!(matches!(e.kind, ErrorKind::Exception { .. }));
        assert!(e.message.contains(msg), "{src}: {}", e.message);
        assert_eq!(e.backtrace.is_some(), has_stack, "{src}: {e:?}");
        assert!(r.check().is_err());
    }
    // The interpreter is still usable after all of those.
    assert!(w.run(Run::js("1")).unwrap().completed);
}

#[test]
fn non_ascii_text_round_trips_between_host_and_script() {
    let host = host();
    let (to_js, from_host) = host.create_channel(4);
    let (back, to_host) = host.create_channel(4);
    let text = "héllo wörld — 日本語 🎉";
    from_host.send(Bytes::from(text)).unwrap();
    let r = js(&host)
        .run(
            Run::js(
                r#"
            const t = channels.inbox.recv().text();
            if (t !== "héllo wörld — 日本語 🎉") throw new Error("got " + t);
            channels.outbox.send(t + " ✓");
            channels.outbox.send(String(t.length));
            "#,
            )
            .channel("inbox", to_js)
            .channel("outbox", to_host),
        )
        .unwrap();
    assert!(r.completed, "{:?}", r.error);
    let got = back.recv().unwrap().into_view().unwrap();
    assert_eq!(std::str::from_utf8(&got).unwrap(), format!("{text} ✓"));
    let n = back.recv().unwrap().into_view().unwrap();
    assert_eq!(&*n, text.encode_utf16().count().to_string().as_bytes());
}

#[test]
fn typed_arrays_and_dataview_slices_send_exactly_their_bytes() {
    let host = host();
    let (rx, tx) = host.create_channel(16);
    let r = js(&host)
        .run(
            Run::js(
                r#"
            const out = channels.out;
            const u8 = new Uint8Array([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
            out.send(u8.subarray(2, 5));                       // 2 3 4
            out.send(new DataView(u8.buffer, 6, 3));           // 6 7 8
            out.send(u8.buffer.slice(8));                      // 8 9
            out.send(new Int16Array([1, -1]).subarray(1));     // ff ff
            const f = new Float64Array([0, 1.5]);
            out.send(f.subarray(1));                           // 1.5 little-endian
            out.send(new Uint8Array(0));                       // empty
            out.send(u8);                                      // all ten
            "#,
            )
            .channel("out", tx),
        )
        .unwrap();
    assert!(r.completed, "{:?}", r.error);
    let mut got = Vec::new();
    while let Ok(m) = rx.recv_nowait() {
        got.push(m.into_view().unwrap().to_vec());
    }
    let want: Vec<Vec<u8>> = vec![
        vec![2, 3, 4],
        vec![6, 7, 8],
        vec![8, 9],
        vec![0xff, 0xff],
        1.5f64.to_le_bytes().to_vec(),
        vec![],
        (0..10).collect(),
    ];
    assert_eq!(got, want);
}

#[test]
fn invalid_utf8_in_text_is_a_type_error() {
    let host = host();
    let (rx, tx) = host.create_channel(2);
    tx.send(Bytes::from_static(b"ok \xff\xfe")).unwrap();
    tx.send(Bytes::from_static(b"\xe6\x97")).unwrap(); // truncated sequence
    let r = js(&host)
        .run(
            Run::js(
                r#"
            for (let i = 0; i < 2; i++) {
              const v = channels.inbox.recv();
              try { v.text(); throw new Error("decoded invalid UTF-8"); }
              catch (e) { if (!(e instanceof TypeError)) throw e; }
              if (v.bytes().length !== [5, 2][i]) throw new Error("bytes()");
            }
            "#,
            )
            .channel("inbox", rx),
        )
        .unwrap();
    assert!(r.completed, "{:?}", r.error);
}

#[test]
fn every_error_name_comes_from_the_case_that_should_produce_it() {
    let host = host();
    ok(
        &host,
        r#"
        const I = interpreters;
        function expect(name, f) {
          try { f(); } catch (e) {
            if (e.name !== name || !(e instanceof I[name]) || !(e instanceof Error))
              throw new Error(`wanted ${name}, got ${e.name}: ${e.message}`);
            return;
          }
          throw new Error(`wanted ${name}, nothing was thrown`);
        }
        let [r, s] = I.createChannel(1);
        expect("ChannelEmptyError", () => r.recvNowait());
        if (r.recvNowait("dflt") !== "dflt") throw new Error("default");
        expect("ChannelEmptyError", () => r.recv({ timeout: 0 }));
        expect("TimeoutError", () => r.recv({ timeout: 20 }));
        s.send("a");
        if (s.sendNowait("b") !== false) throw new Error("sendNowait on a full channel");
        expect("ChannelFullError", () => s.send("b", { timeout: 0 }));
        expect("TimeoutError", () => s.send("b", { timeout: 20 }));
        s.close();
        expect("ChannelClosedError", () => s.send("c"));
        if (r.recv().text() !== "a") throw new Error("queued message lost by close");
        expect("ChannelClosedError", () => r.recv());
        r.release();
        expect("ChannelReleasedError", () => r.recv());
        const v = (() => { const [r2, s2] = I.createChannel(1); s2.send("x"); return r2.recv(); })();
        v.release();
        expect("ChannelReleasedError", () => v.text());
        const w = I.create();
        w.close();
        w.close(); // twice is fine
        expect("InterpreterClosedError", () => w.run("1"));
        const few = I.create({ maxInterpreters: 1 });
        const lim = few.run(`
          interpreters.create();
          let e;
          try { interpreters.create(); } catch (x) { e = x; }
          if (!(e instanceof interpreters.LimitError)) throw new Error("no LimitError: " + e);
        `);
        lim.check();
        "#,
    );
}

#[test]
fn child_errors_come_back_as_results_and_check_rethrows() {
    let host = host();
    ok(
        &host,
        r#"
        const w = interpreters.create();
        const cases = [
          ["null.x", "TypeError"],
          ["throw 'str'", "ThrownValue"],
          ["Promise.reject(new URIError('u'))", "URIError"],
          ["throw new interpreters.TimeoutError('t')", "TimeoutError"],
        ];
        for (const [src, type] of cases) {
          const r = w.run(src);
          if (r.completed || r.error.type !== type || typeof r.error.message !== "string" ||
              typeof r.error.stack !== "string")
            throw new Error(`${src}: ${JSON.stringify(r)}`);
          let thrown;
          try { r.check(); } catch (e) { thrown = e; }
          if (!thrown || thrown.name !== type || thrown.message !== r.error.message)
            throw new Error(`check() of ${src} threw ${thrown}`);
        }
        const st = w.run("function deep() { null.y }\ndeep()");
        if (!st.error.stack.includes("deep")) throw new Error("no stack: " + st.error.stack);
        const job = w.start("throw new RangeError('in a job')");
        const jr = job.join();
        if (jr.completed || jr.error.type !== "RangeError") throw new Error(JSON.stringify(jr));
        if (!w.run("1 + 1").completed) throw new Error("child unusable after errors");
        "#,
    );
}

#[test]
fn ping_pong_10k_messages_between_two_js_interpreters() {
    let host = host();
    let r = ok(
        &host,
        r#"
        const [pingR, pingS] = interpreters.createChannel(1);
        const [pongR, pongS] = interpreters.createChannel(1);
        const w = interpreters.create();
        const job = w.start(`
          const { ping, pong } = channels;
          for (;;) {
            let v;
            try { v = ping.recv(); } catch (e) { if (e.name === "ChannelClosedError") break; throw e; }
            const t = v.text();
            pong.send(t.split("").reverse().join(""));
          }
        `, { channels: { ping: pingR, pong: pongS } });
        const N = 10000;
        for (let i = 0; i < N; i++) {
          const msg = `message ${i} ${(i * 2654435761) % 1000003}`;
          pingS.send(msg);
          const back = pongR.recv().text();
          if (back !== msg.split("").reverse().join("")) throw new Error(`corrupt at ${i}: ${back}`);
        }
        pingS.close();
        job.join().check();
        console.log("pongs", N);
        "#,
    );
    assert_eq!(r.stdout_text(), "pongs 10000\n");
}

#[test]
fn four_stage_pipeline_forwards_views_without_copies() {
    let host = host();
    let size = 4 << 20;
    let mut chans = Vec::new();
    for _ in 0..5 {
        chans.push(host.create_channel(2));
    }
    let before = host.counters();
    // Stage 0 makes the data and sends it (the one copy out); stages 1-3
    // forward the view; the host reads the result of stage 3's check.
    let make = format!(
        "const a = new Uint8Array({size}); for (let i = 0; i < a.length; i++) a[i] = (i * 7) & 255;\n\
         channels.out.send(a);"
    );
    let forward = "channels.out.send(channels.inbox.recv());";
    let mut jobs = Vec::new();
    let stages = [make.as_str(), forward, forward, forward];
    for (i, src) in stages.iter().enumerate() {
        let w = js(&host);
        let mut run = Run::js(*src).channel("out", chans[i + 1].1.clone());
        if i > 0 {
            run = run.channel("inbox", chans[i].0.clone());
        }
        jobs.push(w.start(run));
    }
    for j in jobs {
        let r = j.join().unwrap();
        assert!(r.completed, "{:?}", r.error);
    }
    let mid = host.counters();
    assert_eq!(mid.bytes_copied_out - before.bytes_copied_out, size as u64);
    assert_eq!(mid.buffers_forwarded - before.buffers_forwarded, 3);
    assert_eq!(
        mid.bytes_copied_in, before.bytes_copied_in,
        "nobody read yet"
    );
    // The last reader is a JS interpreter too: one copy in, of the whole view.
    let r = js(&host)
        .run(
            Run::js(
                "const b = channels.inbox.recv().bytes(); let ok = b.length === SIZE;\n\
                 for (let i = 0; ok && i < b.length; i += 4093) ok = b[i] === ((i * 7) & 255);\n\
                 if (!ok) throw new Error('corrupt');"
                    .replace("SIZE", &size.to_string()),
            )
            .channel("inbox", chans[4].0.clone()),
        )
        .unwrap();
    assert!(r.completed, "{:?}", r.error);
    let end = host.counters();
    assert_eq!(end.bytes_copied_in - mid.bytes_copied_in, size as u64);
    assert_eq!(end.bytes_copied_out, mid.bytes_copied_out);
}

#[test]
fn fan_out_to_workers_and_fan_in_results() {
    let host = host();
    let r = ok(
        &host,
        r#"
        const N = 4, TASKS = 200;
        const [taskR, taskS] = interpreters.createChannel(8);
        const [doneR, doneS] = interpreters.createChannel(8);
        const jobs = [];
        for (let i = 0; i < N; i++) {
          const w = interpreters.create();
          jobs.push(w.start(`
            let n = 0;
            for (;;) {
              let t;
              try { t = channels.tasks.recv(); } catch (e) { if (e.name === "ChannelClosedError") break; throw e; }
              const k = Number(t.text());
              channels.done.send(JSON.stringify({ k, sq: k * k, by: interpreters.current().id }));
              n++;
            }
          `, { channels: { tasks: taskR, done: doneS } }));
        }
        let sum = 0, got = 0;
        const seen = new Set(), workers = new Set();
        let sent = 0;
        while (got < TASKS) {
          while (sent < TASKS && taskS.sendNowait(String(sent))) sent++;
          const m = doneR.recvNowait(null);
          if (m === null) { if (sent < TASKS) continue; }
          const r = JSON.parse((m || doneR.recv()).text());
          if (seen.has(r.k)) throw new Error("duplicate " + r.k);
          seen.add(r.k); workers.add(r.by); sum += r.sq; got++;
        }
        taskS.close();
        for (const j of jobs) j.join().check();
        let want = 0; for (let k = 0; k < TASKS; k++) want += k * k;
        if (sum !== want) throw new Error(`sum ${sum} != ${want}`);
        console.log("ok", got, workers.size > 0);
        "#,
    );
    assert_eq!(r.stdout_text(), "ok 200 true\n");
}

#[test]
fn channel_ends_can_be_sent_over_channels_and_shared() {
    let host = host();
    ok(
        &host,
        r#"
        const [r, s] = interpreters.createChannel(4);
        const [cr, cs] = interpreters.createChannel(4);
        cs.send(s);                      // an end sent over a channel
        const s2 = cr.recv();
        if (!(s2 instanceof interpreters.SendChannel)) throw new Error("not an end: " + s2);
        s2.send("via a sent end");
        s.send("still usable by the one that passed it");
        const w = interpreters.create();
        w.run("channels.out.send('from the child')", { channels: { out: s } }).check();
        const got = [r.recv().text(), r.recv().text(), r.recv().text()];
        if (got.join("|") !== "via a sent end|still usable by the one that passed it|from the child")
          throw new Error(got.join("|"));
        "#,
    );
}

#[test]
fn interpreters_api_lists_current_main_and_status() {
    let host = host();
    let main = js(&host);
    let r = main
        .run(Run::js(
            r#"
        const me = interpreters.current();
        const w = interpreters.create();
        const ids = interpreters.list().map(i => i.id);
        if (!ids.includes(me.id) || !ids.includes(w.id)) throw new Error("list " + ids);
        if (interpreters.main().id !== 0) throw new Error("main " + interpreters.main().id);
        if (!interpreters.main().isRunning()) throw new Error("main is the host, always running");
        if (!me.isRunning() || w.isRunning()) throw new Error("isRunning");
        const [r, s] = interpreters.createChannel(0);
        const job = w.start("channels.r.recv()", { channels: { r } });
        while (!w.isRunning()) {}
        s.send("go");
        job.join().check();
        w.close();
        if (interpreters.list().some(i => i.id === w.id)) throw new Error("closed still listed");
        console.log(me.id);
        "#,
        ))
        .unwrap();
    assert!(r.completed, "{:?}", r.error);
    assert_eq!(r.stdout_text().trim(), main.id().0.to_string());
}

#[test]
fn a_child_never_gets_limits_above_its_creator() {
    let host = host();
    let parent = host
        .create_js(
            Limits::new()
                .with_max_memory(64 << 20)
                .with_timeout(Duration::from_secs(20))
                .with_max_handles(100),
        )
        .unwrap();
    let r = parent
        .run(Run::js(
            r#"
        globalThis.w = interpreters.create({ maxMemory: 1 << 30, timeout: 600000, maxHandles: 100000,
                                             maxInterpreters: 1000, maxDepth: 100 });
        console.log(w.id);
        "#,
        ))
        .unwrap();
    assert!(r.completed, "{:?}", r.error);
    let child: u64 = r.stdout_text().trim().parse().unwrap();
    let limits = host.get(subinterp::InterpreterId(child)).unwrap().limits();
    assert_eq!(limits.max_memory(), 64 << 20);
    assert_eq!(limits.timeout(), Some(Duration::from_secs(20)));
    assert_eq!(limits.max_handles(), 100);
    assert_eq!(limits.max_interpreters(), 63);
    assert_eq!(limits.max_depth(), 3);
    // And the child really is held to its creator's memory.
    let r = parent
        .run(Run::js(
            r#"
        const r = w.run("const keep = []; for (;;) keep.push(new Uint8Array(1 << 20));");
        if (r.completed || r.error.type !== "LimitError" || r.error.kind !== "memory_limit")
          throw new Error(JSON.stringify(r));
        // The tree shares one memory budget: with w holding most of it, a
        // new child does not fit until w is closed.
        let e; try { interpreters.create(); } catch (x) { e = x; }
        if (!(e instanceof interpreters.LimitError)) throw new Error("created: " + e);
        w.close();
        "#,
        ))
        .unwrap();
    assert!(r.completed, "{:?}", r.error);
    // Asking for less is granted.
    let r = parent
        .run(Run::js(
            "console.log(interpreters.create({ maxMemory: 16 << 20 }).id)",
        ))
        .unwrap();
    let child: u64 = r.stdout_text().trim().parse().unwrap();
    let limits = host.get(subinterp::InterpreterId(child)).unwrap().limits();
    assert_eq!(limits.max_memory(), 16 << 20);
}

#[test]
fn closing_a_parent_closes_its_children() {
    let host = host();
    let parent = js(&host);
    let r = parent
        .run(Run::js(
            "console.log(interpreters.create().id, interpreters.create().id)",
        ))
        .unwrap();
    let ids: Vec<u64> = r
        .stdout_text()
        .split_whitespace()
        .map(|s| s.parse().unwrap())
        .collect();
    for &id in &ids {
        assert!(host.get(subinterp::InterpreterId(id)).is_some());
    }
    parent.close();
    for &id in &ids {
        assert!(host.get(subinterp::InterpreterId(id)).is_none(), "{id}");
    }
}

#[test]
fn a_script_cannot_drive_interpreters_it_did_not_create() {
    let host = host();
    let other = js(&host);
    let r = js(&host)
        .run(Run::js(format!(
            r#"
        // Another tenant's interpreter is not listed, and naming its id
        // reaches nothing: it looks closed.
        if (interpreters.list().some(i => i.id === {0})) throw new Error("listed");
        const o = new interpreters.Interpreter({0});
        if (o.isRunning()) throw new Error("status leaked");
        for (const f of [() => o.run("1"), () => o.start("1")]) {{
          let e; try {{ f(); }} catch (x) {{ e = x; }}
          if (!(e instanceof interpreters.InterpreterClosedError)) throw new Error("allowed: " + e);
        }}
        o.close();
        "#,
            other.id().0
        )))
        .unwrap();
    assert!(r.completed, "{:?}", r.error);
    assert!(!other.is_closed());
}

#[test]
fn deep_recursion_is_a_catchable_range_error() {
    let host = host();
    let r = ok(
        &host,
        "let d = 0; try { (function f() { d++; f(); })(); } catch (e) { console.log(e.name, d > 1000); }",
    );
    assert_eq!(r.stdout_text(), "RangeError true\n");
}

/// Where cargo put the QuickJS-ng sources (`make guest` records it).
fn quickjs_tests_dir() -> std::path::PathBuf {
    let rec = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/guest/js/qjs-dir");
    let dir = std::fs::read_to_string(&rec).expect("target/guest/js/qjs-dir: run `make guest`");
    std::path::PathBuf::from(dir.trim()).join("tests")
}

/// Why a QuickJS-ng test file is left out, if it is.
fn left_out(name: &str, src: &str) -> Option<String> {
    if name == "assert.js" || name == "empty.js" || name.starts_with("fixture_") {
        return Some("a fixture other tests import, not a test".into());
    }
    let mut others: Vec<String> = Vec::new();
    for quote in ['"', '\''] {
        for part in src.split(quote).skip(1).step_by(2) {
            let is_spec = part.starts_with("qjs:") || part.starts_with("./");
            if is_spec
                && part != "./assert.js"
                && (part.ends_with(".js") || part.starts_with("qjs:") || part.ends_with(".json"))
            {
                others.push(part.to_string());
            }
        }
    }
    // Only count specifiers that are really imported.
    others.retain(|spec| {
        src.contains(&format!("from \"{spec}\""))
            || src.contains(&format!("from '{spec}'"))
            || src.contains(&format!("import(\"{spec}\""))
            || src.contains(&format!("import('{spec}'"))
            || src.contains(&format!("import \"{spec}\""))
    });
    others.sort();
    others.dedup();
    if let Some(m) = others.iter().find(|s| s.starts_with("qjs:")) {
        return Some(format!(
            "imports {m}, a qjs host module subinterp does not provide"
        ));
    }
    if !others.is_empty() {
        return Some(format!(
            "imports module fixtures ({}) that need a module loader",
            others.join(", ")
        ));
    }
    if src.contains("gc()") {
        return Some("calls qjs's gc() global".into());
    }
    if src.contains("Atomics.") {
        return Some(
            "uses Atomics, which QuickJS-ng leaves out of its WASI build (no threads)".into(),
        );
    }
    None
}

/// QuickJS-ng's own tests, from the pinned crate's sources, run inside
/// subinterp JS interpreters: each as an ES module after `assert.js`, with
/// qjs's `print` as the only shim. Files marked `negative` must fail with
/// the error type they name.
#[test]
fn quickjs_ng_test_files_pass_inside_subinterp() {
    let dir = quickjs_tests_dir();
    let assert_src = std::fs::read_to_string(dir.join("assert.js")).unwrap();
    let host = host();
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.ends_with(".js"))
        .collect();
    names.sort();
    let (mut ran, mut skipped, mut failed) = (Vec::new(), Vec::new(), Vec::new());
    for name in &names {
        let src = std::fs::read_to_string(dir.join(name)).unwrap();
        if let Some(why) = left_out(name, &src) {
            skipped.push(format!("{name}: {why}"));
            continue;
        }
        // `negative: ... type: RangeError` in the test's front matter.
        let negative = src
            .find("negative:")
            .and_then(|i| src[i..].find("type:").map(|j| i + j + 5))
            .map(|i| src[i..].split_whitespace().next().unwrap_or("").to_string());
        let w = js(&host);
        w.run(Run::js("globalThis.print = (...a) => console.log(...a);"))
            .unwrap()
            .check()
            .unwrap();
        w.run(Run::js_module("assert.js", assert_src.as_str()))
            .unwrap()
            .check()
            .unwrap();
        // As qjs does: a file with import/export is a module, else a script.
        let is_module = src
            .lines()
            .any(|l| l.starts_with("import ") || l.starts_with("export "));
        let run = if is_module {
            Run::js_module(name.as_str(), src)
        } else {
            Run::js(src)
        };
        let r = w.run(run).unwrap();
        let verdict = match (&negative, &r.error) {
            (None, None) => Ok(()),
            (Some(t), Some(e)) if e.kind.type_name() == t => Ok(()),
            (Some(t), None) => Err(format!("expected {t}, completed")),
            (_, Some(e)) => Err(format!("{}: {}", e.kind.type_name(), e.message)),
        };
        match verdict {
            Ok(()) => ran.push(name.clone()),
            Err(e) => failed.push(format!("{name}: {e}")),
        }
        w.close();
    }
    eprintln!(
        "quickjs-ng tests: {} passed, {} left out:\n  {}",
        ran.len(),
        skipped.len(),
        skipped.join("\n  ")
    );
    assert!(failed.is_empty(), "failed:\n  {}", failed.join("\n  "));
    assert!(ran.len() >= 50, "only {} ran", ran.len());
}

#[test]
fn channels_global_is_there_with_or_without_bindings() {
    let host = host();
    let w = js(&host);
    let check = |src: &str, run: Run| {
        let r = w.run(run).unwrap();
        assert!(r.completed, "{src}: {:?}", r.error);
    };
    let empty = "if (typeof channels !== 'object' || Object.keys(channels).length !== 0 \
                 || !Object.isFrozen(channels)) throw new Error('channels: ' + channels)";
    check(empty, Run::js(empty));
    let (_rx, tx) = host.create_channel(1);
    let bound =
        "if (!(channels.out instanceof interpreters.SendChannel)) throw new Error('unbound')";
    check(bound, Run::js(bound).channel("out", tx));
    // A name bound by an earlier run stays bound.
    check(bound, Run::js(bound));
}

#[test]
fn internal_helpers_are_not_on_the_global_object() {
    let host = host();
    let r = ok(
        &host,
        "console.log(Object.getOwnPropertyNames(globalThis).filter((n) => n.startsWith('__')).length)",
    );
    assert_eq!(r.stdout_text(), "0\n");
}

#[test]
fn web_standard_globals_encode_decode_clone_and_random() {
    let host = host();
    let r = ok(&host, include_str!("web_globals.js"));
    assert_eq!(
        r.stdout_text(),
        "[104,195,169,239,191,189,33] héllo €\n\
         \"a\u{fffd}\u{fffd}b\"\n\
         TypeError\n\
         hi €é\n\
         aGVsbG8= hello 3\n\
         36 4 4\n\
         0 true 10n 2\n\
         DataCloneError\n\
         number true\n\
         sync\nmicro\n"
    );
}

/// recv, send and release run in C for their common case and fall back on
/// the prelude's methods for everything else: both give the same answers.
#[test]
fn the_message_path_in_c_and_its_fallbacks_agree() {
    let host = host();
    let r = ok(
        &host,
        "const out = [];\n\
         const [r, s] = interpreters.createChannel(8);\n\
         s.send('text'); s.send(new Uint8Array([1, 2])); s.send(new Uint16Array([3]).buffer);\n\
         s.send('late', { timeout: 10 });\n\
         const [r2, s2] = interpreters.createChannel(1);\n\
         s.send(r2);\n\
         out.push(r.recv().text(), r.recv().bytes().join(), r.recv().length, r.recv({ timeout: 10 }).text());\n\
         const end = r.recv();\n\
         out.push(end instanceof interpreters.RecvChannel || String(end));\n\
         s2.send('via'); out.push(end.recv().text());\n\
         const v = (s.send('x'), r.recv());\n\
         v.release(); v.release();\n\
         try { v.bytes(); } catch (e) { out.push(e.name); }\n\
         s.close();\n\
         try { r.recv(); } catch (e) { out.push(e.name); }\n\
         r.release();\n\
         try { r.recv(); } catch (e) { out.push(e.name); }\n\
         try { s.send('y'); } catch (e) { out.push(e.name); }\n\
         try { interpreters.RecvChannel.prototype.recv.call({}); } catch (e) { out.push(e.name); }\n\
         try { interpreters.SendChannel.prototype.send.call({}, 'x'); } catch (e) { out.push(e.name); }\n\
         console.log(JSON.stringify(out));",
    );
    assert_eq!(
        r.stdout_text().trim(),
        r#"["text","1,2",2,"late",true,"via","ChannelReleasedError","ChannelClosedError","ChannelReleasedError","ChannelClosedError","ChannelReleasedError","ChannelReleasedError"]"#
    );
}

/// A received View is made in C with the shape of a template (the object
/// and its handle property in one step): it is still an ordinary View, and
/// what a script does to one never shows on the next.
#[test]
fn received_views_are_ordinary_objects_of_their_own() {
    let host = host();
    let r = ok(
        &host,
        "const { View } = interpreters;\n\
         const [r, s] = interpreters.createChannel(8);\n\
         for (const m of ['a', 'bb', 'ccc', 'dddd']) s.send(m);\n\
         const a = r.recv();\n\
         a.tag = 1;\n\
         Object.defineProperty(a, 'text', { value: () => 'mine' });\n\
         const b = r.recv();\n\
         const keys = (v) => Reflect.ownKeys(v).map(String).join();\n\
         const out = [a.text(), a.tag, b.text(), 'tag' in b, keys(b), b instanceof View,\n\
                      Object.getPrototypeOf(b) === View.prototype, Object.isExtensible(b)];\n\
         delete b[Object.getOwnPropertySymbols(b)[0]];\n\
         try { b.length; } catch (e) { out.push(e.name); }\n\
         const c = r.recv();\n\
         out.push(c.length, keys(c), keys(a));\n\
         c.release();\n\
         try { c.text(); } catch (e) { out.push(e.name); }\n\
         out.push(r.recv().text());\n\
         console.log(JSON.stringify(out));",
    );
    assert_eq!(
        r.stdout_text().trim(),
        r#"["mine",1,"bb",false,"Symbol(handle)",true,true,true,"ChannelReleasedError",3,"Symbol(handle)","tag,text,Symbol(handle)","ChannelReleasedError","dddd"]"#
    );
}
