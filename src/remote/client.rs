//! [`RemoteHost`]: runs on workers behind a NATS server, one at a time or
//! many at once with their results streamed back as they finish.

use std::collections::{HashSet, VecDeque};
use std::sync::Arc;

use async_nats::jetstream::{self, consumer, object_store, stream};
use bytes::Bytes;
use futures_util::StreamExt;
use parking_lot::Mutex;
use serde_json::Value;

use super::decode::decode;
use super::error::RemoteError;
use super::request::{Body, RemoteRun};
use super::setup::{RemoteOptions, Subjects, connect, modules_bucket, streams};
use super::wire::{self, Request};
use crate::result::RunResult;

/// How many requests are published before their acknowledgements are
/// awaited.
const PUBLISH_WINDOW: usize = 256;

/// How many failures in a row end a result stream.
const MAX_FAILURES: u32 = 8;

/// A connection to the workers behind a NATS server (feature `nats`): the
/// remote form of a [`Host`](crate::Host) with
/// [`Interpreter::run`](crate::Interpreter::run) and
/// [`call`](crate::Interpreter::call). Each run goes to whichever worker
/// takes it, in a fresh interpreter there.
///
/// Its methods block the calling thread on a runtime of its own: do not
/// call them from inside an async runtime.
pub struct RemoteHost {
    rt: Arc<tokio::runtime::Runtime>,
    js: jetstream::Context,
    subjects: Subjects,
    results: stream::Stream,
    /// The modules bucket once used, and the hashes known to be in it.
    bucket: Mutex<Option<object_store::ObjectStore>>,
    known: Mutex<HashSet<String>>,
}

/// One finished run of a [`Submitted`] batch.
#[derive(Debug)]
pub struct RemoteOutcome {
    /// The request's id.
    pub id: String,
    /// The result as the worker published it (the `--json` object with the
    /// `id`; `Null` when none came).
    pub json: Value,
    /// The run's result, as a local run's; a refused request, a module
    /// that could not be had, or a lost connection is an error.
    pub result: Result<RunResult, RemoteError>,
}

impl RemoteHost {
    /// Connects to the server at `url` and makes (or finds) the streams.
    ///
    /// # Errors
    /// [`RemoteError::Connect`], [`RemoteError::Credentials`],
    /// [`RemoteError::InvalidRequest`] for a bad prefix, and
    /// [`RemoteError::Server`] when the streams cannot be made (a server
    /// without JetStream).
    pub fn connect(url: &str, options: RemoteOptions) -> Result<RemoteHost, RemoteError> {
        let subjects = options.subjects()?;
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .map_err(|e| RemoteError::server("starting the async runtime", e))?;
        let (js, results) = rt.block_on(async {
            let js = jetstream::new(connect(url, &options).await?);
            let (_, results) = streams(&js, &subjects).await?;
            Ok::<_, RemoteError>((js, results))
        })?;
        Ok(RemoteHost {
            rt: Arc::new(rt),
            js,
            subjects,
            results,
            bucket: Mutex::new(None),
            known: Mutex::new(HashSet::new()),
        })
    }

    /// Runs `run` on a worker and returns its result: completed or not, as
    /// a local run's ([`RunResult::check`] turns a failure into an error).
    ///
    /// # Errors
    /// As [`submit`](Self::submit), and [`RemoteError::Refused`] when the
    /// worker answered without running (a refused request, a module it
    /// could not fetch, compile or trust).
    pub fn run(&self, run: RemoteRun) -> Result<RunResult, RemoteError> {
        self.submit([run])?
            .next()
            .ok_or(RemoteError::Closed)?
            .result
    }

    /// Runs `run`, then calls the function `name` with `input` in the same
    /// interpreter, and returns its result, as
    /// [`Interpreter::call`](crate::Interpreter::call) does.
    ///
    /// # Errors
    /// As [`run`](Self::run), and [`RemoteError::Guest`] when the run or
    /// the call failed.
    pub fn call(
        &self,
        run: RemoteRun,
        name: &str,
        input: impl Into<Bytes>,
    ) -> Result<Bytes, RemoteError> {
        let r = self.run(run.call(name, input))?;
        match r.error {
            Some(e) if !r.completed => Err(RemoteError::Guest(e)),
            _ => Ok(r.output.unwrap_or_default()),
        }
    }

    /// Sends every run, then yields their outcomes as they finish (in the
    /// order the workers finish them), each tagged with its request id. A
    /// run given an [`id`](RemoteRun::id) that was answered already (within
    /// the day results are kept) yields that answer without running again.
    ///
    /// # Errors
    /// [`RemoteError::InvalidRequest`] for a bad or repeated id, and
    /// [`RemoteError::Server`] when a module cannot be uploaded or a
    /// request cannot be sent (those sent before it still run).
    pub fn submit(
        &self,
        runs: impl IntoIterator<Item = RemoteRun>,
    ) -> Result<Submitted<'_>, RemoteError> {
        let rt = self.rt.clone();
        rt.block_on(self.submit_async(runs.into_iter().collect()))
    }

    async fn submit_async(&self, runs: Vec<RemoteRun>) -> Result<Submitted<'_>, RemoteError> {
        let mut requests = Vec::with_capacity(runs.len());
        let mut ids = HashSet::with_capacity(runs.len());
        for run in &runs {
            let chosen = run.id.is_some();
            let id = match &run.id {
                Some(id) => id.clone(),
                None => {
                    wire::new_id().map_err(|e| RemoteError::server("making a request id", e))?
                }
            };
            if !ids.insert(id.clone()) {
                return Err(RemoteError::InvalidRequest(format!(
                    "the id {id:?} is given twice"
                )));
            }
            let hash = self.module_hash(&run.body).await?;
            requests.push((chosen, run.to_wire(id, hash)?));
        }
        let mut batch = Submitted {
            host: self,
            messages: None,
            pending: ids,
            ready: VecDeque::new(),
            total: requests.len(),
        };
        if let [(_, only)] = requests.as_slice() {
            self.publish(std::slice::from_ref(only)).await?;
            batch.messages = Some(
                self.results_of(self.subjects.result(&only.id), false)
                    .await?,
            );
            return Ok(batch);
        }
        batch.messages = Some(self.results_of(self.subjects.results(), true).await?);
        let mut to_send = Vec::with_capacity(requests.len());
        for (chosen, req) in requests {
            match chosen.then_some(()).and(self.answered(&req.id).await) {
                Some(json) => {
                    let done = batch.outcome(req.id.clone(), json);
                    batch.ready.push_back(done);
                }
                None => to_send.push(req),
            }
        }
        self.publish(&to_send).await?;
        Ok(batch)
    }

    /// The hash of a run's module, uploaded by now; `None` for a script.
    async fn module_hash(&self, body: &Body) -> Result<Option<String>, RemoteError> {
        match body {
            Body::Source { .. } => Ok(None),
            Body::WasmHash(h) if wire::valid_sha256(h) => Ok(Some(h.clone())),
            Body::WasmHash(h) => Err(RemoteError::InvalidRequest(format!(
                "a module hash is 64 lowercase hex digits, got {h:?}"
            ))),
            Body::Wasm(wasm) => self.upload(wasm).await.map(Some),
        }
    }

    /// Puts `wasm` in the modules bucket under its hash unless an object of
    /// that name is there already; its hash.
    async fn upload(&self, wasm: &Bytes) -> Result<String, RemoteError> {
        let hash = wire::sha256_hex(wasm);
        if self.known.lock().contains(&hash) {
            return Ok(hash);
        }
        let bucket = self.bucket.lock().clone();
        let store = match bucket {
            Some(s) => s,
            None => modules_bucket(&self.js, &self.subjects).await?,
        };
        if store.info(&hash).await.is_err() {
            store
                .put(hash.as_str(), &mut &wasm[..])
                .await
                .map_err(|e| RemoteError::server("uploading the module", e))?;
        }
        *self.bucket.lock() = Some(store);
        self.known.lock().insert(hash.clone());
        Ok(hash)
    }

    /// The result stored under `id` already, if there is one.
    async fn answered(&self, id: &str) -> Option<Value> {
        let m = self
            .results
            .get_last_raw_message_by_subject(&self.subjects.result(id))
            .await
            .ok()?;
        serde_json::from_slice(&m.payload).ok()
    }

    /// Publishes the requests, `PUBLISH_WINDOW` acknowledgements in flight.
    async fn publish(&self, requests: &[Request]) -> Result<(), RemoteError> {
        for chunk in requests.chunks(PUBLISH_WINDOW) {
            let mut acks = Vec::with_capacity(chunk.len());
            for req in chunk {
                let mut headers = async_nats::HeaderMap::new();
                headers.insert("Nats-Msg-Id", req.id.as_str());
                let payload = serde_json::to_vec(req)
                    .map_err(|e| RemoteError::server("encoding the request", e))?;
                let ack = self
                    .js
                    .publish_with_headers(self.subjects.run(), headers, payload.into())
                    .await
                    .map_err(|e| RemoteError::server("sending the request", e))?;
                acks.push(ack);
            }
            for ack in acks {
                ack.await
                    .map_err(|e| RemoteError::server("the server did not store the request", e))?;
            }
        }
        Ok(())
    }

    /// The results on `filter`: all stored ones, or only those to come.
    async fn results_of(
        &self,
        filter: String,
        only_new: bool,
    ) -> Result<consumer::pull::Ordered, RemoteError> {
        let deliver_policy = if only_new {
            consumer::DeliverPolicy::New
        } else {
            consumer::DeliverPolicy::All
        };
        let consumer = self
            .results
            .create_consumer(consumer::pull::OrderedConfig {
                filter_subject: filter,
                deliver_policy,
                ..Default::default()
            })
            .await
            .map_err(|e| RemoteError::server("waiting for results", e))?;
        consumer
            .messages()
            .await
            .map_err(|e| RemoteError::server("waiting for results", e))
    }
}

/// The runs sent by [`RemoteHost::submit`]: an iterator of their
/// [`RemoteOutcome`]s as they finish, one per run. `next` blocks until the
/// next result comes (a request waits on the server for as long as no
/// worker takes it).
pub struct Submitted<'a> {
    host: &'a RemoteHost,
    messages: Option<consumer::pull::Ordered>,
    pending: HashSet<String>,
    ready: VecDeque<RemoteOutcome>,
    total: usize,
}

impl Submitted<'_> {
    /// How many runs were submitted.
    pub fn total(&self) -> usize {
        self.total
    }

    /// How many outcomes are still to come.
    pub fn remaining(&self) -> usize {
        self.pending.len() + self.ready.len()
    }

    fn outcome(&mut self, id: String, json: Value) -> RemoteOutcome {
        self.pending.remove(&id);
        let result = decode(&json);
        RemoteOutcome { id, json, result }
    }

    /// The next result of one of ours from the server; `None` when the
    /// stream ended.
    async fn receive(&mut self) -> Option<Result<(String, Value), RemoteError>> {
        let messages = self.messages.as_mut()?;
        let mut failures = 0;
        loop {
            let m = match messages.next().await? {
                Ok(m) => m,
                // The ordered consumer recovers from a lost message or
                // heartbeat on its own; a run of failures is the end.
                Err(e) if failures >= MAX_FAILURES => {
                    return Some(Err(RemoteError::server("receiving results", e)));
                }
                Err(_) => {
                    failures += 1;
                    continue;
                }
            };
            failures = 0;
            let Ok(v) = serde_json::from_slice::<Value>(&m.payload) else {
                continue;
            };
            match v["id"].as_str() {
                Some(id) if self.pending.contains(id) => return Some(Ok((id.to_string(), v))),
                _ => continue,
            }
        }
    }
}

impl Iterator for Submitted<'_> {
    type Item = RemoteOutcome;

    fn next(&mut self) -> Option<RemoteOutcome> {
        if let Some(o) = self.ready.pop_front() {
            return Some(o);
        }
        let any = self.pending.iter().next()?.clone();
        let rt = self.host.rt.clone();
        match rt.block_on(self.receive()) {
            Some(Ok((id, v))) => Some(self.outcome(id, v)),
            // The stream failed or ended: one of the runs still to come
            // gets the error (each later call, the next).
            Some(Err(e)) => Some(self.lost(any, e)),
            None => Some(self.lost(any, RemoteError::Closed)),
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = self.pending.len() + self.ready.len();
        (n, Some(n))
    }
}

impl Submitted<'_> {
    fn lost(&mut self, id: String, e: RemoteError) -> RemoteOutcome {
        self.pending.remove(&id);
        RemoteOutcome {
            id,
            json: Value::Null,
            result: Err(e),
        }
    }
}
