//! One tenant's budget: what a root interpreter's limits allow the whole
//! tree below it (the root, the interpreters it creates, theirs, ...) to
//! hold at once.
//!
//! ```text
//!  root (Limits) ──▶ Budget { memory, handles, open files }
//!    ├── child ───────┘  every member charges the same meters,
//!    │   └── grandchild ─┘  so the sum over the tree stays within the root's limits
//! ```
//!
//! Memory counts every byte the host holds because of the tree: its linear
//! memories, the buffers its guests sent (for as long as the buffer exists
//! anywhere: queued, or viewed by whoever received it), a fixed cost per
//! message queued in a channel, and a fixed cost per channel it created.
//! A charge is an RAII [`Charge`]: dropping it gives the bytes back, so the
//! accounting cannot drift from what is really held.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Host bytes a queued message costs its sender's tree (queue slot and
/// bookkeeping), whatever it carries. A copied message's is charged with its
/// bytes, and so lasts as long as they do.
pub(crate) const MESSAGE_COST: usize = 64;
/// Host bytes a channel costs the tree that created it.
pub(crate) const CHANNEL_COST: usize = 512;

/// A count with a ceiling, shared by a tree.
#[derive(Debug)]
pub(crate) struct Meter {
    used: AtomicUsize,
    max: usize,
}

impl Meter {
    fn new(max: usize) -> Self {
        Meter {
            used: AtomicUsize::new(0),
            max,
        }
    }

    /// Takes `n` if that stays within the ceiling.
    pub(crate) fn try_take(&self, n: usize) -> bool {
        self.used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |u| {
                u.checked_add(n).filter(|&t| t <= self.max)
            })
            .is_ok()
    }

    /// Gives back `n` taken before.
    pub(crate) fn give(&self, n: usize) {
        self.used.fetch_sub(n, Ordering::AcqRel);
    }

    /// What is taken now.
    #[cfg(test)]
    pub(crate) fn used(&self) -> usize {
        self.used.load(Ordering::Acquire)
    }

    /// The ceiling.
    pub(crate) fn max(&self) -> usize {
        self.max
    }
}

/// The meters of one tenant tree.
#[derive(Debug)]
pub(crate) struct Budget {
    /// Bytes: linear memories plus what the host holds for the tree.
    pub(crate) memory: Meter,
    /// Live handles over all the tree's handle tables.
    pub(crate) handles: Meter,
    /// Files and directories the tree's guests have open through WASI.
    pub(crate) files: Meter,
}

impl Budget {
    pub(crate) fn new(max_memory: usize, max_handles: usize, max_files: usize) -> Arc<Budget> {
        Arc::new(Budget {
            memory: Meter::new(max_memory),
            handles: Meter::new(max_handles),
            files: Meter::new(max_files),
        })
    }

    /// Charges `bytes` of host memory to the tree, or `None` when that would
    /// pass its memory limit.
    pub(crate) fn charge(self: &Arc<Budget>, bytes: usize) -> Option<Charge> {
        self.memory.try_take(bytes).then(|| Charge {
            budget: self.clone(),
            bytes,
        })
    }
}

/// Host memory held on a tree's account; given back when dropped.
#[derive(Debug)]
pub(crate) struct Charge {
    budget: Arc<Budget>,
    bytes: usize,
}

impl Drop for Charge {
    fn drop(&mut self) {
        self.budget.memory.give(self.bytes);
    }
}

/// Messages up to this size are stored inside their buffer's one
/// allocation (a 64-byte message costs one `malloc`, not two). No larger:
/// that allocation (this owner and `Bytes`' 16-byte header) must stay within
/// glibc's fast bins (chunks up to 128 bytes), because it is freed by the
/// receiver's thread, not the sender's; at 96 bytes inline the raw one-way
/// rate fell from 2.1–3.4 M to 1.8 M msg/s.
const INLINE: usize = 64;

/// Where a sent message's bytes live.
enum Stored {
    Inline { len: u8, data: [u8; INLINE] },
    Heap(Box<[u8]>),
}

/// Bytes a guest sent, kept on its tree's account for as long as any view
/// of them exists.
pub(crate) struct ChargedBytes {
    data: Stored,
    _charge: Charge,
}

impl ChargedBytes {
    /// Copies `data`, charging its length plus `extra` to `budget` first
    /// (one charge: the message's bookkeeping rides with its bytes); `None`
    /// when the tree has no room for it (and nothing was copied).
    pub(crate) fn copy(budget: &Arc<Budget>, data: &[u8], extra: usize) -> Option<bytes::Bytes> {
        let charge = budget.charge(data.len().checked_add(extra)?)?;
        let data = match u8::try_from(data.len()) {
            Ok(len) if data.len() <= INLINE => {
                let mut inline = [0; INLINE];
                inline[..data.len()].copy_from_slice(data);
                Stored::Inline { len, data: inline }
            }
            _ => Stored::Heap(data.into()),
        };
        Some(bytes::Bytes::from_owner(ChargedBytes {
            data,
            _charge: charge,
        }))
    }
}

impl AsRef<[u8]> for ChargedBytes {
    fn as_ref(&self) -> &[u8] {
        match &self.data {
            Stored::Inline { len, data } => &data[..usize::from(*len)],
            Stored::Heap(data) => data,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charges_stay_within_the_ceiling_and_come_back_when_dropped() {
        let b = Budget::new(100, 1, 1);
        let c = b.charge(60).unwrap();
        assert!(b.charge(41).is_none());
        let bytes = ChargedBytes::copy(&b, &[7; 30], 10).unwrap();
        assert_eq!(b.memory.used(), 100);
        assert_eq!(&bytes[..], &[7; 30]);
        let view = bytes.slice(10..20);
        drop(bytes);
        assert_eq!(b.memory.used(), 100, "a view keeps its buffer charged");
        drop(view);
        drop(c);
        assert_eq!(b.memory.used(), 0);
        assert!(ChargedBytes::copy(&b, &[0; 101], 0).is_none());
        assert!(ChargedBytes::copy(&b, &[0; 91], 10).is_none());
        assert_eq!(b.memory.used(), 0);
        // Past the inline size: the same bytes, from the heap.
        let big: Vec<u8> = (0..=255).collect();
        let b = Budget::new(1000, 1, 1);
        let bytes = ChargedBytes::copy(&b, &big, 0).unwrap();
        assert_eq!(&bytes[..], &big[..]);
        assert_eq!(b.memory.used(), 256);
        // The owner `Bytes` allocates (with its 16-byte header) stays in a
        // fast-bin chunk: at most 120 bytes asked for.
        assert!(std::mem::size_of::<ChargedBytes>() + 16 <= 120);
    }
}
