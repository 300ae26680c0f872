//! The per-`Store` host state every host import sees, and the memory
//! limiter.

use std::cell::Cell;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use wasmtime::ResourceLimiter;
use wasmtime_wasi::p1::WasiP1Ctx;

use super::Interpreter;
use crate::budget::Budget;
use crate::channel::Core;
use crate::handle::HandleTable;
use crate::host::{Counters, HostInner};
use crate::limits::Limits;
use crate::outcome::Abort;
use crate::output::Sink;

/// State shared between an interpreter's handle and its store.
#[derive(Default)]
pub(crate) struct Shared {
    /// Set by `close()`: running guests stop at the next epoch tick, and
    /// blocked channel waits give up.
    pub(crate) closed: AtomicBool,
    /// The channels this interpreter's guest created: closed and emptied
    /// when the interpreter is closed (its children's go with them).
    owned: parking_lot::Mutex<Vec<Weak<Core>>>,
}

impl Shared {
    /// Records a channel the guest created. Dropped channels are forgotten
    /// as the list grows, so it stays as long as the live ones.
    pub(crate) fn own(&self, core: &Arc<Core>) {
        let mut owned = self.owned.lock();
        if owned.len() >= 64 && owned.len().is_power_of_two() {
            owned.retain(|w| w.strong_count() > 0);
        }
        owned.push(Arc::downgrade(core));
    }

    /// Closes and empties every channel the guest created.
    pub(crate) fn purge_owned(&self) {
        let owned = std::mem::take(&mut *self.owned.lock());
        for core in owned.iter().filter_map(Weak::upgrade) {
            core.purge();
        }
    }
}

/// Per-run counters, summed into the host's at the end of the run.
#[derive(Debug, Default)]
pub(crate) struct Tally {
    pub(crate) copied_out: AtomicU64,
    pub(crate) copied_in: AtomicU64,
    pub(crate) forwarded: AtomicU64,
    pub(crate) sent: AtomicU64,
    pub(crate) received: AtomicU64,
}

impl Tally {
    pub(crate) fn add(c: &AtomicU64, n: u64) {
        c.fetch_add(n, Ordering::Relaxed);
    }
}

/// Caps linear memory growth at the interpreter's limit and at what its
/// tree's budget has left (the memory and tables are charged to it while the
/// instance lives). Past either a plain module's run ends with
/// `Abort::MemoryLimit` instead of `memory.grow` returning -1, so the cause
/// is never lost in a guest's out-of-memory path. A JS guest (`soft`)
/// instead sees `memory.grow` fail, so QuickJS throws a catchable
/// out-of-memory error; `hit` remembers it for the run's result.
pub(crate) struct Limiter {
    max_memory: usize,
    soft: bool,
    pub(crate) hit: bool,
    budget: Arc<Budget>,
    /// Bytes of linear memory charged to the budget now.
    memory: usize,
    /// Bytes of table charged to the budget now.
    tables: usize,
}

/// Host bytes a table element costs.
const TABLE_ELEMENT_COST: usize = 16;
/// Most elements of one table.
const MAX_TABLE_ELEMENTS: usize = 1 << 20;

impl Limiter {
    pub(crate) fn new(max_memory: usize, soft: bool, budget: Arc<Budget>) -> Self {
        Limiter {
            max_memory,
            soft,
            hit: false,
            budget,
            memory: 0,
            tables: 0,
        }
    }

    /// Refuses a growth. A memory being created (`current` 0) cannot start
    /// at all: that is a memory limit error whatever the guest.
    fn refuse(&mut self, current: usize, limit: usize) -> wasmtime::Result<bool> {
        self.hit = true;
        if self.soft && current > 0 {
            return Ok(false);
        }
        Err(wasmtime::Error::new(Abort::MemoryLimit { limit }))
    }
}

impl ResourceLimiter for Limiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        // A growth allowed here may still have failed: settle to what the
        // memory really has (one memory per instance: multi-memory is off).
        if current < self.memory {
            self.budget.memory.give(self.memory - current);
            self.memory = current;
        }
        if desired > self.max_memory {
            return self.refuse(current, self.max_memory);
        }
        let more = desired.saturating_sub(self.memory);
        if !self.budget.memory.try_take(more) {
            return self.refuse(current, self.budget.memory.max());
        }
        self.memory += more;
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let bytes = desired.saturating_mul(TABLE_ELEMENT_COST);
        let more = bytes.saturating_sub(self.tables);
        if desired > MAX_TABLE_ELEMENTS || !self.budget.memory.try_take(more) {
            return Ok(false);
        }
        self.tables += more;
        Ok(true)
    }
}

impl Drop for Limiter {
    fn drop(&mut self) {
        self.budget.memory.give(self.memory + self.tables);
    }
}

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
            max: limits.get_max_interpreters(),
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
                limits.get_max_memory(),
                limits.get_max_handles(),
                limits.get_max_open_files(),
            ),
        }
    }
}

/// Everything the host imports of one interpreter can reach.
pub(crate) struct HostState {
    pub(crate) id: u64,
    pub(crate) wasi: WasiP1Ctx,
    pub(crate) limiter: Limiter,
    pub(crate) handles: HandleTable,
    /// Channel ends passed to `run` by name, as handles in `handles`.
    pub(crate) names: HashMap<String, i32>,
    pub(crate) shared: Arc<Shared>,
    /// The current run's deadline and the limit it came from.
    pub(crate) deadline: Option<(Instant, Duration)>,
    pub(crate) tally: Tally,
    pub(crate) counters: Arc<Counters>,
    pub(crate) host: Weak<HostInner>,
    /// This interpreter's own limits (a child's are clamped to them).
    pub(crate) limits: Limits,
    pub(crate) lineage: Lineage,
    /// The error the guest reported for the current run (`run_error`).
    pub(crate) reported: Option<String>,
    /// How long a guest that stops itself cleanly (JS) gets, once it must
    /// stop, before the host stops it by force; zero for plain modules.
    pub(crate) grace: Duration,
    /// The fuel the current run started with (`u64::MAX`: no budget).
    pub(crate) fuel_start: u64,
    /// What the guest has open through WASI, on its tree's account.
    pub(crate) files: crate::abi::OpenFiles,
    pub(crate) stop_since: Cell<Option<Instant>>,
    /// Interpreters this one created and has not closed.
    pub(crate) children: Vec<Interpreter>,
    /// This interpreter's output streams (children write to them too).
    pub(crate) stdout: Sink,
    pub(crate) stderr: Sink,
}

impl Drop for HostState {
    fn drop(&mut self) {
        // An interpreter's children go with it.
        for child in self.children.drain(..) {
            child.close();
        }
    }
}

/// Why a call must stop now, if it must: the interpreter was closed, or the
/// deadline passed.
fn stop_reason(shared: &Shared, deadline: Option<(Instant, Duration)>) -> Option<Abort> {
    if shared.closed.load(Ordering::Relaxed) {
        return Some(Abort::Closed);
    }
    match deadline {
        Some((at, limit)) if Instant::now() >= at => Some(Abort::Timeout { limit }),
        _ => None,
    }
}

/// What a guest call driven from outside its store checks: the same reasons
/// to stop as [`HostState::must_stop`], without a borrow of the store.
pub(crate) struct Stopper {
    shared: Arc<Shared>,
    deadline: Option<(Instant, Duration)>,
}

impl Stopper {
    fn reason(&self) -> Option<Abort> {
        stop_reason(&self.shared, self.deadline)
    }

    /// Drives a guest call (see [`crate::exec`]): a call still waiting in a
    /// WASI function when it must stop is abandoned and ends with the typed
    /// reason.
    pub(crate) fn drive<T>(
        &self,
        call: impl std::future::Future<Output = wasmtime::Result<T>>,
    ) -> wasmtime::Result<T> {
        crate::exec::block_on(call, || self.reason())
            .unwrap_or_else(|abort| Err(wasmtime::Error::new(abort)))
    }
}

impl HostState {
    /// The reason the current run must stop now, if any.
    pub(crate) fn must_stop(&self) -> Option<Abort> {
        stop_reason(&self.shared, self.deadline)
    }

    /// What drives a call of the current run.
    pub(crate) fn stopper(&self) -> Stopper {
        Stopper {
            shared: self.shared.clone(),
            deadline: self.deadline,
        }
    }

    /// Whether a run that must stop still has time to stop by itself.
    pub(crate) fn in_grace(&self) -> bool {
        if self.grace.is_zero() {
            return false;
        }
        let since = match self.stop_since.get() {
            Some(t) => t,
            None => {
                let now = Instant::now();
                self.stop_since.set(Some(now));
                now
            }
        };
        since.elapsed() < self.grace
    }
}
