//! A worker's result (the `--json` object, schema 1) as the [`RunResult`]
//! a local run returns.

use std::time::Duration;

use base64::Engine;
use serde_json::Value;

use super::error::RemoteError;
use crate::outcome::{ErrorKind, GuestError, Trap};
use crate::result::{RunResult, RunStats};

/// The result of the `--json` object `v`: a run's [`RunResult`] (completed
/// or not), or [`RemoteError::Refused`] for an answer without a run (a
/// refused request, a module that could not be had: `stats` is null).
pub(crate) fn decode(v: &Value) -> Result<RunResult, RemoteError> {
    if v["schema"] != 1 {
        return Err(RemoteError::BadResult(format!("schema {}", v["schema"])));
    }
    let exit_code = v["exit_code"].as_u64().and_then(|c| u8::try_from(c).ok());
    let Some(exit_code) = exit_code else {
        return Err(RemoteError::BadResult("no exit_code".into()));
    };
    let e = &v["error"];
    let text = |x: &Value| x.as_str().unwrap_or_default().to_string();
    if v["stats"].is_null() {
        return Err(RemoteError::Refused {
            kind: text(&e["kind"]),
            message: text(&e["message"]),
            exit_code,
        });
    }
    let error = (!e.is_null()).then(|| GuestError {
        kind: kind(e, exit_code),
        message: text(&e["message"]),
        backtrace: e["stack"].as_str().map(str::to_string),
    });
    let exit = match &error {
        None => Some(0),
        Some(GuestError {
            kind: ErrorKind::Exit(c),
            ..
        }) => Some(*c),
        Some(_) => None,
    };
    Ok(RunResult {
        completed: v["completed"] == true,
        error,
        exit_code: exit,
        value: None,
        output: exact(v, "output").map(bytes::Bytes::from),
        stdout: exact(v, "stdout").unwrap_or_default(),
        stderr: exact(v, "stderr").unwrap_or_default(),
        wall: Duration::from_secs_f64(v["wall_ms"].as_f64().unwrap_or(0.0).max(0.0) / 1e3),
        stats: stats(&v["stats"]),
    })
}

/// Every trap a result's `error.trap` may name (by its `Debug` name).
const TRAPS: [Trap; 17] = [
    Trap::StackOverflow,
    Trap::MemoryOutOfBounds,
    Trap::HeapMisaligned,
    Trap::TableOutOfBounds,
    Trap::IndirectCallToNull,
    Trap::BadSignature,
    Trap::IntegerOverflow,
    Trap::IntegerDivisionByZero,
    Trap::BadConversionToInteger,
    Trap::UnreachableCodeReached,
    Trap::Interrupt,
    Trap::OutOfFuel,
    Trap::NullReference,
    Trap::ArrayOutOfBounds,
    Trap::AllocationTooLarge,
    Trap::CastFailure,
    Trap::Other,
];

/// The trap `error.trap` names; [`Trap::Other`] when it names none.
fn trap(name: &Value) -> Trap {
    let name = name.as_str().unwrap_or_default();
    TRAPS
        .into_iter()
        .find(|t| format!("{t:?}") == name)
        .unwrap_or(Trap::Other)
}

/// The error's kind from its `kind` name, `limit` object and `trap`.
fn kind(e: &Value, exit_code: u8) -> ErrorKind {
    let limit = &e["limit"];
    let n = |k: &str| limit[k].as_u64().unwrap_or(0);
    match e["kind"].as_str().unwrap_or_default() {
        "trap" => ErrorKind::Trap(trap(&e["trap"])),
        "timeout" => ErrorKind::Timeout {
            limit: Duration::from_secs_f64(
                limit["timeout_ms"].as_f64().unwrap_or(0.0).max(0.0) / 1e3,
            ),
        },
        "out_of_fuel" => ErrorKind::OutOfFuel { limit: n("fuel") },
        "memory_limit" => ErrorKind::MemoryLimit {
            limit: usize::try_from(n("max_memory")).unwrap_or(usize::MAX),
        },
        "output_limit" => ErrorKind::OutputLimit {
            limit: usize::try_from(n("max_output")).unwrap_or(usize::MAX),
        },
        "exit" => ErrorKind::Exit(i32::from(exit_code)),
        "closed" => ErrorKind::Closed,
        "exception" => ErrorKind::Exception {
            name: e["type"].as_str().unwrap_or("Error").to_string(),
        },
        _ => ErrorKind::Host,
    }
}

/// The bytes of the field `key` (`output`, `stdout`, `stderr`):
/// `KEY_base64` when the worker gave it (the exact bytes, which the text
/// may not carry), else the `KEY` text; `None` when neither is there.
fn exact(v: &Value, key: &str) -> Option<Vec<u8>> {
    if let Some(b) = v[format!("{key}_base64")].as_str()
        && let Ok(b) = base64::engine::general_purpose::STANDARD.decode(b)
    {
        return Some(b);
    }
    v[key].as_str().map(|s| s.as_bytes().to_vec())
}

fn stats(s: &Value) -> RunStats {
    let n = |k: &str| s[k].as_u64().unwrap_or(0);
    RunStats {
        bytes_copied_out: n("bytes_copied_out"),
        bytes_copied_in: n("bytes_copied_in"),
        buffers_forwarded: n("buffers_forwarded"),
        messages_sent: n("messages_sent"),
        messages_received: n("messages_received"),
        fuel_used: s["fuel_used"].as_u64(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn results_decode_to_run_results_and_refusals() {
        let v = json!({"schema": 1, "completed": false, "exit_code": 125,
            "error": {"type": "LimitError", "kind": "timeout", "message": "deadline",
                      "stack": null, "limit": {"timeout_ms": 300.0}},
            "output": null, "output_base64": "AP8=", "stdout": "a", "stderr": "", "wall_ms": 2.0,
            "stats": {"messages_sent": 3, "fuel_used": null}});
        let r = decode(&v).unwrap();
        let kind = r.error.as_ref().map(|e| e.kind.clone());
        assert_eq!(
            kind,
            Some(ErrorKind::Timeout {
                limit: Duration::from_millis(300)
            })
        );
        assert_eq!(
            (r.completed, r.stats.messages_sent, r.stdout_text()),
            (false, 3, "a".into())
        );
        assert_eq!(r.output.as_deref(), Some(&[0u8, 255][..]));
        let refused = json!({"schema": 1, "completed": false, "exit_code": 1, "stats": null,
            "error": {"type": "LoadError", "kind": "load", "message": "gone"}});
        assert!(
            matches!(decode(&refused), Err(RemoteError::Refused { kind, exit_code: 1, .. }) if kind == "load")
        );
        assert!(matches!(
            decode(&json!({"schema": 2})),
            Err(RemoteError::BadResult(_))
        ));
        let mut trapped = v.clone();
        trapped["error"] = json!({"kind": "trap", "trap": "IntegerDivisionByZero", "message": "x"});
        let kind = decode(&trapped).unwrap().error.map(|e| e.kind);
        assert_eq!(kind, Some(ErrorKind::Trap(Trap::IntegerDivisionByZero)));
        trapped["error"]["trap"] = json!("SomethingNew");
        let kind = decode(&trapped).unwrap().error.map(|e| e.kind);
        assert_eq!(kind, Some(ErrorKind::Trap(Trap::Other)));
    }

    #[test]
    fn streams_that_are_not_utf8_decode_to_their_exact_bytes() {
        let v = json!({"schema": 1, "completed": true, "exit_code": 0, "error": null,
            "output": null, "stdout": "a\u{fffd}\u{fffd}", "stdout_base64": "Yf/+",
            "stderr": "\u{fffd}(", "stderr_base64": "wyg=", "wall_ms": 1.0, "stats": {}});
        let r = decode(&v).unwrap();
        assert_eq!(
            (&r.stdout[..], &r.stderr[..]),
            (&b"a\xff\xfe"[..], &b"\xc3("[..])
        );
        // Without the base64 fields (valid UTF-8): the text's bytes.
        let mut text = v.clone();
        text["stdout_base64"] = Value::Null;
        text["stderr"] = json!("é");
        text["stderr_base64"] = Value::Null;
        let r = decode(&text).unwrap();
        assert_eq!(
            (&r.stdout[..], &r.stderr[..]),
            ("a\u{fffd}\u{fffd}".as_bytes(), "é".as_bytes())
        );
    }
}
