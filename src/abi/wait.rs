//! Guest ABI v1: `wait`, which waits until any of several channel ends is
//! ready, or a timeout passes (the JS guest's event loop sleeps in it).

use super::*;
use crate::channel::{SelectFail, Side, select};

/// The most channel ends one `wait` may name (`SI_WAIT_MAX` in the header).
pub const MAX_WAIT_ENDS: usize = 1024;

/// `wait(ends, count, timeout_us) -> index`: `ends` points at `count`
/// pairs of `i32` (a channel end, borrowed; for a sending end, the byte
/// length of the message it would send, else ignored). Returns the index of
/// the first end that is ready (a receive or send with no wait would not
/// block), `ERR_EMPTY` (timeout 0) or `ERR_TIMEOUT` when none is; with
/// `count` 0 it only sleeps. `ERR_INVALID` for a count out of
/// `0..=MAX_WAIT_ENDS`, `ERR_BOUNDS`, `ERR_BAD_HANDLE`, `ERR_WRONG_KIND`.
pub(super) fn wait(mut cx: Cx<'_>, ptr: i32, count: i32, timeout_us: i64) -> Ret {
    let n = match usize::try_from(count) {
        Ok(n) if n <= MAX_WAIT_ENDS => n,
        _ => return Ok(ERR_INVALID),
    };
    let Some(mem) = memory(&mut cx) else {
        return Ok(ERR_BOUNDS);
    };
    let data = mem.data(&cx);
    let Some(r) = range(data.len(), ptr, n as u64 * 8) else {
        return Ok(ERR_BOUNDS);
    };
    let mut ends = Vec::with_capacity(n);
    for pair in data[r].chunks_exact(8) {
        let word = |k: usize| i32::from_le_bytes([pair[k], pair[k + 1], pair[k + 2], pair[k + 3]]);
        match cx.data().handles.get(word(0)) {
            Ok(Entry::Recv(rx)) => ends.push((rx.core().clone(), Side::Recv)),
            Ok(Entry::Send(tx)) => {
                ends.push((tx.core().clone(), Side::Send(word(4) as u32 as usize)))
            }
            Ok(_) => return Ok(ERR_WRONG_KIND),
            Err(e) => return Ok(bad(e)),
        }
    }
    let r = waiting(&cx, timeout_us, |w| {
        select(&ends, w).map_err(|f| match f {
            SelectFail::Empty => ERR_EMPTY,
            SelectFail::Timeout => ERR_TIMEOUT,
            SelectFail::Cancelled => CANCELLED,
        })
    })?;
    Ok(flat(r.map(|i| i as i32)))
}
