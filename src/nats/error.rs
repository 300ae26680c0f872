//! What can go wrong with a channel carried by NATS.

use std::time::Duration;

/// Why a NATS channel could not be set up, or why its bridge stopped.
///
/// A bridge that stops closes its local end (the guest sees "closed", as
/// from a sender's close); [`NatsSender::error`](super::NatsSender::error)
/// and [`NatsReceiver::error`](super::NatsReceiver::error) say why.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum NatsError {
    /// No server answered at the address (or it refused the login).
    #[error("cannot reach the NATS server at {url}: {reason}")]
    Unreachable {
        /// The address.
        url: String,
        /// The client's explanation.
        reason: String,
    },
    /// The server has no JetStream (start it with `-js`).
    #[error("the NATS server has no JetStream (start it with -js): {0}")]
    NoJetStream(String),
    /// The subject cannot name a channel.
    #[error("invalid channel subject {subject:?}: {why}")]
    InvalidSubject {
        /// The subject.
        subject: String,
        /// What is wrong with it.
        why: &'static str,
    },
    /// A limit asked of the channel is out of range.
    #[error("invalid channel limit: {0}")]
    InvalidLimit(&'static str),
    /// The channel's stream exists with other limits than the ones asked.
    #[error(
        "the stream {stream} exists with other limits (capacity {capacity}, max message {max_message_bytes} bytes): open it with those, or delete it"
    )]
    StreamMismatch {
        /// The stream.
        stream: String,
        /// Its `max_msgs`.
        capacity: i64,
        /// Its `max_msg_size`.
        max_message_bytes: i32,
    },
    /// The server refused a stream or consumer operation.
    #[error("the NATS server refused to {action}: {reason}")]
    Refused {
        /// What was asked.
        action: &'static str,
        /// The server's or client's explanation.
        reason: String,
    },
    /// The connection was lost mid-stream (no answer within the outage limit).
    #[error("lost the NATS server: no answer for {waited:?} ({reason})")]
    Lost {
        /// How long the bridge waited.
        waited: Duration,
        /// The client's explanation.
        reason: String,
    },
    /// Another receiver took the channel over (a receiving process bound the
    /// same subject after this one).
    #[error("another receiver took the channel over")]
    TakenOver,
    /// A channel end was sent on a NATS channel: only bytes cross machines.
    /// The message was dropped.
    #[error("a channel end cannot be sent across machines (only bytes can): dropped")]
    NotBytes,
}
