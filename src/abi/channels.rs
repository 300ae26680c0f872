//! Guest ABI v1, part one: the channel imports (look up, send, forward,
//! receive, with or without the kind, views, release, close, create). Each
//! documents its parameters, result and whether a handle is borrowed,
//! consumed or created; the same text is in `guest/include/subinterp.h`.

use super::*;

pub(super) fn send_fail(f: SendFail) -> i32 {
    match f {
        SendFail::Full => ERR_FULL,
        SendFail::Timeout => ERR_TIMEOUT,
        SendFail::Closed => ERR_CLOSED,
        SendFail::TooLarge(_) => ERR_TOO_LARGE,
        SendFail::Cancelled => CANCELLED,
    }
}

pub(super) fn recv_fail(f: RecvFail) -> i32 {
    match f {
        RecvFail::Empty => ERR_EMPTY,
        RecvFail::Timeout => ERR_TIMEOUT,
        RecvFail::Closed => ERR_CLOSED,
        RecvFail::Cancelled => CANCELLED,
    }
}

/// `lookup(name_ptr, name_len) -> handle`: the channel end passed to `run`
/// under the UTF-8 name. Borrowed: the same handle each time.
pub(super) fn lookup(mut cx: Cx<'_>, ptr: i32, len: i32) -> i32 {
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
pub(super) fn send(mut cx: Cx<'_>, end: i32, ptr: i32, len: i32, timeout_us: i64) -> Ret {
    let Some(mem) = memory(&mut cx) else {
        return Ok(ERR_BOUNDS);
    };
    let state = cx.data();
    let core = match sender(state, end) {
        Ok(c) => c,
        Err(e) => return Ok(e),
    };
    let len = len as u32 as usize;
    if len > core.max_queued_bytes {
        return Ok(ERR_TOO_LARGE);
    }
    let data = mem.data(&cx);
    let Some(r) = range(data.len(), ptr, len as u64) else {
        return Ok(ERR_BOUNDS);
    };
    // The bytes and the queue entry are one charge to the sender's tree,
    // for as long as any view of the bytes exists; past its memory budget
    // the send is refused before anything is copied or queued.
    let Some(bytes) = ChargedBytes::copy(&state.lineage.tenant, &data[r], MESSAGE_COST) else {
        return Ok(ERR_LIMIT);
    };
    Tally::add(&state.tally.copied_out, len as u64);
    Tally::add(&state.counters.copied_out, len as u64);
    let r = waiting(&cx, timeout_us, |w| {
        core.send(Message::View(Buffer::new(bytes).into_view()), None, w)
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
pub(super) fn send_handle(cx: Cx<'_>, end: i32, handle: i32, timeout_us: i64) -> Ret {
    let state = cx.data();
    let core = match sender(state, end) {
        Ok(c) => c,
        Err(e) => return Ok(e),
    };
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
pub(super) fn recv(cx: Cx<'_>, end: i32, timeout_us: i64) -> Ret {
    Ok(flat(take(cx, end, timeout_us)?.map(|(h, _)| h)))
}

/// `recv_kind(end, timeout_us) -> (kind << 32) | handle`: `recv`, and the
/// created handle's `KIND_*` in the upper 32 bits of the result (one call
/// where `recv` and `handle_kind` were two); a negative `ERR_*` code (as
/// `recv`'s) on failure.
pub(super) fn recv_kind(cx: Cx<'_>, end: i32, timeout_us: i64) -> wasmtime::Result<i64> {
    Ok(match take(cx, end, timeout_us)? {
        Ok((h, kind)) => (i64::from(kind) << 32) | i64::from(h),
        Err(code) => i64::from(code),
    })
}

/// Receives the oldest message on `end` into a new handle: (handle, kind).
fn take(mut cx: Cx<'_>, end: i32, timeout_us: i64) -> wasmtime::Result<Result<(i32, i32), i32>> {
    if let Err(e) = receiver(cx.data(), end) {
        return Ok(Err(e));
    }
    // Refuse before taking a message, so nothing is lost: the handle the
    // message will need is reserved first.
    if let Err(e) = cx.data_mut().handles.reserve(1) {
        return Ok(Err(bad(e)));
    }
    let received = match receiver(cx.data(), end) {
        Ok(core) => waiting(&cx, timeout_us, |w| core.recv(w).map_err(recv_fail)),
        Err(e) => Ok(Err(e)),
    };
    let msg = match received {
        Ok(Ok(m)) => m,
        Ok(Err(code)) => {
            cx.data_mut().handles.unreserve(1);
            return Ok(Err(code));
        }
        Err(stop) => {
            cx.data_mut().handles.unreserve(1);
            return Err(stop);
        }
    };
    // A view the tree holds counts against its memory too (as well as
    // against the sender's, which pays for the buffer while it exists).
    let (entry, kind, charge) = match msg {
        Message::View(v) => match cx.data().lineage.tenant.charge(v.len()) {
            Some(c) => (Entry::View(v), KIND_VIEW, Some(c)),
            None => {
                if let Ok(core) = receiver(cx.data(), end) {
                    core.requeue_front(Message::View(v));
                }
                cx.data_mut().handles.unreserve(1);
                return Ok(Err(ERR_LIMIT));
            }
        },
        Message::Recv(r) => (Entry::Recv(r), KIND_RECV, None),
        Message::Send(s) => (Entry::Send(s), KIND_SEND, None),
    };
    Tally::add(&cx.data().tally.received, 1);
    let handles = &mut cx.data_mut().handles;
    Ok(handles
        .insert_charged(entry, charge)
        .map(|h| (h, kind))
        .map_err(bad))
}

/// `handle_kind(handle) -> KIND_*`. `handle` is borrowed.
pub(super) fn handle_kind(cx: Cx<'_>, handle: i32) -> i32 {
    match cx.data().handles.get(handle) {
        Ok(Entry::View(_) | Entry::Text(_)) => KIND_VIEW,
        Ok(Entry::Recv(_)) => KIND_RECV,
        Ok(Entry::Send(_)) => KIND_SEND,
        Ok(Entry::Job(_)) => KIND_JOB,
        Err(e) => bad(e),
    }
}

/// The view behind `handle`, and whether reading it counts as message bytes.
pub(super) fn view_of(cx: &Cx<'_>, handle: i32) -> Result<(crate::buffer::View, bool), i32> {
    match cx.data().handles.get(handle).map_err(bad)? {
        Entry::View(v) => Ok((v.clone(), true)),
        Entry::Text(v) => Ok((v.clone(), false)),
        _ => Err(ERR_WRONG_KIND),
    }
}

/// `view_len(view) -> bytes`. `view` is borrowed.
pub(super) fn view_len(cx: Cx<'_>, view: i32) -> i32 {
    flat(view_of(&cx, view).and_then(|(v, _)| i32::try_from(v.len()).map_err(|_| ERR_TOO_LARGE)))
}

/// `view_read(view, offset, dst, len) -> copied`: copies up to `len` bytes of
/// the view from `offset` to guest memory at `dst`; returns how many (fewer
/// at the end of the view). `view` is borrowed.
pub(super) fn view_read(mut cx: Cx<'_>, view: i32, offset: i32, dst: i32, len: i32) -> i32 {
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
pub(super) fn view_slice(mut cx: Cx<'_>, view: i32, offset: i32, len: i32) -> i32 {
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
pub(super) fn release(mut cx: Cx<'_>, handle: i32) -> i32 {
    match cx.data_mut().handles.remove(handle) {
        Ok(_) => 0,
        Err(e) => bad(e),
    }
}

/// `close(end) -> 0`: closes the channel of a sending end (borrowed): queued
/// messages can still be received, then receivers get `ERR_CLOSED`.
pub(super) fn close(cx: Cx<'_>, end: i32) -> i32 {
    match sender(cx.data(), end) {
        Ok(core) => {
            core.close();
            0
        }
        Err(e) => e,
    }
}

/// `call_output(ptr, len) -> 0`: copies `len` bytes at `ptr` as the current
/// run's output (a call's result), replacing any set before; charged to the
/// tree's memory while the host's caller holds them.
pub(super) fn call_output(mut cx: Cx<'_>, ptr: i32, len: i32) -> i32 {
    let Some(mem) = memory(&mut cx) else {
        return ERR_BOUNDS;
    };
    let (data, state) = mem.data_and_store_mut(&mut cx);
    let Some(r) = range(data.len(), ptr, len as u32 as u64) else {
        return ERR_BOUNDS;
    };
    state.output = None;
    match ChargedBytes::copy(&state.lineage.tenant, &data[r], 0) {
        Some(bytes) => {
            state.output = Some(bytes);
            0
        }
        None => ERR_LIMIT,
    }
}

/// `channel_len(end) -> count`: how many messages the channel of `end`
/// (either kind, borrowed) holds now. A snapshot: other interpreters may
/// send or receive right after.
pub(super) fn channel_len(cx: Cx<'_>, end: i32) -> i32 {
    let core = match cx.data().handles.get(end) {
        Ok(Entry::Send(s)) => s.core(),
        Ok(Entry::Recv(r)) => r.core(),
        Ok(_) => return ERR_WRONG_KIND,
        Err(e) => return bad(e),
    };
    i32::try_from(core.len()).unwrap_or(i32::MAX)
}

/// `channel_create(capacity, out) -> 0`: makes a channel and writes its
/// receiving-end handle then its sending-end handle (two `i32`) at `out`.
pub(super) fn channel_create(mut cx: Cx<'_>, capacity: i32, out: i32) -> i32 {
    let Ok(capacity) = usize::try_from(capacity) else {
        return ERR_INVALID;
    };
    let Some(mem) = memory(&mut cx) else {
        return ERR_BOUNDS;
    };
    let Some(r) = range(mem.data_size(&cx), out, 8) else {
        return ERR_BOUNDS;
    };
    let Some(cost) = cx.data().lineage.tenant.charge(CHANNEL_COST) else {
        return ERR_LIMIT;
    };
    if let Err(e) = cx.data_mut().handles.reserve(2) {
        return bad(e);
    }
    let (rx, tx) = cx.data().channels.create(capacity, None, Some(cost));
    let (data, state) = mem.data_and_store_mut(&mut cx);
    state.shared.own(rx.core());
    let hr = state.handles.insert(Entry::Recv(rx)).unwrap_or(ERR_LIMIT);
    let hs = state.handles.insert(Entry::Send(tx)).unwrap_or(ERR_LIMIT);
    data[r.start..r.start + 4].copy_from_slice(&hr.to_le_bytes());
    data[r.start + 4..r.end].copy_from_slice(&hs.to_le_bytes());
    0
}
