//! Compiled guests: a wasm module checked against the host's imports once,
//! ready to be instantiated many times.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use wasmtime::{InstancePre, Module};

use crate::language::Export;
pub use crate::language::Language;
use crate::store::StoreData;

#[derive(Clone)]
struct GuestInner {
    name: String,
    module: Module,
    pre: InstancePre<StoreData>,
    language: Option<Language>,
    preinit: bool,
    cache_file: Option<PathBuf>,
}

/// A compiled, pre-linked wasm module. Cheap to clone; create any number of
/// interpreters from it with [`Host::interpreter`](crate::Host::interpreter).
#[derive(Clone)]
pub struct Guest {
    inner: Arc<GuestInner>,
}

impl Guest {
    pub(crate) fn new(
        name: String,
        module: Module,
        pre: InstancePre<StoreData>,
        preinit: bool,
    ) -> Self {
        let language = Language::ALL.into_iter().find(|l| {
            [Export::Eval, Export::Alloc, Export::Init]
                .iter()
                .all(|e| module.get_export(l.export(*e)).is_some())
        });
        Guest {
            inner: Arc::new(GuestInner {
                name,
                module,
                pre,
                language,
                preinit,
                cache_file: None,
            }),
        }
    }

    /// The same guest, noting the compiled-code cache file it was loaded
    /// from or written to.
    pub(crate) fn with_cache_file(self, path: Option<PathBuf>) -> Self {
        let inner = Arc::unwrap_or_clone(self.inner);
        Guest {
            inner: Arc::new(GuestInner {
                cache_file: path,
                ..inner
            }),
        }
    }

    /// The compiled-code cache file this guest was loaded from or written
    /// to, if it was ([`Host::compile_cached`](crate::Host::compile_cached),
    /// the language guests); `None` for a guest compiled without the cache,
    /// or when the cache could not be written.
    pub fn cache_file(&self) -> Option<&Path> {
        self.inner.cache_file.as_deref()
    }

    /// Whether this is a language guest started from a pre-initialised
    /// snapshot (its runtime made ahead of time).
    pub fn is_preinitialized(&self) -> bool {
        self.inner.preinit
    }

    /// The language this guest interprets, if it is a language guest.
    pub fn language(&self) -> Option<Language> {
        self.inner.language
    }

    /// Whether this is the JavaScript guest (it runs
    /// [`Run::js`](crate::Run::js) source).
    pub fn is_js(&self) -> bool {
        self.inner.language == Some(Language::JavaScript)
    }

    /// The guest's name (the file name it was loaded from, or the one given).
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// The names of the functions the module exports.
    pub fn exports(&self) -> Vec<String> {
        self.inner
            .module
            .exports()
            .filter(|e| e.ty().func().is_some())
            .map(|e| e.name().to_string())
            .collect()
    }

    pub(crate) fn pre(&self) -> &InstancePre<StoreData> {
        &self.inner.pre
    }

    pub(crate) fn module(&self) -> &Module {
        &self.inner.module
    }
}

impl fmt::Debug for Guest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Guest")
            .field("name", &self.inner.name)
            .finish()
    }
}
