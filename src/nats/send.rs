//! The sending side: a local rendezvous channel whose receiving end is a
//! bridge thread that publishes each message to the stream and waits for
//! the server to store it before taking the next.

use std::ops::Deref;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use async_nats::HeaderMap;
use async_nats::jetstream::{self, context::PublishErrorKind};
use bytes::Bytes;

use super::{CLOSE_HEADER, NatsChannel, NatsError, Status};
use crate::channel::{Core, Message, RecvChannel, RecvError, SendChannel};

/// Room kept in each stored message for the headers a bridge adds.
pub(super) const HEADER_ROOM: usize = 256;

/// The longest pause between two tries to publish to a full stream.
const FULL_PAUSE: Duration = Duration::from_millis(20);

/// The sending side of a NATS channel. It dereferences to the
/// [`SendChannel`] a guest or the host sends on (clone it to hand it to a
/// run); the bridge behind publishes what is sent, in order.
///
/// `send` returns once the bridge has taken the message: one message may
/// wait in the bridge for room in the stream while `capacity` are stored.
#[derive(Debug)]
pub struct NatsSender {
    /// `None` only inside `finish`.
    end: Option<SendChannel>,
    status: Arc<Status>,
    bridge: Option<JoinHandle<()>>,
}

impl NatsChannel<'_> {
    /// Binds the sending side.
    ///
    /// # Errors
    /// [`NatsError::InvalidSubject`], [`NatsError::InvalidLimit`],
    /// [`NatsError::StreamMismatch`] (the stream exists with other limits),
    /// [`NatsError::NoJetStream`], [`NatsError::Refused`].
    pub fn sender(self) -> Result<NatsSender, NatsError> {
        self.check()?;
        self.check_payload()?;
        let js = self.context();
        self.nats.inner.rt.block_on(self.stream(&js))?;
        let (rx, end) = self.host.create_channel_with(0, self.max_message_bytes);
        let status = Arc::new(Status::default());
        let progress = Arc::new(Progress {
            subject: self.subject.clone(),
            core: rx.core().clone(),
            settled: tokio::sync::watch::Sender::new(0),
            failed: AtomicBool::new(false),
        });
        self.nats.inner.senders.lock().push(progress.clone());
        let bridge = Publisher {
            progress,
            js,
            subject: self.subject.clone(),
            outage: self.outage,
            status: status.clone(),
            id: message_id_prefix(),
            count: AtomicU64::new(0),
        };
        let handle = self.nats.handle();
        let nats = self.nats.clone();
        let thread = std::thread::Builder::new()
            .name("subinterp-nats-send".into())
            .spawn(move || {
                bridge.run(&handle, rx);
                nats.inner
                    .senders
                    .lock()
                    .retain(|p| !Arc::ptr_eq(p, &bridge.progress));
            })
            .map_err(|e| super::refused("start the send bridge", e))?;
        Ok(NatsSender {
            end: Some(end),
            status,
            bridge: Some(thread),
        })
    }

    /// A message of `max_message_bytes` with its headers must fit in one
    /// NATS message.
    fn check_payload(&self) -> Result<(), NatsError> {
        let max = self.nats.inner.client.server_info().max_payload;
        if self.max_message_bytes + HEADER_ROOM > max {
            return Err(NatsError::InvalidLimit(
                "max_message_bytes must leave 256 bytes of the server's max_payload for headers",
            ));
        }
        Ok(())
    }

    pub(super) fn context(&self) -> jetstream::Context {
        // The context spawns a task of its own.
        let _in = self.nats.inner.rt.enter();
        jetstream::ContextBuilder::new()
            .timeout(self.outage.min(Duration::from_secs(5)))
            .build(self.nats.inner.client.clone())
    }
}

impl NatsSender {
    /// The local sending end (the same as `*self`).
    pub fn channel(&self) -> &SendChannel {
        self
    }

    /// Why the bridge stopped, or dropped a message, if it did.
    pub fn error(&self) -> Option<NatsError> {
        self.status.error()
    }

    /// Closes the channel and waits until the bridge is done: every message
    /// sent before stored, then the close published behind them. (Dropping
    /// a `NatsSender` instead does not wait; the bridge publishes the close
    /// once every clone of the end is released.)
    ///
    /// # Errors
    /// What stopped the bridge, when it failed.
    pub fn finish(mut self) -> Result<(), NatsError> {
        if let Some(end) = self.end.take() {
            end.close();
        }
        if let Some(t) = self.bridge.take() {
            let _ = t.join();
        }
        self.status.error().map_or(Ok(()), Err)
    }
}

impl Deref for NatsSender {
    type Target = SendChannel;
    fn deref(&self) -> &SendChannel {
        self.end.as_ref().expect("the end is there until finish")
    }
}

/// How far a send bridge is: a receiver's ack waits on it.
pub(super) struct Progress {
    /// The subject it publishes on: a receiver on the same one does not
    /// wait for it (it would wait for room only its own acks make).
    subject: String,
    /// The bridge's local channel: its `taken` counts the messages whose
    /// `send` returned.
    core: Arc<Core>,
    /// How many of those are stored (or dropped); `u64::MAX` once the
    /// bridge is done.
    settled: tokio::sync::watch::Sender<u64>,
    /// Whether the bridge failed: what it took may never be stored.
    failed: AtomicBool,
}

impl Progress {
    /// What this bridge must have settled before an ack released now may
    /// go, if anything.
    pub(super) fn mark(self: &Arc<Self>, subject: &str) -> Option<(Arc<Progress>, u64)> {
        if self.subject == subject {
            return None;
        }
        let taken = self.core.taken();
        (*self.settled.borrow() < taken).then(|| (self.clone(), taken))
    }

    /// Waits until `n` messages are settled; whether they were all stored.
    pub(super) async fn stored(&self, n: u64) -> bool {
        let mut rx = self.settled.subscribe();
        let _ = rx.wait_for(|&v| v >= n).await;
        !self.failed.load(Ordering::Acquire)
    }

    fn settle(&self) {
        self.settled.send_modify(|v| *v = v.saturating_add(1));
    }

    fn done(&self, failed: bool) {
        self.failed.fetch_or(failed, Ordering::AcqRel);
        self.settled.send_replace(u64::MAX);
    }
}

impl std::fmt::Debug for Progress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Progress({})", *self.settled.borrow())
    }
}

/// The bridge's state.
struct Publisher {
    progress: Arc<Progress>,
    js: jetstream::Context,
    subject: String,
    outage: Duration,
    status: Arc<Status>,
    /// Names this bridge's messages (`Nats-Msg-Id`), so that a publish tried
    /// again after a lost ack is stored once.
    id: String,
    count: AtomicU64,
}

impl Publisher {
    fn run(&self, handle: &tokio::runtime::Handle, rx: RecvChannel) {
        let failed = self.pump(handle, &rx);
        self.progress.done(failed);
    }

    /// Publishes until the channel closes (false) or the bridge fails (true).
    fn pump(&self, handle: &tokio::runtime::Handle, rx: &RecvChannel) -> bool {
        loop {
            let sent = match rx.recv() {
                Ok(Message::View(v)) => handle.block_on(self.publish(v.into_bytes(), false)),
                Ok(_) => {
                    self.status.set(NatsError::NotBytes);
                    Ok(())
                }
                Err(RecvError::Closed) => {
                    if let Err(e) = handle.block_on(self.publish(Bytes::new(), true)) {
                        self.status.set(e);
                    }
                    return false;
                }
            };
            if let Err(e) = sent {
                self.status.set(e);
                rx.core().close();
                return true;
            }
            self.progress.settle();
        }
    }

    /// Publishes one message, waiting while the stream is full and trying
    /// again through an outage shorter than `outage`.
    async fn publish(&self, payload: Bytes, close: bool) -> Result<(), NatsError> {
        let n = self.count.fetch_add(1, Ordering::Relaxed);
        let mut headers = HeaderMap::new();
        headers.insert("Nats-Msg-Id", format!("{}-{n}", self.id).as_str());
        if close {
            headers.insert(CLOSE_HEADER, "1");
        }
        let mut pause = Duration::from_millis(1);
        let mut failing: Option<Instant> = None;
        loop {
            let sent = match self
                .js
                .publish_with_headers(self.subject.clone(), headers.clone(), payload.clone())
                .await
            {
                Ok(ack) => ack.await,
                Err(e) => Err(e),
            };
            let e = match sent {
                Ok(_) => return Ok(()),
                Err(e) => e,
            };
            if is_full(&e) {
                failing = None;
            } else if is_outage(&e) {
                let since = *failing.get_or_insert_with(Instant::now);
                if since.elapsed() >= self.outage {
                    return Err(NatsError::Lost {
                        waited: since.elapsed(),
                        reason: e.to_string(),
                    });
                }
            } else {
                return Err(super::refused("store a message", e));
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(FULL_PAUSE);
        }
    }
}

/// Whether the server refused the message because the stream is full
/// (`max_msgs` with discard-new).
fn is_full(e: &jetstream::context::PublishError) -> bool {
    use std::error::Error as _;
    e.kind() == PublishErrorKind::Other
        && e.source()
            .and_then(|s| s.downcast_ref::<jetstream::Error>())
            .is_some_and(|j| j.error_code() == jetstream::ErrorCode::STREAM_STORE_FAILED)
}

/// Whether the failure is the connection's (worth trying again).
fn is_outage(e: &jetstream::context::PublishError) -> bool {
    matches!(
        e.kind(),
        PublishErrorKind::TimedOut
            | PublishErrorKind::BrokenPipe
            | PublishErrorKind::StreamNotFound
    )
}

/// A prefix unique to this bridge: the process, the time, and a counter.
fn message_id_prefix() -> String {
    static BRIDGES: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!(
        "{:x}-{nanos:x}-{}",
        std::process::id(),
        BRIDGES.fetch_add(1, Ordering::Relaxed)
    )
}
