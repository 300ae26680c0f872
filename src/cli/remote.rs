//! Runs carried by NATS JetStream (issue 15): what travels (a request and
//! its result, both JSON), the two streams they travel in, and the client
//! side, `subinterp run --nats URL`.
//!
//! On a server, for the subject prefix `S` (`--subject`, default
//! `subinterp`):
//!
//! ```text
//!   client ──publish──▶ S.run         stream S-runs     (work queue: a request
//!                                                        is gone once acked)
//!   worker ◀──pull───── consumer S-workers (explicit acks; unacked requests are
//!                                          redelivered after ACK_WAIT)
//!   worker ──publish──▶ S.result.ID   stream S-results  (kept a day; a result
//!                                                        per id, deduplicated)
//!   client ◀──ordered consumer filtered on S.result.ID
//! ```
//!
//! A worker acknowledges a request only after its result is stored, so a
//! worker that dies mid-run leaves the request to another; the result is
//! published with `Nats-Msg-Id: ID`, and a worker first looks for a result
//! already stored under the id, so no id is answered twice.
//!
//! A wasm module travels by content hash: the client puts it in the object
//! store bucket `S-modules` under its SHA-256 (hex), unless it is there
//! already, and the request names the hash (`lang: "wasm"`,
//! `module_sha256`); a worker fetches it, checks its size and hash, and
//! keeps the compiled module for the next request that names it.

use std::io::{IsTerminal, Read};
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use async_nats::jetstream::{self, consumer, object_store, stream};
use base64::Engine;
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use subinterp::Language;

use crate::args::{LimitArgs, RemoteArgs, RunArgs};
use crate::report::{print_json, report};

/// The version of the request's layout.
pub(crate) const REQUEST_SCHEMA: u32 = 1;

/// How long a worker may hold a request without a sign of life before the
/// server gives it to another worker; a worker sends one every third of it
/// while a run goes on.
pub(crate) const ACK_WAIT: Duration = Duration::from_secs(4);

/// How long results stay on the server.
const RESULTS_MAX_AGE: Duration = Duration::from_secs(24 * 3600);

/// A run request, as JSON on `S.run`. Unknown fields are refused: a request
/// cannot ask for directories, environment or anything else a worker does
/// not offer.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Request {
    /// [`REQUEST_SCHEMA`].
    pub(crate) schema: u32,
    /// Names the request and its result: 1 to 64 of `[A-Za-z0-9_-]`.
    pub(crate) id: String,
    /// `js`, `js_module`, `python` or `wasm`.
    pub(crate) lang: String,
    /// The script's name (argv[0], and a module's name).
    pub(crate) name: String,
    /// The source (empty for `wasm`).
    #[serde(default)]
    pub(crate) source: String,
    /// `wasm`: the module's SHA-256, 64 lowercase hex digits, naming it in
    /// the `S-modules` object store.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) module_sha256: Option<String>,
    /// argv[1..].
    #[serde(default)]
    pub(crate) args: Vec<String>,
    /// stdin, base64.
    #[serde(default)]
    pub(crate) stdin: Option<String>,
    /// The limits asked for; a worker clamps them to its own.
    #[serde(default)]
    pub(crate) limits: WireLimits,
}

/// Limits in a request; absent ones are the worker's.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct WireLimits {
    pub(crate) timeout_ms: Option<u64>,
    pub(crate) max_memory: Option<usize>,
    pub(crate) fuel: Option<u64>,
    pub(crate) max_output: Option<usize>,
}

impl WireLimits {
    fn from_args(l: &LimitArgs) -> Self {
        WireLimits {
            timeout_ms: l
                .timeout
                .map(|t| u64::try_from(t.as_millis()).unwrap_or(u64::MAX)),
            max_memory: l.max_memory,
            fuel: l.fuel,
            max_output: l.max_output,
        }
    }
}

/// Whether `id` may name a request (and a subject).
pub(crate) fn valid_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// The subject prefix's check: it names streams and subjects.
pub(crate) fn check_prefix(s: &str) -> Result<()> {
    if !valid_id(s) {
        bail!("--subject wants 1 to 64 of A-Z a-z 0-9 _ -, got {s:?}");
    }
    Ok(())
}

/// Subject names under a prefix.
pub(crate) struct Subjects {
    pub(crate) prefix: String,
}

impl Subjects {
    pub(crate) fn run(&self) -> String {
        format!("{}.run", self.prefix)
    }
    pub(crate) fn result(&self, id: &str) -> String {
        format!("{}.result.{id}", self.prefix)
    }
    pub(crate) fn runs_stream(&self) -> String {
        format!("{}-runs", self.prefix)
    }
    pub(crate) fn results_stream(&self) -> String {
        format!("{}-results", self.prefix)
    }
    pub(crate) fn workers(&self) -> String {
        format!("{}-workers", self.prefix)
    }
    /// The object store bucket of wasm modules, keyed by SHA-256.
    pub(crate) fn modules_bucket(&self) -> String {
        format!("{}-modules", self.prefix)
    }
}

/// The SHA-256 of `bytes`, as 64 lowercase hex digits.
pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Whether `s` can be a module's hash (and an object's name).
pub(crate) fn valid_sha256(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// The bucket of wasm modules (made on first use; kept until deleted).
pub(crate) async fn modules(
    js: &jetstream::Context,
    s: &Subjects,
) -> Result<object_store::ObjectStore> {
    let bucket = s.modules_bucket();
    if let Ok(store) = js.get_object_store(&bucket).await {
        return Ok(store);
    }
    js.create_object_store(object_store::Config {
        bucket,
        storage: stream::StorageType::File,
        ..Default::default()
    })
    .await
    .context("making the modules bucket")
}

/// Puts `wasm` in the modules bucket under its hash, unless an object of
/// that name is there already; its hash.
pub(crate) async fn upload(js: &jetstream::Context, s: &Subjects, wasm: &[u8]) -> Result<String> {
    let hash = sha256_hex(wasm);
    let store = modules(js, s).await?;
    if store.info(&hash).await.is_err() {
        store
            .put(hash.as_str(), &mut std::io::Cursor::new(wasm))
            .await
            .context("uploading the module")?;
    }
    Ok(hash)
}

/// A current-thread runtime for the client, a multi-threaded one for a
/// worker (its runs go to blocking threads either way).
pub(crate) fn runtime(threads: usize) -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .enable_all()
        .build()
        .context("starting the async runtime")
}

/// Connects with the credentials the operator configured: `--creds FILE`,
/// else `$SUBINTERP_NATS_CREDS`, else `$SUBINTERP_NATS_USER` and
/// `$SUBINTERP_NATS_PASSWORD`, else none. Never from a request.
pub(crate) async fn connect(url: &str, creds: Option<&Path>) -> Result<async_nats::Client> {
    let file = creds
        .map(Path::to_path_buf)
        .or_else(|| std::env::var_os("SUBINTERP_NATS_CREDS").map(Into::into));
    let user = std::env::var("SUBINTERP_NATS_USER").ok();
    let password = std::env::var("SUBINTERP_NATS_PASSWORD").ok();
    let options = match (file, user, password) {
        (Some(f), _, _) => async_nats::ConnectOptions::with_credentials_file(&f)
            .await
            .with_context(|| format!("reading NATS credentials {}", f.display()))?,
        (None, Some(u), Some(p)) => async_nats::ConnectOptions::with_user_and_password(u, p),
        _ => async_nats::ConnectOptions::new(),
    };
    options
        .name("subinterp")
        .connect(url)
        .await
        .with_context(|| format!("connecting to NATS at {url}"))
}

/// Makes (or finds) the two streams.
pub(crate) async fn streams(
    js: &jetstream::Context,
    s: &Subjects,
) -> Result<(stream::Stream, stream::Stream)> {
    let runs = js
        .get_or_create_stream(stream::Config {
            name: s.runs_stream(),
            subjects: vec![s.run()],
            retention: stream::RetentionPolicy::WorkQueue,
            storage: stream::StorageType::File,
            ..Default::default()
        })
        .await
        .context("making the runs stream")?;
    let results = js
        .get_or_create_stream(stream::Config {
            name: s.results_stream(),
            subjects: vec![format!("{}.result.*", s.prefix)],
            storage: stream::StorageType::File,
            max_age: RESULTS_MAX_AGE,
            max_messages_per_subject: 1,
            ..Default::default()
        })
        .await
        .context("making the results stream")?;
    Ok((runs, results))
}

/// A fresh request id: 24 random bytes from the kernel, base64url.
fn new_id() -> Result<String> {
    let mut b = [0u8; 18];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut b))
        .context("reading /dev/urandom for a request id")?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b))
}

/// What `subinterp run --nats` sends: a script's source, or a wasm
/// module's hash (the module itself goes to the modules bucket).
pub(crate) enum Payload {
    Script(Language, String),
    Wasm(String),
}

/// The request `subinterp run --nats` sends.
fn request(a: &RunArgs, payload: Payload) -> Result<Request> {
    let (lang, source, module_sha256) = match payload {
        Payload::Script(Language::Python, src) => ("python", src, None),
        Payload::Script(_, src) if a.eval.is_none() && super::is_module(a) => {
            ("js_module", src, None)
        }
        Payload::Script(_, src) => ("js", src, None),
        Payload::Wasm(hash) => ("wasm", String::new(), Some(hash)),
    };
    let name = match &a.file {
        Some(f) => f.to_string_lossy().into_owned(),
        None => "-e".to_string(),
    };
    Ok(Request {
        schema: REQUEST_SCHEMA,
        id: new_id()?,
        lang: lang.to_string(),
        name,
        source,
        module_sha256,
        args: a.args.clone(),
        stdin: read_input(&a.remote)?.map(|b| base64::engine::general_purpose::STANDARD.encode(b)),
        limits: WireLimits::from_args(&a.limits),
    })
}

/// `--input FILE` (`-`: stdin, which must not be a terminal).
fn read_input(r: &RemoteArgs) -> Result<Option<Vec<u8>>> {
    match r.input.as_deref() {
        None => Ok(None),
        Some(p) if p == Path::new("-") => {
            if std::io::stdin().is_terminal() {
                bail!("--input -: stdin is a terminal; pipe the input in, or give a file");
            }
            let mut b = Vec::new();
            std::io::stdin()
                .read_to_end(&mut b)
                .context("reading stdin")?;
            Ok(Some(b))
        }
        Some(p) => Ok(Some(
            std::fs::read(p).with_context(|| format!("reading {}", p.display()))?,
        )),
    }
}

/// `subinterp run --nats URL`: sends the script (or the module, `None`)
/// to the workers and reports its result as a local run would (the same
/// output, report and exit code).
pub(crate) fn run_remote(a: &RunArgs, script: Option<(Language, String)>) -> Result<ExitCode> {
    let Some(url) = a.remote.nats.as_deref() else {
        bail!("no --nats URL");
    };
    check_prefix(&a.remote.subject)?;
    let language = script.as_ref().map(|s| s.0);
    let wasm = match (&script, &a.file) {
        (Some(_), _) => None,
        (None, Some(f)) => {
            Some(std::fs::read(f).with_context(|| format!("reading {}", f.display()))?)
        }
        (None, None) => bail!("nothing to run: give a FILE or -e SOURCE"),
    };
    let subjects = Subjects {
        prefix: a.remote.subject.clone(),
    };
    let result = runtime(1)?.block_on(async {
        let client = connect(url, a.remote.creds.as_deref()).await?;
        let js = jetstream::new(client);
        let payload = match (script, wasm) {
            (Some((language, source)), _) => Payload::Script(language, source),
            (None, wasm) => Payload::Wasm(upload(&js, &subjects, &wasm.unwrap_or_default()).await?),
        };
        submit(&js, &subjects, &request(a, payload)?).await
    })?;
    print_remote(&result, a.json, language)?;
    let code = result["exit_code"].as_u64().unwrap_or(1);
    Ok(ExitCode::from(u8::try_from(code).unwrap_or(1)))
}

/// Publishes `req` and waits for its result.
pub(crate) async fn submit(js: &jetstream::Context, s: &Subjects, req: &Request) -> Result<Value> {
    let (_, results) = streams(js, s).await?;
    let mut headers = async_nats::HeaderMap::new();
    headers.insert("Nats-Msg-Id", req.id.as_str());
    let payload = serde_json::to_vec(req).context("encoding the request")?;
    js.publish_with_headers(s.run(), headers, payload.into())
        .await
        .context("sending the request")?
        .await
        .context("the server did not store the request")?;
    let consumer = results
        .create_consumer(consumer::pull::OrderedConfig {
            filter_subject: s.result(&req.id),
            ..Default::default()
        })
        .await
        .context("waiting for the result")?;
    let mut messages = consumer
        .messages()
        .await
        .context("waiting for the result")?;
    let Some(m) = messages.next().await else {
        bail!("the server ended the result stream before the result came");
    };
    let m = m.context("receiving the result")?;
    serde_json::from_slice(&m.payload).context("the result is not JSON")
}

/// A remote result, printed as a local run's: the output to the streams,
/// then the error (or the whole JSON object with `--json`).
fn print_remote(v: &Value, json: bool, language: Option<Language>) -> Result<()> {
    if json {
        return print_json(v);
    }
    use std::io::Write;
    let text = |k: &str| v[k].as_str().unwrap_or_default().as_bytes().to_vec();
    let _ = std::io::stdout().write_all(&text("stdout"));
    let _ = std::io::stdout().flush();
    let _ = std::io::stderr().write_all(&text("stderr"));
    let e = &v["error"];
    let kind = e["kind"].as_str().unwrap_or_default();
    let python_exception = language == Some(Language::Python) && kind == "exception";
    if e.is_null() || kind == "exit" || python_exception {
        return Ok(());
    }
    let message = e["message"].as_str().unwrap_or_default();
    match kind {
        "exception" => report(format_args!(
            "{}: {message}",
            e["type"].as_str().unwrap_or("Error")
        )),
        k => report(format_args!("subinterp: {k}: {message}")),
    }
    if let Some(stack) = e["stack"].as_str() {
        report(stack.trim_end());
    }
    Ok(())
}
