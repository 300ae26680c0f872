//! Pre-initialised language guests: the interpreter's runtime (for
//! JavaScript, the QuickJS runtime and context with the prelude evaluated;
//! for Python, the initialised CPython) is created once, and the resulting memory and
//! globals are written into a new module (with the `wasmtime-wizer` crate).
//! Every interpreter of the language then starts from that ready heap: a copy-on-write
//! image, instead of some hundreds of microseconds of set-up.

use std::future::Future;

use wasmtime::{Engine, Instance, Linker, Module, Store, Val};
use wasmtime_wizer::{InstanceState, SnapshotVal, Wizer};

use crate::error::BoxError;
use crate::exec::block_on_trusted;
use crate::language::{Export, Language};
use crate::store::StoreData;

struct Live<'a> {
    store: &'a mut Store<StoreData>,
    instance: Instance,
}

impl InstanceState for Live<'_> {
    fn global_get(
        &mut self,
        name: &str,
        _ty: wasmtime_wizer::ValType,
    ) -> impl Future<Output = SnapshotVal> + Send {
        let g = self.instance.get_global(&mut *self.store, name);
        let v = match g.map(|g| g.get(&mut *self.store)) {
            Some(Val::I32(x)) => SnapshotVal::I32(x),
            Some(Val::I64(x)) => SnapshotVal::I64(x),
            Some(Val::F32(x)) => SnapshotVal::F32(x),
            Some(Val::F64(x)) => SnapshotVal::F64(x),
            Some(Val::V128(x)) => SnapshotVal::V128(x.as_u128()),
            // The language guests have only numeric globals; wizer exported them all.
            _ => SnapshotVal::I32(0),
        };
        std::future::ready(v)
    }

    fn memory_contents(
        &mut self,
        name: &str,
        contents: impl FnOnce(&[u8]) + Send,
    ) -> impl Future<Output = ()> + Send {
        if let Some(m) = self.instance.get_memory(&mut *self.store, name) {
            contents(m.data(&*self.store));
        }
        std::future::ready(())
    }
}

/// Why the set-up run could not be snapshotted.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SnapshotError {
    /// Wizer could not instrument the module, or snapshot its state.
    #[error("snapshotting the guest")]
    Wizer(#[source] BoxError),
    /// The instrumented module did not compile or instantiate.
    #[error("instantiating the guest")]
    Instantiate(#[source] BoxError),
    /// One of the set-up exports is missing or trapped.
    #[error("running the guest's `{export}`")]
    Setup {
        /// The export.
        export: String,
        /// Why it failed.
        #[source]
        source: BoxError,
    },
}

/// Runs a language guest's set-up once and returns a module that starts from
/// its result. `state` is a fresh host state for the one-off instance.
pub(crate) fn pre_initialize(
    engine: &Engine,
    linker: &Linker<StoreData>,
    wasm: &[u8],
    state: StoreData,
    language: Language,
) -> Result<Vec<u8>, SnapshotError> {
    // The export the snapshot runs, as `() -> ()`.
    let init = language.export(Export::SnapshotInit);
    let mut wizer = Wizer::new();
    wizer.init_func(init);
    let (cx, instrumented) = wizer
        .instrument(wasm)
        .map_err(|e| SnapshotError::Wizer(e.into()))?;
    let module =
        Module::new(engine, &instrumented).map_err(|e| SnapshotError::Instantiate(e.into()))?;
    let mut store = Store::new(engine, state);
    store.set_epoch_deadline(u64::MAX / 2);
    // A host built with fuel counts instructions in every store, this one
    // too: without fuel the set-up traps at its first instruction, the
    // snapshot fails, and every interpreter sets itself up on its own fuel.
    // (An error here means the engine counts no fuel: nothing to set.)
    let _ = store.set_fuel(u64::MAX);
    let instance = block_on_trusted(linker.instantiate_async(&mut store, &module))
        .map_err(|e| SnapshotError::Instantiate(e.into()))?;
    for export in ["_initialize", init] {
        let setup = |e: wasmtime::Error| SnapshotError::Setup {
            export: export.to_string(),
            source: e.into(),
        };
        let f = instance
            .get_typed_func::<(), ()>(&mut store, export)
            .map_err(setup)?;
        block_on_trusted(f.call_async(&mut store, ())).map_err(setup)?;
    }
    block_on_trusted(wizer.snapshot(
        &cx,
        &mut Live {
            store: &mut store,
            instance,
        },
    ))
    .map_err(|e| SnapshotError::Wizer(e.into()))
}
