//! Where an interpreter sits among interpreters: the budgets of
//! interpreters alive at once that creating a child takes a place in, and
//! the lineage a child inherits.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::budget::Budget;
use crate::limits::Limits;

/// A budget of interpreters alive at once below one interpreter: every
/// interpreter has one, with its `max_interpreters`, and creating a child
/// takes a place in the creator's budget and in each of its ancestors'.
#[derive(Debug)]
pub(crate) struct Tree {
    live: AtomicUsize,
    max: usize,
}

impl Tree {
    pub(crate) fn new(limits: &Limits) -> Arc<Tree> {
        Arc::new(Tree {
            live: AtomicUsize::new(0),
            max: limits.max_interpreters(),
        })
    }

    fn acquire(self: &Arc<Tree>) -> Option<TreeSlot> {
        self.live
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < self.max).then_some(n + 1)
            })
            .ok()
            .map(|_| TreeSlot(self.clone()))
    }

    /// A place in every budget of `chain`, or `None` (taking none) when one
    /// is used up.
    pub(crate) fn acquire_all(chain: &[Arc<Tree>]) -> Option<Vec<TreeSlot>> {
        chain.iter().map(Tree::acquire).collect()
    }
}

/// One guest-created interpreter's place in a budget; given back when the
/// interpreter is closed or dropped.
#[derive(Debug)]
pub(crate) struct TreeSlot(Arc<Tree>);

impl Drop for TreeSlot {
    fn drop(&mut self) {
        self.0.live.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Where an interpreter sits among interpreters: its own budget of
/// interpreters first, then its ancestors', who created it (0: the host),
/// the ids from its tree's root down to its creator, and its tree's budget.
#[derive(Debug, Clone)]
pub(crate) struct Lineage {
    pub(crate) budgets: Vec<Arc<Tree>>,
    pub(crate) creator: u64,
    pub(crate) ancestors: Vec<u64>,
    pub(crate) tenant: Arc<Budget>,
}

impl Lineage {
    /// The lineage of a root: a tree of its own, with a budget from `limits`.
    pub(crate) fn root(limits: &Limits) -> Lineage {
        Lineage {
            budgets: Vec::new(),
            creator: 0,
            ancestors: Vec::new(),
            tenant: Budget::new(
                limits.max_memory(),
                limits.max_handles(),
                limits.max_open_files(),
            ),
        }
    }
}
