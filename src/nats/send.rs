//! The sending side: a local channel whose receiving end is a bridge. A
//! thread (the taker) takes what is sent, never more than a window ahead of
//! what the stream has stored, and hands it to a task (the publisher) that
//! keeps up to that window of messages in flight, in order (see
//! `Publisher`).

use std::ops::Deref;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use std::collections::VecDeque;
use std::future::IntoFuture;

use async_nats::jetstream::context::{PublishError, PublishErrorKind};
use async_nats::jetstream::{self, message::PublishMessage, publish::PublishAck};
use bytes::Bytes;
use tokio::sync::mpsc;

use super::{CLOSE_HEADER, NatsChannel, NatsError, Status};
use crate::channel::{Core, Message, RecvChannel, SendChannel, Wait};

/// Room kept in each stored message for the headers a bridge adds.
pub(super) const HEADER_ROOM: usize = 256;

/// The longest pause between two tries to publish to a full stream.
const FULL_PAUSE: Duration = Duration::from_millis(20);

/// The most messages a bridge has in flight (published, unanswered); it is
/// also at most the channel's capacity.
const MAX_IN_FLIGHT: usize = 128;

/// The most bytes of payload a bridge holds taken and unstored (one message
/// of any size is always let through): what a guest's sends can make the
/// host hold beyond the local queue, which its budget is charged for.
const MAX_IN_FLIGHT_BYTES: usize = 4 << 20;

/// The sending side of a NATS channel. It dereferences to the
/// [`SendChannel`] a guest or the host sends on (clone it to hand it to a
/// run); the bridge behind publishes what is sent, in order.
///
/// `send` returns once the message is queued for the bridge. Beyond the
/// `capacity` messages the stream holds, the bridge takes up to a window of
/// messages (`capacity`, at most 128) and 4 MiB of them (one message of any
/// size always goes), published or waiting for room in the stream; its
/// local queue holds up to a window more and `max_message_bytes` bytes. A
/// send past that blocks as on a full local channel.
#[derive(Debug)]
pub struct NatsSender {
    /// `None` only inside `finish`.
    end: Option<SendChannel>,
    status: Arc<Status>,
    /// How far the bridge is, for receivers whose acks wait on it
    /// ([`NatsReceiver::acks_after`](super::NatsReceiver::acks_after)).
    pub(super) progress: Arc<Progress>,
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
        let window = self.capacity.min(MAX_IN_FLIGHT);
        let (rx, end) = self
            .host
            .create_channel_with(window, self.max_message_bytes);
        let status = Arc::new(Status::default());
        let progress = Arc::new(Progress {
            subject: self.subject.clone(),
            core: rx.core().clone(),
            settled: tokio::sync::watch::Sender::new(0),
            failed: AtomicBool::new(false),
            bytes: AtomicUsize::new(0),
        });
        let publisher = Publisher {
            progress: progress.clone(),
            js,
            subject: self.subject.clone(),
            outage: self.outage,
            status: status.clone(),
            core: rx.core().clone(),
            window,
            id: message_id_prefix(),
        };
        let handle = self.nats.handle();
        let nats = self.nats.clone();
        let bridge_status = status.clone();
        let progress_kept = progress.clone();
        let thread = std::thread::Builder::new()
            .name("subinterp-nats-send".into())
            .spawn(move || {
                let (to, input) = mpsc::unbounded_channel();
                let task = handle.spawn(publisher.run(input));
                take(&rx, &progress, &bridge_status, window as u64, &to, &handle);
                drop(to);
                if handle.block_on(task).is_err() {
                    // The task panicked: what it took may never be stored.
                    progress.done(true);
                }
                // The connection's runtime lives until the bridge is done.
                drop(nats);
            })
            .map_err(|e| super::refused("start the send bridge", e))?;
        Ok(NatsSender {
            end: Some(end),
            status,
            progress: progress_kept,
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

    /// Stops sending without closing the channel, and waits until every
    /// message sent before is stored: for one of several sending processes
    /// on a subject. The receiver stops at the first close marker, so with
    /// several senders all but the last leave and the last finishes (a
    /// marker from one would end the channel while the others still send:
    /// what they stored behind it is never received).
    ///
    /// # Errors
    /// What stopped the bridge, when it failed.
    pub fn leave(self) -> Result<(), NatsError> {
        self.status.leaving.store(true, Ordering::Release);
        self.finish()
    }
}

impl Deref for NatsSender {
    type Target = SendChannel;
    fn deref(&self) -> &SendChannel {
        self.end.as_ref().expect("the end is there until finish")
    }
}

/// How far a send bridge is: the acks of a receiver bound to it
/// (`acks_after`) wait on it.
pub(super) struct Progress {
    /// The subject it publishes on: a receiver on the same one does not
    /// wait for it (it would wait for room only its own acks make).
    subject: String,
    /// The bridge's local channel: its `accepted` counts the messages whose
    /// `send` returned.
    core: Arc<Core>,
    /// How many of those are stored (or dropped); `u64::MAX` once the
    /// bridge is done.
    settled: tokio::sync::watch::Sender<u64>,
    /// Whether the bridge failed: what it took may never be stored.
    failed: AtomicBool,
    /// Payload bytes taken and not yet settled.
    bytes: AtomicUsize,
}

impl Progress {
    /// What this bridge must have settled before an ack released now may
    /// go, if anything.
    pub(super) fn mark(self: &Arc<Self>, subject: &str) -> Option<(Arc<Progress>, u64)> {
        if self.subject == subject {
            return None;
        }
        let taken = self.core.accepted();
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

/// What the taker hands the publisher, in the order the guest sent it.
enum Item {
    Data(Bytes),
    /// The channel closed: publish the close marker behind the data.
    Close,
}

/// A message taken and not yet known to be stored.
struct Pending {
    /// Its `Nats-Msg-Id`: the same on every try, so the stream stores it once.
    id: String,
    payload: Bytes,
    close: bool,
    /// The server's answer, while the message is in flight.
    ack: Option<AckFuture>,
}

type AckFuture = std::pin::Pin<Box<dyn Future<Output = Result<PublishAck, PublishError>> + Send>>;

/// The publishing task's state.
///
/// Order: the first message in flight is published as is (everything
/// before it is stored); each one behind it carries
/// `Nats-Expected-Last-Msg-Id` naming the one before, so the server stores
/// it only right after its predecessor. When one is refused (stream full,
/// outage, another sender's message in between), every one behind it is
/// refused too; the publisher drops their answers and publishes again from
/// the refused one, one message in flight, widening the window again as
/// messages are stored. A message stored but whose answer was lost is
/// recognised by its `Nats-Msg-Id` and not stored twice.
struct Publisher {
    progress: Arc<Progress>,
    js: jetstream::Context,
    subject: String,
    outage: Duration,
    status: Arc<Status>,
    /// The bridge's local channel, closed when the publisher fails.
    core: Arc<Core>,
    /// The widest window (messages in flight).
    window: usize,
    /// Names this bridge's messages.
    id: String,
}

/// Why the publisher waits before trying again.
#[derive(Default)]
struct Retry {
    pause: Option<Duration>,
    /// Since when the server has been unreachable.
    failing: Option<Instant>,
}

impl Retry {
    fn next_pause(&mut self) -> Duration {
        let p = self
            .pause
            .map_or(Duration::from_millis(1), |p| (p * 2).min(FULL_PAUSE));
        self.pause = Some(p);
        p
    }

    fn stored(&mut self) {
        *self = Retry::default();
    }
}

impl Publisher {
    /// Publishes what the taker hands it until the close is stored (false)
    /// or it fails (true).
    async fn run(self, mut input: mpsc::UnboundedReceiver<Item>) -> bool {
        let failed = match self.pump(&mut input).await {
            Ok(()) => false,
            Err(e) => {
                self.status.set(e);
                self.core.close();
                true
            }
        };
        self.progress.done(failed);
        failed
    }

    async fn pump(&self, input: &mut mpsc::UnboundedReceiver<Item>) -> Result<(), NatsError> {
        let mut f = Flight::default();
        let mut open = true;
        let mut retry = Retry::default();
        loop {
            while f.flying < f.queue.len().min(f.window) {
                let m = self.message(
                    &f.queue[f.flying],
                    f.flying.checked_sub(1).map(|i| &f.queue[i]),
                );
                match self.js.send_publish(self.subject.clone(), m).await {
                    Ok(ack) => f.published(Box::pin(ack.into_future())),
                    Err(e) => {
                        self.refused(e, &mut retry).await?;
                        f.rewind();
                    }
                }
            }
            if f.queue.is_empty() && !open {
                return Ok(());
            }
            let event = tokio::select! {
                // The oldest answer first: it frees room for the taker.
                biased;
                r = front(&mut f.queue), if f.flying > 0 => Event::Answer(r),
                item = input.recv(), if open => Event::Input(item),
            };
            match event {
                Event::Answer(Ok(_)) => {
                    let bytes = f.stored(self.window);
                    self.progress.bytes.fetch_sub(bytes, Ordering::AcqRel);
                    retry.stored();
                    self.progress.settle();
                }
                Event::Answer(Err(e)) => {
                    self.refused(e, &mut retry).await?;
                    f.rewind();
                }
                Event::Input(Some(item)) => f.push(&self.id, item),
                Event::Input(None) => open = false,
            }
        }
    }

    /// The message to publish for `p`, which must follow `after` in the
    /// stream.
    fn message(&self, p: &Pending, after: Option<&Pending>) -> PublishMessage {
        let mut m = PublishMessage::build()
            .payload(p.payload.clone())
            .message_id(&p.id);
        if let Some(after) = after {
            m = m.expected_last_message_id(&after.id);
        }
        if p.close {
            m = m.header(CLOSE_HEADER, "1");
        }
        m
    }

    /// What to do after a refusal: wait and try again (`Ok`), or give up.
    async fn refused(&self, e: PublishError, retry: &mut Retry) -> Result<(), NatsError> {
        if e.kind() == PublishErrorKind::WrongLastMessageId {
            // Another sender's message came between two of ours: ours goes
            // again, after it.
            return Ok(());
        }
        if is_full(&e) {
            retry.failing = None;
        } else if is_outage(&e) {
            let since = *retry.failing.get_or_insert_with(Instant::now);
            if since.elapsed() >= self.outage {
                return Err(NatsError::Lost {
                    waited: since.elapsed(),
                    reason: e.to_string(),
                });
            }
        } else {
            return Err(super::refused("store a message", e));
        }
        tokio::time::sleep(retry.next_pause()).await;
        Ok(())
    }
}

/// The messages taken and not yet stored, in order: `queue[..flying]` are
/// published and unanswered; at most `window` may be.
struct Flight {
    queue: VecDeque<Pending>,
    flying: usize,
    window: usize,
    /// Messages taken so far: the next one's number in its `Nats-Msg-Id`.
    taken: u64,
}

impl Default for Flight {
    fn default() -> Self {
        Flight {
            queue: VecDeque::new(),
            flying: 0,
            window: 1,
            taken: 0,
        }
    }
}

impl Flight {
    fn push(&mut self, prefix: &str, item: Item) {
        let (payload, close) = match item {
            Item::Data(b) => (b, false),
            Item::Close => (Bytes::new(), true),
        };
        self.queue.push_back(Pending {
            id: format!("{prefix}-{}", self.taken),
            payload,
            close,
            ack: None,
        });
        self.taken += 1;
    }

    fn published(&mut self, ack: AckFuture) {
        self.queue[self.flying].ack = Some(ack);
        self.flying += 1;
    }

    /// The oldest is stored: the window widens (up to `widest`); its bytes.
    fn stored(&mut self, widest: usize) -> usize {
        self.flying -= 1;
        self.window = (self.window * 2).min(widest);
        self.queue.pop_front().map_or(0, |p| p.payload.len())
    }

    /// A refusal: every answer behind it is dropped (they are refusals too,
    /// or duplicates once published again), and publishing starts again
    /// from the oldest, one in flight.
    fn rewind(&mut self) {
        self.queue.iter_mut().for_each(|p| p.ack = None);
        (self.flying, self.window) = (0, 1);
    }
}

/// What the publisher waited for.
enum Event {
    Answer(Result<PublishAck, PublishError>),
    Input(Option<Item>),
}

/// The answer to the oldest message in flight.
async fn front(queue: &mut VecDeque<Pending>) -> Result<PublishAck, PublishError> {
    match queue.front_mut().and_then(|p| p.ack.as_mut()) {
        Some(ack) => ack.await,
        None => std::future::pending().await,
    }
}

/// Takes what the guest sends, never more than `window` messages ahead of
/// what the stream has stored, and hands it to the publisher.
fn take(
    rx: &RecvChannel,
    progress: &Progress,
    status: &Status,
    window: u64,
    to: &mpsc::UnboundedSender<Item>,
    handle: &tokio::runtime::Handle,
) {
    let mut settled = progress.settled.subscribe();
    let mut taken = 0u64;
    loop {
        let full = |s: &u64| {
            *s != u64::MAX
                && (taken - s >= window
                    || progress.bytes.load(Ordering::Acquire) >= MAX_IN_FLIGHT_BYTES)
        };
        if full(&settled.borrow()) {
            let _ = handle.block_on(settled.wait_for(|s| !full(s)));
        }
        if *settled.borrow() == u64::MAX {
            // The publisher failed (and closed the channel).
            return;
        }
        match rx.core().recv_sleeping(Wait::forever()) {
            Ok(Message::View(v)) => {
                taken += 1;
                progress.bytes.fetch_add(v.len(), Ordering::AcqRel);
                if to.send(Item::Data(v.into_bytes())).is_err() {
                    return;
                }
            }
            Ok(_) => {
                // Settled in its place, once all before it are.
                taken += 1;
                status.set(NatsError::NotBytes);
                let _ = handle.block_on(settled.wait_for(|&s| s >= taken - 1));
                progress.settle();
            }
            Err(_) => {
                if !status.leaving.load(Ordering::Acquire) {
                    let _ = to.send(Item::Close);
                }
                return;
            }
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
