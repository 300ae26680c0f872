//! subinterp runs many sandboxed interpreters side by side in one process and
//! lets them talk through channels: PEP 554's model ("bytes in, read-only
//! views out") built on WebAssembly.
//!
//! ```
//! use subinterp::{Host, Run};
//!
//! let host = Host::builder().pool_size(4).build().unwrap();
//! // A guest that receives one message on "inbox" and forwards it, uncopied, to "outbox".
//! let guest = host.compile("relay", br#"(module
//!   (import "subinterp_v1" "lookup" (func $lookup (param i32 i32) (result i32)))
//!   (import "subinterp_v1" "recv" (func $recv (param i32 i64) (result i32)))
//!   (import "subinterp_v1" "send_handle" (func $fwd (param i32 i32 i64) (result i32)))
//!   (memory (export "memory") 1)
//!   (data (i32.const 0) "inboxoutbox")
//!   (func (export "relay") (result i32)
//!     (call $fwd (call $lookup (i32.const 5) (i32.const 6))
//!                (call $recv (call $lookup (i32.const 0) (i32.const 5)) (i64.const -1))
//!                (i64.const -1))))"#).unwrap();
//! let interp = host.create(&guest).unwrap();
//! let (in_rx, in_tx) = host.create_channel(1);
//! let (out_rx, out_tx) = host.create_channel(1);
//! let data = bytes::Bytes::from(vec![7u8; 1 << 20]);
//! in_tx.send(data.clone()).unwrap();
//! let result = interp
//!     .run(Run::export("relay").channel("inbox", in_rx).channel("outbox", out_tx))
//!     .unwrap()
//!     .check()
//!     .unwrap();
//! assert_eq!(result.value, Some(0));
//! let view = out_rx.recv().unwrap().into_view().unwrap();
//! assert_eq!(view.as_ptr(), data.as_ptr()); // the same memory: nothing was copied
//! assert_eq!(host.counters().bytes_copied_out + host.counters().bytes_copied_in, 0);
//! ```
//!
//! # Core concepts
//!
//! - [`Host`]: the wasmtime engine (pooling allocator, epoch interruption),
//!   the guest ABI linker, copy counters, and the registry of live
//!   interpreters and channels.
//! - [`Guest`]: a compiled, pre-linked wasm module; [`Host::compile`]. The
//!   language guests ([`Language`]: JavaScript, Python) are loaded with
//!   [`Host::js`] and [`Host::python`] and run source with [`Run::js`] and
//!   [`Run::python`]. The JavaScript guest is embedded in the library; the
//!   Python guest is a file (`make guest` builds it).
//! - The compiled-code cache: the language guests' snapshots, and modules
//!   compiled with [`Host::compile_cached`], are compiled once per machine
//!   into `$XDG_CACHE_HOME/subinterp` (else `~/.cache/subinterp`) and
//!   loaded from there by later hosts and processes;
//!   [`HostBuilder::cache_dir`] moves it, [`HostBuilder::no_cache`] turns it
//!   off.
//! - [`Interpreter`]: one instance in its own store with its own linear memory
//!   and handle table; [`Interpreter::run`] returns a [`RunResult`], and state
//!   persists between runs.
//! - Channels: [`Host::create_channel`] returns a [`RecvChannel`] and a
//!   [`SendChannel`]; each operation has blocking, `_nowait` and `_timeout`
//!   forms with an error type of its own.
//! - [`Buffer`] and [`View`]: immutable bytes and read-only windows on them.
//!   The only copies are at a guest's memory boundary.
//! - [`Limits`]: what one interpreter may use, with `DEFAULT_*` constants.
//! - [`abi`]: the integer-only imports a guest uses (module `subinterp_v1`).
#![deny(missing_docs)]

pub mod abi;
mod budget;
mod buffer;
mod cache;
pub mod channel;
pub mod compile;
mod error;
mod exec;
mod guest;
mod handle;
mod host;
mod hostfn;
mod id;
mod interpreter;
mod job;
mod language;
pub mod limits;
#[cfg(feature = "nats")]
pub mod nats;
mod outcome;
mod output;
#[cfg(feature = "nats")]
pub mod remote;
mod result;
mod snapshot;
mod store;

pub use buffer::{Buffer, View};
pub use channel::{
    ChannelEnd, ChannelId, Message, RecvChannel, RecvError, RecvTimeoutError, RecvViewError,
    SendChannel, SendError, SendTimeoutError, TryRecvError, TrySendError,
};
pub use compile::CompileLimits;
pub use error::{BoxError, Error, GuestLoadError, LimitError};
pub use guest::Guest;
pub use host::{
    COMPILE_NOTICE_AFTER, CopyCounters, DEFAULT_MAX_QUEUED_BYTES, DEFAULT_POOL_MAX_MEMORY,
    DEFAULT_POOL_SIZE, EPOCH_TICK, Host, HostBuilder, MAX_WASM_STACK,
};
pub use hostfn::{HostCaller, HostFnError};
pub use interpreter::{
    Interpreter, InterpreterBuilder, InterpreterId, Run, RunJob, TypedCall, WasmValues, current,
};
pub use language::Language;
pub use limits::Limits;
pub use outcome::{ErrorKind, GuestError, Trap};
pub use output::OutputMode;
pub use result::{RunResult, RunStats};

#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
