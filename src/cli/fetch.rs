//! A worker's fetch of a wasm module from the `S-modules` object store: its
//! checked bytes, or why not. A failure is either an answer (the module is
//! not there, too large, not its hash: the same request would fail the same
//! way) or one that may pass (a timeout, a server problem), after which the
//! worker hands the request back to be delivered again.

use std::fmt::Display;
use std::io;

use async_nats::jetstream::object_store::{GetErrorKind, InfoErrorKind, ObjectStore};
use serde_json::{Value, json};
use subinterp::remote::wire::sha256_hex;
use tokio::io::AsyncReadExt;

use crate::report::{EXIT_LIMIT, failure_json, report};

/// Whether a failed step of a fetch answers the request or may pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Failure {
    /// The same request would fail the same way: it is answered.
    Permanent,
    /// A timeout or a server problem: the request is tried again.
    Transient,
}

impl Failure {
    /// A failed look-up of the object's description.
    pub(crate) fn of_info(k: InfoErrorKind) -> Failure {
        match k {
            InfoErrorKind::InvalidName | InfoErrorKind::NotFound => Failure::Permanent,
            InfoErrorKind::TimedOut | InfoErrorKind::Other => Failure::Transient,
        }
    }

    /// A failed opening of the object (a link to a bucket is no module).
    pub(crate) fn of_get(k: GetErrorKind) -> Failure {
        match k {
            GetErrorKind::InvalidName | GetErrorKind::NotFound | GetErrorKind::BucketLink => {
                Failure::Permanent
            }
            GetErrorKind::TimedOut | GetErrorKind::Other | GetErrorKind::ConsumerCreate => {
                Failure::Transient
            }
        }
    }

    /// A failed read of the object's chunks: `InvalidData` is the stored
    /// object's own fault (its chunks do not match its digest, or it has
    /// none), anything else the connection's or the server's.
    pub(crate) fn of_read(k: io::ErrorKind) -> Failure {
        match k {
            io::ErrorKind::InvalidData => Failure::Permanent,
            _ => Failure::Transient,
        }
    }
}

/// Why a module could not be had.
#[derive(Debug)]
pub(crate) enum FetchError {
    /// The `load` or `compile_limit` result that answers the request.
    Answer(Value),
    /// What failed, when it may pass: the request is to be tried again.
    Transient(String),
}

/// A request whose module could not be had: a `load` failure, as a local
/// run of a file that cannot be read.
pub(crate) fn load_error(why: &str) -> Value {
    failure_json("LoadError", "load", why, Value::Null, 1)
}

/// A module past the worker's `--max-module`: a `compile_limit` result.
fn too_large(hash: &str, limit: usize) -> FetchError {
    let why = format!("module sha256:{hash}: module larger than the limit of {limit} bytes");
    FetchError::Answer(failure_json(
        "LimitError",
        "compile_limit",
        &why,
        json!({"max_module_bytes": limit}),
        EXIT_LIMIT,
    ))
}

/// The bytes stored under `hash` in `store` (the bucket `bucket`), no more
/// than `limit` (checked before the download), whose SHA-256 is `hash`.
pub(crate) async fn fetch(
    store: &ObjectStore,
    bucket: &str,
    hash: &str,
    limit: usize,
) -> Result<Vec<u8>, FetchError> {
    let failed = |f: Failure, permanent: String, e: &dyn Display| match f {
        Failure::Permanent => FetchError::Answer(load_error(&format!("{permanent}: {e}"))),
        Failure::Transient => FetchError::Transient(format!(
            "fetching module sha256:{hash} from the bucket {bucket}: {e}"
        )),
    };
    let missing = || format!("module sha256:{hash} is not in the bucket {bucket}");
    let info = store.info(hash).await;
    let info = info.map_err(|e| failed(Failure::of_info(e.kind()), missing(), &e))?;
    if info.size > limit {
        return Err(too_large(hash, limit));
    }
    let object = store.get(hash).await;
    let object = object.map_err(|e| failed(Failure::of_get(e.kind()), missing(), &e))?;
    let mut wasm = Vec::with_capacity(info.size);
    let read = object.take(limit as u64 + 1).read_to_end(&mut wasm).await;
    if let Err(e) = read {
        let reading = format!("reading module sha256:{hash}");
        return Err(failed(Failure::of_read(e.kind()), reading, &e));
    }
    if wasm.len() > limit {
        return Err(too_large(hash, limit));
    }
    let actual = sha256_hex(&wasm);
    if actual != hash {
        let why = format!("module sha256:{hash}: the stored object's SHA-256 is {actual}: refused");
        return Err(FetchError::Answer(load_error(&why)));
    }
    report(format_args!(
        "subinterp worker {}: fetched module {hash} ({} bytes)",
        std::process::id(),
        wasm.len()
    ));
    Ok(wasm)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absent_or_wrong_objects_are_answers_and_server_trouble_may_pass() {
        use Failure::{Permanent, Transient};
        let info = [
            (InfoErrorKind::InvalidName, Permanent),
            (InfoErrorKind::NotFound, Permanent),
            (InfoErrorKind::TimedOut, Transient),
            (InfoErrorKind::Other, Transient),
        ];
        for (k, f) in info {
            assert_eq!(Failure::of_info(k), f, "{k:?}");
        }
        let get = [
            (GetErrorKind::InvalidName, Permanent),
            (GetErrorKind::NotFound, Permanent),
            (GetErrorKind::BucketLink, Permanent),
            (GetErrorKind::TimedOut, Transient),
            (GetErrorKind::Other, Transient),
            (GetErrorKind::ConsumerCreate, Transient),
        ];
        for (k, f) in get {
            assert_eq!(Failure::of_get(k), f, "{k:?}");
        }
        let read = [
            (io::ErrorKind::InvalidData, Permanent),
            (io::ErrorKind::TimedOut, Transient),
            (io::ErrorKind::Other, Transient),
            (io::ErrorKind::UnexpectedEof, Transient),
            (io::ErrorKind::ConnectionReset, Transient),
        ];
        for (k, f) in read {
            assert_eq!(Failure::of_read(k), f, "{k:?}");
        }
    }
}
