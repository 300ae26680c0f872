//! The Python guest's build (issue 12, step 1): target/guest/python.wasm, a
//! CPython 3.13 reactor with its stdlib frozen in, loads in the library and
//! runs its self-tests through plain exports. The host-side Python driver
//! (`Run::python`, `Host::create_python`) is a later step.

use std::time::{Duration, Instant};

use subinterp::{CompileLimits, Host, Limits, Run};

use crate::common::guest_path;

/// python.wasm is ~16 MB (code and frozen stdlib): above the default limit
/// on modules a host is given, and slower to compile than the default
/// compile timeout allows on a loaded 2-core machine.
fn python_host() -> Host {
    Host::builder()
        .pool_size(8)
        .compile_limits(
            CompileLimits::new()
                .with_max_module_bytes(64 << 20)
                .with_timeout(Duration::from_secs(300)),
        )
        .build()
        .expect("host")
}

#[test]
fn python_guest_imports_the_stdlib_and_reports_errors() {
    let host = python_host();
    let t = Instant::now();
    let guest = host
        .load_file(guest_path("python"))
        .expect("python.wasm compiles");
    let compiled = t.elapsed();
    let t = Instant::now();
    let interp = host
        .interpreter(&guest)
        .limits(
            Limits::new()
                .with_timeout(Duration::from_secs(60))
                .with_max_memory(256 << 20),
        )
        .build()
        .expect("python interpreter");
    let created = t.elapsed();

    // Py_InitializeFromConfig alone (site and CPython's own frozen modules).
    let t = Instant::now();
    let s = interp.run(Run::export("si_py_setup")).expect("run");
    let setup = t.elapsed();
    assert_eq!(s.value, Some(0), "stderr: {}", s.stderr_text());
    assert_eq!(s.stdout_text(), "", "set-up prints nothing");
    assert_eq!(
        s.stderr_text(),
        "",
        "set-up warns of nothing (no path warnings)"
    );

    // The first self-test: imports json, re and the rest from the frozen stdlib.
    let t = Instant::now();
    let r = interp.run(Run::export("si_py_selftest")).expect("run");
    let first = t.elapsed();
    assert!(r.completed, "{:?}\nstderr: {}", r.error, r.stderr_text());
    assert_eq!(r.value, Some(0), "stderr: {}", r.stderr_text());
    let out: serde_json::Value =
        serde_json::from_str(r.stdout_text().trim()).expect("one JSON line");
    assert_eq!(out["version"], "3.13.5");
    assert_eq!(out["top"], serde_json::json!(["the", 3]));
    assert_eq!(out["pairs"], serde_json::json!(["ab", "ac", "bc"]));
    assert_eq!(out["sum"], 45);
    assert_eq!(out["packed"], "BwAAAAAAAAAAAOA/");
    assert_eq!(out["sqrt2"], 1.414214);
    assert_eq!(out["random"], true);
    assert_eq!(out["zlib"], 2000);
    assert_eq!(out["crc32"], 907060870);
    assert_eq!(out["sqlite"], serde_json::json!(["3.54.1", 45]));
    assert_eq!(out["sha256"], "ba7816bf8f01cfea");
    assert_eq!(out["decimal"], "3.3");
    assert_eq!(
        out["interpreter_id"],
        interp.id().0,
        "_subinterp reaches the ABI"
    );

    // A second run reuses the initialised interpreter.
    let t = Instant::now();
    let again = interp.run(Run::export("si_py_selftest")).expect("run");
    let second = t.elapsed();
    assert_eq!(again.value, Some(0));
    assert_eq!(again.stdout_text(), r.stdout_text());

    // An uncaught exception: a traceback on stderr, status 1.
    let e = interp
        .run(Run::export("si_py_selftest_error"))
        .expect("run");
    assert_eq!(e.value, Some(1));
    let stderr = e.stderr_text();
    assert!(
        stderr.starts_with("Traceback (most recent call last):"),
        "{stderr}"
    );
    assert!(
        stderr.contains("raise ValueError(f'boom {x}')"),
        "source lines shown: {stderr}"
    );
    assert!(
        stderr.trim_end().ends_with("ValueError: boom 42"),
        "{stderr}"
    );

    eprintln!(
        "python.wasm: compiled in {compiled:?}, instantiated in {created:?}; \
         si_py_setup {setup:?}; first si_py_selftest (imports) {first:?}, second {second:?}"
    );
}
