#!/usr/bin/env python3
"""Peer benchmark: CPython subinterpreters driven through the low-level modules.

Run as ``<python> bench/peers/cpython.py [--quick] [--site]``.  Prints exactly one
JSON object on stdout; progress and diagnostics go to stderr.

Which modules exist depends on the CPython version and is detected at run time:

* 3.11: ``_xxsubinterpreters`` (interpreters *and* ``channel_*`` functions);
  all subinterpreters share the one GIL.
* 3.12: ``_xxsubinterpreters`` + ``_xxinterpchannels``; ``create(isolated=True)``
  gives a subinterpreter its own GIL and allocator (PEP 684).
* 3.13: ``_interpreters`` + ``_interpchannels`` (+ ``_interpqueues``, unused);
  ``create()`` defaults to the "isolated" config (own GIL).

None of these modules has a blocking receive: ``recv`` either returns an item or
a default.  Receivers therefore poll: for the first 100 µs of a wait they call
``os.sched_yield()`` between empty polls, then ``time.sleep(20e-6)``.  Both
release the GIL, which on 3.11 is required: a thread waiting for the shared GIL
sets the "drop request" on *its own* interpreter, so a thread busy in another
interpreter never sees it and is never preempted.  (The high-level
``test.support.interpreters`` of 3.13 polls with 10 ms sleeps instead.)

By default the script re-executes itself with ``-S`` (no ``site``): every new
subinterpreter otherwise imports ``site`` and runs the ``.pth`` hooks of the
installation's site-packages, which measures the installation rather than
CPython.  Pass ``--site`` to keep ``site``.
"""

import argparse
import json
import os
import statistics
import sys
import threading
import time

from peerlib import MIN_SAMPLES, MSG, Measurer, log, percentile, smaps_rollup_kib

STOP = b"stop"      # tells an echoing subinterpreter to return


# ---------------------------------------------------------------------------
# Version adapters
# ---------------------------------------------------------------------------

# Source shared by the main interpreter and every subinterpreter: on top of a
# version-specific ``send(cid, obj)`` / ``try_recv(cid) -> obj | None`` it
# defines a blocking ``recv`` that polls.
PRELUDE_COMMON = '''
import os as _os, time as _time

SPIN_S = 100e-6  # spin (yielding) this long before napping between polls
NAP_S = 20e-6    # then sleep this long between polls (plus the timer slack)

def recv(cid, timeout=60.0):
    """Wait for the next item of channel ``cid`` (the API only has try-receive)."""
    obj = try_recv(cid)
    if obj is not None:
        return obj
    start = _time.perf_counter()
    while True:
        waited = _time.perf_counter() - start
        if waited < SPIN_S:
            _os.sched_yield()  # yield the CPU and, with it, the GIL
        elif waited < timeout:
            _time.sleep(NAP_S)  # back off: do not burn a core on long waits
        else:
            raise TimeoutError("no message on channel %d" % cid)
        obj = try_recv(cid)
        if obj is not None:
            return obj
'''

PRELUDE_311 = '''
import _xxsubinterpreters as _ch
send = _ch.channel_send
def try_recv(cid):
    return _ch.channel_recv(cid, None)
''' + PRELUDE_COMMON

PRELUDE_312 = '''
import _xxinterpchannels as _ch
send = _ch.send  # non-blocking in 3.12
def try_recv(cid):
    return _ch.recv(cid, None)
''' + PRELUDE_COMMON

PRELUDE_313 = '''
import _interpchannels as _ch
def send(cid, obj):
    # 3.13's send waits for the receiver by default; we want a queue.
    _ch.send(cid, obj, blocking=False)
def try_recv(cid):
    return _ch.recv(cid, None)[0]  # recv returns (obj, unboundop)
''' + PRELUDE_COMMON


class Backend:
    """Uniform view of one version's low-level interpreter + channel API."""

    def __init__(self, label, prelude, create, destroy, run_string,
                 channel_create, channel_destroy):
        self.label = label
        self.prelude = prelude
        self.create = create            # () -> interpreter id
        self.destroy = destroy          # (id) -> None
        self._run_string = run_string   # (id, source) -> None | error info
        self._channel_create = channel_create
        self._channel_destroy = channel_destroy
        # The prelude's send/try_recv/recv, bound in the main interpreter.
        ns = {}
        exec(prelude, ns)
        self.send, self.try_recv, self.recv = ns["send"], ns["try_recv"], ns["recv"]

    def run(self, iid, source):
        """Run ``source`` in interpreter ``iid``; raise if it failed."""
        err = self._run_string(iid, source)
        if err is not None:  # 3.13 returns the exception info instead of raising
            raise RuntimeError(getattr(err, "formatted", repr(err)))

    def run_with_prelude(self, iid, source):
        self.run(iid, self.prelude + source)

    def channel(self):
        """A new channel.  Keep the returned ChannelID object alive while the
        channel is in use: the channel is destroyed with its last ID object.
        Subinterpreter scripts refer to it by ``int(cid)``."""
        return self._channel_create()

    def channel_destroy(self, cid):
        self._channel_destroy(cid)

    def destroy_quietly(self, iid):
        """Destroy ``iid`` if possible: used on error paths, where it may still
        be running on a stuck thread."""
        try:
            self.destroy(iid)
        except Exception as e:
            log(f"  (could not destroy interpreter {iid}: {e})")


def detect_backend():
    """Return a Backend for this interpreter, or a string saying what is missing."""
    try:
        import _interpreters as interp          # 3.13+
        import _interpchannels as chan
        return Backend(
            "_interpreters+_interpchannels, isolated config (own GIL)",
            PRELUDE_313,
            create=lambda: interp.create("isolated"),
            destroy=interp.destroy,
            run_string=interp.run_string,
            channel_create=lambda: chan.create(3),  # 3 = UNBOUND (the default)
            channel_destroy=chan.destroy,
        )
    except ImportError:
        pass
    try:
        import _xxsubinterpreters as interp     # 3.8 .. 3.12
    except ImportError:
        return "no _interpreters or _xxsubinterpreters module"
    try:
        import _xxinterpchannels as chan         # 3.12
    except ImportError:
        chan = None
    if chan is not None:
        return Backend(
            "_xxsubinterpreters+_xxinterpchannels, isolated=True (own GIL)",
            PRELUDE_312,
            create=lambda: interp.create(isolated=True),
            destroy=interp.destroy,
            run_string=interp.run_string,
            channel_create=chan.create,
            channel_destroy=chan.destroy,
        )
    if hasattr(interp, "channel_create"):        # 3.11 (and 3.8 .. 3.10)
        return Backend(
            "_xxsubinterpreters (shared GIL)",
            PRELUDE_311,
            create=interp.create,
            destroy=interp.destroy,
            run_string=interp.run_string,
            channel_create=interp.channel_create,
            channel_destroy=interp.channel_destroy,
        )
    return "_xxsubinterpreters has no channels and _xxinterpchannels is missing"


# ---------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------

class InterpThread(threading.Thread):
    """A thread that runs one script in one subinterpreter, keeping any error."""

    def __init__(self, backend, iid, source):
        super().__init__(daemon=True)
        self.backend, self.iid, self.source = backend, iid, source
        self.error = None

    def run(self):
        try:
            self.backend.run_with_prelude(self.iid, self.source)
        except BaseException as e:  # reported by finish()
            self.error = e

    def finish(self, timeout=60.0):
        self.join(timeout)
        if self.is_alive():
            raise TimeoutError("subinterpreter thread did not finish")
        if self.error is not None:
            raise RuntimeError(f"subinterpreter failed: {self.error}")


# ---------------------------------------------------------------------------
# Benchmarks
# ---------------------------------------------------------------------------

def bench_create_run(be, reps):
    """Median µs of create + run_string("pass") + destroy."""
    for _ in range(3):  # warm-up
        iid = be.create()
        be.run(iid, "pass")
        be.destroy(iid)
    samples = []
    for _ in range(reps):
        t0 = time.perf_counter_ns()
        iid = be.create()
        be.run(iid, "pass")
        be.destroy(iid)
        samples.append((time.perf_counter_ns() - t0) / 1e3)
    return statistics.median(samples)


def bench_oneway(be, n, reps):
    """Messages/s: main interpreter (main thread) sends n 64-byte messages to a
    subinterpreter that receives them on its own thread.  Timed from the first
    send until the receiver has all n and its thread is joined."""
    rates = []
    iid = be.create()
    try:
        for _ in range(reps):
            data, ready = be.channel(), be.channel()
            receiver = InterpThread(be, iid, f"""
send({int(ready)}, b"ready")
for _ in range({n}):
    recv({int(data)})
""")
            receiver.start()
            be.recv(ready)
            send = be.send
            t0 = time.perf_counter()
            for _ in range(n):
                send(data, MSG)
            receiver.finish()
            rates.append(n / (time.perf_counter() - t0))
            be.channel_destroy(data)
            be.channel_destroy(ready)
    except BaseException:
        be.destroy_quietly(iid)
        raise
    be.destroy(iid)
    return statistics.median(rates)


def bench_roundtrip(be, n, reps, budget_s):
    """(p50, p99, fewest samples) of a 64-byte ping-pong between the main
    interpreter (main thread) and a subinterpreter echoing on its own thread.

    p50/p99 are in µs, each the median over reps of that repetition's
    percentile.  A repetition stops after n round trips or, once it has at
    least MIN_SAMPLES, after budget_s seconds (a loaded machine can make
    polling hand-offs take milliseconds)."""
    p50s, p99s, counts = [], [], []
    iid = be.create()
    try:
        for _ in range(reps):
            ping, pong = be.channel(), be.channel()
            echo = InterpThread(be, iid, f"""
while True:
    m = recv({int(ping)})
    if m == {STOP!r}:
        break
    send({int(pong)}, m)
""")
            echo.start()
            send, recv, clock = be.send, be.recv, time.perf_counter_ns
            for _ in range(100):  # warm-up, not recorded
                send(ping, MSG)
                recv(pong)
            lat = []
            deadline = clock() + int(budget_s * 1e9)
            for i in range(n):
                t0 = clock()
                if t0 > deadline and i >= MIN_SAMPLES:
                    break
                send(ping, MSG)
                recv(pong)
                lat.append(clock() - t0)
            send(ping, STOP)
            echo.finish()
            lat.sort()
            p50s.append(percentile(lat, 50) / 1e3)
            p99s.append(percentile(lat, 99) / 1e3)
            counts.append(len(lat))
            be.channel_destroy(ping)
            be.channel_destroy(pong)
    except BaseException:
        be.destroy_quietly(iid)
        raise
    be.destroy(iid)
    return statistics.median(p50s), statistics.median(p99s), min(counts)


def bench_rss_idle(be, count):
    """KiB of Pss added per idle subinterpreter, with ``count`` alive at once."""
    for _ in range(2):  # warm-up: one-time costs are not per interpreter
        be.destroy(be.create())
    before = smaps_rollup_kib("self", "Pss")
    ids = [be.create() for _ in range(count)]
    after = smaps_rollup_kib("self", "Pss")
    for iid in ids:
        be.destroy(iid)
    return (after - before) / count


# ---------------------------------------------------------------------------

def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="fewer repetitions (< 20 s)")
    ap.add_argument("--site", action="store_true",
                    help="do not re-execute with -S (subinterpreters import site)")
    args = ap.parse_args()

    if not args.site and not sys.flags.no_site:
        # Re-run without site so subinterpreters skip site-packages .pth hooks.
        os.execv(sys.executable, [sys.executable, "-S", *sys.argv])

    impl = sys.implementation.name
    runtime = f"{'CPython' if impl == 'cpython' else impl} {sys.version.split()[0]}"
    be = detect_backend()
    if isinstance(be, str):
        print(json.dumps({"runtime": runtime, "missing": be}))
        return
    runtime += f" ({be.label})"
    log(f"cpython peer: {runtime}")

    if args.quick:
        cr_reps, ow_n, ow_reps, alive = 20, 20_000, 3, 200
        rt_n, rt_reps, rt_budget_s = 2_000, 3, 1.0
    else:
        cr_reps, ow_n, ow_reps, alive = 100, 200_000, 7, 1000
        rt_n, rt_reps, rt_budget_s = 20_000, 9, 4.0

    out = {
        "runtime": runtime,
        "create_run_raw_us": None,
        "create_run_js_us": None,  # no JS here
        "msg64_oneway_raw_per_s": None,
        "roundtrip_p50_us": None,
        "roundtrip_p99_us": None,
        "rss_idle_raw_kib": None,
        # The same figures are CPython's side of the Python rows: a
        # subinterpreter is CPython's own way to run `1+1` in isolation.
        "create_run_py_us": None,
        "rss_idle_py_kib": None,
        "rss_after_run_py_kib": None,
        "msg64_oneway_py_per_s": None,
    }
    measure = Measurer()
    failed = measure.failed

    # Memory first, so that memory freed by the other benchmarks is not reused.
    kib = measure("rss_idle_kib", bench_rss_idle, be, alive)
    if kib is not None:
        out["rss_idle_raw_kib"] = round(kib, 1)
        out["rss_idle_py_kib"] = out["rss_after_run_py_kib"] = round(kib, 1)
    us = measure("create_run_us", bench_create_run, be, cr_reps)
    if us is not None:
        out["create_run_raw_us"] = round(us, 1)
        out["create_run_py_us"] = round(us, 1)
    rate = measure("oneway_per_s", bench_oneway, be, ow_n, ow_reps)
    if rate is not None:
        out["msg64_oneway_raw_per_s"] = round(rate)
        out["msg64_oneway_py_per_s"] = round(rate)
    rt = measure("roundtrip_p50_p99_us_samples", bench_roundtrip, be, rt_n, rt_reps, rt_budget_s)
    rt_samples = "?"
    if rt is not None:
        out["roundtrip_p50_us"], out["roundtrip_p99_us"] = round(rt[0], 2), round(rt[1], 2)
        rt_samples = rt[2]

    if "shared" in be.label:
        # Measured on 3.11: a thread waiting for the GIL from another interpreter
        # never preempts the holder, so the sender is not interrupted.
        gil = ("shared GIL, not preempted across interpreters (oneway: sender runs "
               "to completion, then the receiver drains)")
    else:
        gil = "own GIL per interpreter"
    out["notes"] = (
        f"{'no site (-S)' if sys.flags.no_site else 'with site'}; {gil}; "
        f"create_run: median of {cr_reps}; "
        f"oneway: main interp (main thread) -> subinterp (own thread), "
        f"{ow_n} msgs, median of {ow_reps}; "
        f"roundtrip: main <-> subinterp thread, median of {rt_reps} per-rep percentiles, "
        f"each rep {rt_n} pings or {rt_budget_s:g} s (fewest: {rt_samples}); "
        f"receivers poll (no blocking recv): sched_yield for 100 us, then 20 us naps; "
        f"rss: Pss delta / {alive} alive"
    )
    if failed:
        out["notes"] += "; FAILED: " + ", ".join(failed)
    print(json.dumps(out), flush=True)
    if failed:
        # A stuck subinterpreter thread would abort interpreter finalization.
        os._exit(1)


if __name__ == "__main__":
    main()
