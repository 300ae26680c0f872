//! Open files count against a tree's budget: the WASI calls that open and
//! close descriptors (`path_open`, `fd_close`, `fd_renumber`) are wrapped
//! here around `wasmtime-wasi`'s own. Past the tree's
//! [`Limits::max_open_files`](crate::Limits::max_open_files), `path_open`
//! fails with `EMFILE` before anything is opened on the host, so one guest
//! cannot use up the host process's descriptors.

use wasmtime::{AsContextMut, Caller, Extern, Linker};
use wasmtime_wasi::p1::wasi_snapshot_preview1::{self as p1, WasiSnapshotPreview1};
use wiggle::GuestMemory;

use crate::store::StoreData;

const WASI: &str = "wasi_snapshot_preview1";
/// WASI's errno for "too many open files".
const ERRNO_MFILE: i32 = 33;

/// Runs the WASI call `call` with the guest's memory and WASI context, as
/// `wasmtime-wasi`'s own linker glue does.
async fn with_wasi<F>(caller: &mut Caller<'_, StoreData>, call: F) -> wasmtime::Result<i32>
where
    F: AsyncFnOnce(&mut StoreData, &mut GuestMemory<'_>) -> wasmtime::Result<i32>,
{
    let Some(Extern::Memory(memory)) = caller.get_export("memory") else {
        wasmtime::bail!("missing required memory export");
    };
    let fuel = caller.as_context_mut().hostcall_fuel();
    let (data, state) = memory.data_and_store_mut(caller);
    state.wasi.set_hostcall_fuel(fuel);
    call(state, &mut GuestMemory::Unshared(data)).await
}

type OpenArgs = (i32, i32, i32, i32, i32, i64, i64, i32, i32);

pub(crate) fn add_to_linker(l: &mut Linker<StoreData>) -> wasmtime::Result<()> {
    l.allow_shadowing(true);
    l.func_wrap_async(WASI, "path_open", |mut caller, args: OpenArgs| {
        Box::new(async move { path_open(&mut caller, args).await })
    })?;
    l.func_wrap_async(WASI, "fd_close", |mut caller, (fd,): (i32,)| {
        Box::new(async move {
            let errno = with_wasi(&mut caller, async |s, m| {
                p1::fd_close(&mut s.wasi, m, fd).await
            })
            .await?;
            if errno == 0 {
                caller.data_mut().files.closed(fd);
            }
            Ok(errno)
        })
    })?;
    l.func_wrap_async(WASI, "fd_renumber", |mut caller, (from, to): (i32, i32)| {
        Box::new(async move {
            let errno = with_wasi(&mut caller, async |s, m| {
                p1::fd_renumber(&mut s.wasi, m, from, to).await
            })
            .await?;
            if errno == 0 {
                caller.data_mut().files.renumbered(from, to);
            }
            Ok(errno)
        })
    })?;
    l.allow_shadowing(false);
    Ok(())
}

async fn path_open(caller: &mut Caller<'_, StoreData>, args: OpenArgs) -> wasmtime::Result<i32> {
    let (fd, dirflags, path, path_len, oflags, base, inheriting, fdflags, out) = args;
    let tenant = caller.data().files.tenant().clone();
    if !tenant.files.try_take(1) {
        return Ok(ERRNO_MFILE);
    }
    let opened = with_wasi(caller, async |s, m| {
        let errno = p1::path_open(
            &mut s.wasi,
            m,
            fd,
            dirflags,
            path,
            path_len,
            oflags,
            base,
            inheriting,
            fdflags,
            out,
        )
        .await?;
        if errno == 0 {
            // The new descriptor keeps the place taken above.
            let new_fd: i32 = m.read(wiggle::GuestPtr::new(out as u32))?;
            s.files.opened(new_fd);
        }
        Ok(errno)
    })
    .await;
    if !matches!(opened, Ok(0)) {
        tenant.files.give(1);
    }
    opened
}
