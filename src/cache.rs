//! Compiled-code cache: the JavaScript guest is compiled once per machine
//! (per engine configuration), written next to its `.wasm` as a `.cwasm`,
//! and loaded from there by later processes without compiling.

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};

use wasmtime::{Engine, Module};

/// The cache file for `wasm` under `engine`: it changes whenever the wasm
/// file or anything in the engine's configuration that compiled code depends
/// on changes, so a stale file is never picked.
fn cache_path(engine: &Engine, wasm: &Path, meta: &std::fs::Metadata, tag: &str) -> PathBuf {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    engine.precompile_compatibility_hash().hash(&mut h);
    meta.len().hash(&mut h);
    meta.modified().ok().hash(&mut h);
    let stem = wasm.file_stem().unwrap_or_default().to_string_lossy();
    wasm.with_file_name(format!("{stem}.{tag}.{:016x}.cwasm", h.finish()))
}

/// Loads the module at `wasm`, after `prepare` (e.g. pre-initialisation),
/// from its compiled cache when there is a good one, else preparing and
/// compiling it and writing the cache (best effort: a read-only folder only
/// costs the work). `tag` names what `prepare` does, in the cache's name.
pub(crate) fn load(
    engine: &Engine,
    wasm: &Path,
    tag: &str,
    prepare: impl FnOnce(Vec<u8>) -> Result<Vec<u8>, String>,
) -> Result<Module, String> {
    let meta = std::fs::metadata(wasm).map_err(|e| format!("{}: {e}", wasm.display()))?;
    let cached = cache_path(engine, wasm, &meta, tag);
    if cached.is_file() {
        // SAFETY: `deserialize_file` trusts the file to be wasmtime's own
        // output for a compatible engine. The cache file is written only
        // below, by `Module::serialize` of this crate, into the guest's build
        // folder, under a name that encodes the engine's compatibility hash;
        // wasmtime still checks the header and version and rejects (an
        // error, not UB) a file from another configuration.
        #[allow(unsafe_code)]
        let module = unsafe { Module::deserialize_file(engine, &cached) };
        if let Ok(m) = module {
            return Ok(m);
        }
    }
    let bytes = std::fs::read(wasm).map_err(|e| format!("{}: {e}", wasm.display()))?;
    let bytes = prepare(bytes)?;
    let module = Module::new(engine, &bytes).map_err(|e| format!("{e:#}"))?;
    if let Ok(data) = module.serialize() {
        let tmp = cached.with_extension(format!("tmp{}", std::process::id()));
        if std::fs::write(&tmp, data).is_ok() && std::fs::rename(&tmp, &cached).is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        remove_stale(wasm, tag, &meta);
    }
    Ok(module)
}

/// Removes cache files of `wasm` made from an older build of it (other
/// engine configurations' files for the current build stay).
fn remove_stale(wasm: &Path, tag: &str, meta: &std::fs::Metadata) {
    let (Some(dir), Some(stem), Ok(built)) = (wasm.parent(), wasm.file_stem(), meta.modified())
    else {
        return;
    };
    let prefix = format!("{}.{tag}.", stem.to_string_lossy());
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let older = e
            .metadata()
            .and_then(|m| m.modified())
            .is_ok_and(|t| t < built);
        if name.starts_with(&prefix) && name.ends_with(".cwasm") && older {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

/// Where the JavaScript guest is: `$SUBINTERP_JS_WASM`, else
/// `target/guest/js.wasm` in the source tree this crate was built from, else
/// `guest/js.wasm` beside the running executable.
pub(crate) fn js_wasm_path() -> Result<PathBuf, String> {
    if let Some(p) = std::env::var_os("SUBINTERP_JS_WASM") {
        return Ok(PathBuf::from(p));
    }
    let built = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/guest/js.wasm");
    if built.is_file() {
        return Ok(built);
    }
    if let Some(dir) = std::env::current_exe()
        .ok()
        .and_then(|e| e.parent().map(Path::to_path_buf))
    {
        let beside = dir.join("guest/js.wasm");
        if beside.is_file() {
            return Ok(beside);
        }
    }
    Err(format!(
        "{} not found: run `make guest`, or set SUBINTERP_JS_WASM to the JS guest's path",
        built.display()
    ))
}
