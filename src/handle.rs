//! Per-interpreter handle tables: the small integers a guest holds for views
//! and channel ends.
//!
//! A handle is a positive `i32` laid out as
//!
//! ```text
//!  31  30 ........ 24 23 ...... 16 15 ............ 0
//!  0 | owner tag (7) | generation | slot index (16)
//! ```
//!
//! The owner tag is derived from the interpreter id, so a handle copied from
//! another interpreter is rejected instead of aliasing one of ours; the
//! generation is bumped whenever a slot is freed, so a released (stale) handle
//! is rejected instead of reaching whatever reuses the slot. Handle 0 and every
//! negative number are never valid.

use crate::buffer::View;
use crate::channel::{RecvChannel, SendChannel};

/// What a handle refers to.
#[derive(Debug, Clone)]
pub(crate) enum Entry {
    View(View),
    Recv(RecvChannel),
    Send(SendChannel),
    /// A view of text the host made for the guest (JSON results, names):
    /// read like a view, but not counted as message bytes.
    Text(View),
    /// A guest's started run of a child interpreter.
    Job(std::sync::Arc<crate::abi::Job>),
}

/// Why a handle was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HandleError {
    /// Not a live handle of this interpreter (forged, stale or foreign).
    Bad,
    /// The table already holds its limit of live handles.
    TooMany { limit: usize },
}

struct Slot {
    generation: u8,
    entry: Option<Entry>,
}

/// The most slots a table can address (16 index bits).
pub(crate) const MAX_SLOTS: usize = 1 << 16;

pub(crate) struct HandleTable {
    tag: u32,
    slots: Vec<Slot>,
    free: Vec<u16>,
    live: usize,
    limit: usize,
}

impl HandleTable {
    /// A table for the interpreter `owner`, holding at most `limit` live handles.
    pub(crate) fn new(owner: u64, limit: usize) -> Self {
        HandleTable {
            tag: (owner % 127) as u32 + 1,
            slots: Vec::new(),
            free: Vec::new(),
            live: 0,
            limit: limit.min(MAX_SLOTS),
        }
    }

    /// The cap on live handles.
    pub(crate) fn limit(&self) -> usize {
        self.limit
    }

    /// Live handles.
    pub(crate) fn len(&self) -> usize {
        self.live
    }

    fn encode(&self, index: usize, generation: u8) -> i32 {
        ((self.tag << 24) | (u32::from(generation) << 16) | index as u32) as i32
    }

    fn decode(&self, handle: i32) -> Result<usize, HandleError> {
        let h = u32::try_from(handle).map_err(|_| HandleError::Bad)?;
        let index = (h & 0xffff) as usize;
        let generation = ((h >> 16) & 0xff) as u8;
        if h >> 24 != self.tag {
            return Err(HandleError::Bad);
        }
        match self.slots.get(index) {
            Some(s) if s.generation == generation && s.entry.is_some() => Ok(index),
            _ => Err(HandleError::Bad),
        }
    }

    pub(crate) fn insert(&mut self, entry: Entry) -> Result<i32, HandleError> {
        if self.live >= self.limit {
            return Err(HandleError::TooMany { limit: self.limit });
        }
        let index = match self.free.pop() {
            Some(i) => usize::from(i),
            None => {
                self.slots.push(Slot {
                    generation: 0,
                    entry: None,
                });
                self.slots.len() - 1
            }
        };
        self.slots[index].entry = Some(entry);
        self.live += 1;
        Ok(self.encode(index, self.slots[index].generation))
    }

    pub(crate) fn get(&self, handle: i32) -> Result<&Entry, HandleError> {
        let index = self.decode(handle)?;
        Ok(self.slots[index].entry.as_ref().expect("decode checked"))
    }

    pub(crate) fn remove(&mut self, handle: i32) -> Result<Entry, HandleError> {
        let index = self.decode(handle)?;
        let slot = &mut self.slots[index];
        slot.generation = slot.generation.wrapping_add(1);
        self.free.push(index as u16);
        self.live -= 1;
        Ok(slot.entry.take().expect("decode checked"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::buffer::Buffer;

    fn view() -> Entry {
        Entry::View(Buffer::from("x").view())
    }

    #[test]
    fn stale_foreign_and_forged_handles_are_refused() {
        let mut a = HandleTable::new(1, 8);
        let b = HandleTable::new(2, 8);
        let h = a.insert(view()).unwrap();
        assert!(h > 0);
        assert!(a.get(h).is_ok());
        assert_eq!(b.get(h).unwrap_err(), HandleError::Bad);
        for forged in [0, -1, i32::MIN, i32::MAX, 1, h + 1, h ^ (1 << 16)] {
            assert_eq!(a.get(forged).unwrap_err(), HandleError::Bad, "{forged}");
        }
        a.remove(h).unwrap();
        assert_eq!(a.get(h).unwrap_err(), HandleError::Bad);
        let h2 = a.insert(view()).unwrap();
        assert_ne!(h, h2, "a reused slot gets a new generation");
        assert_eq!(a.remove(h).unwrap_err(), HandleError::Bad);
    }

    #[test]
    fn limit_is_enforced_and_freed_slots_are_reused() {
        let mut t = HandleTable::new(3, 2);
        let h1 = t.insert(view()).unwrap();
        t.insert(view()).unwrap();
        assert_eq!(
            t.insert(view()).unwrap_err(),
            HandleError::TooMany { limit: 2 }
        );
        t.remove(h1).unwrap();
        assert_eq!(t.len(), 1);
        t.insert(view()).unwrap();
        assert_eq!(t.len(), 2);
    }
}
