//! Building a host: the engine's configuration (pooling, epochs, fuel,
//! fiber stacks), the linker with WASI and the guest ABI, and the epoch
//! ticker.

use std::path::PathBuf;

use wasmtime::{Config, Engine, InstanceAllocationStrategy, Linker, PoolingAllocationConfig};

use super::*;
use crate::buffer::View;
use crate::cache::Cache;
use crate::compile::CompileLimits;
use crate::hostfn::{HostCaller, HostFnError, HostFns};
use crate::interpreter::Settings;
use crate::store::StoreData;

/// Builds a [`Host`] with named defaults.
#[derive(Debug, Clone)]
pub struct HostBuilder {
    pool_size: u32,
    pool_max_memory: usize,
    fuel: bool,
    max_queued_bytes: usize,
    compile_limits: CompileLimits,
    funcs: HostFns,
    cache_dir: CacheDir,
    compile_notices: bool,
}

/// Where a host caches compiled code.
#[derive(Debug, Clone)]
enum CacheDir {
    /// The user's cache folder.
    User,
    /// This folder.
    At(PathBuf),
    /// Nowhere.
    Off,
}

impl Default for HostBuilder {
    fn default() -> Self {
        HostBuilder {
            pool_size: DEFAULT_POOL_SIZE,
            pool_max_memory: DEFAULT_POOL_MAX_MEMORY,
            fuel: false,
            max_queued_bytes: DEFAULT_MAX_QUEUED_BYTES,
            compile_limits: CompileLimits::default(),
            funcs: HostFns::default(),
            cache_dir: CacheDir::User,
            compile_notices: false,
        }
    }
}

impl HostBuilder {
    /// Pooled instance slots (default [`DEFAULT_POOL_SIZE`]); 0 allocates
    /// each instance on demand instead. Each slot reserves address space, not
    /// memory. If the pool cannot be reserved the host falls back to on-demand
    /// allocation.
    #[must_use]
    pub fn pool_size(mut self, n: u32) -> Self {
        self.pool_size = n;
        self
    }

    /// The largest linear memory one pooled interpreter can have (default
    /// [`DEFAULT_POOL_MAX_MEMORY`]); each slot reserves this much address
    /// space, so a host with very many slots wants it smaller. An
    /// interpreter's own [`Limits::max_memory`](crate::Limits::max_memory)
    /// cannot go past it.
    #[must_use]
    pub fn pool_max_memory(mut self, bytes: usize) -> Self {
        self.pool_max_memory = bytes;
        self
    }

    /// Turns on instruction counting so [`Limits::fuel`](crate::Limits::fuel)
    /// works (off by default: it slows every guest down).
    #[must_use]
    pub fn fuel(mut self, on: bool) -> Self {
        self.fuel = on;
        self
    }

    /// Default limit on the bytes queued in one channel
    /// (default [`DEFAULT_MAX_QUEUED_BYTES`]).
    #[must_use]
    pub fn max_queued_bytes(mut self, bytes: usize) -> Self {
        self.max_queued_bytes = bytes;
        self
    }

    /// Bounds on compiling modules the host is given (default
    /// [`CompileLimits::default`]).
    #[must_use]
    pub fn compile_limits(mut self, limits: CompileLimits) -> Self {
        self.compile_limits = limits;
        self
    }

    /// Registers the host function `name`: guests of the interpreters
    /// granted it ([`InterpreterBuilder::allow`](crate::InterpreterBuilder::allow))
    /// call it with bytes (a [`View`]) and get the bytes it returns, or its
    /// error's message. It runs on the calling guest's thread, so it must
    /// return quickly; one that waits (I/O, a lock, a remote call) belongs in
    /// [`blocking_func`](Self::blocking_func). A panic is the caller's error,
    /// not the host's.
    #[must_use]
    pub fn func<F>(mut self, name: impl Into<String>, f: F) -> Self
    where
        F: Fn(&HostCaller, View) -> Result<bytes::Bytes, HostFnError> + Send + Sync + 'static,
    {
        self.funcs
            .insert(name.into(), std::sync::Arc::new(f), false);
        self
    }

    /// As [`func`](Self::func), for a function that may block: it runs on
    /// the host's blocking thread pool, and the calling guest stops waiting
    /// for it at its deadline (the run ends with a timeout, as in a blocking
    /// WASI call; the function itself runs to its end on the pool).
    #[must_use]
    pub fn blocking_func<F>(mut self, name: impl Into<String>, f: F) -> Self
    where
        F: Fn(&HostCaller, View) -> Result<bytes::Bytes, HostFnError> + Send + Sync + 'static,
    {
        self.funcs.insert(name.into(), std::sync::Arc::new(f), true);
        self
    }

    /// The folder compiled code is cached in, instead of the user's cache
    /// folder (`$XDG_CACHE_HOME/subinterp`, else `$HOME/.cache/subinterp`).
    ///
    /// The host caches the language guests' compiled code (and their
    /// pre-initialised snapshots) and what
    /// [`Host::compile_cached`](crate::Host::compile_cached) and
    /// [`Host::load_file_cached`](crate::Host::load_file_cached) compile,
    /// each under a SHA-256 of its contents and of the engine's
    /// configuration, so later hosts and processes load it without
    /// compiling. The folder is made (readable and writable by the user
    /// alone) when first written to. Best effort: a folder that cannot be
    /// made or written costs the compiling, never a run.
    ///
    /// **The folder must be writable only by the user**: loading compiled
    /// code runs it, so whoever can write a file there can run code in the
    /// host's process. The host loads nothing from a folder that group or
    /// others can write to, but does not check who owns it. A write that
    /// takes the folder past 2 GiB of compiled code removes the least
    /// recently used files, and a language guest file's older builds go
    /// when a new one is cached; delete the folder whenever you like.
    #[must_use]
    pub fn cache_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.cache_dir = CacheDir::At(dir.into());
        self
    }

    /// No compiled-code cache: every host compiles the language guests
    /// again (seconds for JavaScript, tens of seconds for Python), and
    /// nothing is read from or written to disk for compiled code.
    #[must_use]
    pub fn no_cache(mut self) -> Self {
        self.cache_dir = CacheDir::Off;
        self
    }

    /// Whether the host says on stderr when it compiles for a while (off by
    /// default: a library does not print unasked; the `subinterp` command
    /// line turns it on). A language guest's compile is announced when it
    /// starts (`subinterp: compiling the Python guest …`), any other once
    /// it has taken [`COMPILE_NOTICE_AFTER`]; a line with the time taken and
    /// where the code was cached follows it.
    #[must_use]
    pub fn compile_notices(mut self, on: bool) -> Self {
        self.compile_notices = on;
        self
    }

    /// Builds the host and starts its epoch ticker.
    ///
    /// # Errors
    /// [`Error::Engine`] when wasmtime rejects the configuration.
    pub fn build(self) -> Result<Host, Error> {
        let (engine, pool_size) = match self.engine(self.pool_size) {
            Ok(e) if self.pool_size > 0 => (e, self.pool_size as usize),
            _ => (self.engine(0)?, 0),
        };
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p1::add_to_linker_async(&mut linker, |s: &mut StoreData| &mut s.wasi)
            .map_err(|e| Error::Engine(e.into()))?;
        crate::abi::add_to_linker(&mut linker).map_err(|e| Error::Engine(e.into()))?;
        spawn_ticker(&engine);
        let dir = match self.cache_dir {
            CacheDir::User => crate::cache::default_dir(),
            CacheDir::At(dir) => Some(dir),
            CacheDir::Off => None,
        };
        let settings = Settings {
            fuel: self.fuel,
            pool_size,
            max_queued_bytes: self.max_queued_bytes,
            compile_limits: self.compile_limits,
            host_fns: std::sync::Arc::new(self.funcs),
            cache: Cache::new(dir, self.compile_notices),
        };
        let own = Arc::new(linker.clone());
        Ok(Host {
            inner: Arc::new(Registry::new(engine, linker, settings)),
            linker: own,
        })
    }

    fn engine(&self, pool_size: u32) -> Result<Engine, Error> {
        let mut config = Config::new();
        config
            .async_stack_zeroing(true)
            // One linear memory per instance: the memory limiter charges it
            // to the tree's budget and settles on the size it is told.
            .wasm_multi_memory(false)
            .epoch_interruption(true)
            .consume_fuel(self.fuel)
            .max_wasm_stack(MAX_WASM_STACK)
            // The fiber a guest call runs on: its wasm stack and room for
            // the host functions it calls.
            .async_stack_size(MAX_WASM_STACK + (256 << 10))
            // A language guest's snapshot (Python's is past 20 MiB) starts
            // as a copy-on-write image rather than being copied in at each
            // creation (wasmtime's default covers 16 MiB).
            .memory_guaranteed_dense_image_size(DENSE_IMAGE as u64);
        if pool_size > 0 {
            let mut pool = PoolingAllocationConfig::default();
            pool.total_core_instances(pool_size)
                .total_stacks(pool_size)
                .total_memories(pool_size)
                .total_tables(pool_size)
                .max_memory_size(self.pool_max_memory)
                // A reused slot keeps up to this much of its memory resident
                // and resets it with memset (only the pages that were touched,
                // found with PAGEMAP_SCAN where the kernel has it): a new JS
                // interpreter then starts without page faults on its heap.
                .linear_memory_keep_resident(KEEP_RESIDENT)
                // A returned fiber stack keeps its top resident (reset with
                // memset) and gives the rest back to the system: without
                // this every stack a deep call once touched stays resident.
                .async_stack_keep_resident(STACK_KEEP_RESIDENT)
                .table_keep_resident(KEEP_RESIDENT / 8)
                .pagemap_scan(wasmtime::Enabled::Auto);
            config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        }
        Engine::new(&config).map_err(|e| Error::Engine(e.into()))
    }
}

/// Increments the engine's epoch every [`EPOCH_TICK`] until the engine is gone.
fn spawn_ticker(engine: &Engine) {
    let weak = engine.weak();
    std::thread::Builder::new()
        .name("subinterp-epoch".into())
        .spawn(move || {
            while let Some(engine) = weak.upgrade() {
                engine.increment_epoch();
                drop(engine);
                std::thread::sleep(EPOCH_TICK);
            }
        })
        .expect("spawning the epoch thread");
}
