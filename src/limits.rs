//! Per-interpreter limits, with named defaults.

use std::time::Duration;

/// Default ceiling on an interpreter's linear memory: 256 MiB.
pub const DEFAULT_MAX_MEMORY: usize = 256 << 20;
/// Default wall-clock deadline for one run: none.
pub const DEFAULT_TIMEOUT: Option<Duration> = None;
/// Default instruction budget per run: none (needs [`HostBuilder::fuel`](crate::HostBuilder::fuel)).
pub const DEFAULT_FUEL: Option<u64> = None;
/// Default cap on captured stdout and on captured stderr, each: 16 MiB.
pub const DEFAULT_MAX_OUTPUT: usize = 16 << 20;
/// Default cap on live handles an interpreter may hold: 4,096.
pub const DEFAULT_MAX_HANDLES: usize = 4096;

/// What one interpreter may use. Build with [`Limits::new`] (the `DEFAULT_*`
/// values) and the setters.
///
/// ```
/// use std::time::Duration;
/// use subinterp::Limits;
/// let l = Limits::new().max_memory(64 << 20).timeout(Duration::from_millis(500));
/// assert_eq!(l.get_max_memory(), 64 << 20);
/// assert_eq!(l.get_timeout(), Some(Duration::from_millis(500)));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    max_memory: usize,
    timeout: Option<Duration>,
    fuel: Option<u64>,
    max_output: usize,
    max_handles: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_memory: DEFAULT_MAX_MEMORY,
            timeout: DEFAULT_TIMEOUT,
            fuel: DEFAULT_FUEL,
            max_output: DEFAULT_MAX_OUTPUT,
            max_handles: DEFAULT_MAX_HANDLES,
        }
    }
}

impl Limits {
    /// The defaults.
    pub fn new() -> Self {
        Self::default()
    }

    /// Ceiling on linear memory, in bytes; growing past it ends the run with
    /// [`ErrorKind::MemoryLimit`](crate::ErrorKind::MemoryLimit).
    pub fn max_memory(mut self, bytes: usize) -> Self {
        self.max_memory = bytes;
        self
    }

    /// Wall-clock deadline for each run; past it the run ends with
    /// [`ErrorKind::Timeout`](crate::ErrorKind::Timeout), even while the guest
    /// waits on a channel.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Instruction budget for each run (the host must be built with fuel on).
    pub fn fuel(mut self, fuel: u64) -> Self {
        self.fuel = Some(fuel);
        self
    }

    /// Cap on captured stdout and on captured stderr, each, in bytes.
    pub fn max_output(mut self, bytes: usize) -> Self {
        self.max_output = bytes;
        self
    }

    /// Cap on live handles (views and channel ends) the guest holds at once.
    pub fn max_handles(mut self, n: usize) -> Self {
        self.max_handles = n;
        self
    }

    /// The memory ceiling in bytes.
    pub fn get_max_memory(&self) -> usize {
        self.max_memory
    }

    /// The per-run deadline.
    pub fn get_timeout(&self) -> Option<Duration> {
        self.timeout
    }

    /// The per-run instruction budget.
    pub fn get_fuel(&self) -> Option<u64> {
        self.fuel
    }

    /// The output cap in bytes.
    pub fn get_max_output(&self) -> usize {
        self.max_output
    }

    /// The live-handle cap.
    pub fn get_max_handles(&self) -> usize {
        self.max_handles
    }
}
