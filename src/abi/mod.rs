//! Guest ABI v1: the host imports a guest calls to use channels.
//!
//! Every import lives in the module [`MODULE`] and takes and returns plain
//! integers. Pointers, lengths and offsets are unsigned 32-bit guest values;
//! handles are the positive `i32`s of the interpreter's
//! [handle table](crate::handle). A negative result is one of the `ERR_*`
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

mod files;
mod interp;

pub(crate) use files::OpenFiles;

use std::sync::Arc;
use std::time::{Duration, Instant};

use wasmtime::{Caller, Extern, Linker, Memory};

use crate::budget::{CHANNEL_COST, ChargedBytes, MESSAGE_COST};
use crate::buffer::Buffer;
use crate::channel::{Core, Message, RecvFail, SendFail, Wait};
use crate::handle::{Entry, HandleError};
use crate::interpreter::{Abort, HostState, Tally};

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

/// `handle_kind` result: a view.
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
];

/// Every `KIND_*` value by name (without the prefix).
pub const KINDS: &[(&str, i32)] = &[
    ("VIEW", KIND_VIEW),
    ("RECV", KIND_RECV),
    ("SEND", KIND_SEND),
    ("JOB", KIND_JOB),
];

type Cx<'a> = Caller<'a, HostState>;
type Ret = wasmtime::Result<i32>;

pub(crate) fn add_to_linker(l: &mut Linker<HostState>) -> wasmtime::Result<()> {
    l.func_wrap(MODULE, "lookup", lookup)?;
    l.func_wrap(MODULE, "send", send)?;
    l.func_wrap(MODULE, "send_handle", send_handle)?;
    l.func_wrap(MODULE, "recv", recv)?;
    l.func_wrap(MODULE, "handle_kind", handle_kind)?;
    l.func_wrap(MODULE, "view_len", view_len)?;
    l.func_wrap(MODULE, "view_read", view_read)?;
    l.func_wrap(MODULE, "view_slice", view_slice)?;
    l.func_wrap(MODULE, "release", release)?;
    l.func_wrap(MODULE, "close", close)?;
    l.func_wrap(MODULE, "channel_create", channel_create)?;
    l.func_wrap(MODULE, "interpreter_id", |cx: Cx<'_>| cx.data().id as i64)?;
    interp::add_to_linker(l)?;
    files::add_to_linker(l)
}

fn memory(cx: &mut Cx<'_>) -> Option<Memory> {
    match cx.get_export("memory") {
        Some(Extern::Memory(m)) => Some(m),
        _ => None,
    }
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

fn sender(cx: &Cx<'_>, end: i32) -> Result<Arc<Core>, i32> {
    match cx.data().handles.get(end).map_err(bad)? {
        Entry::Send(s) => Ok(s.core().clone()),
        _ => Err(ERR_WRONG_KIND),
    }
}

fn receiver(cx: &Cx<'_>, end: i32) -> Result<Arc<Core>, i32> {
    match cx.data().handles.get(end).map_err(bad)? {
        Entry::Recv(r) => Ok(r.core().clone()),
        _ => Err(ERR_WRONG_KIND),
    }
}

/// The deadline of a wait of `timeout_us`, capped by the run's deadline.
fn deadline(state: &HostState, timeout_us: i64) -> Option<Instant> {
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
    let shared = state.shared.clone();
    let wait = if timeout_us == 0 {
        Wait::NoWait
    } else {
        Wait::Until {
            deadline: deadline(state, timeout_us),
            cancel: Some(&shared.closed),
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

fn send_fail(f: SendFail) -> i32 {
    match f {
        SendFail::Full => ERR_FULL,
        SendFail::Timeout => ERR_TIMEOUT,
        SendFail::Closed => ERR_CLOSED,
        SendFail::TooLarge(_) => ERR_TOO_LARGE,
        SendFail::Cancelled => CANCELLED,
    }
}

fn recv_fail(f: RecvFail) -> i32 {
    match f {
        RecvFail::Empty => ERR_EMPTY,
        RecvFail::Timeout => ERR_TIMEOUT,
        RecvFail::Closed => ERR_CLOSED,
        RecvFail::Cancelled => CANCELLED,
    }
}

fn flat(r: Result<i32, i32>) -> i32 {
    r.unwrap_or_else(|e| e)
}

/// `lookup(name_ptr, name_len) -> handle`: the channel end passed to `run`
/// under the UTF-8 name. Borrowed: the same handle each time.
fn lookup(mut cx: Cx<'_>, ptr: i32, len: i32) -> i32 {
    let Some(mem) = memory(&mut cx) else {
        return ERR_BOUNDS;
    };
    let (data, state) = mem.data_and_store_mut(&mut cx);
    let Some(r) = range(data.len(), ptr, len as u32 as u64) else {
        return ERR_BOUNDS;
    };
    let Ok(name) = std::str::from_utf8(&data[r]) else {
        return ERR_INVALID;
    };
    match state.names.get(name) {
        Some(&h) if state.handles.get(h).is_ok() => h,
        Some(_) => ERR_RELEASED,
        None => ERR_NOT_FOUND,
    }
}

/// `send(end, ptr, len, timeout_us) -> 0`: copies `len` bytes at `ptr` into a
/// new buffer and sends it. `end` (a sending end) is borrowed.
fn send(mut cx: Cx<'_>, end: i32, ptr: i32, len: i32, timeout_us: i64) -> Ret {
    let core = match sender(&cx, end) {
        Ok(c) => c,
        Err(e) => return Ok(e),
    };
    let len = len as u32 as usize;
    if len > core.max_queued_bytes {
        return Ok(ERR_TOO_LARGE);
    }
    let Some(mem) = memory(&mut cx) else {
        return Ok(ERR_BOUNDS);
    };
    let data = mem.data(&cx);
    let Some(r) = range(data.len(), ptr, len as u64) else {
        return Ok(ERR_BOUNDS);
    };
    // The bytes and the queue entry are charged to the sender's tree (the
    // bytes for as long as any view of them exists); past its memory budget
    // the send is refused before anything is copied or queued.
    let state = cx.data();
    let tenant = &state.lineage.tenant;
    let (Some(cost), Some(bytes)) = (
        tenant.charge(MESSAGE_COST),
        ChargedBytes::copy(tenant, &data[r]),
    ) else {
        return Ok(ERR_LIMIT);
    };
    Tally::add(&state.tally.copied_out, len as u64);
    Tally::add(&state.counters.copied_out, len as u64);
    let r = waiting(&cx, timeout_us, |w| {
        core.send(Message::View(Buffer::new(bytes).into_view()), Some(cost), w)
            .map(|()| 0)
            .map_err(|(f, _)| send_fail(f))
    })?;
    if r.is_ok() {
        Tally::add(&state.tally.sent, 1);
    }
    Ok(flat(r))
}

/// `send_handle(end, handle, timeout_us) -> 0`: sends what `handle` refers to
/// without copying: a view is forwarded (the same buffer), a channel end is
/// shared. Both handles are borrowed.
fn send_handle(cx: Cx<'_>, end: i32, handle: i32, timeout_us: i64) -> Ret {
    let core = match sender(&cx, end) {
        Ok(c) => c,
        Err(e) => return Ok(e),
    };
    let state = cx.data();
    let msg = match state.handles.get(handle) {
        Ok(Entry::View(v) | Entry::Text(v)) => Message::View(v.clone()),
        Ok(Entry::Recv(r)) => Message::Recv(r.clone()),
        Ok(Entry::Send(s)) => Message::Send(s.clone()),
        Ok(Entry::Job(_)) => return Ok(ERR_WRONG_KIND),
        Err(e) => return Ok(bad(e)),
    };
    let is_view = matches!(msg, Message::View(_));
    let Some(cost) = state.lineage.tenant.charge(MESSAGE_COST) else {
        return Ok(ERR_LIMIT);
    };
    let r = waiting(&cx, timeout_us, |w| {
        core.send(msg, Some(cost), w)
            .map(|()| 0)
            .map_err(|(f, _)| send_fail(f))
    })?;
    if r.is_ok() {
        Tally::add(&state.tally.sent, 1);
    }
    if r.is_ok() && is_view {
        Tally::add(&state.tally.forwarded, 1);
        Tally::add(&state.counters.forwarded, 1);
    }
    Ok(flat(r))
}

/// `recv(end, timeout_us) -> handle`: receives the oldest message; creates a
/// handle (a view or a channel end) the guest must release.
fn recv(mut cx: Cx<'_>, end: i32, timeout_us: i64) -> Ret {
    let core = match receiver(&cx, end) {
        Ok(c) => c,
        Err(e) => return Ok(e),
    };
    // Refuse before taking a message, so nothing is lost: the handle the
    // message will need is reserved first.
    if let Err(e) = cx.data_mut().handles.reserve(1) {
        return Ok(bad(e));
    }
    let received = waiting(&cx, timeout_us, |w| core.recv(w).map_err(recv_fail));
    let msg = match received {
        Ok(Ok(m)) => m,
        Ok(Err(code)) => {
            cx.data_mut().handles.unreserve(1);
            return Ok(code);
        }
        Err(stop) => {
            cx.data_mut().handles.unreserve(1);
            return Err(stop);
        }
    };
    // A view the tree holds counts against its memory too (as well as
    // against the sender's, which pays for the buffer while it exists).
    let (entry, charge) = match msg {
        Message::View(v) => match cx.data().lineage.tenant.charge(v.len()) {
            Some(c) => (Entry::View(v), Some(c)),
            None => {
                core.requeue_front(Message::View(v));
                cx.data_mut().handles.unreserve(1);
                return Ok(ERR_LIMIT);
            }
        },
        Message::Recv(r) => (Entry::Recv(r), None),
        Message::Send(s) => (Entry::Send(s), None),
    };
    Tally::add(&cx.data().tally.received, 1);
    let handles = &mut cx.data_mut().handles;
    Ok(flat(handles.insert_charged(entry, charge).map_err(bad)))
}

/// `handle_kind(handle) -> KIND_*`. `handle` is borrowed.
fn handle_kind(cx: Cx<'_>, handle: i32) -> i32 {
    match cx.data().handles.get(handle) {
        Ok(Entry::View(_) | Entry::Text(_)) => KIND_VIEW,
        Ok(Entry::Recv(_)) => KIND_RECV,
        Ok(Entry::Send(_)) => KIND_SEND,
        Ok(Entry::Job(_)) => KIND_JOB,
        Err(e) => bad(e),
    }
}

/// The view behind `handle`, and whether reading it counts as message bytes.
fn view_of(cx: &Cx<'_>, handle: i32) -> Result<(crate::buffer::View, bool), i32> {
    match cx.data().handles.get(handle).map_err(bad)? {
        Entry::View(v) => Ok((v.clone(), true)),
        Entry::Text(v) => Ok((v.clone(), false)),
        _ => Err(ERR_WRONG_KIND),
    }
}

/// `view_len(view) -> bytes`. `view` is borrowed.
fn view_len(cx: Cx<'_>, view: i32) -> i32 {
    flat(view_of(&cx, view).and_then(|(v, _)| i32::try_from(v.len()).map_err(|_| ERR_TOO_LARGE)))
}

/// `view_read(view, offset, dst, len) -> copied`: copies up to `len` bytes of
/// the view from `offset` to guest memory at `dst`; returns how many (fewer
/// at the end of the view). `view` is borrowed.
fn view_read(mut cx: Cx<'_>, view: i32, offset: i32, dst: i32, len: i32) -> i32 {
    let (v, counted) = match view_of(&cx, view) {
        Ok(v) => v,
        Err(e) => return e,
    };
    let offset = offset as u32 as usize;
    if offset > v.len() {
        return ERR_BOUNDS;
    }
    let n = (len as u32 as usize).min(v.len() - offset);
    let Some(mem) = memory(&mut cx) else {
        return ERR_BOUNDS;
    };
    let (data, state) = mem.data_and_store_mut(&mut cx);
    let Some(r) = range(data.len(), dst, n as u64) else {
        return ERR_BOUNDS;
    };
    data[r].copy_from_slice(&v[offset..offset + n]);
    if counted {
        Tally::add(&state.tally.copied_in, n as u64);
        Tally::add(&state.counters.copied_in, n as u64);
    }
    n as i32
}

/// `view_slice(view, offset, len) -> view`: a new view of `len` bytes from
/// `offset` (no copy). `view` is borrowed; the result is created.
fn view_slice(mut cx: Cx<'_>, view: i32, offset: i32, len: i32) -> i32 {
    let (v, counted) = match view_of(&cx, view) {
        Ok(v) => v,
        Err(e) => return e,
    };
    let start = offset as u32 as usize;
    let Some(s) = start
        .checked_add(len as u32 as usize)
        .and_then(|end| v.slice(start..end))
    else {
        return ERR_BOUNDS;
    };
    if !counted {
        return flat(cx.data_mut().handles.insert(Entry::Text(s)).map_err(bad));
    }
    // A slice held is charged like a received view, by its own length.
    let Some(charge) = cx.data().lineage.tenant.charge(s.len()) else {
        return ERR_LIMIT;
    };
    let handles = &mut cx.data_mut().handles;
    flat(
        handles
            .insert_charged(Entry::View(s), Some(charge))
            .map_err(bad),
    )
}

/// `release(handle) -> 0`: lets go of a view or channel end (consumed).
fn release(mut cx: Cx<'_>, handle: i32) -> i32 {
    match cx.data_mut().handles.remove(handle) {
        Ok(_) => 0,
        Err(e) => bad(e),
    }
}

/// `close(end) -> 0`: closes the channel of a sending end (borrowed): queued
/// messages can still be received, then receivers get `ERR_CLOSED`.
fn close(cx: Cx<'_>, end: i32) -> i32 {
    match sender(&cx, end) {
        Ok(core) => {
            core.close();
            0
        }
        Err(e) => e,
    }
}

/// `channel_create(capacity, out) -> 0`: makes a channel and writes its
/// receiving-end handle then its sending-end handle (two `i32`) at `out`.
fn channel_create(mut cx: Cx<'_>, capacity: i32, out: i32) -> i32 {
    let Ok(capacity) = usize::try_from(capacity) else {
        return ERR_INVALID;
    };
    let Some(mem) = memory(&mut cx) else {
        return ERR_BOUNDS;
    };
    let Some(r) = range(mem.data_size(&cx), out, 8) else {
        return ERR_BOUNDS;
    };
    let Some(host) = cx.data().host.upgrade() else {
        return ERR_CLOSED;
    };
    let Some(cost) = cx.data().lineage.tenant.charge(CHANNEL_COST) else {
        return ERR_LIMIT;
    };
    if let Err(e) = cx.data_mut().handles.reserve(2) {
        return bad(e);
    }
    let (rx, tx) = host.new_channel(capacity, host.max_queued_bytes(), Some(cost));
    let (data, state) = mem.data_and_store_mut(&mut cx);
    state.shared.own(rx.core());
    let hr = state.handles.insert(Entry::Recv(rx)).unwrap_or(ERR_LIMIT);
    let hs = state.handles.insert(Entry::Send(tx)).unwrap_or(ERR_LIMIT);
    data[r.start..r.start + 4].copy_from_slice(&hr.to_le_bytes());
    data[r.start + 4..r.end].copy_from_slice(&hs.to_le_bytes());
    0
}
