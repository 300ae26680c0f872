//! Guest ABI v1: the host imports a guest calls to use channels.
//!
//! Every import lives in the module [`MODULE`] and takes and returns plain
//! integers. Pointers, lengths and offsets are unsigned 32-bit guest values;
//! handles are the positive `i32`s of the interpreter's
//! handle table. A negative result is one of the `ERR_*`
//! codes below; nothing a guest passes can panic the host. The C header
//! `guest/include/subinterp.h` documents each function for guest authors (the
//! same text, per function, is on each `fn` below).
//!
//! Timeouts are microseconds as `i64`: negative blocks (until the run's
//! deadline), 0 never waits, positive waits at most that long. When the
//! run's own deadline passes during a wait (or the interpreter is closed),
//! a plain module's run ends there with
//! [`ErrorKind::Timeout`](crate::ErrorKind::Timeout) (or `Closed`); the JS
//! guest, which stops itself, gets `ERR_TIMEOUT` (or `ERR_CLOSED`) back
//! during its grace period, and is stopped by force only after it.

mod channels;
mod files;
mod host;
mod interp;
mod wait;

use self::channels::*;
pub use self::host::HOST_MODULE;
pub use self::wait::MAX_WAIT_ENDS;

use std::sync::Arc;
use std::time::{Duration, Instant};

use wasmtime::{Caller, Extern, Linker, Memory};

use crate::budget::{CHANNEL_COST, ChargedBytes, MESSAGE_COST};
use crate::buffer::Buffer;
use crate::channel::{Core, Message, RecvFail, SendFail, Wait};
use crate::handle::HandleError;
use crate::outcome::Abort;
use crate::store::{Entry, StoreData, Tally};

/// The import module name of ABI v1.
pub const MODULE: &str = "subinterp_v1";

/// Not a live handle of this interpreter (forged, stale or foreign).
pub const ERR_BAD_HANDLE: i32 = -1;
/// The handle is of the wrong kind for this call (e.g. a view where a sending end is needed).
pub const ERR_WRONG_KIND: i32 = -2;
/// A pointer, length or offset falls outside guest memory or the view.
pub const ERR_BOUNDS: i32 = -3;
/// Nothing to receive (nowait or timeout 0).
pub const ERR_EMPTY: i32 = -4;
/// No room to send (nowait or timeout 0).
pub const ERR_FULL: i32 = -5;
/// The channel is closed (or its other side is gone).
pub const ERR_CLOSED: i32 = -6;
/// The call's own timeout passed.
pub const ERR_TIMEOUT: i32 = -7;
/// No channel end was passed to `run` under that name.
pub const ERR_NOT_FOUND: i32 = -8;
/// The interpreter holds its limit of live handles.
pub const ERR_LIMIT: i32 = -9;
/// An argument is invalid (negative capacity, name not UTF-8, ...).
pub const ERR_INVALID: i32 = -10;
/// The message is larger than the channel's queued-bytes limit.
pub const ERR_TOO_LARGE: i32 = -11;
/// The named end was released by this interpreter.
pub const ERR_RELEASED: i32 = -12;
/// The interpreter is already running (runs of one interpreter do not overlap).
pub const ERR_BUSY: i32 = -13;
/// A host function failed (`subinterp_host_v1.call`); its message is a view.
pub const ERR_HOST: i32 = -14;
/// A directory a guest asked to give its child is not within its own
/// grants (or is writable where its grant is read-only).
pub const ERR_DENIED: i32 = -15;

/// `handle_kind` result (and `recv_kind`'s upper 32 bits): a view.
pub const KIND_VIEW: i32 = 1;
/// `handle_kind` result: a receiving end.
pub const KIND_RECV: i32 = 2;
/// `handle_kind` result: a sending end.
pub const KIND_SEND: i32 = 3;
/// `handle_kind` result: a job from `interp_start`.
pub const KIND_JOB: i32 = 4;

/// Every `ERR_*` code by name (without the prefix): the one source that
/// `guest/include/subinterp.h` (`SI_ERR_*`) and the JS prelude are checked
/// against by the tests.
pub const ERRORS: &[(&str, i32)] = &[
    ("BAD_HANDLE", ERR_BAD_HANDLE),
    ("WRONG_KIND", ERR_WRONG_KIND),
    ("BOUNDS", ERR_BOUNDS),
    ("EMPTY", ERR_EMPTY),
    ("FULL", ERR_FULL),
    ("CLOSED", ERR_CLOSED),
    ("TIMEOUT", ERR_TIMEOUT),
    ("NOT_FOUND", ERR_NOT_FOUND),
    ("LIMIT", ERR_LIMIT),
    ("INVALID", ERR_INVALID),
    ("TOO_LARGE", ERR_TOO_LARGE),
    ("RELEASED", ERR_RELEASED),
    ("BUSY", ERR_BUSY),
    ("HOST", ERR_HOST),
    ("DENIED", ERR_DENIED),
];

/// Every `KIND_*` value by name (without the prefix).
pub const KINDS: &[(&str, i32)] = &[
    ("VIEW", KIND_VIEW),
    ("RECV", KIND_RECV),
    ("SEND", KIND_SEND),
    ("JOB", KIND_JOB),
];

type Cx<'a> = Caller<'a, StoreData>;
type Ret = wasmtime::Result<i32>;

pub(crate) fn add_to_linker(l: &mut Linker<StoreData>) -> wasmtime::Result<()> {
    l.func_wrap(MODULE, "lookup", lookup)?;
    l.func_wrap(MODULE, "send", send)?;
    l.func_wrap(MODULE, "send_handle", send_handle)?;
    l.func_wrap(MODULE, "recv", recv)?;
    l.func_wrap(MODULE, "recv_kind", recv_kind)?;
    l.func_wrap(MODULE, "handle_kind", handle_kind)?;
    l.func_wrap(MODULE, "view_len", view_len)?;
    l.func_wrap(MODULE, "view_read", view_read)?;
    l.func_wrap(MODULE, "view_slice", view_slice)?;
    l.func_wrap(MODULE, "release", release)?;
    l.func_wrap(MODULE, "close", close)?;
    l.func_wrap(MODULE, "channel_create", channel_create)?;
    l.func_wrap(MODULE, "channel_len", channel_len)?;
    l.func_wrap(MODULE, "call_output", call_output)?;
    l.func_wrap(MODULE, "wait", wait::wait)?;
    l.func_wrap(MODULE, "interpreter_id", |cx: Cx<'_>| cx.data().id as i64)?;
    interp::add_to_linker(l)?;
    host::add_to_linker(l)?;
    files::add_to_linker(l)
}

/// The calling instance's exported memory: looked up by name once (a
/// lookup costs more than the rest of a small send), then kept in the store.
fn memory(cx: &mut Cx<'_>) -> Option<Memory> {
    if let Some(m) = cx.data().memory {
        return Some(m);
    }
    let Some(Extern::Memory(m)) = cx.get_export("memory") else {
        return None;
    };
    cx.data_mut().memory = Some(m);
    Some(m)
}

/// The guest range `[ptr, ptr + len)` as host indices, if it is in bounds.
fn range(mem_len: usize, ptr: i32, len: u64) -> Option<std::ops::Range<usize>> {
    let start = ptr as u32 as usize;
    let end = start.checked_add(usize::try_from(len).ok()?)?;
    (end <= mem_len).then_some(start..end)
}

fn bad(e: HandleError) -> i32 {
    match e {
        HandleError::Bad => ERR_BAD_HANDLE,
        HandleError::TooMany { .. } => ERR_LIMIT,
    }
}

/// The channel behind sending end `end` (borrowed from the handle table:
/// no reference count is touched, which the other side's thread shares).
fn sender(state: &StoreData, end: i32) -> Result<&Arc<Core>, i32> {
    match state.handles.get(end).map_err(bad)? {
        Entry::Send(s) => Ok(s.core()),
        _ => Err(ERR_WRONG_KIND),
    }
}

/// The channel behind receiving end `end` (borrowed, as [`sender`]).
fn receiver(state: &StoreData, end: i32) -> Result<&Arc<Core>, i32> {
    match state.handles.get(end).map_err(bad)? {
        Entry::Recv(r) => Ok(r.core()),
        _ => Err(ERR_WRONG_KIND),
    }
}

/// The deadline of a wait of `timeout_us`, capped by the run's deadline.
fn deadline(state: &StoreData, timeout_us: i64) -> Option<Instant> {
    let run = state.deadline.map(|(at, _)| at);
    let own = u64::try_from(timeout_us)
        .ok()
        .and_then(|us| Instant::now().checked_add(Duration::from_micros(us)));
    match (own, run) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// Runs `op` with the wait `timeout_us` asks for. A wait that ended because
/// the run must stop becomes a trap, or, for a guest still in its grace
/// period (JS), an error code it can unwind on.
fn waiting<T>(
    cx: &Cx<'_>,
    timeout_us: i64,
    op: impl FnOnce(Wait<'_>) -> Result<T, i32>,
) -> wasmtime::Result<Result<T, i32>> {
    let state = cx.data();
    let wait = if timeout_us == 0 {
        Wait::NoWait
    } else {
        Wait::Until {
            deadline: deadline(state, timeout_us),
            cancel: Some(&state.shared.closed),
        }
    };
    let r = op(wait);
    if matches!(r, Err(ERR_TIMEOUT)) || matches!(r, Err(CANCELLED)) {
        if let Some(abort) = state.must_stop() {
            if state.in_grace() {
                // A guest that stops itself (JS) gets an error code and a
                // moment to unwind before the host stops it by force.
                return Ok(Err(if abort == Abort::Closed {
                    ERR_CLOSED
                } else {
                    ERR_TIMEOUT
                }));
            }
            return Err(wasmtime::Error::new(abort));
        }
        if matches!(r, Err(CANCELLED)) {
            return Err(wasmtime::Error::new(Abort::Closed));
        }
    }
    Ok(r)
}

/// Internal marker for a wait given up because the interpreter is closing.
const CANCELLED: i32 = i32::MIN;

fn flat(r: Result<i32, i32>) -> i32 {
    r.unwrap_or_else(|e| e)
}
