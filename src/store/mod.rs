//! The store layer: what each interpreter's wasmtime `Store` carries, and
//! every host import can reach. Its handle table and the entries in it, its
//! share of its tree's budget (memory through the [`Limiter`], handles, open
//! files), the current run's deadline, counters and reported error, its
//! output streams, and its [`Family`]: the interpreters it created, reached
//! through a trait object because interpreters are a layer above.

mod dirs;
mod family;
mod files;
mod limiter;
mod tree;

use std::cell::Cell;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use wasmtime_wasi::WasiCtxBuilder;
use wasmtime_wasi::p1::WasiP1Ctx;

pub(crate) use self::dirs::{ChildDir, DirGrant, MAX_CHILD_DIRS, child_dir};
pub(crate) use self::family::{ChildRun, Family, FamilyError, NoFamily, Parent};
pub(crate) use self::files::OpenFiles;
pub(crate) use self::limiter::Limiter;
pub(crate) use self::tree::{Lineage, Tree, TreeSlot};
use crate::buffer::View;
use crate::channel::{self, Core, RecvChannel, SendChannel};
use crate::error::Error;
use crate::handle::HandleTable;
use crate::hostfn::{Grants, HostFn, HostFns};
use crate::job::Job;
use crate::limits::Limits;
use crate::outcome::Abort;
use crate::output::{OutputMode, Sink};
use crate::result::RunResult;

/// A guest-started run of a child interpreter: its result, and the fuel it
/// was given but did not use.
pub(crate) type ChildJob = Job<(Result<RunResult, Error>, Option<u64>)>;

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
    Job(Arc<ChildJob>),
}

/// Copy counters for the whole host.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) copied_out: AtomicU64,
    pub(crate) copied_in: AtomicU64,
    pub(crate) forwarded: AtomicU64,
}

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

/// Everything the host imports of one interpreter can reach.
pub(crate) struct StoreData {
    pub(crate) id: u64,
    pub(crate) wasi: WasiP1Ctx,
    pub(crate) limiter: Limiter,
    pub(crate) handles: HandleTable<Entry>,
    /// Channel ends passed to `run` by name, as handles in `handles`.
    pub(crate) names: HashMap<String, i32>,
    pub(crate) shared: Arc<Shared>,
    /// The current run's deadline and the limit it came from.
    pub(crate) deadline: Option<(Instant, Duration)>,
    pub(crate) tally: Tally,
    pub(crate) counters: Arc<Counters>,
    /// The host's channels, where the guest's new ones are made.
    pub(crate) channels: Arc<channel::Registry>,
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
    pub(crate) files: OpenFiles,
    pub(crate) stop_since: Cell<Option<Instant>>,
    /// The interpreters this one created, and the way to create more.
    pub(crate) family: Box<dyn Family>,
    /// This interpreter's output streams (children write to them too).
    pub(crate) stdout: Sink,
    pub(crate) stderr: Sink,
    /// The instance's exported memory, once an import has looked it up (a
    /// store holds one instance, so it never changes).
    pub(crate) memory: Option<wasmtime::Memory>,
    /// What the current run gave back with `call_output` (a call's result,
    /// or a script's completion value).
    pub(crate) output: Option<bytes::Bytes>,
    /// The host's functions, and the names of those this interpreter may call.
    pub(crate) host_fns: Arc<HostFns>,
    pub(crate) grants: Grants,
    /// The JavaScript module folder (canonical), granted read-only to
    /// imports; the children this interpreter creates get it too.
    pub(crate) modules: Option<Arc<std::path::PathBuf>>,
    /// The directory grants (canonical): all that its children may be given.
    pub(crate) dirs: Arc<[DirGrant]>,
    /// The granted function this guest called last (most guests call one
    /// function many times): found again without a lookup.
    pub(crate) last_fn: Option<HostFn>,
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
/// to stop as [`StoreData::must_stop`], without a borrow of the store.
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

impl StoreData {
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

    /// What a child created now inherits: a place in every budget of
    /// interpreters of its lineage, its lineage below this interpreter, the
    /// output streams, the run's deadline and `fuel` for its creation.
    pub(crate) fn parent(&self, fuel: Option<u64>) -> Result<Parent, FamilyError> {
        if self.limits.max_depth() == 0 {
            return Err(FamilyError::Limit);
        }
        let slots = Tree::acquire_all(&self.lineage.budgets).ok_or(FamilyError::Limit)?;
        let mut ancestors = self.lineage.ancestors.clone();
        ancestors.push(self.id);
        Ok(Parent {
            lineage: Lineage {
                budgets: self.lineage.budgets.clone(),
                creator: self.id,
                ancestors,
                tenant: self.lineage.tenant.clone(),
            },
            slots,
            stdout: self.stdout.clone(),
            stderr: self.stderr.clone(),
            deadline_cap: self.deadline.map(|(at, _)| at),
            fuel,
            grants: self.grants.clone(),
            modules: self.modules.clone(),
            dirs: Vec::new(),
        })
    }

    /// A store state for a one-off instance outside any interpreter (the JS
    /// snapshot's set-up run), with default limits and nowhere to write.
    pub(crate) fn scratch(counters: &Arc<Counters>) -> StoreData {
        let channels = channel::Registry::new(0);
        let limits = Limits::default();
        let out = Sink::new(OutputMode::Capture, limits.max_output());
        let mut wasi = WasiCtxBuilder::new();
        wasi.stdout(out.clone()).stderr(out.clone());
        let lineage = Lineage::root(&limits);
        StoreData {
            id: 0,
            wasi: wasi.build_p1(),
            limiter: Limiter::new(limits.max_memory(), false, lineage.tenant.clone()),
            handles: HandleTable::new(16, None),
            names: HashMap::new(),
            shared: Arc::new(Shared::default()),
            deadline: None,
            tally: Tally::default(),
            counters: counters.clone(),
            channels,
            limits,
            reported: None,
            grace: Duration::ZERO,
            fuel_start: u64::MAX,
            files: OpenFiles::new(lineage.tenant.clone()),
            stop_since: Cell::new(None),
            family: Box::new(NoFamily),
            stdout: out.clone(),
            stderr: out,
            lineage,
            memory: None,
            output: None,
            host_fns: Arc::default(),
            grants: Grants::default(),
            modules: None,
            dirs: Arc::new([]),
            last_fn: None,
        }
    }
}
