//! Immutable buffers and the read-only views receivers get.

use std::fmt;
use std::ops::{Deref, Range};

use bytes::Bytes;

/// An immutable byte buffer owned by the host.
///
/// A `Buffer` is a reference-counted [`Bytes`]: cloning it, queueing it in a
/// channel or forwarding it to another interpreter moves a reference count,
/// never the bytes. No interpreter can change it once it exists; the only
/// copies of its bytes are made at the guest-memory boundary (a guest's
/// `send` copies in once, a guest's `read` copies out only the range asked
/// for).
///
/// ```text
///  sender guest ──copy──▶ Buffer ◀── View (queue) ◀── View (receiver A)
///                           ▲
///                           └─────── View (slice held by receiver B)
/// ```
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Buffer {
    bytes: Bytes,
}

impl Buffer {
    /// Wraps `bytes` without copying them.
    pub fn new(bytes: impl Into<Bytes>) -> Self {
        Buffer {
            bytes: bytes.into(),
        }
    }

    /// Copies `data` into a new buffer.
    pub fn copy_from_slice(data: &[u8]) -> Self {
        Buffer::new(Bytes::copy_from_slice(data))
    }

    /// The number of bytes in the buffer.
    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    /// Whether the buffer holds no bytes.
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// A view of the whole buffer.
    pub fn view(&self) -> View {
        View {
            bytes: self.bytes.clone(),
        }
    }

    /// A view of the whole buffer, consuming the buffer (no reference-count
    /// traffic at all).
    pub fn into_view(self) -> View {
        View { bytes: self.bytes }
    }

    /// The bytes, shared (no copy).
    pub fn as_bytes(&self) -> &Bytes {
        &self.bytes
    }

    /// Returns the underlying [`Bytes`] (no copy).
    pub fn into_inner(self) -> Bytes {
        self.bytes
    }
}

impl fmt::Debug for Buffer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Buffer").field("len", &self.len()).finish()
    }
}

impl From<Bytes> for Buffer {
    fn from(bytes: Bytes) -> Self {
        Buffer::new(bytes)
    }
}

impl From<Vec<u8>> for Buffer {
    fn from(v: Vec<u8>) -> Self {
        Buffer::new(v)
    }
}

impl From<&'static [u8]> for Buffer {
    fn from(s: &'static [u8]) -> Self {
        Buffer::new(Bytes::from_static(s))
    }
}

impl From<&'static str> for Buffer {
    fn from(s: &'static str) -> Self {
        Buffer::new(Bytes::from_static(s.as_bytes()))
    }
}

impl From<String> for Buffer {
    fn from(s: String) -> Self {
        Buffer::new(s.into_bytes())
    }
}

/// A borrowed, read-only window (offset, length) on a [`Buffer`].
///
/// A view keeps its buffer alive; slicing a view makes a new view of the same
/// memory. A host that sends a `Bytes` and receives the resulting view sees
/// the same memory: `view.as_ptr()` equals the pointer it sent.
///
/// ```
/// use subinterp::Buffer;
/// let buf = Buffer::from("hello world");
/// let view = buf.view().slice(6..11).unwrap();
/// assert_eq!(&*view, b"world");
/// assert!(buf.view().slice(3..20).is_none());
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct View {
    bytes: Bytes,
}

impl View {
    /// The bytes as UTF-8 text (borrowed, no copy).
    ///
    /// # Errors
    /// When they are not valid UTF-8.
    pub fn text(&self) -> Result<&str, std::str::Utf8Error> {
        std::str::from_utf8(&self.bytes)
    }

    /// The number of bytes visible through the view.
    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    /// Whether the view shows no bytes.
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// A narrower view of the same memory, or `None` when `range` does not fit.
    pub fn slice(&self, range: Range<usize>) -> Option<View> {
        if range.start > range.end || range.end > self.len() {
            return None;
        }
        Some(View {
            bytes: self.bytes.slice(range),
        })
    }

    /// The viewed bytes as a shared [`Bytes`] (no copy).
    pub fn as_bytes(&self) -> &Bytes {
        &self.bytes
    }

    /// Returns the viewed bytes as a [`Bytes`] (no copy).
    pub fn into_bytes(self) -> Bytes {
        self.bytes
    }
}

impl Deref for View {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.bytes
    }
}

impl AsRef<[u8]> for View {
    fn as_ref(&self) -> &[u8] {
        &self.bytes
    }
}

impl From<Buffer> for View {
    fn from(b: Buffer) -> Self {
        View { bytes: b.bytes }
    }
}

impl fmt::Debug for View {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("View").field("len", &self.len()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn view_shares_memory() {
        let buf = Buffer::new(vec![1u8, 2, 3, 4]);
        let v = buf.view();
        assert_eq!(v.as_ptr(), buf.as_bytes().as_ptr());
        let s = v.slice(1..3).unwrap();
        assert_eq!(&*s, &[2, 3]);
        assert_eq!(s.as_ptr(), offset_ptr(&buf, 1));
        #[allow(clippy::reversed_empty_ranges)]
        let backwards = 3..2;
        assert!(v.slice(backwards).is_none());
        assert!(v.slice(0..5).is_none());
        assert_eq!(v.slice(4..4).unwrap().len(), 0);
    }

    fn offset_ptr(buf: &Buffer, off: usize) -> *const u8 {
        buf.as_bytes()[off..].as_ptr()
    }
}
