//! Creating an interpreter: its options, its store and WASI context, and
//! its instantiation under the creation deadline.

use wasmtime_wasi::p1::WasiP1Ctx;

use super::source::set_module_root;
use super::*;
use crate::error::BoxError;
use crate::store::DirGrant;

/// Options for a new interpreter; from [`Host::interpreter`](crate::Host::interpreter).
pub struct InterpreterBuilder<'h> {
    host: &'h Arc<Registry>,
    guest: Guest,
    limits: Limits,
    args: Vec<String>,
    env: Vec<(String, String)>,
    stdout: OutputMode,
    stderr: OutputMode,
    inherit_stdin: bool,
    stdin: Option<bytes::Bytes>,
    dirs: Vec<(std::path::PathBuf, String, bool)>,
    child_of: Option<Parent>,
    allowed: std::collections::BTreeSet<String>,
    modules: Option<std::path::PathBuf>,
    init: Option<Run>,
}

/// A JavaScript interpreter's module folder: the canonical host directory,
/// its guest path (the same path), and whether a directory grant of the
/// same guest path gives it to the script's files as well.
struct ModuleRoot {
    host: Arc<std::path::PathBuf>,
    guest: String,
    shared: bool,
}

impl std::fmt::Debug for InterpreterBuilder<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InterpreterBuilder")
            .field("guest", &self.guest)
            .field("limits", &self.limits)
            .field("args", &self.args)
            .field("dirs", &self.dirs)
            .field("allowed", &self.allowed)
            .finish_non_exhaustive()
    }
}

impl<'h> InterpreterBuilder<'h> {
    pub(crate) fn new(host: &'h Arc<Registry>, guest: &Guest) -> Self {
        InterpreterBuilder {
            host,
            guest: guest.clone(),
            limits: Limits::default(),
            args: vec![guest.name().to_string()],
            env: Vec::new(),
            stdout: OutputMode::Capture,
            stderr: OutputMode::Capture,
            inherit_stdin: false,
            stdin: None,
            dirs: Vec::new(),
            child_of: None,
            allowed: std::collections::BTreeSet::new(),
            modules: None,
            init: None,
        }
    }

    /// Gives a JavaScript interpreter the module folder `dir`: `import` of
    /// a relative or absolute path (from a module, or `import()` from a
    /// script) loads that `.js`, `.mjs` or `.cjs` file from `dir` or below,
    /// read-only. The folder appears in the guest at its canonical host
    /// path (run the main module as [`Run::js_module`] named by its
    /// canonical path, or with [`Run::js_module_file`]); imports cannot
    /// leave it, by `..`, an absolute path or a symlink. It is not one of
    /// the script's files: `node:fs` cannot read it unless [`dir`](Self::dir)
    /// grants it too under the same guest path. The interpreters the script
    /// creates get the same folder. None by default; ignored for other
    /// guests.
    #[must_use]
    pub fn modules(mut self, dir: impl Into<std::path::PathBuf>) -> Self {
        self.modules = Some(dir.into());
        self
    }

    /// A run made when the interpreter is built (a plugin's own source, say,
    /// that defines the functions the host then calls): its failure is
    /// [`build`](Self::build)'s, and the interpreter is closed.
    #[must_use]
    pub fn init(mut self, run: Run) -> Self {
        self.init = Some(run);
        self
    }

    /// Grants the host function `name` (registered with
    /// [`HostBuilder::func`](crate::HostBuilder::func)): its guest may call
    /// it. None is granted by default; the children a guest creates get at
    /// most what their creator has.
    #[must_use]
    pub fn allow(mut self, name: impl Into<String>) -> Self {
        self.allowed.insert(name.into());
        self
    }

    /// Grants the guest the host directory `host` (and everything below it)
    /// as `guest` in its WASI filesystem, read-only when `read_only`. No
    /// directory is granted by default.
    #[must_use]
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
    pub(crate) fn child_of(mut self, c: Parent) -> Self {
        self.child_of = Some(c);
        self
    }

    /// The interpreter's limits (default: [`Limits::default`]).
    #[must_use]
    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// The guest's argv (default: the guest's name alone).
    #[must_use]
    pub fn args<S: Into<String>>(mut self, args: impl IntoIterator<Item = S>) -> Self {
        self.args = args.into_iter().map(Into::into).collect();
        self
    }

    /// Grants one environment variable (none by default).
    #[must_use]
    pub fn env(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }

    /// Where the guest's stdout goes (default: captured).
    #[must_use]
    pub fn stdout(mut self, mode: OutputMode) -> Self {
        self.stdout = mode;
        self
    }

    /// Where the guest's stderr goes (default: captured).
    #[must_use]
    pub fn stderr(mut self, mode: OutputMode) -> Self {
        self.stderr = mode;
        self
    }

    /// Lets the guest read the host process's stdin (default: empty stdin).
    #[must_use]
    pub fn inherit_stdin(mut self, yes: bool) -> Self {
        self.inherit_stdin = yes;
        if yes {
            self.stdin = None;
        }
        self
    }

    /// Gives the guest these bytes as its stdin (then its end), in place of
    /// an empty stdin or the host's ([`inherit_stdin`](Self::inherit_stdin)).
    #[must_use]
    pub fn stdin_bytes(mut self, bytes: impl Into<bytes::Bytes>) -> Self {
        self.stdin = Some(bytes.into());
        self.inherit_stdin = false;
        self
    }

    /// Creates the interpreter: a new store and instance (a reactor's
    /// `_initialize` runs now), then the [`init`](Self::init) run if any.
    ///
    /// # Errors
    /// [`Error::Limit`] when the instance pool is full,
    /// [`Error::Instantiate`] when the module's start code traps; as
    /// [`Interpreter::run`] and [`RunResult::check`] for the `init` run.
    pub fn build(mut self) -> Result<Interpreter, Error> {
        let init = self.init.take();
        let interp = self.create()?;
        if let Some(run) = init
            && let Err(e) = interp.run(run).and_then(RunResult::check)
        {
            interp.close();
            return Err(e);
        }
        Ok(interp)
    }

    fn create(mut self) -> Result<Interpreter, Error> {
        let grants = match &self.child_of {
            // A child may not have more than its creator.
            Some(c) => Arc::new(
                c.grants
                    .iter()
                    .filter(|n| self.allowed.is_empty() || self.allowed.contains(*n))
                    .cloned()
                    .collect(),
            ),
            None => {
                let funcs = &self.host.settings.host_fns;
                if let Some(unknown) = self.allowed.iter().find(|n| !funcs.contains(n)) {
                    return Err(Error::NoSuchHostFn(unknown.clone()));
                }
                Arc::new(std::mem::take(&mut self.allowed))
            }
        };
        // Before child_of is taken: a child's comes from its creator.
        let modules = self.module_root()?;
        let id = self.host.next_id();
        let shared = Arc::new(Shared::default());
        let cap = self.child_of.as_ref().and_then(|c| c.deadline_cap);
        let fuel = match &self.child_of {
            Some(c) => c.fuel,
            None => self.limits.fuel(),
        };
        let (lineage, slots, stdout, stderr, own_output) = match self.child_of.take() {
            Some(c) => (c.lineage, c.slots, c.stdout, c.stderr, false),
            None => (
                Lineage::root(&self.limits),
                Vec::new(),
                Sink::new(self.stdout, self.limits.max_output()),
                Sink::new(self.stderr, self.limits.max_output()),
                true,
            ),
        };
        let language = self.guest.language();
        let creator = lineage.creator;
        let ancestors = lineage.ancestors.clone();
        let mut lineage = lineage;
        lineage.budgets.insert(0, Tree::new(&self.limits));
        let wasi = self.wasi_ctx(&stdout, &stderr, modules.as_ref())?;
        let mut state = self.store_data(id, wasi, &shared, lineage, cap, (&stdout, &stderr));
        state.grants = grants;
        state.modules = modules.as_ref().map(|m| m.host.clone());
        state.dirs = self.dir_grants();
        let mut live = instantiate(self.host, &self.guest, state, &self.limits, fuel)?;
        if let Some(m) = &modules {
            set_module_root(&mut live, &m.guest, m.shared).map_err(init_error)?;
        }
        let inner = Arc::new(InterpInner {
            id,
            host: Arc::downgrade(self.host),
            fuel: self.host.settings.fuel,
            limits: self.limits,
            shared,
            running: AtomicBool::new(false),
            live: Mutex::new(Some(live)),
            own_output,
            stdout,
            stderr,
            creator,
            ancestors,
            language,
            slots: Mutex::new(slots),
        });
        let interp = Interpreter { inner };
        self.host.register(&interp);
        Ok(interp)
    }

    /// The module folder of a JavaScript interpreter: its own, or its
    /// creator's (a child has no other).
    fn module_root(&self) -> Result<Option<ModuleRoot>, Error> {
        if self.guest.language() != Some(crate::language::Language::JavaScript) {
            return Ok(None);
        }
        let host = match (&self.child_of, &self.modules) {
            (Some(c), _) => match &c.modules {
                Some(m) => m.clone(),
                None => return Ok(None),
            },
            (None, Some(dir)) => {
                let grant = |source: BoxError| Error::Grant {
                    dir: dir.clone(),
                    source,
                };
                let canon = std::fs::canonicalize(dir).map_err(|e| grant(e.into()))?;
                if !canon.is_dir() {
                    return Err(grant("not a directory".into()));
                }
                Arc::new(canon)
            }
            (None, None) => return Ok(None),
        };
        let Some(guest) = host.to_str().map(str::to_string) else {
            return Err(Error::Grant {
                dir: host.to_path_buf(),
                source: "a module folder's path must be UTF-8".into(),
            });
        };
        let shared = self.dirs.iter().any(|(_, g, _)| same_guest_path(g, &guest));
        Ok(Some(ModuleRoot {
            host,
            guest,
            shared,
        }))
    }

    /// The directory grants as the store keeps them: each host directory
    /// canonical (its WASI context has opened it already), so that the
    /// parts handed on to children can be checked against it.
    fn dir_grants(&self) -> Arc<[DirGrant]> {
        self.dirs
            .iter()
            .filter_map(|(host, guest, read_only)| {
                Some(DirGrant {
                    host: std::fs::canonicalize(host).ok()?,
                    guest: guest.clone(),
                    read_only: *read_only,
                })
            })
            .collect()
    }

    /// The guest's WASI context: its output streams, argv, environment,
    /// stdin and directory grants (and the module folder, read-only, unless
    /// a grant of the same guest path stands for it).
    fn wasi_ctx(
        &self,
        stdout: &Sink,
        stderr: &Sink,
        modules: Option<&ModuleRoot>,
    ) -> Result<WasiP1Ctx, Error> {
        let mut wasi = WasiCtxBuilder::new();
        wasi.stdout(stdout.clone())
            .stderr(stderr.clone())
            .args(&self.args)
            .envs(&self.env);
        if self.inherit_stdin {
            wasi.inherit_stdin();
        } else if let Some(bytes) = &self.stdin {
            wasi.stdin(wasmtime_wasi::p2::pipe::MemoryInputPipe::new(bytes.clone()));
        }
        if let Some(m) = modules.filter(|m| !m.shared) {
            wasi.preopened_dir(&*m.host, &m.guest, wasmtime_wasi::FsPerms::ReadOnly)
                .map_err(|e| Error::Grant {
                    dir: m.host.to_path_buf(),
                    source: e.into(),
                })?;
        }
        for (host_dir, guest_dir, read_only) in &self.dirs {
            let perms = if *read_only {
                wasmtime_wasi::FsPerms::ReadOnly
            } else {
                wasmtime_wasi::FsPerms::ReadWrite
            };
            wasi.preopened_dir(host_dir, guest_dir, perms)
                .map_err(|e| Error::Grant {
                    dir: host_dir.clone(),
                    source: e.into(),
                })?;
        }
        Ok(wasi.build_p1())
    }

    /// What the new store carries: its handle table and limiter on its
    /// tree's budget, its deadline for creation (the same as a run's, no
    /// later than `cap`), and its place among interpreters.
    fn store_data(
        &self,
        id: u64,
        wasi: WasiP1Ctx,
        shared: &Arc<Shared>,
        lineage: Lineage,
        cap: Option<Instant>,
        (stdout, stderr): (&Sink, &Sink),
    ) -> StoreData {
        // A language guest sees memory.grow fail (and raises its own
        // out-of-memory error), and stops itself within a grace period.
        let soft = self.guest.language().is_some();
        let tenant = &lineage.tenant;
        StoreData {
            id,
            wasi,
            limiter: Limiter::new(self.limits.max_memory(), soft, tenant.clone()),
            handles: HandleTable::new(self.limits.max_handles(), Some(tenant.clone())),
            names: HashMap::new(),
            shared: shared.clone(),
            deadline: deadline_from(&self.limits, cap),
            tally: Tally::default(),
            counters: self.host.counters.clone(),
            channels: self.host.channels.clone(),
            limits: self.limits,
            reported: None,
            grace: if soft { STOP_GRACE } else { Duration::ZERO },
            fuel_start: u64::MAX,
            files: OpenFiles::new(tenant.clone()),
            stop_since: std::cell::Cell::new(None),
            family: Box::new(Kin::new(
                id,
                self.guest.language(),
                Arc::downgrade(self.host),
            )),
            stdout: stdout.clone(),
            stderr: stderr.clone(),
            lineage,
            memory: None,
            output: None,
            host_fns: self.host.settings.host_fns.clone(),
            grants: Default::default(),
            dirs: Arc::new([]),
            modules: None,
            last_fn: None,
        }
    }
}

/// A store for `state`: its memory limiter, its deadline checked at every
/// epoch tick, and its fuel.
fn new_store(host: &Registry, state: StoreData, fuel: Option<u64>) -> Store<StoreData> {
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
    if host.settings.fuel {
        let _ = store.set_fuel(fuel.unwrap_or(u64::MAX));
    }
    store
}

/// A failed set-up call, as a creation error.
fn init_error(e: wasmtime::Error) -> Error {
    Error::Instantiate(classify(&e).error.unwrap_or_else(|| host_error(&e)))
}

/// Instantiates `guest` in a new store and runs its set-up (`_initialize`,
/// and the JS guest's configuration) under the creation deadline.
fn instantiate(
    host: &Registry,
    guest: &Guest,
    state: StoreData,
    limits: &Limits,
    fuel: Option<u64>,
) -> Result<Live, Error> {
    let mut store = new_store(host, state, fuel);
    let stop = store.data().stopper();
    let instance = stop
        .drive(guest.pre().instantiate_async(&mut store))
        .map_err(|e| {
            if e.is::<wasmtime::PoolConcurrencyLimitError>() {
                return Error::Limit(LimitError::TooManyInterpreters {
                    limit: host.settings.pool_size,
                });
            }
            init_error(e)
        })?;
    // A pre-initialised snapshot has run its constructors already.
    if !guest.is_preinitialized()
        && let Ok(init) = instance.get_typed_func::<(), ()>(&mut store, "_initialize")
    {
        stop.drive(init.call_async(&mut store, ()))
            .map_err(init_error)?;
    }
    let source =
        match guest.language() {
            Some(language) => {
                let pre = guest.is_preinitialized();
                let fns = init_source(&mut store, &instance, language, pre, limits, &stop)
                    .map_err(|e| match e {
                        InitError::Wasm(e) => init_error(e),
                        InitError::Guest(e) => Error::Instantiate(e),
                    })?;
                Some(fns)
            }
            None => None,
        };
    store.data_mut().deadline = None;
    Ok(Live {
        store,
        instance,
        source,
    })
}

fn host_error(e: &wasmtime::Error) -> GuestError {
    GuestError {
        kind: ErrorKind::Host,
        message: format!("{e:#}"),
        backtrace: None,
    }
}

/// The deadline of a call starting now under `limits`, no later than `cap`,
/// with the limit it comes from.
pub(super) fn deadline_from(limits: &Limits, cap: Option<Instant>) -> Option<(Instant, Duration)> {
    let now = Instant::now();
    let own = limits
        .timeout()
        .and_then(|t| Some((now.checked_add(t)?, t)));
    match (own, cap) {
        (Some((at, _)), Some(c)) if c < at => Some((c, c.saturating_duration_since(now))),
        (None, Some(c)) => Some((c, c.saturating_duration_since(now))),
        (own, _) => own,
    }
}

/// Whether two guest paths name the same preopen, as wasi-libc matches them
/// (without leading or trailing slashes).
fn same_guest_path(a: &str, b: &str) -> bool {
    let trim = |s: &str| s.trim_matches('/').to_string();
    trim(a) == trim(b)
}
