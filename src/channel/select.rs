//! Waiting on several channel ends at once (the guest's `wait` import).
//!
//! A waiter registers one [`Signal`] with the channel of each end it names;
//! every change that can make an end ready (a message queued or taken, a
//! close, the last end of a side gone, a receiver starting to wait) sets the
//! signals registered there. The waiter sleeps on its signal alone, so one
//! thread can wait on many channels without polling them.
//!
//! Lock order: a channel's lock, then a signal's. The waiter never holds its
//! signal's lock while it takes a channel's.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex, MutexGuard};

use super::queue::{Core, Wait};

/// What one waiter sleeps on: set by the channels it watches.
#[derive(Default)]
pub(crate) struct Signal {
    fired: Mutex<bool>,
    cv: Condvar,
}

impl Signal {
    pub(super) fn notify(&self) {
        *self.fired.lock() = true;
        self.cv.notify_one();
    }
}

/// The side of a channel an end acts on, and what "ready" means for it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Side {
    /// A receiving end: ready when a message is queued, or the channel is
    /// closed (or has no sender left).
    Recv,
    /// A sending end with a message of this many bytes: ready when it would
    /// be queued without waiting, or the send would fail at once (closed, no
    /// receiver left, larger than the channel allows).
    Send(usize),
}

/// Why [`select`] found no ready end.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SelectFail {
    /// None was ready and the wait was [`Wait::NoWait`].
    Empty,
    /// None became ready before the deadline.
    Timeout,
    /// The cancel flag was set.
    Cancelled,
}

/// Longest single sleep while a cancel flag must be watched.
const CANCEL_POLL: Duration = Duration::from_millis(10);

/// Waits until one of `ends` is ready; its index (the first ready one).
/// With no ends it only sleeps, until the deadline or the cancel flag.
pub(crate) fn select(ends: &[(Arc<Core>, Side)], wait: Wait<'_>) -> Result<usize, SelectFail> {
    if let Some(i) = first_ready(ends) {
        return Ok(i);
    }
    let Wait::Until { deadline, cancel } = wait else {
        return Err(SelectFail::Empty);
    };
    let sig = Arc::new(Signal::default());
    // Each channel (and side) is watched once, however often it is named:
    // a guest naming one channel many times costs that channel one watcher.
    let mut seen = HashSet::with_capacity(ends.len());
    let watched: Vec<&(Arc<Core>, Side)> = ends
        .iter()
        .filter(|(core, side)| seen.insert((Arc::as_ptr(core), matches!(side, Side::Recv))))
        .collect();
    let mut ready = false;
    for (core, side) in &watched {
        ready |= core.watch(&sig, *side);
    }
    let r = match ready.then(|| first_ready(ends)).flatten() {
        Some(i) => Ok(i),
        None => sleep(&sig, ends, deadline, cancel),
    };
    for (core, side) in watched {
        core.unwatch(&sig, *side);
    }
    r
}

fn first_ready(ends: &[(Arc<Core>, Side)]) -> Option<usize> {
    ends.iter().position(|(core, side)| core.ready(*side))
}

/// Sleeps on `sig` until an end is ready, the deadline passes or `cancel`
/// is set.
fn sleep(
    sig: &Signal,
    ends: &[(Arc<Core>, Side)],
    deadline: Option<Instant>,
    cancel: Option<&AtomicBool>,
) -> Result<usize, SelectFail> {
    let mut fired = sig.fired.lock();
    loop {
        if *fired {
            *fired = false;
            if let Some(i) = MutexGuard::unlocked(&mut fired, || first_ready(ends)) {
                return Ok(i);
            }
            continue;
        }
        if cancel.is_some_and(|c| c.load(Ordering::Relaxed)) {
            return Err(SelectFail::Cancelled);
        }
        let now = Instant::now();
        if deadline.is_some_and(|d| now >= d) {
            return Err(SelectFail::Timeout);
        }
        let until = match (deadline, cancel) {
            (Some(d), Some(_)) => Some(d.min(now + CANCEL_POLL)),
            (Some(d), None) => Some(d),
            (None, Some(_)) => Some(now + CANCEL_POLL),
            (None, None) => None,
        };
        match until {
            Some(u) => {
                sig.cv.wait_until(&mut fired, u);
            }
            None => sig.cv.wait(&mut fired),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::channel::Registry;

    fn wait_ms(ms: u64) -> Wait<'static> {
        Wait::timeout(Duration::from_millis(ms))
    }

    #[test]
    fn a_queued_message_makes_a_receiving_end_ready() {
        let reg = Registry::new(1 << 20);
        let (r1, _s1) = reg.create(4, None, None);
        let (r2, s2) = reg.create(4, None, None);
        let ends = [
            (r1.core().clone(), Side::Recv),
            (r2.core().clone(), Side::Recv),
        ];
        assert_eq!(select(&ends, Wait::NoWait), Err(SelectFail::Empty));
        assert_eq!(select(&ends, wait_ms(1)), Err(SelectFail::Timeout));
        let t = std::thread::spawn(move || s2.send(b"x".to_vec()).unwrap());
        assert_eq!(select(&ends, Wait::forever()), Ok(1));
        t.join().unwrap();
    }

    #[test]
    fn a_close_or_a_gone_sender_makes_a_receiving_end_ready() {
        let reg = Registry::new(1 << 20);
        let (r, s) = reg.create(4, None, None);
        let ends = [(r.core().clone(), Side::Recv)];
        let t = std::thread::spawn(move || drop(s));
        assert_eq!(select(&ends, Wait::forever()), Ok(0));
        t.join().unwrap();
    }

    #[test]
    fn room_makes_a_sending_end_ready_and_size_counts() {
        let reg = Registry::new(8);
        let (r, s) = reg.create(1, None, None);
        s.send(b"abc".to_vec()).unwrap();
        let ends = [(s.core().clone(), Side::Send(3))];
        assert_eq!(select(&ends, Wait::NoWait), Err(SelectFail::Empty));
        // Larger than the channel allows: ready, since the send fails at once.
        assert_eq!(
            select(&[(s.core().clone(), Side::Send(9))], Wait::NoWait),
            Ok(0)
        );
        let t = std::thread::spawn(move || r.recv().unwrap());
        assert_eq!(select(&ends, Wait::forever()), Ok(0));
        t.join().unwrap();
    }

    #[test]
    fn a_watching_receiver_lets_a_rendezvous_send_through() {
        let reg = Registry::new(1 << 20);
        let (r, s) = reg.create(0, None, None);
        let ends = [(r.core().clone(), Side::Recv)];
        let t = std::thread::spawn(move || s.send(b"hi".to_vec()).unwrap());
        assert_eq!(select(&ends, Wait::forever()), Ok(0));
        assert_eq!(r.recv_nowait().unwrap().byte_len(), 2);
        t.join().unwrap();
    }

    #[test]
    fn an_end_named_many_times_is_watched_once() {
        let reg = Registry::new(1 << 20);
        let (r, s) = reg.create(4, None, None);
        let ends: Vec<_> = (0..100).map(|_| (r.core().clone(), Side::Recv)).collect();
        let core = r.core().clone();
        let t = std::thread::spawn(move || {
            // Waits until the selecting thread is watching, then sends.
            while core.watchers() == 0 {
                std::thread::yield_now();
            }
            assert_eq!(core.watchers(), 1);
            s.send(b"x".to_vec()).unwrap();
        });
        assert_eq!(select(&ends, Wait::forever()), Ok(0));
        t.join().unwrap();
        assert_eq!(r.core().watchers(), 0);
    }

    #[test]
    fn no_ends_sleeps_until_the_deadline_or_the_cancel_flag() {
        assert_eq!(select(&[], wait_ms(1)), Err(SelectFail::Timeout));
        let cancel = AtomicBool::new(true);
        let w = Wait::Until {
            deadline: None,
            cancel: Some(&cancel),
        };
        assert_eq!(select(&[], w), Err(SelectFail::Cancelled));
    }
}
