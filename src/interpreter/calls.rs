//! Running an interpreter: one run at a time, its deadline and fuel, and
//! what comes back.

use super::*;

/// How long past its deadline a run waits for its output to reach a host
/// stream that is not being read.
const OUTPUT_DRAIN_GRACE: Duration = Duration::from_millis(100);

/// Clears the `running` flag however the run ends.
struct RunningGuard<'a>(&'a AtomicBool);

impl Drop for RunningGuard<'_> {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}

impl Interpreter {
    /// The interpreter's id.
    pub fn id(&self) -> InterpreterId {
        InterpreterId(self.inner.id)
    }

    /// Whether a run is going on now.
    pub fn is_running(&self) -> bool {
        self.inner.running.load(Ordering::Acquire)
    }

    /// Whether the interpreter has been closed.
    pub fn is_closed(&self) -> bool {
        self.inner.shared.closed.load(Ordering::Acquire)
    }

    /// The interpreter's limits.
    pub fn limits(&self) -> Limits {
        self.inner.limits
    }

    /// Closes the interpreter: its store, memory and handles are freed (a
    /// running guest is stopped at its next epoch tick, or when its channel
    /// wait notices, and its run ends with [`ErrorKind::Closed`]). Messages it
    /// sent that are still queued stay in their channels. Closing twice is a
    /// no-op.
    pub fn close(&self) {
        self.inner.close();
        if let Some(mut slot) = self.inner.live.try_lock() {
            drop(slot.take());
        }
    }

    /// The ids from its tree's root down to its creator (empty for an
    /// interpreter the host created).
    pub(crate) fn ancestors(&self) -> &[u64] {
        &self.inner.ancestors
    }

    /// The fuel left in its store (`None` with fuel off, or while it runs).
    pub(crate) fn fuel_left(&self) -> Option<u64> {
        let live = self.inner.live.try_lock()?;
        live.as_ref()?.store.get_fuel().ok()
    }

    /// Whether this interpreter runs JavaScript.
    pub fn is_js(&self) -> bool {
        self.inner.language == Some(Language::JavaScript)
    }

    /// The language this interpreter runs, if it runs one.
    pub fn language(&self) -> Option<Language> {
        self.inner.language
    }

    /// The interpreter that created this one ([`InterpreterId::MAIN`]: the host).
    pub fn creator(&self) -> InterpreterId {
        InterpreterId(self.inner.creator)
    }

    /// Runs `run` in this interpreter, blocking the caller, and returns what
    /// happened. State persists between runs (the instance stays).
    ///
    /// # Errors
    /// [`Error::InterpreterClosed`], [`Error::InterpreterRunning`],
    /// [`Error::NoSuchExport`], or [`Error::Limit`] when the channel ends
    /// would exceed the handle cap. A guest failure is not an `Err`: it is in
    /// [`RunResult::error`].
    pub fn run(&self, run: Run) -> Result<RunResult, Error> {
        self.with_live(|me, live| me.run_live(live, run))
    }

    /// Runs `f` on the live instance, one run at a time; `f`'s flag says
    /// whether the interpreter must be closed after it (a JS guest stopped
    /// by force).
    pub(super) fn with_live<T>(
        &self,
        f: impl FnOnce(&Self, &mut Live) -> (Result<T, Error>, bool),
    ) -> Result<T, Error> {
        let inner = &self.inner;
        if self.is_closed() {
            return Err(Error::InterpreterClosed(self.id()));
        }
        if inner.running.swap(true, Ordering::AcqRel) {
            return Err(Error::InterpreterRunning(self.id()));
        }
        let _guard = RunningGuard(&inner.running);
        let mut slot = inner.live.lock();
        let live = slot.as_mut().ok_or(Error::InterpreterClosed(self.id()))?;
        let (result, poisoned) = f(self, live);
        if poisoned {
            // A JS heap stopped by force mid-update cannot be trusted again.
            drop(slot);
            self.close();
            return result;
        }
        if self.is_closed() {
            drop(slot.take());
        }
        result
    }

    /// Starts `run` on its own thread; [`RunJob::join`] waits for it.
    ///
    /// # Panics
    /// If the host cannot start a thread.
    pub fn start(&self, run: Run) -> RunJob {
        let me = self.clone();
        let name = format!("subinterp-run-{}", self.inner.id);
        RunJob {
            id: self.id(),
            job: Job::spawn(name, move || me.run(run)).expect("spawning a run thread"),
        }
    }

    /// Runs `run` in the live instance; the flag says whether the
    /// interpreter must be closed after it (a JS guest stopped by force).
    fn run_live(&self, live: &mut Live, run: Run) -> (Result<RunResult, Error>, bool) {
        let (cap, channels) = ((run.deadline_cap, run.fuel), run.channels);
        match run.body {
            Body::Export(ref name) => (self.run_export(live, name, channels, cap), false),
            Body::Source {
                language,
                ref module,
                ref text,
            } => {
                if live.source.as_ref().map(|f| f.language) != Some(language) {
                    let interpreter = self.id();
                    return (
                        Err(Error::WrongLanguage {
                            interpreter,
                            language,
                        }),
                        false,
                    );
                }
                self.run_source(live, module.as_deref(), text, channels, cap)
            }
            Body::Call {
                ref name,
                ref input,
                json,
            } => self.run_call(live, name, input.clone(), json, channels, cap),
        }
    }

    pub(super) fn run_export(
        &self,
        live: &mut Live,
        export: &str,
        channels: Vec<(String, ChannelEnd)>,
        cap: (Option<Instant>, Option<u64>),
    ) -> Result<RunResult, Error> {
        let func = live
            .instance
            .get_func(&mut live.store, export)
            .filter(|f| {
                let ty = f.ty(&live.store);
                ty.params().len() == 0 && ty.results().len() <= 1
            })
            .ok_or_else(|| Error::NoSuchExport(export.to_string()))?;
        bind_channels(live.store.data_mut(), channels)?;
        self.prepare(&mut live.store, cap);
        let started = Instant::now();
        let mut results = vec![Val::I32(0); func.ty(&live.store).results().len()];
        let prev = CURRENT.with(|c| c.replace(self.inner.id));
        let stop = live.store.data().stopper();
        let call = stop.drive(func.call_async(&mut live.store, &[], &mut results));
        CURRENT.with(|c| c.set(prev));
        let wall = started.elapsed();
        let outcome = match call {
            Ok(()) => Outcome {
                error: None,
                exit_code: (export == "_start").then_some(0),
            },
            Err(e) => classify(&e),
        };
        Ok(self.finish(
            &mut live.store,
            outcome,
            results.first().and_then(Val::i32),
            wall,
        ))
    }

    pub(super) fn prepare(
        &self,
        store: &mut Store<StoreData>,
        (cap, fuel): (Option<Instant>, Option<u64>),
    ) {
        let limits = &self.inner.limits;
        let state = store.data_mut();
        state.deadline = deadline_from(limits, cap);
        state.fuel_start = fuel.or(limits.fuel()).unwrap_or(u64::MAX);
        state.tally = Tally::default();
        state.reported = None;
        state.output = None;
        state.limiter.hit = false;
        state.stop_since.set(None);
        if self.inner.fuel {
            let start = store.data().fuel_start;
            let _ = store.set_fuel(start);
        }
        store.set_epoch_deadline(1);
        if self.inner.own_output {
            self.inner.stdout.reset();
            self.inner.stderr.reset();
        }
    }

    pub(super) fn finish(
        &self,
        store: &mut Store<StoreData>,
        mut outcome: Outcome,
        value: Option<i32>,
        wall: std::time::Duration,
    ) -> RunResult {
        let start = store.data().fuel_start;
        if let Some(err) = outcome.error.as_mut()
            && err.kind == ErrorKind::Trap(Trap::OutOfFuel)
        {
            err.kind = ErrorKind::OutOfFuel { limit: start };
            err.message = format!("instruction budget of {start} exhausted");
        }
        let fuel_used = if self.inner.fuel {
            store.get_fuel().ok().map(|left| start.saturating_sub(left))
        } else {
            None
        };
        if self.inner.own_output {
            // What went to the host's streams is written before the run
            // returns, unless the reader does not read: then no longer than
            // the deadline allows (and a moment more), or until a close.
            let until = store
                .data()
                .deadline
                .map(|(at, _)| at.max(Instant::now()) + OUTPUT_DRAIN_GRACE);
            let closed = &self.inner.shared.closed;
            self.inner.stdout.drain(until, closed);
            self.inner.stderr.drain(until, closed);
        }
        let tally = &store.data().tally;
        let stats = RunStats {
            bytes_copied_out: tally.copied_out.load(Ordering::Relaxed),
            bytes_copied_in: tally.copied_in.load(Ordering::Relaxed),
            buffers_forwarded: tally.forwarded.load(Ordering::Relaxed),
            messages_sent: tally.sent.load(Ordering::Relaxed),
            messages_received: tally.received.load(Ordering::Relaxed),
            fuel_used,
        };
        RunResult {
            completed: outcome.error.is_none(),
            error: outcome.error,
            exit_code: outcome.exit_code,
            value,
            stdout: if self.inner.own_output {
                self.inner.stdout.take()
            } else {
                Vec::new()
            },
            stderr: if self.inner.own_output {
                self.inner.stderr.take()
            } else {
                Vec::new()
            },
            output: store.data_mut().output.take(),
            wall,
            stats,
        }
    }
}

/// Puts the named channel ends into the handle table, rebinding names.
pub(super) fn bind_channels(
    state: &mut StoreData,
    channels: Vec<(String, ChannelEnd)>,
) -> Result<(), Error> {
    for (name, end) in channels {
        let entry = match end {
            ChannelEnd::Recv(r) => Entry::Recv(r),
            ChannelEnd::Send(s) => Entry::Send(s),
        };
        let handle = state.handles.insert(entry).map_err(|_| {
            Error::Limit(LimitError::TooManyHandles {
                limit: state.handles_limit(),
            })
        })?;
        if let Some(old) = state.names.insert(name, handle) {
            let _ = state.handles.remove(old);
        }
    }
    Ok(())
}

impl StoreData {
    fn handles_limit(&self) -> usize {
        self.handles.limit()
    }
}
