//! Interpreter ids.

use std::fmt;

/// An interpreter's id, unique within a [`Host`](crate::Host). Id 0 is the
/// host itself ([`InterpreterId::MAIN`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct InterpreterId(pub u64);

impl InterpreterId {
    /// The host itself: the "main" interpreter of PEP 554.
    pub const MAIN: InterpreterId = InterpreterId(0);
}

impl fmt::Display for InterpreterId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "interpreter {}", self.0)
    }
}
