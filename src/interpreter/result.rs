//! What a run returns, and how a wasm failure is classified by type.

use std::fmt;
use std::time::Duration;

use wasmtime::{Trap, WasmBacktrace};
use wasmtime_wasi::I32Exit;

use super::state::Abort;
use crate::error::Error;

/// The kind of a guest failure, recovered by downcast, never by message text.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// A wasm trap (out-of-bounds access, unreachable, stack overflow, ...).
    Trap(Trap),
    /// The run passed its wall-clock deadline ([`Limits::timeout`](crate::Limits::timeout)).
    Timeout {
        /// The deadline that was hit.
        limit: Duration,
    },
    /// The run used up its instruction budget ([`Limits::fuel`](crate::Limits::fuel)).
    OutOfFuel {
        /// The budget that was hit.
        limit: u64,
    },
    /// The guest tried to grow its memory past [`Limits::max_memory`](crate::Limits::max_memory).
    MemoryLimit {
        /// The ceiling in bytes.
        limit: usize,
    },
    /// The guest wrote more than [`Limits::max_output`](crate::Limits::max_output) to one stream.
    OutputLimit {
        /// The cap in bytes.
        limit: usize,
    },
    /// The guest called `proc_exit` with a non-zero code.
    Exit(i32),
    /// The interpreter was closed while the run was going on.
    Closed,
    /// A JavaScript run ended with an uncaught exception (or an unhandled
    /// promise rejection); `name` is its type, e.g. `TypeError`, and the
    /// [`GuestError::backtrace`] holds the JS stack.
    Exception {
        /// The error's `.name` (`ThrownValue` for a thrown non-Error,
        /// `UnhandledRejection` for a rejected promise nobody handled).
        name: String,
    },
    /// Anything else the host reported (the message says what).
    Host,
}

impl ErrorKind {
    /// Whether a limit (deadline, fuel, memory, output) ended the run.
    pub fn is_limit(&self) -> bool {
        matches!(
            self,
            ErrorKind::Timeout { .. }
                | ErrorKind::OutOfFuel { .. }
                | ErrorKind::MemoryLimit { .. }
                | ErrorKind::OutputLimit { .. }
        )
    }

    /// A short stable name: `trap`, `timeout`, `out_of_fuel`, `memory_limit`,
    /// `output_limit`, `exit`, `closed`, `exception` or `host`.
    pub fn name(&self) -> &'static str {
        match self {
            ErrorKind::Trap(_) => "trap",
            ErrorKind::Timeout { .. } => "timeout",
            ErrorKind::OutOfFuel { .. } => "out_of_fuel",
            ErrorKind::MemoryLimit { .. } => "memory_limit",
            ErrorKind::OutputLimit { .. } => "output_limit",
            ErrorKind::Exit(_) => "exit",
            ErrorKind::Closed => "closed",
            ErrorKind::Exception { .. } => "exception",
            ErrorKind::Host => "host",
        }
    }

    /// The error's type as scripts see it: the exception's own name, or
    /// `LimitError`, `InterpreterClosedError`, `Trap`, `Exit`, `HostError`.
    pub fn type_name(&self) -> &str {
        match self {
            ErrorKind::Exception { name } => name,
            k if k.is_limit() => "LimitError",
            ErrorKind::Closed => "InterpreterClosedError",
            ErrorKind::Trap(_) => "Trap",
            ErrorKind::Exit(_) => "Exit",
            _ => "HostError",
        }
    }
}

/// Why a guest run did not complete: its kind, a message and, for wasm
/// traps, the wasm backtrace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuestError {
    /// What kind of failure it was.
    pub kind: ErrorKind,
    /// A human-readable message.
    pub message: String,
    /// The wasm backtrace, or for a JavaScript exception the JS stack, when
    /// there is one.
    pub backtrace: Option<String>,
}

impl fmt::Display for GuestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            ErrorKind::Exception { name } => write!(f, "{name}: {}", self.message),
            k => write!(f, "{}: {}", k.name(), self.message),
        }
    }
}

impl std::error::Error for GuestError {}

/// Per-run usage figures.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RunStats {
    /// Bytes this run copied out of the guest's memory (its sends).
    pub bytes_copied_out: u64,
    /// Bytes this run copied into the guest's memory (its view reads).
    pub bytes_copied_in: u64,
    /// Buffers this run forwarded without copying.
    pub buffers_forwarded: u64,
    /// Messages this run sent successfully (bytes, views and ends alike).
    pub messages_sent: u64,
    /// Messages this run received.
    pub messages_received: u64,
    /// Fuel consumed, when fuel is on.
    pub fuel_used: Option<u64>,
}

/// What [`Interpreter::run`](crate::Interpreter::run) returns.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct RunResult {
    /// Whether the run finished without error (`proc_exit(0)` counts as finished).
    pub completed: bool,
    /// Why it did not, when it did not.
    pub error: Option<GuestError>,
    /// The exit code for a WASI command (`Some(0)` when `_start` returned).
    pub exit_code: Option<i32>,
    /// The value an exported `() -> i32` function returned.
    pub value: Option<i32>,
    /// Captured stdout (empty when output went to the host's streams).
    pub stdout: Vec<u8>,
    /// Captured stderr (empty when output went to the host's streams).
    pub stderr: Vec<u8>,
    /// Wall time of the run.
    pub wall: Duration,
    /// Usage figures.
    pub stats: RunStats,
}

impl RunResult {
    /// `Ok(self)` when the run completed, else [`Error::Guest`].
    ///
    /// # Errors
    /// [`Error::Guest`] with the guest's error when the run did not complete.
    pub fn check(self) -> Result<RunResult, Error> {
        match self.error {
            Some(e) if !self.completed => Err(Error::Guest(e)),
            _ => Ok(self),
        }
    }

    /// Captured stdout as text (lossy).
    pub fn stdout_text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    /// Captured stderr as text (lossy).
    pub fn stderr_text(&self) -> String {
        String::from_utf8_lossy(&self.stderr).into_owned()
    }
}

/// How a finished call ended, before output and stats are attached.
pub(crate) struct Outcome {
    pub(crate) error: Option<GuestError>,
    pub(crate) exit_code: Option<i32>,
}

/// Classifies a wasmtime error by downcasting to the types we know.
pub(crate) fn classify(err: &wasmtime::Error) -> Outcome {
    if let Some(exit) = err.downcast_ref::<I32Exit>() {
        let error = (exit.0 != 0).then(|| GuestError {
            kind: ErrorKind::Exit(exit.0),
            message: format!("exited with code {}", exit.0),
            backtrace: None,
        });
        return Outcome {
            error,
            exit_code: Some(exit.0),
        };
    }
    let backtrace = err
        .downcast_ref::<WasmBacktrace>()
        .map(|bt| bt.to_string())
        .filter(|s| !s.trim().is_empty());
    let (kind, message) = if let Some(abort) = err.downcast_ref::<Abort>() {
        (abort.kind(), abort.to_string())
    } else if let Some(trap) = err.downcast_ref::<Trap>() {
        (ErrorKind::Trap(*trap), trap.to_string())
    } else {
        (ErrorKind::Host, format!("{err:#}"))
    };
    Outcome {
        error: Some(GuestError {
            kind,
            message,
            backtrace,
        }),
        exit_code: None,
    }
}
