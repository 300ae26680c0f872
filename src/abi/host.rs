//! Guest ABI, host functions: the import module `subinterp_host_v1` (its
//! own module, so that the version of this part can move on its own). The
//! same text is in `guest/include/subinterp.h`.

use std::panic::AssertUnwindSafe;

use bytes::Bytes;

use super::*;
use crate::hostfn::{HostCaller, HostFn, HostFnError};
use crate::id::InterpreterId;

/// The import module of the host-function calls.
pub const HOST_MODULE: &str = "subinterp_host_v1";

type CallArgs = (i32, i32, i32, i32, i32);

pub(super) fn add_to_linker(l: &mut Linker<StoreData>) -> wasmtime::Result<()> {
    l.func_wrap_async(HOST_MODULE, "call", |mut cx, args: CallArgs| {
        Box::new(async move { call(&mut cx, args).await })
    })?;
    Ok(())
}

/// `call(name_ptr, name_len, in_ptr, in_len, err_out) -> handle`: calls the
/// host function named by the UTF-8 name with a copy of the `in_len` bytes
/// at `in_ptr`. Returns a created view of its result; or `ERR_HOST` when the
/// function failed, with a created view of its message written (an `i32`)
/// at `err_out`; `ERR_NOT_FOUND` for a name this interpreter was not
/// granted (whether or not the host has it); `ERR_BOUNDS`, `ERR_INVALID`
/// (not UTF-8), `ERR_LIMIT` (handles or memory).
async fn call(cx: &mut Cx<'_>, (np, nl, ip, il, err_out): CallArgs) -> Ret {
    let Some(mem) = memory(cx) else {
        return Ok(ERR_BOUNDS);
    };
    let data = mem.data(&*cx);
    let (Some(name), Some(input), Some(_)) = (
        range(data.len(), np, nl as u32 as u64),
        range(data.len(), ip, il as u32 as u64),
        range(data.len(), err_out, 4),
    ) else {
        return Ok(ERR_BOUNDS);
    };
    let Ok(name) = std::str::from_utf8(&data[name]) else {
        return Ok(ERR_INVALID);
    };
    let state = cx.data();
    let Some(f) = state
        .grants
        .contains(name)
        .then(|| state.host_fns.get(name))
        .flatten()
        .cloned()
    else {
        return Ok(ERR_NOT_FOUND);
    };
    let Some(input) = ChargedBytes::copy(&state.lineage.tenant, &data[input], 0) else {
        return Ok(ERR_LIMIT);
    };
    let who = HostCaller {
        interpreter: InterpreterId(state.id),
        root: InterpreterId(state.lineage.ancestors.first().copied().unwrap_or(state.id)),
        deadline: state.deadline.map(|(at, _)| at),
    };
    let name = name.to_string();
    let result = run(f, who, Buffer::new(input).into_view(), &name).await;
    let (bytes, failed) = match result {
        Ok(b) => (b, false),
        Err(e) => (Bytes::from(e.message().to_string()), true),
    };
    let state = cx.data_mut();
    let Some(charge) = state.lineage.tenant.charge(bytes.len()) else {
        return Ok(ERR_LIMIT);
    };
    let view = Buffer::new(bytes).into_view();
    let h = match state
        .handles
        .insert_charged(Entry::View(view), Some(charge))
    {
        Ok(h) => h,
        Err(e) => return Ok(bad(e)),
    };
    if !failed {
        return Ok(h);
    }
    let Some(mem) = memory(cx) else {
        return Ok(ERR_BOUNDS);
    };
    let at = err_out as u32 as usize;
    mem.data_mut(&mut *cx)[at..at + 4].copy_from_slice(&h.to_le_bytes());
    Ok(ERR_HOST)
}

/// Runs `f`: on the caller's thread, or on the blocking pool (then the
/// caller's deadline can abandon the wait: the fiber this runs on is
/// dropped). A panic is the call's error.
async fn run(
    f: HostFn,
    who: HostCaller,
    input: crate::buffer::View,
    name: &str,
) -> Result<Bytes, HostFnError> {
    let panicked = || HostFnError::new(format!("host function `{name}` panicked"));
    if f.blocking {
        let g = f.f.clone();
        return tokio::task::spawn_blocking(move || g(&who, input))
            .await
            .unwrap_or_else(|_| Err(panicked()));
    }
    std::panic::catch_unwind(AssertUnwindSafe(|| (f.f)(&who, input)))
        .unwrap_or_else(|_| Err(panicked()))
}
