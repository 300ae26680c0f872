//! The receiving side: a bridge thread pulls the stream's messages through
//! a durable consumer and queues each as a view in a local channel; the
//! message is acknowledged when the last reference to its bytes goes.
//!
//! Order and duplicates: a new receiver takes the consumer over (deletes and
//! makes it again, delivering from the first message still in the stream),
//! so what an earlier receiver left unreleased comes first, in stream order.
//! Within one receiver, a message the server delivers again (held past
//! `ack_wait`) is recognised by its stream sequence and not queued twice.

use std::ops::Deref;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, AckKind, consumer};
use bytes::Bytes;
use futures_util::StreamExt;
use tokio::sync::mpsc;

use super::send::Progress;
use super::{CLOSE_HEADER, CONSUMER, Link, Nats, NatsChannel, NatsError, NatsSender, Status};
use crate::buffer::Buffer;
use crate::channel::{Message, RecvChannel, SendChannel, Wait};

/// The most payload a pull asks the server for at once: what the client
/// may buffer ahead of the receivers (at least one message of the stream's
/// largest size, with its subject and headers, so every message can come).
const PULL_BYTES: usize = 4 << 20;

/// How often an idle bridge looks whether its receiving ends are all gone.
const IDLE_CHECK: Duration = Duration::from_millis(200);

/// The receiving side of a NATS channel. It dereferences to the
/// [`RecvChannel`] a guest or the host receives on (clone it to hand it to a
/// run). Received views are the NATS payloads themselves; each message is
/// acknowledged when its view (and every slice of it) is released.
pub struct NatsReceiver {
    end: RecvChannel,
    status: Arc<Status>,
    acks: Acks,
    _bridge: JoinHandle<()>,
}

impl NatsChannel<'_> {
    /// Binds the receiving side, taking the channel over from any earlier
    /// receiver: what it left unreleased is delivered again, first.
    ///
    /// # Errors
    /// [`NatsError::InvalidSubject`], [`NatsError::InvalidLimit`],
    /// [`NatsError::StreamMismatch`], [`NatsError::NoJetStream`],
    /// [`NatsError::Refused`].
    pub fn receiver(self) -> Result<NatsReceiver, NatsError> {
        self.check()?;
        let js = self.context();
        let messages = self.nats.inner.rt.block_on(self.consume(&js))?;
        let (end, tx) = self
            .host
            .create_channel_with(self.capacity, self.max_message_bytes.max(1));
        let status = Arc::new(Status::default());
        let acks = Acks::start(&self.nats, &self.subject);
        let pump = Pump {
            acks: acks.clone(),
            status: status.clone(),
            max_message_bytes: self.max_message_bytes,
            outage: self.outage,
        };
        let nats = self.nats.clone();
        let thread = std::thread::Builder::new()
            .name("subinterp-nats-recv".into())
            .spawn(move || {
                let handle = nats.handle();
                handle.block_on(pump.run(messages, tx));
            })
            .map_err(|e| super::refused("start the receive bridge", e))?;
        Ok(NatsReceiver {
            end,
            status,
            acks,
            _bridge: thread,
        })
    }

    /// The stream, a fresh consumer on it, and its messages.
    async fn consume(&self, js: &jetstream::Context) -> Result<consumer::pull::Stream, NatsError> {
        let stream = self.stream(js).await?;
        // Take over: a consumer left by an earlier receiver would hand its
        // unreleased messages back only after ack_wait, and after newer ones.
        match stream.delete_consumer(CONSUMER).await {
            Ok(_) => {}
            Err(e) if not_found(&e) => {}
            Err(e) => return Err(super::refused("take the channel's consumer over", e)),
        }
        let c: consumer::PullConsumer = stream
            .create_consumer(consumer::pull::Config {
                durable_name: Some(CONSUMER.into()),
                ack_policy: consumer::AckPolicy::Explicit,
                ack_wait: self.ack_wait,
                max_ack_pending: self.capacity as i64,
                deliver_policy: consumer::DeliverPolicy::All,
                ..Default::default()
            })
            .await
            .map_err(|e| super::refused("make the channel's consumer", e))?;
        c.stream()
            .max_messages_per_batch(self.capacity.min(256))
            .max_bytes_per_batch(PULL_BYTES.max(self.stream_message_size() as usize + 2048))
            .heartbeat(self.outage.min(Duration::from_secs(5)) / 2)
            .expires(self.outage.min(Duration::from_secs(5)))
            .messages()
            .await
            .map_err(|e| super::refused("pull the channel's messages", e))
    }
}

fn not_found(e: &jetstream::stream::ConsumerError) -> bool {
    matches!(e.kind(), jetstream::stream::ConsumerErrorKind::JetStream(j)
        if j.error_code() == jetstream::ErrorCode::CONSUMER_NOT_FOUND)
}

impl NatsReceiver {
    /// The local receiving end (the same as `*self`).
    pub fn channel(&self) -> &RecvChannel {
        &self.end
    }

    /// Why the bridge stopped, if it failed.
    pub fn error(&self) -> Option<NatsError> {
        self.status.error()
    }

    /// Waits until the acks of the views released so far are with the
    /// server (each after what it waits for is stored), or `timeout`
    /// passes; whether they are. A process about to exit calls it so that
    /// what it released is not delivered again.
    pub fn flush(&self, timeout: Duration) -> bool {
        let (done, wait) = tokio::sync::oneshot::channel();
        if self.acks.tx.send(Ack::Flush(done)).is_err() {
            return false;
        }
        let link = &self.acks.link;
        link.rt
            .block_on(async { tokio::time::timeout(timeout, wait).await })
            .is_ok_and(|r| r.is_ok())
    }

    /// Makes the acks of this receiver's releases wait for `tx`: a message
    /// released from now on is acknowledged only once every message `tx`
    /// had accepted by then is stored (or never, if `tx`'s bridge fails:
    /// the message is delivered again to the next receiver).
    ///
    /// For a stage that receives, sends what it derives on `tx`, then
    /// releases: a stage killed at any point loses nothing, since what it
    /// had not passed on is delivered again (at-least-once end to end).
    /// A sender on this receiver's own subject is ignored (its room comes
    /// only from this receiver's acks). A cycle of stages so bound can stop
    /// for good when every stream in it is full; a process that only feeds
    /// a pipeline and collects its output does not bind the two.
    pub fn acks_after(&self, tx: &NatsSender) {
        let mut after = self.acks.after.lock();
        if !after.iter().any(|p| Arc::ptr_eq(p, &tx.progress)) {
            after.push(tx.progress.clone());
        }
    }

    /// How many messages the bridge skipped because they were larger than
    /// `max_message_bytes` (published by another client on the subject, or
    /// stored under other limits): each is terminated on the server, never
    /// delivered again.
    pub fn skipped(&self) -> u64 {
        self.status.skipped.load(Ordering::Relaxed)
    }
}

impl std::fmt::Debug for NatsReceiver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NatsReceiver")
            .field("end", &self.end)
            .field("error", &self.error())
            .finish()
    }
}

impl Deref for NatsReceiver {
    type Target = RecvChannel;
    fn deref(&self) -> &RecvChannel {
        &self.end
    }
}

/// Acknowledgements, sent by a task on the client's runtime: a released view
/// only queues its message's ack subject (a drop cannot wait).
#[derive(Clone)]
struct Acks {
    tx: mpsc::UnboundedSender<Ack>,
    /// While set, released views are not acknowledged: the bridge is
    /// dropping what it queued for receivers that are all gone.
    hold: Arc<AtomicBool>,
    link: Arc<Link>,
    /// The channel's subject.
    subject: Arc<str>,
    /// The send bridges whose progress a release's ack waits for.
    after: Arc<parking_lot::Mutex<Vec<Arc<Progress>>>>,
}

/// What the ack task is asked.
enum Ack {
    /// Acknowledge `reply` once the send bridges have stored what they had
    /// taken when the view was released (`after`).
    Released {
        reply: async_nats::Subject,
        after: Vec<(Arc<Progress>, u64)>,
    },
    /// Tell the caller once every ack queued before is with the server.
    Flush(tokio::sync::oneshot::Sender<()>),
}

impl Acks {
    fn start(nats: &Nats, subject: &str) -> Acks {
        let (tx, mut rx) = mpsc::unbounded_channel::<Ack>();
        let client = nats.inner.client.clone();
        nats.inner.rt.spawn(async move {
            while let Some(ack) = rx.recv().await {
                match ack {
                    Ack::Released { reply, after } => {
                        let mut stored = true;
                        for (p, n) in after {
                            stored &= p.stored(n).await;
                        }
                        // Unstored output: leave the input to be delivered
                        // again. A lost ack is a message delivered again too.
                        if stored {
                            let _ = client.publish(reply, Bytes::from_static(b"+ACK")).await;
                        }
                    }
                    Ack::Flush(done) => {
                        let _ = client.flush().await;
                        let _ = done.send(());
                    }
                }
            }
            let _ = client.flush().await;
        });
        Acks {
            tx,
            hold: Arc::new(AtomicBool::new(false)),
            link: nats.inner.clone(),
            subject: subject.into(),
            after: Arc::default(),
        }
    }
}

/// What a received view's bytes are made from: the NATS payload, and the
/// ack sent when the last reference to it goes.
struct Owner {
    payload: Bytes,
    reply: Option<async_nats::Subject>,
    acks: Acks,
}

impl AsRef<[u8]> for Owner {
    fn as_ref(&self) -> &[u8] {
        &self.payload
    }
}

impl Drop for Owner {
    fn drop(&mut self) {
        if let Some(reply) = self.reply.take()
            && !self.acks.hold.load(Ordering::Acquire)
        {
            let after = self
                .acks
                .after
                .lock()
                .iter()
                .filter_map(|p| p.mark(&self.acks.subject))
                .collect();
            let _ = self.acks.tx.send(Ack::Released { reply, after });
        }
    }
}

/// The bridge's state.
struct Pump {
    acks: Acks,
    status: Arc<Status>,
    max_message_bytes: usize,
    outage: Duration,
}

/// What to do after one step of the pull.
enum Step {
    Go,
    Stop,
}

impl Pump {
    async fn run(self, mut messages: consumer::pull::Stream, tx: SendChannel) {
        let mut high = 0u64;
        let mut failing: Option<Instant> = None;
        // One timer for the bridge, not one for each message.
        let mut idle = tokio::time::interval(IDLE_CHECK);
        idle.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let next = tokio::select! {
                biased;
                m = messages.next() => Ok(m),
                _ = idle.tick() => Err(()),
            };
            if !tx.core().has_receivers() {
                return self.abandon(tx);
            }
            let step = match next {
                Err(()) => self.check_outage(failing, "no message or heartbeat"),
                Ok(None) => self.fail(NatsError::Lost {
                    waited: Duration::ZERO,
                    reason: "the consumer's messages ended".into(),
                }),
                Ok(Some(Err(e)))
                    if e.kind() == consumer::pull::MessagesErrorKind::ConsumerDeleted =>
                {
                    self.fail(NatsError::TakenOver)
                }
                Ok(Some(Err(e))) => {
                    let since = *failing.get_or_insert_with(Instant::now);
                    self.check_outage(Some(since), &e.to_string())
                }
                Ok(Some(Ok(m))) => {
                    failing = None;
                    self.deliver(m, &mut high, &tx).await
                }
            };
            if let Step::Stop = step {
                tx.close();
                return;
            }
        }
    }

    /// Queues one message for the receivers, unless it is one this bridge
    /// queued already; the close marker closes the channel.
    async fn deliver(&self, m: jetstream::Message, high: &mut u64, tx: &SendChannel) -> Step {
        let Ok(seq) = m.info().map(|i| i.stream_sequence) else {
            return Step::Go;
        };
        if seq <= *high {
            // Held past ack_wait: keep it from expiring again.
            let _ = m.ack_with(AckKind::Progress).await;
            return Step::Go;
        }
        *high = seq;
        if m.headers
            .as_ref()
            .is_some_and(|h| h.get(CLOSE_HEADER).is_some())
        {
            // Left unacknowledged: a later receiver finds the channel closed too.
            return Step::Stop;
        }
        if m.payload.len() > self.max_message_bytes {
            self.status.skipped.fetch_add(1, Ordering::Relaxed);
            let _ = m.ack_with(AckKind::Term).await;
            return Step::Go;
        }
        let msg = m.message;
        let owner = Owner {
            payload: msg.payload,
            reply: msg.reply,
            acks: self.acks.clone(),
        };
        let view = Buffer::new(Bytes::from_owner(owner)).into_view();
        match tx.send(Message::View(view)) {
            Ok(()) => Step::Go,
            // The receivers are gone: the view comes back and is dropped
            // unacknowledged on the way out.
            Err(e) => {
                let _held = HoldAcks::new(&self.acks);
                drop(e);
                Step::Stop
            }
        }
    }

    fn check_outage(&self, failing: Option<Instant>, why: &str) -> Step {
        match failing {
            Some(since) if since.elapsed() >= self.outage => self.fail(NatsError::Lost {
                waited: since.elapsed(),
                reason: why.to_string(),
            }),
            _ => Step::Go,
        }
    }

    fn fail(&self, e: NatsError) -> Step {
        self.status.set(e);
        Step::Stop
    }

    /// Every receiving end is gone: drop what is queued without acking it,
    /// so that the next receiver gets it.
    fn abandon(self, tx: SendChannel) {
        let _held = HoldAcks::new(&self.acks);
        while let Ok(m) = tx.core().recv(Wait::NoWait) {
            drop(m);
        }
    }
}

/// Holds acks back while it lives.
struct HoldAcks<'a>(&'a Acks);

impl<'a> HoldAcks<'a> {
    fn new(acks: &'a Acks) -> Self {
        acks.hold.store(true, Ordering::Release);
        HoldAcks(acks)
    }
}

impl Drop for HoldAcks<'_> {
    fn drop(&mut self) {
        self.0.hold.store(false, Ordering::Release);
    }
}
