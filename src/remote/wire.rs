//! What travels: a run request (JSON on `S.run`) and the helpers that name
//! and check its parts. The result is the `--json` object of a local run
//! (schema 1, README "The `--json` result") with the request's `id`,
//! `output_base64` when the run gave output bytes, and `stdout_base64` /
//! `stderr_base64` when that stream's bytes are not valid UTF-8 (the text
//! fields then carry U+FFFD in place of the invalid bytes; a client takes
//! the exact bytes from the base64 fields).

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// The version of the request's layout.
pub const REQUEST_SCHEMA: u32 = 1;

/// How long a worker may hold a request without a sign of life before the
/// server gives it to another worker; a worker sends one every third of it
/// while a run goes on.
pub const ACK_WAIT: Duration = Duration::from_secs(4);

/// A run request. Unknown fields are refused: a request cannot ask for
/// directories, environment or anything else a worker does not offer.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Request {
    /// [`REQUEST_SCHEMA`].
    pub schema: u32,
    /// Names the request and its result: 1 to 64 of `[A-Za-z0-9_-]`.
    pub id: String,
    /// `js`, `js_module`, `python` or `wasm`.
    pub lang: String,
    /// The script's name (argv[0], and a module's name).
    pub name: String,
    /// The source (empty for `wasm`).
    #[serde(default)]
    pub source: String,
    /// `wasm`: the module's SHA-256, 64 lowercase hex digits, naming it in
    /// the `S-modules` object store.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub module_sha256: Option<String>,
    /// After the run, call this function with an input; the result is the
    /// call's (its output the function's result).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub call: Option<Call>,
    /// argv[1..].
    #[serde(default)]
    pub args: Vec<String>,
    /// stdin, base64.
    #[serde(default)]
    pub stdin: Option<String>,
    /// The limits asked for; a worker clamps them to its own.
    #[serde(default)]
    pub limits: RequestLimits,
}

/// A function to call after the run (`Interpreter::call`'s remote form).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Call {
    /// The function: a JavaScript global (or `"module.js#name"`), a wasm
    /// export of type `(i32) -> i32`.
    pub name: String,
    /// Its input, base64.
    #[serde(default)]
    pub input: String,
}

/// Limits in a request; absent ones are the worker's.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RequestLimits {
    /// Wall-clock limit, in milliseconds.
    pub timeout_ms: Option<u64>,
    /// Memory ceiling, in bytes.
    pub max_memory: Option<usize>,
    /// Instruction budget.
    pub fuel: Option<u64>,
    /// Cap on each captured stream, in bytes.
    pub max_output: Option<usize>,
}

/// Whether `id` may name a request (and a subject): 1 to 64 of
/// `[A-Za-z0-9_-]`.
pub fn valid_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// The SHA-256 of `bytes`, as 64 lowercase hex digits.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Whether `s` can be a module's hash (and an object's name).
pub fn valid_sha256(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// A fresh request id: 18 random bytes from the kernel, base64url (24
/// characters).
///
/// # Errors
/// When `/dev/urandom` cannot be read.
pub fn new_id() -> std::io::Result<String> {
    use base64::Engine;
    use std::io::Read;
    let mut b = [0u8; 18];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut b)?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_and_hashes_are_checked() {
        assert!(
            valid_id("a-b_C9") && !valid_id("") && !valid_id("a.b") && !valid_id(&"x".repeat(65))
        );
        let h = sha256_hex(b"abc");
        assert_eq!(
            h,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert!(valid_sha256(&h) && !valid_sha256(&h.to_uppercase()) && !valid_sha256(&h[1..]));
        assert_eq!(new_id().unwrap().len(), 24);
    }
}
