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
/// Default cap on interpreters alive at once below one interpreter (those it
/// created, those they created, and so on): 64.
pub const DEFAULT_MAX_INTERPRETERS: usize = 64;
/// Default cap on how many levels of interpreters may be created below one
/// interpreter: 4.
pub const DEFAULT_MAX_DEPTH: u32 = 4;
/// Default cap on files and directories a tree's guests have open through
/// WASI at once (beyond stdio and the granted directories): 256.
pub const DEFAULT_MAX_OPEN_FILES: usize = 256;

/// What one interpreter may use. Build with [`Limits::new`] (the `DEFAULT_*`
/// values) and the setters.
///
/// An interpreter the host creates is the root of a tenant tree: the
/// interpreters its guest creates, and theirs, share its limits rather than
/// getting a copy each. Memory (linear memories plus the host memory the tree
/// holds: buffers it sent, queued messages, channels it created), live
/// handles and open files are one budget for the whole tree; a child's own
/// limits can only be smaller; a child's runs take their fuel from their
/// creator's; and output goes to the root's capped streams.
///
/// ```
/// use std::time::Duration;
/// use subinterp::Limits;
/// let l = Limits::new().with_max_memory(64 << 20).with_timeout(Duration::from_millis(500));
/// assert_eq!(l.max_memory(), 64 << 20);
/// assert_eq!(l.timeout(), Some(Duration::from_millis(500)));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    max_memory: usize,
    timeout: Option<Duration>,
    fuel: Option<u64>,
    max_output: usize,
    max_handles: usize,
    max_interpreters: usize,
    max_depth: u32,
    max_open_files: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_memory: DEFAULT_MAX_MEMORY,
            timeout: DEFAULT_TIMEOUT,
            fuel: DEFAULT_FUEL,
            max_output: DEFAULT_MAX_OUTPUT,
            max_handles: DEFAULT_MAX_HANDLES,
            max_interpreters: DEFAULT_MAX_INTERPRETERS,
            max_depth: DEFAULT_MAX_DEPTH,
            max_open_files: DEFAULT_MAX_OPEN_FILES,
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
    #[must_use]
    pub fn with_max_memory(mut self, bytes: usize) -> Self {
        self.max_memory = bytes;
        self
    }

    /// Wall-clock deadline for each run; past it the run ends with
    /// [`ErrorKind::Timeout`](crate::ErrorKind::Timeout), even while the guest
    /// waits on a channel.
    #[must_use]
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Instruction budget for each run (the host must be built with fuel on).
    #[must_use]
    pub fn with_fuel(mut self, fuel: u64) -> Self {
        self.fuel = Some(fuel);
        self
    }

    /// Cap on captured stdout and on captured stderr, each, in bytes.
    #[must_use]
    pub fn with_max_output(mut self, bytes: usize) -> Self {
        self.max_output = bytes;
        self
    }

    /// Cap on live handles (views and channel ends) the guest holds at once.
    #[must_use]
    pub fn with_max_handles(mut self, n: usize) -> Self {
        self.max_handles = n;
        self
    }

    /// Cap on interpreters alive at once below this one: those it created,
    /// those they created, and so on. Past it, creating one fails with a
    /// limit error inside the guest.
    #[must_use]
    pub fn with_max_interpreters(mut self, n: usize) -> Self {
        self.max_interpreters = n;
        self
    }

    /// Cap on how many levels of interpreters may be created below this one
    /// (0: it may create none).
    #[must_use]
    pub fn with_max_depth(mut self, depth: u32) -> Self {
        self.max_depth = depth;
        self
    }

    /// Cap on files and directories open at once through WASI (past it,
    /// `path_open` fails with `EMFILE`).
    #[must_use]
    pub fn with_max_open_files(mut self, n: usize) -> Self {
        self.max_open_files = n;
        self
    }

    /// The limits for an interpreter a guest with these limits creates,
    /// asking for `asked`: each limit is the smaller of the two, so a child
    /// never gets more than its creator (and for interpreters and depth, one
    /// less, since the child itself uses one).
    pub fn clamp(&self, asked: &Limits) -> Limits {
        Limits {
            max_memory: self.max_memory.min(asked.max_memory),
            timeout: match (self.timeout, asked.timeout) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            },
            fuel: match (self.fuel, asked.fuel) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            },
            max_output: self.max_output.min(asked.max_output),
            max_handles: self.max_handles.min(asked.max_handles),
            max_interpreters: self
                .max_interpreters
                .saturating_sub(1)
                .min(asked.max_interpreters),
            max_depth: self.max_depth.saturating_sub(1).min(asked.max_depth),
            max_open_files: self.max_open_files.min(asked.max_open_files),
        }
    }

    /// The cap on files open at once.
    pub fn max_open_files(&self) -> usize {
        self.max_open_files
    }

    /// The memory ceiling in bytes.
    pub fn max_memory(&self) -> usize {
        self.max_memory
    }

    /// The per-run deadline.
    pub fn timeout(&self) -> Option<Duration> {
        self.timeout
    }

    /// The per-run instruction budget.
    pub fn fuel(&self) -> Option<u64> {
        self.fuel
    }

    /// The output cap in bytes.
    pub fn max_output(&self) -> usize {
        self.max_output
    }

    /// The live-handle cap.
    pub fn max_handles(&self) -> usize {
        self.max_handles
    }

    /// The cap on interpreters alive at once below this one.
    pub fn max_interpreters(&self) -> usize {
        self.max_interpreters
    }

    /// The cap on levels of interpreters below this one.
    pub fn max_depth(&self) -> u32 {
        self.max_depth
    }
}
