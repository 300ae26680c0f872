//! `nats_run_hello_ms`: a `1+1` JavaScript request's round trip through a
//! NATS JetStream server and one `subinterp worker` ([`RemoteHost::run`]),
//! beside its floor, a plain NATS request/reply of the same payload sizes
//! through the same server. Both on loopback, against a `nats-server` this
//! starts on a free port with JetStream in a temporary folder; without one
//! on PATH the rows are skipped with a line saying so.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use subinterp::remote::{RemoteHost, RemoteOptions, RemoteRun};

use super::{Samples, ns};

/// The figures: p50 and p99 of each, in milliseconds, and the count.
pub(crate) struct NatsRun {
    pub(crate) run: (f64, f64),
    pub(crate) floor: (f64, f64),
    pub(crate) n: usize,
}

/// A child killed when dropped.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The child's stderr lines, as they come.
fn lines_of(child: &mut Child) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    let err = child.stderr.take().expect("stderr is piped");
    std::thread::spawn(move || {
        for line in BufReader::new(err).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

fn wait_for(lines: &mpsc::Receiver<String>, what: &str) -> Result<String, String> {
    loop {
        match lines.recv_timeout(Duration::from_secs(120)) {
            Ok(l) if l.contains(what) => return Ok(l),
            Ok(_) => {}
            Err(e) => return Err(format!("waiting for {what:?}: {e}")),
        }
    }
}

fn ms(s: &Samples) -> (f64, f64) {
    (s.quantile(0.5) / 1e6, s.quantile(0.99) / 1e6)
}

/// A `nats-server` on a free loopback port with JetStream in a temporary
/// folder, killed (and the folder removed) when dropped.
pub(crate) struct NatsServer {
    pub(crate) url: String,
    _server: Killed,
    _dir: tempfile::TempDir,
}

/// Starts a [`NatsServer`]; `Err` says why not (no `nats-server` on PATH, ...).
pub(crate) fn start_server() -> Result<NatsServer, String> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let mut server = Command::new("nats-server")
        .args(["-js", "-a", "127.0.0.1", "-p", "-1", "-sd"])
        .arg(dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("nats-server is not on PATH ({e}): apt-get install nats-server"))?;
    let server_lines = lines_of(&mut server);
    let server = Killed(server);
    let listening = wait_for(&server_lines, "Listening for client connections on ")?;
    let url = format!(
        "nats://{}",
        listening.rsplit(' ').next().unwrap_or_default()
    );
    wait_for(&server_lines, "Server is ready")?;
    // The server's later lines are not read again: drop them.
    std::thread::spawn(move || server_lines.iter().for_each(drop));
    Ok(NatsServer {
        url,
        _server: server,
        _dir: dir,
    })
}

/// Measures both; `Err` says why not (no `nats-server` on PATH, ...).
pub(crate) fn measure(quick: bool) -> Result<NatsRun, String> {
    let server = start_server()?;
    let url = server.url.clone();
    let mut worker = Command::new(env!("CARGO_BIN_EXE_subinterp"))
        .args(["worker", "--nats", &url, "--concurrency", "1"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("starting a worker: {e}"))?;
    let worker_lines = lines_of(&mut worker);
    let _worker = Killed(worker);
    wait_for(&worker_lines, "serving")?;
    // The worker's "running ID" lines are not read again: drop them.
    std::thread::spawn(move || worker_lines.iter().for_each(drop));

    let n = if quick { 50 } else { 300 };
    let remote = RemoteHost::connect(&url, RemoteOptions::new()).map_err(|e| e.to_string())?;
    let mut sizes = (0, 0);
    let mut run = Samples::new();
    for i in 0..n + 20 {
        let t = Instant::now();
        let done = remote
            .submit([RemoteRun::js("1+1")])
            .map_err(|e| e.to_string())?
            .next()
            .ok_or("no result")?;
        let elapsed = t.elapsed();
        let r = done.result.map_err(|e| e.to_string())?;
        if r.output.as_deref() != Some(&b"2"[..]) {
            return Err(format!("1+1 gave {:?}", r.output));
        }
        sizes.1 = done.json.to_string().len();
        if i >= 20 {
            run.record(ns(elapsed));
        }
    }
    // The request as sent: its JSON, with a 24-character id.
    let req = subinterp::remote::wire::Request {
        schema: 1,
        id: "x".repeat(24),
        lang: "js".into(),
        name: "script.js".into(),
        source: "1+1".into(),
        module_sha256: None,
        call: None,
        args: Vec::new(),
        stdin: None,
        limits: Default::default(),
    };
    sizes.0 = serde_json::to_vec(&req).map_err(|e| e.to_string())?.len();
    let floor = request_reply(&url, sizes, n)?;
    Ok(NatsRun {
        run: ms(&run),
        floor: ms(&floor),
        n,
    })
}

/// Plain NATS request/reply through the same server: a request of
/// `sizes.0` bytes answered with `sizes.1` bytes by a responder on another
/// connection.
fn request_reply(url: &str, sizes: (usize, usize), n: usize) -> Result<Samples, String> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    rt.block_on(async {
        let responder = async_nats::connect(url).await.map_err(|e| e.to_string())?;
        let mut sub = responder
            .subscribe("bench.echo")
            .await
            .map_err(|e| e.to_string())?;
        responder.flush().await.map_err(|e| e.to_string())?;
        let reply = bytes::Bytes::from(vec![b'r'; sizes.1]);
        tokio::spawn(async move {
            while let Some(m) = sub.next().await {
                if let Some(to) = m.reply {
                    let _ = responder.publish(to, reply.clone()).await;
                }
            }
        });
        let client = async_nats::connect(url).await.map_err(|e| e.to_string())?;
        let payload = bytes::Bytes::from(vec![b'q'; sizes.0]);
        let mut s = Samples::new();
        for i in 0..n + 20 {
            let t = Instant::now();
            client
                .request("bench.echo", payload.clone())
                .await
                .map_err(|e| e.to_string())?;
            if i >= 20 {
                s.record(ns(t.elapsed()));
            }
        }
        Ok(s)
    })
}
