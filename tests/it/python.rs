//! The Python guest (target/guest/python.wasm, CPython 3.13 with its stdlib
//! frozen in) through the library's language driver: `Host::python`,
//! `Run::python`, errors, exits and limits.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use subinterp::{Error, ErrorKind, Host, Interpreter, Language, Limits, Run};

/// One host for the Python tests: loading the guest the first time compiles
/// and snapshots it (tens of seconds on a loaded machine; cached after).
fn host() -> &'static Host {
    static HOST: OnceLock<Host> = OnceLock::new();
    HOST.get_or_init(|| {
        let host = Host::builder().pool_size(32).build().expect("host");
        let t = Instant::now();
        let py = host.python().expect("make guest builds python.wasm");
        println!(
            "figures: python guest loaded in {:?} (preinitialized {})",
            t.elapsed(),
            py.is_preinitialized()
        );
        host
    })
}

fn python(limits: Limits) -> Interpreter {
    host().create_python(limits).expect("python interpreter")
}

fn limits() -> Limits {
    Limits::new()
        .with_timeout(Duration::from_secs(60))
        .with_max_memory(256 << 20)
}

#[test]
fn the_python_guest_is_cached_in_the_hosts_cache_folder() {
    let py = host().python().unwrap();
    let dir = host().cache_dir().expect("a cache folder");
    let file = py
        .cache_file()
        .expect("written to, or loaded from, the cache");
    assert!(
        file.starts_with(dir),
        "{} not in {}",
        file.display(),
        dir.display()
    );
    let name = file.file_name().unwrap().to_string_lossy();
    assert!(name.starts_with("python.snap."), "{name}");
}

#[test]
fn python_runs_source_and_keeps_its_globals() {
    let w = python(limits());
    assert_eq!(w.language(), Some(Language::Python));
    let r = w.run(Run::python("x = 20\nprint(x + 22)")).expect("run");
    assert!(r.completed, "{:?} {}", r.error, r.stderr_text());
    assert_eq!(r.stdout_text(), "42\n");
    let r = w.run(Run::python("print(x * 2)")).expect("run");
    assert_eq!(r.stdout_text(), "40\n", "globals persist between runs");
}

#[test]
fn the_stdlib_modules_the_issue_names_import_without_a_grant() {
    let w = python(limits());
    let r = w
        .run(Run::python(
            "import json, re, math, decimal, datetime, collections, itertools, functools\n\
             import dataclasses, typing, statistics, fractions, heapq, bisect, struct, base64\n\
             import hashlib, random, textwrap, string, io, csv, unicodedata, zlib, sqlite3\n\
             db = sqlite3.connect(':memory:')\n\
             db.execute('create table t (x)')\n\
             db.executemany('insert into t values (?)', [(i,) for i in range(10)])\n\
             print(json.dumps({'sum': db.execute('select sum(x) from t').fetchone()[0],\n\
                               'dec': str(decimal.Decimal('1.1') + decimal.Decimal('2.2')),\n\
                               'frac': str(fractions.Fraction(1, 3) * 3),\n\
                               'zlib': len(zlib.decompress(zlib.compress(b'ab' * 1000))),\n\
                               'sha': hashlib.sha256(b'abc').hexdigest()[:8]}, sort_keys=True))",
        ))
        .expect("run");
    assert!(r.completed, "{:?} {}", r.error, r.stderr_text());
    assert_eq!(
        r.stdout_text().trim(),
        r#"{"dec": "3.3", "frac": "1", "sha": "ba7816bf", "sum": 45, "zlib": 2000}"#
    );
}

#[test]
fn an_uncaught_exception_is_typed_with_its_traceback() {
    let w = python(limits());
    let r = w
        .run(Run::python(
            "def f(x):\n    raise ValueError(f'boom {x}')\nf(42)\n",
        ))
        .expect("run");
    assert!(!r.completed);
    let e = r.error.as_ref().unwrap();
    assert_eq!(
        e.kind,
        ErrorKind::Exception {
            name: "ValueError".into()
        }
    );
    assert_eq!(e.message, "boom 42");
    let tb = e.backtrace.as_deref().unwrap_or("");
    assert!(
        tb.contains("Traceback") && tb.contains("line 2, in f"),
        "{tb}"
    );
    assert!(r.stderr_text().contains("ValueError: boom 42"));
    // The interpreter is still usable.
    let r = w.run(Run::python("print('after')")).expect("run");
    assert_eq!(r.stdout_text(), "after\n");
    // A syntax error is an exception too.
    let r = w.run(Run::python("def (")).expect("run");
    assert_eq!(
        r.error.unwrap().kind,
        ErrorKind::Exception {
            name: "SyntaxError".into()
        }
    );
}

#[test]
fn system_exit_is_an_exit_code() {
    let w = python(limits());
    let r = w.run(Run::python("import sys\nsys.exit(3)")).expect("run");
    assert_eq!(r.exit_code, Some(3));
    assert_eq!(r.error.unwrap().kind, ErrorKind::Exit(3));
    let r = w.run(Run::python("raise SystemExit(0)")).expect("run");
    assert!(r.completed, "{:?}", r.error);
    let r = w.run(Run::python("print('still here')")).expect("run");
    assert_eq!(r.stdout_text(), "still here\n");
}

#[test]
fn a_python_loop_ends_at_its_deadline() {
    let w = python(Limits::new().with_timeout(Duration::from_millis(300)));
    let t = Instant::now();
    let r = w.run(Run::python("while True:\n    pass")).expect("run");
    assert!(
        matches!(r.error.as_ref().unwrap().kind, ErrorKind::Timeout { .. }),
        "{:?}",
        r.error
    );
    println!(
        "figures: a Python loop stopped {:?} after its start",
        t.elapsed()
    );
}

#[test]
fn a_python_memory_bomb_is_a_memory_limit() {
    let w = python(limits().with_max_memory(64 << 20));
    let r = w
        .run(Run::python(
            "x = []\nwhile True:\n    x.append(bytearray(1 << 20))",
        ))
        .expect("run");
    assert!(
        matches!(
            r.error.as_ref().unwrap().kind,
            ErrorKind::MemoryLimit { .. }
        ),
        "{:?}",
        r.error
    );
    // A MemoryError can be caught first.
    let w = python(limits().with_max_memory(64 << 20));
    let r = w
        .run(Run::python(
            "try:\n    x = bytearray(200 << 20)\nexcept MemoryError:\n    print('caught')",
        ))
        .expect("run");
    assert!(r.completed, "{:?}", r.error);
    assert_eq!(r.stdout_text(), "caught\n");
}

#[test]
fn python_runs_in_utf8_mode() {
    let w = python(limits());
    let r = w
        .run(Run::python(
            "import sys\nprint('\u{e9}t\u{e9}', sys.flags.utf8_mode, sys.stdout.encoding)",
        ))
        .expect("run");
    assert!(r.completed, "{:?} {}", r.error, r.stderr_text());
    assert_eq!(r.stdout_text(), "\u{e9}t\u{e9} 1 utf-8\n");
    w.close();
}

#[test]
fn python_and_javascript_are_different_interpreters_of_one_host() {
    let w = python(limits());
    let e = w.run(Run::js("1")).unwrap_err();
    assert!(
        matches!(
            e,
            Error::WrongLanguage {
                language: Language::JavaScript,
                ..
            }
        ),
        "{e}"
    );
    let js = host()
        .create_js(Limits::new().with_timeout(Duration::from_secs(20)))
        .unwrap();
    let r = js.run(Run::js("console.log(6 * 7)")).unwrap();
    assert_eq!(r.stdout_text(), "42\n");
}

#[test]
fn python_interpreters_are_created_run_and_closed_repeatedly() {
    let host = host();
    let mut times = Vec::new();
    for _ in 0..20 {
        let t = Instant::now();
        let w = host.create_python(limits()).unwrap();
        let r = w.run(Run::python("1+1")).unwrap();
        assert!(r.completed);
        times.push(t.elapsed());
        w.close();
    }
    times.sort();
    // Figures only: timing is the benchmark's job, not a test's.
    println!(
        "figures: create + run `1+1` median {:?}, max {:?}",
        times[times.len() / 2],
        times[times.len() - 1]
    );
}

#[test]
fn argv_and_environ_are_the_interpreters_own() {
    let py = host().python().unwrap();
    let w = host()
        .interpreter(&py)
        .limits(limits())
        .args(["prog.py", "a", "b"])
        .env("GREETING", "hi")
        .build()
        .unwrap();
    let r = w
        .run(Run::python(
            "import sys, os\nprint(sys.argv, os.environ.get('GREETING'), sorted(os.environ))",
        ))
        .unwrap();
    assert!(r.completed, "{:?} {}", r.error, r.stderr_text());
    assert_eq!(
        r.stdout_text(),
        "['prog.py', 'a', 'b'] hi ['GREETING']\n",
        "only what was granted"
    );
    // Another interpreter from the same snapshot has its own.
    let other = python(limits());
    let r = other
        .run(Run::python(
            "import sys, os\nprint(sys.argv, dict(os.environ))",
        ))
        .unwrap();
    assert_eq!(r.stdout_text(), "['python'] {}\n");
}

// ---- Inside Python: `_subinterp`, `interpreters`, channels and views ----

/// Runs `src` in `w` and insists it completed.
fn ok(w: &Interpreter, run: Run) -> subinterp::RunResult {
    crate::common::completed(w.run(run).expect("run"))
}

#[test]
fn the_interpreters_module_is_preloaded_in_the_snapshot() {
    let w = python(limits());
    let r = ok(
        &w,
        Run::python(
            "import sys\nprint('interpreters' in sys.modules, '_subinterp' in sys.modules)",
        ),
    );
    assert_eq!(r.stdout_text(), "True True\n");
    w.close();
}

#[test]
fn python_abi_constants_agree_with_the_rust_abi_numbers() {
    let w = python(limits());
    let r = ok(
        &w,
        Run::python(
            "import _subinterp as si\n\
             for k in dir(si):\n    if k.startswith(('ERR_', 'KIND_')):\n        print(k, getattr(si, k))",
        ),
    );
    let mut got: Vec<String> = r.stdout_text().lines().map(String::from).collect();
    got.sort();
    let mut want: Vec<String> = subinterp::abi::ERRORS
        .iter()
        .map(|(n, v)| format!("ERR_{n} {v}"))
        .chain(
            subinterp::abi::KINDS
                .iter()
                .map(|(n, v)| format!("KIND_{n} {v}")),
        )
        .collect();
    want.sort();
    assert_eq!(got, want);
    w.close();
}

#[test]
fn python_raw_abi_module_returns_the_abis_codes() {
    let w = python(limits());
    let r = ok(
        &w,
        Run::python(
            "import _subinterp as si\n\
             r, s = si.channel_create(4)\n\
             assert si.handle_kind(r) == si.KIND_RECV and si.handle_kind(s) == si.KIND_SEND\n\
             assert si.send(s, b'hello world') == 0 and si.send(s, 'h\\u00e9') == 0\n\
             assert si.send(s, bytearray(b'xy'), si.NOWAIT) == 0\n\
             v = si.recv(r)\n\
             assert si.handle_kind(v) == si.KIND_VIEW and si.view_len(v) == 11\n\
             assert si.view_read(v) == b'hello world'\n\
             assert si.view_read(v, 6) == b'world' and si.view_read(v, 6, 2) == b'wo'\n\
             assert si.view_read(v, 12) == si.ERR_BOUNDS\n\
             sl = si.view_slice(v, 6, 5)\n\
             assert si.view_read(sl) == b'world'\n\
             assert si.view_slice(v, 8, 10) == si.ERR_BOUNDS\n\
             assert si.send_handle(s, sl) == 0\n\
             assert si.release(sl) == 0 and si.release(sl) == si.ERR_BAD_HANDLE\n\
             assert si.view_len(sl) == si.ERR_BAD_HANDLE\n\
             assert si.view_read(si.recv(r)) == 'h\\u00e9'.encode()\n\
             assert si.view_read(si.recv(r, 1000)) == b'xy'\n\
             assert si.view_read(si.recv(r)) == b'world'\n\
             assert si.recv(r, si.NOWAIT) == si.ERR_EMPTY\n\
             assert si.recv(r, 1000) in (si.ERR_TIMEOUT, si.ERR_EMPTY)\n\
             assert si.recv(s, 0) == si.ERR_WRONG_KIND and si.close(r) == si.ERR_WRONG_KIND\n\
             assert si.close(s) == 0 and si.recv(r) == si.ERR_CLOSED\n\
             assert si.send(s, b'late') == si.ERR_CLOSED\n\
             assert si.channel_create(-1) == si.ERR_INVALID\n\
             assert si.lookup('nothing') == si.ERR_NOT_FOUND\n\
             assert si.interp_status(123456) == si.ERR_NOT_FOUND\n\
             assert si.interp_close(123456) == si.ERR_NOT_FOUND\n\
             assert si.interp_create('{\"bogus\": 1}') == si.ERR_INVALID\n\
             names = si.bound_names()\n\
             assert si.view_read(names) == b'[]' and si.release(names) == 0\n\
             ids = si.interp_list()\n\
             print(si.view_read(ids).decode(), si.interpreter_id() > 0, si.main_id())\n\
             e = si.error(si.ERR_FULL, 'send')\n\
             assert isinstance(e, si.ChannelFullError) and str(e) == 'send: channel is full', e\n\
             assert isinstance(si.error(si.ERR_FULL, 'send', True), TimeoutError)\n\
             assert issubclass(si.ChannelReleasedError, si.ChannelClosedError)\n\
             try:\n    si.send(s, 42)\nexcept TypeError as e:\n    print(e)\n",
        ),
    );
    assert_eq!(
        r.stdout_text(),
        format!(
            "[{}] True 0\nsend: a bytes-like object or str is required, not 'int'\n",
            w.id().0
        )
    );
    w.close();
}

#[test]
fn python_channel_ends_passed_to_a_run_are_names_in_main() {
    let w = python(limits());
    let (rx, tx) = host().create_channel(4);
    let (back_rx, back_tx) = host().create_channel(4);
    tx.send(bytes::Bytes::from_static(b"hello")).unwrap();
    let r = ok(
        &w,
        Run::python(
            "print(type(inbox).__name__, type(outbox).__name__, inbox.borrowed)\n\
             outbox.send(inbox.recv().tobytes().upper())",
        )
        .channel("inbox", rx)
        .channel("outbox", back_tx),
    );
    assert_eq!(r.stdout_text(), "RecvChannel SendChannel True\n");
    assert_eq!(&*back_rx.recv().unwrap().into_view().unwrap(), b"HELLO");
    assert_eq!((r.stats.messages_received, r.stats.messages_sent), (1, 1));
    // Bindings persist from run to run, as for JavaScript's `channels`, and
    // are set again before each run.
    let r = ok(&w, Run::python("print(type(inbox).__name__)\ninbox = 5"));
    assert_eq!(r.stdout_text(), "RecvChannel\n");
    let r = ok(&w, Run::python("print(type(inbox).__name__)"));
    assert_eq!(r.stdout_text(), "RecvChannel\n");
    // A new end under the same name replaces the old one.
    let (rx2, tx2) = host().create_channel(1);
    tx2.send(bytes::Bytes::from_static(b"second")).unwrap();
    let r = ok(
        &w,
        Run::python("print(inbox.recv().decode())").channel("inbox", rx2),
    );
    assert_eq!(r.stdout_text(), "second\n");
    // An end the script released stays released.
    let r = ok(
        &w,
        Run::python(
            "import interpreters\ninbox.release()\ntry:\n    inbox.recv()\nexcept interpreters.ChannelReleasedError as e:\n    print(e)",
        ),
    );
    assert_eq!(r.stdout_text(), "recv: already released\n");
    let r = ok(&w, Run::python("print(inbox.handle)"));
    assert_eq!(r.stdout_text(), "0\n");
    w.close();
}

#[test]
fn python_channels_send_recv_nowait_timeouts_close_and_release() {
    let w = python(limits());
    let r = ok(
        &w,
        Run::python(
            "import interpreters as I\n\
             r, s = I.create_channel()\n\
             assert isinstance(r, I.RecvChannel) and isinstance(s, I.SendChannel)\n\
             s.send(b'ab'); s.send('\\u00e9t\\u00e9'); s.send(bytearray(b'cd')); s.send(memoryview(b'xef')[1:])\n\
             s.send(b'')\n\
             got = [r.recv() for _ in range(5)]\n\
             assert all(isinstance(v, I.View) for v in got)\n\
             print([bytes(v) for v in got], got[1].decode())\n\
             print(r.recv_nowait('none'))\n\
             try:\n    r.recv_nowait()\nexcept I.ChannelEmptyError as e:\n    print('empty:', e)\n\
             try:\n    r.recv(timeout=0.05)\nexcept TimeoutError as e:\n    print('timeout:', e)\n\
             r1, s1 = I.create_channel(1)\n\
             s1.send_nowait(b'1')\n\
             try:\n    s1.send_nowait(b'2')\nexcept I.ChannelFullError as e:\n    print('full:', e)\n\
             try:\n    s1.send(b'2', timeout=0.05)\nexcept TimeoutError as e:\n    print('timeout:', e)\n\
             s1.close()\n\
             print(r1.recv().tobytes())\n\
             try:\n    r1.recv()\nexcept I.ChannelClosedError as e:\n    print('closed:', e)\n\
             try:\n    s1.send(b'3')\nexcept I.ChannelClosedError as e:\n    print('closed:', e)\n\
             s.release(); s.release()\n\
             try:\n    s.send(b'4')\nexcept I.ChannelReleasedError as e:\n    print('released:', e)\n\
             try:\n    s1.send(42)\nexcept TypeError as e:\n    print('type:', e)\n\
             try:\n    I.create_channel(-1)\nexcept ValueError as e:\n    print('value:', e)\n\
             r0, s0 = I.create_channel(0)\n\
             try:\n    s0.send_nowait(b'x')\nexcept I.ChannelFullError:\n    print('rendezvous: nobody waiting')\n\
             # An end travels over a channel and works on the other side.\n\
             r2, s2 = I.create_channel()\n\
             s2.send(s0)\n\
             end = r2.recv()\n\
             print(type(end).__name__)\n",
        ),
    );
    assert_eq!(
        r.stdout_text(),
        "[b'ab', b'\\xc3\\xa9t\\xc3\\xa9', b'cd', b'ef', b''] \u{e9}t\u{e9}\n\
         none\n\
         empty: recv_nowait: channel is empty\n\
         timeout: recv: timed out\n\
         full: send_nowait: channel is full\n\
         timeout: send: timed out\n\
         b'1'\n\
         closed: recv: channel is closed\n\
         closed: send: channel is closed\n\
         released: send: already released\n\
         type: send: a bytes-like object or str is required, not 'int'\n\
         value: capacity must be an int >= 0\n\
         rendezvous: nobody waiting\n\
         SendChannel\n"
    );
    w.close();
}

#[test]
fn python_views_are_read_only_copy_only_what_is_read_and_are_released() {
    let w = python(limits().with_max_handles(16));
    let (rx, tx) = host().create_channel(4);
    let data: Vec<u8> = (0..1 << 20).map(|i| (i % 251) as u8).collect();
    tx.send(bytes::Bytes::from(data)).unwrap();
    let r = ok(
        &w,
        Run::python(
            "v = inbox.recv()\n\
             part = v[1000:1010]\n\
             print(len(v), len(part), type(part).__name__, part.tobytes() == bytes((i % 251) for i in range(1000, 1010)))\n\
             print(v[-1], part[0], len(v[5:3]), len(v[:]))",
        )
        .channel("inbox", rx.clone()),
    );
    assert_eq!(r.stdout_text(), "1048576 10 View True\n148 247 0 1048576\n");
    assert_eq!(
        r.stats.bytes_copied_in, 12,
        "only the bytes read: a slice of 10, and two single bytes"
    );
    // The buffer protocol: memoryview, read-only; decode; release.
    tx.send(bytes::Bytes::from_static("h\u{e9}llo".as_bytes()))
        .unwrap();
    let r = ok(
        &w,
        Run::python(
            "import interpreters as I\n\
             v = inbox.recv()\n\
             m = memoryview(v)\n\
             print(m.readonly, m.nbytes, m.tobytes(), v.decode(), v.decode('latin-1'))\n\
             try:\n    m[0] = 1\nexcept TypeError as e:\n    print('read-only')\n\
             print(bytes(v[1:3]).decode(), v[1:3].decode(), repr(v[:0]))\n\
             try:\n    v[::2]\nexcept ValueError:\n    print('no steps')\n\
             m.release()\n\
             v.release(); v.release()\n\
             for f in (len, bytes, memoryview, lambda v: v[0:1], lambda v: v.decode()):\n    try:\n        f(v)\n    except I.ChannelReleasedError:\n        print('released', end=' ')\n\
             print(repr(v))",
        )
        .channel("inbox", rx.clone()),
    );
    assert_eq!(
        r.stdout_text(),
        "True 6 b'h\\xc3\\xa9llo' h\u{e9}llo h\u{c3}\u{a9}llo\nread-only\n\u{e9} \u{e9} <View 0 bytes>\nno steps\n\
         released released released released released <View released>\n"
    );
    // Views the script drops are released by the collector: 200 messages
    // through an interpreter allowed 16 handles.
    for i in 0..4u8 {
        tx.send(bytes::Bytes::from(vec![i; 8])).unwrap();
    }
    let r = ok(
        &w,
        Run::python(
            "import interpreters as I\n\
             r, s = I.create_channel()\n\
             total = 0\n\
             for i in range(200):\n    s.send(bytes([i % 256]))\n    total += r.recv()[0]\n\
             print(total, sum(inbox.recv()[0] for _ in range(4)))",
        )
        .channel("inbox", rx),
    );
    assert_eq!(r.stdout_text(), "19900 6\n");
    w.close();
}

#[test]
fn python_forwards_a_view_without_copying_it() {
    let w = python(limits());
    let (rx, tx) = host().create_channel(4);
    let (out_rx, out_tx) = host().create_channel(4);
    let data = bytes::Bytes::from(vec![7u8; 1 << 20]);
    tx.send(data.clone()).unwrap();
    let r = ok(
        &w,
        Run::python("v = inbox.recv()\nout.send(v)\nout.send(v[10:20])")
            .channel("inbox", rx)
            .channel("out", out_tx),
    );
    assert_eq!(r.stats.bytes_copied_in, 0);
    assert_eq!(r.stats.bytes_copied_out, 0);
    assert_eq!(r.stats.buffers_forwarded, 2);
    let whole = out_rx.recv().unwrap().into_view().unwrap();
    assert_eq!(whole.as_ptr(), data.as_ptr(), "the same host buffer");
    let part = out_rx.recv().unwrap().into_view().unwrap();
    assert_eq!(part.as_ptr(), data[10..].as_ptr());
    assert_eq!(part.len(), 10);
    w.close();
}

#[test]
fn python_and_javascript_exchange_buffers_through_host_channels() {
    let py = python(limits());
    let js = host()
        .create_js(Limits::new().with_timeout(Duration::from_secs(60)))
        .unwrap();
    let (to_js_rx, to_js_tx) = host().create_channel(2);
    let (to_py_rx, to_py_tx) = host().create_channel(2);
    let job = js.start(
        Run::js(
            "for (;;) {\n\
               let v;\n\
               try { v = channels.inbox.recv(); } catch (e) { if (e.name === 'ChannelClosedError') break; throw e; }\n\
               channels.out.send('js:' + v.text().toUpperCase());\n\
             }\n\
             channels.out.close();",
        )
        .channel("inbox", to_js_rx)
        .channel("out", to_py_tx),
    );
    let r = ok(
        &py,
        Run::python(
            "got = []\n\
             for word in ['alpha', 'b\u{e9}ta', 'gamma']:\n    to_js.send(word)\n    got.append(from_js.recv().decode())\n\
             to_js.close()\n\
             import interpreters\n\
             try:\n    from_js.recv()\nexcept interpreters.ChannelClosedError:\n    got.append('closed')\n\
             print(got)",
        )
        .channel("to_js", to_js_tx)
        .channel("from_js", to_py_rx),
    );
    assert_eq!(
        r.stdout_text(),
        "['js:ALPHA', 'js:B\u{c9}TA', 'js:GAMMA', 'closed']\n"
    );
    let jr = job.join().unwrap();
    assert!(jr.completed, "{:?}", jr.error);
    py.close();
    js.close();
}

#[test]
fn python_creates_runs_and_closes_python_and_js_children() {
    let w = python(limits());
    let r = ok(
        &w,
        Run::python(
            "import interpreters as I, functools\n\
             print = functools.partial(print, flush=True)  # ordered with the children's output\n\
             me = I.get_current()\n\
             kid = I.create(timeout=20000, max_memory=128 << 20)\n\
             print(I.get_main().id, kid.id > me.id, sorted(i.id for i in I.list_all()) == sorted([me.id, kid.id]))\n\
             res = kid.run('x = 6 * 7\\nprint(\"child\", x)')\n\
             print(res.completed, res.error)\n\
             res = kid.run('def f():\\n    raise KeyError(\"nope\")\\nf()')\n\
             print(res.completed, res.error.type, res.error.message, 'line 2, in f' in res.error.traceback)\n\
             try:\n    kid.exec('1/0')\nexcept I.ExecutionFailed as e:\n    print('failed:', e.excinfo.type, e.excinfo.msg)\n\
             kid.exec('assert x == 42')\n\
             r, s = I.create_channel()\n\
             kid.exec('out.send(str(x).encode())', channels={'out': s})\n\
             print(r.recv().decode(), kid.is_running())\n\
             ready_r, ready = I.create_channel()\n\
             job = kid.start('ready.send(b\"up\")\\nt = inbox.recv(timeout=10)\\nprint(\"started got\", t.decode())', channels={'inbox': r, 'ready': ready})\n\
             ready_r.recv()\n\
             print(kid.is_running())\n\
             s.send(b'go')\n\
             print(job.join().completed, kid.is_running())\n\
             js = I.create(lang='js')\n\
             js.exec('channels.out.send(\"from js \" + (6 * 7))', channels={'out': s})\n\
             print(r.recv().decode())\n\
             res = js.run('null.x')\n\
             print(res.error.type)\n\
             kid.close(); kid.close()\n\
             try:\n    kid.run('1')\nexcept I.InterpreterClosedError as e:\n    print('closed')\n\
             try:\n    I.create(bogus=1)\nexcept TypeError as e:\n    print(e)\n\
             try:\n    I.create(lang='cobol')\nexcept ValueError:\n    print('no cobol')\n",
        ),
    );
    // A child's output goes to the root's streams.
    assert_eq!(
        r.stdout_text(),
        "0 True True\nchild 42\nTrue None\nFalse KeyError 'nope' True\n\
         failed: ZeroDivisionError division by zero\n42 False\nTrue\n\
         started got go\nTrue False\nfrom js 42\nTypeError\nclosed\n\
         create: unknown limit 'bogus'\nno cobol\n"
    );
    w.close();
}

#[test]
fn python_call_and_prepare_main_copy_shareable_objects() {
    let w = python(limits());
    let r = ok(
        &w,
        Run::python(
            "import interpreters as I, math, json\n\
             k = I.create()\n\
             print(k.call(math.sqrt, 16.0), k.call(divmod, 17, 5), k.call(json.dumps, (1, 'a')))\n\
             try:\n    k.call(lambda: 1)\nexcept ValueError:\n    print('no lambdas')\n\
             try:\n    k.call(math.sqrt, [1])\nexcept ValueError as e:\n    print(e)\n\
             try:\n    k.call(math.sqrt, -1.0)\nexcept I.ExecutionFailed as e:\n    print('failed:', e.excinfo.type)\n\
             r, s = I.create_channel()\n\
             k.prepare_main(x=(1, 2.5, 'a', b'b', None, True), out=s)\n\
             k.exec('out.send(repr(x))')\n\
             print(r.recv().decode())\n\
             try:\n    k.prepare_main(y={})\nexcept ValueError:\n    print('dicts are not shareable')\n\
             js = I.create(lang='js')\n\
             js.prepare_main(n=41, out=s)\n\
             js.exec('channels.out.send(String(n + 1))')\n\
             print(r.recv().decode())\n\
             try:\n    js.call(math.sqrt, 4.0)\nexcept I.InterpreterError:\n    print('not in js')\n",
        ),
    );
    assert_eq!(
        r.stdout_text(),
        "4.0 (3, 2) [1, \"a\"]\nno lambdas\ncall: argument: list is not shareable \
         (None, bool, int, float, str, bytes, tuples of them)\nfailed: ValueError\n\
         (1, 2.5, 'a', b'b', None, True)\ndicts are not shareable\n42\nnot in js\n"
    );
    w.close();
}

#[test]
fn python_queues_carry_shareable_objects_between_interpreters() {
    let w = python(limits());
    let r = ok(
        &w,
        Run::python(
            "import interpreters as I\n\
             q = I.create_queue()\n\
             q.put(1); q.put(('a', b'b', None, True, 2.5, -10**40, ())); q.put_nowait('x')\n\
             print(q.qsize(), q.empty(), q.full(), q.maxsize)\n\
             print(q.get(), q.get(), q.get_nowait(), q.empty())\n\
             try:\n    q.get_nowait()\nexcept I.QueueEmptyError as e:\n    print(e)\n\
             try:\n    q.get(timeout=0.01)\nexcept I.QueueEmptyError as e:\n    print(e)\n\
             one = I.create_queue(1); one.put(1)\n\
             try:\n    one.put(2, timeout=0.01)\nexcept I.QueueFullError as e:\n    print(e, one.full())\n\
             try:\n    one.put_nowait(2)\nexcept I.QueueFull:\n    print('full again')\n\
             try:\n    q.put([1])\nexcept ValueError as e:\n    print(e)\n\
             k = I.create()\n\
             k.prepare_main(q=q, n=3)\n\
             job = k.start('for i in range(n): q.put((i, i * i))')\n\
             print([q.get(timeout=30) for _ in range(3)], job.join().completed)\n\
             try:\n    I.create(lang='js').prepare_main(q=q)\nexcept ValueError as e:\n    print(e)\n\
             k.exec('q._s.send(bytes([116, 255, 255, 255, 255]))')\n\
             try:\n    q.get()\nexcept ValueError as e:\n    print(e)\n",
        ),
    );
    assert_eq!(
        r.stdout_text(),
        "3 False False 0\n\
         1 ('a', b'b', None, True, 2.5, -10000000000000000000000000000000000000000, ()) x True\n\
         get_nowait: the queue is empty\nget: timed out, the queue is empty\n\
         put: timed out, the queue is full True\nfull again\n\
         put: list is not shareable (None, bool, int, float, str, bytes, tuples of them)\n\
         [(0, 0), (1, 1), (2, 4)] True\n\
         prepare_main: a queue can only be shared with a Python interpreter\n\
         a shared object arrived malformed\n"
    );
    w.close();
}

#[test]
fn python_children_get_the_limits_they_are_created_with() {
    let w = python(limits());
    let r = ok(
        &w,
        Run::python(
            "import interpreters as I, functools\n\
             print = functools.partial(print, flush=True)  # ordered with the children's output\n\
             k = I.create(timeout=200)\n\
             res = k.run('while True: pass')\n\
             print(res.completed, res.error.type, res.error.kind, res.error.message)\n\
             try:\n    k.run('1')\nexcept I.InterpreterClosedError:\n    print('stopped by force: closed')\n\
             m = I.create(max_memory=32 << 20)\n\
             res = m.run('x = bytearray(64 << 20)')\n\
             print(res.error.type, 'memory limit 33554432' in res.error.message)\n\
             print(m.run('print(2)').completed)\n\
             j = I.create(lang='js', timeout=100)\n\
             print(j.run('for (;;) {}').error.message)\n",
        ),
    );
    assert_eq!(
        r.stdout_text(),
        "False LimitError timeout deadline of 200ms exceeded\nstopped by force: closed\n\
         LimitError True\n2\nTrue\ndeadline of 100ms exceeded\n"
    );
    w.close();
}

#[test]
fn javascript_binds_channel_ends_as_names_in_a_python_childs_main() {
    let js = host()
        .create_js(Limits::new().with_timeout(Duration::from_secs(60)))
        .unwrap();
    let r = js
        .run(Run::js(
            "const py = interpreters.create({ lang: 'python' });\n\
             const [r, s] = interpreters.createChannel();\n\
             s.send('abc');\n\
             const [back, reply] = interpreters.createChannel();\n\
             py.run('outbox.send(inbox.recv()[1:])', { channels: { inbox: r, outbox: reply } }).check();\n\
             console.log(back.recv().text());",
        ))
        .unwrap();
    assert!(r.completed, "{:?} {}", r.error, r.stderr_text());
    assert_eq!(r.stdout_text(), "bc\n");
    js.close();
}

#[test]
fn a_python_fork_bomb_ends_with_a_limit_error() {
    // A host of its own: the bombs fill its pool, not the shared one.
    let host = Host::builder().pool_size(24).build().expect("host");
    let w = host
        .create_python(limits().with_max_interpreters(6))
        .unwrap();
    let r = ok(
        &w,
        Run::python(
            "import interpreters as I\n\
             kids = []\n\
             try:\n    while True:\n        kids.append(I.create())\nexcept I.LimitError as e:\n    print(len(kids), e)\n",
        ),
    );
    assert_eq!(
        r.stdout_text(),
        "6 create: interpreter limit reached (count, depth or memory)\n"
    );
    w.close();
    // Uncaught, and recursive: each child tries to create more.
    let w = host
        .create_python(limits().with_max_interpreters(6))
        .unwrap();
    let t = Instant::now();
    let r = w
        .run(Run::python(
            "import interpreters as I\n\
             src = 'import interpreters as I\\nwhile True:\\n    k = I.create()\\n    k.exec(\"src = \" + repr(src))\\n    k.exec(src)\\n'\n\
             exec(src)\n",
        ))
        .unwrap();
    let e = r.error.expect("the bomb fails");
    assert_eq!(
        e.kind,
        ErrorKind::Exception {
            name: "ExecutionFailed".into()
        },
        "{e:?}"
    );
    assert!(e.message.contains("LimitError"), "{}", e.message);
    println!("figures: a Python fork bomb ended in {:?}", t.elapsed());
    // The interpreter and the host are still usable.
    let r = ok(&w, Run::python("print('alive')"));
    assert_eq!(r.stdout_text(), "alive\n");
    w.close();
}

#[test]
fn a_python_recv_with_no_sender_ends_at_the_deadline() {
    let (rx, _tx) = host().create_channel(1);
    let w = python(limits().with_timeout(Duration::from_millis(300)));
    let t = Instant::now();
    let r = w
        .run(Run::python("inbox.recv()").channel("inbox", rx))
        .unwrap();
    assert!(
        matches!(r.error.as_ref().unwrap().kind, ErrorKind::Timeout { .. }),
        "{:?}",
        r.error
    );
    assert!(t.elapsed() < Duration::from_secs(10));
    // A channel only this interpreter holds: a deadlock, ended the same way.
    let w = python(limits().with_timeout(Duration::from_millis(300)));
    let r = w
        .run(Run::python(
            "import interpreters\nr, s = interpreters.create_channel()\nr.recv()",
        ))
        .unwrap();
    assert!(
        matches!(r.error.as_ref().unwrap().kind, ErrorKind::Timeout { .. }),
        "{:?}",
        r.error
    );
    w.close();
}

#[test]
fn deep_recursion_is_a_recursion_error_not_a_trap() {
    let w = python(limits());
    // Python frames (CPython's recursion limit) and C frames (json and repr
    // of a 100,000-deep list, CPython's C recursion limit of 5,000 under
    // WASI, which fits the host's 4 MiB wasm stack): catchable errors.
    let r = w
        .run(Run::python(
            "import json\n\
             def f(n):\n    return f(n + 1)\n\
             try:\n    f(0)\nexcept RecursionError:\n    print('python frames')\n\
             deep = []\n\
             for _ in range(100000):\n    deep = [deep]\n\
             try:\n    json.dumps(deep)\nexcept RecursionError:\n    print('json')\n\
             try:\n    repr(deep)\nexcept RecursionError:\n    print('repr')",
        ))
        .unwrap();
    assert!(r.completed, "{:?} {}", r.error, r.stderr_text());
    assert_eq!(r.stdout_text(), "python frames\njson\nrepr\n");
    let r = w.run(Run::python("print('still here')")).unwrap();
    assert_eq!(r.stdout_text(), "still here\n");
}

#[test]
fn hostile_python_is_stopped_by_type() {
    // An output flood: the output cap.
    let w = python(limits().with_max_output(64 << 10));
    let r = w
        .run(Run::python("while True:\n    print('x' * 1000)"))
        .unwrap();
    assert!(
        matches!(
            r.error.as_ref().unwrap().kind,
            ErrorKind::OutputLimit { .. }
        ),
        "{:?}",
        r.error
    );
    assert!(r.stdout.len() <= 64 << 10);
    // A loop that swallows every exception still ends at its deadline.
    let w = python(Limits::new().with_timeout(Duration::from_millis(300)));
    let r = w
        .run(Run::python(
            "while True:\n    try:\n        sum(range(1000))\n    except BaseException:\n        pass",
        ))
        .unwrap();
    assert!(
        matches!(r.error.as_ref().unwrap().kind, ErrorKind::Timeout { .. }),
        "{:?}",
        r.error
    );
    // A JS script that creates Python children without end: a limit.
    let js = host()
        .create_js(
            Limits::new()
                .with_timeout(Duration::from_secs(60))
                .with_max_interpreters(4),
        )
        .unwrap();
    let r = js
        .run(Run::js(
            "const kids = [];
             try { for (;;) kids.push(interpreters.create({lang: 'python'})); }
             catch (e) { console.log(e.name, kids.length); }
             console.log(kids[0].run('import sys; print(sys.version_info[0])').completed);",
        ))
        .unwrap();
    assert!(r.completed, "{:?}", r.error);
    // The child writes into its creator's stdout.
    assert_eq!(r.stdout_text(), "LimitError 4\n3\ntrue\n");
}

#[test]
fn interpreters_from_one_snapshot_do_not_share_a_random_sequence() {
    // `random` is preloaded in the snapshot: each interpreter reseeds it.
    let draw = || {
        let w = python(limits());
        let r = w
            .run(Run::python(
                "import random, sys\nprint('random' in sys.modules, random.getrandbits(64))",
            ))
            .unwrap();
        w.close();
        r.stdout_text()
    };
    let (a, b) = (draw(), draw());
    assert!(a.starts_with("True "), "{a}");
    assert_ne!(a, b, "two interpreters drew the same 64 random bits");
}

#[test]
fn a_granted_directory_is_visible_to_python_and_nothing_else_is() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("in.txt"), "from the host").unwrap();
    let py = host().python().unwrap();
    let w = host()
        .interpreter(&py)
        .limits(limits())
        .dir(dir.path(), "/data", true)
        .build()
        .unwrap();
    let r = w
        .run(Run::python(
            "import os\n\
             print(open('/data/in.txt').read())\n\
             try:\n    open('/data/out.txt', 'w')\nexcept OSError as e:\n    print('read-only:', type(e).__name__)\n\
             try:\n    os.listdir('/etc')\nexcept OSError as e:\n    print('no grant:', type(e).__name__)",
        ))
        .unwrap();
    assert!(r.completed, "{:?} {}", r.error, r.stderr_text());
    assert_eq!(
        r.stdout_text(),
        "from the host\nread-only: PermissionError\nno grant: FileNotFoundError\n"
    );
    // An interpreter without the grant, from the same snapshot, sees none.
    let other = python(limits());
    let r = other
        .run(Run::python(
            "import os\nprint(os.path.exists('/data/in.txt'))",
        ))
        .unwrap();
    assert_eq!(r.stdout_text(), "False\n");
}

/// CPython's own test modules that apply, run inside a Python interpreter
/// with CPython's `Lib/` (from the guest's build) granted read-only. The
/// ones left out, and why, are in README.md's Python section.
const CPYTHON_TESTS: &[&str] = &[
    "test_bisect",
    "test_heapq",
    "test_json",
    "test_fractions",
    "test_string",
    "test_re",
    "test_textwrap",
    "test_struct",
    "test_itertools",
    "test_collections",
    "test_datetime",
    "test_decimal",
];

#[test]
fn cpythons_own_test_modules_pass_inside_subinterp() {
    let lib =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(".tools/cpython/Python-3.13.5/Lib");
    assert!(
        lib.join("test").is_dir(),
        "{} missing: `make guest` extracts CPython's source there",
        lib.display()
    );
    let py = host().python().unwrap();
    let w = host()
        .interpreter(&py)
        .limits(
            Limits::new()
                .with_timeout(Duration::from_secs(600))
                .with_max_memory(1 << 30),
        )
        .dir(&lib, "/cpython", true)
        .build()
        .unwrap();
    let names = CPYTHON_TESTS
        .iter()
        .map(|n| format!("'test.{n}'"))
        .collect::<Vec<_>>()
        .join(", ");
    let r = w
        .run(Run::python(format!(
            "import io, sys, unittest\n\
             sys.path.insert(0, '/cpython')\n\
             for name in [{names}]:\n\
             \x20   suite = unittest.defaultTestLoader.loadTestsFromName(name)\n\
             \x20   r = unittest.TextTestRunner(verbosity=0, stream=io.StringIO()).run(suite)\n\
             \x20   bad = [str(t) for t, _ in r.failures + r.errors]\n\
             \x20   print(name, r.testsRun, len(r.skipped), len(bad), bad[:3], flush=True)"
        )))
        .unwrap();
    assert!(r.completed, "{:?}\n{}", r.error, r.stderr_text());
    let out = r.stdout_text();
    let mut ran = 0;
    for line in out.lines() {
        let f: Vec<&str> = line.splitn(5, ' ').collect();
        let (run, bad): (u32, u32) = (f[1].parse().unwrap(), f[3].parse().unwrap());
        assert!(run > 1 && bad == 0, "{line}");
        ran += run;
    }
    assert_eq!(out.lines().count(), CPYTHON_TESTS.len(), "{out}");
    println!(
        "figures: CPython's tests inside subinterp: {ran} run in {} modules, none failed, in {:?}",
        CPYTHON_TESTS.len(),
        r.wall
    );
}

#[test]
fn rust_calls_python_functions_with_values() {
    let w = python(limits());
    ok(
        &w,
        Run::python(
            "def upper(v):\n    return v.decode().upper()\n\
             def size(v):\n    return len(v)\n\
             def rev(v):\n    return bytes(v)[::-1]\n\
             def add(o):\n    return {'sum': o['a'] + o['b']}\n\
             def fails(v):\n    raise KeyError(v.decode())\n\
             def odd(v):\n    return object()\n",
        ),
    );
    assert_eq!(&w.call("upper", "hi").unwrap()[..], b"HI");
    assert_eq!(&w.call("size", vec![0u8; 300]).unwrap()[..], b"300");
    assert_eq!(&w.call("rev", "abc").unwrap()[..], b"cba");
    // A function of a module, by "module#function".
    assert_eq!(&w.call("base64#b64encode", "x").unwrap()[..], b"eA==");
    let out: serde_json::Value = w
        .call_json("add", &serde_json::json!({"a": 40, "b": 2}))
        .unwrap();
    assert_eq!(out, serde_json::json!({"sum": 42}));
    let kind = |e: Error| match e {
        Error::Guest(g) => g.kind,
        other => panic!("{other:?}"),
    };
    assert_eq!(
        kind(w.call("fails", "k").unwrap_err()),
        ErrorKind::Exception {
            name: "KeyError".into()
        }
    );
    assert_eq!(
        kind(w.call("odd", "").unwrap_err()),
        ErrorKind::Exception {
            name: "TypeError".into()
        }
    );
    assert_eq!(
        kind(w.call("missing", "").unwrap_err()),
        ErrorKind::Exception {
            name: "TypeError".into()
        }
    );
    assert_eq!(&w.call("upper", "still").unwrap()[..], b"STILL");
}
