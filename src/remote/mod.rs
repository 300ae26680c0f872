//! Runs on other machines, through NATS JetStream (feature `nats`): a
//! [`RemoteHost`] sends [`RemoteRun`]s to `subinterp worker` processes that
//! share one work queue on a NATS server, and gets back the same
//! [`RunResult`](crate::RunResult) a local run returns.
//!
//! On the server, for the subject prefix `S` ([`RemoteOptions::prefix`],
//! default `subinterp`):
//!
//! ```text
//!   client ──publish──▶ S.run         stream S-runs     (work queue: a request
//!                                                        is gone once acked)
//!   worker ◀──pull───── consumer S-workers (explicit acks; unacked requests are
//!                                          redelivered after ACK_WAIT)
//!   worker ──publish──▶ S.result.ID   stream S-results  (kept a day; a result
//!                                                        per id, deduplicated)
//!   client ◀──ordered consumer on S.result.ID (one run) or S.result.* (many)
//!   client ──put──────▶ object store S-modules: wasm modules by SHA-256
//! ```
//!
//! A worker acknowledges a request only after its result is stored, so a
//! worker that dies mid-run leaves the request to another; the result is
//! published with `Nats-Msg-Id: ID`, and a worker first looks for a result
//! already stored under the id, so no id is answered twice. The request and
//! result layouts are in [`wire`].
//!
//! ```no_run
//! use subinterp::remote::{RemoteHost, RemoteOptions, RemoteRun};
//! let remote = RemoteHost::connect("nats://127.0.0.1:4222", RemoteOptions::new())?;
//! let r = remote.run(RemoteRun::js("console.log(1 + 1)"))?;
//! assert_eq!(r.stdout_text(), "2\n");
//! // Many at once: results come back as they finish, tagged with their id.
//! let runs = (0..10).map(|i| RemoteRun::js(format!("console.log({i})")));
//! for done in remote.submit(runs)? {
//!     println!("{}: {:?}", done.id, done.result.map(|r| r.stdout_text()));
//! }
//! # Ok::<(), subinterp::remote::RemoteError>(())
//! ```

mod client;
mod decode;
mod error;
mod request;
mod setup;
pub mod wire;

pub use client::{RemoteHost, RemoteOutcome, Submitted};
pub use error::RemoteError;
pub use request::RemoteRun;
pub use setup::{Credentials, RemoteOptions, Subjects, connect, modules_bucket, streams};
