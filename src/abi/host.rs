//! Guest ABI, host functions: the import module `subinterp_host_v1` (its
//! own module, so that the version of this part can move on its own). The
//! same text is in `guest/include/subinterp.h`.
//!
//! The import is synchronous: a function registered with
//! [`HostBuilder::func`](crate::HostBuilder::func) runs right here, on the
//! guest's thread, at the cost of a plain host call. One registered with
//! [`blocking_func`](crate::HostBuilder::blocking_func) runs on the blocking
//! pool while this thread waits for it as a channel `recv` waits: until the
//! run's deadline, or until the interpreter is closed.

use std::panic::AssertUnwindSafe;
use std::time::Instant;

use bytes::Bytes;
use crossbeam_channel::RecvTimeoutError;

use super::*;
use crate::hostfn::{HostCaller, HostFn, HostFnError};
use crate::id::InterpreterId;

/// The import module of the host-function calls.
pub const HOST_MODULE: &str = "subinterp_host_v1";

/// Longest single wait for a blocking function before the closed flag is
/// looked at again.
const CANCEL_POLL: Duration = Duration::from_millis(10);

type Answer = Result<Bytes, HostFnError>;

pub(super) fn add_to_linker(l: &mut Linker<StoreData>) -> wasmtime::Result<()> {
    l.func_wrap(HOST_MODULE, "call", call)?;
    Ok(())
}

/// `call(name_ptr, name_len, in_ptr, in_len, err_out) -> handle`: calls the
/// host function named by the UTF-8 name with a copy of the `in_len` bytes
/// at `in_ptr`. Returns a created view of its result; or `ERR_HOST` when the
/// function failed, with a created view of its message written (an `i32`)
/// at `err_out`; `ERR_NOT_FOUND` for a name this interpreter was not
/// granted (whether or not the host has it); `ERR_BOUNDS`, `ERR_INVALID`
/// (not UTF-8), `ERR_LIMIT` (handles or memory); a blocking function not
/// done by the run's deadline: the run ends (a JS guest, in its grace
/// period, gets `ERR_TIMEOUT`, or `ERR_CLOSED` when it was closed).
fn call(mut cx: Cx<'_>, np: i32, nl: i32, ip: i32, il: i32, err_out: i32) -> Ret {
    let (f, who, input) = match prepare(&mut cx, (np, nl), (ip, il), err_out) {
        Ok(p) => p,
        Err(code) => return Ok(code),
    };
    let answer = if f.blocking {
        match waiting(&cx, -1, |wait| run_blocking(&f, who, input, wait))? {
            Ok(a) => a,
            Err(code) => return Ok(code),
        }
    } else {
        std::panic::catch_unwind(AssertUnwindSafe(|| (f.f)(&who, input)))
            .unwrap_or_else(|_| Err(panicked(&f)))
    };
    Ok(deliver(&mut cx, answer, err_out))
}

/// Checks a call's arguments: the granted function, who calls it, and a
/// copy of the input on the caller's tree's account.
fn prepare(
    cx: &mut Cx<'_>,
    (np, nl): (i32, i32),
    (ip, il): (i32, i32),
    err_out: i32,
) -> Result<(HostFn, HostCaller, crate::buffer::View), i32> {
    let mem = memory(cx).ok_or(ERR_BOUNDS)?;
    let (data, state) = mem.data_and_store_mut(&mut *cx);
    let (Some(name), Some(input), Some(_)) = (
        range(data.len(), np, nl as u32 as u64),
        range(data.len(), ip, il as u32 as u64),
        range(data.len(), err_out, 4),
    ) else {
        return Err(ERR_BOUNDS);
    };
    let f = granted(state, &data[name])?;
    let input = ChargedBytes::copy(&state.lineage.tenant, &data[input], 0).ok_or(ERR_LIMIT)?;
    let who = HostCaller {
        interpreter: InterpreterId(state.id),
        root: InterpreterId(state.lineage.ancestors.first().copied().unwrap_or(state.id)),
        deadline: state.deadline.map(|(at, _)| at),
    };
    Ok((f, who, Buffer::new(input).into_view()))
}

/// The function `name` if this interpreter was granted it; `ERR_NOT_FOUND`
/// whether or not the host has it (the guest learns nothing of other names).
fn granted(state: &mut StoreData, name: &[u8]) -> Result<HostFn, i32> {
    if let Some(f) = state.last_fn.as_ref().filter(|f| f.name.as_bytes() == name) {
        return Ok(f.clone());
    }
    let name = std::str::from_utf8(name).map_err(|_| ERR_INVALID)?;
    let f = state
        .grants
        .contains(name)
        .then(|| state.host_fns.get(name))
        .flatten()
        .ok_or(ERR_NOT_FOUND)?
        .clone();
    state.last_fn = Some(f.clone());
    Ok(f)
}

/// Gives the guest the function's answer: a created view of its result, or
/// `ERR_HOST` with a view of its message written at `err_out` (checked in
/// bounds by [`prepare`]).
fn deliver(cx: &mut Cx<'_>, answer: Answer, err_out: i32) -> i32 {
    let (bytes, failed) = match answer {
        Ok(b) => (b, false),
        Err(e) => (Bytes::from(e.message().to_string()), true),
    };
    let state = cx.data_mut();
    let Some(charge) = state.lineage.tenant.charge(bytes.len()) else {
        return ERR_LIMIT;
    };
    let view = Buffer::new(bytes).into_view();
    let h = match state
        .handles
        .insert_charged(Entry::View(view), Some(charge))
    {
        Ok(h) => h,
        Err(e) => return bad(e),
    };
    if !failed {
        return h;
    }
    let Some(mem) = memory(cx) else {
        return ERR_BOUNDS;
    };
    let at = err_out as u32 as usize;
    mem.data_mut(&mut *cx)[at..at + 4].copy_from_slice(&h.to_le_bytes());
    ERR_HOST
}

fn panicked(f: &HostFn) -> HostFnError {
    HostFnError::new(format!("host function `{}` panicked", f.name))
}

/// Runs a blocking function on the blocking pool and waits for its answer
/// as `wait` allows. A wait given up leaves the function running to its
/// end on the pool; its answer is dropped.
fn run_blocking(
    f: &HostFn,
    who: HostCaller,
    input: crate::buffer::View,
    wait: Wait<'_>,
) -> Result<Answer, i32> {
    let (tx, rx) = crossbeam_channel::bounded(1);
    let g = f.clone();
    crate::exec::spawn_blocking(move || {
        let answer = std::panic::catch_unwind(AssertUnwindSafe(|| (g.f)(&who, input)))
            .unwrap_or_else(|_| Err(panicked(&g)));
        let _ = tx.send(answer);
    });
    let Wait::Until { deadline, cancel } = wait else {
        return Err(ERR_TIMEOUT);
    };
    loop {
        if cancel.is_some_and(|c| c.load(std::sync::atomic::Ordering::Relaxed)) {
            return Err(CANCELLED);
        }
        let now = Instant::now();
        let until = deadline.map_or(now + CANCEL_POLL, |d| d.min(now + CANCEL_POLL));
        match rx.recv_deadline(until) {
            Ok(answer) => return Ok(answer),
            Err(RecvTimeoutError::Disconnected) => return Ok(Err(panicked(f))),
            Err(RecvTimeoutError::Timeout) if deadline.is_some_and(|d| Instant::now() >= d) => {
                return Err(ERR_TIMEOUT);
            }
            Err(RecvTimeoutError::Timeout) => {}
        }
    }
}
