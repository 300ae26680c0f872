//! Captured (or forwarded) guest stdout/stderr with a byte cap.
//!
//! A sink is shared between the interpreter's WASI context and the host: the
//! guest writes into it, and after each run the host takes what was captured.
//! Writing past the cap ends the run with
//! [`ErrorKind::OutputLimit`](crate::ErrorKind::OutputLimit).

use std::io::Write;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use parking_lot::Mutex;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamError, StreamResult};

use crate::interpreter::Abort;

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

    fn write_bytes(&self, data: &[u8]) -> Result<(), Abort> {
        let mut s = self.state.lock();
        if s.written.saturating_add(data.len()) > s.limit {
            let room = s.limit - s.written;
            s.written = s.limit;
            Self::emit(&mut s, &data[..room]);
            return Err(Abort::OutputLimit { limit: s.limit });
        }
        s.written += data.len();
        Self::emit(&mut s, data);
        Ok(())
    }

    fn emit(s: &mut SinkState, data: &[u8]) {
        // A host stream that fails (closed pipe) drops the guest's output;
        // the guest is not told, as with a full disk under `wasmtime run`.
        match s.mode {
            OutputMode::Capture => s.captured.extend_from_slice(data),
            OutputMode::Stdout => drop(std::io::stdout().write_all(data)),
            OutputMode::Stderr => drop(std::io::stderr().write_all(data)),
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
    async fn ready(&mut self) {}
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
        Ok(1 << 20)
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
