//! The channels of one host that still exist, by id, and the one place new
//! channels are made. A channel leaves the registry when it is dropped, so
//! the list never holds the dead and listing stays as long as the live.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};

use parking_lot::Mutex;

use super::{Core, RecvChannel, SendChannel, new_pair};
use crate::budget::Charge;

/// The host's live channels, and the queued-bytes limit new ones get by default.
#[derive(Debug)]
pub(crate) struct Registry {
    live: Mutex<BTreeMap<u64, Weak<Core>>>,
    next_id: AtomicU64,
    max_queued_bytes: usize,
}

impl Registry {
    pub(crate) fn new(max_queued_bytes: usize) -> Arc<Registry> {
        Arc::new(Registry {
            live: Mutex::default(),
            next_id: AtomicU64::new(1),
            max_queued_bytes,
        })
    }

    /// A new channel with room for `capacity` messages and at most
    /// `max_bytes` queued (default: the host's limit); `cost` is what it
    /// costs the tree whose guest made it (none for the host's own).
    pub(crate) fn create(
        self: &Arc<Self>,
        capacity: usize,
        max_bytes: Option<usize>,
        cost: Option<Charge>,
    ) -> (RecvChannel, SendChannel) {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let max_bytes = max_bytes.unwrap_or(self.max_queued_bytes);
        let core = Arc::new(Core::new(
            id,
            capacity,
            max_bytes,
            Arc::downgrade(self),
            cost,
        ));
        self.live.lock().insert(id, Arc::downgrade(&core));
        new_pair(core)
    }

    pub(super) fn remove(&self, id: u64) {
        self.live.lock().remove(&id);
    }

    /// The ids of the channels that exist now, oldest first.
    pub(crate) fn ids(&self) -> Vec<u64> {
        self.live.lock().keys().copied().collect()
    }
}
