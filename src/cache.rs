//! Compiled-code cache: a language guest is compiled once per machine
//! (per engine configuration), written next to its `.wasm` as a `.cwasm`,
//! and loaded from there by later processes without compiling.
//!
//! A cache file is named `{stem}.{tag}.{content}-{engine}.cwasm`: `content`
//! is a SHA-256 of the tag and of the wasm file's bytes (not its size and
//! modification time, which a rebuild, a checkout or a copy can keep while the
//! bytes change), `engine` a SHA-256 of the engine's
//! [`precompile_compatibility_hash`](Engine::precompile_compatibility_hash).
//! The wasm's SHA-256 is remembered in `{name}.sha256` beside it, under the
//! file's inode, size and times, so that a start-up need not hash 17 MB of
//! Python guest (see [`digest_of`]).

use std::hash::{Hash, Hasher};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use sha2::{Digest, Sha256};
use wasmtime::{Engine, Module};

use crate::error::{BoxError, GuestLoadError};
use crate::language::Language;

/// Hex digits of each half of a cache key (128 bits of SHA-256 for the
/// contents, 64 for the engine).
const CONTENT_HEX: usize = 32;
const ENGINE_HEX: usize = 16;

/// Feeds what a [`Hash`] impl writes into a SHA-256 (the engine's
/// compatibility hash is only offered as `impl Hash`).
struct Sha256Hasher(Sha256);

impl Hasher for Sha256Hasher {
    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }
    fn finish(&self) -> u64 {
        0 // unused: the SHA-256 digest is what is read
    }
}

fn hex(digest: &[u8], digits: usize) -> String {
    digest
        .iter()
        .flat_map(|b| [b >> 4, b & 15])
        .take(digits)
        .map(|n| char::from_digit(u32::from(n), 16).unwrap_or('0'))
        .collect()
}

/// The part of a cache file's name that stands for `tag` and the wasm's
/// bytes, given as their SHA-256 `digest`.
fn content_key(tag: &str, digest: &[u8]) -> String {
    let mut h = Sha256::new();
    h.update(b"subinterp cache 2\0");
    h.update((tag.len() as u64).to_le_bytes());
    h.update(tag.as_bytes());
    h.update(digest);
    hex(&h.finalize(), CONTENT_HEX)
}

/// SHA-256 of the file at `wasm`, read in pieces: a whole-file buffer would
/// cost fresh pages (about as long again as hashing it) on every start-up.
fn digest_of_file(wasm: &Path) -> std::io::Result<Vec<u8>> {
    let mut f = std::fs::File::open(wasm)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 64 << 10];
    loop {
        match f.read(&mut buf) {
            Ok(0) => return Ok(h.finalize().to_vec()),
            Ok(n) => h.update(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// How long a file must have been left alone before its digest is
/// remembered: longer than the kernel's coarse clock tick, so that a write
/// after the hashing cannot leave the change time it had before.
const SETTLED: Duration = Duration::from_secs(2);

/// SHA-256 of the file at `wasm`, remembered beside it in `{name}.sha256`
/// under the file's device, inode, size, modification and change times
/// (git's index does the same). Hashing the Python guest (17 MB) is most of
/// a CLI start-up, so a later start whose five match reads the digest
/// instead. Any write changes the change time (which nobody can set), and a
/// digest is remembered only for a file left alone for [`SETTLED`] before
/// it was hashed and unchanged during the hashing, so a stamp never
/// outlives the bytes it stands for. Best effort: no stamp, or none
/// writable, costs the hashing.
fn digest_of(wasm: &Path, settled: Duration) -> std::io::Result<Vec<u8>> {
    let stamp_path = stamp_path(wasm);
    let meta = std::fs::metadata(wasm)?;
    let before = stamp_of(&meta);
    if let Some(stamp) = &before
        && let Ok(text) = std::fs::read_to_string(&stamp_path)
        && let Some(digest) = text
            .strip_prefix(stamp.as_str())
            .and_then(|rest| rest.strip_prefix(' '))
            .and_then(|rest| unhex(rest.trim_end()))
    {
        return Ok(digest);
    }
    // Left alone long enough before the hashing starts: a write from now on
    // gets a later change time, even on a coarse clock.
    let settled = ctime(&meta)
        .and_then(|changed| SystemTime::now().duration_since(changed).ok())
        .is_some_and(|age| age >= settled);
    let digest = digest_of_file(wasm)?;
    let after = stamp_of(&std::fs::metadata(wasm)?);
    if let Some(stamp) = before
        && settled
        && after.as_ref() == Some(&stamp)
    {
        write_whole(
            &stamp_path,
            format!("{stamp} {}\n", hex(&digest, 64)).as_bytes(),
        );
    }
    Ok(digest)
}

fn stamp_path(wasm: &Path) -> PathBuf {
    let mut name = wasm.file_name().unwrap_or_default().to_os_string();
    name.push(".sha256");
    wasm.with_file_name(name)
}

/// The device, inode, size, and modification and change times (ns) of a
/// file, as one line; `None` where they are not known.
#[cfg(unix)]
fn stamp_of(m: &std::fs::Metadata) -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    Some(format!(
        "{} {} {} {}.{:09} {}.{:09}",
        m.dev(),
        m.ino(),
        m.size(),
        m.mtime(),
        m.mtime_nsec(),
        m.ctime(),
        m.ctime_nsec()
    ))
}

#[cfg(not(unix))]
fn stamp_of(_: &std::fs::Metadata) -> Option<String> {
    None
}

/// When the file's inode last changed.
#[cfg(unix)]
fn ctime(m: &std::fs::Metadata) -> Option<SystemTime> {
    use std::os::unix::fs::MetadataExt;
    let secs = u64::try_from(m.ctime()).ok()?;
    let nanos = u32::try_from(m.ctime_nsec()).ok()?;
    SystemTime::UNIX_EPOCH.checked_add(Duration::new(secs, nanos))
}

#[cfg(not(unix))]
fn ctime(_: &std::fs::Metadata) -> Option<SystemTime> {
    None
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if text.len() != 64 {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

/// The part of a cache file's name that stands for everything in the
/// engine's configuration (and wasmtime's version) that compiled code
/// depends on.
fn engine_key(engine: &Engine) -> String {
    let mut h = Sha256Hasher(Sha256::new());
    engine.precompile_compatibility_hash().hash(&mut h);
    hex(&h.0.finalize(), ENGINE_HEX)
}

/// The cache file for `wasm` under `engine`, `content` being the
/// [`content_key`] of its bytes: it changes whenever the wasm's contents, the
/// tag, or anything in the engine's configuration that compiled code depends
/// on changes, so a stale file is never picked.
fn cache_path(engine: &Engine, wasm: &Path, content: &str, tag: &str) -> PathBuf {
    let stem = wasm.file_stem().unwrap_or_default().to_string_lossy();
    let engine = engine_key(engine);
    wasm.with_file_name(format!("{stem}.{tag}.{content}-{engine}.cwasm"))
}

/// Writes `data` to `path` as a whole: into a new temporary file beside it
/// (a name no other writer, thread or process, uses), flushed to disk, then
/// renamed over `path`. A reader therefore sees either no file or a complete
/// one, and a file that is there is never written again (a later writer
/// replaces the name, not the bytes, so whoever has the old file mapped keeps
/// it unchanged). Best effort: failure only loses the cache.
fn write_whole(path: &Path, data: &[u8]) {
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let Some(name) = path.file_name() else {
        return;
    };
    let tmp = path.with_file_name(format!(
        "{}.{}-{}.tmp",
        name.to_string_lossy(),
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed)
    ));
    let written = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&tmp)
        .and_then(|mut f| {
            f.write_all(data)?;
            f.sync_all()
        });
    if written.is_err() || std::fs::rename(&tmp, path).is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
}

/// Loads the module at `wasm`, after `prepare` (e.g. pre-initialisation),
/// from its compiled cache when there is a good one, else preparing and
/// compiling it and writing the cache (best effort: a read-only folder only
/// costs the work). `tag` names what `prepare` does, in the cache's name.
pub(crate) fn load(
    engine: &Engine,
    wasm: &Path,
    tag: &str,
    prepare: impl FnOnce(Vec<u8>) -> Result<Vec<u8>, BoxError>,
) -> Result<Module, GuestLoadError> {
    let io_err = |source| GuestLoadError::Read {
        path: wasm.to_path_buf(),
        source,
    };
    let content = content_key(tag, &digest_of(wasm, SETTLED).map_err(io_err)?);
    let cached = cache_path(engine, wasm, &content, tag);
    if let Some(module) = load_cached(engine, &cached) {
        return Ok(module);
    }
    // A miss: the key is taken again from the very bytes compiled, so a file
    // that changed since it was hashed above cannot pair a name with the
    // code of other contents.
    let bytes = std::fs::read(wasm).map_err(io_err)?;
    let content = content_key(tag, &Sha256::digest(&bytes));
    let cached = cache_path(engine, wasm, &content, tag);
    let bytes = prepare(bytes).map_err(GuestLoadError::Compile)?;
    let module = Module::new(engine, &bytes).map_err(|e| GuestLoadError::Compile(e.into()))?;
    if let Ok(data) = module.serialize() {
        write_whole(&cached, &data);
        remove_stale(wasm, tag, &cached);
    }
    Ok(module)
}

/// The module compiled earlier into `cached`, if that file exists and
/// wasmtime accepts it.
fn load_cached(engine: &Engine, cached: &Path) -> Option<Module> {
    if !cached.is_file() {
        return None;
    }
    // SAFETY: `Module::deserialize_file` requires (wasmtime 48's docs)
    // that (1) the file hold the unmodified output of `Module::serialize`
    // or `Engine::precompile_module` — its contents are otherwise only
    // lightly validated, and arbitrary bytes can run arbitrary code — and
    // (2) the file stay unchanged, and a valid precompiled module, for as
    // long as the returned `Module` lives, because it is mapped and its
    // pages are read lazily from the file. How we meet them:
    // (1) files of this name are written only by `write_whole` below,
    //     with `Module::serialize`'s bytes, to a fresh temporary file that
    //     is flushed and then renamed into place, so the name never shows
    //     a partial file; the name carries a SHA-256 of the exact wasm
    //     bytes (and tag) it was compiled from and of this engine's
    //     `precompile_compatibility_hash`. A file from another wasmtime
    //     version or configuration therefore has another name, and should
    //     one still be opened wasmtime checks its header, version and
    //     configuration and returns an error (not UB), after which we
    //     compile instead.
    // (2) nothing of ours ever writes into an existing cache file: a
    //     rewrite renames a new file over the name and `remove_stale`
    //     unlinks; both leave the inode that a running process has mapped
    //     untouched.
    // NOT guaranteed: that nobody else writes to the folder (the
    // guest's build folder, or wherever `SUBINTERP_JS_WASM` points).
    // Another process with write access to it — another user, another
    // program — can plant a file under the expected name (the name is
    // computed from public inputs, it is not a secret or a signature), or
    // modify or truncate a cache file in place while it is mapped; either
    // is memory-unsafe here (arbitrary code execution; SIGBUS on
    // truncation). The folder must be writable only by those trusted as
    // much as the host process itself.
    #[allow(unsafe_code)]
    let module = unsafe { Module::deserialize_file(engine, cached) };
    module.ok()
}

/// Removes cache files of `wasm` and `tag` made from other contents of it
/// that are older than the wasm file (an older build). Files for the current
/// contents under other engine configurations stay, and so do files written
/// since the wasm was (e.g. by a process that read it just before it changed).
/// Removing a file another process has mapped is safe: unlinking does not
/// change the mapped file.
fn remove_stale(wasm: &Path, tag: &str, current: &Path) {
    let (Some(dir), Some(stem), Some(current)) =
        (wasm.parent(), wasm.file_stem(), current.file_name())
    else {
        return;
    };
    let Ok(built) = std::fs::metadata(wasm).and_then(|m| m.modified()) else {
        return;
    };
    let current = current.to_string_lossy();
    let prefix = format!("{}.{tag}.", stem.to_string_lossy());
    // The `{content}-` part of the current name: a file with it is for the
    // current bytes, under some engine configuration.
    let Some(same_content) = current.get(..prefix.len() + CONTENT_HEX + 1) else {
        return;
    };
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if !name.starts_with(&prefix) || !name.ends_with(".cwasm") || name.starts_with(same_content)
        {
            continue;
        }
        let older = e
            .metadata()
            .and_then(|m| m.modified())
            .is_ok_and(|t| t < built);
        if older {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

/// Where a language's guest is: its environment variable
/// (`$SUBINTERP_JS_WASM`, `$SUBINTERP_PY_WASM`), else `target/guest/js.wasm`
/// (`python.wasm`) in the source tree this crate was built from, else
/// `guest/js.wasm` (`python.wasm`) beside the running executable.
pub(crate) fn guest_wasm_path(language: Language) -> Result<PathBuf, GuestLoadError> {
    let env = language.env_var();
    if let Some(p) = std::env::var_os(env) {
        let path = PathBuf::from(p);
        if !path.exists() {
            return Err(GuestLoadError::NotFound { path, env });
        }
        return Ok(path);
    }
    let file = language.file_name();
    let built = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("target/guest")
        .join(file);
    if built.is_file() {
        return Ok(built);
    }
    if let Some(dir) = std::env::current_exe()
        .ok()
        .and_then(|e| e.parent().map(Path::to_path_buf))
    {
        let beside = dir.join("guest").join(file);
        if beside.is_file() {
            return Ok(beside);
        }
    }
    Err(GuestLoadError::NotFound { path: built, env })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cache_files(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".cwasm"))
            .collect();
        v.sort();
        v
    }

    #[test]
    fn the_cache_is_keyed_by_contents_not_size_or_time() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let engine = Engine::default();
        let wasm = dir.join("m.wasm");
        let a =
            wat::parse_str(r#"(module (func (export "f") (result i32) (i32.const 1)))"#).unwrap();
        let b =
            wat::parse_str(r#"(module (func (export "f") (result i32) (i32.const 2)))"#).unwrap();
        assert_eq!(a.len(), b.len());
        std::fs::write(&wasm, &a).unwrap();
        let when = std::fs::metadata(&wasm).unwrap().modified().unwrap();
        load(&engine, &wasm, "t", Ok).unwrap();
        let first = cache_files(dir);
        assert_eq!(first.len(), 1);
        // Other bytes of the same size and modification time: a new key.
        std::fs::write(&wasm, &b).unwrap();
        std::fs::File::options()
            .write(true)
            .open(&wasm)
            .unwrap()
            .set_modified(when)
            .unwrap();
        load(&engine, &wasm, "t", Ok).unwrap();
        let second = cache_files(dir);
        assert!(second.iter().any(|n| !first.contains(n)), "{second:?}");
        // The same bytes touched later: the same key, no new file.
        std::fs::write(&wasm, &b).unwrap();
        load(&engine, &wasm, "t", Ok).unwrap();
        assert_eq!(cache_files(dir).len(), second.len());
    }

    #[test]
    fn a_remembered_digest_is_used_only_while_the_file_is_unchanged() {
        let tmp = tempfile::tempdir().unwrap();
        let wasm = tmp.path().join("m.wasm");
        std::fs::write(&wasm, b"first").unwrap();
        // Just written: not settled, so nothing is remembered.
        assert_eq!(
            digest_of(&wasm, SETTLED).unwrap(),
            Sha256::digest(b"first").to_vec()
        );
        assert!(!stamp_path(&wasm).exists());
        // Settled (no wait in a test): remembered, and then read, not hashed
        // again — a forged digest under the same stamp is what comes back.
        digest_of(&wasm, Duration::ZERO).unwrap();
        let text = std::fs::read_to_string(stamp_path(&wasm)).unwrap();
        let (stamp, _) = text.rsplit_once(' ').unwrap();
        std::fs::write(stamp_path(&wasm), format!("{stamp} {}\n", "ab".repeat(32))).unwrap();
        assert_eq!(digest_of(&wasm, SETTLED).unwrap(), vec![0xab; 32]);
        // Any write changes the stamp, so the bytes are hashed again.
        std::fs::write(&wasm, b"second").unwrap();
        assert_eq!(
            digest_of(&wasm, SETTLED).unwrap(),
            Sha256::digest(b"second").to_vec()
        );
    }
}
