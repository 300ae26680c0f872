//! How a guest failed: the kinds of failure scripts and hosts match on, and
//! the host's own reasons to end a run.

use std::fmt;
use std::time::Duration;

/// The kind of a guest failure, recovered by downcast, never by message text.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// A wasm trap (out-of-bounds access, unreachable, stack overflow, ...).
    Trap(Trap),
    /// The run passed its wall-clock deadline ([`Limits::timeout`](crate::Limits::timeout)).
    Timeout {
        /// The deadline that was hit.
        limit: Duration,
    },
    /// The run used up its instruction budget ([`Limits::fuel`](crate::Limits::fuel)).
    OutOfFuel {
        /// The budget that was hit.
        limit: u64,
    },
    /// The guest tried to grow its memory past [`Limits::max_memory`](crate::Limits::max_memory).
    MemoryLimit {
        /// The ceiling in bytes.
        limit: usize,
    },
    /// The guest wrote more than [`Limits::max_output`](crate::Limits::max_output) to one stream.
    OutputLimit {
        /// The cap in bytes.
        limit: usize,
    },
    /// The guest called `proc_exit` with a non-zero code.
    Exit(i32),
    /// The interpreter was closed while the run was going on.
    Closed,
    /// A JavaScript run ended with an uncaught exception (or an unhandled
    /// promise rejection); `name` is its type, e.g. `TypeError`, and the
    /// [`GuestError::backtrace`] holds the JS stack.
    Exception {
        /// The error's `.name` (`ThrownValue` for a thrown non-Error,
        /// `UnhandledRejection` for a rejected promise nobody handled).
        name: String,
    },
    /// Anything else the host reported (the message says what).
    Host,
}

/// Why wasm trapped. subinterp's own type, so that an application built
/// against another wasmtime version can match on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Trap {
    /// The guest used up its native stack (deep recursion).
    StackOverflow,
    /// A load or store outside the linear memory.
    MemoryOutOfBounds,
    /// A misaligned atomic access.
    HeapMisaligned,
    /// An access outside a table.
    TableOutOfBounds,
    /// An indirect call through an empty table slot.
    IndirectCallToNull,
    /// An indirect call to a function of another type.
    BadSignature,
    /// Integer overflow (e.g. `i32::MIN / -1`).
    IntegerOverflow,
    /// Integer division by zero.
    IntegerDivisionByZero,
    /// A float that does not fit the integer it is converted to.
    BadConversionToInteger,
    /// An `unreachable` instruction ran.
    UnreachableCodeReached,
    /// The run was interrupted (at an epoch deadline).
    Interrupt,
    /// The instruction budget ran out.
    OutOfFuel,
    /// A null reference was used.
    NullReference,
    /// An access outside an array (GC proposal).
    ArrayOutOfBounds,
    /// An allocation larger than the runtime allows.
    AllocationTooLarge,
    /// A failed reference cast.
    CastFailure,
    /// Any other trap; the [`GuestError::message`] says which.
    Other,
}

impl Trap {
    /// The trap wasmtime reported, as subinterp's own type.
    pub(crate) fn from_wasmtime(t: wasmtime::Trap) -> Trap {
        use wasmtime::Trap as W;
        match t {
            W::StackOverflow => Trap::StackOverflow,
            W::MemoryOutOfBounds => Trap::MemoryOutOfBounds,
            W::HeapMisaligned => Trap::HeapMisaligned,
            W::TableOutOfBounds => Trap::TableOutOfBounds,
            W::IndirectCallToNull => Trap::IndirectCallToNull,
            W::BadSignature => Trap::BadSignature,
            W::IntegerOverflow => Trap::IntegerOverflow,
            W::IntegerDivisionByZero => Trap::IntegerDivisionByZero,
            W::BadConversionToInteger => Trap::BadConversionToInteger,
            W::UnreachableCodeReached => Trap::UnreachableCodeReached,
            W::Interrupt => Trap::Interrupt,
            W::OutOfFuel => Trap::OutOfFuel,
            W::NullReference => Trap::NullReference,
            W::ArrayOutOfBounds => Trap::ArrayOutOfBounds,
            W::AllocationTooLarge => Trap::AllocationTooLarge,
            W::CastFailure => Trap::CastFailure,
            _ => Trap::Other,
        }
    }
}

impl ErrorKind {
    /// Whether a limit (deadline, fuel, memory, output) ended the run.
    pub fn is_limit(&self) -> bool {
        matches!(
            self,
            ErrorKind::Timeout { .. }
                | ErrorKind::OutOfFuel { .. }
                | ErrorKind::MemoryLimit { .. }
                | ErrorKind::OutputLimit { .. }
        )
    }

    /// A short stable name: `trap`, `timeout`, `out_of_fuel`, `memory_limit`,
    /// `output_limit`, `exit`, `closed`, `exception` or `host`.
    pub fn name(&self) -> &'static str {
        match self {
            ErrorKind::Trap(_) => "trap",
            ErrorKind::Timeout { .. } => "timeout",
            ErrorKind::OutOfFuel { .. } => "out_of_fuel",
            ErrorKind::MemoryLimit { .. } => "memory_limit",
            ErrorKind::OutputLimit { .. } => "output_limit",
            ErrorKind::Exit(_) => "exit",
            ErrorKind::Closed => "closed",
            ErrorKind::Exception { .. } => "exception",
            ErrorKind::Host => "host",
        }
    }

    /// The error's type as scripts see it: the exception's own name, or
    /// `LimitError`, `InterpreterClosedError`, `Trap`, `Exit`, `HostError`.
    pub fn type_name(&self) -> &str {
        match self {
            ErrorKind::Exception { name } => name,
            k if k.is_limit() => "LimitError",
            ErrorKind::Closed => "InterpreterClosedError",
            ErrorKind::Trap(_) => "Trap",
            ErrorKind::Exit(_) => "Exit",
            _ => "HostError",
        }
    }
}

/// Why a guest run did not complete: its kind, a message and, for wasm
/// traps, the wasm backtrace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuestError {
    /// What kind of failure it was.
    pub kind: ErrorKind,
    /// A human-readable message.
    pub message: String,
    /// The wasm backtrace, or for a JavaScript exception the JS stack, when
    /// there is one.
    pub backtrace: Option<String>,
}

impl fmt::Display for GuestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            ErrorKind::Exception { name } => write!(f, "{name}: {}", self.message),
            k => write!(f, "{}: {}", k.name(), self.message),
        }
    }
}

impl std::error::Error for GuestError {}

/// A host-side reason to end a run, carried inside `wasmtime::Error` and
/// recovered by downcast.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Abort {
    Timeout { limit: Duration },
    MemoryLimit { limit: usize },
    Closed,
}

impl Abort {
    pub(crate) fn kind(&self) -> ErrorKind {
        match *self {
            Abort::Timeout { limit } => ErrorKind::Timeout { limit },
            Abort::MemoryLimit { limit } => ErrorKind::MemoryLimit { limit },
            Abort::Closed => ErrorKind::Closed,
        }
    }
}

impl fmt::Display for Abort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Abort::Timeout { limit } => write!(f, "deadline of {limit:?} exceeded"),
            Abort::MemoryLimit { limit } => {
                write!(f, "memory limit of {limit} bytes exceeded")
            }
            Abort::Closed => f.write_str("interpreter closed during the run"),
        }
    }
}

impl std::error::Error for Abort {}
