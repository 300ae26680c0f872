//! Remote runs give what local runs give, and a worker tells a missing
//! module from a fetch that may succeed later (issue 15): a guest's stdout
//! and stderr come back as its exact bytes, UTF-8 or not; a module fetch
//! that fails for a reason that may pass is tried again on a later delivery
//! instead of answered, at most five times. Against a real `nats-server`
//! (see `nats.rs`); without one on PATH the tests say so and pass.

use std::sync::mpsc;

use async_nats::jetstream;
use serde_json::{Value, json};
use subinterp::remote::wire::sha256_hex;
use subinterp::remote::{RemoteHost, RemoteOptions, RemoteRun};
use subinterp::{Host, OutputMode, Run, RunResult};

use crate::common::{completed, host, subinterp};
use crate::nats::{Worker, raw_request, remote, rt, server, wait_for};

/// A WASI module writing `a ff fe` to stdout and `c3 28` to stderr: bytes
/// that are not UTF-8.
const RAW_BYTES_WAT: &str = r#"(module
  (import "wasi_snapshot_preview1" "fd_write"
    (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 16) "a\ff\fe")
  (data (i32.const 32) "\c3(")
  (func (export "_start")
    (i32.store (i32.const 0) (i32.const 16))
    (i32.store (i32.const 4) (i32.const 3))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))
    (i32.store (i32.const 0) (i32.const 32))
    (i32.store (i32.const 4) (i32.const 2))
    (drop (call $fd_write (i32.const 2) (i32.const 0) (i32.const 1) (i32.const 8)))))"#;

/// JavaScript writing lone surrogates, which the guest encodes as the
/// three bytes of each (`ed a0 80`, `ed bf bf`): not UTF-8 either.
const RAW_BYTES_JS: &str = r#"process.stdout.write("a\ud800b"); process.stderr.write("\udfff")"#;

/// The module run here, locally.
fn local_wasm(host: &Host) -> RunResult {
    let guest = host.compile("raw.wat", RAW_BYTES_WAT.as_bytes()).unwrap();
    let interp = host
        .interpreter(&guest)
        .args(["raw.wat"])
        .stdout(OutputMode::Capture)
        .stderr(OutputMode::Capture)
        .build()
        .unwrap();
    completed(interp.run(Run::start()).unwrap())
}

#[test]
fn remote_streams_are_the_guests_exact_bytes() {
    let Some(server) = server("remote_streams_are_the_guests_exact_bytes") else {
        return;
    };
    let _w = Worker::start(&server.url, &[]);
    let remote = RemoteHost::connect(&server.url, RemoteOptions::new()).unwrap();
    let host = host();

    let local = local_wasm(&host);
    assert_eq!(
        (&local.stdout[..], &local.stderr[..]),
        (&b"a\xff\xfe"[..], &b"\xc3("[..])
    );
    let run = RemoteRun::wasm(RAW_BYTES_WAT.as_bytes().to_vec()).name("raw.wat");
    let r = completed(remote.run(run).unwrap());
    assert_eq!((r.stdout, r.stderr), (local.stdout, local.stderr));

    let local = completed(
        host.create_js(subinterp::Limits::new())
            .unwrap()
            .run(Run::js(RAW_BYTES_JS))
            .unwrap(),
    );
    assert_eq!(
        (&local.stdout[..], &local.stderr[..]),
        (&b"a\xed\xa0\x80b"[..], &b"\xed\xbf\xbf"[..])
    );
    let r = completed(remote.run(RemoteRun::js(RAW_BYTES_JS)).unwrap());
    assert_eq!((r.stdout, r.stderr), (local.stdout, local.stderr));

    // Valid UTF-8 travels as text only.
    let (v, _) = rt().block_on(raw_request(
        &server.url,
        &json!({"schema": 1, "id": "utf8", "lang": "js", "name": "-e",
            "source": "console.log('é'); console.error('ü')"}),
    ));
    assert_eq!(
        (v["stdout"].as_str(), v["stderr"].as_str()),
        (Some("é\n"), Some("ü\n")),
        "{v}"
    );
    assert!(
        v.get("stdout_base64").is_none() && v.get("stderr_base64").is_none(),
        "{v}"
    );
}

#[test]
fn run_nats_writes_the_guests_exact_bytes() {
    let Some(server) = server("run_nats_writes_the_guests_exact_bytes") else {
        return;
    };
    let _w = Worker::start(&server.url, &[]);
    let tmp = tempfile::tempdir().unwrap();
    let wat = tmp.path().join("raw.wat");
    std::fs::write(&wat, RAW_BYTES_WAT).unwrap();
    let wat = wat.to_str().unwrap();
    for args in [&[wat][..], &["-e", RAW_BYTES_JS][..]] {
        let local = subinterp().arg("run").args(args).output().unwrap();
        let far = remote(&server.url, args);
        assert_eq!(far.status.code(), Some(0), "{far:?}");
        assert!(std::str::from_utf8(&local.stdout).is_err(), "{local:?}");
        assert_eq!((far.stdout, far.stderr), (local.stdout, local.stderr));
    }
    // --json carries the bytes as base64 beside the text.
    let far = remote(&server.url, &["--json", wat]);
    let v: Value = serde_json::from_slice(&far.stdout).unwrap();
    assert_eq!(
        (v["stdout_base64"].as_str(), v["stderr_base64"].as_str()),
        (Some("Yf/+"), Some("wyg=")),
        "{v}"
    );
}

/// Switches the direct-get service of the modules bucket's stream off or
/// on. While it is off, the worker's look-up of an object waits for an
/// answer that does not come (a time-out after the client's 10 s): a server
/// problem that passes once the service is on again.
fn direct_get(url: &str, on: bool) {
    rt().block_on(async {
        let js = jetstream::new(async_nats::connect(url).await.unwrap());
        let mut stream = js.get_stream("OBJ_subinterp-modules").await.unwrap();
        let mut config = stream.info().await.unwrap().config.clone();
        config.allow_direct = on;
        js.update_stream(config).await.unwrap();
    });
}

/// Stores, as the description of the object `name` in the modules bucket,
/// bytes that are no description: the worker's look-up of it fails in a
/// way the object store does not name (`InfoErrorKind::Other`).
fn undecodable_description(url: &str, name: &str) {
    use base64::Engine;
    let encoded = base64::engine::general_purpose::URL_SAFE.encode(name);
    rt().block_on(async {
        let js = jetstream::new(async_nats::connect(url).await.unwrap());
        let subject = format!("$O.subinterp-modules.M.{encoded}");
        js.publish(subject, "not a description".into())
            .await
            .unwrap()
            .await
            .unwrap();
    });
}

/// The worker's lines about `id` up to the one containing `what`: how many
/// of them say it will try again.
fn retries_until(lines: &mpsc::Receiver<String>, id: &str, what: &str) -> usize {
    let mut retries = 0;
    loop {
        let line = wait_for(lines, &format!(": {id}: "));
        if line.contains(what) {
            return retries;
        }
        retries += usize::from(line.contains("trying again in 1 s"));
    }
}

#[test]
fn a_module_fetch_that_may_pass_is_tried_again_then_answered() {
    let Some(server) = server("a_module_fetch_that_may_pass_is_tried_again") else {
        return;
    };
    let w = Worker::start(&server.url, &[]);
    let request = |id: &str, hash: &str| json!({"schema": 1, "id": id, "lang": "wasm", "name": "raw.wat", "module_sha256": hash});

    // A look-up that fails every time: answered on the fifth delivery,
    // saying so, after four hand-backs.
    let garbled = "1".repeat(64);
    undecodable_description(&server.url, &garbled);
    let (v, _) = rt().block_on(raw_request(&server.url, &request("gives-up", &garbled)));
    assert_eq!(v["error"]["kind"], "load", "{v}");
    let message = v["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("failed 5 times") && message.contains(&garbled),
        "{v}"
    );
    assert_eq!(retries_until(&w.lines, "gives-up", "answered"), 4);

    // A look-up that times out once the server stops serving it, then
    // succeeds on a later delivery once it serves again: the run's result.
    let wasm = RAW_BYTES_WAT.as_bytes();
    let hash = sha256_hex(wasm);
    rt().block_on(async {
        let js = jetstream::new(async_nats::connect(&server.url).await.unwrap());
        let store = js.get_object_store("subinterp-modules").await.unwrap();
        store.put(hash.as_str(), &mut &wasm[..]).await.unwrap();
    });
    direct_get(&server.url, false);
    let (tx, rx) = mpsc::channel();
    let (url, req) = (server.url.clone(), request("comes-back", &hash));
    std::thread::spawn(move || tx.send(rt().block_on(raw_request(&url, &req)).0));
    let line = wait_for(&w.lines, "comes-back: fetching module");
    assert!(
        line.contains("timed out") && line.contains("trying again"),
        "{line}"
    );
    direct_get(&server.url, true);
    let v = rx.recv().unwrap();
    assert_eq!(
        (v["completed"].as_bool(), v["stdout_base64"].as_str()),
        (Some(true), Some("Yf/+")),
        "{v}"
    );
}

/// Stores a well-formed description of the object `name` in the modules
/// bucket whose one chunk was never stored: reading it waits for a chunk
/// that does not come.
fn chunkless_description(url: &str, name: &str) {
    use base64::Engine;
    let encoded = base64::engine::general_purpose::URL_SAFE.encode(name);
    let info = json!({
        "name": name, "bucket": "subinterp-modules", "nuid": "NEVERSTOREDCHUNKS0000",
        "size": 16, "chunks": 1, "mtime": "2026-12-06T00:00:00Z",
        "digest": "SHA-256=47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU=",
    });
    rt().block_on(async {
        let js = jetstream::new(async_nats::connect(url).await.unwrap());
        let subject = format!("$O.subinterp-modules.M.{encoded}");
        js.publish(subject, info.to_string().into())
            .await
            .unwrap()
            .await
            .unwrap();
    });
}

/// A module whose chunks never come: the fetch ends at `--fetch-timeout`
/// as a failure that may pass, and after five deliveries the request is
/// answered, rather than held by the worker for good.
#[test]
fn a_module_fetch_that_never_ends_is_cut_off() {
    let Some(server) = server("a_module_fetch_that_never_ends_is_cut_off") else {
        return;
    };
    let w = Worker::start(&server.url, &["--fetch-timeout", "200ms"]);
    let hash = "2".repeat(64);
    chunkless_description(&server.url, &hash);
    let request = json!({"schema": 1, "id": "cut-off", "lang": "wasm", "name": "m.wasm", "module_sha256": hash});
    let (v, _) = rt().block_on(raw_request(&server.url, &request));
    assert_eq!(v["error"]["kind"], "load", "{v}");
    let message = v["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("failed 5 times") && message.contains("--fetch-timeout"),
        "{v}"
    );
    assert_eq!(retries_until(&w.lines, "cut-off", "answered"), 4);
}
