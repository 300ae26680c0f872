//! The descriptors a guest opened through WASI, each holding a place in its
//! tree's budget of open files (the ABI's WASI shims keep it up to date).

use std::collections::HashSet;
use std::sync::Arc;

use crate::budget::Budget;

/// The descriptors a guest opened (beyond stdio and its grants), each
/// holding one place in its tree's budget of open files.
pub(crate) struct OpenFiles {
    fds: HashSet<i32>,
    tenant: Arc<Budget>,
}

impl OpenFiles {
    pub(crate) fn new(tenant: Arc<Budget>) -> Self {
        OpenFiles {
            fds: HashSet::new(),
            tenant,
        }
    }

    /// The tree's budget the descriptors are charged to.
    pub(crate) fn tenant(&self) -> &Arc<Budget> {
        &self.tenant
    }

    /// Records `fd` as opened; its place in the budget was taken already.
    pub(crate) fn opened(&mut self, fd: i32) {
        self.fds.insert(fd);
    }

    /// Forgets `fd` and gives its place back, if it was one of ours.
    pub(crate) fn closed(&mut self, fd: i32) {
        if self.fds.remove(&fd) {
            self.tenant.files.give(1);
        }
    }

    /// Records that `from` is now `to` (`fd_renumber`, which closed `to`).
    pub(crate) fn renumbered(&mut self, from: i32, to: i32) {
        if from == to {
            return;
        }
        self.closed(to);
        if self.fds.remove(&from) {
            self.fds.insert(to);
        }
    }
}

impl Drop for OpenFiles {
    fn drop(&mut self) {
        self.tenant.files.give(self.fds.len());
    }
}
