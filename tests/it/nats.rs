//! Runs over NATS JetStream (issue 15): `subinterp worker` processes and
//! `subinterp run --nats`, against a real `nats-server` that each test
//! starts on a random loopback port with JetStream in its own temporary
//! folder. Without `nats-server` on PATH the tests say so and pass.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::sync::mpsc;
use std::time::Duration;

use async_nats::jetstream;
use futures_util::StreamExt;
use serde_json::{Value, json};

use crate::common::subinterp;

/// A `nats-server` with JetStream, killed when dropped.
pub(crate) struct Server {
    child: Child,
    pub(crate) url: String,
    _dir: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts a server, or says why not and gives `None`.
pub(crate) fn server(test: &str) -> Option<Server> {
    server_with(test, &[])
}

/// A server started with `extra` flags (e.g. `--user`, `--pass`).
fn server_with(test: &str, extra: &[&str]) -> Option<Server> {
    let bin = std::env::var("SUBINTERP_NATS_SERVER").unwrap_or_else(|_| "nats-server".into());
    let dir = tempfile::tempdir().unwrap();
    let spawned = Command::new(&bin)
        .args(["-js", "-a", "127.0.0.1", "-p", "-1", "-sd"])
        .arg(dir.path())
        .args(extra)
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn();
    let Ok(mut child) = spawned else {
        eprintln!("nats tests not run ({test}): `{bin}` is not on PATH (apt install nats-server)");
        return None;
    };
    let lines = lines_of(child.stderr.take().unwrap());
    let url = wait_for(&lines, "Listening for client connections on ")
        .rsplit(' ')
        .next()
        .map(|addr| format!("nats://{addr}"))
        .unwrap();
    wait_for(&lines, "Server is ready");
    Some(Server {
        child,
        url,
        _dir: dir,
    })
}

/// The lines a child writes to a pipe, as they come.
fn lines_of(r: impl std::io::Read + Send + 'static) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(r).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// The first line containing `what` (a minute at most: a child that never
/// says it is a failure).
pub(crate) fn wait_for(lines: &mpsc::Receiver<String>, what: &str) -> String {
    loop {
        match lines.recv_timeout(Duration::from_secs(120)) {
            Ok(l) if l.contains(what) => return l,
            Ok(_) => {}
            Err(e) => panic!("waiting for {what:?}: {e}"),
        }
    }
}

/// Both language guests in the test cache, so workers start at once.
fn warm() {
    static WARM: OnceLock<()> = OnceLock::new();
    WARM.get_or_init(|| {
        let out = subinterp()
            .args(["compile", "--js", "--python"])
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
    });
}

/// A `subinterp worker`, killed when dropped; its stderr lines.
pub(crate) struct Worker {
    child: Child,
    pub(crate) lines: mpsc::Receiver<String>,
}

impl Worker {
    pub(crate) fn start(url: &str, extra: &[&str]) -> Worker {
        Worker::start_with(url, extra, &[])
    }

    fn start_with(url: &str, extra: &[&str], env: &[(&str, &str)]) -> Worker {
        warm();
        let mut child = subinterp()
            .envs(env.iter().copied())
            .args(["worker", "--nats", url])
            .args(extra)
            .stderr(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        let lines = lines_of(child.stderr.take().unwrap());
        wait_for(&lines, "serving");
        Worker { child, lines }
    }
}

impl Worker {
    /// Kills the worker: the lines it wrote that were not read yet.
    pub(crate) fn stop(mut self) -> Vec<String> {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.lines.iter().collect()
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(crate) fn remote(url: &str, args: &[&str]) -> Output {
    subinterp()
        .args(["run", "--nats", url])
        .args(args)
        .output()
        .unwrap()
}

pub(crate) fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn a_remote_run_reports_as_a_local_one() {
    let Some(server) = server("a_remote_run_reports_as_a_local_one") else {
        return;
    };
    let _w = Worker::start(&server.url, &["--timeout", "1s"]);
    let out = remote(&server.url, &["-e", "console.log(1 + 1)"]);
    assert_eq!(
        (out.status.code(), text(&out.stdout)),
        (Some(0), "2\n".into())
    );

    let out = remote(&server.url, &["-e", "throw new TypeError('bad')"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).starts_with("TypeError: bad"), "{out:?}");

    let out = remote(&server.url, &["--json", "-e", "process.exit(3)"]);
    assert_eq!(out.status.code(), Some(3));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!((&v["schema"], &v["exit_code"]), (&json!(1), &json!(3)));
    assert!(v["id"].as_str().is_some_and(|id| id.len() == 24), "{v}");

    // Python, with arguments and input bytes.
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("in.txt");
    std::fs::write(&input, "the input").unwrap();
    let src = "import sys; print(sys.argv[1:], sys.stdin.read())";
    let out = remote(
        &server.url,
        &[
            "--input",
            input.to_str().unwrap(),
            "--python",
            "-e",
            src,
            "a",
            "b",
        ],
    );
    assert_eq!(text(&out.stdout), "['a', 'b'] the input\n", "{out:?}");

    // The worker's ceiling wins over the request's own limit.
    let out = remote(
        &server.url,
        &["--json", "--timeout", "1h", "-e", "for (;;) {}"],
    );
    assert_eq!(out.status.code(), Some(125));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["error"]["kind"], "timeout");
    assert_eq!(v["error"]["limit"]["timeout_ms"], 1000.0);

    // Output past what one NATS message holds: an output-limit result, not
    // a request run again and again.
    let out = remote(
        &server.url,
        &["--json", "-e", "console.log('x'.repeat(2 << 20))"],
    );
    assert_eq!(out.status.code(), Some(125), "{out:?}");
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["error"]["kind"], "output_limit");
}

/// Publishes `req` as a raw request and waits for the result of its id.
pub(crate) async fn raw_request(url: &str, req: &Value) -> (Value, jetstream::stream::Stream) {
    let js = jetstream::new(async_nats::connect(url).await.unwrap());
    js.publish("subinterp.run", req.to_string().into())
        .await
        .unwrap()
        .await
        .unwrap();
    let results = js.get_stream("subinterp-results").await.unwrap();
    let subject = format!("subinterp.result.{}", req["id"].as_str().unwrap());
    let consumer = results
        .create_consumer(jetstream::consumer::pull::OrderedConfig {
            filter_subject: subject,
            ..Default::default()
        })
        .await
        .unwrap();
    let m = consumer
        .messages()
        .await
        .unwrap()
        .next()
        .await
        .unwrap()
        .unwrap();
    (serde_json::from_slice(&m.payload).unwrap(), results)
}

pub(crate) fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn a_request_cannot_grant_itself_anything_and_is_answered_once() {
    let Some(server) = server("a_request_cannot_grant_itself_anything") else {
        return;
    };
    let w = Worker::start(&server.url, &[]);
    let rt = rt();
    let base = json!({"schema": 1, "lang": "js", "name": "x.js", "source": "console.log(7)"});
    // Directories, environment, or any field a worker does not know: refused.
    for (id, extra) in [
        ("env1", json!({"env": {"SECRET": "1"}})),
        ("dir1", json!({"dirs": ["/"]})),
    ] {
        let mut req = base.clone();
        req["id"] = json!(id);
        req.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        let (v, _) = rt.block_on(raw_request(&server.url, &req));
        assert_eq!(
            (&v["error"]["kind"], &v["exit_code"]),
            (&json!("request"), &json!(2)),
            "{v}"
        );
        assert!(
            v["error"]["message"]
                .as_str()
                .unwrap()
                .contains("unknown field"),
            "{v}"
        );
    }
    // Fuel on a worker that does not count it: refused, not ignored.
    let mut req = base.clone();
    req["id"] = json!("fuel1");
    req["limits"] = json!({"fuel": 1000});
    let (v, _) = rt.block_on(raw_request(&server.url, &req));
    assert_eq!(v["error"]["kind"], "request", "{v}");

    // The same id twice (a redelivery after a worker died past its
    // publish): run once, one result stored.
    let mut req = base.clone();
    req["id"] = json!("once");
    let (v, _) = rt.block_on(raw_request(&server.url, &req));
    assert_eq!(v["stdout"], "7\n");
    req["source"] = json!("console.log(8)");
    let (v, results) = rt.block_on(raw_request(&server.url, &req));
    assert_eq!(v["stdout"], "7\n", "the first answer stands");
    // The worker's lines up to its skipping the second: one run of it.
    let mut runs = 0;
    loop {
        let l = w.lines.recv_timeout(Duration::from_secs(120)).unwrap();
        runs += usize::from(l.contains("running once"));
        if l.contains("once was answered already") {
            break;
        }
    }
    assert_eq!(runs, 1);
    let mut results = results;
    let stored = rt.block_on(results.info()).unwrap().state.messages;
    assert_eq!(stored, 4, "one result per id");
}

#[test]
fn a_killed_worker_leaves_its_request_to_another() {
    let Some(server) = server("a_killed_worker_leaves_its_request_to_another") else {
        return;
    };
    let mut a = Worker::start(&server.url, &["--timeout", "1h"]);
    let client = subinterp()
        .args(["run", "--nats", &server.url, "--json", "-e", "for (;;) {}"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for(&a.lines, "running");
    a.child.kill().unwrap();
    a.child.wait().unwrap();
    // Another worker, whose ceiling ends the run: the client gets its result.
    let b = Worker::start(&server.url, &["--timeout", "300ms"]);
    let out = client.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(125), "{out:?}");
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["error"]["limit"]["timeout_ms"], 300.0);
    wait_for(&b.lines, "running");
}

/// Requests over three workers, one of them killed and replaced every
/// `KILL_EVERY` results: every request gets exactly one result.
/// `SUBINTERP_NATS_REQUESTS` sets the count (`make soak-nats`: 10,000).
#[test]
fn requests_survive_workers_killed_mid_stream() {
    let Some(server) = server("requests_survive_workers_killed_mid_stream") else {
        return;
    };
    let n: usize = std::env::var("SUBINTERP_NATS_REQUESTS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(300);
    const KILL_EVERY: usize = 50;
    let mut workers: Vec<Worker> = (0..3).map(|_| Worker::start(&server.url, &[])).collect();
    let rt = rt();
    let js = rt.block_on(async {
        let js = jetstream::new(async_nats::connect(&server.url).await.unwrap());
        // The first worker made the streams.
        for i in 0..n {
            let req = json!({"schema": 1, "id": format!("r{i}"), "lang": "js", "name": "n.js",
                "source": format!("console.log({i} * 2)")});
            js.publish("subinterp.run", req.to_string().into())
                .await
                .unwrap()
                .await
                .unwrap();
        }
        js
    });
    let results = rt.block_on(js.get_stream("subinterp-results")).unwrap();
    let consumer = rt
        .block_on(
            results.create_consumer(jetstream::consumer::pull::OrderedConfig {
                filter_subject: "subinterp.result.*".into(),
                ..Default::default()
            }),
        )
        .unwrap();
    let mut messages = rt.block_on(consumer.messages()).unwrap();
    let mut seen = std::collections::BTreeMap::new();
    let mut killed = 0;
    while seen.len() < n {
        let m = rt.block_on(messages.next()).unwrap().unwrap();
        let v: Value = serde_json::from_slice(&m.payload).unwrap();
        let id = v["id"].as_str().unwrap().to_string();
        let i: usize = id[1..].parse().unwrap();
        assert_eq!(v["stdout"], format!("{}\n", i * 2), "{v}");
        assert!(seen.insert(id, v).is_none(), "a second result for one id");
        if seen.len() % KILL_EVERY == 0 && seen.len() < n {
            workers.remove(killed % 3);
            workers.push(Worker::start(&server.url, &[]));
            killed += 1;
        }
    }
    let mut results = results;
    assert_eq!(
        rt.block_on(results.info()).unwrap().state.messages as usize,
        n
    );
    eprintln!(
        "{n} requests, {killed} workers killed: {} results, none twice",
        seen.len()
    );
}

/// Credentials are the operator's: a server that wants a user refuses a
/// client or worker without one, and serves one that has it from the
/// environment.
#[test]
fn credentials_come_from_the_operator() {
    let Some(server) = server_with(
        "credentials_come_from_the_operator",
        &["--user", "runner", "--pass", "s3cret"],
    ) else {
        return;
    };
    let login = [
        ("SUBINTERP_NATS_USER", "runner"),
        ("SUBINTERP_NATS_PASSWORD", "s3cret"),
    ];
    let _w = Worker::start_with(&server.url, &[], &login);
    let out = remote(&server.url, &["--json", "-e", "console.log(1)"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["error"]["kind"], "load", "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("connecting to NATS"),
        "{v}"
    );
    let out = subinterp()
        .envs(login)
        .args(["run", "--nats", &server.url, "-e", "console.log(1)"])
        .output()
        .unwrap();
    assert_eq!(
        (out.status.code(), text(&out.stdout)),
        (Some(0), "1\n".into()),
        "{out:?}"
    );
    // A worker without the login does not start.
    let out = subinterp()
        .args(["worker", "--nats", &server.url])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
}
