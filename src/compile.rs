//! Compiling modules nobody vouches for, within bounds of size, shape and
//! time.
//!
//! Cranelift's time and memory grow faster than linearly with some shapes of
//! code: measured here (wasmtime 48, 2 cores), one function of 30,000 nested
//! `loop`s — 90 KB — took 46 s to compile, a 7.6 MB function of nested blocks
//! 11 s and 2 GiB, and 500,000 empty functions 31 s and 2.7 GiB, while
//! validation alone is linear (about 30 ns a byte). So before anything is
//! compiled a single pass over the module checks its size, the number and
//! size of its functions, and how deeply its control flow and its loops nest
//! ([`CompileLimits`]); and the compile itself runs on a thread of its own
//! under a deadline. Cranelift cannot be interrupted: a compile still going
//! at its deadline is abandoned (its thread finishes in the background) and,
//! until it has, further compiles are refused, so at most one runaway
//! compile exists at a time.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};
use wasmparser::{Operator, Parser, Payload};
use wasmtime::{Engine, Module};

use crate::error::{Error, LimitError};

/// Default ceiling on a module's size in bytes: 8 MiB.
pub const DEFAULT_MAX_MODULE_BYTES: usize = 8 << 20;
/// Default ceiling on the number of functions a module defines: 50,000.
pub const DEFAULT_MAX_FUNCTIONS: usize = 50_000;
/// Default ceiling on one function body's size in bytes: 1 MiB.
pub const DEFAULT_MAX_FUNCTION_BYTES: usize = 1 << 20;
/// Default ceiling on nested blocks, loops and ifs in a function: 1,024.
pub const DEFAULT_MAX_NESTING: usize = 1024;
/// Default ceiling on nested loops in a function: 32.
pub const DEFAULT_MAX_LOOP_NESTING: usize = 32;
/// Default deadline for one compile: 30 s.
pub const DEFAULT_COMPILE_TIMEOUT: Duration = Duration::from_secs(30);

/// Bounds on compiling a module ([`Host::compile`](crate::Host::compile),
/// [`Host::load_file`](crate::Host::load_file)), with named defaults. The
/// JavaScript guest, which the host itself provides, is not held to them.
///
/// The defaults leave room for real programs (the 1 MB JS guest has 1,293
/// functions, a largest body of 54 KB, control nesting up to 280 and loops
/// nested 10 deep) while keeping the worst module they admit to seconds of
/// compile time rather than minutes.
///
/// ```
/// use std::time::Duration;
/// use subinterp::CompileLimits;
/// let l = CompileLimits::new().with_max_module_bytes(1 << 20).with_timeout(Duration::from_secs(2));
/// assert_eq!(l.max_module_bytes(), 1 << 20);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CompileLimits {
    max_module_bytes: usize,
    max_functions: usize,
    max_function_bytes: usize,
    max_nesting: usize,
    max_loop_nesting: usize,
    timeout: Option<Duration>,
}

impl Default for CompileLimits {
    fn default() -> Self {
        CompileLimits {
            max_module_bytes: DEFAULT_MAX_MODULE_BYTES,
            max_functions: DEFAULT_MAX_FUNCTIONS,
            max_function_bytes: DEFAULT_MAX_FUNCTION_BYTES,
            max_nesting: DEFAULT_MAX_NESTING,
            max_loop_nesting: DEFAULT_MAX_LOOP_NESTING,
            timeout: Some(DEFAULT_COMPILE_TIMEOUT),
        }
    }
}

impl CompileLimits {
    /// The defaults.
    pub fn new() -> Self {
        Self::default()
    }

    /// Ceiling on the module's size (binary, or text before it is parsed).
    #[must_use]
    pub fn with_max_module_bytes(mut self, n: usize) -> Self {
        self.max_module_bytes = n;
        self
    }

    /// Ceiling on the number of functions the module defines.
    #[must_use]
    pub fn with_max_functions(mut self, n: usize) -> Self {
        self.max_functions = n;
        self
    }

    /// Ceiling on one function body's size in bytes.
    #[must_use]
    pub fn with_max_function_bytes(mut self, n: usize) -> Self {
        self.max_function_bytes = n;
        self
    }

    /// Ceiling on nested blocks, loops and ifs within one function.
    #[must_use]
    pub fn with_max_nesting(mut self, n: usize) -> Self {
        self.max_nesting = n;
        self
    }

    /// Ceiling on nested loops within one function.
    #[must_use]
    pub fn with_max_loop_nesting(mut self, n: usize) -> Self {
        self.max_loop_nesting = n;
        self
    }

    /// Deadline for one compile.
    #[must_use]
    pub fn with_timeout(mut self, t: Duration) -> Self {
        self.timeout = Some(t);
        self
    }

    /// The module size ceiling.
    pub fn max_module_bytes(&self) -> usize {
        self.max_module_bytes
    }

    /// The compile deadline.
    pub fn timeout(&self) -> Option<Duration> {
        self.timeout
    }

    /// Checks a binary module's shape in one pass. Bytes that do not parse
    /// pass here: compiling them reports why they are invalid.
    fn check(&self, wasm: &[u8]) -> Result<(), LimitError> {
        let too = |what: &'static str, limit: usize| LimitError::ModuleTooComplex { what, limit };
        if wasm.len() > self.max_module_bytes {
            return Err(LimitError::ModuleTooLarge {
                limit: self.max_module_bytes,
            });
        }
        for payload in Parser::new(0).parse_all(wasm) {
            match payload {
                Ok(Payload::CodeSectionStart { count, .. })
                    if count as usize > self.max_functions =>
                {
                    return Err(too("functions", self.max_functions));
                }
                Ok(Payload::CodeSectionEntry(body)) => {
                    if body.range().len() > self.max_function_bytes {
                        return Err(too("bytes in one function", self.max_function_bytes));
                    }
                    self.check_nesting(&body)?;
                }
                Ok(_) => {}
                Err(_) => return Ok(()),
            }
        }
        Ok(())
    }

    fn check_nesting(&self, body: &wasmparser::FunctionBody<'_>) -> Result<(), LimitError> {
        let Ok(mut ops) = body.get_operators_reader() else {
            return Ok(());
        };
        // Whether each open block is a loop.
        let mut open: Vec<bool> = Vec::new();
        let mut loops = 0;
        while !ops.eof() {
            let Ok(op) = ops.read() else {
                return Ok(());
            };
            match op {
                Operator::Loop { .. } => {
                    open.push(true);
                    loops += 1;
                }
                Operator::Block { .. }
                | Operator::If { .. }
                | Operator::Try { .. }
                | Operator::TryTable { .. } => open.push(false),
                Operator::End => {
                    if open.pop() == Some(true) {
                        loops -= 1;
                    }
                }
                _ => continue,
            }
            if open.len() > self.max_nesting {
                return Err(LimitError::ModuleTooComplex {
                    what: "nested blocks",
                    limit: self.max_nesting,
                });
            }
            if loops > self.max_loop_nesting {
                return Err(LimitError::ModuleTooComplex {
                    what: "nested loops",
                    limit: self.max_loop_nesting,
                });
            }
        }
        Ok(())
    }
}

/// Compiles abandoned at their deadline that are still running.
#[derive(Debug, Default)]
pub(crate) struct Runaways(AtomicUsize);

enum Outcome {
    Waiting,
    Done(Result<Module, Error>),
    Abandoned,
}

/// Parses (text to binary), checks and compiles `wasm` under `limits`.
///
/// # Errors
/// [`Error::Limit`] with [`LimitError::ModuleTooLarge`],
/// [`LimitError::ModuleTooComplex`], [`LimitError::CompileTimeout`] or
/// [`LimitError::CompileBusy`]; [`Error::InvalidModule`] for bytes that are
/// not a module.
pub(crate) fn compile(
    engine: &Engine,
    wasm: &[u8],
    limits: &CompileLimits,
    runaways: &Arc<Runaways>,
) -> Result<Module, Error> {
    if wasm.len() > limits.max_module_bytes {
        return Err(LimitError::ModuleTooLarge {
            limit: limits.max_module_bytes,
        }
        .into());
    }
    if runaways.0.load(Ordering::Acquire) > 0 {
        return Err(LimitError::CompileBusy.into());
    }
    let Some(timeout) = limits.timeout else {
        return compile_now(engine, wasm, limits);
    };
    let deadline = Instant::now() + timeout;
    let slot = Arc::new((Mutex::new(Outcome::Waiting), Condvar::new()));
    let (engine2, bytes, limits2, slot2, runaways2) = (
        engine.clone(),
        wasm.to_vec(),
        *limits,
        slot.clone(),
        runaways.clone(),
    );
    std::thread::Builder::new()
        .name("subinterp-compile".into())
        .spawn(move || {
            let result = compile_now(&engine2, &bytes, &limits2);
            let mut outcome = slot2.0.lock();
            if matches!(*outcome, Outcome::Abandoned) {
                runaways2.0.fetch_sub(1, Ordering::AcqRel);
            } else {
                *outcome = Outcome::Done(result);
                slot2.1.notify_all();
            }
        })
        .map_err(Error::Io)?;
    let mut outcome = slot.0.lock();
    while matches!(*outcome, Outcome::Waiting) {
        if slot.1.wait_until(&mut outcome, deadline).timed_out()
            && matches!(*outcome, Outcome::Waiting)
        {
            *outcome = Outcome::Abandoned;
            runaways.0.fetch_add(1, Ordering::AcqRel);
            return Err(LimitError::CompileTimeout { limit: timeout }.into());
        }
    }
    match std::mem::replace(&mut *outcome, Outcome::Waiting) {
        Outcome::Done(r) => r,
        _ => unreachable!("the loop above ends only with a result"),
    }
}

fn compile_now(engine: &Engine, wasm: &[u8], limits: &CompileLimits) -> Result<Module, Error> {
    let binary = wat::parse_bytes(wasm).map_err(|e| Error::InvalidModule(e.into()))?;
    limits.check(&binary)?;
    Module::from_binary(engine, &binary).map_err(|e| Error::InvalidModule(e.into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nested(kind: &str, depth: usize) -> Vec<u8> {
        let open = format!("({kind} ").repeat(depth);
        let close = ")".repeat(depth);
        wat::parse_str(format!("(module (func {open}{close}))")).unwrap()
    }

    #[test]
    fn shapes_past_the_limits_are_refused_before_compiling() {
        let l = CompileLimits::new();
        assert!(l.check(&nested("loop", 32)).is_ok());
        assert_eq!(
            l.check(&nested("loop", 33)),
            Err(LimitError::ModuleTooComplex {
                what: "nested loops",
                limit: 32
            })
        );
        assert!(l.check(&nested("block", 1024)).is_ok());
        assert!(matches!(
            l.check(&nested("block", 1025)),
            Err(LimitError::ModuleTooComplex {
                what: "nested blocks",
                ..
            })
        ));
        let many = wat::parse_str(format!("(module {})", "(func)".repeat(11))).unwrap();
        assert!(matches!(
            l.with_max_functions(10).check(&many),
            Err(LimitError::ModuleTooComplex {
                what: "functions",
                ..
            })
        ));
        assert_eq!(
            l.with_max_module_bytes(10).check(&many),
            Err(LimitError::ModuleTooLarge { limit: 10 })
        );
        assert!(
            l.check(b"not wasm").is_ok(),
            "left to the compiler to reject"
        );
    }
}
