//! Cache files: written whole (a temporary file renamed into place), loaded
//! with the crate's one `unsafe` call, and old ones removed.

use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use wasmtime::{Engine, Module};

use super::digest::CONTENT_HEX;

/// Makes the cache folder (and its parents) if it is not there, readable and
/// writable by the user alone. Best effort: `false` when it cannot be made.
pub(super) fn make_dir(dir: &Path) -> bool {
    let mut b = std::fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut b, 0o700);
    b.create(dir).is_ok()
}

/// Whether `dir` is a folder that only its owner can write to: files in a
/// folder others can write to are not loaded (see [`load_cached`]).
pub(super) fn is_private_dir(dir: &Path) -> bool {
    let Ok(meta) = std::fs::metadata(dir) else {
        return false;
    };
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        meta.is_dir() && meta.permissions().mode() & 0o022 == 0
    }
    #[cfg(not(unix))]
    meta.is_dir()
}

/// Writes `data` to `path` as a whole: into a new temporary file beside it
/// (a name no other writer, thread or process, uses), flushed to disk, then
/// renamed over `path`. A reader therefore sees either no file or a complete
/// one, and a file that is there is never written again (a later writer
/// replaces the name, not the bytes, so whoever has the old file mapped keeps
/// it unchanged). Best effort: `false` when it could not be written, which
/// only loses the cache.
pub(super) fn write_whole(path: &Path, data: &[u8]) -> bool {
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let Some(name) = path.file_name() else {
        return false;
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
        return false;
    }
    true
}

/// The module compiled earlier into `cached`, if that file exists and
/// wasmtime accepts it.
pub(super) fn load_cached(engine: &Engine, cached: &Path) -> Option<Module> {
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
    // (1) files of this name are written only by `write_whole` above,
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
    //     rewrite renames a new file over the name, `remove_stale` and
    //     `trim` unlink, and `touch` sets the modification time (metadata,
    //     not contents); all leave the bytes that a running process has
    //     mapped untouched.
    // NOT guaranteed: that nobody else writes to the cache folder (the
    // user's `$XDG_CACHE_HOME/subinterp`, or the folder given to
    // `HostBuilder::cache_dir`). Another process with write access to it —
    // another user, another program — can plant a file under the expected
    // name (the name is computed from public inputs, it is not a secret or
    // a signature), or modify or truncate a cache file in place while it is
    // mapped; either is memory-unsafe here (arbitrary code execution;
    // SIGBUS on truncation). The folder must be writable only by those
    // trusted as much as the host process itself: the caller loads nothing
    // from a folder that group or others can write to (`is_private_dir`),
    // and makes the folder it creates private to the user, but a folder's
    // owner is not checked.
    #[allow(unsafe_code)]
    let module = unsafe { Module::deserialize_file(engine, cached) };
    module.ok()
}

/// Removes the cache files in `dir` whose names start with `prefix` (a
/// guest's `{stem}.{tag}.`) and were made from other contents of it than
/// `current`'s, when they are older than `built` (the guest file's
/// modification time: an older build). Files for the current contents under
/// other engine configurations stay, and so do files written since the wasm
/// was (e.g. by a process that read it just before it changed). Removing a
/// file another process has mapped is safe: unlinking does not change the
/// mapped file.
pub(super) fn remove_stale(dir: &Path, prefix: &str, current: &Path, built: std::time::SystemTime) {
    let Some(current) = current.file_name() else {
        return;
    };
    let current = current.to_string_lossy();
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
        if !name.starts_with(prefix) || !name.ends_with(".cwasm") || name.starts_with(same_content)
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

/// Marks `cached` as just used (its modification time, which
/// [`trim`] orders by): metadata only, its bytes are not written. Best
/// effort.
pub(super) fn touch(cached: &Path) {
    if let Ok(f) = std::fs::File::open(cached) {
        let _ = f.set_modified(std::time::SystemTime::now());
    }
}

/// Removes the least recently used cache files (`.cwasm` in `dir`, by
/// modification time; see [`touch`]) until those left hold at most `max`
/// bytes, never `keep` (the file just written). Unlinking a file another
/// process has mapped leaves that process's mapping intact.
pub(super) fn trim(dir: &Path, max: u64, keep: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut files: Vec<(std::time::SystemTime, u64, std::path::PathBuf)> = entries
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".cwasm"))
        .filter_map(|e| {
            let m = e.metadata().ok().filter(|m| m.is_file())?;
            Some((m.modified().ok()?, m.len(), e.path()))
        })
        .collect();
    let mut total: u64 = files.iter().map(|f| f.1).sum();
    files.sort();
    for (_, len, path) in files {
        if total <= max {
            break;
        }
        if path != keep && std::fs::remove_file(&path).is_ok() {
            total -= len;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime};

    use super::*;

    #[test]
    fn trimming_removes_the_least_recently_used_files_first() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let long_ago = SystemTime::now() - Duration::from_secs(3600);
        let file = |name: &str, age: u64| {
            let p = dir.join(name);
            std::fs::write(&p, vec![0u8; 100]).unwrap();
            let f = std::fs::File::options().write(true).open(&p).unwrap();
            f.set_modified(long_ago + Duration::from_secs(age)).unwrap();
            p
        };
        let (a, b, c) = (file("a.cwasm", 1), file("b.cwasm", 2), file("c.cwasm", 3));
        let other = file("notes.txt", 0);
        // `a` was used last; `b` is the file just written.
        touch(&a);
        trim(dir, 250, &b);
        assert!(a.exists() && b.exists() && other.exists());
        assert!(!c.exists(), "the least recently used goes first");
        trim(dir, 0, &b);
        assert!(!a.exists() && b.exists() && other.exists());
    }
}
