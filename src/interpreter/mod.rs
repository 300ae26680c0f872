//! Interpreters: one wasm instance each, in its own `Store`, with its own
//! linear memory and handle table. Nothing of one is visible to another.

mod builder;
mod call;
mod calls;
mod family;
mod registry;
mod run;
mod source;
mod typed;

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use wasmtime::{Instance, Store, TypedFunc, UpdateDeadline, Val};
use wasmtime_wasi::WasiCtxBuilder;

pub(crate) use self::registry::{Registry, Settings};
pub use crate::id::InterpreterId;

use self::family::Kin;
use crate::channel::ChannelEnd;
use crate::error::{Error, LimitError};
use crate::guest::Guest;
use crate::handle::HandleTable;
use crate::job::Job;
use crate::language::Language;
use crate::limits::Limits;
use crate::outcome::{ErrorKind, GuestError, Trap};
use crate::output::{OutputMode, Sink};
use crate::result::{Outcome, RunResult, RunStats, classify};
use crate::store::{
    Entry, Limiter, Lineage, OpenFiles, Parent, Shared, StoreData, Tally, Tree, TreeSlot,
};

thread_local! {
    static CURRENT: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// The interpreter whose guest is running on this thread, or
/// [`InterpreterId::MAIN`] outside any guest.
pub fn current() -> InterpreterId {
    InterpreterId(CURRENT.with(|c| c.get()))
}

struct Live {
    store: Store<StoreData>,
    instance: Instance,
    source: Option<SourceFns>,
}

struct InterpInner {
    id: u64,
    host: Weak<Registry>,
    fuel: bool,
    limits: Limits,
    shared: Arc<Shared>,
    running: AtomicBool,
    live: Mutex<Option<Live>>,
    /// Whether the output sinks are this interpreter's own (false: it writes
    /// into its creator's, and its runs neither reset nor take them).
    own_output: bool,
    stdout: Sink,
    stderr: Sink,
    creator: u64,
    /// The ids from its tree's root down to its creator.
    ancestors: Vec<u64>,
    language: Option<Language>,
    /// Its places in its ancestors' budgets of interpreters.
    slots: Mutex<Vec<TreeSlot>>,
}

impl InterpInner {
    /// Marks it closed, empties the channels its guest created, leaves the
    /// registry and gives back its places in its ancestors' budgets. The
    /// store goes with the last handle (or at once, from `close`).
    fn close(&self) {
        self.shared.closed.store(true, Ordering::Release);
        self.shared.purge_owned();
        if let Some(host) = self.host.upgrade() {
            host.unregister(self.id);
        }
        drop(std::mem::take(&mut *self.slots.lock()));
    }
}

impl Drop for InterpInner {
    /// The last handle is gone: nobody can run it again, so it is closed and
    /// its slot freed.
    fn drop(&mut self) {
        self.close();
    }
}

/// One sandboxed interpreter. Cheap to clone (a handle); it lives until
/// [`close`](Self::close), until its last handle is dropped, or until its
/// [`Host`](crate::Host) is dropped. A job started on it holds a handle
/// until the run ends; a child a guest created lives as long as its creator.
#[derive(Clone)]
pub struct Interpreter {
    inner: Arc<InterpInner>,
}

impl fmt::Debug for Interpreter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Interpreter")
            .field("id", &self.inner.id)
            .field("running", &self.is_running())
            .finish()
    }
}

pub use self::builder::InterpreterBuilder;
use self::builder::deadline_from;
use self::calls::bind_channels;
use self::run::Body;
pub use self::run::{Run, RunJob};
pub use self::source::STOP_GRACE;
use self::source::{InitError, SourceFns, init_source};
pub use self::typed::{TypedCall, WasmValues};
