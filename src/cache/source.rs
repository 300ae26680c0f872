//! Where a language guest comes from: the JavaScript guest is embedded in
//! the library (by `build.rs`), the Python guest is a file found by path;
//! either can be named by an environment variable instead.

use std::path::{Path, PathBuf};

use crate::error::GuestLoadError;
use crate::language::Language;

/// The JavaScript guest, embedded by `build.rs` from `target/guest/js.wasm`
/// (or `$SUBINTERP_JS_WASM` at build time).
static EMBEDDED_JS: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/js.wasm"));

/// Its SHA-256, computed by `build.rs`, in hex.
const EMBEDDED_JS_SHA256: &str = env!("SUBINTERP_EMBEDDED_JS_SHA256");

/// A language guest's wasm.
#[derive(Debug, Clone)]
pub(crate) enum GuestSource {
    /// A file, hashed (or its remembered digest read) to find its compiled
    /// code.
    File(PathBuf),
    /// Bytes inside the library, with their SHA-256 made at build time.
    Embedded {
        /// The guest's file name when it was embedded (`js.wasm`).
        name: &'static str,
        /// The wasm.
        bytes: &'static [u8],
        /// SHA-256 of `bytes`, in hex.
        sha256: &'static str,
    },
}

impl GuestSource {
    /// The file, or the embedded guest's name in angle brackets, for errors.
    pub(crate) fn path(&self) -> PathBuf {
        match self {
            GuestSource::File(p) => p.clone(),
            GuestSource::Embedded { name, .. } => PathBuf::from(format!("<embedded {name}>")),
        }
    }

    /// The file name's stem (`js`, `python`), which starts a cache file's name.
    pub(crate) fn stem(&self) -> String {
        let name = match self {
            GuestSource::File(p) => p.file_name().unwrap_or_default().to_string_lossy(),
            GuestSource::Embedded { name, .. } => (*name).into(),
        };
        super::file_stem(&name)
    }
}

/// Where `language`'s guest is: its environment variable
/// (`$SUBINTERP_JS_WASM`, `$SUBINTERP_PY_WASM`) when set; else, for
/// JavaScript, the guest embedded in the library; for Python,
/// `target/guest/python.wasm` in the source tree this crate was built from,
/// else `guest/python.wasm` beside the running executable.
///
/// # Errors
/// [`GuestLoadError::NotFound`] when the variable names a missing file, or
/// the Python guest is in neither place.
pub(crate) fn guest_source(language: Language) -> Result<GuestSource, GuestLoadError> {
    let env = language.env_var();
    if let Some(p) = std::env::var_os(env) {
        let path = PathBuf::from(p);
        if !path.exists() {
            return Err(GuestLoadError::NotFound { path, env });
        }
        return Ok(GuestSource::File(path));
    }
    if language == Language::JavaScript {
        return Ok(GuestSource::Embedded {
            name: language.file_name(),
            bytes: EMBEDDED_JS,
            sha256: EMBEDDED_JS_SHA256,
        });
    }
    let file = language.file_name();
    let built = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("target/guest")
        .join(file);
    if built.is_file() {
        return Ok(GuestSource::File(built));
    }
    if let Some(dir) = std::env::current_exe()
        .ok()
        .and_then(|e| e.parent().map(Path::to_path_buf))
    {
        let beside = dir.join("guest").join(file);
        if beside.is_file() {
            return Ok(GuestSource::File(beside));
        }
    }
    Err(GuestLoadError::NotFound { path: built, env })
}

#[cfg(test)]
mod tests {
    use sha2::{Digest, Sha256};

    use super::*;

    #[test]
    fn the_embedded_guest_is_a_module_with_the_digest_made_at_build_time() {
        assert_eq!(&EMBEDDED_JS[..4], b"\0asm");
        let digest = super::super::digest::hex(&Sha256::digest(EMBEDDED_JS), 64);
        assert_eq!(digest, EMBEDDED_JS_SHA256);
    }
}
