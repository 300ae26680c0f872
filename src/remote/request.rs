//! [`RemoteRun`]: what to run on a worker, built as a local run is.

use std::time::Duration;

use base64::Engine;
use bytes::Bytes;

use super::error::RemoteError;
use super::wire::{self, REQUEST_SCHEMA, Request, RequestLimits};

/// What a remote run runs: source, or a wasm module (sent once, by hash).
#[derive(Debug, Clone)]
pub(crate) enum Body {
    Source { lang: &'static str, text: String },
    Wasm(Bytes),
    WasmHash(String),
}

/// A run for a worker: a JavaScript or Python script, or a wasm module,
/// with its arguments, stdin and limits (each clamped to the worker's), and
/// optionally a function to call afterwards.
///
/// ```
/// use std::time::Duration;
/// use subinterp::remote::RemoteRun;
/// let run = RemoteRun::python("import sys; print(sys.argv)")
///     .args(["a", "b"])
///     .timeout(Duration::from_secs(2))
///     .id("job-1");
/// assert_eq!(run.request_id(), Some("job-1"));
/// ```
#[derive(Debug, Clone)]
pub struct RemoteRun {
    pub(crate) body: Body,
    name: String,
    args: Vec<String>,
    stdin: Option<Bytes>,
    limits: RequestLimits,
    call: Option<(String, Bytes)>,
    pub(crate) id: Option<String>,
}

impl RemoteRun {
    fn new(body: Body, name: &str) -> RemoteRun {
        RemoteRun {
            body,
            name: name.to_string(),
            args: Vec::new(),
            stdin: None,
            limits: RequestLimits::default(),
            call: None,
            id: None,
        }
    }

    /// JavaScript source, run as a global script.
    pub fn js(source: impl Into<String>) -> RemoteRun {
        let text = source.into();
        RemoteRun::new(Body::Source { lang: "js", text }, "script.js")
    }

    /// JavaScript source, run as the ES module `name`.
    pub fn js_module(name: impl Into<String>, source: impl Into<String>) -> RemoteRun {
        let text = source.into();
        RemoteRun::new(
            Body::Source {
                lang: "js_module",
                text,
            },
            "",
        )
        .name(name)
    }

    /// Python source, run as `__main__`.
    pub fn python(source: impl Into<String>) -> RemoteRun {
        let text = source.into();
        RemoteRun::new(
            Body::Source {
                lang: "python",
                text,
            },
            "script.py",
        )
    }

    /// A wasm module (binary or text): its `_start` runs. The module goes
    /// to the server's modules bucket under its SHA-256, unless it is there
    /// already; the request carries only the hash.
    pub fn wasm(module: impl Into<Bytes>) -> RemoteRun {
        RemoteRun::new(Body::Wasm(module.into()), "module.wasm")
    }

    /// A wasm module already in the modules bucket, by its SHA-256 (64
    /// lowercase hex digits).
    pub fn wasm_sha256(hash: impl Into<String>) -> RemoteRun {
        RemoteRun::new(Body::WasmHash(hash.into()), "module.wasm")
    }

    /// The program's name (argv[0]; a module's name).
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// Arguments (argv[1..]).
    pub fn args<I: IntoIterator<Item = S>, S: Into<String>>(mut self, args: I) -> Self {
        self.args = args.into_iter().map(Into::into).collect();
        self
    }

    /// The run's stdin.
    pub fn stdin(mut self, bytes: impl Into<Bytes>) -> Self {
        self.stdin = Some(bytes.into());
        self
    }

    /// Wall-clock limit (clamped to the worker's).
    pub fn timeout(mut self, t: Duration) -> Self {
        self.limits.timeout_ms = Some(u64::try_from(t.as_millis()).unwrap_or(u64::MAX));
        self
    }

    /// Memory ceiling in bytes (clamped to the worker's).
    pub fn max_memory(mut self, bytes: usize) -> Self {
        self.limits.max_memory = Some(bytes);
        self
    }

    /// Instruction budget (a worker without fuel refuses it).
    pub fn fuel(mut self, units: u64) -> Self {
        self.limits.fuel = Some(units);
        self
    }

    /// Cap on each captured stream (clamped to the worker's).
    pub fn max_output(mut self, bytes: usize) -> Self {
        self.limits.max_output = Some(bytes);
        self
    }

    /// After the run, call the function `name` with `input` in the same
    /// interpreter, as [`Interpreter::call`](crate::Interpreter::call)
    /// does; the result is the call's, its output the function's result.
    pub fn call(mut self, name: impl Into<String>, input: impl Into<Bytes>) -> Self {
        self.call = Some((name.into(), input.into()));
        self
    }

    /// Names the request (default: 24 random characters). A result stored
    /// under an id already is the answer to a request with that id, for a
    /// day: the worker does not run it again.
    pub fn id(mut self, id: impl Into<String>) -> Self {
        self.id = Some(id.into());
        self
    }

    /// The id given with [`id`](Self::id), if one was.
    pub fn request_id(&self) -> Option<&str> {
        self.id.as_deref()
    }

    /// The wire request, with its id, and the hash of its module when it
    /// has one (uploaded by then).
    pub(crate) fn to_wire(&self, id: String, hash: Option<String>) -> Result<Request, RemoteError> {
        if !wire::valid_id(&id) {
            return Err(RemoteError::InvalidRequest(format!(
                "a request id is 1 to 64 of A-Z a-z 0-9 _ -, got {id:?}"
            )));
        }
        let b64 = |b: &Bytes| base64::engine::general_purpose::STANDARD.encode(b);
        let (lang, source) = match &self.body {
            Body::Source { lang, text } => (*lang, text.clone()),
            Body::Wasm(_) | Body::WasmHash(_) => ("wasm", String::new()),
        };
        Ok(Request {
            schema: REQUEST_SCHEMA,
            id,
            lang: lang.to_string(),
            name: self.name.clone(),
            source,
            module_sha256: hash,
            call: self.call.as_ref().map(|(name, input)| wire::Call {
                name: name.clone(),
                input: b64(input),
            }),
            args: self.args.clone(),
            stdin: self.stdin.as_ref().map(b64),
            limits: self.limits.clone(),
        })
    }
}
