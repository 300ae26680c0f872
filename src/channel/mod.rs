//! Channels: bounded queues of immutable buffers (and channel ends) between
//! interpreters and the host.
//!
//! [`create_channel`](crate::Host::create_channel) returns a
//! ([`RecvChannel`], [`SendChannel`]) pair, receiving end first as in PEP 554.
//! Ends are capabilities: they can be cloned, passed to several interpreters,
//! and sent over channels themselves. A channel lives while any end of it
//! does; the messages queued in it belong to the host, so they outlive the
//! interpreter that sent them.

mod error;
mod grave;
mod queue;
mod registry;
mod select;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

pub use self::error::{
    RecvError, RecvTimeoutError, RecvViewError, SendError, SendTimeoutError, TryRecvError,
    TrySendError,
};
pub(crate) use self::queue::{Core, RecvFail, SendFail, Wait};
pub(crate) use self::registry::Registry;
pub(crate) use self::select::{SelectFail, Side, select};

use crate::buffer::{Buffer, View};

/// A channel's id, unique within a [`Host`](crate::Host).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ChannelId(pub u64);

impl fmt::Display for ChannelId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "channel {}", self.0)
    }
}

/// What travels through a channel: a view of a buffer, or a channel end.
#[derive(Debug, Clone)]
pub enum Message {
    /// Bytes (a read-only view of an immutable buffer).
    View(View),
    /// A receiving end (a capability to receive).
    Recv(RecvChannel),
    /// A sending end (a capability to send).
    Send(SendChannel),
}

impl Message {
    /// The number of bytes the message counts against a channel's limit
    /// (channel ends count as 0).
    pub fn byte_len(&self) -> usize {
        match self {
            Message::View(v) => v.len(),
            _ => 0,
        }
    }

    /// The view, if the message carries bytes.
    pub fn into_view(self) -> Option<View> {
        match self {
            Message::View(v) => Some(v),
            _ => None,
        }
    }

    /// The view, if the message carries bytes.
    pub fn as_view(&self) -> Option<&View> {
        match self {
            Message::View(v) => Some(v),
            _ => None,
        }
    }
}

impl From<View> for Message {
    fn from(v: View) -> Self {
        Message::View(v)
    }
}
impl From<Buffer> for Message {
    fn from(b: Buffer) -> Self {
        Message::View(b.view())
    }
}
impl From<Bytes> for Message {
    fn from(b: Bytes) -> Self {
        Message::View(Buffer::new(b).view())
    }
}
impl From<Vec<u8>> for Message {
    fn from(b: Vec<u8>) -> Self {
        Message::View(Buffer::new(b).view())
    }
}
impl From<&'static str> for Message {
    fn from(s: &'static str) -> Self {
        Message::View(Buffer::from(s).view())
    }
}
impl From<String> for Message {
    fn from(s: String) -> Self {
        Message::View(Buffer::from(s).view())
    }
}
impl From<RecvChannel> for Message {
    fn from(e: RecvChannel) -> Self {
        Message::Recv(e)
    }
}
impl From<SendChannel> for Message {
    fn from(e: SendChannel) -> Self {
        Message::Send(e)
    }
}

/// The receiving end of a channel.
///
/// Cloning makes another receiving end of the same channel (many receivers
/// may share one channel; each message goes to exactly one of them).
/// Dropping an end, or [`release`](Self::release), lets go of it.
pub struct RecvChannel {
    core: Arc<Core>,
}

/// The sending end of a channel.
///
/// Cloning makes another sending end; when the last sending end is gone the
/// receivers drain what is queued and then see "closed".
pub struct SendChannel {
    core: Arc<Core>,
}

fn new_pair(core: Arc<Core>) -> (RecvChannel, SendChannel) {
    (
        RecvChannel::from_core(core.clone()),
        SendChannel::from_core(core),
    )
}

impl RecvChannel {
    fn from_core(core: Arc<Core>) -> Self {
        core.add_end(false);
        RecvChannel { core }
    }

    pub(crate) fn core(&self) -> &Arc<Core> {
        &self.core
    }

    /// The channel's id.
    pub fn id(&self) -> ChannelId {
        ChannelId(self.core.id)
    }

    /// Messages queued right now.
    pub fn len(&self) -> usize {
        self.core.len()
    }

    /// Whether nothing is queued right now.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Receives the oldest message, blocking while the channel is empty.
    ///
    /// # Errors
    /// [`RecvError::Closed`] once the channel is closed (or has no sending end
    /// left) and everything queued has been received.
    pub fn recv(&self) -> Result<Message, RecvError> {
        self.core
            .recv(Wait::forever())
            .map_err(|_| RecvError::Closed)
    }

    /// Receives the oldest message and insists it is bytes: the common case
    /// of a channel that carries data, without a `match`.
    ///
    /// # Errors
    /// [`RecvViewError::Closed`] as [`recv`](Self::recv);
    /// [`RecvViewError::NotBytes`] (with the message) when a channel end
    /// arrived instead, which a guest may send.
    pub fn recv_view(&self) -> Result<View, RecvViewError> {
        match self.recv() {
            Ok(Message::View(v)) => Ok(v),
            Ok(other) => Err(RecvViewError::NotBytes(other)),
            Err(RecvError::Closed) => Err(RecvViewError::Closed),
        }
    }

    /// The messages as they arrive, blocking for each, until the channel is
    /// closed and drained.
    pub fn iter(&self) -> impl Iterator<Item = Message> + '_ {
        std::iter::from_fn(move || self.recv().ok())
    }

    /// Receives the oldest message if one is queued, without blocking.
    ///
    /// ```
    /// # let host = subinterp::Host::builder().pool_size(0).build().unwrap();
    /// use subinterp::TryRecvError;
    /// let (rx, tx) = host.create_channel(1);
    /// assert_eq!(rx.recv_nowait().unwrap_err(), TryRecvError::Empty);
    /// tx.send("hi").unwrap();
    /// assert_eq!(&*rx.recv_nowait().unwrap().into_view().unwrap(), b"hi");
    /// tx.close();
    /// assert_eq!(rx.recv_nowait().unwrap_err(), TryRecvError::Closed);
    /// ```
    ///
    /// # Errors
    /// [`TryRecvError::Empty`] when nothing is queued, [`TryRecvError::Closed`]
    /// when the channel is closed and drained.
    pub fn recv_nowait(&self) -> Result<Message, TryRecvError> {
        self.core.recv(Wait::NoWait).map_err(|e| match e {
            RecvFail::Empty => TryRecvError::Empty,
            _ => TryRecvError::Closed,
        })
    }

    /// Receives, waiting at most `timeout`.
    ///
    /// # Errors
    /// [`RecvTimeoutError::Timeout`] when nothing arrived in time,
    /// [`RecvTimeoutError::Closed`] when the channel is closed and drained.
    pub fn recv_timeout(&self, timeout: Duration) -> Result<Message, RecvTimeoutError> {
        self.core.recv(Wait::timeout(timeout)).map_err(|e| match e {
            RecvFail::Closed => RecvTimeoutError::Closed,
            _ => RecvTimeoutError::Timeout,
        })
    }

    /// Lets go of this end (the same as dropping it).
    pub fn release(self) {}
}

impl SendChannel {
    fn from_core(core: Arc<Core>) -> Self {
        core.add_end(true);
        SendChannel { core }
    }

    pub(crate) fn core(&self) -> &Arc<Core> {
        &self.core
    }

    /// The channel's id.
    pub fn id(&self) -> ChannelId {
        ChannelId(self.core.id)
    }

    /// Sends a message, blocking while the channel is full (capacity 0: until
    /// a receiver takes it). A host sending [`Bytes`] copies nothing.
    ///
    /// # Errors
    /// [`SendError::Closed`] when the channel is closed or has no receiving end
    /// left; [`SendError::TooLarge`] when the message alone exceeds the
    /// channel's queued-bytes limit. Either way the message comes back.
    pub fn send(&self, msg: impl Into<Message>) -> Result<(), SendError<Message>> {
        self.core
            .send(msg.into(), None, Wait::forever())
            .map_err(|(fail, m)| match fail {
                SendFail::TooLarge(limit) => SendError::TooLarge { message: m, limit },
                _ => SendError::Closed(m),
            })
    }

    /// Sends without blocking; `Ok` means the message was queued (capacity 0:
    /// handed to a receiver that was already waiting).
    ///
    /// # Errors
    /// [`TrySendError::Full`], [`TrySendError::Closed`] or
    /// [`TrySendError::TooLarge`], with the message given back.
    pub fn send_nowait(&self, msg: impl Into<Message>) -> Result<(), TrySendError<Message>> {
        self.core
            .send(msg.into(), None, Wait::NoWait)
            .map_err(|(fail, m)| match fail {
                SendFail::Closed => TrySendError::Closed(m),
                SendFail::TooLarge(limit) => TrySendError::TooLarge { message: m, limit },
                _ => TrySendError::Full(m),
            })
    }

    /// Sends, waiting at most `timeout` for room.
    ///
    /// # Errors
    /// [`SendTimeoutError::Timeout`], [`SendTimeoutError::Closed`] or
    /// [`SendTimeoutError::TooLarge`], with the message given back.
    pub fn send_timeout(
        &self,
        msg: impl Into<Message>,
        timeout: Duration,
    ) -> Result<(), SendTimeoutError<Message>> {
        self.core
            .send(msg.into(), None, Wait::timeout(timeout))
            .map_err(|(fail, m)| match fail {
                SendFail::Closed => SendTimeoutError::Closed(m),
                SendFail::TooLarge(limit) => SendTimeoutError::TooLarge { message: m, limit },
                _ => SendTimeoutError::Timeout(m),
            })
    }

    /// Closes the channel for every sender: queued messages can still be
    /// received, then receivers get "closed".
    pub fn close(&self) {
        self.core.close();
    }

    /// Whether the channel has been closed.
    pub fn is_closed(&self) -> bool {
        self.core.is_closed()
    }

    /// Lets go of this end (the same as dropping it).
    pub fn release(self) {}
}

impl Clone for RecvChannel {
    fn clone(&self) -> Self {
        RecvChannel::from_core(self.core.clone())
    }
}

impl Clone for SendChannel {
    fn clone(&self) -> Self {
        SendChannel::from_core(self.core.clone())
    }
}

impl Drop for RecvChannel {
    fn drop(&mut self) {
        self.core.drop_end(false);
    }
}

impl Drop for SendChannel {
    fn drop(&mut self) {
        self.core.drop_end(true);
    }
}

impl fmt::Debug for RecvChannel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RecvChannel({})", self.core.id)
    }
}

impl fmt::Debug for SendChannel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SendChannel({})", self.core.id)
    }
}

/// A channel end handed to a run by name.
#[derive(Debug, Clone)]
pub enum ChannelEnd {
    /// A receiving end.
    Recv(RecvChannel),
    /// A sending end.
    Send(SendChannel),
}

impl From<RecvChannel> for ChannelEnd {
    fn from(e: RecvChannel) -> Self {
        ChannelEnd::Recv(e)
    }
}

impl From<SendChannel> for ChannelEnd {
    fn from(e: SendChannel) -> Self {
        ChannelEnd::Send(e)
    }
}
