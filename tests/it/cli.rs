//! The `subinterp` command line, run as a process.

use std::process::Command;

use crate::common::guest_path;

fn subinterp() -> Command {
    Command::new(env!("CARGO_BIN_EXE_subinterp"))
}

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
    let dir = std::env::temp_dir().join(format!("subinterp-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
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
    std::fs::remove_dir_all(&dir).unwrap();
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

    let dir = std::env::temp_dir().join(format!("subinterp-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
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
    std::fs::remove_dir_all(&dir).unwrap();
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
    let dir = std::env::temp_dir().join(format!("subinterp-cli-dir-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
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
    std::fs::remove_dir_all(&dir).unwrap();
}
