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
    let r = w.run(run).expect("run");
    assert!(
        r.completed,
        "script failed: {:?}\nstderr: {}",
        r.error,
        r.stderr_text()
    );
    r
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
