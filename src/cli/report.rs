//! What the command line prints and the exit code it ends with: a run's
//! result as text or JSON, and the codes for limits and traps.

use std::fmt::Display;
use std::io::{self, Write};
use std::process::ExitCode;

use anyhow::{Context, Result};
use serde_json::json;
use subinterp::{ErrorKind, GuestError, RunResult};

/// Exit code when a limit (deadline, memory, fuel, output) ended the run.
pub(crate) const EXIT_LIMIT: u8 = 125;
/// Exit code when the guest trapped (as `wasmtime run`: 128 + SIGABRT).
const EXIT_TRAP: u8 = 134;

/// Writes one line to stderr. Unlike `eprintln!` it never panics: if stderr is
/// closed or failing there is nowhere left to say so, so the error is dropped.
pub(crate) fn report(line: impl Display) {
    let _ = writeln!(io::stderr().lock(), "{line}");
}

/// Writes one line to stdout and flushes it, returning the error `println!`
/// would panic on.
pub(crate) fn write_stdout(line: &str) -> io::Result<()> {
    let mut out = io::stdout().lock();
    out.write_all(line.as_bytes())?;
    out.write_all(b"\n")?;
    out.flush()
}

/// Reports a guest whose instantiation failed (its start function trapped
/// or hit a limit) as a failed run is reported.
pub(crate) fn guest_failed_to_start(e: &GuestError, json: bool) -> Result<ExitCode> {
    if json {
        let v = json!({"completed": false, "error": error_json(e), "exit_code": null});
        match write_stdout(&v.to_string()) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => {}
            Err(e) => return Err(e).context("writing the result to stdout"),
        }
    } else {
        report(format_args!(
            "subinterp: the module failed to start: {}: {}",
            e.kind.name(),
            e.message
        ));
    }
    Ok(ExitCode::from(kind_exit_code(&e.kind)))
}

pub(crate) fn exit_code(r: &RunResult) -> u8 {
    match r.error.as_ref().map(|e| &e.kind) {
        None => r.exit_code.unwrap_or(0) as u8,
        Some(k) => kind_exit_code(k),
    }
}

fn kind_exit_code(k: &ErrorKind) -> u8 {
    match k {
        ErrorKind::Exit(c) => *c as u8,
        k if k.is_limit() => EXIT_LIMIT,
        ErrorKind::Exception { .. } => 1,
        _ => EXIT_TRAP,
    }
}

fn error_json(e: &GuestError) -> serde_json::Value {
    let limit = match &e.kind {
        ErrorKind::Timeout { limit } => json!({"timeout_ms": limit.as_secs_f64() * 1e3}),
        ErrorKind::OutOfFuel { limit } => json!({"fuel": limit}),
        ErrorKind::MemoryLimit { limit } => json!({"max_memory": limit}),
        ErrorKind::OutputLimit { limit } => json!({"max_output": limit}),
        _ => serde_json::Value::Null,
    };
    json!({
        "type": e.kind.type_name(),
        "kind": e.kind.name(),
        "message": e.message,
        "stack": e.backtrace,
        "limit": limit,
    })
}

pub(crate) fn to_json(r: &RunResult) -> serde_json::Value {
    let error = r.error.as_ref().map(error_json);
    json!({
        "completed": r.completed,
        "error": error,
        "exit_code": r.exit_code,
        "stdout": String::from_utf8_lossy(&r.stdout),
        "stderr": String::from_utf8_lossy(&r.stderr),
        "wall_ms": r.wall.as_secs_f64() * 1e3,
        "stats": {
            "bytes_copied_out": r.stats.bytes_copied_out,
            "bytes_copied_in": r.stats.bytes_copied_in,
            "buffers_forwarded": r.stats.buffers_forwarded,
            "messages_sent": r.stats.messages_sent,
            "messages_received": r.stats.messages_received,
            "fuel_used": r.stats.fuel_used,
        },
    })
}
