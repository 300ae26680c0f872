//! A run going on on a thread of its own, and the one result it hands back:
//! what [`Interpreter::start`](crate::Interpreter::start) returns to a host
//! and what a guest's `interp_start` holds a handle to.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::Result as ThreadResult;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, TryRecvError};

/// Longest single sleep of a wait that watches a cancel flag.
const CANCEL_POLL: Duration = Duration::from_millis(10);

/// Why a wait for a job's result ended without it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum JobWait {
    /// The wait's deadline passed first.
    Timeout,
    /// The cancel flag was set.
    Cancelled,
    /// The result was taken by an earlier wait.
    Taken,
    /// The job's thread panicked (a host bug, never a guest's doing).
    Panicked,
}

/// A one-shot result from a thread: a one-message channel, whose sender
/// the thread drops once it has sent, so a second taker sees it gone.
pub(crate) struct Job<T> {
    result: Receiver<ThreadResult<T>>,
    finished: Arc<AtomicBool>,
}

impl<T: Send + 'static> Job<T> {
    /// Runs `f` on a new thread named `name`.
    pub(crate) fn spawn(
        name: String,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> std::io::Result<Arc<Job<T>>> {
        let (tx, rx) = crossbeam_channel::bounded(1);
        let finished = Arc::new(AtomicBool::new(false));
        let done = finished.clone();
        std::thread::Builder::new().name(name).spawn(move || {
            let result = catch_unwind(AssertUnwindSafe(f));
            // The receiver may be gone: nobody wants the result.
            let _ = tx.send(result);
            done.store(true, Ordering::Release);
        })?;
        Ok(Arc::new(Job {
            result: rx,
            finished,
        }))
    }
}

impl<T> Job<T> {
    /// Whether the thread has finished.
    pub(crate) fn is_finished(&self) -> bool {
        self.finished.load(Ordering::Acquire) || !self.result.is_empty()
    }

    /// Takes the result, waiting until it comes, or until `until`, or until
    /// `cancel` is set (watched every 10 ms).
    pub(crate) fn wait(
        &self,
        until: Option<Instant>,
        cancel: Option<&AtomicBool>,
    ) -> Result<T, JobWait> {
        let taken = |r: ThreadResult<T>| r.map_err(|_| JobWait::Panicked);
        loop {
            match self.result.try_recv() {
                Ok(r) => return taken(r),
                Err(TryRecvError::Disconnected) => return Err(JobWait::Taken),
                Err(TryRecvError::Empty) => {}
            }
            let now = Instant::now();
            if until.is_some_and(|t| now >= t) {
                return Err(JobWait::Timeout);
            }
            if cancel.is_some_and(|c| c.load(Ordering::Relaxed)) {
                return Err(JobWait::Cancelled);
            }
            let slice = cancel.map(|_| now + CANCEL_POLL);
            let got = match until.into_iter().chain(slice).min() {
                Some(t) => self.result.recv_deadline(t),
                None => self
                    .result
                    .recv()
                    .map_err(|_| RecvTimeoutError::Disconnected),
            };
            match got {
                Ok(r) => return taken(r),
                Err(RecvTimeoutError::Disconnected) => return Err(JobWait::Taken),
                Err(RecvTimeoutError::Timeout) => {}
            }
        }
    }
}

impl<T> std::fmt::Debug for Job<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Job")
            .field("finished", &self.is_finished())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_result_is_taken_once_and_waits_end_on_time_or_cancel() {
        let gate = Arc::new(AtomicBool::new(false));
        let g = gate.clone();
        let job = Job::spawn("t".into(), move || {
            while !g.load(Ordering::Acquire) {
                std::thread::yield_now();
            }
            7
        })
        .unwrap();
        assert_eq!(job.wait(Some(Instant::now()), None), Err(JobWait::Timeout));
        let cancel = AtomicBool::new(true);
        assert_eq!(job.wait(None, Some(&cancel)), Err(JobWait::Cancelled));
        gate.store(true, Ordering::Release);
        assert_eq!(job.wait(None, None), Ok(7));
        assert_eq!(job.wait(None, None), Err(JobWait::Taken));
    }
}
