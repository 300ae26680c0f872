//! What to run in an interpreter: the entry point or source, the channel
//! ends bound by name, and a run started on its own thread.

use std::sync::Arc;
use std::time::Instant;

use super::*;
use crate::language::Language;

#[derive(Debug, Clone)]
pub(super) enum Body {
    /// An exported function.
    Export(String),
    /// Source for a language guest; `module`: JavaScript's ES module name.
    Source {
        language: Language,
        module: Option<String>,
        text: String,
    },
    /// A function called by name with an input; `json`: the input and the
    /// result are JSON text, parsed and stringified by a language guest.
    Call {
        name: String,
        input: crate::buffer::View,
        json: bool,
    },
}

/// What to run: the entry point (or JavaScript source) and the channel ends
/// the guest may look up by name (`subinterp_v1.lookup`; in JS, the global
/// `channels`).
#[derive(Debug, Clone)]
pub struct Run {
    pub(super) body: Body,
    pub(super) channels: Vec<(String, ChannelEnd)>,
    pub(super) deadline_cap: Option<Instant>,
    pub(super) fuel: Option<u64>,
}

impl Run {
    /// Run a WASI command's `_start`.
    pub fn start() -> Self {
        Run::export("_start")
    }

    /// Run the exported function `name` (type `()` or `() -> i32`).
    pub fn export(name: impl Into<String>) -> Self {
        Run {
            body: Body::Export(name.into()),
            channels: Vec::new(),
            deadline_cap: None,
            fuel: None,
        }
    }

    /// Evaluate JavaScript source as a global script in a JS interpreter
    /// (one created from [`Host::js`](crate::Host::js)); promise jobs run to
    /// completion before the run ends. Globals persist between runs.
    pub fn js(source: impl Into<String>) -> Self {
        Run::source(Language::JavaScript, None, source.into())
    }

    /// Run Python source as `__main__` in a Python interpreter (one created
    /// from [`Host::python`](crate::Host::python)). Globals persist between
    /// runs.
    pub fn python(source: impl Into<String>) -> Self {
        Run::source(Language::Python, None, source.into())
    }

    /// Call the function `name` with `input`, for its result in
    /// [`RunResult::output`]: in a JavaScript interpreter a global function
    /// (or `"module.js#name"`, an export of a module run earlier), given the
    /// input as a `View` and returning a string, bytes, a number, a boolean
    /// or `null` (or a promise of one); in a wasm module an export of type
    /// `(i32) -> i32`, given the input as a view handle, setting its result
    /// with `call_output` and returning 0 (anything else fails the call).
    /// [`Interpreter::call`] is the short form.
    pub fn call(name: impl Into<String>, input: impl Into<crate::buffer::Buffer>) -> Self {
        Run::with_body(Body::Call {
            name: name.into(),
            input: input.into().into_view(),
            json: false,
        })
    }

    /// As [`call`](Self::call), with JSON text in and out: a JavaScript
    /// function gets the parsed value and its result is stringified.
    pub(crate) fn call_json(name: impl Into<String>, json: Vec<u8>) -> Self {
        Run::with_body(Body::Call {
            name: name.into(),
            input: crate::buffer::Buffer::from(json).into_view(),
            json: true,
        })
    }

    fn with_body(body: Body) -> Self {
        Run {
            body,
            channels: Vec::new(),
            deadline_cap: None,
            fuel: None,
        }
    }

    fn source(language: Language, module: Option<String>, text: String) -> Self {
        Run {
            body: Body::Source {
                language,
                module,
                text,
            },
            channels: Vec::new(),
            deadline_cap: None,
            fuel: None,
        }
    }

    /// Evaluate JavaScript source as an ES module named `name` (top-level
    /// `await`, `import`/`export`). It can import, by name, the modules
    /// evaluated earlier in the same interpreter (`import { f } from
    /// "./util.js"` finds a module run as `"util.js"`) and the built-in
    /// `node:fs`, `node:fs/promises`, `node:path` and `node:buffer`; in an
    /// interpreter with a module folder
    /// ([`InterpreterBuilder::modules`](crate::InterpreterBuilder::modules)),
    /// a module named by its absolute path imports files relative to it.
    pub fn js_module(name: impl Into<String>, source: impl Into<String>) -> Self {
        Run::source(Language::JavaScript, Some(name.into()), source.into())
    }

    /// The ES module file `path`, read now and named by its canonical path,
    /// so that its imports resolve from its folder (give the interpreter
    /// that folder, or one above it, with
    /// [`InterpreterBuilder::modules`](crate::InterpreterBuilder::modules)).
    ///
    /// # Errors
    /// The file cannot be read, or its path or text is not UTF-8.
    pub fn js_module_file(path: impl AsRef<std::path::Path>) -> std::io::Result<Self> {
        let canon = std::fs::canonicalize(path)?;
        let source = std::fs::read_to_string(&canon)?;
        let name = canon.to_str().ok_or_else(|| {
            std::io::Error::new(std::io::ErrorKind::InvalidData, "the path is not UTF-8")
        })?;
        Ok(Run::js_module(name, source))
    }

    /// Ends the run no later than `at`, whatever the interpreter's timeout.
    pub(crate) fn deadline_cap(mut self, at: Option<Instant>) -> Self {
        self.deadline_cap = at;
        self
    }

    /// Gives the run this much fuel instead of the interpreter's own budget
    /// (fuel taken from a creator's run for its child's).
    pub(crate) fn fuel(mut self, fuel: Option<u64>) -> Self {
        self.fuel = fuel;
        self
    }

    /// Passes a channel end under `name`. A name bound by an earlier run of
    /// the same interpreter is rebound.
    #[must_use]
    pub fn channel(mut self, name: impl Into<String>, end: impl Into<ChannelEnd>) -> Self {
        self.channels.push((name.into(), end.into()));
        self
    }
}

/// A run going on on its own thread, from [`Interpreter::start`].
#[derive(Debug)]
pub struct RunJob {
    pub(super) id: InterpreterId,
    pub(super) job: Arc<Job<Result<RunResult, Error>>>,
}

impl RunJob {
    /// The interpreter the job runs in.
    pub fn interpreter_id(&self) -> InterpreterId {
        self.id
    }

    /// Whether the run has ended.
    pub fn is_finished(&self) -> bool {
        self.job.is_finished()
    }

    /// Waits for the run to end and returns its result.
    ///
    /// # Errors
    /// As [`Interpreter::run`].
    ///
    /// # Panics
    /// If the run's thread panicked (a host bug, never a guest's doing).
    pub fn join(self) -> Result<RunResult, Error> {
        match self.job.wait(None, None) {
            Ok(result) => result,
            Err(_) => panic!("run thread panicked"),
        }
    }
}
