//! A line on stderr for a compile that keeps someone waiting, when the host
//! was asked for them ([`HostBuilder::compile_notices`](crate::HostBuilder::compile_notices)).

use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

/// How long a compile runs before a [`Notice::after`] says so.
pub(crate) const NOTICE_AFTER: Duration = Duration::from_secs(1);

#[derive(Clone, Copy, PartialEq, Eq)]
enum State {
    Waiting,
    Shown,
    Done,
}

/// A compile under way. Its message is printed now ([`Notice::now`]) or
/// once the compile has run for a while ([`Notice::after`]); if it was
/// printed, [`finish`](Notice::finish) says how long the compile took.
/// Dropped unfinished (the compile failed), it prints nothing more.
pub(crate) struct Notice {
    state: Option<Arc<(Mutex<State>, Condvar)>>,
    started: Instant,
}

/// Writes one line to stderr, ignoring a closed or failing stream.
fn say(line: &str) {
    let _ = writeln!(std::io::stderr().lock(), "subinterp: {line}");
}

impl Notice {
    /// No notice (the host prints none).
    pub(crate) fn off() -> Notice {
        Notice {
            state: None,
            started: Instant::now(),
        }
    }

    /// Prints `message` at once.
    pub(crate) fn now(message: &str) -> Notice {
        say(message);
        Notice {
            state: Some(Arc::new((Mutex::new(State::Shown), Condvar::new()))),
            started: Instant::now(),
        }
    }

    /// Prints `message` if the compile is still going after `delay` (from a
    /// thread of its own; best effort: none if it cannot be started).
    pub(crate) fn after(delay: Duration, message: String) -> Notice {
        let state = Arc::new((Mutex::new(State::Waiting), Condvar::new()));
        let watch = state.clone();
        let started = Instant::now();
        let spawned = std::thread::Builder::new()
            .name("subinterp-notice".into())
            .spawn(move || {
                let mut s = watch.0.lock();
                let deadline = started + delay;
                while *s == State::Waiting && !watch.1.wait_until(&mut s, deadline).timed_out() {}
                if *s == State::Waiting {
                    say(&message);
                    *s = State::Shown;
                }
            });
        Notice {
            state: spawned.is_ok().then_some(state),
            started,
        }
    }

    /// The compile is done: if the notice was printed, `outcome` (e.g.
    /// where the code was cached) follows it, with the time taken.
    pub(crate) fn finish(self, outcome: impl FnOnce() -> String) {
        let shown = self.state.as_ref().is_some_and(|state| {
            let mut s = state.0.lock();
            std::mem::replace(&mut *s, State::Done) == State::Shown
        });
        if shown {
            let secs = self.started.elapsed().as_secs_f64();
            say(&format!("compiled in {secs:.1} s; {}", outcome()));
        }
    }
}

impl Drop for Notice {
    fn drop(&mut self) {
        if let Some(state) = &self.state {
            *state.0.lock() = State::Done;
            state.1.notify_all();
        }
    }
}
