//! Interpreters: one wasm instance each, in its own `Store`, with its own
//! linear memory and handle table. Nothing of one is visible to another.

mod state;

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use wasmtime::{Instance, Store, TypedFunc, UpdateDeadline, Val};
use wasmtime_wasi::WasiCtxBuilder;

pub(crate) use self::state::{HostState, Lineage, Shared, Tally, Tree, TreeSlot};
pub use crate::id::InterpreterId;
pub(crate) use crate::outcome::Abort;
pub use crate::outcome::{ErrorKind, GuestError};
pub use crate::result::{RunResult, RunStats};

use self::state::{Limiter, Stopper};
use crate::channel::{RecvChannel, SendChannel};
use crate::error::{Error, LimitError};
use crate::guest::Guest;
use crate::handle::{Entry, HandleTable};
use crate::host::HostInner;
use crate::job::Job;
use crate::limits::Limits;
use crate::output::{OutputMode, Sink};
use crate::result::{Outcome, classify};

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

/// How long a JavaScript guest gets to stop by itself (its interrupt
/// handler polls the host) once its deadline passes or it is closed, before
/// the host stops it by force. A JS interpreter stopped by force is closed,
/// since its heap may be half-updated.
pub const JS_STOP_GRACE: Duration = Duration::from_millis(100);

/// How long past its deadline a run waits for its output to reach a host
/// stream that is not being read.
const OUTPUT_DRAIN_GRACE: Duration = Duration::from_millis(100);

#[derive(Debug, Clone)]
enum Body {
    Export(String),
    Js(String),
    JsModule { name: String, source: String },
}

/// What to run: the entry point (or JavaScript source) and the channel ends
/// the guest may look up by name (`subinterp_v1.lookup`; in JS, the global
/// `channels`).
#[derive(Debug, Clone)]
pub struct Run {
    body: Body,
    channels: Vec<(String, ChannelEnd)>,
    deadline_cap: Option<Instant>,
    fuel: Option<u64>,
}

impl Run {
    /// Run a WASI command's `_start`.
    pub fn start() -> Self {
        Run::export("_start")
    }

    /// Run the exported function `name` (type `()` or `() -> i32`).
    pub fn export(name: impl Into<String>) -> Self {
        Run {
            body: Body::Export(name.into()),
            channels: Vec::new(),
            deadline_cap: None,
            fuel: None,
        }
    }

    /// Evaluate JavaScript source as a global script in a JS interpreter
    /// (one created from [`Host::js`](crate::Host::js)); promise jobs run to
    /// completion before the run ends. Globals persist between runs.
    pub fn js(source: impl Into<String>) -> Self {
        Run {
            body: Body::Js(source.into()),
            channels: Vec::new(),
            deadline_cap: None,
            fuel: None,
        }
    }

    /// Evaluate JavaScript source as an ES module named `name` (top-level
    /// `await`, `import`/`export`). It can import, by name, the modules
    /// evaluated earlier in the same interpreter (`import { f } from
    /// "./util.js"` finds a module run as `"util.js"`); there is no loader
    /// for anything else.
    pub fn js_module(name: impl Into<String>, source: impl Into<String>) -> Self {
        Run {
            body: Body::JsModule {
                name: name.into(),
                source: source.into(),
            },
            channels: Vec::new(),
            deadline_cap: None,
            fuel: None,
        }
    }

    /// Ends the run no later than `at`, whatever the interpreter's timeout.
    pub(crate) fn deadline_cap(mut self, at: Option<Instant>) -> Self {
        self.deadline_cap = at;
        self
    }

    /// Gives the run this much fuel instead of the interpreter's own budget
    /// (fuel taken from a creator's run for its child's).
    pub(crate) fn fuel(mut self, fuel: Option<u64>) -> Self {
        self.fuel = fuel;
        self
    }

    /// Passes a channel end under `name`. A name bound by an earlier run of
    /// the same interpreter is rebound.
    pub fn channel(mut self, name: impl Into<String>, end: impl Into<ChannelEnd>) -> Self {
        self.channels.push((name.into(), end.into()));
        self
    }
}

struct JsFns {
    memory: wasmtime::Memory,
    alloc: TypedFunc<i32, i32>,
    eval: TypedFunc<(i32, i32), i32>,
    eval_module: TypedFunc<(i32, i32, i32, i32), i32>,
}

struct Live {
    store: Store<HostState>,
    instance: Instance,
    js: Option<JsFns>,
}

struct InterpInner {
    id: u64,
    host: Weak<HostInner>,
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
    js: bool,
    /// Its places in its ancestors' budgets of interpreters.
    slots: Mutex<Vec<TreeSlot>>,
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
    dirs: Vec<(std::path::PathBuf, String, bool)>,
    child_of: Option<ChildOf>,
}

/// What a guest-created interpreter inherits from its creator.
pub(crate) struct ChildOf {
    pub(crate) lineage: Lineage,
    pub(crate) slots: Vec<TreeSlot>,
    pub(crate) stdout: Sink,
    pub(crate) stderr: Sink,
    /// The creator's deadline: the child's creation ends by then.
    pub(crate) deadline_cap: Option<Instant>,
    /// Fuel for the creation, taken from the creator's (with fuel on).
    pub(crate) fuel: Option<u64>,
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
            dirs: Vec::new(),
            child_of: None,
        }
    }

    /// Grants the guest the host directory `host` (and everything below it)
    /// as `guest` in its WASI filesystem, read-only when `read_only`. No
    /// directory is granted by default.
    pub fn dir(
        mut self,
        host: impl Into<std::path::PathBuf>,
        guest: impl Into<String>,
        read_only: bool,
    ) -> Self {
        self.dirs.push((host.into(), guest.into(), read_only));
        self
    }

    /// Makes this a guest-created interpreter: it shares its creator's tree
    /// budget and output streams.
    pub(crate) fn child_of(mut self, c: ChildOf) -> Self {
        self.child_of = Some(c);
        self
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
        let cap = self.child_of.as_ref().and_then(|c| c.deadline_cap);
        let fuel = match &self.child_of {
            Some(c) => c.fuel,
            None => self.limits.get_fuel(),
        };
        let (lineage, slots, stdout, stderr, own_output) = match self.child_of {
            Some(c) => (c.lineage, c.slots, c.stdout, c.stderr, false),
            None => (
                Lineage::root(&self.limits),
                Vec::new(),
                Sink::new(self.stdout, self.limits.get_max_output()),
                Sink::new(self.stderr, self.limits.get_max_output()),
                true,
            ),
        };
        let js = self.guest.is_js();
        let creator = lineage.creator;
        let ancestors = lineage.ancestors.clone();
        let tenant = lineage.tenant.clone();
        let mut lineage = lineage;
        lineage.budgets.insert(0, Tree::new(&self.limits));
        let mut wasi = WasiCtxBuilder::new();
        wasi.stdout(stdout.clone())
            .stderr(stderr.clone())
            .args(&self.args)
            .envs(&self.env);
        if self.inherit_stdin {
            wasi.inherit_stdin();
        }
        for (host_dir, guest_dir, read_only) in &self.dirs {
            let perms = if *read_only {
                wasmtime_wasi::FsPerms::ReadOnly
            } else {
                wasmtime_wasi::FsPerms::ReadWrite
            };
            wasi.preopened_dir(host_dir, guest_dir, perms)
                .map_err(|e| {
                    Error::Io(std::io::Error::other(format!(
                        "granting {}: {e:#}",
                        host_dir.display()
                    )))
                })?;
        }
        let state = HostState {
            id,
            wasi: wasi.build_p1(),
            limiter: Limiter::new(self.limits.get_max_memory(), js, tenant.clone()),
            handles: HandleTable::new(self.limits.get_max_handles(), Some(tenant)),
            names: HashMap::new(),
            shared: shared.clone(),
            // Creation (instantiation, start functions, `_initialize`, the JS
            // set-up) is bounded by the same deadline as a run.
            deadline: deadline_from(&self.limits, cap),
            tally: Tally::default(),
            counters: self.host.counters.clone(),
            host: Arc::downgrade(self.host),
            limits: self.limits,
            reported: None,
            grace: if js { JS_STOP_GRACE } else { Duration::ZERO },
            fuel_start: u64::MAX,
            files: crate::abi::OpenFiles::new(lineage.tenant.clone()),
            stop_since: std::cell::Cell::new(None),
            children: Vec::new(),
            stdout: stdout.clone(),
            stderr: stderr.clone(),
            lineage,
        };
        let live = instantiate(self.host, &self.guest, state, &self.limits, fuel)?;
        let inner = Arc::new(InterpInner {
            id,
            host: Arc::downgrade(self.host),
            fuel: self.host.fuel,
            limits: self.limits,
            shared,
            running: AtomicBool::new(false),
            live: Mutex::new(Some(live)),
            own_output,
            stdout,
            stderr,
            creator,
            ancestors,
            js,
            slots: Mutex::new(slots),
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
    fuel: Option<u64>,
) -> Result<Live, Error> {
    let mut store = Store::new(&host.engine, state);
    store.limiter(|s| &mut s.limiter);
    store.epoch_deadline_callback(|ctx| {
        let state = ctx.data();
        match state.must_stop() {
            Some(abort) if !state.in_grace() => Err(wasmtime::Error::new(abort)),
            _ => Ok(UpdateDeadline::Continue(1)),
        }
    });
    store.set_epoch_deadline(1);
    if host.fuel {
        let _ = store.set_fuel(fuel.unwrap_or(u64::MAX));
    }
    let stop = store.data().stopper();
    let instance = stop
        .drive(guest.pre().instantiate_async(&mut store))
        .map_err(|e| {
            if let Some(p) = e.downcast_ref::<wasmtime::PoolConcurrencyLimitError>() {
                let _ = p;
                return Error::Limit(LimitError::TooManyInterpreters {
                    limit: host.pool_size,
                });
            }
            Error::Instantiate(classify(&e).error.unwrap_or_else(|| host_error(&e)))
        })?;
    let init_error = |e: wasmtime::Error| {
        Error::Instantiate(classify(&e).error.unwrap_or_else(|| host_error(&e)))
    };
    // A pre-initialised snapshot has run its constructors already.
    if !guest.is_preinitialized()
        && let Ok(init) = instance.get_typed_func::<(), ()>(&mut store, "_initialize")
    {
        stop.drive(init.call_async(&mut store, ()))
            .map_err(init_error)?;
    }
    let js = if guest.is_js() {
        let init = if guest.is_preinitialized() {
            "si_js_configure"
        } else {
            "si_js_init"
        };
        Some(
            init_js(&mut store, &instance, limits, init, &stop).map_err(|e| match e {
                JsInitError::Wasm(e) => init_error(e),
                JsInitError::Guest(e) => Error::Instantiate(e),
            })?,
        )
    } else {
        None
    };
    store.data_mut().deadline = None;
    Ok(Live {
        store,
        instance,
        js,
    })
}

enum JsInitError {
    Wasm(wasmtime::Error),
    Guest(GuestError),
}

/// QuickJS's own heap limit for a memory ceiling: the ceiling less the
/// guest's code, data and stack (about 2 MiB). The ceiling itself is what
/// stops a script: past it `memory.grow` fails, malloc returns NULL and
/// QuickJS throws a catchable out-of-memory error (the guest's libc
/// allocates in power-of-two size classes, so the linear memory, not
/// QuickJS's count of live bytes, is the figure that matters).
fn js_heap_limit(max_memory: usize) -> i32 {
    let limit = max_memory.saturating_sub(2 << 20).max(1 << 20);
    limit.min(u32::MAX as usize) as u32 as i32
}

/// Creates the JS runtime and context and evaluates the prelude.
fn init_js(
    store: &mut Store<HostState>,
    instance: &Instance,
    limits: &Limits,
    init: &str,
    stop: &Stopper,
) -> Result<JsFns, JsInitError> {
    let fns = JsFns {
        memory: instance
            .get_memory(&mut *store, "memory")
            .ok_or_else(|| JsInitError::Wasm(wasmtime::Error::msg("JS guest has no memory")))?,
        alloc: instance
            .get_typed_func(&mut *store, "si_js_alloc")
            .map_err(JsInitError::Wasm)?,
        eval: instance
            .get_typed_func(&mut *store, "si_js_eval")
            .map_err(JsInitError::Wasm)?,
        eval_module: instance
            .get_typed_func(&mut *store, "si_js_eval_module")
            .map_err(JsInitError::Wasm)?,
    };
    let init = instance
        .get_typed_func::<i32, i32>(&mut *store, init)
        .map_err(JsInitError::Wasm)?;
    let code = stop
        .drive(init.call_async(&mut *store, js_heap_limit(limits.get_max_memory())))
        .map_err(JsInitError::Wasm)?;
    if code != 0 {
        let reported = store.data_mut().reported.take();
        let mut err = js_error(reported.as_deref(), limits);
        err.message = format!(
            "JavaScript runtime failed to start ({code}): {}",
            err.message
        );
        return Err(JsInitError::Guest(err));
    }
    Ok(fns)
}

/// The error a JS guest reported with `run_error` (`{type, message, stack}`).
fn js_error(reported: Option<&str>, limits: &Limits) -> GuestError {
    let v: serde_json::Value = reported
        .and_then(|r| serde_json::from_str(r).ok())
        .unwrap_or_default();
    let field = |k: &str| v.get(k).and_then(|x| x.as_str()).unwrap_or("").to_string();
    let (name, message, stack) = (field("type"), field("message"), field("stack"));
    if name == "InternalError" && message == "out of memory" {
        let limit = limits.get_max_memory();
        return GuestError {
            kind: ErrorKind::MemoryLimit { limit },
            message: format!(
                "JavaScript heap limit exceeded (out of memory; memory limit {limit} bytes)"
            ),
            backtrace: Some(stack).filter(|s| !s.is_empty()),
        };
    }
    GuestError {
        kind: ErrorKind::Exception {
            name: if name.is_empty() {
                "Error".into()
            } else {
                name
            },
        },
        message: if reported.is_none() {
            "the script failed without reporting an error".into()
        } else {
            message
        },
        backtrace: Some(stack).filter(|s| !s.is_empty()),
    }
}

/// A host state for a one-off instance outside any interpreter (the JS
/// snapshot's set-up run).
pub(crate) fn scratch_state(counters: &Arc<crate::host::Counters>) -> HostState {
    let limits = Limits::default();
    let out = Sink::new(OutputMode::Capture, limits.get_max_output());
    let mut wasi = WasiCtxBuilder::new();
    wasi.stdout(out.clone()).stderr(out.clone());
    HostState {
        id: 0,
        wasi: wasi.build_p1(),
        limiter: Limiter::new(
            limits.get_max_memory(),
            false,
            Lineage::root(&limits).tenant,
        ),
        handles: HandleTable::new(16, None),
        names: HashMap::new(),
        shared: Arc::new(Shared::default()),
        deadline: None,
        tally: Tally::default(),
        counters: counters.clone(),
        host: Weak::new(),
        limits,
        lineage: Lineage::root(&limits),
        reported: None,
        grace: Duration::ZERO,
        fuel_start: u64::MAX,
        files: crate::abi::OpenFiles::new(Lineage::root(&limits).tenant),
        stop_since: std::cell::Cell::new(None),
        children: Vec::new(),
        stdout: out.clone(),
        stderr: out,
    }
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
        self.inner.shared.purge_owned();
        if let Some(host) = self.inner.host.upgrade() {
            host.unregister(self.inner.id);
        }
        drop(std::mem::take(&mut *self.inner.slots.lock()));
        if let Some(mut slot) = self.inner.live.try_lock() {
            drop(slot.take());
        }
    }

    /// The ids from its tree's root down to its creator (empty for an
    /// interpreter the host created).
    pub(crate) fn ancestors(&self) -> &[u64] {
        &self.inner.ancestors
    }

    /// The fuel left in its store (`None` with fuel off, or while it runs).
    pub(crate) fn fuel_left(&self) -> Option<u64> {
        let live = self.inner.live.try_lock()?;
        live.as_ref()?.store.get_fuel().ok()
    }

    /// Whether this interpreter runs JavaScript.
    pub fn is_js(&self) -> bool {
        self.inner.js
    }

    /// The interpreter that created this one ([`InterpreterId::MAIN`]: the host).
    pub fn creator(&self) -> InterpreterId {
        InterpreterId(self.inner.creator)
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
        let (result, poisoned) = self.run_live(live, run);
        if poisoned {
            // A JS heap stopped by force mid-update cannot be trusted again.
            drop(slot);
            self.close();
            return result;
        }
        if self.is_closed() {
            drop(slot.take());
        }
        result
    }

    /// Starts `run` on its own thread; [`RunJob::join`] waits for it.
    ///
    /// # Panics
    /// If the host cannot start a thread.
    pub fn start(&self, run: Run) -> RunJob {
        let me = self.clone();
        let name = format!("subinterp-run-{}", self.inner.id);
        RunJob {
            id: self.id(),
            job: Job::spawn(name, move || me.run(run)).expect("spawning a run thread"),
        }
    }

    /// Runs `run` in the live instance; the flag says whether the
    /// interpreter must be closed after it (a JS guest stopped by force).
    fn run_live(&self, live: &mut Live, run: Run) -> (Result<RunResult, Error>, bool) {
        let (cap, channels) = ((run.deadline_cap, run.fuel), run.channels);
        match run.body {
            Body::Export(ref name) => (self.run_export(live, name, channels, cap), false),
            _ if live.js.is_none() => (Err(Error::NotJavaScript(self.id())), false),
            Body::Js(ref source) => self.run_js(live, None, source, channels, cap),
            Body::JsModule {
                ref name,
                ref source,
            } => self.run_js(live, Some(name), source, channels, cap),
        }
    }

    fn run_export(
        &self,
        live: &mut Live,
        export: &str,
        channels: Vec<(String, ChannelEnd)>,
        cap: (Option<Instant>, Option<u64>),
    ) -> Result<RunResult, Error> {
        let func = live
            .instance
            .get_func(&mut live.store, export)
            .filter(|f| {
                let ty = f.ty(&live.store);
                ty.params().len() == 0 && ty.results().len() <= 1
            })
            .ok_or_else(|| Error::NoSuchExport(export.to_string()))?;
        bind_channels(live.store.data_mut(), channels)?;
        self.prepare(&mut live.store, cap);
        let started = Instant::now();
        let mut results = vec![Val::I32(0); func.ty(&live.store).results().len()];
        let prev = CURRENT.with(|c| c.replace(self.inner.id));
        let stop = live.store.data().stopper();
        let call = stop.drive(func.call_async(&mut live.store, &[], &mut results));
        CURRENT.with(|c| c.set(prev));
        let wall = started.elapsed();
        let outcome = match call {
            Ok(()) => Outcome {
                error: None,
                exit_code: (export == "_start").then_some(0),
            },
            Err(e) => classify(&e),
        };
        Ok(self.finish(
            &mut live.store,
            outcome,
            results.first().and_then(Val::i32),
            wall,
        ))
    }

    fn run_js(
        &self,
        live: &mut Live,
        module: Option<&str>,
        source: &str,
        channels: Vec<(String, ChannelEnd)>,
        cap: (Option<Instant>, Option<u64>),
    ) -> (Result<RunResult, Error>, bool) {
        if let Err(e) = bind_channels(live.store.data_mut(), channels) {
            return (Err(e), false);
        }
        self.prepare(&mut live.store, cap);
        let fns = live.js.as_ref().expect("checked by the caller");
        let (memory, alloc, eval, eval_module) = (
            fns.memory,
            fns.alloc.clone(),
            fns.eval.clone(),
            fns.eval_module.clone(),
        );
        let started = Instant::now();
        let prev = CURRENT.with(|c| c.replace(self.inner.id));
        let oom = || {
            wasmtime::Error::new(Abort::MemoryLimit {
                limit: self.inner.limits.get_max_memory(),
            })
        };
        let stop = live.store.data().stopper();
        // Copies `text` into a fresh guest buffer: (pointer, length).
        let put = |store: &mut Store<HostState>, text: &str| -> wasmtime::Result<(i32, i32)> {
            let len = i32::try_from(text.len()).map_err(|_| oom())?;
            let ptr = stop.drive(alloc.call_async(&mut *store, len))?;
            if ptr == 0 {
                return Err(oom());
            }
            memory.write(&mut *store, ptr as u32 as usize, text.as_bytes())?;
            Ok((ptr, len))
        };
        let call = (|| -> wasmtime::Result<i32> {
            let (ptr, len) = put(&mut live.store, source)?;
            match module {
                None => stop.drive(eval.call_async(&mut live.store, (ptr, len))),
                Some(name) => {
                    let (np, nl) = put(&mut live.store, name)?;
                    stop.drive(eval_module.call_async(&mut live.store, (ptr, len, np, nl)))
                }
            }
        })();
        CURRENT.with(|c| c.set(prev));
        let wall = started.elapsed();
        let state = live.store.data_mut();
        let reported = state.reported.take();
        let (outcome, poisoned) = match call {
            Ok(0) => (
                Outcome {
                    error: None,
                    exit_code: None,
                },
                false,
            ),
            Ok(_) => {
                let error = match state.must_stop() {
                    Some(abort) => GuestError {
                        kind: abort.kind(),
                        message: abort.to_string(),
                        backtrace: None,
                    },
                    None => {
                        let mut e = js_error(reported.as_deref(), &self.inner.limits);
                        // Whatever the script threw last, it ran out of memory
                        // on the way: name the limit.
                        if state.limiter.hit && !matches!(e.kind, ErrorKind::MemoryLimit { .. }) {
                            let limit = self.inner.limits.get_max_memory();
                            e.message = format!(
                                "memory limit of {limit} bytes reached (the script then failed with {}: {})",
                                e.kind.type_name(),
                                e.message
                            );
                            e.kind = ErrorKind::MemoryLimit { limit };
                        }
                        e
                    }
                };
                (
                    Outcome {
                        error: Some(error),
                        exit_code: None,
                    },
                    false,
                )
            }
            Err(e) => (classify(&e), true),
        };
        (
            Ok(self.finish(&mut live.store, outcome, None, wall)),
            poisoned,
        )
    }

    fn prepare(&self, store: &mut Store<HostState>, (cap, fuel): (Option<Instant>, Option<u64>)) {
        let limits = &self.inner.limits;
        let state = store.data_mut();
        state.deadline = deadline_from(limits, cap);
        state.fuel_start = fuel.or(limits.get_fuel()).unwrap_or(u64::MAX);
        state.tally = Tally::default();
        state.reported = None;
        state.limiter.hit = false;
        state.stop_since.set(None);
        if self.inner.fuel {
            let start = store.data().fuel_start;
            let _ = store.set_fuel(start);
        }
        store.set_epoch_deadline(1);
        if self.inner.own_output {
            self.inner.stdout.reset();
            self.inner.stderr.reset();
        }
    }

    fn finish(
        &self,
        store: &mut Store<HostState>,
        mut outcome: Outcome,
        value: Option<i32>,
        wall: std::time::Duration,
    ) -> RunResult {
        let start = store.data().fuel_start;
        if let Some(err) = outcome.error.as_mut()
            && err.kind == ErrorKind::Trap(wasmtime::Trap::OutOfFuel)
        {
            err.kind = ErrorKind::OutOfFuel { limit: start };
            err.message = format!("instruction budget of {start} exhausted");
        }
        let fuel_used = if self.inner.fuel {
            store.get_fuel().ok().map(|left| start.saturating_sub(left))
        } else {
            None
        };
        if self.inner.own_output {
            // What went to the host's streams is written before the run
            // returns, unless the reader does not read: then no longer than
            // the deadline allows (and a moment more), or until a close.
            let until = store
                .data()
                .deadline
                .map(|(at, _)| at.max(Instant::now()) + OUTPUT_DRAIN_GRACE);
            let closed = &self.inner.shared.closed;
            self.inner.stdout.drain(until, closed);
            self.inner.stderr.drain(until, closed);
        }
        let tally = &store.data().tally;
        let stats = RunStats {
            bytes_copied_out: tally.copied_out.load(Ordering::Relaxed),
            bytes_copied_in: tally.copied_in.load(Ordering::Relaxed),
            buffers_forwarded: tally.forwarded.load(Ordering::Relaxed),
            messages_sent: tally.sent.load(Ordering::Relaxed),
            messages_received: tally.received.load(Ordering::Relaxed),
            fuel_used,
        };
        RunResult {
            completed: outcome.error.is_none(),
            error: outcome.error,
            exit_code: outcome.exit_code,
            value,
            stdout: if self.inner.own_output {
                self.inner.stdout.take()
            } else {
                Vec::new()
            },
            stderr: if self.inner.own_output {
                self.inner.stderr.take()
            } else {
                Vec::new()
            },
            wall,
            stats,
        }
    }
}

/// The deadline of a call starting now under `limits`, no later than `cap`,
/// with the limit it comes from.
fn deadline_from(limits: &Limits, cap: Option<Instant>) -> Option<(Instant, Duration)> {
    let now = Instant::now();
    let own = limits
        .get_timeout()
        .and_then(|t| Some((now.checked_add(t)?, t)));
    match (own, cap) {
        (Some((at, _)), Some(c)) if c < at => Some((c, c.saturating_duration_since(now))),
        (None, Some(c)) => Some((c, c.saturating_duration_since(now))),
        (own, _) => own,
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
    job: Arc<Job<Result<RunResult, Error>>>,
}

impl RunJob {
    /// The interpreter the job runs in.
    pub fn interpreter_id(&self) -> InterpreterId {
        self.id
    }

    /// Whether the run has ended.
    pub fn is_finished(&self) -> bool {
        self.job.is_finished()
    }

    /// Waits for the run to end and returns its result.
    ///
    /// # Errors
    /// As [`Interpreter::run`].
    ///
    /// # Panics
    /// If the run's thread panicked (a host bug, never a guest's doing).
    pub fn join(self) -> Result<RunResult, Error> {
        match self.job.wait(None, None) {
            Ok(result) => result,
            Err(_) => panic!("run thread panicked"),
        }
    }
}
