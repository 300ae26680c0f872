//! Captured (or forwarded) guest stdout/stderr with a byte cap.
//!
//! A sink is shared between the interpreter's WASI context and the host: the
//! guest writes into it, and after each run the host takes what was captured.
//! Writing past the cap ends the run with
//! [`ErrorKind::OutputLimit`](crate::ErrorKind::OutputLimit).

use std::io::Write;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use parking_lot::{Condvar, Mutex};
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamError, StreamResult};

/// Where a guest's stream goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputMode {
    /// Kept in memory and returned in the [`RunResult`](crate::RunResult).
    Capture,
    /// Written straight to the host process's stdout.
    Stdout,
    /// Written straight to the host process's stderr.
    Stderr,
}

/// A guest wrote more than its output cap: the run ends with
/// [`ErrorKind::OutputLimit`](crate::ErrorKind::OutputLimit).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct OutputLimitExceeded {
    pub(crate) limit: usize,
}

impl std::fmt::Display for OutputLimitExceeded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "output limit of {} bytes exceeded", self.limit)
    }
}

impl std::error::Error for OutputLimitExceeded {}

struct SinkState {
    mode: OutputMode,
    captured: Vec<u8>,
    written: usize,
    limit: usize,
}

/// One guest output stream.
#[derive(Clone)]
pub(crate) struct Sink {
    state: Arc<Mutex<SinkState>>,
}

impl Sink {
    pub(crate) fn new(mode: OutputMode, limit: usize) -> Self {
        Sink {
            state: Arc::new(Mutex::new(SinkState {
                mode,
                captured: Vec::new(),
                written: 0,
                limit,
            })),
        }
    }

    /// Takes what was captured since the last call.
    pub(crate) fn take(&self) -> Vec<u8> {
        std::mem::take(&mut self.state.lock().captured)
    }

    /// Starts a new run: the cap counts from zero again.
    pub(crate) fn reset(&self) {
        let mut s = self.state.lock();
        s.written = 0;
        s.captured.clear();
    }

    fn write_bytes(&self, data: &[u8]) -> Result<(), OutputLimitExceeded> {
        let mut s = self.state.lock();
        if s.written.saturating_add(data.len()) > s.limit {
            let room = s.limit - s.written;
            s.written = s.limit;
            Self::emit(&mut s, &data[..room]);
            return Err(OutputLimitExceeded { limit: s.limit });
        }
        s.written += data.len();
        Self::emit(&mut s, data);
        Ok(())
    }

    fn emit(s: &mut SinkState, data: &[u8]) {
        match s.mode {
            OutputMode::Capture => s.captured.extend_from_slice(data),
            OutputMode::Stdout => STDOUT.push(data),
            OutputMode::Stderr => STDERR.push(data),
        }
    }

    /// The host stream this sink forwards to, if it is not captured.
    fn host_stream(&self) -> Option<&'static HostStream> {
        match self.state.lock().mode {
            OutputMode::Capture => None,
            OutputMode::Stdout => Some(&STDOUT),
            OutputMode::Stderr => Some(&STDERR),
        }
    }

    /// Waits until what this sink forwarded to the host's stream has been
    /// written, or until `until`, or until `cancel` is set (the reader may
    /// never read).
    pub(crate) fn drain(&self, until: Option<Instant>, cancel: &AtomicBool) {
        if let Some(stream) = self.host_stream() {
            stream.drain(until, cancel);
        }
    }
}

/// Most bytes queued for one host stream before writers wait for room.
const HOST_STREAM_QUEUE: usize = 1 << 20;

/// The host process's stdout or stderr, written by a thread of its own, so a
/// guest never blocks in `write(2)` (a pipe nobody reads): it waits for room
/// in a bounded queue instead, a wait its deadline can end. A stream whose
/// reader has gone (a broken pipe) drops what it is given, as a full disk
/// would under `wasmtime run`; the guest is not told.
struct HostStream {
    fd: i32,
    state: Mutex<HostQueue>,
    /// Wakes the writer thread.
    data: Condvar,
    /// Wakes those waiting for the queue to drain.
    drained: Condvar,
    /// Wakes guests waiting for room.
    room: tokio::sync::Notify,
    started: std::sync::Once,
}

#[derive(Default)]
struct HostQueue {
    chunks: std::collections::VecDeque<Vec<u8>>,
    /// Bytes queued or being written.
    pending: usize,
    broken: bool,
}

static STDOUT: HostStream = HostStream::new(1);
static STDERR: HostStream = HostStream::new(2);

impl HostStream {
    const fn new(fd: i32) -> Self {
        HostStream {
            fd,
            state: Mutex::new(HostQueue {
                chunks: std::collections::VecDeque::new(),
                pending: 0,
                broken: false,
            }),
            data: Condvar::new(),
            drained: Condvar::new(),
            room: tokio::sync::Notify::const_new(),
            started: std::sync::Once::new(),
        }
    }

    /// Room left in the queue (a broken stream has room for everything).
    fn room(&self) -> usize {
        let q = self.state.lock();
        if q.broken {
            HOST_STREAM_QUEUE
        } else {
            HOST_STREAM_QUEUE.saturating_sub(q.pending)
        }
    }

    fn push(&'static self, data: &[u8]) {
        if data.is_empty() {
            return;
        }
        self.started.call_once(|| {
            std::thread::Builder::new()
                .name(format!("subinterp-fd{}", self.fd))
                .spawn(move || self.write_loop())
                .expect("spawning an output thread");
        });
        let mut q = self.state.lock();
        if q.broken {
            return;
        }
        q.pending += data.len();
        q.chunks.push_back(data.to_vec());
        self.data.notify_one();
    }

    fn write_loop(&self) {
        loop {
            let chunk = {
                let mut q = self.state.lock();
                loop {
                    if let Some(c) = q.chunks.pop_front() {
                        break c;
                    }
                    self.data.wait(&mut q);
                }
            };
            let ok = match self.fd {
                1 => std::io::stdout()
                    .lock()
                    .write_all(&chunk)
                    .and_then(|()| std::io::stdout().flush()),
                _ => std::io::stderr().lock().write_all(&chunk),
            }
            .is_ok();
            let mut q = self.state.lock();
            q.pending -= chunk.len();
            if !ok {
                q.broken = true;
                q.chunks.clear();
                q.pending = 0;
            }
            if q.pending == 0 {
                self.drained.notify_all();
            }
            drop(q);
            self.room.notify_waiters();
        }
    }

    fn drain(&self, until: Option<Instant>, cancel: &AtomicBool) {
        let mut q = self.state.lock();
        while q.pending > 0 && !cancel.load(Ordering::Relaxed) {
            let now = Instant::now();
            if until.is_some_and(|t| now >= t) {
                return;
            }
            let slice = now + Duration::from_millis(10);
            self.drained
                .wait_until(&mut q, until.map_or(slice, |t| t.min(slice)));
        }
    }

    /// Resolves once the queue has room.
    async fn ready(&self) {
        loop {
            let notified = self.room.notified();
            let mut notified = std::pin::pin!(notified);
            notified.as_mut().enable();
            if self.room() > 0 {
                return;
            }
            notified.await;
        }
    }
}

impl IsTerminal for Sink {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for Sink {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }

    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

#[async_trait::async_trait]
impl Pollable for Sink {
    async fn ready(&mut self) {
        if let Some(stream) = self.host_stream() {
            stream.ready().await;
        }
    }
}

#[async_trait::async_trait]
impl OutputStream for Sink {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        self.write_bytes(&bytes)
            .map_err(|e| StreamError::Trap(wasmtime::Error::new(e)))
    }

    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        Ok(self
            .host_stream()
            .map_or(HOST_STREAM_QUEUE, HostStream::room))
    }
}

impl tokio::io::AsyncWrite for Sink {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Poll::Ready(
            self.write_bytes(buf)
                .map(|()| buf.len())
                .map_err(std::io::Error::other),
        )
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}
