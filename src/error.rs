//! The crate's combined error type for host-side operations.
//!
//! Each subsystem owns its errors (channel operations have one type each, in
//! [`channel`](crate::channel)); this enum gathers the rest. Guest failures are
//! not errors of `run`: they come back inside the [`RunResult`](crate::RunResult),
//! and [`RunResult::check`](crate::RunResult::check) turns one into
//! [`Error::Guest`].

use std::fmt;

use crate::id::InterpreterId;
use crate::outcome::GuestError;

/// What went wrong in a host-side operation.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// The bytes are not a valid WebAssembly module (or failed validation).
    InvalidModule(String),
    /// The module imports something the host does not provide.
    Link(String),
    /// Instantiating failed (its start function or `_initialize` trapped).
    Instantiate(GuestError),
    /// The interpreter was closed.
    InterpreterClosed(InterpreterId),
    /// The interpreter is already running (runs of one interpreter do not overlap).
    InterpreterRunning(InterpreterId),
    /// The module has no exported function of that name (or of a supported type).
    NoSuchExport(String),
    /// JavaScript source was given to an interpreter that does not run JS.
    NotJavaScript(InterpreterId),
    /// The JavaScript guest could not be found or loaded.
    JsGuest(String),
    /// A host-wide limit was reached.
    Limit(LimitError),
    /// A guest run failed (from [`RunResult::check`](crate::RunResult::check)).
    Guest(GuestError),
    /// Reading a file failed.
    Io(std::io::Error),
    /// The engine could not be configured.
    Engine(String),
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

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::InvalidModule(m) => write!(f, "invalid wasm module: {m}"),
            Error::Link(m) => write!(f, "cannot link module: {m}"),
            Error::Instantiate(e) => write!(f, "instantiation failed: {e}"),
            Error::InterpreterClosed(id) => write!(f, "{id} is closed"),
            Error::InterpreterRunning(id) => write!(f, "{id} is already running"),
            Error::NoSuchExport(n) => {
                write!(f, "no exported function `{n}` of type () or () -> i32")
            }
            Error::NotJavaScript(id) => write!(f, "{id} does not run JavaScript"),
            Error::JsGuest(m) => write!(f, "JavaScript guest unavailable: {m}"),
            Error::Limit(l) => write!(f, "limit exceeded: {l}"),
            Error::Guest(e) => write!(f, "{e}"),
            Error::Io(e) => write!(f, "{e}"),
            Error::Engine(m) => write!(f, "engine configuration: {m}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io(e) => Some(e),
            // A guest error is shown in full by Display; as a source too, an
            // error report would print it twice.
            _ => None,
        }
    }
}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        Error::Io(e)
    }
}

impl From<LimitError> for Error {
    fn from(e: LimitError) -> Self {
        Error::Limit(e)
    }
}
