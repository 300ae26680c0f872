//! Compiled-code cache: a module is compiled once per machine (per engine
//! configuration), written as a `.cwasm` into the cache folder, and loaded
//! from there by later hosts and processes without compiling.
//!
//! The folder is `$XDG_CACHE_HOME/subinterp`, else `$HOME/.cache/subinterp`
//! ([`default_dir`]), or the one given to
//! [`HostBuilder::cache_dir`](crate::HostBuilder::cache_dir); a host built
//! with [`HostBuilder::no_cache`](crate::HostBuilder::no_cache) has none.
//! It must be writable only by the user (see the SAFETY comment in
//! `file.rs`): the host makes it private to the user when it creates it,
//! and loads nothing from a folder that group or others can write to.
//!
//! A cache file is named `{stem}.{tag}.{content}-{engine}.cwasm`: `content`
//! is a SHA-256 of the tag and of the wasm's bytes (not a file's size and
//! modification time, which a rebuild, a checkout or a copy can keep while
//! the bytes change), `engine` a SHA-256 of the engine's
//! [`precompile_compatibility_hash`](Engine::precompile_compatibility_hash);
//! `stem` is only there for people reading the folder. The embedded
//! JavaScript guest's SHA-256 is made when the library is built; a guest
//! file's is remembered in the folder under the file's inode, size and
//! times (see [`digest::digest_of`]), so that a start-up hashes neither.
//!
//! A write that takes the folder past [`MAX_BYTES`] removes the least
//! recently used files (a hit sets a file's modification time). Everything
//! here is best effort: a folder that cannot be made or written costs the
//! compile, never the run.

mod digest;
mod file;
mod notice;
mod source;

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use wasmtime::{Engine, Module};

pub(crate) use self::notice::{NOTICE_AFTER, Notice};
pub(crate) use self::source::{GuestSource, guest_source};
use crate::error::{BoxError, GuestLoadError};
use crate::language::Language;

/// Most bytes of compiled code a cache folder keeps: a write past it
/// removes the least recently used files (2 GiB: the Python guest's
/// snapshot is 36 MB, the JavaScript guest's 3.4 MB).
const MAX_BYTES: u64 = 2 << 30;

/// The user's cache folder for subinterp: `$XDG_CACHE_HOME/subinterp`, else
/// `$HOME/.cache/subinterp` (relative paths in either are ignored, as the
/// XDG base directory specification says); `None` when neither is set.
pub(crate) fn default_dir() -> Option<PathBuf> {
    let absolute = |v: std::ffi::OsString| Some(PathBuf::from(v)).filter(|p| p.is_absolute());
    std::env::var_os("XDG_CACHE_HOME")
        .and_then(absolute)
        .or_else(|| {
            std::env::var_os("HOME")
                .and_then(absolute)
                .map(|h| h.join(".cache"))
        })
        .map(|d| d.join("subinterp"))
}

/// A name's stem as it starts a cache file's name: the part before the
/// first dot, letters, digits, `-` and `_` only, at most 40 of them.
fn file_stem(name: &str) -> String {
    let stem: String = name
        .split('.')
        .next()
        .unwrap_or_default()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .take(40)
        .collect();
    if stem.is_empty() {
        "module".to_string()
    } else {
        stem
    }
}

/// One host's cache: its folder, if any, and whether it announces slow
/// compiles on stderr.
#[derive(Debug, Clone)]
pub(crate) struct Cache {
    dir: Option<PathBuf>,
    notices: bool,
}

/// Where one compiled module is (or would be) cached.
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    path: PathBuf,
}

impl Entry {
    /// The cache file.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }
}

impl Cache {
    /// A cache in `dir` (`None`: no cache), announcing slow compiles on
    /// stderr when `notices`.
    pub(crate) fn new(dir: Option<PathBuf>, notices: bool) -> Cache {
        Cache { dir, notices }
    }

    /// The cache folder.
    pub(crate) fn dir(&self) -> Option<&Path> {
        self.dir.as_deref()
    }

    /// The entry for wasm of SHA-256 `digest` prepared as `tag` says, under
    /// `engine`; `None` without a cache folder.
    fn entry(&self, engine: &Engine, stem: &str, tag: &str, digest: &[u8]) -> Option<Entry> {
        let dir = self.dir.as_ref()?;
        let content = digest::content_key(tag, digest);
        let engine = digest::engine_key(engine);
        Some(Entry {
            path: dir.join(format!("{stem}.{tag}.{content}-{engine}.cwasm")),
        })
    }

    /// The entry for a module the host is given (`name` its file name, or
    /// the one given), compiled as it is.
    pub(crate) fn module_entry(&self, engine: &Engine, name: &str, wasm: &[u8]) -> Option<Entry> {
        self.dir.as_ref()?;
        self.entry(engine, &file_stem(name), "module", &Sha256::digest(wasm))
    }

    /// The module cached in `entry`, if there is a good one in a folder
    /// only its owner can write to.
    pub(crate) fn get(&self, engine: &Engine, entry: &Entry) -> Option<Module> {
        let dir = self.dir.as_ref()?;
        if !file::is_private_dir(dir) {
            return None;
        }
        let module = file::load_cached(engine, &entry.path)?;
        file::touch(&entry.path);
        Some(module)
    }

    /// Writes `module` into `entry`, making the folder if need be, then
    /// keeps the folder within [`MAX_BYTES`]. Best effort: `false` when it
    /// could not be written.
    pub(crate) fn put(&self, entry: &Entry, module: &Module) -> bool {
        let Some(dir) = &self.dir else {
            return false;
        };
        if !file::make_dir(dir) || !file::is_private_dir(dir) {
            return false;
        }
        let written = module
            .serialize()
            .is_ok_and(|data| file::write_whole(&entry.path, &data));
        if written {
            file::trim(dir, MAX_BYTES, &entry.path);
        }
        written
    }

    /// A notice for compiling a module the host was given, printed if the
    /// compile takes over [`NOTICE_AFTER`] (and the host prints notices).
    pub(crate) fn notice(&self, name: &str) -> Notice {
        if self.notices {
            Notice::after(NOTICE_AFTER, format!("compiling {name}…"))
        } else {
            Notice::off()
        }
    }

    /// What a finished notice says after the time taken: where the code
    /// went.
    pub(crate) fn outcome(&self, written: bool) -> String {
        match (&self.dir, written) {
            (Some(dir), true) => format!("cached in {}", dir.display()),
            (Some(dir), false) => format!(
                "not cached ({} cannot be written, or group or others can write to it)",
                dir.display()
            ),
            (None, _) => "not cached (the host has no cache folder)".to_string(),
        }
    }

    /// Loads a language guest from `source`, after `prepare` (e.g.
    /// pre-initialisation), from its compiled cache when there is a good
    /// one, else preparing and compiling it and writing the cache (best
    /// effort: a read-only folder only costs the work). `tag` names what
    /// `prepare` does, in the cache's name. Returns the module and the
    /// cache file it came from or went to.
    ///
    /// # Errors
    /// [`GuestLoadError::Read`] when the guest file cannot be read;
    /// [`GuestLoadError::Compile`] when `prepare` or the compile fails.
    pub(crate) fn load_guest(
        &self,
        engine: &Engine,
        source: &GuestSource,
        tag: &str,
        language: Language,
        prepare: impl FnOnce(Vec<u8>) -> Result<Vec<u8>, BoxError>,
    ) -> Result<(Module, Option<PathBuf>), GuestLoadError> {
        let io_err = |e| GuestLoadError::Read {
            path: source.path(),
            source: e,
        };
        if let Some(entry) = self.guest_entry(engine, source, tag).map_err(io_err)?
            && let Some(module) = self.get(engine, &entry)
        {
            return Ok((module, Some(entry.path)));
        }
        let stem = source.stem();
        let notice = self.guest_notice(language);
        let bytes = match source {
            GuestSource::File(path) => std::fs::read(path).map_err(io_err)?,
            GuestSource::Embedded { bytes, .. } => bytes.to_vec(),
        };
        // A miss: the key is taken again from the very bytes compiled, so a
        // file that changed since it was hashed above cannot pair a name
        // with the code of other contents.
        let entry = self.entry(engine, &stem, tag, &Sha256::digest(&bytes));
        let bytes = prepare(bytes).map_err(GuestLoadError::Compile)?;
        let module = Module::new(engine, &bytes).map_err(|e| GuestLoadError::Compile(e.into()))?;
        let written = entry.filter(|e| self.put(e, &module));
        if let (Some(entry), GuestSource::File(path), Some(dir)) = (&written, source, &self.dir)
            && let Ok(built) = std::fs::metadata(path).and_then(|m| m.modified())
        {
            file::remove_stale(dir, &format!("{stem}.{tag}."), &entry.path, built);
        }
        notice.finish(|| self.outcome(written.is_some()));
        Ok((module, written.map(|e| e.path)))
    }

    /// The entry for a language guest, from its SHA-256 made at build time
    /// (embedded) or remembered in the folder (a file); `None` without a
    /// cache folder.
    fn guest_entry(
        &self,
        engine: &Engine,
        source: &GuestSource,
        tag: &str,
    ) -> std::io::Result<Option<Entry>> {
        let Some(dir) = &self.dir else {
            return Ok(None);
        };
        let digest = match source {
            GuestSource::Embedded { sha256, .. } => digest::unhex(sha256),
            GuestSource::File(path) => Some(digest::digest_of(dir, path, digest::SETTLED)?),
        };
        Ok(digest.and_then(|d| self.entry(engine, &source.stem(), tag, &d)))
    }

    /// The notice for compiling a language guest: printed up front (when
    /// the host prints notices), since it takes seconds.
    fn guest_notice(&self, language: Language) -> Notice {
        if !self.notices {
            return Notice::off();
        }
        let (when, how_long) = match language {
            Language::JavaScript => ("once per build of subinterp", "a few seconds"),
            _ => ("once per build of the guest", "20 s or more"),
        };
        Notice::now(&format!(
            "compiling the {language} guest ({when}; {how_long})…"
        ))
    }
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

    fn load(cache: &Cache, engine: &Engine, wasm: &Path) -> Option<PathBuf> {
        let source = GuestSource::File(wasm.to_path_buf());
        cache
            .load_guest(engine, &source, "t", Language::JavaScript, Ok)
            .unwrap()
            .1
    }

    #[test]
    fn the_cache_is_keyed_by_contents_not_size_or_time() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("cache");
        let cache = Cache::new(Some(dir.clone()), false);
        let engine = Engine::default();
        let wasm = tmp.path().join("m.wasm");
        let a =
            wat::parse_str(r#"(module (func (export "f") (result i32) (i32.const 1)))"#).unwrap();
        let b =
            wat::parse_str(r#"(module (func (export "f") (result i32) (i32.const 2)))"#).unwrap();
        assert_eq!(a.len(), b.len());
        std::fs::write(&wasm, &a).unwrap();
        let when = std::fs::metadata(&wasm).unwrap().modified().unwrap();
        let written = load(&cache, &engine, &wasm).unwrap();
        assert!(written.starts_with(&dir), "{}", written.display());
        let first = cache_files(&dir);
        assert_eq!(first.len(), 1);
        // Other bytes of the same size and modification time: a new key.
        std::fs::write(&wasm, &b).unwrap();
        std::fs::File::options()
            .write(true)
            .open(&wasm)
            .unwrap()
            .set_modified(when)
            .unwrap();
        load(&cache, &engine, &wasm);
        let second = cache_files(&dir);
        assert!(second.iter().any(|n| !first.contains(n)), "{second:?}");
        // The same bytes touched later: the same key, no new file.
        std::fs::write(&wasm, &b).unwrap();
        load(&cache, &engine, &wasm);
        assert_eq!(cache_files(&dir).len(), second.len());
        // Nothing is written beside the wasm.
        let beside: Vec<_> = std::fs::read_dir(tmp.path()).unwrap().flatten().collect();
        assert_eq!(beside.len(), 2, "{beside:?}");
    }

    #[test]
    fn without_a_usable_folder_modules_still_load() {
        let tmp = tempfile::tempdir().unwrap();
        let engine = Engine::default();
        let wasm = tmp.path().join("m.wasm");
        std::fs::write(&wasm, wat::parse_str("(module)").unwrap()).unwrap();
        // No cache, and a cache folder that cannot be made (under a file).
        let blocked = tmp.path().join("m.wasm/cache");
        for cache in [Cache::new(None, false), Cache::new(Some(blocked), false)] {
            assert_eq!(load(&cache, &engine, &wasm), None);
        }
        // A folder others can write to is neither read nor written.
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let open = tmp.path().join("open");
            std::fs::create_dir(&open).unwrap();
            std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o777)).unwrap();
            assert_eq!(
                load(&Cache::new(Some(open.clone()), false), &engine, &wasm),
                None
            );
            assert!(cache_files(&open).is_empty());
        }
    }

    #[test]
    fn the_default_folder_follows_xdg() {
        // Read only: the variables are the process's, shared by all tests.
        let dir = default_dir();
        if let Some(d) = &dir {
            assert!(
                d.is_absolute() && d.ends_with("subinterp"),
                "{}",
                d.display()
            );
        }
        assert_eq!(file_stem("hello.wasm"), "hello");
        assert_eq!(file_stem("../../etc/x"), "module");
        assert_eq!(file_stem("a b/c.wat"), "abc");
    }
}
