//! The crate's combined error type for host-side operations.
//!
//! Each subsystem owns its errors (channel operations have one type each, in
//! [`channel`](crate::channel)); this enum gathers the rest. Guest failures are
//! not errors of `run`: they come back inside the [`RunResult`](crate::RunResult),
//! and [`RunResult::check`](crate::RunResult::check) turns one into
//! [`Error::Guest`].

use std::fmt;

use crate::id::InterpreterId;
use crate::language::Language;
use crate::outcome::GuestError;

/// An error of a dependency (wasmtime, the WAT parser), kept as the source
/// of one of ours: its text is public, its type is not, so an application on
/// another wasmtime version can still use this crate.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// What went wrong in a host-side operation.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The bytes are not a valid WebAssembly module (or failed validation).
    #[error("invalid wasm module")]
    InvalidModule(#[source] BoxError),
    /// The module imports something the host does not provide.
    #[error("cannot link module")]
    Link(#[source] BoxError),
    /// Instantiating failed (its start function or `_initialize` trapped,
    /// or hit a limit).
    #[error("instantiation failed: {0}")]
    Instantiate(GuestError),
    /// The interpreter was closed.
    #[error("{0} is closed")]
    InterpreterClosed(InterpreterId),
    /// The interpreter is already running (runs of one interpreter do not overlap).
    #[error("{0} is already running")]
    InterpreterRunning(InterpreterId),
    /// The module has no exported function of that name (or of a supported type).
    #[error("no exported function `{0}` of type () or () -> i32")]
    NoSuchExport(String),
    /// The export's type is not the one a typed call asked for
    /// ([`Interpreter::typed`](crate::Interpreter::typed)).
    #[error("export `{name}` has type {found}, not {expected}")]
    WrongSignature {
        /// The export.
        name: String,
        /// The type asked for.
        expected: String,
        /// Its type.
        found: String,
    },
    /// Source in one language was given to an interpreter that does not run it.
    #[error("{interpreter} does not run {language}")]
    WrongLanguage {
        /// The interpreter.
        interpreter: InterpreterId,
        /// The source's language.
        language: Language,
    },
    /// A language guest (JavaScript, Python) could not be found or loaded.
    #[error("{language} guest unavailable")]
    LanguageGuest {
        /// The guest's language.
        language: Language,
        /// Why not.
        #[source]
        source: GuestLoadError,
    },
    /// A host-wide limit was reached.
    #[error("limit exceeded: {0}")]
    Limit(#[from] LimitError),
    /// A guest run failed (from [`RunResult::check`](crate::RunResult::check)).
    /// Its display is the guest's error; it is not also its source, so a
    /// report does not print it twice.
    #[error("{0}")]
    Guest(GuestError),
    /// A call's input could not be serialised as JSON, or its output was
    /// not JSON of the type asked for ([`Interpreter::call_json`](crate::Interpreter::call_json)).
    #[error("JSON")]
    Json(#[source] BoxError),
    /// An interpreter was granted a host function nobody registered
    /// ([`InterpreterBuilder::allow`](crate::InterpreterBuilder::allow)).
    #[error("no host function `{0}` is registered")]
    NoSuchHostFn(String),
    /// Reading a file failed.
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// A directory could not be granted to a guest (it does not exist, or
    /// cannot be opened).
    #[error("granting {}", dir.display())]
    Grant {
        /// The host directory.
        dir: std::path::PathBuf,
        /// Why not.
        #[source]
        source: BoxError,
    },
    /// The engine could not be configured.
    #[error("engine configuration")]
    Engine(#[source] BoxError),
}

/// Why a language guest could not be loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GuestLoadError {
    /// There is no guest file where it is looked for.
    #[error("{} not found: run `make guest`, or set {env} to the guest's path", path.display())]
    NotFound {
        /// Where it was looked for.
        path: std::path::PathBuf,
        /// The environment variable that names another path.
        env: &'static str,
    },
    /// The guest file could not be read.
    #[error("reading {}", path.display())]
    Read {
        /// The guest file.
        path: std::path::PathBuf,
        /// Why not.
        #[source]
        source: std::io::Error,
    },
    /// Compiling (or linking) the guest failed.
    #[error("compiling the guest")]
    Compile(#[source] BoxError),
    /// The file is a wasm module, but not the subinterp guest of its language.
    #[error("{} is not the subinterp {language} guest", path.display())]
    NotTheGuest {
        /// The file.
        path: std::path::PathBuf,
        /// The language it should interpret.
        language: Language,
    },
}

/// A host-wide limit that was hit, naming the limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum LimitError {
    /// Every slot of the instance pool is in use.
    TooManyInterpreters {
        /// The pool's size.
        limit: usize,
    },
    /// The interpreter already holds its limit of live handles.
    TooManyHandles {
        /// The handle cap.
        limit: usize,
    },
    /// A module is larger than [`CompileLimits::max_module_bytes`](crate::CompileLimits::max_module_bytes).
    ModuleTooLarge {
        /// The ceiling in bytes.
        limit: usize,
    },
    /// A module has more of something than [`CompileLimits`](crate::CompileLimits) allow.
    ModuleTooComplex {
        /// What there is too much of: `functions`, `bytes in one function`,
        /// `nested blocks` or `nested loops`.
        what: &'static str,
        /// The ceiling.
        limit: usize,
    },
    /// Compiling a module took longer than its deadline (the compile goes on
    /// in the background, and is not used).
    CompileTimeout {
        /// The deadline.
        limit: std::time::Duration,
    },
    /// A compile abandoned at its deadline is still running: no other is
    /// started until it ends.
    CompileBusy,
}

impl fmt::Display for LimitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LimitError::TooManyInterpreters { limit } => {
                write!(f, "too many live interpreters (limit {limit})")
            }
            LimitError::TooManyHandles { limit } => {
                write!(f, "too many live handles (limit {limit})")
            }
            LimitError::ModuleTooLarge { limit } => {
                write!(f, "module larger than {limit} bytes")
            }
            LimitError::ModuleTooComplex { what, limit } => {
                write!(f, "module has more than {limit} {what}")
            }
            LimitError::CompileTimeout { limit } => {
                write!(f, "compiling took longer than {limit:?}")
            }
            LimitError::CompileBusy => {
                f.write_str("an abandoned compile is still running; try again when it ends")
            }
        }
    }
}

impl std::error::Error for LimitError {}
