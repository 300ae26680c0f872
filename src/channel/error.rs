//! One error type per channel operation, in the manner of `crossbeam-channel`.
//!
//! A failed send always gives the message back.

use std::fmt;

macro_rules! send_error_common {
    ($name:ident) => {
        impl<T> $name<T> {
            /// Returns the message that could not be sent.
            pub fn into_inner(self) -> T {
                self.into_parts().1
            }
        }

        impl<T> fmt::Debug for $name<T> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(self, f)
            }
        }

        impl<T> std::error::Error for $name<T> {}
    };
}

/// Why a blocking [`send`](crate::SendChannel::send) failed.
pub enum SendError<T> {
    /// The channel was closed, or every receiving end is gone.
    Closed(T),
    /// The message alone is larger than the channel's queued-bytes limit.
    TooLarge {
        /// The message.
        message: T,
        /// The channel's limit on queued bytes.
        limit: usize,
    },
}

impl<T> SendError<T> {
    fn into_parts(self) -> (&'static str, T) {
        match self {
            SendError::Closed(m) => ("closed", m),
            SendError::TooLarge { message, .. } => ("too large", message),
        }
    }
}

impl<T> fmt::Display for SendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SendError::Closed(_) => f.write_str("sending on a closed channel"),
            SendError::TooLarge { limit, .. } => {
                write!(
                    f,
                    "message larger than the channel's queued-bytes limit ({limit} bytes)"
                )
            }
        }
    }
}
send_error_common!(SendError);

/// Why [`send_nowait`](crate::SendChannel::send_nowait) did not queue the message.
pub enum TrySendError<T> {
    /// The channel is full (capacity 0: no receiver is waiting).
    Full(T),
    /// The channel was closed, or every receiving end is gone.
    Closed(T),
    /// The message alone is larger than the channel's queued-bytes limit.
    TooLarge {
        /// The message.
        message: T,
        /// The channel's limit on queued bytes.
        limit: usize,
    },
}

impl<T> TrySendError<T> {
    fn into_parts(self) -> (&'static str, T) {
        match self {
            TrySendError::Full(m) => ("full", m),
            TrySendError::Closed(m) => ("closed", m),
            TrySendError::TooLarge { message, .. } => ("too large", message),
        }
    }

    /// Whether the channel was full.
    pub fn is_full(&self) -> bool {
        matches!(self, TrySendError::Full(_))
    }
}

impl<T> fmt::Display for TrySendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TrySendError::Full(_) => f.write_str("sending on a full channel"),
            TrySendError::Closed(_) => f.write_str("sending on a closed channel"),
            TrySendError::TooLarge { limit, .. } => {
                write!(
                    f,
                    "message larger than the channel's queued-bytes limit ({limit} bytes)"
                )
            }
        }
    }
}
send_error_common!(TrySendError);

/// Why [`send_timeout`](crate::SendChannel::send_timeout) failed.
pub enum SendTimeoutError<T> {
    /// The channel stayed full until the timeout.
    Timeout(T),
    /// The channel was closed, or every receiving end is gone.
    Closed(T),
    /// The message alone is larger than the channel's queued-bytes limit.
    TooLarge {
        /// The message.
        message: T,
        /// The channel's limit on queued bytes.
        limit: usize,
    },
}

impl<T> SendTimeoutError<T> {
    fn into_parts(self) -> (&'static str, T) {
        match self {
            SendTimeoutError::Timeout(m) => ("timeout", m),
            SendTimeoutError::Closed(m) => ("closed", m),
            SendTimeoutError::TooLarge { message, .. } => ("too large", message),
        }
    }
}

impl<T> fmt::Display for SendTimeoutError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SendTimeoutError::Timeout(_) => f.write_str("timed out sending on a full channel"),
            SendTimeoutError::Closed(_) => f.write_str("sending on a closed channel"),
            SendTimeoutError::TooLarge { limit, .. } => {
                write!(
                    f,
                    "message larger than the channel's queued-bytes limit ({limit} bytes)"
                )
            }
        }
    }
}
send_error_common!(SendTimeoutError);

/// Why a blocking [`recv`](crate::RecvChannel::recv) failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecvError {
    /// The channel is closed (or has no sending end left) and empty.
    Closed,
}

impl fmt::Display for RecvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("receiving on a closed and empty channel")
    }
}
impl std::error::Error for RecvError {}

/// Why [`recv_view`](crate::RecvChannel::recv_view) returned no bytes.
#[derive(Debug, Clone)]
pub enum RecvViewError {
    /// The channel is closed (or has no sending end left) and empty.
    Closed,
    /// A channel end arrived, not bytes; here it is.
    NotBytes(crate::channel::Message),
}

impl fmt::Display for RecvViewError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RecvViewError::Closed => f.write_str("receiving on a closed and empty channel"),
            RecvViewError::NotBytes(_) => {
                f.write_str("a channel end arrived where bytes were expected")
            }
        }
    }
}
impl std::error::Error for RecvViewError {}

/// Why [`recv_nowait`](crate::RecvChannel::recv_nowait) returned nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TryRecvError {
    /// Nothing is queued right now.
    Empty,
    /// The channel is closed (or has no sending end left) and empty.
    Closed,
}

impl fmt::Display for TryRecvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TryRecvError::Empty => f.write_str("receiving on an empty channel"),
            TryRecvError::Closed => f.write_str("receiving on a closed and empty channel"),
        }
    }
}
impl std::error::Error for TryRecvError {}

/// Why [`recv_timeout`](crate::RecvChannel::recv_timeout) failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecvTimeoutError {
    /// Nothing arrived before the timeout.
    Timeout,
    /// The channel is closed (or has no sending end left) and empty.
    Closed,
}

impl fmt::Display for RecvTimeoutError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RecvTimeoutError::Timeout => f.write_str("timed out receiving on an empty channel"),
            RecvTimeoutError::Closed => f.write_str("receiving on a closed and empty channel"),
        }
    }
}
impl std::error::Error for RecvTimeoutError {}
