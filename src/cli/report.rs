//! What the command line prints and the exit code it ends with: a run's
//! result as text or JSON, and the codes for limits and traps.

use std::fmt::Display;
use std::io::{self, Write};
use std::process::ExitCode;

use anyhow::{Context, Result};
use serde_json::json;
use subinterp::{ErrorKind, GuestError, LimitError, RunResult};

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

/// The version of the `--json` result's layout (its `schema` field). It goes
/// up when a field is removed or changes meaning; new fields may be added
/// within a version.
pub(crate) const JSON_SCHEMA: u32 = 1;

/// Exit code for a bad flag or argument (as clap's own).
pub(crate) const EXIT_USAGE: u8 = 2;

/// Writes the `--json` result; a reader that went away (`| head`) is not an
/// error: the run still happened.
pub(crate) fn print_json(v: &serde_json::Value) -> Result<()> {
    match write_stdout(&v.to_string()) {
        Err(e) if e.kind() != io::ErrorKind::BrokenPipe => {
            Err(e).context("writing the result to stdout")
        }
        _ => Ok(()),
    }
}

/// The `--json` result of a failure before any run: a bad argument
/// (`usage`), a file that could not be loaded (`load`), or a compile limit
/// (`compile_limit`). The same fields as a run's, with no output or stats.
pub(crate) fn failure_json(
    type_name: &str,
    kind: &str,
    message: &str,
    limit: serde_json::Value,
    exit_code: u8,
) -> serde_json::Value {
    json!({
        "schema": JSON_SCHEMA,
        "completed": false,
        "exit_code": exit_code,
        "error": {
            "type": type_name,
            "kind": kind,
            "message": message,
            "stack": null,
            "limit": limit,
        },
        "output": null,
        "stdout": "",
        "stderr": "",
        "wall_ms": 0.0,
        "stats": null,
    })
}

/// A compile limit hit while loading a module, as `--json`'s `error.limit`.
pub(crate) fn compile_limit_json(l: &LimitError) -> serde_json::Value {
    match l {
        LimitError::ModuleTooLarge { limit } => json!({"max_module_bytes": limit}),
        LimitError::ModuleTooComplex { what, limit } => json!({"max": limit, "of": what}),
        LimitError::CompileTimeout { limit } => {
            json!({"compile_timeout_ms": limit.as_secs_f64() * 1e3})
        }
        _ => serde_json::Value::Null,
    }
}

/// A guest whose instantiation failed, as the `--json` object.
pub(crate) fn start_failure_json(e: &GuestError) -> serde_json::Value {
    let code = kind_exit_code(&e.kind);
    let mut v = failure_json(
        e.kind.type_name(),
        e.kind.name(),
        &e.message,
        limit_json(e),
        code,
    );
    v["error"]["stack"] = json!(e.backtrace);
    v
}

/// Reports a guest whose instantiation failed (its start function trapped
/// or hit a limit) as a failed run is reported.
pub(crate) fn guest_failed_to_start(e: &GuestError, json: bool) -> Result<ExitCode> {
    let code = kind_exit_code(&e.kind);
    if json {
        print_json(&start_failure_json(e))?;
    } else {
        report(format_args!(
            "subinterp: the module failed to start: {}: {}",
            e.kind.name(),
            e.message
        ));
    }
    Ok(ExitCode::from(code))
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

fn limit_json(e: &GuestError) -> serde_json::Value {
    match &e.kind {
        ErrorKind::Timeout { limit } => json!({"timeout_ms": limit.as_secs_f64() * 1e3}),
        ErrorKind::OutOfFuel { limit } => json!({"fuel": limit}),
        ErrorKind::MemoryLimit { limit } => json!({"max_memory": limit}),
        ErrorKind::OutputLimit { limit } => json!({"max_output": limit}),
        _ => serde_json::Value::Null,
    }
}

fn error_json(e: &GuestError) -> serde_json::Value {
    json!({
        "type": e.kind.type_name(),
        "kind": e.kind.name(),
        "message": e.message,
        "stack": e.backtrace,
        "limit": limit_json(e),
    })
}

/// A run's `--json` result (schema [`JSON_SCHEMA`], documented in the
/// README): `exit_code` is always the code this process exits with.
pub(crate) fn to_json(r: &RunResult) -> serde_json::Value {
    let error = r.error.as_ref().map(error_json);
    json!({
        "schema": JSON_SCHEMA,
        "completed": r.completed,
        "exit_code": exit_code(r),
        "error": error,
        "output": r.output.as_ref().map(|o| String::from_utf8_lossy(o).into_owned()),
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
