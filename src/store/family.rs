//! The one thing a store needs from the layers above it: the interpreters a
//! guest created, and a way to create and run more. Interpreters live above
//! the store (an interpreter *has* a store), so the store holds this as a
//! trait object; the interpreter layer implements it and the ABI for
//! interpreters calls it.

use std::sync::Arc;
use std::time::Instant;

use super::{ChildJob, Lineage, TreeSlot};
use crate::channel::ChannelEnd;
use crate::language::Language;
use crate::limits::Limits;
use crate::output::Sink;

/// Why a guest's request about interpreters was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FamilyError {
    /// No such interpreter among the caller's own (children, or below).
    NotFound,
    /// The child is running already.
    Busy,
    /// A limit of the caller's tree (interpreters, depth, memory, threads).
    Limit,
    /// The host is gone, or the run's result was lost.
    Closed,
    /// The request is not one the host can carry out.
    Invalid,
}

/// What a new child inherits from the interpreter creating it.
pub(crate) struct Parent {
    pub(crate) lineage: Lineage,
    pub(crate) slots: Vec<TreeSlot>,
    pub(crate) stdout: Sink,
    pub(crate) stderr: Sink,
    /// The creator's deadline: the child's creation ends by then.
    pub(crate) deadline_cap: Option<Instant>,
    /// Fuel for the creation, taken from the creator's (with fuel on).
    pub(crate) fuel: Option<u64>,
    /// The host functions the creator may call: all its child may have.
    pub(crate) grants: crate::hostfn::Grants,
    /// The creator's JavaScript module folder, if it has one.
    pub(crate) modules: Option<Arc<std::path::PathBuf>>,
    /// The parts of the creator's directory grants the child is given.
    pub(crate) dirs: Vec<super::ChildDir>,
}

/// A run a guest asks of one of its children.
pub(crate) struct ChildRun {
    /// Source in the child's language, run as a script (`__main__`), or
    /// as the JavaScript module named `module`.
    pub(crate) source: String,
    pub(crate) module: Option<String>,
    /// The channel ends it binds by name, from the caller's handles.
    pub(crate) channels: Vec<(String, ChannelEnd)>,
    /// The caller's deadline: the child's run ends by then.
    pub(crate) deadline_cap: Option<Instant>,
    /// Fuel for the run, taken from the caller's (with fuel on).
    pub(crate) fuel: Option<u64>,
}

/// A guest's interpreters: the children it created (closed with it) and
/// those below them.
pub(crate) trait Family: Send {
    /// Creates a child running `language` (default: the creator's own)
    /// with `limits`; returns its id and the creation fuel it did not use.
    fn create(
        &mut self,
        parent: Parent,
        language: Option<Language>,
        limits: Limits,
    ) -> Result<(u64, Option<u64>), FamilyError>;

    /// The fuel budget of live child `id` that is free to run
    /// ([`FamilyError::Busy`] while it runs).
    fn idle_child(&self, id: u64) -> Result<Option<u64>, FamilyError>;

    /// Starts `run` in child `id` on a thread of its own.
    fn start(&mut self, id: u64, run: ChildRun) -> Result<Arc<ChildJob>, FamilyError>;

    /// Closes child `id`; false when it is not a child.
    fn close(&mut self, id: u64) -> bool;

    /// Whether interpreter `id`, below this one, is running (`None`: not
    /// below this one, or not live).
    fn is_running(&self, id: u64) -> Option<bool>;

    /// The ids of the live interpreters below this one, oldest first.
    fn below(&self) -> Vec<u64>;
}

/// The family of a store outside any interpreter (the JS snapshot's set-up
/// run): it has none and can make none.
pub(crate) struct NoFamily;

impl Family for NoFamily {
    fn create(
        &mut self,
        _: Parent,
        _: Option<Language>,
        _: Limits,
    ) -> Result<(u64, Option<u64>), FamilyError> {
        Err(FamilyError::Closed)
    }
    fn idle_child(&self, _: u64) -> Result<Option<u64>, FamilyError> {
        Err(FamilyError::NotFound)
    }
    fn start(&mut self, _: u64, _: ChildRun) -> Result<Arc<ChildJob>, FamilyError> {
        Err(FamilyError::NotFound)
    }
    fn close(&mut self, _: u64) -> bool {
        false
    }
    fn is_running(&self, _: u64) -> Option<bool> {
        None
    }
    fn below(&self) -> Vec<u64> {
        Vec::new()
    }
}
