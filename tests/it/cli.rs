//! The `subinterp` command line, run as a process.

use std::process::{Command, Stdio};

use crate::common::{guest_path, subinterp};

#[test]
fn runs_a_wasi_command_with_its_arguments() {
    let out = subinterp()
        .arg("run")
        .arg(guest_path("hello"))
        .args(["a", "--b", "c d"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(stdout.starts_with("hello from wasm, argc=4\n"), "{stdout}");
    assert!(stdout.contains("arg 2: --b\narg 3: c d\n"), "{stdout}");
}

#[test]
fn exit_code_is_the_guests() {
    let out = subinterp()
        .arg("run")
        .arg(guest_path("hello"))
        .args(["exit", "3"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    assert_eq!(String::from_utf8_lossy(&out.stderr), "exiting with 3\n");
}

#[test]
fn json_result_captures_output() {
    let out = subinterp()
        .args(["run", "--json"])
        .arg(guest_path("hello"))
        .arg("x")
        .output()
        .unwrap();
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["completed"], true);
    assert_eq!(v["exit_code"], 0);
    assert_eq!(v["stdout"], "hello from wasm, argc=2\narg 1: x\n");
    assert!(v["error"].is_null());
}

#[test]
fn a_trap_prints_its_kind_and_backtrace() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_path_buf();
    let wat = dir.join("trap.wat");
    std::fs::write(
        &wat,
        r#"(module (memory (export "memory") 1)
             (func $deep (unreachable))
             (func (export "_start") (call $deep)))"#,
    )
    .unwrap();
    let out = subinterp().arg("run").arg(&wat).output().unwrap();
    assert_eq!(out.status.code(), Some(134));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("trap: wasm `unreachable` instruction executed"),
        "{err}"
    );
    assert!(err.contains("deep"), "backtrace names the function: {err}");

    let json = subinterp()
        .args(["run", "--json"])
        .arg(&wat)
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(v["completed"], false);
    assert_eq!(v["error"]["kind"], "trap");

    let spin = dir.join("spin.wat");
    std::fs::write(
        &spin,
        r#"(module (func (export "_start") (loop $l (br $l))))"#,
    )
    .unwrap();
    let out = subinterp()
        .args(["run", "--timeout", "100ms"])
        .arg(&spin)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(125),
        "a limit has its own exit code"
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("timeout"));
}

#[test]
fn bad_input_is_a_clear_error() {
    let out = subinterp()
        .args(["run", "/no/such/file.wasm"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/no/such/file.wasm"));
    let out = subinterp()
        .args(["run", "--timeout", "soon", "x.wasm"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let help = subinterp().arg("--help").output().unwrap();
    assert!(String::from_utf8_lossy(&help.stdout).contains("subinterp run hello.wasm"));
}

#[test]
fn runs_javascript_inline_and_from_a_file_with_childrens_output() {
    let out = subinterp()
        .args(["run", "-e", "console.log('one', 1 + 1)"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "one 2\n");

    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_path_buf();
    let script = dir.join("kids.js");
    std::fs::write(
        &script,
        "const w = interpreters.create();\n\
         w.run(\"console.log('from the child'); console.error('child err')\").check();\n\
         console.log('from main');\n",
    )
    .unwrap();
    let out = subinterp().arg("run").arg(&script).output().unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "from the child\nfrom main\n"
    );
    assert_eq!(String::from_utf8_lossy(&out.stderr), "child err\n");
}

#[test]
fn javascript_errors_exit_non_zero_with_type_message_and_stack() {
    let out = subinterp()
        .args([
            "run",
            "-e",
            "function boom() { throw new TypeError('bad thing') }\nboom()",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.starts_with("TypeError: bad thing\n"), "{stderr}");
    assert!(stderr.contains("at boom"), "{stderr}");

    let out = subinterp()
        .args(["run", "--json", "-e", "console.log('x'); null.y"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["completed"], false);
    assert_eq!(v["stdout"], "x\n");
    assert_eq!(v["error"]["type"], "TypeError");
    assert!(v["error"]["message"].as_str().unwrap().contains("null"));
    assert!(v["error"]["stack"].as_str().unwrap().contains("<script>"));
    assert!(v["stats"].is_object());

    let out = subinterp()
        .args(["run", "--json", "--timeout", "200ms", "-e", "for (;;) {}"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(125), "a limit, not a guest error");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["error"]["type"], "LimitError");
    assert_eq!(v["error"]["kind"], "timeout");
    assert_eq!(v["error"]["limit"]["timeout_ms"], 200.0);
}

#[test]
fn directory_grants_on_the_command_line() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_path_buf();
    std::fs::write(dir.join("f.txt"), "granted").unwrap();
    let hello = guest_path("hello");
    let grant = format!("{}:/data:ro", dir.display());
    let out = subinterp()
        .args(["run", "--dir", &grant])
        .arg(&hello)
        .args(["cat", "/data/f.txt"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).ends_with("granted"));
    let out = subinterp()
        .args(["run", "--dir", &grant])
        .arg(&hello)
        .args(["write", "/data/new.txt", "x"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "read-only: {out:?}");
    // Bad input is a clear error before anything runs.
    let out = subinterp()
        .args(["run", "--dir", "/no/such/dir:/data"])
        .arg(&hello)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("/no/such/dir is not a directory"),
        "{out:?}"
    );
}

/// Runs `cmd` with its stdout a pipe whose read end is closed before the
/// process is waited for: once the pipe's buffer is full (or at once, if the
/// read end is already gone) every write to stdout fails with a broken pipe.
/// Returns the exit status and what the process wrote to stderr.
fn run_with_stdout_closed(cmd: &mut Command) -> (std::process::ExitStatus, String) {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    (
        out.status,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Far more than a pipe buffers (64 KiB on Linux), so a write must fail.
const LOTS: &str = "console.log('x'.repeat(400000)); console.log('done')";

#[test]
fn a_closed_stdout_ends_a_json_run_quietly_with_its_exit_code() {
    let (status, stderr) = run_with_stdout_closed(subinterp().args(["run", "--json", "-e", LOTS]));
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(status.code(), Some(0), "the run's own exit code: {stderr}");
    assert_eq!(stderr, "", "a reader that went away is not an error");

    // A failed run keeps its own code too.
    let (status, stderr) = run_with_stdout_closed(subinterp().args([
        "run",
        "--json",
        "-e",
        &format!("{LOTS}; null.y"),
    ]));
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(status.code(), Some(1), "{stderr}");
}

#[test]
fn a_closed_stdout_does_not_panic_the_guests_output() {
    let (status, stderr) = run_with_stdout_closed(subinterp().args(["run", "-e", LOTS]));
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_ne!(status.code(), Some(101), "{stderr}");
    assert!(status.code().is_some(), "killed by a signal: {status:?}");

    // A WASI guest printing its (many, long) arguments.
    let long = "y".repeat(1000);
    let (status, stderr) = run_with_stdout_closed(
        subinterp()
            .arg("run")
            .arg(guest_path("hello"))
            .args(std::iter::repeat_n(&long, 300)),
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_ne!(status.code(), Some(101), "{stderr}");
    assert!(status.code().is_some(), "killed by a signal: {status:?}");
}

#[test]
fn a_closed_stderr_does_not_panic() {
    // The error report of a failed script, and a load error, go to stderr.
    for args in [
        &["run", "-e", "function f() { null.y }\nf()"][..],
        &["run", "/no/such/file.wasm"],
    ] {
        let mut child = subinterp()
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        drop(child.stderr.take());
        let status = child.wait().unwrap();
        assert_eq!(status.code(), Some(1), "{args:?}: {status:?}");
    }
}

#[test]
fn a_failing_stdout_is_a_clear_error() {
    let Ok(full) = std::fs::OpenOptions::new().write(true).open("/dev/full") else {
        return; // no /dev/full here
    };
    let out = subinterp()
        .args(["run", "--json", "-e", "console.log(1)"])
        .stdout(full)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.starts_with("subinterp: writing the result to stdout: "),
        "{stderr}"
    );
}

#[test]
fn odd_flags_end_with_a_clear_message_not_a_panic() {
    let huge = format!("1{}s", "0".repeat(400));
    let cases: &[&[&str]] = &[
        &["--timeout", "-1s"],
        &["--timeout=-1s"],
        &["--timeout", "1e400s"],
        &["--timeout", &huge],
        &["--timeout", "99999999999999999999s"],
        &["--timeout", "nan"],
        &["--timeout", "inf"],
        &["--timeout", ""],
        &["--timeout", "1.2.3s"],
        &["--max-memory", "99999999999GiB"],
        &["--max-memory", "-1"],
        &["--max-memory", "1.5GiB"],
        &["--max-output", ""],
        &["--max-output", "12parsecs"],
        &["--fuel", "-1"],
        &["--fuel", "1e3"],
        &["--dir", ""],
        &["--dir", ":ro"],
        &["--dir", "/no/such/dir"],
        &["--env", "NO_EQUALS_SIGN"],
        &["--env", "=value"],
        &["--no-such-flag"],
    ];
    for flags in cases {
        let out = subinterp()
            .arg("run")
            .args(*flags)
            .args(["-e", "console.log('ran')"])
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!stderr.contains("panicked"), "{flags:?}: {stderr}");
        assert!(
            matches!(out.status.code(), Some(1 | 2)),
            "{flags:?}: {:?} {stderr}",
            out.status
        );
        let first = stderr.lines().next().unwrap_or("");
        assert!(
            first.starts_with("error: ") || first.starts_with("subinterp: "),
            "{flags:?}: a one-line message first: {stderr}"
        );
        assert!(out.stdout.is_empty(), "{flags:?}: nothing ran");
    }
    // Values that are odd but valid still run.
    for flags in [
        &["--timeout", "9999999999999999999s"][..],
        &["--max-memory", "18446744073709551615"],
        &["--timeout", "0.5"],
    ] {
        let out = subinterp()
            .arg("run")
            .args(flags)
            .args(["-e", "console.log('ran')"])
            .output()
            .unwrap();
        assert!(out.status.success(), "{flags:?}: {out:?}");
        assert_eq!(String::from_utf8_lossy(&out.stdout), "ran\n", "{flags:?}");
    } // A memory ceiling below what the guest needs to start is a limit.
    let out = subinterp()
        .args(["run", "--max-memory", "0", "-e", "console.log('ran')"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(125), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("memory_limit"));
}

#[test]
fn python_runs_from_the_command_line_with_argv_env_and_exit_codes() {
    let tmp = tempfile::tempdir().unwrap();
    let script = tmp.path().join("prog.py");
    std::fs::write(
        &script,
        "import os, sys\nprint(sys.argv[1:], os.environ.get('GREETING'))\nsys.exit(int(sys.argv[1]))\n",
    )
    .unwrap();
    let out = subinterp()
        .args(["run", "--env", "GREETING=hi"])
        .arg(&script)
        .args(["4", "x"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(4), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "['4', 'x'] hi\n");

    let out = subinterp()
        .args(["run", "--python", "-e", "print(6 * 7)"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "42\n");

    // An uncaught exception: its traceback, exit code 1.
    let out = subinterp()
        .args(["run", "--python", "-e", "def f():\n    1/0\nf()"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("Traceback") && err.contains("ZeroDivisionError"),
        "{err}"
    );

    // A limit: 125, with the typed kind in --json.
    let out = subinterp()
        .args([
            "run",
            "--json",
            "--timeout",
            "300ms",
            "--python",
            "-e",
            "while True: pass",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(125), "{out:?}");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["error"]["kind"], "timeout");
}

/// Runs `subinterp ARGS` with `stdin` fed in: (exit code, stdout, stderr).
fn run_with_stdin(args: &[&str], stdin: &str) -> (Option<i32>, String, String) {
    use std::io::Write;
    let mut child = subinterp()
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn javascript_gets_argv_granted_env_stdin_and_exit_codes() {
    let src = "console.log(JSON.stringify(process.argv), JSON.stringify(scriptArgs));\n\
               console.log(process.env.GREETING, Object.keys(process.env).length);\n\
               console.log(process.stdin.readLine(), '|', process.stdin.readLine(), '|', process.stdin.readLine());\n\
               process.stdout.write('partial');\n\
               process.exit(7);\n\
               console.log('not reached');";
    let (code, out, err) = run_with_stdin(
        &["run", "--env", "GREETING=hi", "-e", src, "a", "b c"],
        "line one\r\nline two",
    );
    assert_eq!(code, Some(7), "{err}");
    assert_eq!(
        out,
        "[\"subinterp\",\"-e\",\"a\",\"b c\"] [\"-e\",\"a\",\"b c\"]\nhi 1\n\
         line one | line two | null\npartial"
    );
    // No grant, no environment; exit(0) is not catchable and is success.
    let (code, out, _) = run_with_stdin(
        &[
            "run",
            "-e",
            "console.log(Object.keys(process.env).length);\n\
             try { process.exit(0); } catch (e) { console.log('caught'); }\n\
             console.log('after');",
        ],
        "",
    );
    assert_eq!((code, out.as_str()), (Some(0), "0\n"));
    // The whole of stdin, as UTF-8 text or bytes.
    let (_, out, _) = run_with_stdin(
        &[
            "run",
            "-e",
            "console.log(process.stdin.text().toUpperCase())",
        ],
        "héllo wörld",
    );
    assert_eq!(out, "HÉLLO WÖRLD\n");
    let (_, out, _) = run_with_stdin(
        &["run", "-e", "console.log(process.stdin.bytes().length)"],
        "héllo",
    );
    assert_eq!(out, "6\n");
}

#[test]
fn an_mjs_file_runs_as_a_module_with_top_level_await_and_exit_code() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("main.mjs");
    std::fs::write(
        &file,
        "const x = await Promise.resolve(5);\nconsole.log('module', x);\nprocess.exitCode = 3;\n",
    )
    .unwrap();
    let out = subinterp().arg("run").arg(&file).output().unwrap();
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "module 5\n");
}

/// Runs `subinterp ARGS` and parses its stdout as the one `--json` object:
/// (exit code, the object, stderr).
fn json_run(args: &[&str]) -> (Option<i32>, serde_json::Value, String) {
    let out = subinterp().args(args).output().unwrap();
    let v = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)));
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    (out.status.code(), v, err)
}

#[test]
fn json_results_have_schema_1_and_the_process_exit_code() {
    let (code, v, _) = json_run(&["run", "--json", "-e", "1 + 1"]);
    assert_eq!(code, Some(0));
    assert_eq!(v["schema"], 1);
    assert_eq!(v["completed"], true);
    assert_eq!(v["exit_code"], 0, "set for JS too");
    assert_eq!(v["output"], "2", "the completion value");
    assert!(v["stats"].is_object());

    let (code, v, _) = json_run(&["run", "--json", "-e", "throw new RangeError('r')"]);
    assert_eq!((code, &v["exit_code"]), (Some(1), &serde_json::json!(1)));
    assert_eq!(v["error"]["kind"], "exception");
    assert_eq!(v["error"]["type"], "RangeError");

    let (code, v, _) = json_run(&["run", "--json", "-e", "process.exit(3)"]);
    assert_eq!((code, &v["exit_code"]), (Some(3), &serde_json::json!(3)));

    let (code, v, _) = json_run(&["run", "--json", "--python", "-e", "print('p')"]);
    assert_eq!((code, &v["exit_code"]), (Some(0), &serde_json::json!(0)));
    assert_eq!(
        (&v["schema"], &v["stdout"]),
        (&serde_json::json!(1), &serde_json::json!("p\n"))
    );

    let (code, v, _) = json_run(&["run", "--json", "--timeout", "200ms", "-e", "for (;;) {}"]);
    assert_eq!(
        (code, &v["exit_code"]),
        (Some(125), &serde_json::json!(125))
    );
}

#[test]
fn json_reports_usage_and_load_failures_as_json_too() {
    // A bad flag: JSON on stdout, nothing on stderr, exit 2.
    let (code, v, err) = json_run(&["run", "--json", "--no-such-flag", "x.js"]);
    assert_eq!(code, Some(2));
    assert_eq!(err, "");
    assert_eq!(v["schema"], 1);
    assert_eq!(v["exit_code"], 2);
    assert_eq!(
        (&v["error"]["type"], &v["error"]["kind"]),
        (&"UsageError".into(), &"usage".into())
    );
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("--no-such-flag")
    );
    assert!(v["stats"].is_null());
    // Without --json, clap's own text.
    let out = subinterp()
        .args(["run", "--no-such-flag"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--no-such-flag"));

    let tmp = tempfile::tempdir().unwrap();
    let missing = tmp.path().join("missing.wasm");
    let (code, v, err) = json_run(&["run", "--json", missing.to_str().unwrap()]);
    assert_eq!((code, err.as_str()), (Some(1), ""));
    assert_eq!(
        (&v["exit_code"], &v["error"]["kind"]),
        (&1.into(), &"load".into())
    );
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("missing.wasm")
    );

    let bad = tmp.path().join("bad.wasm");
    std::fs::write(&bad, b"\0asm\x01\0\0\0\x99").unwrap();
    let (code, v, _) = json_run(&["run", "--json", bad.to_str().unwrap()]);
    assert_eq!((code, &v["error"]["type"]), (Some(1), &"LoadError".into()));

    // Past a compile limit (8 MiB by default): 125, with the limit named.
    let big = tmp.path().join("big.wasm");
    std::fs::write(&big, vec![0u8; 9 << 20]).unwrap();
    let (code, v, _) = json_run(&["run", "--json", big.to_str().unwrap()]);
    assert_eq!((code, &v["exit_code"]), (Some(125), &125.into()));
    assert_eq!(v["error"]["kind"], "compile_limit");
    assert_eq!(v["error"]["limit"]["max_module_bytes"], 8 << 20);
}
