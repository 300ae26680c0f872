"""Interpreters and channels inside a subinterp Python interpreter.

PEP 554's model with PEP 734's names: every interpreter is its own sandboxed
wasm instance (Python or JavaScript); they share nothing and exchange
immutable buffers over channels. Bytes go in (bytes-like objects and str,
copied once), read-only views come out (copied into this interpreter only
when read); a view or a channel end is forwarded without a copy.

    import interpreters
    w = interpreters.create(timeout=1000)           # limits never above ours
    r, s = interpreters.create_channel()             # capacity 64; 0: rendezvous
    back, reply = interpreters.create_channel()
    s.send("hello")                                  # str (UTF-8) or bytes-like
    w.run("outbox.send(inbox.recv().tobytes().upper())",
          channels={"inbox": r, "outbox": reply})    # bound as names in its __main__
    back.recv().decode()                             # 'HELLO': a read-only View

Units: the limits of create() are the ABI's and the JavaScript API's (timeout
in milliseconds, sizes in bytes); the timeouts of send/recv/join are seconds,
as queue.Queue's and PEP 734's. Built on the builtin module _subinterp (the
ABI one to one, the View type and the error classes); frozen into the guest
with the standard library.
"""

import json as _json
import marshal as _marshal

import _subinterp as _si
from _subinterp import (
    ChannelClosedError,
    ChannelEmptyError,
    ChannelError,
    ChannelFullError,
    ChannelReleasedError,
    ExecutionFailed,
    InterpreterClosedError,
    InterpreterError,
    LimitError,
    RecvChannel,
    SendChannel,
    View,
)

__all__ = [
    "create", "list_all", "get_current", "get_main", "create_channel",
    "Interpreter", "RecvChannel", "SendChannel", "View", "RunResult", "RunError", "Job",
    "ChannelError", "ChannelClosedError", "ChannelEmptyError", "ChannelFullError",
    "ChannelReleasedError", "InterpreterError", "InterpreterClosedError",
    "ExecutionFailed", "LimitError",
]

_MISSING = object()


_micros = _si.micros  # seconds (None: block) -> the ABI's microseconds (-1 blocks)


def _text(h, what):
    """The UTF-8 text of a created view handle (released), or raise for a code."""
    if h < 0:
        raise _si.error(h, what)
    try:
        data = _si.view_read(h)
    finally:
        _si.release(h)
    if isinstance(data, int):
        raise _si.error(data, what)
    return data.decode("utf-8")


_wrap = _si.wrap  # a received or looked-up handle as the object of its kind


# ---- channels -------------------------------------------------------------
# RecvChannel (recv, recv_nowait) and SendChannel (send, send_nowait, close)
# are in C (_subinterp), as View is: a message crosses no Python frame.


def create_channel(capacity=64):
    """(RecvChannel, SendChannel) of a new channel holding up to `capacity`
    messages (0: a rendezvous)."""
    if not isinstance(capacity, int) or isinstance(capacity, bool) or capacity < 0:
        raise ValueError("capacity must be an int >= 0")
    r = _si.channel_create(min(capacity, 2**31 - 1))
    if isinstance(r, int):
        raise _si.error(r, "create_channel")
    return RecvChannel(r[0]), SendChannel(r[1])


# ---- interpreters -----------------------------------------------------------


class RunError:
    """Why a run failed: `type` (the exception's class name, or the limit's
    error), `kind`, `message` and `traceback` (its formatted traceback, or
    a JavaScript stack)."""

    __slots__ = ("type", "kind", "message", "traceback")

    def __init__(self, d):
        self.type = str(d.get("type") or "Error")
        self.kind = d.get("kind")
        self.message = str(d.get("message") or "")
        self.traceback = str(d.get("stack") or "")

    # PEP 734's ExecutionFailed.excinfo names.
    @property
    def msg(self):
        return self.message

    @property
    def formatted(self):
        return f"{self.type}: {self.message}"

    def __repr__(self):
        return f"RunError(type={self.type!r}, message={self.message!r})"


class RunResult:
    """A run's outcome: `completed`, and `error` (a RunError, or None)."""

    __slots__ = ("completed", "error")

    def __init__(self, text):
        d = _json.loads(text)
        self.completed = bool(d.get("completed"))
        e = d.get("error")
        self.error = RunError(e) if e else None

    def check(self):
        """Returns self when the run completed; else raises ExecutionFailed."""
        if not self.completed:
            raise _failed(self.error)
        return self

    def __repr__(self):
        return f"RunResult(completed={self.completed}, error={self.error!r})"


def _failed(error):
    e = error or RunError({"type": "Error", "message": "run failed"})
    exc = ExecutionFailed(f"{e.type}: {e.message}")
    exc.excinfo = e
    return exc


def _interp_error(code, what, id):
    if code == _si.ERR_INVALID:
        return InterpreterError(f"{what}: interpreter {id} cannot do that to itself")
    if code == _si.ERR_BUSY:
        return InterpreterError(f"{what}: interpreter {id} is already running")
    if code == _si.ERR_NOT_FOUND:
        return InterpreterClosedError(
            f"{what}: interpreter {id} is closed or not one this interpreter created")
    return _si.error(code, what)


def _bindings(channels):
    out = {}
    for name, end in (channels or {}).items():
        if not isinstance(name, str):
            raise TypeError("channels: names must be str")
        if not isinstance(end, (RecvChannel, SendChannel)):
            raise TypeError(f"channels[{name!r}] must be a channel end")
        if end.handle <= 0:
            raise ChannelReleasedError(f"channels[{name!r}]: already released")
        out[name] = end.handle
    return _json.dumps(out)


class Job(_si.Handle):
    """A run started with Interpreter.start(); join() it."""

    __slots__ = ()

    def join(self, timeout=None):
        """Waits for the run to end and returns its RunResult; with a timeout
        (seconds), TimeoutError if it has not ended by then."""
        t = _micros(timeout, "join")
        r = _si.interp_join(self.handle, t)
        if r == _si.ERR_CLOSED:
            raise InterpreterError("join: this job was already joined")
        if r < 0:
            raise _si.error(r, "join", t > 0)
        self.release()
        return RunResult(_text(r, "join"))


_SHAREABLE = (type(None), bool, int, float, str, bytes)


def _check_shareable(obj, what):
    """PEP 734's shareable objects: None, bool, int, float, str, bytes and
    tuples of them (copied into the other interpreter)."""
    if isinstance(obj, tuple):
        for x in obj:
            _check_shareable(x, what)
    elif type(obj) not in _SHAREABLE:
        raise ValueError(f"{what}: {type(obj).__name__} is not shareable "
                         "(None, bool, int, float, str, bytes, tuples of them)")


class Interpreter:
    """An interpreter this one can see: itself, one it created (and those
    below), or the main one (the host, id 0)."""

    __slots__ = ("_id", "_lang")

    def __init__(self, id, lang=None):
        self._id = int(id)
        self._lang = lang  # "js" when create() made a JavaScript one

    @property
    def id(self):
        return self._id

    def __eq__(self, other):
        return isinstance(other, Interpreter) and other._id == self._id

    def __hash__(self):
        return hash(self._id)

    def __repr__(self):
        return f"Interpreter({self._id})"

    def is_running(self):
        """True while it (or, for this interpreter, its own code) runs."""
        r = _si.interp_status(self._id)
        if r < 0:
            raise _interp_error(r, "is_running", self._id)
        return r == 1

    def close(self):
        """Closes it (only an interpreter this one created), stopping a run;
        closing twice is fine."""
        r = _si.interp_close(self._id)
        if r < 0 and r != _si.ERR_NOT_FOUND:
            raise _interp_error(r, "close", self._id)

    def run(self, src, *, channels=None):
        """Runs source (in the interpreter's own language) and waits for it.
        `channels` maps names to channel ends, bound as names in the child's
        __main__ (or as `channels.NAME` in JavaScript). Returns a RunResult;
        an exception in the child is its `error`, not raised here."""
        r = _si.interp_run(self._id, str(src), _bindings(channels))
        if r < 0:
            raise _interp_error(r, "run", self._id)
        return RunResult(_text(r, "run"))

    def exec(self, src, *, channels=None):
        """As run(), but raises ExecutionFailed (with `.excinfo`, a RunError)
        when the source raised."""
        self.run(src, channels=channels).check()

    def prepare_main(self, ns=None, /, **kw):
        """Binds names in the interpreter's __main__: shareable objects are
        copied (None, bool, int, float, str, bytes, tuples of them), channel
        ends are bound by name as for run(channels=...). In a JavaScript
        interpreter values become globals (bytes are refused: no JSON) and
        ends `channels.NAME`."""
        items = dict(ns or {}, **kw)
        ends = {k: v for k, v in items.items() if isinstance(v, (RecvChannel, SendChannel))}
        values = {k: v for k, v in items.items() if k not in ends}
        for k, v in values.items():
            if not isinstance(k, str) or not k.isidentifier():
                raise ValueError(f"prepare_main: {k!r} is not an identifier")
            _check_shareable(v, f"prepare_main: {k}")
        if self._lang == "js":
            try:
                src = "".join(f"globalThis[{_json.dumps(k)}] = {_json.dumps(v)};\n"
                              for k, v in values.items())
            except (TypeError, ValueError):
                raise ValueError("prepare_main: a JavaScript interpreter takes JSON values only") from None
        elif values:
            src = f"globals().update(__import__('marshal').loads({_marshal.dumps(values)!r}))\n"
        else:
            src = ""
        self.exec(src, channels=ends)

    def call(self, func, /, *args):
        """Calls `func(*args)` in this (Python) interpreter and returns its
        result: `func` is a function of an importable module (not __main__),
        the arguments and the result are shareable objects, copied. An
        exception in the call raises ExecutionFailed."""
        if self._lang == "js":
            raise InterpreterError("call: only Python interpreters run Python functions")
        mod = getattr(func, "__module__", None)
        qual = getattr(func, "__qualname__", "")
        if not mod or mod == "__main__" or not qual or "<" in qual:
            raise ValueError("call: func must be a module-level function of an importable module")
        _check_shareable(args, "call: argument")
        r, s = create_channel(1)
        src = (
            "def __si_call():\n"
            "    import importlib, marshal\n"
            f"    f = importlib.import_module({mod!r})\n"
            f"    for n in {qual!r}.split('.'):\n"
            "        f = getattr(f, n)\n"
            f"    return marshal.dumps(f(*marshal.loads({_marshal.dumps(args)!r})))\n"
            "try:\n"
            "    __si_call_out.send(__si_call())\n"
            "finally:\n"
            "    del __si_call, __si_call_out\n"
        )
        self.exec(src, channels={"__si_call_out": s})
        return _marshal.loads(r.recv().tobytes())

    def start(self, src, *, channels=None):
        """Runs source on the interpreter's own thread; returns a Job."""
        r = _si.interp_start(self._id, str(src), _bindings(channels))
        if r < 0:
            raise _interp_error(r, "start", self._id)
        return Job(r)


_LIMITS = ("max_memory", "fuel", "max_output", "max_handles", "max_interpreters",
           "max_depth", "max_open_files")


def create(*, lang=None, timeout=None, **limits):
    """A new interpreter below this one: Python unless lang="js". Limits
    (never above this interpreter's own): timeout (ms per run), max_memory
    (bytes), fuel, max_output (bytes), max_handles, max_interpreters,
    max_depth, max_open_files. LimitError when this tree may not have more."""
    opts = {}
    if lang is not None:
        opts["lang"] = {"js": "js", "javascript": "js", "python": "python", "py": "python"}.get(
            str(lang).lower(), str(lang))
    if timeout is not None:
        opts["timeout_ms"] = timeout
    for k, v in limits.items():
        if k not in _LIMITS:
            raise TypeError(f"create: unknown limit {k!r}")
        opts[k] = v
    for k, v in opts.items():
        if k != "lang" and (isinstance(v, bool) or not isinstance(v, (int, float)) or not v >= 0):
            raise ValueError(f"create: {k} must be a number >= 0")
    id = _si.interp_create(_json.dumps(opts))
    if id == _si.ERR_LIMIT:
        raise LimitError("create: interpreter limit reached (count, depth or memory)")
    if id == _si.ERR_INVALID:
        raise ValueError(f"create: invalid limit or language in {opts}")
    if id == _si.ERR_NOT_FOUND:
        raise InterpreterError("create: no guest for that language (see make guest)")
    if id < 0:
        raise _si.error(id, "create")
    return Interpreter(id, opts.get("lang"))


def list_all():
    """This interpreter and the live interpreters below it."""
    return [Interpreter(i) for i in _json.loads(_text(_si.interp_list(), "list_all"))]


def get_current():
    return Interpreter(_si.interpreter_id())


def get_main():
    """The main interpreter: the host (id 0)."""
    return Interpreter(_si.main_id())


# ---- the run's own channel ends ---------------------------------------------

_bound = {}


def _bind_run(ns):
    """Called by the guest before each run when channel ends are bound to
    this interpreter by name (bindings persist from run to run, and a new
    one replaces an old one of the same name): sets them as names in `ns`,
    __main__'s globals. An end released by the script stays released."""
    for name in _json.loads(_text(_si.bound_names(), "bound_names")):
        h = _si.lookup(name)
        if h <= 0:
            continue
        end = _bound.get(name)
        if end is None or end.handle != h:
            end = _bound[name] = _wrap(h, True)
        ns[name] = end
