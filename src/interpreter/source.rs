//! Driving a language guest (JavaScript, Python): its set-up in a new
//! instance, one evaluation of source, and the error it reports. Both
//! guests export the same functions under their own prefix (`si_js_`,
//! `si_py_`): `init`/`configure`, `alloc` and `eval` (and JavaScript's
//! `eval_module`). `eval` returns 0 when the script completed, `0x100 | n`
//! when it exited with status `n` (Python's `SystemExit`), and anything
//! else when it failed (the error it reported with `run_error` says how).

use super::*;
use crate::language::{Export, Language};
use crate::outcome::Abort;
use crate::store::Stopper;

/// How long a language guest gets to stop by itself (its interrupt
/// handler polls the host) once its deadline passes or it is closed, before
/// the host stops it by force. An interpreter stopped by force is closed,
/// since its heap may be half-updated.
pub const STOP_GRACE: Duration = Duration::from_millis(100);

/// A language guest's exports, looked up once per instance.
pub(super) struct SourceFns {
    pub(super) language: Language,
    pub(super) memory: wasmtime::Memory,
    pub(super) alloc: TypedFunc<i32, i32>,
    pub(super) eval: TypedFunc<(i32, i32), i32>,
    /// JavaScript's: evaluate as an ES module.
    pub(super) eval_module: Option<TypedFunc<(i32, i32, i32, i32), i32>>,
    /// `call(name_view, input_view, json)`, when the guest has it.
    pub(super) call: Option<TypedFunc<(i32, i32, i32), i32>>,
}

pub(super) enum InitError {
    Wasm(wasmtime::Error),
    Guest(GuestError),
}

/// The guest's own heap limit for a memory ceiling: the ceiling less the
/// guest's code, data and stack (about 2 MiB). The ceiling itself is what
/// stops a script: past it `memory.grow` fails, malloc returns NULL and
/// the interpreter raises a catchable out-of-memory error (the guest's libc
/// allocates in power-of-two size classes, so the linear memory, not the
/// interpreter's count of live bytes, is the figure that matters).
fn heap_limit(max_memory: usize) -> i32 {
    let limit = max_memory.saturating_sub(2 << 20).max(1 << 20);
    limit.min(u32::MAX as usize) as u32 as i32
}

/// Sets up the language's runtime in a new instance: `si_<lang>_init`, or
/// for a pre-initialised snapshot just `si_<lang>_configure`.
pub(super) fn init_source(
    store: &mut Store<StoreData>,
    instance: &Instance,
    language: Language,
    preinitialized: bool,
    limits: &Limits,
    stop: &Stopper,
) -> Result<SourceFns, InitError> {
    let fns = SourceFns {
        language,
        memory: instance.get_memory(&mut *store, "memory").ok_or_else(|| {
            InitError::Wasm(wasmtime::format_err!("{language} guest has no memory"))
        })?,
        alloc: typed_export(store, instance, language, Export::Alloc)?,
        eval: typed_export(store, instance, language, Export::Eval)?,
        eval_module: match language {
            Language::JavaScript => {
                Some(typed_export(store, instance, language, Export::EvalModule)?)
            }
            _ => None,
        },
        call: instance
            .get_typed_func(&mut *store, language.export(Export::Call))
            .ok(),
    };
    let init = if preinitialized {
        Export::Configure
    } else {
        Export::Init
    };
    let init: TypedFunc<i32, i32> = typed_export(store, instance, language, init)?;
    let code = stop
        .drive(init.call_async(&mut *store, heap_limit(limits.max_memory())))
        .map_err(InitError::Wasm)?;
    if code != 0 {
        let reported = store.data_mut().reported.take();
        let mut err = guest_error(language, reported.as_deref(), limits);
        err.message = format!(
            "{language} runtime failed to start ({code}): {}",
            err.message
        );
        return Err(InitError::Guest(err));
    }
    Ok(fns)
}

/// The language guest's export `si_<lang>_<what>`, typed.
fn typed_export<P: wasmtime::WasmParams, R: wasmtime::WasmResults>(
    store: &mut Store<StoreData>,
    instance: &Instance,
    language: Language,
    what: Export,
) -> Result<TypedFunc<P, R>, InitError> {
    instance
        .get_typed_func(&mut *store, language.export(what))
        .map_err(InitError::Wasm)
}

/// The error a language guest reported with `run_error` (`{type, message,
/// stack}`). Running out of memory (JavaScript's `InternalError: out of
/// memory`, Python's `MemoryError`) is the memory limit.
fn guest_error(language: Language, reported: Option<&str>, limits: &Limits) -> GuestError {
    let v: serde_json::Value = reported
        .and_then(|r| serde_json::from_str(r).ok())
        .unwrap_or_default();
    let field = |k: &str| v.get(k).and_then(|x| x.as_str()).unwrap_or("").to_string();
    let (name, message, stack) = (field("type"), field("message"), field("stack"));
    let out_of_memory = match language {
        Language::JavaScript => name == "InternalError" && message == "out of memory",
        Language::Python => name == "MemoryError",
    };
    if out_of_memory {
        let limit = limits.max_memory();
        return GuestError {
            kind: ErrorKind::MemoryLimit { limit },
            message: format!(
                "{language} heap limit exceeded (out of memory; memory limit {limit} bytes)"
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
    pub(super) fn run_source(
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
        let call = self.eval(live, module, source);
        CURRENT.with(|c| c.set(prev));
        let wall = started.elapsed();
        let (outcome, poisoned) = self.source_outcome(live, call);
        (
            Ok(self.finish(&mut live.store, outcome, None, wall)),
            poisoned,
        )
    }

    /// Copies `text` into a fresh buffer of the language guest's (which the
    /// guest frees): its (pointer, length).
    pub(super) fn put_text(&self, live: &mut Live, text: &str) -> wasmtime::Result<(i32, i32)> {
        let fns = live.source.as_ref().expect("checked by the caller");
        let (memory, alloc) = (fns.memory, fns.alloc.clone());
        let oom = || {
            wasmtime::Error::new(Abort::MemoryLimit {
                limit: self.inner.limits.max_memory(),
            })
        };
        let stop = live.store.data().stopper();
        let len = i32::try_from(text.len()).map_err(|_| oom())?;
        let ptr = stop.drive(alloc.call_async(&mut live.store, len))?;
        if ptr == 0 {
            return Err(oom());
        }
        memory.write(&mut live.store, ptr as u32 as usize, text.as_bytes())?;
        Ok((ptr, len))
    }

    /// The outcome of a language guest's status (0: success, `0x100 | n`:
    /// exited with `n`, else the error it reported), or of how it was
    /// stopped (then the heap may be mid-update: the flag says so).
    pub(super) fn source_outcome(
        &self,
        live: &mut Live,
        call: wasmtime::Result<i32>,
    ) -> (Outcome, bool) {
        let limits = &self.inner.limits;
        match call {
            Ok(0) => (Outcome::default(), false),
            // Exited with status 0 (JavaScript's `process.exit(0)`).
            Ok(EXITED) => (
                Outcome {
                    error: None,
                    exit_code: Some(0),
                },
                false,
            ),
            // The script exited (Python's `SystemExit`) with a status.
            Ok(code) if code & !EXIT_STATUS == EXITED => (exited(code & EXIT_STATUS), false),
            Ok(_) => {
                let language = live
                    .source
                    .as_ref()
                    .expect("checked by the caller")
                    .language;
                let error = failure(language, live.store.data_mut(), limits);
                (Outcome::failed(error), false)
            }
            // Stopped by force: the heap may be mid-update.
            Err(e) => (classify(&e), true),
        }
    }

    /// Copies the source (and the module's name) into the guest and
    /// evaluates it: the guest's status (0: success), or how it was stopped.
    fn eval(&self, live: &mut Live, module: Option<&str>, source: &str) -> wasmtime::Result<i32> {
        let fns = live.source.as_ref().expect("checked by the caller");
        let (eval, eval_module) = (fns.eval.clone(), fns.eval_module.clone());
        let stop = live.store.data().stopper();
        let (ptr, len) = self.put_text(live, source)?;
        match module {
            None => stop.drive(eval.call_async(&mut live.store, (ptr, len))),
            Some(name) => {
                let eval_module =
                    eval_module.ok_or_else(|| wasmtime::format_err!("modules are JavaScript's"))?;
                let (np, nl) = self.put_text(live, name)?;
                stop.drive(eval_module.call_async(&mut live.store, (ptr, len, np, nl)))
            }
        }
    }
}

/// `eval`'s result when the script exited: `EXITED | status`.
const EXITED: i32 = 0x100;
/// The status bits of an exited script's result.
const EXIT_STATUS: i32 = 0xff;

/// A script that exited with `status` (1 to 255; 0 comes back as success).
fn exited(status: i32) -> Outcome {
    Outcome {
        error: Some(GuestError {
            kind: ErrorKind::Exit(status),
            message: format!("exited with code {status}"),
            backtrace: None,
        }),
        exit_code: Some(status),
    }
}

/// Why a script that returned a failure status failed: the host's reason
/// to stop it, or the error it reported (named a memory limit error when it
/// ran out of memory on the way).
fn failure(language: Language, state: &mut StoreData, limits: &Limits) -> GuestError {
    if let Some(abort) = state.must_stop() {
        return GuestError {
            kind: abort.kind(),
            message: abort.to_string(),
            backtrace: None,
        };
    }
    let reported = state.reported.take();
    let mut e = guest_error(language, reported.as_deref(), limits);
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

/// Tells a JavaScript guest its module folder (`si_js_module_root`): the
/// folder's guest path, and whether the script's files may use it too.
pub(super) fn set_module_root(live: &mut Live, guest: &str, shared: bool) -> wasmtime::Result<()> {
    let fns = live
        .source
        .as_ref()
        .ok_or_else(|| wasmtime::format_err!("a module folder is for a language guest"))?;
    let (memory, alloc) = (fns.memory, fns.alloc.clone());
    let set: TypedFunc<(i32, i32, i32), i32> = live
        .instance
        .get_typed_func(&mut live.store, "si_js_module_root")?;
    let stop = live.store.data().stopper();
    let len = i32::try_from(guest.len())?;
    let ptr = stop.drive(alloc.call_async(&mut live.store, len))?;
    if ptr == 0 {
        wasmtime::bail!("out of memory for the module folder's name");
    }
    memory.write(&mut live.store, ptr as u32 as usize, guest.as_bytes())?;
    let code = stop.drive(set.call_async(&mut live.store, (ptr, len, i32::from(shared))))?;
    if code != 0 {
        wasmtime::bail!("the JavaScript guest refused its module folder ({code})");
    }
    Ok(())
}
