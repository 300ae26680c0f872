//! Interpreters: one wasm instance each, in its own `Store`, with its own
//! linear memory and handle table. Nothing of one is visible to another.

mod result;
mod state;

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::thread::JoinHandle;
use std::time::Instant;

use parking_lot::Mutex;
use wasmtime::{Instance, Store, UpdateDeadline, Val};
use wasmtime_wasi::WasiCtxBuilder;

pub use self::result::{ErrorKind, GuestError, RunResult, RunStats};
pub(crate) use self::state::{Abort, HostState, Shared, Tally};

use self::result::{Outcome, classify};
use self::state::Limiter;
use crate::channel::{RecvChannel, SendChannel};
use crate::error::{Error, LimitError};
use crate::guest::Guest;
use crate::handle::{Entry, HandleTable};
use crate::host::HostInner;
use crate::limits::Limits;
use crate::output::{OutputMode, Sink};

/// An interpreter's id, unique within a [`Host`](crate::Host). Id 0 is the
/// host itself ([`InterpreterId::MAIN`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct InterpreterId(pub u64);

impl InterpreterId {
    /// The host itself: the "main" interpreter of PEP 554.
    pub const MAIN: InterpreterId = InterpreterId(0);
}

impl fmt::Display for InterpreterId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "interpreter {}", self.0)
    }
}

thread_local! {
    static CURRENT: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// The interpreter whose guest is running on this thread, or
/// [`InterpreterId::MAIN`] outside any guest.
pub fn current() -> InterpreterId {
    InterpreterId(CURRENT.with(|c| c.get()))
}

/// A channel end handed to a run by name.
#[derive(Debug, Clone)]
pub enum ChannelEnd {
    /// A receiving end.
    Recv(RecvChannel),
    /// A sending end.
    Send(SendChannel),
}

impl From<RecvChannel> for ChannelEnd {
    fn from(e: RecvChannel) -> Self {
        ChannelEnd::Recv(e)
    }
}

impl From<SendChannel> for ChannelEnd {
    fn from(e: SendChannel) -> Self {
        ChannelEnd::Send(e)
    }
}

/// What to run: the entry point and the channel ends the guest may look up
/// by name (`subinterp_v1.lookup`).
#[derive(Debug, Clone)]
pub struct Run {
    export: String,
    channels: Vec<(String, ChannelEnd)>,
}

impl Run {
    /// Run a WASI command's `_start`.
    pub fn start() -> Self {
        Run::export("_start")
    }

    /// Run the exported function `name` (type `()` or `() -> i32`).
    pub fn export(name: impl Into<String>) -> Self {
        Run {
            export: name.into(),
            channels: Vec::new(),
        }
    }

    /// Passes a channel end under `name`. A name bound by an earlier run of
    /// the same interpreter is rebound.
    pub fn channel(mut self, name: impl Into<String>, end: impl Into<ChannelEnd>) -> Self {
        self.channels.push((name.into(), end.into()));
        self
    }
}

struct Live {
    store: Store<HostState>,
    instance: Instance,
}

struct InterpInner {
    id: u64,
    host: Weak<HostInner>,
    fuel: bool,
    limits: Limits,
    shared: Arc<Shared>,
    running: AtomicBool,
    live: Mutex<Option<Live>>,
    stdout: Sink,
    stderr: Sink,
}

/// One sandboxed interpreter. Cheap to clone (a handle); it lives until
/// [`close`](Self::close) or until its [`Host`](crate::Host) is dropped.
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

/// Options for a new interpreter; from [`Host::interpreter`](crate::Host::interpreter).
pub struct InterpreterBuilder<'h> {
    host: &'h Arc<HostInner>,
    guest: Guest,
    limits: Limits,
    args: Vec<String>,
    env: Vec<(String, String)>,
    stdout: OutputMode,
    stderr: OutputMode,
    inherit_stdin: bool,
}

impl<'h> InterpreterBuilder<'h> {
    pub(crate) fn new(host: &'h Arc<HostInner>, guest: &Guest) -> Self {
        InterpreterBuilder {
            host,
            guest: guest.clone(),
            limits: Limits::default(),
            args: vec![guest.name().to_string()],
            env: Vec::new(),
            stdout: OutputMode::Capture,
            stderr: OutputMode::Capture,
            inherit_stdin: false,
        }
    }

    /// The interpreter's limits (default: [`Limits::default`]).
    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// The guest's argv (default: the guest's name alone).
    pub fn args<S: Into<String>>(mut self, args: impl IntoIterator<Item = S>) -> Self {
        self.args = args.into_iter().map(Into::into).collect();
        self
    }

    /// Grants one environment variable (none by default).
    pub fn env(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }

    /// Where the guest's stdout goes (default: captured).
    pub fn stdout(mut self, mode: OutputMode) -> Self {
        self.stdout = mode;
        self
    }

    /// Where the guest's stderr goes (default: captured).
    pub fn stderr(mut self, mode: OutputMode) -> Self {
        self.stderr = mode;
        self
    }

    /// Lets the guest read the host process's stdin (default: empty stdin).
    pub fn inherit_stdin(mut self, yes: bool) -> Self {
        self.inherit_stdin = yes;
        self
    }

    /// Creates the interpreter: a new store and instance (a reactor's
    /// `_initialize` runs now).
    ///
    /// # Errors
    /// [`Error::Limit`] when the instance pool is full,
    /// [`Error::Instantiate`] when the module's start code traps.
    pub fn create(self) -> Result<Interpreter, Error> {
        let id = self.host.next_id();
        let shared = Arc::new(Shared::default());
        let stdout = Sink::new(self.stdout, self.limits.get_max_output());
        let stderr = Sink::new(self.stderr, self.limits.get_max_output());
        let mut wasi = WasiCtxBuilder::new();
        wasi.stdout(stdout.clone())
            .stderr(stderr.clone())
            .args(&self.args)
            .envs(&self.env);
        if self.inherit_stdin {
            wasi.inherit_stdin();
        }
        let state = HostState {
            id,
            wasi: wasi.build_p1(),
            limiter: Limiter {
                max_memory: self.limits.get_max_memory(),
            },
            handles: HandleTable::new(id, self.limits.get_max_handles()),
            names: HashMap::new(),
            shared: shared.clone(),
            deadline: None,
            tally: Tally::default(),
            counters: self.host.counters.clone(),
            host: Arc::downgrade(self.host),
        };
        let live = instantiate(self.host, &self.guest, state, &self.limits)?;
        let inner = Arc::new(InterpInner {
            id,
            host: Arc::downgrade(self.host),
            fuel: self.host.fuel,
            limits: self.limits,
            shared,
            running: AtomicBool::new(false),
            live: Mutex::new(Some(live)),
            stdout,
            stderr,
        });
        let interp = Interpreter { inner };
        self.host.register(&interp);
        Ok(interp)
    }
}

fn instantiate(
    host: &HostInner,
    guest: &Guest,
    state: HostState,
    limits: &Limits,
) -> Result<Live, Error> {
    let mut store = Store::new(&host.engine, state);
    store.limiter(|s| &mut s.limiter);
    store.epoch_deadline_callback(|ctx| match ctx.data().must_stop() {
        Some(abort) => Err(wasmtime::Error::new(abort)),
        None => Ok(UpdateDeadline::Continue(1)),
    });
    store.set_epoch_deadline(1);
    if host.fuel {
        let _ = store.set_fuel(limits.get_fuel().unwrap_or(u64::MAX));
    }
    let instance = guest.pre().instantiate(&mut store).map_err(|e| {
        if let Some(p) = e.downcast_ref::<wasmtime::PoolConcurrencyLimitError>() {
            let _ = p;
            return Error::Limit(LimitError::TooManyInterpreters {
                limit: host.pool_size,
            });
        }
        Error::Instantiate(classify(&e).error.unwrap_or_else(|| host_error(&e)))
    })?;
    if let Ok(init) = instance.get_typed_func::<(), ()>(&mut store, "_initialize") {
        init.call(&mut store, ()).map_err(|e| {
            Error::Instantiate(classify(&e).error.unwrap_or_else(|| host_error(&e)))
        })?;
    }
    Ok(Live { store, instance })
}

fn host_error(e: &wasmtime::Error) -> GuestError {
    GuestError {
        kind: ErrorKind::Host,
        message: format!("{e:#}"),
        backtrace: None,
    }
}

/// Clears the `running` flag however the run ends.
struct RunningGuard<'a>(&'a AtomicBool);

impl Drop for RunningGuard<'_> {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}

impl Interpreter {
    /// The interpreter's id.
    pub fn id(&self) -> InterpreterId {
        InterpreterId(self.inner.id)
    }

    /// Whether a run is going on now.
    pub fn is_running(&self) -> bool {
        self.inner.running.load(Ordering::Acquire)
    }

    /// Whether the interpreter has been closed.
    pub fn is_closed(&self) -> bool {
        self.inner.shared.closed.load(Ordering::Acquire)
    }

    /// The interpreter's limits.
    pub fn limits(&self) -> Limits {
        self.inner.limits
    }

    /// Closes the interpreter: its store, memory and handles are freed (a
    /// running guest is stopped at its next epoch tick, or when its channel
    /// wait notices, and its run ends with [`ErrorKind::Closed`]). Messages it
    /// sent that are still queued stay in their channels. Closing twice is a
    /// no-op.
    pub fn close(&self) {
        self.inner.shared.closed.store(true, Ordering::Release);
        if let Some(host) = self.inner.host.upgrade() {
            host.unregister(self.inner.id);
        }
        if let Some(mut slot) = self.inner.live.try_lock() {
            drop(slot.take());
        }
    }

    /// Runs `run` in this interpreter, blocking the caller, and returns what
    /// happened. State persists between runs (the instance stays).
    ///
    /// # Errors
    /// [`Error::InterpreterClosed`], [`Error::InterpreterRunning`],
    /// [`Error::NoSuchExport`], or [`Error::Limit`] when the channel ends
    /// would exceed the handle cap. A guest failure is not an `Err`: it is in
    /// [`RunResult::error`].
    pub fn run(&self, run: Run) -> Result<RunResult, Error> {
        let inner = &self.inner;
        if self.is_closed() {
            return Err(Error::InterpreterClosed(self.id()));
        }
        if inner.running.swap(true, Ordering::AcqRel) {
            return Err(Error::InterpreterRunning(self.id()));
        }
        let _guard = RunningGuard(&inner.running);
        let mut slot = inner.live.lock();
        let live = slot.as_mut().ok_or(Error::InterpreterClosed(self.id()))?;
        let result = self.run_live(live, run);
        if self.is_closed() {
            drop(slot.take());
        }
        result
    }

    /// Starts `run` on its own thread; [`RunJob::join`] waits for it.
    pub fn start(&self, run: Run) -> RunJob {
        let me = self.clone();
        RunJob {
            id: self.id(),
            handle: std::thread::spawn(move || me.run(run)),
        }
    }

    fn run_live(&self, live: &mut Live, run: Run) -> Result<RunResult, Error> {
        let func = live
            .instance
            .get_func(&mut live.store, &run.export)
            .filter(|f| {
                let ty = f.ty(&live.store);
                ty.params().len() == 0 && ty.results().len() <= 1
            })
            .ok_or_else(|| Error::NoSuchExport(run.export.clone()))?;
        bind_channels(live.store.data_mut(), run.channels)?;
        self.prepare(&mut live.store);
        let started = Instant::now();
        let mut results = vec![Val::I32(0); func.ty(&live.store).results().len()];
        let prev = CURRENT.with(|c| c.replace(self.inner.id));
        let call = func.call(&mut live.store, &[], &mut results);
        CURRENT.with(|c| c.set(prev));
        let wall = started.elapsed();
        Ok(self.finish(&mut live.store, call, &results, wall, &run.export))
    }

    fn prepare(&self, store: &mut Store<HostState>) {
        let limits = &self.inner.limits;
        store.data_mut().deadline = limits
            .get_timeout()
            .and_then(|t| Some((Instant::now().checked_add(t)?, t)));
        store.data_mut().tally = Tally::default();
        if self.inner.fuel {
            let _ = store.set_fuel(limits.get_fuel().unwrap_or(u64::MAX));
        }
        store.set_epoch_deadline(1);
        self.inner.stdout.reset();
        self.inner.stderr.reset();
    }

    fn finish(
        &self,
        store: &mut Store<HostState>,
        call: wasmtime::Result<()>,
        results: &[Val],
        wall: std::time::Duration,
        export: &str,
    ) -> RunResult {
        let mut outcome = match call {
            Ok(()) => Outcome {
                error: None,
                exit_code: (export == "_start").then_some(0),
            },
            Err(e) => classify(&e),
        };
        let fuel_limit = self.inner.limits.get_fuel();
        if let (Some(err), Some(limit)) = (outcome.error.as_mut(), fuel_limit)
            && err.kind == ErrorKind::Trap(wasmtime::Trap::OutOfFuel)
        {
            err.kind = ErrorKind::OutOfFuel { limit };
            err.message = format!("instruction budget of {limit} exhausted");
        }
        let fuel_used = if self.inner.fuel {
            let start = fuel_limit.unwrap_or(u64::MAX);
            store.get_fuel().ok().map(|left| start - left)
        } else {
            None
        };
        let tally = &store.data().tally;
        let stats = RunStats {
            bytes_copied_out: tally.copied_out.load(Ordering::Relaxed),
            bytes_copied_in: tally.copied_in.load(Ordering::Relaxed),
            buffers_forwarded: tally.forwarded.load(Ordering::Relaxed),
            fuel_used,
        };
        RunResult {
            completed: outcome.error.is_none(),
            error: outcome.error,
            exit_code: outcome.exit_code,
            value: results.first().and_then(Val::i32),
            stdout: self.inner.stdout.take(),
            stderr: self.inner.stderr.take(),
            wall,
            stats,
        }
    }
}

/// Puts the named channel ends into the handle table, rebinding names.
fn bind_channels(state: &mut HostState, channels: Vec<(String, ChannelEnd)>) -> Result<(), Error> {
    for (name, end) in channels {
        let entry = match end {
            ChannelEnd::Recv(r) => Entry::Recv(r),
            ChannelEnd::Send(s) => Entry::Send(s),
        };
        let handle = state.handles.insert(entry).map_err(|_| {
            Error::Limit(LimitError::TooManyHandles {
                limit: state.handles_limit(),
            })
        })?;
        if let Some(old) = state.names.insert(name, handle) {
            let _ = state.handles.remove(old);
        }
    }
    Ok(())
}

impl HostState {
    fn handles_limit(&self) -> usize {
        self.handles.limit()
    }
}

/// A run going on on its own thread, from [`Interpreter::start`].
pub struct RunJob {
    id: InterpreterId,
    handle: JoinHandle<Result<RunResult, Error>>,
}

impl RunJob {
    /// The interpreter the job runs in.
    pub fn interpreter_id(&self) -> InterpreterId {
        self.id
    }

    /// Whether the run has ended.
    pub fn is_finished(&self) -> bool {
        self.handle.is_finished()
    }

    /// Waits for the run to end and returns its result.
    ///
    /// # Errors
    /// As [`Interpreter::run`].
    ///
    /// # Panics
    /// If the run's thread panicked (a host bug, never a guest's doing).
    pub fn join(self) -> Result<RunResult, Error> {
        self.handle.join().expect("run thread panicked")
    }
}
