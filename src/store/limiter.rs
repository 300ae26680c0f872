//! The memory limiter of a store: linear memory and tables, capped by the
//! interpreter's own limit and by what its tree's budget has left.

use std::sync::Arc;

use wasmtime::ResourceLimiter;

use crate::budget::Budget;
use crate::outcome::Abort;

/// Caps linear memory growth at the interpreter's limit and at what its
/// tree's budget has left (the memory and tables are charged to it while the
/// instance lives). Past either a plain module's run ends with
/// `Abort::MemoryLimit` instead of `memory.grow` returning -1, so the cause
/// is never lost in a guest's out-of-memory path. A JS guest (`soft`)
/// instead sees `memory.grow` fail, so QuickJS throws a catchable
/// out-of-memory error; `hit` remembers it for the run's result.
pub(crate) struct Limiter {
    max_memory: usize,
    soft: bool,
    pub(crate) hit: bool,
    budget: Arc<Budget>,
    /// Bytes of linear memory charged to the budget now.
    memory: usize,
    /// Bytes of table charged to the budget now.
    tables: usize,
}

/// Host bytes a table element costs.
const TABLE_ELEMENT_COST: usize = 16;
/// Most elements of one table.
const MAX_TABLE_ELEMENTS: usize = 1 << 20;

impl Limiter {
    pub(crate) fn new(max_memory: usize, soft: bool, budget: Arc<Budget>) -> Self {
        Limiter {
            max_memory,
            soft,
            hit: false,
            budget,
            memory: 0,
            tables: 0,
        }
    }

    /// Refuses a growth. A memory being created (`current` 0) cannot start
    /// at all: that is a memory limit error whatever the guest.
    fn refuse(&mut self, current: usize, limit: usize) -> wasmtime::Result<bool> {
        self.hit = true;
        if self.soft && current > 0 {
            return Ok(false);
        }
        Err(wasmtime::Error::new(Abort::MemoryLimit { limit }))
    }
}

impl ResourceLimiter for Limiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        // A growth allowed here may still have failed: settle to what the
        // memory really has (one memory per instance: multi-memory is off).
        if current < self.memory {
            self.budget.memory.give(self.memory - current);
            self.memory = current;
        }
        if desired > self.max_memory {
            return self.refuse(current, self.max_memory);
        }
        let more = desired.saturating_sub(self.memory);
        if !self.budget.memory.try_take(more) {
            return self.refuse(current, self.budget.memory.max());
        }
        self.memory += more;
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let bytes = desired.saturating_mul(TABLE_ELEMENT_COST);
        let more = bytes.saturating_sub(self.tables);
        if desired > MAX_TABLE_ELEMENTS || !self.budget.memory.try_take(more) {
            return Ok(false);
        }
        self.tables += more;
        Ok(true)
    }
}

impl Drop for Limiter {
    fn drop(&mut self) {
        self.budget.memory.give(self.memory + self.tables);
    }
}
