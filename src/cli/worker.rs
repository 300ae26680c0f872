//! `subinterp worker --nats URL`: serves run requests from a JetStream work
//! queue (see `src/remote/` for the streams), each in a fresh sandboxed
//! interpreter with limits clamped to the worker's own.

use std::collections::VecDeque;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result};
use async_nats::jetstream::{self, AckKind, consumer, object_store};
use base64::Engine;
use futures_util::StreamExt;
use serde_json::{Value, json};
use subinterp::remote::wire::{
    ACK_WAIT, REQUEST_SCHEMA, Request, RequestLimits, valid_id, valid_sha256,
};
use subinterp::remote::{Subjects, connect, modules_bucket, streams};
use subinterp::{
    CompileLimits, Error, ErrorKind, Guest, Host, Language, Limits, OutputMode, Run, RunResult,
};

use crate::args::WorkerArgs;
use crate::fetch::{FetchError, fetch, load_error};
use crate::remote::{options, runtime};
use crate::report::{
    EXIT_LIMIT, compile_limit_json, failure_json, report, start_failure_json, to_json,
};

/// A worker's default ceiling on a run's time, when `--timeout` is not
/// given: a worker never runs a request without a deadline.
const DEFAULT_WORKER_TIMEOUT: Duration = Duration::from_secs(60);

/// How many compiled wasm modules a worker keeps in memory (the most
/// recently used; the compiled-code cache on disk keeps the rest).
const MODULES_KEPT: usize = 32;

/// How many deliveries of a request a module fetch may fail on for a reason
/// that may pass (a timeout, a server problem) before the request is
/// answered with a `load` error, so that none is tried forever.
const FETCH_ATTEMPTS: i64 = 5;

/// How long a request whose module fetch failed for such a reason waits
/// before the server delivers it again (to this or another worker).
const RETRY_DELAY: Duration = Duration::from_secs(1);

/// What every run on this worker is held to.
#[derive(Clone, Copy)]
struct Ceiling {
    timeout: Duration,
    max_memory: usize,
    fuel: Option<u64>,
    max_output: usize,
}

impl Ceiling {
    /// `asked`, with each limit no larger than this ceiling.
    fn clamp(&self, asked: &RequestLimits) -> Result<Limits, String> {
        if asked.fuel.is_some() && self.fuel.is_none() {
            return Err("this worker does not count fuel: ask without --fuel".into());
        }
        let timeout = asked.timeout_ms.map_or(self.timeout, |ms| {
            Duration::from_millis(ms).min(self.timeout)
        });
        let mut l = Limits::new()
            .with_timeout(timeout)
            .with_max_memory(asked.max_memory.unwrap_or(usize::MAX).min(self.max_memory))
            .with_max_output(asked.max_output.unwrap_or(usize::MAX).min(self.max_output));
        if let Some(ceiling) = self.fuel {
            l = l.with_fuel(asked.fuel.unwrap_or(u64::MAX).min(ceiling));
        }
        Ok(l)
    }
}

/// Runs the worker until it is killed or its connection fails.
pub(crate) fn worker(a: WorkerArgs) -> Result<ExitCode> {
    let options = options(&a.subject, a.creds.as_deref())?;
    let defaults = Limits::new();
    let ceiling = Ceiling {
        timeout: a.limits.timeout.unwrap_or(DEFAULT_WORKER_TIMEOUT),
        max_memory: a.limits.max_memory.unwrap_or(defaults.max_memory()),
        fuel: a.limits.fuel,
        max_output: a.limits.max_output.unwrap_or(defaults.max_output()),
    };
    // One pool slot per interpreter a run may create, and its own.
    let per_run = u32::try_from(defaults.max_interpreters() + 1).unwrap_or(u32::MAX);
    let host = Host::builder()
        .pool_size(per_run.saturating_mul(a.concurrency))
        .fuel(ceiling.fuel.is_some())
        .compile_limits(CompileLimits::new().with_max_module_bytes(a.max_module))
        .compile_notices(true)
        .build()?;
    // Load (compile, or find in the cache) both language guests before
    // taking work, so that no request pays for it under its deadline.
    host.language_guest(Language::JavaScript)?;
    host.language_guest(Language::Python)?;
    let subjects = options.subjects()?;
    runtime(2)?.block_on(serve(a, options, subjects, Arc::new(host), ceiling))
}

async fn serve(
    a: WorkerArgs,
    options: subinterp::remote::RemoteOptions,
    subjects: Subjects,
    host: Arc<Host>,
    ceiling: Ceiling,
) -> Result<ExitCode> {
    let client = connect(&a.nats, &options).await?;
    let js = jetstream::new(client.clone());
    let subjects = Arc::new(subjects);
    let (runs, results) = streams(&js, &subjects).await?;
    let modules = modules_bucket(&js, &subjects).await?;
    let consumer: consumer::PullConsumer = runs
        .get_or_create_consumer(
            &subjects.workers(),
            consumer::pull::Config {
                durable_name: Some(subjects.workers()),
                ack_policy: consumer::AckPolicy::Explicit,
                ack_wait: ACK_WAIT,
                ..Default::default()
            },
        )
        .await
        .context("making the workers' consumer")?;
    let slots = Arc::new(tokio::sync::Semaphore::new(a.concurrency as usize));
    let mut messages = consumer
        .stream()
        .max_messages_per_batch(a.concurrency as usize)
        .messages()
        .await
        .context("pulling requests")?;
    report(format_args!(
        "subinterp worker {}: serving {} on {} ({} at once)",
        std::process::id(),
        subjects.run(),
        a.nats,
        a.concurrency
    ));
    let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    let worker = Arc::new(Worker {
        name: format!("{}/{}", hostname.trim(), std::process::id()),
        client,
        js,
        results,
        modules,
        compiled: Mutex::new(VecDeque::new()),
        max_module: a.max_module,
        fetch_timeout: a.fetch_timeout,
        subjects,
        host,
        ceiling,
    });
    while let Some(m) = messages.next().await {
        let m = m.context("pulling requests")?;
        let permit = slots.clone().acquire_owned().await?;
        let w = worker.clone();
        tokio::spawn(async move {
            if let Err(e) = w.handle(m).await {
                report(format_args!("subinterp worker: {e:#}"));
            }
            drop(permit);
        });
    }
    Ok(ExitCode::from(1))
}

struct Worker {
    /// `HOST/PID`, in each result it publishes.
    name: String,
    client: async_nats::Client,
    js: jetstream::Context,
    results: jetstream::stream::Stream,
    /// The modules bucket, and the modules compiled from it (by hash).
    modules: object_store::ObjectStore,
    compiled: Mutex<VecDeque<(String, Guest)>>,
    max_module: usize,
    /// How long a module's fetch may take (`--fetch-timeout`).
    fetch_timeout: Duration,
    subjects: Arc<Subjects>,
    host: Arc<Host>,
    ceiling: Ceiling,
}

impl Worker {
    /// One request: answered once, then acknowledged; or, when its module
    /// could not be fetched for a reason that may pass, handed back to be
    /// delivered again after [`RETRY_DELAY`].
    async fn handle(&self, m: jetstream::Message) -> Result<()> {
        let req: Request = match serde_json::from_slice(&m.payload) {
            Ok(r) => r,
            Err(e) => return self.refuse(&m, &e.to_string()).await,
        };
        if !valid_id(&req.id) {
            return self
                .refuse(&m, "the request's id is not 1 to 64 of A-Z a-z 0-9 _ -")
                .await;
        }
        let subject = self.subjects.result(&req.id);
        if self
            .results
            .get_last_raw_message_by_subject(&subject)
            .await
            .is_ok()
        {
            // Answered already (by a worker that died before its ack).
            report(format_args!(
                "subinterp worker {}: {} was answered already",
                std::process::id(),
                req.id
            ));
            return self.ack(&m).await;
        }
        report(format_args!(
            "subinterp worker {}: running {}",
            std::process::id(),
            req.id
        ));
        let Some(result) = self.run(&m, req).await else {
            return m
                .ack_with(AckKind::Nak(Some(RETRY_DELAY)))
                .await
                .map_err(|e| anyhow::anyhow!("handing a request back: {e}"));
        };
        self.publish(&subject, &result).await?;
        self.ack(&m).await
    }

    /// Answers `req` (`None`: not now, see [`retry`]), telling the
    /// server the worker is alive meanwhile so the request is not given to
    /// another.
    async fn run(&self, m: &jetstream::Message, req: Request) -> Option<Value> {
        let id = req.id.clone();
        // A message without JetStream metadata cannot be counted: the last.
        let delivered = m.info().map_or(FETCH_ATTEMPTS, |i| i.delivered);
        let job = self.answer(req, delivered);
        tokio::pin!(job);
        let mut alive = tokio::time::interval(ACK_WAIT / 3);
        alive.tick().await;
        let mut v = loop {
            tokio::select! {
                v = &mut job => break v?,
                _ = alive.tick() => { let _ = m.ack_with(AckKind::Progress).await; }
            }
        };
        v["id"] = json!(id);
        v["worker"] = json!(self.name);
        Some(v)
    }

    /// The request's module, if it names one, then the run on a blocking
    /// thread: its `--json` result (`None`: not now, see [`retry`]).
    async fn answer(&self, req: Request, delivered: i64) -> Option<Value> {
        let guest = match req.module_sha256.as_deref() {
            None => None,
            Some(h) if !valid_sha256(h) || req.lang != "wasm" => {
                return Some(failure_json(
                    "RequestError",
                    "request",
                    "module_sha256 is 64 lowercase hex digits, with lang \"wasm\"",
                    Value::Null,
                    2,
                ));
            }
            Some(h) => match self.module(h).await {
                Ok(g) => Some(g),
                Err(FetchError::Answer(v)) => return Some(v),
                Err(FetchError::Transient(why)) => return retry(&req.id, &why, delivered),
            },
        };
        let (host, ceiling) = (self.host.clone(), self.ceiling);
        let done = tokio::task::spawn_blocking(move || execute(&host, &ceiling, req, guest)).await;
        Some(done.unwrap_or_else(|e| {
            let why = format!("the run panicked: {e}");
            failure_json("HostError", "host", &why, Value::Null, 1)
        }))
    }

    /// The module named `hash`: compiled already, or fetched, checked and
    /// compiled (through the compiled-code cache) now.
    async fn module(&self, hash: &str) -> Result<Guest, FetchError> {
        if let Some(g) = self.kept(hash) {
            return Ok(g);
        }
        let bucket = self.subjects.modules_bucket();
        let fetching = fetch(&self.modules, &bucket, hash, self.max_module);
        // A description whose chunks never come would hold the request for
        // good (the worker's progress acks keep it here).
        let wasm = match tokio::time::timeout(self.fetch_timeout, fetching).await {
            Ok(got) => got?,
            Err(_) => {
                return Err(FetchError::Transient(format!(
                    "fetching module sha256:{hash} from the bucket {bucket}: not done in {:?} (--fetch-timeout)",
                    self.fetch_timeout
                )));
            }
        };
        let (host, name) = (self.host.clone(), hash.to_string());
        let compiled = tokio::task::spawn_blocking(move || host.compile_cached(&name, &wasm)).await;
        let guest = match compiled {
            Ok(Ok(g)) => g,
            Ok(Err(Error::Limit(l))) => {
                let why = format!("module sha256:{hash}: {l}");
                return Err(FetchError::Answer(failure_json(
                    "LimitError",
                    "compile_limit",
                    &why,
                    compile_limit_json(&l),
                    EXIT_LIMIT,
                )));
            }
            Ok(Err(e)) => {
                let why = format!("module sha256:{hash}: {e}");
                return Err(FetchError::Answer(load_error(&why)));
            }
            Err(e) => {
                let why = format!("compiling module sha256:{hash} panicked: {e}");
                return Err(FetchError::Answer(load_error(&why)));
            }
        };
        let mut kept = self.compiled.lock().unwrap_or_else(|e| e.into_inner());
        kept.push_back((hash.to_string(), guest.clone()));
        if kept.len() > MODULES_KEPT {
            kept.pop_front();
        }
        Ok(guest)
    }

    /// A module compiled before, now the most recently used.
    fn kept(&self, hash: &str) -> Option<Guest> {
        let mut kept = self.compiled.lock().unwrap_or_else(|e| e.into_inner());
        let i = kept.iter().position(|(h, _)| h == hash)?;
        let entry = kept.remove(i)?;
        let guest = entry.1.clone();
        kept.push_back(entry);
        Some(guest)
    }

    /// Stores the result, once per id (the server drops a second publish
    /// with the same `Nats-Msg-Id`).
    async fn publish(&self, subject: &str, v: &Value) -> Result<()> {
        let mut headers = async_nats::HeaderMap::new();
        if let Some(id) = v["id"].as_str() {
            headers.insert("Nats-Msg-Id", id);
        }
        let payload = self.fit(v);
        self.js
            .publish_with_headers(subject.to_string(), headers, payload.into())
            .await
            .context("publishing a result")?
            .await
            .context("the server did not store a result")?;
        Ok(())
    }

    /// The result as it is published: one that would not fit in a message
    /// (the server's `max_payload`, with room for headers) is replaced by an
    /// output-limit error, since a result the server refuses would leave the
    /// request to be run again and again.
    fn fit(&self, v: &Value) -> String {
        let text = v.to_string();
        let max = self.client.server_info().max_payload.saturating_sub(1024);
        if text.len() <= max {
            return text;
        }
        let why = format!(
            "the result is {} bytes, more than the server's max_payload allows ({max}): lower --max-output",
            text.len()
        );
        let mut small = failure_json(
            "LimitError",
            "output_limit",
            &why,
            json!({"max_payload": max}),
            125,
        );
        small["id"] = v["id"].clone();
        small.to_string()
    }

    async fn ack(&self, m: &jetstream::Message) -> Result<()> {
        m.double_ack()
            .await
            .map_err(|e| anyhow::anyhow!("acknowledging a request: {e}"))
    }

    /// A request that cannot be run: answered with a `request` error when it
    /// has a usable id, dropped (and said so) when it has none.
    async fn refuse(&self, m: &jetstream::Message, why: &str) -> Result<()> {
        let id = serde_json::from_slice::<Value>(&m.payload)
            .ok()
            .and_then(|v| v["id"].as_str().map(str::to_string))
            .filter(|id| valid_id(id));
        match id {
            Some(id) => {
                let mut v = failure_json("RequestError", "request", why, Value::Null, 2);
                v["id"] = json!(id);
                self.publish(&self.subjects.result(&id), &v).await?;
            }
            None => report(format_args!("subinterp worker: dropped a request: {why}")),
        }
        self.ack(m).await
    }
}

/// A request whose module fetch failed (`why`) for a reason that may pass,
/// on its `delivered`-th delivery: `None`, to be handed back and delivered
/// again, said on stderr; from the [`FETCH_ATTEMPTS`]-th on, the `load`
/// result saying how many times it failed.
fn retry(id: &str, why: &str, delivered: i64) -> Option<Value> {
    let pid = std::process::id();
    if delivered >= FETCH_ATTEMPTS {
        report(format_args!(
            "subinterp worker {pid}: {id}: {why}; failed {delivered} times, answered"
        ));
        return Some(load_error(&format!("{why} (failed {delivered} times)")));
    }
    report(format_args!(
        "subinterp worker {pid}: {id}: {why}; trying again in {} s ({delivered} of {FETCH_ATTEMPTS} times)",
        RETRY_DELAY.as_secs()
    ));
    None
}

/// Runs one request in a fresh interpreter (of `module`, for `wasm`): its
/// `--json` result, with the exact bytes [`exact_bytes`] adds.
fn execute(host: &Host, ceiling: &Ceiling, req: Request, module: Option<Guest>) -> Value {
    let job = match Job::of(ceiling, req, module.is_some()) {
        Ok(j) => j,
        Err(why) => return failure_json("RequestError", "request", &why, Value::Null, 2),
    };
    let guest = match (module, job.language) {
        (Some(m), _) => Ok(m),
        (None, Some(l)) => host.language_guest(l),
        (None, None) => {
            let why = "lang \"wasm\" wants module_sha256";
            return failure_json("RequestError", "request", why, Value::Null, 2);
        }
    };
    let outcome = guest.and_then(|guest| {
        let interp = host
            .interpreter(&guest)
            .limits(job.limits)
            .args(std::iter::once(job.name).chain(job.args))
            .stdout(OutputMode::Capture)
            .stderr(OutputMode::Capture)
            .stdin_bytes(job.stdin)
            .build()?;
        let first = interp.run(job.run)?;
        match job.call {
            Some((name, input)) if first.completed => then_call(&interp, first, &name, input),
            _ => Ok(first),
        }
    });
    match outcome {
        Ok(r) => {
            let mut v = to_json(&r);
            if let Some(ErrorKind::Trap(t)) = r.error.as_ref().map(|e| &e.kind) {
                v["error"]["trap"] = json!(format!("{t:?}"));
            }
            exact_bytes(&mut v, &r);
            v
        }
        Err(Error::Instantiate(e)) => start_failure_json(&e),
        Err(e) => failure_json("HostError", "host", &e.to_string(), Value::Null, 1),
    }
}

/// Adds to `v` (the `--json` result of `r`) the bytes its text fields may
/// not carry: `output_base64` whenever there is output, `stdout_base64` and
/// `stderr_base64` when that stream is not valid UTF-8 (its text field then
/// has U+FFFD in place of the invalid bytes).
fn exact_bytes(v: &mut Value, r: &RunResult) {
    let b64 = |b: &[u8]| json!(base64::engine::general_purpose::STANDARD.encode(b));
    if let Some(out) = &r.output {
        v["output_base64"] = b64(out);
    }
    for (key, bytes) in [("stdout_base64", &r.stdout), ("stderr_base64", &r.stderr)] {
        if std::str::from_utf8(bytes).is_err() {
            v[key] = b64(bytes);
        }
    }
}

/// The call a request asks for after its run: its result, with the run's
/// output before the call's.
fn then_call(
    interp: &subinterp::Interpreter,
    first: RunResult,
    name: &str,
    input: Vec<u8>,
) -> Result<RunResult, Error> {
    let mut r = interp.run(Run::call(name, input))?;
    r.stdout = [first.stdout, std::mem::take(&mut r.stdout)].concat();
    r.stderr = [first.stderr, std::mem::take(&mut r.stderr)].concat();
    Ok(r)
}

/// A request, checked and decoded.
struct Job {
    language: Option<Language>,
    run: Run,
    limits: Limits,
    name: String,
    args: Vec<String>,
    stdin: Vec<u8>,
    call: Option<(String, Vec<u8>)>,
}

impl Job {
    /// `req` as a job, or why it is refused.
    fn of(ceiling: &Ceiling, req: Request, has_module: bool) -> Result<Job, String> {
        if req.schema != REQUEST_SCHEMA {
            return Err(format!(
                "request schema {} (this worker reads {REQUEST_SCHEMA})",
                req.schema
            ));
        }
        let limits = ceiling.clamp(&req.limits)?;
        let (language, run) = match (req.lang.as_str(), has_module) {
            ("js", false) => (Some(Language::JavaScript), Run::js(req.source)),
            ("js_module", false) => (
                Some(Language::JavaScript),
                Run::js_module(req.name.clone(), req.source),
            ),
            ("python", false) => (Some(Language::Python), Run::python(req.source)),
            ("wasm", true) => (None, Run::start()),
            ("wasm", false) => return Err("lang \"wasm\" wants module_sha256".into()),
            (other, _) => {
                return Err(format!(
                    "unknown lang {other:?} (js, js_module, python or wasm)"
                ));
            }
        };
        let b64 = |what: &str, s: &str| {
            base64::engine::general_purpose::STANDARD
                .decode(s)
                .map_err(|e| format!("{what} is not base64: {e}"))
        };
        let stdin = match req.stdin.as_deref() {
            None => Vec::new(),
            Some(s) => b64("stdin", s)?,
        };
        let call = match req.call {
            None => None,
            Some(c) => Some((c.name, b64("call.input", &c.input)?)),
        };
        Ok(Job {
            language,
            run,
            limits,
            name: req.name,
            args: req.args,
            stdin,
            call,
        })
    }
}
