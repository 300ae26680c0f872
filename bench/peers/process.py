#!/usr/bin/env python3
"""Peer benchmark: plain OS processes talking over pipes (the baseline for
process-per-sandbox designs).

Run as ``python3 bench/peers/process.py [--quick]``.  Prints exactly one JSON
object on stdout; progress and diagnostics go to stderr.  Linux only (reads
/proc/<pid>/smaps_rollup); stdlib only.

Forked children are copies of this Python process; they only use os.read /
os.write on raw pipe descriptors and leave with os._exit.
"""

import argparse
import json
import os
import platform
import statistics
import sys
import time
import traceback

from peerlib import MIN_SAMPLES, MSG, Measurer, log, percentile, smaps_rollup_kib

TRUE = "/bin/true"


def read_exactly(fd, n):
    """Read exactly n bytes from fd (pipes may return short reads)."""
    chunks = []
    while n:
        chunk = os.read(fd, n)
        if not chunk:
            raise EOFError("pipe closed early")
        chunks.append(chunk)
        n -= len(chunk)
    return b"".join(chunks)


def fork_child(body, child_fds):
    """Fork; the child runs body() (which closes the pipe ends it does not use) and
    exits with os._exit, never returning into the parent's code.  The parent
    closes child_fds, the ends that belong to the child."""
    pid = os.fork()
    if pid == 0:
        code = 0
        try:
            body()
        except BaseException:
            traceback.print_exc()
            code = 1
        finally:
            os._exit(code)
    for fd in child_fds:
        os.close(fd)  # the child's ends, closed in the parent
    return pid


def reap(pid):
    _, status = os.waitpid(pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"child {pid} failed with status {status}")


# ---------------------------------------------------------------------------
# Benchmarks
# ---------------------------------------------------------------------------

def bench_create_run(reps):
    """Median µs to posix_spawn /bin/true and wait for it."""
    env = dict(os.environ)
    samples = []
    for i in range(reps + 3):  # the first 3 are warm-up
        t0 = time.perf_counter_ns()
        pid = os.posix_spawn(TRUE, [TRUE], env)
        reap(pid)
        if i >= 3:
            samples.append((time.perf_counter_ns() - t0) / 1e3)
    return statistics.median(samples)


def bench_oneway(n, reps):
    """Messages/s: a forked child writes n 64-byte records, one write() each, to
    a pipe; the parent reads in bulk and counts records.  Timed from the "go"
    byte until the parent has all n * 64 bytes."""
    rates = []
    for _ in range(reps):
        go_r, go_w = os.pipe()
        data_r, data_w = os.pipe()

        def writer():
            os.close(go_w)
            os.close(data_r)
            read_exactly(go_r, 1)
            write = os.write
            for _ in range(n):
                write(data_w, MSG)  # 64 B < PIPE_BUF: each write is atomic

        pid = fork_child(writer, child_fds=(go_r, data_w))
        total = n * len(MSG)
        got = 0
        t0 = time.perf_counter()
        os.write(go_w, b"g")
        while got < total:
            chunk = os.read(data_r, 1 << 16)
            if not chunk:
                raise EOFError("writer closed the pipe early")
            got += len(chunk)
        rates.append((got // len(MSG)) / (time.perf_counter() - t0))
        os.close(go_w)
        os.close(data_r)
        reap(pid)
    return statistics.median(rates)


def bench_roundtrip(n, reps, budget_s):
    """(p50, p99, fewest samples) of a 64-byte ping-pong with a forked echo
    child over two pipes.  p50/p99 are in µs, medians over reps of each
    repetition's percentiles.  A repetition stops after n round trips or, once
    it has MIN_SAMPLES, after budget_s seconds."""
    p50s, p99s, counts = [], [], []
    for _ in range(reps):
        ping_r, ping_w = os.pipe()
        pong_r, pong_w = os.pipe()

        def echo():
            os.close(ping_w)
            os.close(pong_r)
            while msg := os.read(ping_r, len(MSG)):  # until EOF
                os.write(pong_w, msg)

        pid = fork_child(echo, child_fds=(ping_r, pong_w))
        clock, write, size = time.perf_counter_ns, os.write, len(MSG)
        for _ in range(100):  # warm-up, not recorded
            write(ping_w, MSG)
            read_exactly(pong_r, size)
        lat = []
        deadline = clock() + int(budget_s * 1e9)
        for i in range(n):
            t0 = clock()
            if t0 > deadline and i >= MIN_SAMPLES:
                break
            write(ping_w, MSG)
            read_exactly(pong_r, size)
            lat.append(clock() - t0)
        os.close(ping_w)  # EOF ends the echo loop
        os.close(pong_r)
        reap(pid)
        lat.sort()
        p50s.append(percentile(lat, 50) / 1e3)
        p99s.append(percentile(lat, 99) / 1e3)
        counts.append(len(lat))
    return statistics.median(p50s), statistics.median(p99s), min(counts)


def bench_rss_idle(reps):
    """(Pss, Private) KiB of one idle forked child (blocked in read()), each the
    median over reps children, one alive at a time."""
    pss, private = [], []
    for _ in range(reps):
        ready_r, ready_w = os.pipe()
        hold_r, hold_w = os.pipe()

        def idle():
            os.close(ready_r)
            os.close(hold_w)
            os.write(ready_w, b"r")
            os.read(hold_r, 1)  # sleep until the parent closes hold_w

        pid = fork_child(idle, child_fds=(ready_w, hold_r))
        read_exactly(ready_r, 1)
        time.sleep(0.05)  # let it settle into read()
        pss.append(smaps_rollup_kib(pid, "Pss"))
        private.append(smaps_rollup_kib(pid, "Private_Clean")
                       + smaps_rollup_kib(pid, "Private_Dirty"))
        os.close(hold_w)  # EOF wakes the child, which exits
        os.close(ready_r)
        reap(pid)
    return statistics.median(pss), statistics.median(private)


# ---------------------------------------------------------------------------

def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="fewer repetitions (< 20 s)")
    args = ap.parse_args()

    if args.quick:
        cr_reps, ow_n, ow_reps, rss_reps = 50, 20_000, 3, 3
        rt_n, rt_reps, rt_budget_s = 2_000, 3, 1.0
    else:
        cr_reps, ow_n, ow_reps, rss_reps = 300, 200_000, 7, 7
        rt_n, rt_reps, rt_budget_s = 20_000, 9, 4.0

    out = {
        "runtime": (f"Linux {platform.release()} processes + pipes, driven by "
                    f"CPython {platform.python_version()}"),
        "create_run_raw_us": None,
        "msg64_oneway_raw_per_s": None,
        "roundtrip_p50_us": None,
        "roundtrip_p99_us": None,
        "rss_idle_raw_kib": None,
        "cli_js_hello_ms": None,  # no JS here
    }
    measure = Measurer()
    failed = measure.failed

    log(f"process peer: {out['runtime']}")
    # Memory first, while this (the forked) process is still small.
    mem = measure("rss_idle_pss_private_kib", bench_rss_idle, rss_reps)
    private = "?"
    if mem is not None:
        out["rss_idle_raw_kib"], private = mem
    us = measure("create_run_us", bench_create_run, cr_reps)
    if us is not None:
        out["create_run_raw_us"] = round(us, 1)
    rate = measure("oneway_per_s", bench_oneway, ow_n, ow_reps)
    if rate is not None:
        out["msg64_oneway_raw_per_s"] = round(rate)
    rt = measure("roundtrip_p50_p99_us_samples", bench_roundtrip, rt_n, rt_reps, rt_budget_s)
    rt_samples = "?"
    if rt is not None:
        out["roundtrip_p50_us"], out["roundtrip_p99_us"] = round(rt[0], 2), round(rt[1], 2)
        rt_samples = rt[2]

    out["notes"] = (
        f"create_run: posix_spawn {TRUE} + waitpid, median of {cr_reps}; "
        f"oneway: forked child writes {ow_n} 64-byte records (1 write each) to a pipe, "
        f"parent bulk-reads, median of {ow_reps}; "
        f"roundtrip: ping-pong with forked child over 2 pipes, median of {rt_reps} "
        f"per-rep percentiles, each rep {rt_n} pings or {rt_budget_s:g} s "
        f"(fewest: {rt_samples}); "
        f"rss: Pss of one idle forked python child (Private {private} KiB), "
        f"median of {rss_reps}"
    )
    if failed:
        out["notes"] += "; FAILED: " + ", ".join(failed)
    print(json.dumps(out), flush=True)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
