"""Helpers shared by the Python peer scripts (cpython.py, process.py).

Standard library only, and importable by every CPython the bench runs
(3.11 to 3.13), also under ``-S``: the scripts' own folder is on sys.path.
"""

import math
import sys
import time
import traceback

MSG = b"\xab" * 64  # the 64-byte payload of every message
MIN_SAMPLES = 200   # round trips a repetition records even past its time budget


def log(*args):
    print(*args, file=sys.stderr, flush=True)


def percentile(sorted_values, p):
    """Nearest-rank percentile of an already sorted list."""
    rank = max(1, math.ceil(p / 100 * len(sorted_values)))
    return sorted_values[rank - 1]


def smaps_rollup_kib(pid, field):
    """One field (e.g. "Pss") of /proc/<pid>/smaps_rollup, in KiB."""
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"no {field} line in /proc/{pid}/smaps_rollup")


class Measurer:
    """Runs benchmarks one by one; a failing one is logged, its metrics stay
    null, and its name is kept in ``failed`` for the notes."""

    def __init__(self):
        self.failed = []

    def __call__(self, name, fn, *fn_args):
        t = time.perf_counter()
        try:
            value = fn(*fn_args)
        except Exception:
            log(f"  {name} FAILED:\n{traceback.format_exc()}")
            self.failed.append(name)
            return None
        log(f"  {name}: {value} ({time.perf_counter() - t:.1f} s)")
        return value
