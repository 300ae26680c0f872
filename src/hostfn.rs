//! Host functions: named Rust functions a host registers
//! ([`HostBuilder::func`](crate::HostBuilder::func)) and grants to
//! interpreters ([`InterpreterBuilder::allow`](crate::InterpreterBuilder::allow)),
//! which their guests call with bytes and get bytes back: through the ABI
//! (`subinterp_host_v1.call`) or, in JavaScript, `host.call(name, data)`.
//! A guest that calls a name it was not granted learns nothing about which
//! names exist: it gets the same answer as for a name nobody registered.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;

use crate::buffer::View;
use crate::id::InterpreterId;

/// Who is calling a host function.
#[derive(Debug, Clone)]
pub struct HostCaller {
    pub(crate) interpreter: InterpreterId,
    pub(crate) root: InterpreterId,
    pub(crate) deadline: Option<Instant>,
}

impl HostCaller {
    /// The calling interpreter.
    pub fn interpreter(&self) -> InterpreterId {
        self.interpreter
    }

    /// The root of the caller's tree: the interpreter the host created, of
    /// which the caller is itself or a descendant (a tenant's identity).
    pub fn root(&self) -> InterpreterId {
        self.root
    }

    /// When the caller's run must end. A function registered with
    /// [`HostBuilder::blocking_func`](crate::HostBuilder::blocking_func) is
    /// abandoned by the caller then; one registered with `func` should not
    /// wait past it.
    pub fn deadline(&self) -> Option<Instant> {
        self.deadline
    }
}

/// A host function's failure, given to the calling guest as an error with
/// this message (in JavaScript, a thrown `HostError`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct HostFnError {
    message: String,
}

impl HostFnError {
    /// An error with `message`, which the guest sees.
    pub fn new(message: impl Into<String>) -> Self {
        HostFnError {
            message: message.into(),
        }
    }

    /// The message the guest sees.
    pub fn message(&self) -> &str {
        &self.message
    }
}

/// The type of a host function.
pub(crate) type HostFnBox =
    Arc<dyn Fn(&HostCaller, View) -> Result<Bytes, HostFnError> + Send + Sync>;

/// A registered function, its name, and whether it runs on the blocking
/// pool.
#[derive(Clone)]
pub(crate) struct HostFn {
    pub(crate) f: HostFnBox,
    pub(crate) name: Arc<str>,
    pub(crate) blocking: bool,
}

/// A host's functions by name.
#[derive(Clone, Default)]
pub(crate) struct HostFns {
    map: HashMap<String, HostFn>,
}

impl HostFns {
    pub(crate) fn insert(&mut self, name: String, f: HostFnBox, blocking: bool) {
        let f = HostFn {
            f,
            name: name.as_str().into(),
            blocking,
        };
        self.map.insert(name, f);
    }

    pub(crate) fn get(&self, name: &str) -> Option<&HostFn> {
        self.map.get(name)
    }

    pub(crate) fn contains(&self, name: &str) -> bool {
        self.map.contains_key(name)
    }
}

impl std::fmt::Debug for HostFns {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.map.keys()).finish()
    }
}

/// The names an interpreter may call.
pub(crate) type Grants = Arc<BTreeSet<String>>;
