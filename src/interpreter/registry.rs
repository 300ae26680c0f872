//! The registry of one host's interpreters and channels: the engine and the
//! linker they are made with, their ids, the live ones by id, the JS guest
//! once loaded, and the copy counters. The public [`Host`](crate::Host) is
//! a thin facade over it; interpreters and their guest-created children
//! reach it through a weak reference.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};

use parking_lot::Mutex;
use wasmtime::{Engine, Linker, Module};

use super::{InterpInner, Interpreter};
use crate::channel;
use crate::compile::{CompileLimits, Runaways, compile};
use crate::error::{Error, GuestLoadError};
use crate::guest::Guest;
use crate::hostfn::HostFns;
use crate::language::Language;
use crate::store::{Counters, StoreData};

/// The settings a registry keeps from its host's builder.
#[derive(Debug)]
pub(crate) struct Settings {
    /// Whether stores count fuel.
    pub(crate) fuel: bool,
    /// Pooled instance slots (0: not pooled).
    pub(crate) pool_size: usize,
    /// Default queued-bytes limit of a channel.
    pub(crate) max_queued_bytes: usize,
    /// Bounds on compiling a module.
    pub(crate) compile_limits: CompileLimits,
    /// The host functions interpreters may be granted.
    pub(crate) host_fns: Arc<HostFns>,
    /// Where compiled code is cached.
    pub(crate) cache: crate::cache::Cache,
}

pub(crate) struct Registry {
    pub(crate) engine: Engine,
    linker: Linker<StoreData>,
    pub(crate) counters: Arc<Counters>,
    pub(crate) settings: Settings,
    runaways: Arc<Runaways>,
    next_id: AtomicU64,
    /// The live interpreters, weakly: an interpreter lives as long as a
    /// handle to it (the host's user's, a running job's, or its creator's
    /// for a guest-created child), and unregisters itself when it goes.
    live: Mutex<BTreeMap<u64, Weak<InterpInner>>>,
    pub(crate) channels: Arc<channel::Registry>,
    /// The language guests once loaded. A failure is not kept: a later call
    /// tries again (the failure may have been a passing one, such as a
    /// process out of file descriptors).
    languages: Mutex<HashMap<Language, Guest>>,
}

impl Registry {
    pub(crate) fn new(engine: Engine, linker: Linker<StoreData>, settings: Settings) -> Self {
        let channels = channel::Registry::new(settings.max_queued_bytes);
        Registry {
            engine,
            linker,
            counters: Arc::default(),
            settings,
            runaways: Arc::default(),
            next_id: AtomicU64::new(1),
            live: Mutex::default(),
            channels,
            languages: Mutex::default(),
        }
    }

    /// A new id, for an interpreter or a channel.
    pub(crate) fn next_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    pub(crate) fn register(&self, interp: &Interpreter) {
        self.live
            .lock()
            .insert(interp.id().0, Arc::downgrade(&interp.inner));
    }

    pub(crate) fn unregister(&self, id: u64) {
        self.live.lock().remove(&id);
    }

    /// The live interpreter `id`.
    pub(crate) fn get(&self, id: u64) -> Option<Interpreter> {
        let inner = self.live.lock().get(&id)?.upgrade()?;
        Some(Interpreter { inner })
    }

    /// Every live interpreter, oldest first.
    pub(crate) fn live(&self) -> Vec<Interpreter> {
        let all: Vec<Arc<InterpInner>> = self
            .live
            .lock()
            .values()
            .filter_map(Weak::upgrade)
            .collect();
        all.into_iter().map(|inner| Interpreter { inner }).collect()
    }

    /// How many interpreters are live.
    pub(crate) fn len(&self) -> usize {
        self.live
            .lock()
            .values()
            .filter(|w| w.strong_count() > 0)
            .count()
    }

    /// Compiles `wasm` within the compile limits and links it.
    pub(crate) fn compile(&self, name: &str, wasm: &[u8]) -> Result<Guest, Error> {
        let limits = &self.settings.compile_limits;
        let module = compile(&self.engine, wasm, limits, &self.runaways)?;
        self.link(name, module, false)
    }

    fn link(&self, name: &str, module: Module, preinit: bool) -> Result<Guest, Error> {
        let pre = self
            .linker
            .instantiate_pre(&module)
            .map_err(|e| Error::Link(e.into()))?;
        Ok(Guest::new(name.to_string(), module, pre, preinit))
    }

    /// The guest of `language`, loaded (from the compiled cache when there
    /// is one) the first time it is asked for.
    pub(crate) fn language(&self, language: Language) -> Result<Guest, Error> {
        let mut loaded = self.languages.lock();
        if let Some(g) = loaded.get(&language) {
            return Ok(g.clone());
        }
        let guest = self
            .load_language(language)
            .map_err(|source| Error::LanguageGuest { language, source })?;
        loaded.insert(language, guest.clone());
        Ok(guest)
    }

    fn load_language(&self, language: Language) -> Result<Guest, GuestLoadError> {
        let source = crate::cache::guest_source(language)?;
        let cache = &self.settings.cache;
        // The pre-initialised snapshot, or (should snapshotting fail) the
        // plain module, which sets itself up in each interpreter.
        let snap = cache.load_guest(&self.engine, &source, "snap", language, |wasm| {
            let state = StoreData::scratch(&self.counters);
            crate::snapshot::pre_initialize(&self.engine, &self.linker, &wasm, state, language)
                .map_err(Into::into)
        });
        let ((module, cached), preinit) = match snap {
            Ok(m) => (m, true),
            Err(_) => (
                cache.load_guest(&self.engine, &source, "plain", language, Ok)?,
                false,
            ),
        };
        let guest = self
            .link(language.name(), module, preinit)
            .map_err(|e| GuestLoadError::Compile(e.into()))?
            .with_cache_file(cached);
        if guest.language() == Some(language) {
            Ok(guest)
        } else {
            Err(GuestLoadError::NotTheGuest {
                path: source.path(),
                language,
            })
        }
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let all = std::mem::take(&mut *self.live.lock());
        for inner in all.into_values().filter_map(|w| w.upgrade()) {
            Interpreter { inner }.close();
        }
    }
}
