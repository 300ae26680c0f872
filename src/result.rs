//! What a run returns, and how a wasm failure is classified by type.

use std::time::Duration;

use wasmtime::WasmBacktrace;
use wasmtime_wasi::I32Exit;

use crate::error::Error;
use crate::outcome::{Abort, ErrorKind, GuestError, Trap};
use crate::output::OutputLimitExceeded;

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
    /// The bytes the guest gave back: a call's result
    /// ([`Interpreter::call`](crate::Interpreter::call)), or a JavaScript
    /// script's completion value when it is a string, number, boolean,
    /// `null` or bytes (`"2"` for `1 + 1`).
    pub output: Option<bytes::Bytes>,
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

/// How a finished call ended, before output and stats are attached
/// (the default: it succeeded, with no exit code).
#[derive(Default)]
pub(crate) struct Outcome {
    pub(crate) error: Option<GuestError>,
    pub(crate) exit_code: Option<i32>,
}

impl Outcome {
    /// A call that failed with `error`.
    pub(crate) fn failed(error: GuestError) -> Outcome {
        Outcome {
            error: Some(error),
            exit_code: None,
        }
    }
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
    } else if let Some(out) = err.downcast_ref::<OutputLimitExceeded>() {
        (ErrorKind::OutputLimit { limit: out.limit }, out.to_string())
    } else if let Some(trap) = err.downcast_ref::<wasmtime::Trap>() {
        (
            ErrorKind::Trap(Trap::from_wasmtime(*trap)),
            trap.to_string(),
        )
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
