//! The shared core of one channel: a bounded FIFO of messages, guarded by one
//! mutex, with one condition variable for each side.
//!
//! Invariants (held under the lock):
//! - `queued_bytes` is the sum of the byte lengths of the queued messages;
//! - with capacity `n > 0`, at most `n` messages are queued;
//! - with capacity 0 (rendezvous) a message is queued only while its sender
//!   waits for a receiver to take it (or, for a nowait send, while a receiver
//!   is already waiting), so the sender learns when it was taken;
//! - `senders`/`receivers` count the live ends (including ends that are
//!   themselves queued as messages somewhere).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex, MutexGuard};

use super::Message;
use super::grave::bury;
use super::registry::Registry;
use super::select::{Side, Signal};
use crate::budget::Charge;

/// How long an operation may wait.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Wait<'a> {
    /// Do not wait at all.
    NoWait,
    /// Wait until the instant (or forever with `None`), giving up early when
    /// `cancel` becomes true (an interpreter being closed or past its deadline).
    Until {
        deadline: Option<Instant>,
        cancel: Option<&'a AtomicBool>,
    },
}

impl Wait<'_> {
    pub(crate) fn forever() -> Self {
        Wait::Until {
            deadline: None,
            cancel: None,
        }
    }

    pub(crate) fn timeout(d: Duration) -> Self {
        Wait::Until {
            deadline: Instant::now().checked_add(d),
            cancel: None,
        }
    }
}

/// Why an internal send failed; the caller maps it to its public error.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SendFail {
    Full,
    Timeout,
    Closed,
    TooLarge(usize),
    Cancelled,
}

/// Why an internal receive failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RecvFail {
    Empty,
    Timeout,
    Closed,
    Cancelled,
}

struct State {
    queue: VecDeque<(u64, Message, Option<Charge>)>,
    queued_bytes: usize,
    next_seq: u64,
    /// Messages received so far.
    taken: u64,
    closed: bool,
    senders: usize,
    receivers: usize,
    waiting_receivers: usize,
    /// The signals of `select`s waiting on this channel (see select.rs).
    watchers: Vec<Arc<Signal>>,
}

pub(crate) struct Core {
    pub(crate) id: u64,
    /// The host's list of channels, which this one leaves when dropped.
    registry: Weak<Registry>,
    /// What the channel costs the tree whose guest created it.
    _cost: Option<Charge>,
    pub(crate) capacity: usize,
    pub(crate) max_queued_bytes: usize,
    state: Mutex<State>,
    not_empty: Condvar,
    not_full: Condvar,
    /// The queue's length, readable without the lock: a receiver about to
    /// sleep on an empty queue spins on it briefly first, since the next
    /// message is often microseconds away and a sleep and wake-up cost more.
    queued: AtomicUsize,
}

/// How long a blocked sender sleeps at most before it looks for room again.
/// Receivers wake blocked senders only once the queue is down to
/// [`Core::low_water`]; this bounds the wait of a sender for room that a
/// receiver left above that mark (a receiver that stopped receiving there).
const ROOM_POLL: Duration = Duration::from_millis(1);

/// How long a receiver polls `queued` before it sleeps.
const SPIN: Duration = Duration::from_micros(20);

/// Longest single sleep when a cancel flag must be watched.
const CANCEL_POLL: Duration = Duration::from_millis(10);

enum Woke {
    Signalled,
    TimedOut,
    Cancelled,
}

/// Sleeps on `cv` as `wait` allows, for at most `poll` when given (and at
/// most [`CANCEL_POLL`] when a cancel flag must be watched); the caller
/// looks at the state again whatever woke it.
fn wait_on(
    cv: &Condvar,
    g: &mut MutexGuard<'_, State>,
    wait: Wait<'_>,
    poll: Option<Duration>,
) -> Woke {
    let Wait::Until { deadline, cancel } = wait else {
        return Woke::TimedOut;
    };
    if cancel.is_some_and(|c| c.load(Ordering::Relaxed)) {
        return Woke::Cancelled;
    }
    let now = Instant::now();
    if deadline.is_some_and(|d| now >= d) {
        return Woke::TimedOut;
    }
    let poll = match (cancel, poll) {
        (Some(_), p) => Some(p.map_or(CANCEL_POLL, |p| p.min(CANCEL_POLL))),
        (None, p) => p,
    };
    let slice = match (deadline, poll) {
        (Some(d), Some(p)) => Some(d.min(now + p)),
        (Some(d), None) => Some(d),
        (None, Some(p)) => Some(now + p),
        (None, None) => None,
    };
    match slice {
        Some(until) => {
            cv.wait_until(g, until);
        }
        None => cv.wait(g),
    }
    Woke::Signalled
}

impl Core {
    pub(crate) fn new(
        id: u64,
        capacity: usize,
        max_queued_bytes: usize,
        registry: Weak<Registry>,
        cost: Option<Charge>,
    ) -> Self {
        Core {
            id,
            registry,
            _cost: cost,
            capacity,
            max_queued_bytes,
            state: Mutex::new(State {
                queue: VecDeque::new(),
                queued_bytes: 0,
                next_seq: 0,
                taken: 0,
                closed: false,
                senders: 0,
                receivers: 0,
                waiting_receivers: 0,
                watchers: Vec::new(),
            }),
            not_empty: Condvar::new(),
            not_full: Condvar::new(),
            queued: AtomicUsize::new(0),
        }
    }

    pub(crate) fn add_end(&self, sender: bool) {
        let mut s = self.state.lock();
        if sender {
            s.senders += 1;
        } else {
            s.receivers += 1;
        }
    }

    pub(crate) fn drop_end(&self, sender: bool) {
        let mut s = self.state.lock();
        self.wake(&s);
        if sender {
            s.senders -= 1;
            if s.senders == 0 {
                self.not_empty.notify_all();
            }
        } else {
            s.receivers -= 1;
            if s.receivers == 0 {
                self.not_full.notify_all();
            }
        }
    }

    pub(crate) fn close(&self) {
        let mut s = self.state.lock();
        s.closed = true;
        self.not_empty.notify_all();
        self.not_full.notify_all();
        self.wake(&s);
    }

    /// Closes the channel for good and drops what it holds: senders and
    /// receivers alike get "closed" from now on. What an interpreter's tree
    /// created goes this way when the interpreter is closed, which also
    /// breaks any cycle of channels holding each other's ends.
    pub(crate) fn purge(&self) {
        let queue = {
            let mut s = self.state.lock();
            s.closed = true;
            s.queued_bytes = 0;
            self.queued.store(0, Ordering::Release);
            self.not_empty.notify_all();
            self.not_full.notify_all();
            self.wake(&s);
            std::mem::take(&mut s.queue)
        };
        bury(queue.into_iter().map(|(_, m, _)| m));
    }

    /// Puts back at the head a message a receiver took but could not keep
    /// (its tree had no room for it): the next receive gets it, so nothing
    /// is lost.
    pub(crate) fn requeue_front(&self, msg: Message) {
        let mut s = self.state.lock();
        let seq = s.next_seq;
        s.next_seq += 1;
        s.queued_bytes += msg.byte_len();
        s.queue.push_front((seq, msg, None));
        self.queued.store(s.queue.len(), Ordering::Release);
        self.not_empty.notify_one();
        self.wake(&s);
    }

    /// Whether any receiving end is left (a bridge feeding the channel from
    /// elsewhere stops when none is).
    #[cfg_attr(not(feature = "nats"), allow(dead_code))]
    pub(crate) fn has_receivers(&self) -> bool {
        self.state.lock().receivers > 0
    }

    /// How many messages the channel has accepted so far: taken by
    /// receivers or queued (a sender whose `send` returned has its message
    /// counted here).
    #[cfg_attr(not(feature = "nats"), allow(dead_code))]
    pub(crate) fn accepted(&self) -> u64 {
        let s = self.state.lock();
        s.taken + s.queue.len() as u64
    }

    /// Whether the channel was closed by a sender.
    pub(crate) fn is_closed(&self) -> bool {
        self.state.lock().closed
    }

    /// Messages queued now.
    pub(crate) fn len(&self) -> usize {
        self.state.lock().queue.len()
    }

    fn has_room(&self, s: &State, len: usize) -> bool {
        let bytes_ok = s.queue.is_empty() || s.queued_bytes + len <= self.max_queued_bytes;
        if self.capacity == 0 {
            // Rendezvous: only hand over when a receiver is free to take it.
            s.waiting_receivers > s.queue.len()
        } else {
            s.queue.len() < self.capacity && bytes_ok
        }
    }

    fn push(&self, s: &mut State, msg: Message, cost: Option<Charge>) -> u64 {
        let seq = s.next_seq;
        s.next_seq += 1;
        s.queued_bytes += msg.byte_len();
        s.queue.push_back((seq, msg, cost));
        self.queued.store(s.queue.len(), Ordering::Release);
        self.not_empty.notify_one();
        self.wake(s);
        seq
    }

    fn unqueue(&self, s: &mut State, seq: u64) -> Option<Message> {
        let pos = s.queue.iter().position(|(q, _, _)| *q == seq)?;
        let (_, msg, _) = s.queue.remove(pos)?;
        s.queued_bytes -= msg.byte_len();
        self.queued.store(s.queue.len(), Ordering::Release);
        self.wake(s);
        Some(msg)
    }

    /// Queues `msg`, waiting as `wait` allows; `cost` (the sender's tree's
    /// charge for the queue entry) stays with it while it is queued. On
    /// failure the message comes back and the charge is given back.
    pub(crate) fn send(
        &self,
        msg: Message,
        cost: Option<Charge>,
        wait: Wait<'_>,
    ) -> Result<(), (SendFail, Message)> {
        let len = msg.byte_len();
        if len > self.max_queued_bytes {
            return Err((SendFail::TooLarge(self.max_queued_bytes), msg));
        }
        let mut s = self.state.lock();
        loop {
            if s.closed || s.receivers == 0 {
                return Err((SendFail::Closed, msg));
            }
            if self.has_room(&s, len) {
                self.push(&mut s, msg, cost);
                return Ok(());
            }
            if self.capacity == 0 && !matches!(wait, Wait::NoWait) {
                return self.send_rendezvous(s, msg, cost, wait);
            }
            match wait_on(&self.not_full, &mut s, wait, Some(ROOM_POLL)) {
                Woke::Signalled => {}
                Woke::TimedOut if matches!(wait, Wait::NoWait) => {
                    return Err((SendFail::Full, msg));
                }
                Woke::TimedOut => return Err((SendFail::Timeout, msg)),
                Woke::Cancelled => return Err((SendFail::Cancelled, msg)),
            }
        }
    }

    /// Capacity 0 with no receiver waiting: queue the message and wait until a
    /// receiver takes it; take it back on timeout, cancel or close.
    fn send_rendezvous(
        &self,
        mut s: MutexGuard<'_, State>,
        msg: Message,
        cost: Option<Charge>,
        wait: Wait<'_>,
    ) -> Result<(), (SendFail, Message)> {
        let seq = self.push(&mut s, msg, cost);
        loop {
            if !s.queue.iter().any(|(q, _, _)| *q == seq) {
                return Ok(());
            }
            let fail = if s.closed || s.receivers == 0 {
                Some(SendFail::Closed)
            } else {
                match wait_on(&self.not_full, &mut s, wait, None) {
                    Woke::Signalled => None,
                    Woke::TimedOut => Some(SendFail::Timeout),
                    Woke::Cancelled => Some(SendFail::Cancelled),
                }
            };
            if let Some(fail) = fail {
                return match self.unqueue(&mut s, seq) {
                    Some(msg) => Err((fail, msg)),
                    None => Ok(()),
                };
            }
        }
    }

    /// The queue length at or below which a receive wakes the senders
    /// blocked on a full queue: half the capacity. Woken once per half a
    /// queue, a sender sends a batch while the receiver goes on taking
    /// messages; woken at every receive, it would refill one slot at a time,
    /// each message costing both threads a system call and a fight over the
    /// lock (Python one-way messages: ~130k context switches per 600k
    /// messages before, ~6k after). A rendezvous sender (capacity 0) is
    /// woken at every receive.
    fn low_water(&self) -> usize {
        self.capacity / 2
    }

    /// Takes the oldest message, waiting as `wait` allows.
    pub(crate) fn recv(&self, wait: Wait<'_>) -> Result<Message, RecvFail> {
        self.recv_spinning(wait, true)
    }

    /// As [`recv`](Self::recv), but sleeps at once on an empty queue: for a
    /// host bridge that must leave the CPU to the threads it waits for.
    #[cfg_attr(not(feature = "nats"), allow(dead_code))]
    pub(crate) fn recv_sleeping(&self, wait: Wait<'_>) -> Result<Message, RecvFail> {
        self.recv_spinning(wait, false)
    }

    fn recv_spinning(&self, wait: Wait<'_>, spin: bool) -> Result<Message, RecvFail> {
        let mut s = self.state.lock();
        let mut spun = !spin;
        loop {
            if let Some((_, msg, _)) = s.queue.pop_front() {
                s.taken += 1;
                s.queued_bytes -= msg.byte_len();
                self.queued.store(s.queue.len(), Ordering::Release);
                if self.capacity == 0 || s.queue.len() <= self.low_water() {
                    self.not_full.notify_all();
                }
                self.wake(&s);
                return Ok(msg);
            }
            if s.closed || s.senders == 0 {
                return Err(RecvFail::Closed);
            }
            if matches!(wait, Wait::NoWait) {
                return Err(RecvFail::Empty);
            }
            if !spun && self.capacity > 0 {
                spun = true;
                // Whatever the spin saw, look at the state again under the
                // lock before sleeping: a message, a close or the last
                // sender's release may have come while it was unlocked.
                MutexGuard::unlocked(&mut s, || {
                    let start = Instant::now();
                    while self.queued.load(Ordering::Acquire) == 0 && start.elapsed() < SPIN {
                        for _ in 0..16 {
                            std::hint::spin_loop();
                        }
                    }
                });
                continue;
            }
            s.waiting_receivers += 1;
            // A rendezvous sender may be waiting for a receiver to show up.
            self.not_full.notify_all();
            self.wake(&s);
            let woke = wait_on(&self.not_empty, &mut s, wait, None);
            s.waiting_receivers -= 1;
            match woke {
                Woke::Signalled => {}
                Woke::TimedOut => return Err(RecvFail::Timeout),
                Woke::Cancelled => return Err(RecvFail::Cancelled),
            }
        }
    }
}

/// What [`select`](super::select::select) asks of a channel.
impl Core {
    /// Sets the signal of every `select` waiting on this channel: something
    /// changed that may make one of its ends ready.
    fn wake(&self, s: &State) {
        for w in &s.watchers {
            w.notify();
        }
    }

    fn is_ready(&self, s: &State, side: Side) -> bool {
        match side {
            Side::Recv => !s.queue.is_empty() || s.closed || s.senders == 0,
            Side::Send(len) => {
                s.closed || s.receivers == 0 || len > self.max_queued_bytes || self.has_room(s, len)
            }
        }
    }

    /// Whether an end on `side` would act now without waiting.
    pub(crate) fn ready(&self, side: Side) -> bool {
        self.is_ready(&self.state.lock(), side)
    }

    /// Registers `sig` to be set on every change; whether `side` is ready
    /// now. A receiving end being watched counts as a waiting receiver, so
    /// a rendezvous sender can hand its message over to it.
    pub(crate) fn watch(&self, sig: &Arc<Signal>, side: Side) -> bool {
        let mut s = self.state.lock();
        s.watchers.push(sig.clone());
        if side == Side::Recv {
            s.waiting_receivers += 1;
            self.not_full.notify_all();
            self.wake(&s);
        }
        self.is_ready(&s, side)
    }

    /// How many `select`s are watching this channel now.
    #[cfg(test)]
    pub(crate) fn watchers(&self) -> usize {
        self.state.lock().watchers.len()
    }

    /// Undoes one [`watch`](Self::watch) of `sig` on `side`.
    pub(crate) fn unwatch(&self, sig: &Arc<Signal>, side: Side) {
        let mut s = self.state.lock();
        if let Some(i) = s.watchers.iter().position(|w| Arc::ptr_eq(w, sig)) {
            s.watchers.swap_remove(i);
        }
        if side == Side::Recv {
            s.waiting_receivers -= 1;
        }
    }
}

impl Drop for Core {
    fn drop(&mut self) {
        let queue = std::mem::take(&mut self.state.get_mut().queue);
        bury(queue.into_iter().map(|(_, m, _)| m));
        if let Some(registry) = self.registry.upgrade() {
            registry.remove(self.id);
        }
    }
}
