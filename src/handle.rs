//! Per-interpreter handle tables: the small integers a guest holds for views,
//! channel ends and jobs. The table is generic over what a handle refers to
//! (the store layer's `Entry`); it knows only slots, generations and the
//! tree's budget of live handles.
//!
//! A handle is a positive `i32`: a slot index and a generation, scrambled
//! with a random key of the table's own,
//!
//! ```text
//!          31  30 ............... 16 15 ............ 0
//!  key ^ ( 0 |   generation (15)    | slot index (16) )
//! ```
//!
//! Each interpreter has a table of its own, so a handle can only ever reach
//! that interpreter's entries; and since every table has its own key, a
//! handle copied from another interpreter (or made up) decodes here to a
//! slot and generation that almost surely do not match a live entry, and is
//! refused rather than aliasing one. The generation is bumped whenever a slot is freed, so
//! a released (stale) handle is refused instead of reaching whatever reuses
//! the slot; a slot whose generation would wrap is retired, never reused, so
//! a released handle is never valid again in the table's lifetime. Freed
//! slots are reused oldest first, which spreads reuse over all the slots.
//! Handle 0 and every negative number are never valid.

use std::collections::VecDeque;
use std::sync::Arc;

use crate::budget::{Budget, Charge};

/// Why a handle was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HandleError {
    /// Not a live handle of this interpreter (forged, stale or foreign).
    Bad,
    /// The table (or its tree) already holds its limit of live handles.
    TooMany { limit: usize },
}

struct Slot<E> {
    generation: u16,
    entry: Option<E>,
    /// What holding the entry costs its tree (a received view's bytes).
    charge: Option<Charge>,
}

/// The most slots a table can address (16 index bits).
pub(crate) const MAX_SLOTS: usize = 1 << 16;
/// Generations a slot goes through before it is retired (15 bits).
const GENERATIONS: u16 = 1 << 15;

pub(crate) struct HandleTable<E> {
    /// This table's scrambling key (31 bits).
    key: u32,
    slots: Vec<Slot<E>>,
    /// Freed slots, oldest first.
    free: VecDeque<u16>,
    live: usize,
    limit: usize,
    /// The tree's budget of live handles, shared with the other members.
    budget: Option<Arc<Budget>>,
    /// Tree handles taken ahead of an insert (see [`HandleTable::reserve`]).
    reserved: usize,
}

impl<E> HandleTable<E> {
    /// A table holding at most `limit` live handles, and charging each to
    /// `budget`'s handle meter when there is one.
    pub(crate) fn new(limit: usize, budget: Option<Arc<Budget>>) -> Self {
        use std::hash::{BuildHasher, Hasher};
        let key = std::hash::RandomState::new().build_hasher().finish() as u32 & 0x7fff_ffff;
        HandleTable {
            key,
            slots: Vec::new(),
            free: VecDeque::new(),
            live: 0,
            limit: limit.min(MAX_SLOTS),
            budget,
            reserved: 0,
        }
    }

    /// The cap on live handles: this table's own, or the tree's if smaller.
    pub(crate) fn limit(&self) -> usize {
        self.budget
            .as_ref()
            .map_or(self.limit, |b| self.limit.min(b.handles.max()))
    }

    /// Live handles.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.live
    }

    fn encode(&self, index: usize, generation: u16) -> i32 {
        (((u32::from(generation) << 16) | index as u32) ^ self.key) as i32
    }

    fn decode(&self, handle: i32) -> Result<usize, HandleError> {
        let h = u32::try_from(handle)
            .ok()
            .filter(|&h| h != 0)
            .ok_or(HandleError::Bad)?
            ^ self.key;
        let index = (h & 0xffff) as usize;
        let generation = (h >> 16) as u16;
        match self.slots.get(index) {
            Some(s) if s.generation == generation && s.entry.is_some() => Ok(index),
            _ => Err(HandleError::Bad),
        }
    }

    /// Makes sure the next `n` inserts will succeed, taking their places in
    /// the tree's budget now; call before an operation whose result must not
    /// be lost for want of a handle (a received message).
    pub(crate) fn reserve(&mut self, n: usize) -> Result<(), HandleError> {
        let limit = self.limit();
        if self.live + self.reserved + n > self.limit || self.free_slots() < self.reserved + n {
            return Err(HandleError::TooMany { limit });
        }
        if let Some(b) = &self.budget
            && !b.handles.try_take(n)
        {
            return Err(HandleError::TooMany { limit });
        }
        self.reserved += n;
        Ok(())
    }

    /// Gives back reservations that were not used.
    pub(crate) fn unreserve(&mut self, n: usize) {
        let n = n.min(self.reserved);
        self.reserved -= n;
        if let Some(b) = &self.budget {
            b.handles.give(n);
        }
    }

    /// Slots an insert could still use (free or never used).
    fn free_slots(&self) -> usize {
        self.free.len() + (MAX_SLOTS - self.slots.len())
    }

    pub(crate) fn insert(&mut self, entry: E) -> Result<i32, HandleError> {
        self.insert_charged(entry, None)
    }

    /// Inserts `entry` with what holding it costs its tree; the charge is
    /// given back when the handle is released.
    pub(crate) fn insert_charged(
        &mut self,
        entry: E,
        charge: Option<Charge>,
    ) -> Result<i32, HandleError> {
        if self.reserved > 0 {
            self.reserved -= 1;
        } else {
            self.reserve(1)?;
            self.reserved -= 1;
        }
        let index = loop {
            let index = match self.free.pop_front() {
                Some(i) => usize::from(i),
                None => {
                    self.slots.push(Slot {
                        generation: 1,
                        entry: None,
                        charge: None,
                    });
                    self.slots.len() - 1
                }
            };
            // The one (slot, generation) that would encode to 0 is skipped.
            if self.encode(index, self.slots[index].generation) != 0 {
                break index;
            }
            self.slots[index].generation += 1;
            if self.slots[index].generation < GENERATIONS {
                self.free.push_back(index as u16);
            }
        };
        self.slots[index].entry = Some(entry);
        self.slots[index].charge = charge;
        self.live += 1;
        Ok(self.encode(index, self.slots[index].generation))
    }

    pub(crate) fn get(&self, handle: i32) -> Result<&E, HandleError> {
        let index = self.decode(handle)?;
        Ok(self.slots[index].entry.as_ref().expect("decode checked"))
    }

    pub(crate) fn remove(&mut self, handle: i32) -> Result<E, HandleError> {
        let index = self.decode(handle)?;
        let slot = &mut self.slots[index];
        slot.generation += 1;
        slot.charge = None;
        if slot.generation < GENERATIONS {
            self.free.push_back(index as u16);
        }
        self.live -= 1;
        if let Some(b) = &self.budget {
            b.handles.give(1);
        }
        Ok(slot.entry.take().expect("decode checked"))
    }
}

impl<E> Drop for HandleTable<E> {
    fn drop(&mut self) {
        if let Some(b) = &self.budget {
            b.handles.give(self.live + self.reserved);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view() -> &'static str {
        "x"
    }

    #[test]
    fn stale_foreign_and_forged_handles_are_refused() {
        let mut a = HandleTable::new(8, None);
        let b = HandleTable::<&str>::new(8, None);
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
        let mut t = HandleTable::new(2, None);
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

    #[test]
    fn a_released_handle_is_never_valid_again() {
        let mut t = HandleTable::new(4, None);
        let first = t.insert(view()).unwrap();
        t.remove(first).unwrap();
        let mut seen = std::collections::HashSet::new();
        seen.insert(first);
        // Far more reuses than one slot has generations: every handle the
        // table gives out is new, and the first one stays invalid.
        for _ in 0..(3 * usize::from(GENERATIONS)) {
            let h = t.insert(view()).unwrap();
            assert!(seen.insert(h), "handle {h:#x} given out twice");
            assert_eq!(t.get(first).unwrap_err(), HandleError::Bad);
            t.remove(h).unwrap();
        }
        assert!(t.slots.len() >= 3, "worn-out slots are retired");
    }

    #[test]
    fn a_tree_budget_bounds_the_tables_that_share_it() {
        let budget = Budget::new(1 << 20, 3, 1);
        let mut a = HandleTable::new(8, Some(budget.clone()));
        let mut b = HandleTable::new(8, Some(budget.clone()));
        a.insert(view()).unwrap();
        a.insert(view()).unwrap();
        b.insert(view()).unwrap();
        assert_eq!(
            b.insert(view()).unwrap_err(),
            HandleError::TooMany { limit: 3 }
        );
        assert!(b.reserve(1).is_err());
        drop(a);
        assert_eq!(budget.handles.used(), 1);
        b.reserve(2).unwrap();
        b.insert(view()).unwrap();
        b.unreserve(1);
        drop(b);
        assert_eq!(budget.handles.used(), 0);
    }
}
