//! Driving the JavaScript guest: its set-up in a new instance, one
//! evaluation of source, and the error it reports.

use super::*;
use crate::outcome::Abort;
use crate::store::Stopper;

/// How long a JavaScript guest gets to stop by itself (its interrupt
/// handler polls the host) once its deadline passes or it is closed, before
/// the host stops it by force. A JS interpreter stopped by force is closed,
/// since its heap may be half-updated.
pub const JS_STOP_GRACE: Duration = Duration::from_millis(100);

pub(super) struct JsFns {
    pub(super) memory: wasmtime::Memory,
    pub(super) alloc: TypedFunc<i32, i32>,
    pub(super) eval: TypedFunc<(i32, i32), i32>,
    pub(super) eval_module: TypedFunc<(i32, i32, i32, i32), i32>,
}

pub(super) enum JsInitError {
    Wasm(wasmtime::Error),
    Guest(GuestError),
}

/// QuickJS's own heap limit for a memory ceiling: the ceiling less the
/// guest's code, data and stack (about 2 MiB). The ceiling itself is what
/// stops a script: past it `memory.grow` fails, malloc returns NULL and
/// QuickJS throws a catchable out-of-memory error (the guest's libc
/// allocates in power-of-two size classes, so the linear memory, not
/// QuickJS's count of live bytes, is the figure that matters).
fn js_heap_limit(max_memory: usize) -> i32 {
    let limit = max_memory.saturating_sub(2 << 20).max(1 << 20);
    limit.min(u32::MAX as usize) as u32 as i32
}

/// Creates the JS runtime and context and evaluates the prelude.
pub(super) fn init_js(
    store: &mut Store<StoreData>,
    instance: &Instance,
    limits: &Limits,
    init: &str,
    stop: &Stopper,
) -> Result<JsFns, JsInitError> {
    let fns = JsFns {
        memory: instance
            .get_memory(&mut *store, "memory")
            .ok_or_else(|| JsInitError::Wasm(wasmtime::Error::msg("JS guest has no memory")))?,
        alloc: instance
            .get_typed_func(&mut *store, "si_js_alloc")
            .map_err(JsInitError::Wasm)?,
        eval: instance
            .get_typed_func(&mut *store, "si_js_eval")
            .map_err(JsInitError::Wasm)?,
        eval_module: instance
            .get_typed_func(&mut *store, "si_js_eval_module")
            .map_err(JsInitError::Wasm)?,
    };
    let init = instance
        .get_typed_func::<i32, i32>(&mut *store, init)
        .map_err(JsInitError::Wasm)?;
    let code = stop
        .drive(init.call_async(&mut *store, js_heap_limit(limits.max_memory())))
        .map_err(JsInitError::Wasm)?;
    if code != 0 {
        let reported = store.data_mut().reported.take();
        let mut err = js_error(reported.as_deref(), limits);
        err.message = format!(
            "JavaScript runtime failed to start ({code}): {}",
            err.message
        );
        return Err(JsInitError::Guest(err));
    }
    Ok(fns)
}

/// The error a JS guest reported with `run_error` (`{type, message, stack}`).
fn js_error(reported: Option<&str>, limits: &Limits) -> GuestError {
    let v: serde_json::Value = reported
        .and_then(|r| serde_json::from_str(r).ok())
        .unwrap_or_default();
    let field = |k: &str| v.get(k).and_then(|x| x.as_str()).unwrap_or("").to_string();
    let (name, message, stack) = (field("type"), field("message"), field("stack"));
    if name == "InternalError" && message == "out of memory" {
        let limit = limits.max_memory();
        return GuestError {
            kind: ErrorKind::MemoryLimit { limit },
            message: format!(
                "JavaScript heap limit exceeded (out of memory; memory limit {limit} bytes)"
            ),
            backtrace: Some(stack).filter(|s| !s.is_empty()),
        };
    }
    GuestError {
        kind: ErrorKind::Exception {
            name: if name.is_empty() {
                "Error".into()
            } else {
                name
            },
        },
        message: if reported.is_none() {
            "the script failed without reporting an error".into()
        } else {
            message
        },
        backtrace: Some(stack).filter(|s| !s.is_empty()),
    }
}

impl Interpreter {
    pub(super) fn run_js(
        &self,
        live: &mut Live,
        module: Option<&str>,
        source: &str,
        channels: Vec<(String, ChannelEnd)>,
        cap: (Option<Instant>, Option<u64>),
    ) -> (Result<RunResult, Error>, bool) {
        if let Err(e) = bind_channels(live.store.data_mut(), channels) {
            return (Err(e), false);
        }
        self.prepare(&mut live.store, cap);
        let started = Instant::now();
        let prev = CURRENT.with(|c| c.replace(self.inner.id));
        let call = self.eval_js(live, module, source);
        CURRENT.with(|c| c.set(prev));
        let wall = started.elapsed();
        let limits = &self.inner.limits;
        let (outcome, poisoned) = match call {
            Ok(0) => (Outcome::default(), false),
            Ok(_) => (
                Outcome::failed(js_failure(live.store.data_mut(), limits)),
                false,
            ),
            // Stopped by force: the heap may be mid-update.
            Err(e) => (classify(&e), true),
        };
        (
            Ok(self.finish(&mut live.store, outcome, None, wall)),
            poisoned,
        )
    }

    /// Copies the source (and the module's name) into the guest and
    /// evaluates it: the guest's status (0: success), or how it was stopped.
    fn eval_js(
        &self,
        live: &mut Live,
        module: Option<&str>,
        source: &str,
    ) -> wasmtime::Result<i32> {
        let fns = live.js.as_ref().expect("checked by the caller");
        let (memory, alloc) = (fns.memory, fns.alloc.clone());
        let (eval, eval_module) = (fns.eval.clone(), fns.eval_module.clone());
        let oom = || {
            wasmtime::Error::new(Abort::MemoryLimit {
                limit: self.inner.limits.max_memory(),
            })
        };
        let stop = live.store.data().stopper();
        // Copies `text` into a fresh guest buffer: (pointer, length).
        let put = |store: &mut Store<StoreData>, text: &str| -> wasmtime::Result<(i32, i32)> {
            let len = i32::try_from(text.len()).map_err(|_| oom())?;
            let ptr = stop.drive(alloc.call_async(&mut *store, len))?;
            if ptr == 0 {
                return Err(oom());
            }
            memory.write(&mut *store, ptr as u32 as usize, text.as_bytes())?;
            Ok((ptr, len))
        };
        let (ptr, len) = put(&mut live.store, source)?;
        match module {
            None => stop.drive(eval.call_async(&mut live.store, (ptr, len))),
            Some(name) => {
                let (np, nl) = put(&mut live.store, name)?;
                stop.drive(eval_module.call_async(&mut live.store, (ptr, len, np, nl)))
            }
        }
    }
}

/// Why a script that returned a failure status failed: the host's reason
/// to stop it, or the error it reported (named a memory limit error when it
/// ran out of memory on the way).
fn js_failure(state: &mut StoreData, limits: &Limits) -> GuestError {
    if let Some(abort) = state.must_stop() {
        return GuestError {
            kind: abort.kind(),
            message: abort.to_string(),
            backtrace: None,
        };
    }
    let reported = state.reported.take();
    let mut e = js_error(reported.as_deref(), limits);
    // Whatever the script threw last, it ran out of memory on the way:
    // name the limit.
    if state.limiter.hit && !matches!(e.kind, ErrorKind::MemoryLimit { .. }) {
        let limit = limits.max_memory();
        e.message = format!(
            "memory limit of {limit} bytes reached (the script then failed with {}: {})",
            e.kind.type_name(),
            e.message
        );
        e.kind = ErrorKind::MemoryLimit { limit };
    }
    e
}
