//! Driving guest calls so that none outlives its interpreter's deadline.
//!
//! Every call into a guest (instantiation, a start function, `_initialize`, a
//! run) is a wasmtime async call: the wasm runs on a fiber, polled here on the
//! caller's own thread. A guest that computes runs to completion inside one
//! `poll` (epoch interruption stops it there); a guest blocked in a WASI call
//! (a sleep, a read of stdin, opening a FIFO, a full stdout pipe) makes the
//! future pending, and [`block_on`] then checks every [`STOP_POLL`] whether the
//! call must stop. If so it drops the future: wasmtime resumes the fiber with
//! an error, the wasm stack unwinds like a trap, and whatever the WASI call
//! was waiting for is abandoned (a file operation on tokio's blocking pool
//! finishes, or stays stuck, on a pool thread; see [`MAX_BLOCKING_THREADS`]).
//!
//! The WASI implementation needs a tokio runtime for its timers and its
//! blocking pool; [`block_on`] enters this crate's own, whose pool is bounded
//! so that abandoned calls cannot multiply host threads without end.

use std::future::Future;
use std::pin::pin;
use std::sync::{Arc, LazyLock};
use std::task::{Context, Poll, Wake, Waker};
use std::thread::Thread;
use std::time::Duration;

/// How often a pending guest call checks whether it must stop.
pub(crate) const STOP_POLL: Duration = Duration::from_millis(2);

/// Threads the WASI blocking pool may have at once (file operations run
/// there). A call abandoned while a file operation is stuck (opening a FIFO
/// nobody writes) keeps its thread until the operation returns; past this
/// many, further file operations wait for a thread, and their callers reach
/// their own deadlines.
pub const MAX_BLOCKING_THREADS: usize = 64;

static RUNTIME: LazyLock<tokio::runtime::Runtime> = LazyLock::new(|| {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .max_blocking_threads(MAX_BLOCKING_THREADS)
        .thread_name("subinterp-io")
        .enable_time()
        .enable_io()
        .build()
        .expect("starting the WASI runtime")
});

/// Wakes the thread that polls a guest call.
struct Unpark(Thread);

impl Wake for Unpark {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.0.unpark();
    }
}

thread_local! {
    /// This thread's waker, made once: guest calls are frequent.
    static WAKER: Waker = Waker::from(Arc::new(Unpark(std::thread::current())));
}

/// Polls `fut` on this thread until it is ready, or until `stop` gives a
/// reason to give up (checked whenever the future is pending, at least every
/// [`STOP_POLL`]); then the future is dropped and the reason returned.
pub(crate) fn block_on<F: Future, E>(
    fut: F,
    mut stop: impl FnMut() -> Option<E>,
) -> Result<F::Output, E> {
    let _runtime = RUNTIME.enter();
    let waker = WAKER.with(Waker::clone);
    let mut cx = Context::from_waker(&waker);
    let mut fut = pin!(fut);
    loop {
        if let Poll::Ready(v) = fut.as_mut().poll(&mut cx) {
            return Ok(v);
        }
        if let Some(reason) = stop() {
            return Err(reason);
        }
        std::thread::park_timeout(STOP_POLL);
    }
}

/// Polls `fut` to completion with no reason to stop (set-up work of the
/// host's own, such as pre-initialising the JS guest).
pub(crate) fn block_on_trusted<F: Future>(fut: F) -> F::Output {
    match block_on(fut, || None::<std::convert::Infallible>) {
        Ok(v) => v,
        Err(never) => match never {},
    }
}

/// Runs `f` on the bounded blocking pool (a blocking host function), without
/// waiting for it.
pub(crate) fn spawn_blocking(f: impl FnOnce() + Send + 'static) {
    drop(RUNTIME.spawn_blocking(f));
}
