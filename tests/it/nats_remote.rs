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
