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
import struct as _struct

import _subinterp as _si
from _subinterp import (
    ChannelClosedError,
    ChannelEmptyError,
    ChannelError,
    ChannelFullError,
    ChannelReleasedError,
    ExecutionFailed,
    HostError,
    InterpreterClosedError,
    InterpreterError,
    LimitError,
    RecvChannel,
    SendChannel,
    View,
)

__all__ = [
    "create", "list_all", "get_current", "get_main", "create_channel", "create_queue",
    "Queue", "QueueError", "QueueEmptyError", "QueueFullError",
    "Interpreter", "RecvChannel", "SendChannel", "View", "RunResult", "RunError", "Job",
    "ChannelError", "ChannelClosedError", "ChannelEmptyError", "ChannelFullError",
    "ChannelReleasedError", "InterpreterError", "InterpreterClosedError",
    "ExecutionFailed", "LimitError", "HostError", "host_call",
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


# ---- shareable objects, as bytes ---------------------------------------------
# A tagged encoding of None, bool, int, float, str, bytes and tuples of them,
# for what crosses between interpreters as data (queue items, call()
# results). Not marshal: marshal.loads is not safe on bytes another
# interpreter (which may run hostile code) made; a malformed item here is a
# ValueError.

_U32 = _struct.Struct("<I")
_F64 = _struct.Struct("<d")


def _encode(obj, what):
    out = []
    _enc(obj, out, what)
    return b"".join(out)


def _enc(obj, out, what):
    t = type(obj)
    if obj is None:
        out.append(b"N")
    elif t is bool:
        out.append(b"T" if obj else b"F")
    elif t is int:
        b = obj.to_bytes(obj.bit_length() // 8 + 1, "little", signed=True)
        out += (b"i", _U32.pack(len(b)), b)
    elif t is float:
        out += (b"f", _F64.pack(obj))
    elif t is str:
        b = obj.encode("utf-8", "surrogatepass")
        out += (b"s", _U32.pack(len(b)), b)
    elif t is bytes:
        out += (b"b", _U32.pack(len(obj)), obj)
    elif t is tuple:
        out += (b"t", _U32.pack(len(obj)))
        for x in obj:
            _enc(x, out, what)
    else:
        raise ValueError(f"{what}: {t.__name__} is not shareable "
                         "(None, bool, int, float, str, bytes, tuples of them)")


def _decode(data):
    try:
        obj, end = _dec(data, 0)
    except (IndexError, _struct.error, UnicodeDecodeError, ValueError):
        obj, end = None, -1
    if end != len(data):
        raise ValueError("a shared object arrived malformed")
    return obj


def _dec(d, i):
    tag = d[i]
    i += 1
    if tag == 78:  # N
        return None, i
    if tag == 84:  # T
        return True, i
    if tag == 70:  # F
        return False, i
    if tag == 102:  # f
        return _F64.unpack_from(d, i)[0], i + 8
    if tag == 116:  # t
        (n,) = _U32.unpack_from(d, i)
        i += 4
        items = []
        for _ in range(n):
            x, i = _dec(d, i)
            items.append(x)
        return tuple(items), i
    (n,) = _U32.unpack_from(d, i)
    i += 4
    if i + n > len(d):
        raise ValueError("truncated")
    b = bytes(d[i:i + n])
    if tag == 105:  # i
        return int.from_bytes(b, "little", signed=True), i + n
    if tag == 115:  # s
        return b.decode("utf-8", "surrogatepass"), i + n
    if tag == 98:  # b
        return b, i + n
    raise ValueError("unknown tag")


# ---- queues -------------------------------------------------------------------


class QueueError(Exception):
    """A queue operation failed."""


class QueueEmptyError(QueueError):
    """get_nowait() found the queue empty, or get() timed out."""


class QueueFullError(QueueError):
    """put_nowait() found the queue full, or put() timed out."""


QueueEmpty, QueueFull = QueueEmptyError, QueueFullError  # CPython 3.13's names


class Queue:
    """PEP 734's queue: a FIFO of shareable objects (None, bool, int, float,
    str, bytes, tuples of them), copied in and out, that several
    interpreters can use (share it with Interpreter.prepare_main). Built on
    a channel: an item is one message."""

    __slots__ = ("_r", "_s", "_maxsize")

    def __init__(self, recv_end, send_end, maxsize):
        if not isinstance(recv_end, RecvChannel) or not isinstance(send_end, SendChannel):
            raise TypeError("Queue: use create_queue()")
        self._r, self._s, self._maxsize = recv_end, send_end, int(maxsize)

    @property
    def maxsize(self):
        """The most items it holds (0: no bound but the memory limit)."""
        return self._maxsize

    def __repr__(self):
        return f"<Queue maxsize={self._maxsize} qsize={self.qsize()}>"

    def qsize(self):
        """How many items it holds now (others may put or get right after)."""
        n = _si.channel_len(self._s.handle)
        if n < 0:
            raise _si.error(n, "qsize")
        return n

    def empty(self):
        return self.qsize() == 0

    def full(self):
        return self._maxsize > 0 and self.qsize() >= self._maxsize

    def put(self, obj, timeout=None):
        """Adds a copy of `obj`, waiting while the queue is full; with a
        timeout (seconds), QueueFullError when there was no room."""
        data = _encode(obj, "put")
        try:
            self._s.send(data, timeout)
        except TimeoutError:
            raise QueueFullError("put: timed out, the queue is full") from None

    def put_nowait(self, obj):
        """Adds a copy of `obj`, or QueueFullError when the queue is full."""
        try:
            self._s.send_nowait(_encode(obj, "put_nowait"))
        except ChannelFullError:
            raise QueueFullError("put_nowait: the queue is full") from None

    def get(self, timeout=None):
        """Removes and returns the oldest item, waiting for one; with a
        timeout (seconds), QueueEmptyError when none came."""
        try:
            v = self._r.recv(timeout)
        except TimeoutError:
            raise QueueEmptyError("get: timed out, the queue is empty") from None
        return _item(v)

    def get_nowait(self):
        """Removes and returns the oldest item, or QueueEmptyError."""
        try:
            v = self._r.recv_nowait()
        except ChannelEmptyError:
            raise QueueEmptyError("get_nowait: the queue is empty") from None
        return _item(v)


def _item(v):
    if not isinstance(v, View):
        v.release()
        raise QueueError("a queue received something other than an item")
    try:
        return _decode(v.tobytes())
    finally:
        v.release()


def create_queue(maxsize=0):
    """A new Queue holding up to `maxsize` items (0: no bound but the
    memory limit)."""
    if not isinstance(maxsize, int) or isinstance(maxsize, bool) or maxsize < 0:
        raise ValueError("maxsize must be an int >= 0")
    r, s = create_channel(maxsize or 2**31 - 1)
    return Queue(r, s, maxsize)


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
        ends are bound by name as for run(channels=...), and a Queue is the
        same queue there (Python interpreters only). In a JavaScript
        interpreter values become globals (bytes are refused: no JSON) and
        ends `channels.NAME`."""
        items = dict(ns or {}, **kw)
        ends = {k: v for k, v in items.items() if isinstance(v, (RecvChannel, SendChannel))}
        queues = {k: v for k, v in items.items() if isinstance(v, Queue)}
        values = {k: v for k, v in items.items() if k not in ends and k not in queues}
        if queues and self._lang == "js":
            raise ValueError("prepare_main: a queue can only be shared with a Python interpreter")
        make = []
        for k, q in queues.items():
            if not isinstance(k, str) or not k.isidentifier():
                raise ValueError(f"prepare_main: {k!r} is not an identifier")
            ends[f"__si_q_{k}_r"], ends[f"__si_q_{k}_s"] = q._r, q._s
            make.append(f"{k} = __import__('interpreters').Queue("
                        f"__si_q_{k}_r, __si_q_{k}_s, {q._maxsize})\n")
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
        self.exec(src + "".join(make), channels=ends)

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
            "    import importlib, marshal, interpreters\n"
            f"    f = importlib.import_module({mod!r})\n"
            f"    for n in {qual!r}.split('.'):\n"
            "        f = getattr(f, n)\n"
            f"    return interpreters._encode(f(*marshal.loads({_marshal.dumps(args)!r})), 'call: result')\n"
            "try:\n"
            "    __si_call_out.send(__si_call())\n"
            "finally:\n"
            "    del __si_call, __si_call_out\n"
        )
        self.exec(src, channels={"__si_call_out": s})
        return _item(r.recv())

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


def host_call(name, data=b""):
    """Calls the host function `name` (one the host granted this
    interpreter) with `data` (bytes-like or str) and returns a View of its
    result. HostError when it fails, or when it was not granted (the same
    either way for a name the host does not have)."""
    return _si.host_call(str(name), data)


# ---- calls from the host ------------------------------------------------------


def _call(name, handle, json_mode):
    """Interpreter::call from the host: calls __main__'s function `name` (or
    "module#function") with the input (a View, borrowed for the call; with
    json_mode, the value its JSON text parses to) and returns the result as
    bytes: str as UTF-8, bytes-like objects as they are, numbers and bools as
    JSON text, None as nothing; with json_mode, any JSON-able value."""
    import __main__
    import importlib
    mod_name, sep, fn = name.rpartition("#")
    owner = importlib.import_module(mod_name) if sep else __main__
    f = getattr(owner, fn, None)
    if not callable(f):
        raise TypeError(f"call: no function {name!r}")
    v = View(handle, True)
    arg = _json.loads(v.tobytes()) if json_mode else v
    r = f(arg)
    if json_mode:
        return _json.dumps(r).encode()
    if r is None:
        return b""
    if isinstance(r, str):
        return r.encode("utf-8", "surrogatepass")
    if isinstance(r, (bytes, bytearray, memoryview, View)):
        return bytes(r)
    if isinstance(r, (bool, int, float)):
        return _json.dumps(r).encode()
    raise TypeError("call: the result must be str, bytes, a number, a bool or None "
                    f"(call_json for other values), not {type(r).__name__}")

