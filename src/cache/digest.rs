//! The names of cache files: SHA-256 of a module's contents and of the
//! engine's configuration, and the digests of guest files remembered under
//! their inode, size and times so that a start-up need not hash them.

use std::hash::{Hash, Hasher};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use sha2::{Digest, Sha256};
use wasmtime::Engine;

use super::file::write_whole;

/// Hex digits of each half of a cache key (128 bits of SHA-256 for the
/// contents, 64 for the engine).
pub(super) const CONTENT_HEX: usize = 32;
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

pub(super) fn hex(digest: &[u8], digits: usize) -> String {
    digest
        .iter()
        .flat_map(|b| [b >> 4, b & 15])
        .take(digits)
        .map(|n| char::from_digit(u32::from(n), 16).unwrap_or('0'))
        .collect()
}

pub(super) fn unhex(text: &str) -> Option<Vec<u8>> {
    if text.len() != 64 {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

/// The part of a cache file's name that stands for `tag` and the wasm's
/// bytes, given as their SHA-256 `digest`.
pub(super) fn content_key(tag: &str, digest: &[u8]) -> String {
    let mut h = Sha256::new();
    h.update(b"subinterp cache 2\0");
    h.update((tag.len() as u64).to_le_bytes());
    h.update(tag.as_bytes());
    h.update(digest);
    hex(&h.finalize(), CONTENT_HEX)
}

/// The part of a cache file's name that stands for everything in the
/// engine's configuration (and wasmtime's version) that compiled code
/// depends on.
pub(super) fn engine_key(engine: &Engine) -> String {
    let mut h = Sha256Hasher(Sha256::new());
    engine.precompile_compatibility_hash().hash(&mut h);
    hex(&h.0.finalize(), ENGINE_HEX)
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
pub(super) const SETTLED: Duration = Duration::from_secs(2);

/// SHA-256 of the file at `wasm`, remembered in the cache folder `dir`
/// under the file's device, inode, size, modification and change times
/// (git's index does the same), in a stamp file named after the wasm's path
/// ([`stamp_path`]). Hashing the Python guest (17 MB) is most of a CLI
/// start-up, so a later start whose five match reads the digest instead.
/// Any write changes the change time (which nobody can set), and a digest
/// is remembered only for a file left alone for [`SETTLED`] before it was
/// hashed and unchanged during the hashing, so a stamp never outlives the
/// bytes it stands for. Best effort: no stamp, or none writable, costs the
/// hashing.
pub(super) fn digest_of(dir: &Path, wasm: &Path, settled: Duration) -> std::io::Result<Vec<u8>> {
    let stamp_path = stamp_path(dir, wasm);
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
        let line = format!("{stamp} {}\n", hex(&digest, 64));
        write_whole(&stamp_path, line.as_bytes());
    }
    Ok(digest)
}

/// The stamp file of `wasm` in the cache folder `dir`:
/// `{name}.{SHA-256 of its absolute path}.sha256`.
pub(super) fn stamp_path(dir: &Path, wasm: &Path) -> PathBuf {
    let absolute = std::path::absolute(wasm).unwrap_or_else(|_| wasm.to_path_buf());
    let key = hex(
        &Sha256::digest(absolute.as_os_str().as_encoded_bytes()),
        CONTENT_HEX,
    );
    let name = wasm.file_name().unwrap_or_default().to_string_lossy();
    dir.join(format!("{}.{key}.sha256", super::file_stem(&name)))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_remembered_digest_is_used_only_while_the_file_is_unchanged() {
        let tmp = tempfile::tempdir().unwrap();
        let cache = tmp.path().join("cache");
        std::fs::create_dir(&cache).unwrap();
        let wasm = tmp.path().join("m.wasm");
        std::fs::write(&wasm, b"first").unwrap();
        let stamp = stamp_path(&cache, &wasm);
        assert!(stamp.starts_with(&cache), "{}", stamp.display());
        // Just written: not settled, so nothing is remembered.
        assert_eq!(
            digest_of(&cache, &wasm, SETTLED).unwrap(),
            Sha256::digest(b"first").to_vec()
        );
        assert!(!stamp.exists());
        // Settled (no wait in a test): remembered, and then read, not hashed
        // again — a forged digest under the same stamp is what comes back.
        digest_of(&cache, &wasm, Duration::ZERO).unwrap();
        let text = std::fs::read_to_string(&stamp).unwrap();
        let (line, _) = text.rsplit_once(' ').unwrap();
        std::fs::write(&stamp, format!("{line} {}\n", "ab".repeat(32))).unwrap();
        assert_eq!(digest_of(&cache, &wasm, SETTLED).unwrap(), vec![0xab; 32]);
        // Any write changes the stamp, so the bytes are hashed again.
        std::fs::write(&wasm, b"second").unwrap();
        assert_eq!(
            digest_of(&cache, &wasm, SETTLED).unwrap(),
            Sha256::digest(b"second").to_vec()
        );
        // Another path has a stamp of its own.
        assert_ne!(stamp_path(&cache, &tmp.path().join("x/m.wasm")), stamp);
    }
}
