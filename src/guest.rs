//! Compiled guests: a wasm module checked against the host's imports once,
//! ready to be instantiated many times.

use std::fmt;
use std::sync::Arc;

use wasmtime::{InstancePre, Module};

use crate::store::StoreData;

struct GuestInner {
    name: String,
    module: Module,
    pre: InstancePre<StoreData>,
    js: bool,
    preinit: bool,
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
        let js = module.get_export("si_js_eval").is_some()
            && module.get_export("si_js_alloc").is_some()
            && module.get_export("si_js_init").is_some();
        Guest {
            inner: Arc::new(GuestInner {
                name,
                module,
                pre,
                js,
                preinit,
            }),
        }
    }

    /// Whether this is the JavaScript guest started from a pre-initialised
    /// snapshot (its runtime and context made ahead of time).
    pub fn is_preinitialized(&self) -> bool {
        self.inner.preinit
    }

    /// Whether this is the JavaScript guest (it runs
    /// [`Run::js`](crate::Run::js) source).
    pub fn is_js(&self) -> bool {
        self.inner.js
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
}

impl fmt::Debug for Guest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Guest")
            .field("name", &self.inner.name)
            .finish()
    }
}
