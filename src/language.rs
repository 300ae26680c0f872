//! The languages a guest can interpret. A language guest is an interpreter
//! of that language compiled to wasm, with the `si_<lang>_*` exports the
//! host drives (see `guest/js/subinterp_js.c`, `guest/python/subinterp_py.c`).

use std::fmt;

/// A language a guest interprets: source in it runs with
/// [`Run::js`](crate::Run::js) or [`Run::python`](crate::Run::python).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Language {
    /// JavaScript: QuickJS-ng compiled to wasm.
    JavaScript,
    /// Python: CPython compiled to wasm.
    Python,
}

impl Language {
    /// Every language, in a fixed order.
    pub const ALL: [Language; 2] = [Language::JavaScript, Language::Python];

    /// The language's name, as scripts and the CLI spell it (`js`, `python`).
    pub fn name(self) -> &'static str {
        match self {
            Language::JavaScript => "js",
            Language::Python => "python",
        }
    }

    /// The language named `name` (`js`, `javascript`, `python`, `py`).
    pub fn from_name(name: &str) -> Option<Language> {
        match name {
            "js" | "javascript" => Some(Language::JavaScript),
            "python" | "py" => Some(Language::Python),
            _ => None,
        }
    }

    /// The guest's file name (`js.wasm`, `python.wasm`), under
    /// `target/guest/` after `make guest`.
    pub(crate) fn file_name(self) -> &'static str {
        match self {
            Language::JavaScript => "js.wasm",
            Language::Python => "python.wasm",
        }
    }

    /// The environment variable that names the guest's path instead.
    pub(crate) fn env_var(self) -> &'static str {
        match self {
            Language::JavaScript => "SUBINTERP_JS_WASM",
            Language::Python => "SUBINTERP_PY_WASM",
        }
    }

    /// The guest's export `si_<lang>_<what>` (a static name: creating an
    /// interpreter allocates none).
    pub(crate) fn export(self, what: Export) -> &'static str {
        use Export::*;
        match (self, what) {
            (Language::JavaScript, Init) => "si_js_init",
            (Language::JavaScript, Configure) => "si_js_configure",
            (Language::JavaScript, Alloc) => "si_js_alloc",
            (Language::JavaScript, Eval) => "si_js_eval",
            (Language::JavaScript, EvalModule) => "si_js_eval_module",
            (Language::JavaScript, SnapshotInit) => "si_js_snapshot_init",
            (Language::JavaScript, Call) => "si_js_call",
            (Language::Python, Init) => "si_py_init",
            (Language::Python, Configure) => "si_py_configure",
            (Language::Python, Alloc) => "si_py_alloc",
            (Language::Python, Eval) => "si_py_eval",
            (Language::Python, EvalModule) => "si_py_eval_module",
            (Language::Python, SnapshotInit) => "si_py_snapshot_init",
            (Language::Python, Call) => "si_py_call",
        }
    }
}

impl fmt::Display for Language {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Language::JavaScript => "JavaScript",
            Language::Python => "Python",
        })
    }
}

/// The exports of a language guest the host drives (see `guest/js/subinterp_js.c`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Export {
    /// `init(memory_limit) -> 0`: set-up and configuration in one.
    Init,
    /// `configure(memory_limit) -> 0`: per-instance set-up after a snapshot.
    Configure,
    /// `alloc(len) -> ptr`: a buffer for the next source.
    Alloc,
    /// `eval(ptr, len) -> 0`: run source as a script.
    Eval,
    /// `eval_module(ptr, len, name_ptr, name_len) -> 0`: JavaScript's modules.
    EvalModule,
    /// `snapshot_init()`: the set-up a snapshot is taken after.
    SnapshotInit,
    /// `call(name_view, input_view, json) -> status`: calls a
    /// function by name with an input view; its result goes out through
    /// `call_output`. Optional: a guest without it cannot be called.
    Call,
}
