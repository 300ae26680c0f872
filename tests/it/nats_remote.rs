//! Remote runs of wasm modules named by content hash (issue 15): the
//! client puts the module in the server's object store once, workers fetch,
//! check and compile it. Against a real `nats-server` (see `nats.rs`);
//! without one on PATH the tests say so and pass.

use async_nats::jetstream;
use serde_json::Value;

use crate::common::guest_path;
use crate::nats::{Worker, remote, rt, server, text, wait_for};

/// The SHA-256 of `b`, hex.
fn sha256_hex(b: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(b)
        .iter()
        .map(|x| format!("{x:02x}"))
        .collect()
}

/// The object store entry's nuid (new at each upload) for `hash`.
fn upload_id(url: &str, hash: &str) -> String {
    rt().block_on(async {
        let js = jetstream::new(async_nats::connect(url).await.unwrap());
        let store = js.get_object_store("subinterp-modules").await.unwrap();
        store.info(hash).await.unwrap().nuid
    })
}

#[test]
fn a_wasm_module_runs_remotely_by_its_hash_uploaded_once() {
    let Some(server) = server("a_wasm_module_runs_remotely_by_its_hash") else {
        return;
    };
    let w = Worker::start(&server.url, &[]);
    let hello = guest_path("hello");
    let hash = sha256_hex(&std::fs::read(&hello).unwrap());
    let out = remote(&server.url, &[hello.to_str().unwrap(), "a", "b"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert_eq!(
        text(&out.stdout),
        "hello from wasm, argc=3\narg 1: a\narg 2: b\n"
    );
    let first = upload_id(&server.url, &hash);
    wait_for(&w.lines, &format!("fetched module {hash}"));

    // Again: not uploaded again, not fetched again.
    let out = remote(&server.url, &["--json", hello.to_str().unwrap(), "c"]);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["stdout"], "hello from wasm, argc=2\narg 1: c\n", "{v}");
    assert_eq!(upload_id(&server.url, &hash), first, "uploaded twice");
    let fetched = w
        .stop()
        .iter()
        .filter(|l| l.contains("fetched module"))
        .count();
    assert_eq!(fetched, 0, "the worker fetched the module twice");
}

#[test]
fn a_tampered_or_missing_module_is_a_load_error() {
    let Some(server) = server("a_tampered_or_missing_module_is_a_load_error") else {
        return;
    };
    let _w = Worker::start(&server.url, &["--max-module", "64KiB"]);
    let tmp = tempfile::tempdir().unwrap();
    let good = tmp.path().join("good.wat");
    std::fs::write(&good, "(module (func (export \"_start\")))").unwrap();
    let hash = sha256_hex(&std::fs::read(&good).unwrap());
    // Another module stored under good's hash, before the client's upload
    // (which then sees a module of that name and sends only the hash).
    let evil = b"(module (func (export \"_start\") unreachable))";
    rt().block_on(async {
        let js = jetstream::new(async_nats::connect(&server.url).await.unwrap());
        let store = js
            .create_object_store(jetstream::object_store::Config {
                bucket: "subinterp-modules".into(),
                storage: jetstream::stream::StorageType::File,
                ..Default::default()
            })
            .await
            .unwrap();
        store.put(hash.as_str(), &mut &evil[..]).await.unwrap();
    });
    let out = remote(&server.url, &["--json", good.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["error"]["kind"], "load", "{v}");
    let message = v["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("SHA-256") && message.contains("refused"),
        "{v}"
    );

    // A hash nobody uploaded: a load error, answered once, not redelivered.
    let missing = "0".repeat(64);
    let req = serde_json::json!({"schema": 1, "id": "missing1", "lang": "wasm",
        "name": "m.wasm", "module_sha256": missing});
    let (v, _) = rt().block_on(crate::nats::raw_request(&server.url, &req));
    assert_eq!(v["error"]["kind"], "load", "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("not in the bucket"),
        "{v}"
    );

    // Past the worker's --max-module: a compile limit, before any download.
    let big = tmp.path().join("big.wat");
    let pad = format!(
        "(module (func (export \"_start\")) (data \"{}\"))",
        "x".repeat(100 << 10)
    );
    std::fs::write(&big, pad).unwrap();
    let out = remote(&server.url, &["--json", big.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(125), "{out:?}");
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["error"]["kind"], "compile_limit", "{v}");
    assert_eq!(v["error"]["limit"]["max_module_bytes"], 64 << 10, "{v}");
}

/// The Rust API: one run, a call, many runs streamed back, typed failures.
#[test]
fn a_remote_host_runs_calls_and_streams_many_results() {
    use subinterp::ErrorKind;
    use subinterp::remote::{RemoteError, RemoteHost, RemoteOptions, RemoteRun};
    let Some(server) = server("a_remote_host_runs_calls_and_streams_many_results") else {
        return;
    };
    let _a = Worker::start(&server.url, &["--timeout", "2s"]);
    let _b = Worker::start(&server.url, &["--timeout", "2s"]);
    let remote = RemoteHost::connect(&server.url, RemoteOptions::new()).unwrap();

    let r = remote
        .run(RemoteRun::js("console.log(1 + 1); 'done'"))
        .unwrap();
    assert_eq!((r.completed, r.stdout_text()), (true, "2\n".to_string()));
    assert_eq!(r.output.as_deref(), Some(&b"done"[..]));
    // A limit is the same typed result as a local run's, clamped by the worker.
    let r = remote
        .run(RemoteRun::js("for (;;) {}").timeout(std::time::Duration::from_secs(3600)))
        .unwrap();
    let kind = r.error.map(|e| e.kind);
    assert_eq!(
        kind,
        Some(ErrorKind::Timeout {
            limit: std::time::Duration::from_secs(2)
        })
    );
    // A call, with bytes in and out.
    let src = "function rev(v) { const b = v.bytes(); b.reverse(); return b; }";
    let out = remote
        .call(RemoteRun::js(src), "rev", &b"\x00\xffab"[..])
        .unwrap();
    assert_eq!(&out[..], b"ba\xff\x00");
    let e = remote.call(RemoteRun::js(src), "nope", "").unwrap_err();
    assert!(
        matches!(&e, RemoteError::Guest(_) | RemoteError::Refused { .. }),
        "{e:?}"
    );
    // A module's trap, by its kind, as a local run's.
    let r = remote
        .run(RemoteRun::wasm(
            &b"(module (func (export \"_start\") unreachable))"[..],
        ))
        .unwrap();
    let kind = r.error.map(|e| e.kind);
    assert_eq!(
        kind,
        Some(ErrorKind::Trap(subinterp::Trap::UnreachableCodeReached))
    );
    // A module nobody uploaded: refused, typed.
    let e = remote
        .run(RemoteRun::wasm_sha256("1".repeat(64)))
        .unwrap_err();
    assert!(
        matches!(&e, RemoteError::Refused { kind, exit_code: 1, .. } if kind == "load"),
        "{e:?}"
    );

    // Many: every id answered once, each with its own result.
    let runs =
        (0..40).map(|i| RemoteRun::python(format!("print({i} * 3)")).id(format!("many-{i}")));
    let mut seen = std::collections::BTreeMap::new();
    let mut batch = remote.submit(runs).unwrap();
    assert_eq!(batch.total(), 40);
    for done in &mut batch {
        let i: usize = done.id["many-".len()..].parse().unwrap();
        assert_eq!(done.result.unwrap().stdout_text(), format!("{}\n", i * 3));
        assert!(seen.insert(i, ()).is_none(), "{} twice", done.id);
    }
    assert_eq!((seen.len(), batch.remaining()), (40, 0));
    // Ids answered already: their stored answers, without running again.
    let again = (0..3).map(|i| RemoteRun::python("print('not again')").id(format!("many-{i}")));
    let outs: Vec<_> = remote.submit(again).unwrap().collect();
    assert_eq!(outs.len(), 3);
    for done in outs {
        let i: usize = done.id["many-".len()..].parse().unwrap();
        assert_eq!(done.result.unwrap().stdout_text(), format!("{}\n", i * 3));
    }
    let e = remote
        .submit([RemoteRun::js("1").id("x"), RemoteRun::js("2").id("x")])
        .err()
        .unwrap();
    assert!(matches!(e, RemoteError::InvalidRequest(_)), "{e:?}");
}

/// `run --nats URL --batch FILE`: results as JSON lines, a summary, the
/// exit code of the whole; a bad line stops everything before sending.
#[test]
fn a_batch_prints_each_result_as_a_json_line() {
    let Some(server) = server("a_batch_prints_each_result_as_a_json_line") else {
        return;
    };
    let _w = Worker::start(&server.url, &["--concurrency", "4"]);
    let tmp = tempfile::tempdir().unwrap();
    let script = tmp.path().join("s.py");
    std::fs::write(&script, "import sys; print(sys.argv[1:], sys.stdin.read())").unwrap();
    let hello = guest_path("hello");
    let mut lines = vec![
        serde_json::json!({"id": "py", "file": script, "args": ["x"], "stdin": "in"}),
        serde_json::json!({"id": "wasm", "file": hello, "args": ["y"]}),
        serde_json::json!({"id": "throws", "source": "throw new Error('no')"}),
        serde_json::json!({"id": "slow", "source": "for (;;) {}", "limits": {"timeout_ms": 100}}),
    ];
    for i in 0..20 {
        lines.push(serde_json::json!({"source": format!("console.log({i})")}));
    }
    let file = tmp.path().join("batch.jsonl");
    let text_of = |ls: &[Value]| ls.iter().map(|l| format!("{l}\n")).collect::<String>();
    std::fs::write(&file, text_of(&lines)).unwrap();
    let out = crate::common::subinterp()
        .args([
            "run",
            "--nats",
            &server.url,
            "--batch",
            file.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let results: Vec<Value> = text(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(results.len(), 24, "{out:?}");
    let by_id = |id: &str| results.iter().find(|v| v["id"] == id).unwrap().clone();
    assert_eq!(by_id("py")["stdout"], "['x'] in\n");
    assert_eq!(
        by_id("wasm")["stdout"],
        "hello from wasm, argc=2\narg 1: y\n"
    );
    assert_eq!(by_id("throws")["exit_code"], 1);
    assert_eq!(by_id("slow")["error"]["kind"], "timeout");
    let mut printed: Vec<String> = results
        .iter()
        .filter_map(|v| {
            v["stdout"]
                .as_str()
                .filter(|s| !s.contains('[') && !s.contains("hello"))
        })
        .map(str::to_string)
        .filter(|s| !s.is_empty())
        .collect();
    printed.sort();
    let mut want: Vec<String> = (0..20).map(|i| format!("{i}\n")).collect();
    want.sort();
    assert_eq!(printed, want);
    let err = text(&out.stderr);
    assert!(
        err.contains("24 runs in") && err.contains("22 exited 0, 2 failed"),
        "{err}"
    );

    // A bad line: nothing is sent, the line is named.
    lines.insert(1, serde_json::json!({"source": "1", "env": {"A": "1"}}));
    std::fs::write(&file, text_of(&lines)).unwrap();
    let out = crate::common::subinterp()
        .args([
            "run",
            "--nats",
            &server.url,
            "--batch",
            file.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(text(&out.stderr).contains("batch.jsonl line 2"), "{out:?}");
    assert!(out.stdout.is_empty());
}
