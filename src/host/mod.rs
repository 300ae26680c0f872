//! The host: one per process (or per isolated group of interpreters), and
//! the library's front door. A thin facade over the interpreter layer's
//! registry (the wasmtime engine, the linker with the guest ABI, the copy
//! counters, the live interpreters and channels); [`HostBuilder`] sets up
//! the engine, the linker and the epoch ticker.

mod builder;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

pub use self::builder::HostBuilder;

use wasmtime::{Linker, Module};

use crate::channel::{ChannelId, RecvChannel, SendChannel};
use crate::error::{Error, LimitError};
use crate::guest::Guest;
use crate::interpreter::{Interpreter, InterpreterBuilder, InterpreterId, Registry};
use crate::language::Language;
use crate::store::StoreData;

/// Default number of pooled instance slots (interpreters alive at once).
pub const DEFAULT_POOL_SIZE: u32 = 1000;
/// Default limit on the bytes queued in one channel: 256 MiB.
pub const DEFAULT_MAX_QUEUED_BYTES: usize = 256 << 20;
/// How often the epoch ticker runs; deadlines are checked this often.
pub const EPOCH_TICK: Duration = Duration::from_millis(5);
/// Native stack a guest may use: 4 MiB, on a fiber stack of its own (so the
/// thread that calls [`Interpreter::run`](crate::Interpreter::run) needs no
/// more than usual; the pool reserves, but does not touch, this much per
/// slot). Enough for CPython's C recursion limit under WASI (5,000 levels of
/// `json` encoding or decoding, or `repr`, end in a catchable
/// `RecursionError`); JavaScript recursion ends in a catchable `RangeError`
/// well before it.
pub const MAX_WASM_STACK: usize = 4 << 20;
/// Initialised linear memory always mapped as one copy-on-write image.
const DENSE_IMAGE: usize = 64 << 20;
/// Bytes of a freed pool slot's linear memory kept resident for its next user.
const KEEP_RESIDENT: usize = 1 << 20;
/// Bytes of a returned fiber stack kept resident for its next call.
const STACK_KEEP_RESIDENT: usize = 32768;
/// Default for the largest linear memory an interpreter of a pooled host can
/// have (each pool slot reserves this much address space): 4 GiB.
pub const DEFAULT_POOL_MAX_MEMORY: usize = 4 << 30;

/// How long a compile runs before a host built with
/// [`HostBuilder::compile_notices`] says so on stderr (a language guest's
/// compile is announced when it starts).
pub const COMPILE_NOTICE_AFTER: Duration = crate::cache::NOTICE_AFTER;

/// A snapshot of the host's copy counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CopyCounters {
    /// Bytes copied out of guest memories into new buffers (guest sends).
    pub bytes_copied_out: u64,
    /// Bytes copied from buffers into guest memories (guest reads).
    pub bytes_copied_in: u64,
    /// Buffers a guest forwarded to another channel without a copy.
    pub buffers_forwarded: u64,
}

/// The host of many interpreters. Cheap to clone (a handle).
///
/// ```
/// use subinterp::Host;
/// let host = Host::builder().pool_size(0).build().unwrap();
/// let (rx, tx) = host.create_channel(1);
/// tx.send(bytes::Bytes::from_static(b"hello")).unwrap();
/// let view = rx.recv().unwrap().into_view().unwrap();
/// assert_eq!(&*view, b"hello");
/// ```
#[derive(Clone)]
pub struct Host {
    inner: Arc<Registry>,
    /// The registry's linker, again: a module loaded from the cache is
    /// linked here, the registry compiling only what it must.
    linker: Arc<Linker<StoreData>>,
}

impl std::fmt::Debug for Host {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Host")
            .field("pooled", &self.is_pooled())
            .field("interpreters", &self.inner.len())
            .finish()
    }
}

impl Host {
    /// A host with the defaults.
    ///
    /// # Errors
    /// As [`HostBuilder::build`].
    pub fn new() -> Result<Host, Error> {
        HostBuilder::default().build()
    }

    /// A builder for a host with other settings.
    pub fn builder() -> HostBuilder {
        HostBuilder::default()
    }

    /// The underlying wasmtime engine: an escape hatch (feature
    /// `wasmtime-engine`) that ties the caller to this crate's wasmtime
    /// version, for embedding tricks the API does not cover.
    #[cfg(feature = "wasmtime-engine")]
    pub fn wasmtime_engine(&self) -> &wasmtime::Engine {
        &self.inner.engine
    }

    /// Whether instances come from a pool (false: the pool could not be reserved).
    pub fn is_pooled(&self) -> bool {
        self.inner.settings.pool_size > 0
    }

    /// Compiles wasm (binary, or text when the bytes are WAT) into a guest,
    /// within the host's [`CompileLimits`](crate::CompileLimits).
    ///
    /// # Errors
    /// [`Error::InvalidModule`] for bytes that are not a valid module;
    /// [`Error::Limit`] for a module past the compile limits (size, shape,
    /// deadline); [`Error::Link`] when it imports something the host does
    /// not provide.
    pub fn compile(&self, name: &str, wasm: &[u8]) -> Result<Guest, Error> {
        self.inner.compile(name, wasm)
    }

    /// Reads and compiles a `.wasm` (or `.wat`) file.
    ///
    /// # Errors
    /// [`Error::Io`] when the file cannot be read, then as [`compile`](Self::compile).
    pub fn load_file(&self, path: impl AsRef<Path>) -> Result<Guest, Error> {
        let (name, bytes) = read_module(path.as_ref())?;
        self.compile(&name, &bytes)
    }

    /// Compiles wasm as [`compile`](Self::compile) does, through the host's
    /// compiled-code cache ([`HostBuilder::cache_dir`]): code compiled
    /// before from the same bytes, by this or another host or process with
    /// the same engine configuration, is loaded instead of compiled, and
    /// code compiled now is written there for the next time (best effort;
    /// [`Guest::cache_file`] says where it is). Without a cache this is
    /// [`compile`](Self::compile).
    ///
    /// A miss compiles within the host's
    /// [`CompileLimits`](crate::CompileLimits); a hit compiles nothing, so
    /// of those limits only the module's size applies (the others bound
    /// the compile). [`compile`](Self::compile) never touches the disk: a
    /// host compiling many short-lived modules should use it.
    ///
    /// ```
    /// use subinterp::Host;
    /// let dir = tempfile::tempdir().unwrap();
    /// let wat = b"(module (func (export \"f\") (result i32) (i32.const 7)))";
    /// let first = Host::builder().cache_dir(dir.path()).build().unwrap();
    /// let file = first.compile_cached("seven", wat).unwrap().cache_file().unwrap().to_path_buf();
    /// assert!(file.starts_with(dir.path()) && file.is_file());
    /// // Another host (as another process would) loads that file.
    /// let second = Host::builder().cache_dir(dir.path()).build().unwrap();
    /// assert_eq!(second.compile_cached("seven", wat).unwrap().cache_file(), Some(file.as_path()));
    /// ```
    ///
    /// # Errors
    /// As [`compile`](Self::compile).
    pub fn compile_cached(&self, name: &str, wasm: &[u8]) -> Result<Guest, Error> {
        let settings = &self.inner.settings;
        let limit = settings.compile_limits.max_module_bytes();
        if wasm.len() > limit {
            return Err(LimitError::ModuleTooLarge { limit }.into());
        }
        let (cache, engine) = (&settings.cache, &self.inner.engine);
        let entry = cache.module_entry(engine, name, wasm);
        if let Some(entry) = &entry
            && let Some(module) = cache.get(engine, entry)
        {
            let guest = self.link(name, module)?;
            return Ok(guest.with_cache_file(Some(entry.path().to_path_buf())));
        }
        let notice = cache.notice(name);
        let guest = self.compile(name, wasm)?;
        let written = entry.filter(|e| cache.put(e, guest.module()));
        notice.finish(|| cache.outcome(written.is_some()));
        Ok(guest.with_cache_file(written.map(|e| e.path().to_path_buf())))
    }

    /// Reads a `.wasm` (or `.wat`) file and compiles it through the cache,
    /// as [`compile_cached`](Self::compile_cached) does.
    ///
    /// # Errors
    /// [`Error::Io`] when the file cannot be read, then as
    /// [`compile`](Self::compile).
    pub fn load_file_cached(&self, path: impl AsRef<Path>) -> Result<Guest, Error> {
        let (name, bytes) = read_module(path.as_ref())?;
        self.compile_cached(&name, &bytes)
    }

    /// The folder compiled code is cached in ([`HostBuilder::cache_dir`]);
    /// `None` for a host without a cache.
    pub fn cache_dir(&self) -> Option<&Path> {
        self.inner.settings.cache.dir()
    }

    /// Links a module compiled before (loaded from the cache).
    fn link(&self, name: &str, module: Module) -> Result<Guest, Error> {
        let pre = self
            .linker
            .instantiate_pre(&module)
            .map_err(|e| Error::Link(e.into()))?;
        Ok(Guest::new(name.to_string(), module, pre, false))
    }

    /// The guest of `language`: create interpreters from it and run source
    /// with [`Run::js`](crate::Run::js) or [`Run::python`](crate::Run::python).
    /// The JavaScript guest is inside the library; the Python guest is
    /// `target/guest/python.wasm`, built by `make guest`, or
    /// `guest/python.wasm` beside the executable; `$SUBINTERP_JS_WASM` and
    /// `$SUBINTERP_PY_WASM` name other files. Loaded once per host, from
    /// precompiled code (a pre-initialised snapshot) in the host's cache
    /// ([`HostBuilder::cache_dir`]) when there is some, else compiled and
    /// cached (seconds; tens of seconds for Python).
    ///
    /// # Errors
    /// [`Error::LanguageGuest`] when the guest file is missing or does not load.
    pub fn language_guest(&self, language: Language) -> Result<Guest, Error> {
        self.inner.language(language)
    }

    /// The JavaScript guest (QuickJS-ng compiled to wasm); see
    /// [`language_guest`](Self::language_guest).
    ///
    /// # Errors
    /// As [`language_guest`](Self::language_guest).
    pub fn js(&self) -> Result<Guest, Error> {
        self.language_guest(Language::JavaScript)
    }

    /// The Python guest (CPython compiled to wasm); see
    /// [`language_guest`](Self::language_guest).
    ///
    /// # Errors
    /// As [`language_guest`](Self::language_guest).
    pub fn python(&self) -> Result<Guest, Error> {
        self.language_guest(Language::Python)
    }

    /// Creates a JavaScript interpreter with `limits`.
    ///
    /// # Errors
    /// As [`js`](Self::js) and [`InterpreterBuilder::build`].
    pub fn create_js(&self, limits: crate::limits::Limits) -> Result<Interpreter, Error> {
        self.interpreter(&self.js()?).limits(limits).build()
    }

    /// Creates a Python interpreter with `limits`.
    ///
    /// # Errors
    /// As [`python`](Self::python) and [`InterpreterBuilder::build`].
    pub fn create_python(&self, limits: crate::limits::Limits) -> Result<Interpreter, Error> {
        self.interpreter(&self.python()?).limits(limits).build()
    }

    /// Options for a new interpreter running `guest`.
    pub fn interpreter(&self, guest: &Guest) -> InterpreterBuilder<'_> {
        InterpreterBuilder::new(&self.inner, guest)
    }

    /// Options for a new interpreter running the program in the file
    /// `path`, chosen by its extension: `.js` (a script) and `.mjs` (a
    /// module named by the file's name) in the JavaScript guest, `.py` in
    /// the Python guest, each run when the interpreter is built
    /// ([`InterpreterBuilder::init`]); anything else is a wasm module
    /// ([`load_file`](Self::load_file)).
    ///
    /// ```no_run
    /// # use subinterp::{Host, Limits};
    /// let host = Host::new()?;
    /// let plugin = host.interpreter_from_file("plugins/upper.js")?.limits(Limits::new()).build()?;
    /// let out = plugin.call("transform", "hello")?;
    /// # Ok::<(), subinterp::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::Io`] when the file cannot be read; as [`js`](Self::js),
    /// [`python`](Self::python) or [`load_file`](Self::load_file).
    pub fn interpreter_from_file(
        &self,
        path: impl AsRef<Path>,
    ) -> Result<InterpreterBuilder<'_>, Error> {
        use crate::interpreter::Run;
        let path = path.as_ref();
        let source = || std::fs::read_to_string(path);
        let (guest, init) = match path.extension().and_then(|e| e.to_str()) {
            Some("js") => (self.js()?, Run::js(source()?)),
            Some("mjs") => {
                let name = path.file_name().unwrap_or_default().to_string_lossy();
                (self.js()?, Run::js_module(name, source()?))
            }
            Some("py") => (self.python()?, Run::python(source()?)),
            _ => return Ok(self.interpreter(&self.load_file(path)?)),
        };
        Ok(self.interpreter(&guest).init(init))
    }

    /// Creates an interpreter running `guest` with default options.
    ///
    /// # Errors
    /// As [`InterpreterBuilder::build`].
    pub fn create(&self, guest: &Guest) -> Result<Interpreter, Error> {
        self.interpreter(guest).build()
    }

    /// Every live (not closed) interpreter, oldest first.
    pub fn list_all(&self) -> Vec<Interpreter> {
        self.inner.live()
    }

    /// The live interpreter with this id.
    pub fn get(&self, id: InterpreterId) -> Option<Interpreter> {
        self.inner.get(id.0)
    }

    /// The host itself, PEP 554's main interpreter, id 0. A script's
    /// `interpreters.main()` (and the ABI's `main_id`) is the same id.
    pub fn get_main(&self) -> InterpreterId {
        InterpreterId::MAIN
    }

    /// The interpreter whose guest is running on this thread (a host import
    /// asking), or [`InterpreterId::MAIN`].
    pub fn get_current(&self) -> InterpreterId {
        crate::interpreter::current()
    }

    /// Creates a channel with room for `capacity` messages (0: a rendezvous,
    /// where a send waits for a receiver) and the host's queued-bytes limit.
    /// Returns the receiving end first, as in PEP 554.
    pub fn create_channel(&self, capacity: usize) -> (RecvChannel, SendChannel) {
        self.inner.channels.create(capacity, None, None)
    }

    /// Creates a channel with its own queued-bytes limit.
    pub fn create_channel_with(
        &self,
        capacity: usize,
        max_queued_bytes: usize,
    ) -> (RecvChannel, SendChannel) {
        self.inner
            .channels
            .create(capacity, Some(max_queued_bytes), None)
    }

    /// The ids of every channel that still has a live end.
    pub fn list_channels(&self) -> Vec<ChannelId> {
        self.inner
            .channels
            .ids()
            .into_iter()
            .map(ChannelId)
            .collect()
    }

    /// The host's copy counters so far.
    pub fn counters(&self) -> CopyCounters {
        let c = &self.inner.counters;
        CopyCounters {
            bytes_copied_out: c.copied_out.load(Ordering::Relaxed),
            bytes_copied_in: c.copied_in.load(Ordering::Relaxed),
            buffers_forwarded: c.forwarded.load(Ordering::Relaxed),
        }
    }
}

/// A module file's name and bytes.
fn read_module(path: &Path) -> Result<(String, Vec<u8>), Error> {
    let bytes = std::fs::read(path)?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    Ok((name, bytes))
}
