//! Channels carried by NATS JetStream between processes and machines
//! (feature `nats`, on with `cli`).
//!
//! A NATS channel is a JetStream stream bound to one subject. Each side
//! holds an ordinary local channel end whose other end is a host *bridge*:
//!
//! ```text
//!  process A                                      process B
//!  guest ─send─▶ SendChannel ▶ send bridge ──publish──▶ stream ──pull──▶ recv bridge ▶ RecvChannel ─recv─▶ guest
//!               (window W)     (W in flight,       (work queue,        (dedupes by    (queue of
//!                               each expects the    max_msgs, discard   stream seq)    delivered views)
//!                               one before it)      new)                   ◀──ack── when the view is released
//! ```
//!
//! - Back-pressure: the stream holds at most `capacity` messages, counting
//!   those delivered but not yet released; a publish to a full stream is
//!   refused and the send bridge tries again, so the guest's `send` blocks
//!   as on a full local channel (the bridge holds up to 2·W more, W =
//!   `capacity` at most 128).
//! - Order: the send bridge keeps up to W messages in flight; each after the
//!   first carries `Nats-Expected-Last-Msg-Id` naming the one before, so the
//!   stream stores it only right behind it. A refusal (full stream, another
//!   sender's message in between, outage) refuses every message behind it
//!   too, and the bridge publishes again from the refused one. Several
//!   senders on one subject each keep their order; while they interleave,
//!   they mostly have one message in flight each.
//! - Release: a received view is a [`View`](crate::View) of the NATS
//!   payload itself (no copy); the message is acknowledged when the last
//!   reference to it goes, so a message a receiving process held when it
//!   died is delivered again, to the next receiver, in stream order.
//! - Pipelines: a stage that receives, sends on, then releases is
//!   at-least-once end to end when its receiver's acks wait on its sender
//!   ([`NatsReceiver::acks_after`]): a release's ack waits until every
//!   message that sender had accepted by then is stored. Only what is bound
//!   so waits: a process that feeds a ring and collects from it (a driver)
//!   must not, or the ring's full streams would wait on each other.
//! - Close: a sender's close (or the last sending end released) publishes a
//!   close marker behind the data; the receiver drains, then gets "closed".
//!   The marker stays in the stream: the channel stays closed. With several
//!   sending processes, all but the last [`NatsSender::leave`] (no marker).
//! - Outage: a bridge that cannot reach the server for the outage limit
//!   closes its end; `error()` says why.
//!
//! ```no_run
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let host = subinterp::Host::new()?;
//! let nats = subinterp::nats::Nats::connect("nats://127.0.0.1:4222")?;
//! let tx = nats.channel(&host, "jobs").capacity(1000).sender()?;
//! tx.send("hello")?;
//! tx.finish()?; // everything stored, the close published
//! # Ok(()) }
//! ```

mod error;
mod recv;
mod send;

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::{self, stream};
use sha2::{Digest, Sha256};

pub use self::error::NatsError;
pub use self::recv::NatsReceiver;
pub use self::send::NatsSender;
/// The NATS client this module is built on, for [`Nats::connect_with`].
pub use async_nats;

use crate::host::Host;

/// A channel's default capacity (messages in its stream).
pub const DEFAULT_CAPACITY: usize = 1024;
/// A channel's default largest message, in bytes (NATS's default
/// `max_payload` is 1 MiB, headers included).
pub const DEFAULT_MAX_MESSAGE_BYTES: usize = 1 << 19;
/// How long a bridge waits for the server before it gives up.
pub const DEFAULT_OUTAGE: Duration = Duration::from_secs(10);
/// How long the server waits for a received message's ack before it
/// delivers it again (a live receiver keeps held messages from expiring).
pub const DEFAULT_ACK_WAIT: Duration = Duration::from_secs(30);

/// The header that marks a channel's close.
const CLOSE_HEADER: &str = "Subinterp-Close";
/// The durable consumer of a channel's stream.
const CONSUMER: &str = "subinterp-recv";

/// What a bridge reports to its owner: why it stopped (or the last message
/// it had to drop), and how many received messages it skipped.
#[derive(Debug, Default)]
struct Status {
    error: parking_lot::Mutex<Option<NatsError>>,
    skipped: std::sync::atomic::AtomicU64,
    /// A send bridge's end closes without a close marker (`leave`).
    leaving: std::sync::atomic::AtomicBool,
}

impl Status {
    fn set(&self, e: NatsError) {
        *self.error.lock() = Some(e);
    }

    fn error(&self) -> Option<NatsError> {
        self.error.lock().clone()
    }
}

/// A connection to a NATS server (with JetStream), shared by the channels
/// bound through it. It owns a small runtime for the client.
#[derive(Clone)]
pub struct Nats {
    inner: Arc<Link>,
}

struct Link {
    rt: tokio::runtime::Runtime,
    client: async_nats::Client,
    url: String,
}

impl Nats {
    /// Connects to `url` (`nats://HOST:PORT`).
    ///
    /// # Errors
    /// [`NatsError::Unreachable`] when no server answers.
    pub fn connect(url: &str) -> Result<Nats, NatsError> {
        Nats::connect_with(url, async_nats::ConnectOptions::new())
    }

    /// Connects with the client's own options (credentials, TLS, name).
    ///
    /// # Errors
    /// [`NatsError::Unreachable`] when no server answers or the login fails.
    pub fn connect_with(url: &str, options: async_nats::ConnectOptions) -> Result<Nats, NatsError> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("subinterp-nats")
            .enable_all()
            .build()
            .map_err(|e| unreachable(url, e))?;
        let options = options.connection_timeout(Duration::from_secs(5));
        let client = rt
            .block_on(options.connect(url))
            .map_err(|e| unreachable(url, e))?;
        Ok(Nats {
            inner: Arc::new(Link {
                rt,
                client,
                url: url.to_string(),
            }),
        })
    }

    /// Starts binding a channel to `subject`; finish with
    /// [`sender`](NatsChannel::sender) or [`receiver`](NatsChannel::receiver).
    pub fn channel<'a>(&self, host: &'a Host, subject: &str) -> NatsChannel<'a> {
        NatsChannel {
            nats: self.clone(),
            host,
            subject: subject.to_string(),
            capacity: DEFAULT_CAPACITY,
            max_message_bytes: DEFAULT_MAX_MESSAGE_BYTES,
            outage: DEFAULT_OUTAGE,
            ack_wait: DEFAULT_ACK_WAIT,
            memory: false,
        }
    }

    /// Deletes the stream of the channel bound to `subject` (its messages and
    /// its close), so that the subject can carry a new channel.
    ///
    /// # Errors
    /// [`NatsError::InvalidSubject`]; [`NatsError::Refused`] when the server
    /// refuses (a stream that does not exist is not an error).
    pub fn delete_channel(&self, subject: &str) -> Result<(), NatsError> {
        check_subject(subject)?;
        let js = {
            let _in = self.inner.rt.enter();
            jetstream::new(self.inner.client.clone())
        };
        let name = stream_name(subject);
        self.inner.rt.block_on(async {
            match js.delete_stream(&name).await {
                Ok(_) => Ok(()),
                Err(e) => match e.kind() {
                    jetstream::context::GetStreamErrorKind::JetStream(j)
                        if j.error_code() == jetstream::ErrorCode::STREAM_NOT_FOUND =>
                    {
                        Ok(())
                    }
                    _ => Err(refused("delete the stream", e)),
                },
            }
        })
    }

    fn handle(&self) -> tokio::runtime::Handle {
        self.inner.rt.handle().clone()
    }
}

impl std::fmt::Debug for Nats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Nats({})", self.inner.url)
    }
}

/// A channel being bound to a subject: its limits, then a side.
#[derive(Debug)]
pub struct NatsChannel<'a> {
    nats: Nats,
    host: &'a Host,
    subject: String,
    capacity: usize,
    max_message_bytes: usize,
    outage: Duration,
    ack_wait: Duration,
    memory: bool,
}

impl NatsChannel<'_> {
    /// How many messages the stream holds, delivered-but-unreleased ones
    /// included ([`DEFAULT_CAPACITY`]); at least 1. Both sides must agree.
    pub fn capacity(mut self, n: usize) -> Self {
        self.capacity = n;
        self
    }

    /// The largest message, in bytes ([`DEFAULT_MAX_MESSAGE_BYTES`]): a
    /// larger send fails with `TooLarge`, as on a local channel.
    pub fn max_message_bytes(mut self, n: usize) -> Self {
        self.max_message_bytes = n;
        self
    }

    /// How long a bridge waits for the server before it closes its end
    /// ([`DEFAULT_OUTAGE`]).
    pub fn outage(mut self, d: Duration) -> Self {
        self.outage = d;
        self
    }

    /// How long the server waits for an ack before delivering a message again
    /// ([`DEFAULT_ACK_WAIT`]; only matters for a receiver that stalls).
    pub fn ack_wait(mut self, d: Duration) -> Self {
        self.ack_wait = d;
        self
    }

    /// Keeps the stream in the server's memory rather than on its disk
    /// (faster; lost when the server restarts).
    pub fn in_memory(mut self) -> Self {
        self.memory = true;
        self
    }

    /// Makes (or finds) the channel's stream.
    async fn stream(&self, js: &jetstream::Context) -> Result<stream::Stream, NatsError> {
        let name = stream_name(&self.subject);
        let config = stream::Config {
            name: name.clone(),
            subjects: vec![self.subject.clone()],
            retention: stream::RetentionPolicy::WorkQueue,
            discard: stream::DiscardPolicy::New,
            max_messages: self.capacity as i64,
            max_message_size: self.stream_message_size(),
            storage: if self.memory {
                stream::StorageType::Memory
            } else {
                stream::StorageType::File
            },
            ..Default::default()
        };
        let mut s = js
            .get_or_create_stream(config)
            .await
            .map_err(|e| match e.kind() {
                jetstream::context::CreateStreamErrorKind::JetStreamUnavailable => {
                    NatsError::NoJetStream(e.to_string())
                }
                _ => refused("make the channel's stream", e),
            })?;
        let c = &s
            .info()
            .await
            .map_err(|e| refused("read the stream", e))?
            .config;
        if c.max_messages != self.capacity as i64
            || c.max_message_size != self.stream_message_size()
        {
            return Err(NatsError::StreamMismatch {
                stream: name,
                capacity: c.max_messages,
                max_message_bytes: c.max_message_size - send::HEADER_ROOM as i32,
            });
        }
        Ok(s)
    }

    /// The stream's `max_msg_size`: a message with the bridge's headers.
    pub(super) fn stream_message_size(&self) -> i32 {
        (self.max_message_bytes + send::HEADER_ROOM) as i32
    }

    fn check(&self) -> Result<(), NatsError> {
        check_subject(&self.subject)?;
        if self.capacity == 0 || i64::try_from(self.capacity).is_err() {
            return Err(NatsError::InvalidLimit("capacity must be 1 or more"));
        }
        if self.max_message_bytes == 0 || self.max_message_bytes > 1 << 30 {
            return Err(NatsError::InvalidLimit(
                "max_message_bytes must be 1 to 2^30",
            ));
        }
        if self.outage.is_zero() || self.ack_wait.is_zero() {
            return Err(NatsError::InvalidLimit(
                "outage and ack_wait must be more than 0",
            ));
        }
        Ok(())
    }
}

/// Whether `subject` can name a channel: dot-separated tokens of printable
/// ASCII, no wildcards, at most 255 bytes.
fn check_subject(subject: &str) -> Result<(), NatsError> {
    let bad = |why| {
        Err(NatsError::InvalidSubject {
            subject: subject.to_string(),
            why,
        })
    };
    if subject.is_empty() || subject.len() > 255 {
        return bad("it must be 1 to 255 bytes");
    }
    if !subject.bytes().all(|b| b.is_ascii_graphic()) {
        return bad("it must be printable ASCII without spaces");
    }
    if subject.split('.').any(str::is_empty) {
        return bad("it has an empty token");
    }
    if subject.split('.').any(|t| t == "*" || t == ">") || subject.contains(['*', '>']) {
        return bad("wildcards cannot name a channel");
    }
    if subject.starts_with("$") || subject.starts_with("_INBOX.") {
        return bad("the server's own subjects cannot name a channel");
    }
    Ok(())
}

/// The stream of the channel on `subject`: readable, and distinct for
/// distinct subjects.
fn stream_name(subject: &str) -> String {
    let clean: String = subject
        .chars()
        .take(32)
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    let hash = Sha256::digest(subject.as_bytes());
    let tag: String = hash[..6].iter().map(|b| format!("{b:02x}")).collect();
    format!("subinterp-ch-{clean}-{tag}")
}

fn unreachable(url: &str, e: impl std::fmt::Display) -> NatsError {
    NatsError::Unreachable {
        url: url.to_string(),
        reason: e.to_string(),
    }
}

fn refused(action: &'static str, e: impl std::fmt::Display) -> NatsError {
    NatsError::Refused {
        action,
        reason: e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects_are_checked() {
        for ok in ["jobs", "a.b.c", "orders-2026_x"] {
            assert!(check_subject(ok).is_ok(), "{ok}");
        }
        for bad in [
            "", "a..b", ".a", "a.", "a.*", "a.>", "a b", "$JS.API", "é", "a*b",
        ] {
            assert!(
                matches!(check_subject(bad), Err(NatsError::InvalidSubject { .. })),
                "{bad}"
            );
        }
        assert!(check_subject(&"x".repeat(256)).is_err());
    }

    #[test]
    fn stream_names_are_distinct_and_valid() {
        let (a, b) = (stream_name("a.b"), stream_name("a_b"));
        assert_ne!(a, b);
        assert!(a.starts_with("subinterp-ch-a_b-"));
        assert!(
            stream_name(&"y.".repeat(100))
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
        );
    }
}
