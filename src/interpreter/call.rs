//! Calling a function by name with an input and getting its output back:
//! a JavaScript function, or a wasm export of type `(i32) -> i32` (the
//! input view's handle in, `call_output` for the result, 0 for success).

use bytes::Bytes;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::*;
use crate::buffer::View;

impl Interpreter {
    /// Calls the function `name` with `input` and returns its output, under
    /// the interpreter's limits, as [`Run::call`] describes. A guest failure
    /// (an exception, a non-zero result, a limit) is [`Error::Guest`].
    ///
    /// # Errors
    /// As [`run`](Self::run), plus [`Error::Guest`] when the call failed and
    /// [`Error::NoSuchExport`] when there is no function of that name.
    pub fn call(
        &self,
        name: &str,
        input: impl Into<crate::buffer::Buffer>,
    ) -> Result<Bytes, Error> {
        let r = self.run(Run::call(name, input))?.check()?;
        Ok(r.output.unwrap_or_default())
    }

    /// [`call`](Self::call) with structured values: `input` goes in as
    /// JSON and the result comes back parsed. A JavaScript function gets the
    /// parsed value and returns any JSON-able value; a wasm export gets and
    /// sets JSON text.
    ///
    /// # Errors
    /// As [`call`](Self::call), plus [`Error::Json`] when the input cannot be
    /// serialised or the output is not JSON of type `O`.
    pub fn call_json<I: Serialize + ?Sized, O: DeserializeOwned>(
        &self,
        name: &str,
        input: &I,
    ) -> Result<O, Error> {
        let json = serde_json::to_vec(input).map_err(|e| Error::Json(e.into()))?;
        let r = self.run(Run::call_json(name, json))?.check()?;
        let out = r.output.unwrap_or_default();
        serde_json::from_slice(&out).map_err(|e| Error::Json(e.into()))
    }

    /// Runs a call: through the language guest's `call` export, or a wasm
    /// export of type `(i32) -> i32`.
    pub(super) fn run_call(
        &self,
        live: &mut Live,
        name: &str,
        input: View,
        json: bool,
        channels: Vec<(String, ChannelEnd)>,
        cap: (Option<Instant>, Option<u64>),
    ) -> (Result<RunResult, Error>, bool) {
        if let Err(e) = bind_channels(live.store.data_mut(), channels) {
            return (Err(e), false);
        }
        let handle = match live.store.data_mut().handles.insert(Entry::View(input)) {
            Ok(h) => h,
            Err(_) => {
                let limit = live.store.data().handles.limit();
                return (
                    Err(Error::Limit(LimitError::TooManyHandles { limit })),
                    false,
                );
            }
        };
        let r = if live.source.is_some() {
            self.call_source(live, name, handle, json, cap)
        } else {
            (self.call_export(live, name, handle, cap), false)
        };
        // The input is the call's: whatever the guest kept of it is released.
        let _ = live.store.data_mut().handles.remove(handle);
        r
    }

    fn call_source(
        &self,
        live: &mut Live,
        name: &str,
        input: i32,
        json: bool,
        cap: (Option<Instant>, Option<u64>),
    ) -> (Result<RunResult, Error>, bool) {
        let fns = live.source.as_ref().expect("checked by the caller");
        let Some(call) = fns.call.clone() else {
            return (Err(Error::NoSuchExport(name.to_string())), false);
        };
        self.prepare(&mut live.store, cap);
        let started = Instant::now();
        let prev = CURRENT.with(|c| c.replace(self.inner.id));
        let stop = live.store.data().stopper();
        // The name goes in as a text view, not copied into a guest buffer:
        // one call into the guest instead of two (each is a fiber).
        let name_view = crate::buffer::Buffer::from(name.to_string()).into_view();
        let status = match live.store.data_mut().handles.insert(Entry::Text(name_view)) {
            Ok(name_h) => {
                let s =
                    stop.drive(call.call_async(&mut live.store, (name_h, input, i32::from(json))));
                let _ = live.store.data_mut().handles.remove(name_h);
                s
            }
            Err(_) => Err(wasmtime::Error::new(crate::outcome::Abort::MemoryLimit {
                limit: self.inner.limits.max_memory(),
            })),
        };
        CURRENT.with(|c| c.set(prev));
        let wall = started.elapsed();
        let (outcome, poisoned) = self.source_outcome(live, status);
        (
            Ok(self.finish(&mut live.store, outcome, None, wall)),
            poisoned,
        )
    }

    fn call_export(
        &self,
        live: &mut Live,
        name: &str,
        input: i32,
        cap: (Option<Instant>, Option<u64>),
    ) -> Result<RunResult, Error> {
        let func = live
            .instance
            .get_typed_func::<i32, i32>(&mut live.store, name)
            .map_err(|_| Error::NoSuchExport(name.to_string()))?;
        self.prepare(&mut live.store, cap);
        let started = Instant::now();
        let prev = CURRENT.with(|c| c.replace(self.inner.id));
        let stop = live.store.data().stopper();
        let call = stop.drive(func.call_async(&mut live.store, input));
        CURRENT.with(|c| c.set(prev));
        let wall = started.elapsed();
        let outcome = match call {
            Ok(0) => Outcome::default(),
            Ok(code) => Outcome::failed(GuestError {
                kind: ErrorKind::Exit(code),
                message: format!("`{name}` returned {code}"),
                backtrace: None,
            }),
            Err(e) => classify(&e),
        };
        Ok(self.finish(&mut live.store, outcome, None, wall))
    }
}
