/*
 * module.c — the builtin module `_subinterp`: the subinterp ABI
 * (guest/include/subinterp.h) for Python, with the Handle, View and channel
 * end types and the error classes. The module `interpreters`
 * (guest/python/interpreters.py) is built on it.
 */

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "subinterp.h"
#include "module.h"

/* ---- _subinterp -------------------------------------------------------------
 * The ABI one to one: every function takes and returns the ABI's integers
 * (handles, ids, microseconds, negative SI_ERR_* codes), except that bytes
 * go in as any bytes-like object or str (UTF-8) and come out as bytes, and
 * channel_create returns its two handles as a tuple. On top of it, what
 * only C can do or what must be in C for speed:
 *
 *   Handle(h, borrowed=False)  owns ABI handle `h` and releases it when
 *                              garbage-collected (a borrowed one, an end
 *                              bound by name for a run, is not released by
 *                              the collector); .handle is 0 once released.
 *                              interpreters.RecvChannel, SendChannel and
 *                              Job subclass it
 *   View(h)                    a Handle for a received view: read-only,
 *                              len(v), v[a:b] (a new view, no copy), v[i],
 *                              bytes(v), v.tobytes(), v.decode(), and the
 *                              buffer protocol (memoryview(v) copies the
 *                              view into guest memory while it is exported)
 *   error(code, what, timed=False)
 *                              the exception (not raised) an ABI code
 *                              stands for
 *   the exception classes      ChannelError and its kinds, InterpreterError,
 *                              InterpreterClosedError, ExecutionFailed,
 *                              LimitError (interpreters re-exports them)
 */

static PyObject *ChannelError, *ChannelClosedError, *ChannelEmptyError, *ChannelFullError,
    *ChannelReleasedError, *InterpreterError, *InterpreterClosedError, *ExecutionFailed,
    *LimitError;

/* Raises the exception ABI `code` stands for, as "what: reason"; returns
 * NULL. `timed`: the caller gave a timeout, so "empty" or "full" after
 * waiting reads as a timeout. */
static PyObject *raise_code(int32_t code, const char *what, int timed) {
    PyObject *type = PyExc_RuntimeError;
    const char *msg = NULL;
    switch (code) {
    case SI_ERR_EMPTY:
        type = timed ? PyExc_TimeoutError : ChannelEmptyError;
        msg = timed ? "timed out" : "channel is empty";
        break;
    case SI_ERR_FULL:
        type = timed ? PyExc_TimeoutError : ChannelFullError;
        msg = timed ? "timed out" : "channel is full";
        break;
    case SI_ERR_TIMEOUT: type = PyExc_TimeoutError, msg = "timed out"; break;
    case SI_ERR_CLOSED: type = ChannelClosedError, msg = "channel is closed"; break;
    case SI_ERR_RELEASED:
    case SI_ERR_BAD_HANDLE: type = ChannelReleasedError, msg = "already released"; break;
    case SI_ERR_LIMIT:
        type = LimitError, msg = "limit reached (this interpreter tree's memory, handles or interpreters)";
        break;
    case SI_ERR_TOO_LARGE: type = LimitError, msg = "message larger than the channel allows"; break;
    case SI_ERR_NOT_FOUND: type = InterpreterClosedError, msg = "interpreter is closed or unknown"; break;
    case SI_ERR_WRONG_KIND: type = PyExc_TypeError, msg = "wrong kind of handle"; break;
    case SI_ERR_BOUNDS: type = PyExc_IndexError, msg = "out of bounds"; break;
    case SI_ERR_INVALID: type = PyExc_ValueError, msg = "invalid argument"; break;
    case SI_ERR_BUSY: type = InterpreterError, msg = "interpreter is already running"; break;
    default: break;
    }
    if (msg)
        PyErr_Format(type, "%s: %s", what, msg);
    else
        PyErr_Format(type, "%s: ABI error %d", what, (int)code);
    return NULL;
}

static PyObject *m_error(PyObject *self, PyObject *args) {
    (void)self;
    int code, timed = 0;
    const char *what;
    if (!PyArg_ParseTuple(args, "is|p:error", &code, &what, &timed)) return NULL;
    raise_code(code, what, timed);
    return PyErr_GetRaisedException();
}

/* ---- Handle ---------------------------------------------------------------- */

typedef struct {
    PyObject_HEAD
    int32_t h;    /* ABI handle; 0 once released */
    int borrowed; /* bound by name: not released by the collector */
} HandleObject;

static PyTypeObject HandleType, ViewType;

static PyObject *handle_new(PyTypeObject *type, PyObject *args, PyObject *kw) {
    static char *names[] = {"handle", "borrowed", NULL};
    int h, borrowed = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "i|p:Handle", names, &h, &borrowed)) return NULL;
    if (h <= 0) {
        PyErr_SetString(PyExc_ValueError, "Handle: a handle is a positive int");
        return NULL;
    }
    HandleObject *self = (HandleObject *)type->tp_alloc(type, 0);
    if (!self) {
        if (!borrowed) si_release(h);
        return NULL;
    }
    self->h = h;
    self->borrowed = borrowed;
    return (PyObject *)self;
}

/* Views freed lately, for the next ones to reuse (a receive loop makes and
 * frees one per message; the list saves an allocation and a free each). */
#define VIEW_FREELIST 8
static PyObject *view_freelist[VIEW_FREELIST];
static int view_free_count;

/* A new object of `type` (Handle or a subtype) owning `h` (unless
 * borrowed); on failure `h` is released (unless borrowed). */
static PyObject *handle_make(PyTypeObject *type, int32_t h, int borrowed) {
    if (type == &ViewType && view_free_count > 0) {
        HandleObject *self = (HandleObject *)PyObject_Init(view_freelist[--view_free_count], type);
        self->h = h;
        self->borrowed = borrowed;
        return (PyObject *)self;
    }
    HandleObject *self = (HandleObject *)type->tp_alloc(type, 0);
    if (!self) {
        if (!borrowed) si_release(h);
        return NULL;
    }
    self->h = h;
    self->borrowed = borrowed;
    return (PyObject *)self;
}

static void handle_dealloc(PyObject *op) {
    HandleObject *self = (HandleObject *)op;
    PyTypeObject *type = Py_TYPE(op);
    /* For a Python subclass, CPython's subtype_dealloc calls this and then
     * drops the instance's reference to its type. */
    if (self->h > 0 && !self->borrowed) si_release(self->h);
    self->h = 0;
    if (type == &ViewType && view_free_count < VIEW_FREELIST) {
        view_freelist[view_free_count++] = op;
        return;
    }
    type->tp_free(op);
}

/* release(): lets go of the handle now (a borrowed end too: the name is then
 * released for the rest of the run). Releasing twice is fine. */
static PyObject *handle_release(PyObject *op, PyObject *unused) {
    (void)unused;
    HandleObject *self = (HandleObject *)op;
    if (self->h > 0) si_release(self->h);
    self->h = 0;
    Py_RETURN_NONE;
}

static PyObject *handle_get(PyObject *op, void *closure) {
    (void)closure;
    return PyLong_FromLong(((HandleObject *)op)->h);
}

static PyObject *handle_borrowed(PyObject *op, void *closure) {
    (void)closure;
    return PyBool_FromLong(((HandleObject *)op)->borrowed);
}

static PyMethodDef handle_methods[] = {
    {"release", handle_release, METH_NOARGS, "Let go of the handle now; releasing twice is fine."},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef handle_getset[] = {
    {"handle", handle_get, NULL, "The ABI handle (0 once released).", NULL},
    {"borrowed", handle_borrowed, NULL, "Bound by name for a run (not released by the collector).", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyTypeObject HandleType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "_subinterp.Handle",
    .tp_basicsize = sizeof(HandleObject),
    .tp_dealloc = handle_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE,
    .tp_doc = "An ABI handle, released when garbage-collected.",
    .tp_methods = handle_methods,
    .tp_getset = handle_getset,
    .tp_new = handle_new,
};

/* ---- View ------------------------------------------------------------------ */

/* The live handle of a view and its length, or -1 with an exception. */
static Py_ssize_t view_length(HandleObject *self, const char *what) {
    int32_t n = si_view_len(self->h);
    if (n < 0) {
        raise_code(self->h > 0 ? n : SI_ERR_RELEASED, what, 0);
        return -1;
    }
    return n;
}

/* Reads [off, off+n) of the view into a fresh bytes object. */
static PyObject *view_bytes_range(HandleObject *self, Py_ssize_t off, Py_ssize_t n, const char *what) {
    PyObject *b = PyBytes_FromStringAndSize(NULL, n);
    if (!b || n == 0) return b;
    int32_t got = si_view_read(self->h, (uint32_t)off, PyBytes_AS_STRING(b), (uint32_t)n);
    if (got < 0) {
        Py_DECREF(b);
        return raise_code(got, what, 0);
    }
    if (got != n && _PyBytes_Resize(&b, got) < 0) return NULL;
    return b;
}

static PyObject *view_tobytes(PyObject *op, PyObject *unused) {
    (void)unused;
    HandleObject *self = (HandleObject *)op;
    Py_ssize_t n = view_length(self, "View.tobytes");
    return n < 0 ? NULL : view_bytes_range(self, 0, n, "View.tobytes");
}

static PyObject *view_decode(PyObject *op, PyObject *args, PyObject *kw) {
    static char *names[] = {"encoding", "errors", NULL};
    const char *encoding = "utf-8", *errors = "strict";
    if (!PyArg_ParseTupleAndKeywords(args, kw, "|ss:decode", names, &encoding, &errors)) return NULL;
    HandleObject *self = (HandleObject *)op;
    Py_ssize_t n = view_length(self, "View.decode");
    if (n < 0) return NULL;
    char *buf = PyMem_Malloc(n ? (size_t)n : 1);
    if (!buf) return PyErr_NoMemory();
    int32_t got = n ? si_view_read(self->h, 0, buf, (uint32_t)n) : 0;
    PyObject *s = got < 0 ? raise_code(got, "View.decode", 0) : PyUnicode_Decode(buf, got, encoding, errors);
    PyMem_Free(buf);
    return s;
}

static Py_ssize_t view_len(PyObject *op) { return view_length((HandleObject *)op, "len(View)"); }

/* v[i]: one byte as an int; v[a:b]: a new view of those bytes (no copy). */
static PyObject *view_subscript(PyObject *op, PyObject *key) {
    HandleObject *self = (HandleObject *)op;
    Py_ssize_t n = view_length(self, "View[]");
    if (n < 0) return NULL;
    if (PySlice_Check(key)) {
        Py_ssize_t start, stop, step;
        if (PySlice_Unpack(key, &start, &stop, &step) < 0) return NULL;
        Py_ssize_t len = PySlice_AdjustIndices(n, &start, &stop, step);
        if (step != 1) {
            PyErr_SetString(PyExc_ValueError, "View: slices with a step are not views (use bytes(v)[a:b:c])");
            return NULL;
        }
        int32_t h = si_view_slice(self->h, (uint32_t)start, (uint32_t)len);
        if (h < 0) return raise_code(h, "View[a:b]", 0);
        return handle_make(&ViewType, h, 0);
    }
    Py_ssize_t i = PyNumber_AsSsize_t(key, PyExc_IndexError);
    if (i == -1 && PyErr_Occurred()) return NULL;
    if (i < 0) i += n;
    if (i < 0 || i >= n) {
        PyErr_SetString(PyExc_IndexError, "View index out of range");
        return NULL;
    }
    unsigned char c;
    int32_t got = si_view_read(self->h, (uint32_t)i, &c, 1);
    if (got != 1) return raise_code(got < 0 ? got : SI_ERR_BOUNDS, "View[i]", 0);
    return PyLong_FromLong(c);
}

/* The buffer protocol: a read-only copy of the whole view in guest memory,
 * made for each export and freed when the export ends. */
static int view_getbuffer(PyObject *op, Py_buffer *view, int flags) {
    HandleObject *self = (HandleObject *)op;
    if (flags & PyBUF_WRITABLE) {
        PyErr_SetString(PyExc_BufferError, "View is read-only");
        view->obj = NULL;
        return -1;
    }
    Py_ssize_t n = view_length(self, "View buffer");
    if (n < 0) {
        view->obj = NULL;
        return -1;
    }
    char *buf = PyMem_Malloc(n ? (size_t)n : 1);
    if (!buf) {
        PyErr_NoMemory();
        view->obj = NULL;
        return -1;
    }
    int32_t got = n ? si_view_read(self->h, 0, buf, (uint32_t)n) : 0;
    if (got < 0) {
        PyMem_Free(buf);
        raise_code(got, "View buffer", 0);
        view->obj = NULL;
        return -1;
    }
    if (PyBuffer_FillInfo(view, op, buf, got, 1, flags) < 0) {
        PyMem_Free(buf);
        return -1;
    }
    view->internal = buf;
    return 0;
}

static void view_releasebuffer(PyObject *op, Py_buffer *view) {
    (void)op;
    PyMem_Free(view->internal);
    view->internal = NULL;
}

static PyObject *view_repr(PyObject *op) {
    HandleObject *self = (HandleObject *)op;
    if (self->h <= 0) return PyUnicode_FromString("<View released>");
    int32_t n = si_view_len(self->h);
    return PyUnicode_FromFormat("<View %d bytes>", (int)n);
}

static PyMethodDef view_methods[] = {
    {"tobytes", view_tobytes, METH_NOARGS, "A bytes copy of the whole view."},
    {"__bytes__", view_tobytes, METH_NOARGS, "A bytes copy of the whole view."},
    {"decode", (PyCFunction)(void (*)(void))view_decode, METH_VARARGS | METH_KEYWORDS,
     "The view decoded (UTF-8 by default), as bytes.decode."},
    {NULL, NULL, 0, NULL},
};

static PyMappingMethods view_mapping = {.mp_length = view_len, .mp_subscript = view_subscript};
static PySequenceMethods view_sequence = {.sq_length = view_len};
static PyBufferProcs view_buffer = {.bf_getbuffer = view_getbuffer, .bf_releasebuffer = view_releasebuffer};

static PyTypeObject ViewType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "interpreters.View",
    .tp_basicsize = sizeof(HandleObject),
    .tp_dealloc = handle_dealloc,
    .tp_repr = view_repr,
    .tp_as_sequence = &view_sequence,
    .tp_as_mapping = &view_mapping,
    .tp_as_buffer = &view_buffer,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "A read-only view of a received buffer; bytes are copied in only when read.",
    .tp_methods = view_methods,
    .tp_base = &HandleType,
    .tp_new = handle_new,
};

/* ---- the ABI, one to one --------------------------------------------------- */

/* Bytes to send: a str as UTF-8, or any bytes-like object. */
typedef struct {
    Py_buffer buf;
    const char *p;
    Py_ssize_t len;
    int has_buf;
} Data;

static int get_data(PyObject *obj, Data *d) {
    d->has_buf = 0;
    if (PyBytes_CheckExact(obj)) { /* the common case, without a buffer export */
        d->p = PyBytes_AS_STRING(obj);
        d->len = PyBytes_GET_SIZE(obj);
        return 0;
    }
    if (PyUnicode_Check(obj)) {
        d->p = PyUnicode_AsUTF8AndSize(obj, &d->len);
        return d->p ? 0 : -1;
    }
    if (PyObject_GetBuffer(obj, &d->buf, PyBUF_SIMPLE) < 0) {
        PyErr_Format(PyExc_TypeError, "send: a bytes-like object or str is required, not '%.100s'",
                     Py_TYPE(obj)->tp_name);
        return -1;
    }
    d->has_buf = 1;
    d->p = d->buf.buf ? d->buf.buf : "";
    d->len = d->buf.len;
    return 0;
}

static void put_data(Data *d) {
    if (d->has_buf) PyBuffer_Release(&d->buf);
}

static int too_long(Py_ssize_t len, const char *what) {
    if (len > INT32_MAX) {
        PyErr_Format(PyExc_OverflowError, "%s: larger than 2 GiB - 1", what);
        return 1;
    }
    return 0;
}

static PyObject *m_lookup(PyObject *self, PyObject *args) {
    (void)self;
    const char *s;
    Py_ssize_t len;
    if (!PyArg_ParseTuple(args, "s#:lookup", &s, &len)) return NULL;
    return PyLong_FromLong(si_lookup(s, (uint32_t)len));
}

static PyObject *m_send(PyObject *self, PyObject *args) {
    (void)self;
    int end;
    PyObject *obj;
    long long timeout = SI_BLOCK;
    if (!PyArg_ParseTuple(args, "iO|L:send", &end, &obj, &timeout)) return NULL;
    Data d;
    if (get_data(obj, &d) < 0) return NULL;
    if (too_long(d.len, "send")) {
        put_data(&d);
        return NULL;
    }
    int32_t r = si_send(end, d.p, (uint32_t)d.len, timeout);
    put_data(&d);
    return PyLong_FromLong(r);
}

static PyObject *m_send_handle(PyObject *self, PyObject *args) {
    (void)self;
    int end, h;
    long long timeout = SI_BLOCK;
    if (!PyArg_ParseTuple(args, "ii|L:send_handle", &end, &h, &timeout)) return NULL;
    return PyLong_FromLong(si_send_handle(end, h, timeout));
}

static PyObject *m_recv(PyObject *self, PyObject *args) {
    (void)self;
    int end;
    long long timeout = SI_BLOCK;
    if (!PyArg_ParseTuple(args, "i|L:recv", &end, &timeout)) return NULL;
    return PyLong_FromLong(si_recv(end, timeout));
}

static PyObject *m_recv_kind(PyObject *self, PyObject *args) {
    (void)self;
    int end;
    long long timeout = SI_BLOCK;
    if (!PyArg_ParseTuple(args, "i|L:recv_kind", &end, &timeout)) return NULL;
    return PyLong_FromLongLong(si_recv_kind(end, timeout));
}

/* One int argument, an int32 result. */
#define INT_CALL(pyname, call)                                        \
    static PyObject *m_##pyname(PyObject *self, PyObject *arg) {      \
        (void)self;                                                   \
        int h = PyLong_AsInt(arg);                                    \
        if (h == -1 && PyErr_Occurred()) return NULL;                 \
        return PyLong_FromLong(call(h));                              \
    }
INT_CALL(handle_kind, si_handle_kind)
INT_CALL(view_len, si_view_len)
INT_CALL(release, si_release)
INT_CALL(close, si_close)
INT_CALL(channel_len, si_channel_len)

/* One int64 (an interpreter id) argument, an int32 result. */
#define ID_CALL(pyname, call)                                         \
    static PyObject *m_##pyname(PyObject *self, PyObject *arg) {      \
        (void)self;                                                   \
        long long id = PyLong_AsLongLong(arg);                        \
        if (id == -1 && PyErr_Occurred()) return NULL;                \
        return PyLong_FromLong(call(id));                             \
    }
ID_CALL(interp_close, si_interp_close)
ID_CALL(interp_status, si_interp_status)

/* view_read(view, offset=0, length=-1): a fresh bytes of up to `length`
 * bytes from `offset` (-1: to the end), or an error code. */
static PyObject *m_view_read(PyObject *self, PyObject *args) {
    (void)self;
    int h;
    unsigned int off = 0;
    long long len = -1;
    if (!PyArg_ParseTuple(args, "i|IL:view_read", &h, &off, &len)) return NULL;
    if (len < 0) {
        int32_t n = si_view_len(h);
        if (n < 0) return PyLong_FromLong(n);
        len = (long long)n - off;
        if (len < 0) return PyLong_FromLong(SI_ERR_BOUNDS);
    }
    if (len > INT32_MAX) len = INT32_MAX;
    PyObject *b = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)len);
    if (!b) return NULL;
    int32_t got = si_view_read(h, off, PyBytes_AS_STRING(b), (uint32_t)len);
    if (got < 0) {
        Py_DECREF(b);
        return PyLong_FromLong(got);
    }
    if (got != len && _PyBytes_Resize(&b, got) < 0) return NULL;
    return b;
}

static PyObject *m_view_slice(PyObject *self, PyObject *args) {
    (void)self;
    int h;
    unsigned int off, len;
    if (!PyArg_ParseTuple(args, "iII:view_slice", &h, &off, &len)) return NULL;
    return PyLong_FromLong(si_view_slice(h, off, len));
}

/* channel_create(capacity): (recv_handle, send_handle) or an error code. */
static PyObject *m_channel_create(PyObject *self, PyObject *arg) {
    (void)self;
    int cap = PyLong_AsInt(arg);
    if (cap == -1 && PyErr_Occurred()) return NULL;
    int32_t out[2];
    int32_t r = si_channel_create(cap, out);
    if (r < 0) return PyLong_FromLong(r);
    PyObject *t = Py_BuildValue("(ii)", out[0], out[1]);
    if (!t) {
        si_release(out[0]);
        si_release(out[1]);
    }
    return t;
}

static PyObject *m_interp_create(PyObject *self, PyObject *args) {
    (void)self;
    const char *s;
    Py_ssize_t len;
    if (!PyArg_ParseTuple(args, "s#:interp_create", &s, &len)) return NULL;
    return PyLong_FromLongLong(si_interp_create(s, (uint32_t)len));
}

/* interp_run / interp_start(id, source, bindings_json): a created handle
 * (the result view, or the job) or an error code. */
static PyObject *run_or_start(PyObject *args, int start) {
    long long id;
    const char *src, *bind;
    Py_ssize_t src_len, bind_len;
    if (!PyArg_ParseTuple(args, start ? "Ls#s#:interp_start" : "Ls#s#:interp_run", &id, &src,
                          &src_len, &bind, &bind_len))
        return NULL;
    if (too_long(src_len, "source")) return NULL;
    int32_t r = start ? si_interp_start(id, src, (uint32_t)src_len, bind, (uint32_t)bind_len)
                      : si_interp_run(id, src, (uint32_t)src_len, bind, (uint32_t)bind_len);
    return PyLong_FromLong(r);
}

static PyObject *m_interp_run(PyObject *self, PyObject *args) {
    (void)self;
    return run_or_start(args, 0);
}

static PyObject *m_interp_start(PyObject *self, PyObject *args) {
    (void)self;
    return run_or_start(args, 1);
}

static PyObject *m_interp_join(PyObject *self, PyObject *args) {
    (void)self;
    int job;
    long long timeout = SI_BLOCK;
    if (!PyArg_ParseTuple(args, "i|L:interp_join", &job, &timeout)) return NULL;
    return PyLong_FromLong(si_interp_join(job, timeout));
}

static PyObject *m_interp_list(PyObject *self, PyObject *unused) {
    (void)self;
    (void)unused;
    return PyLong_FromLong(si_interp_list());
}

static PyObject *m_bound_names(PyObject *self, PyObject *unused) {
    (void)self;
    (void)unused;
    return PyLong_FromLong(si_bound_names());
}

static PyObject *m_interpreter_id(PyObject *self, PyObject *unused) {
    (void)self;
    (void)unused;
    return PyLong_FromLongLong(si_interpreter_id());
}

static PyObject *m_main_id(PyObject *self, PyObject *unused) {
    (void)self;
    (void)unused;
    return PyLong_FromLongLong(si_main_id());
}

/* ---- channel ends ------------------------------------------------------------
 * RecvChannel and SendChannel are Handles whose methods are here in C: a
 * message is one ABI call to send and two to receive (recv_kind, and the
 * view's release), with no Python frame in between. */

static PyTypeObject RecvChannelType, SendChannelType;

/* A timeout in seconds (NULL or None: block) as the ABI's microseconds. */
static int timeout_micros(PyObject *timeout, const char *what, long long *out) {
    if (!timeout || timeout == Py_None) {
        *out = SI_BLOCK;
        return 0;
    }
    double t = PyFloat_AsDouble(timeout);
    if (t == -1.0 && PyErr_Occurred()) {
        PyErr_Format(PyExc_TypeError, "%s: timeout must be a number of seconds or None", what);
        return -1;
    }
    if (!(t >= 0)) {
        PyErr_Format(PyExc_ValueError, "%s: timeout must be >= 0", what);
        return -1;
    }
    double us = t * 1e6;
    *out = us >= 9.2e18 ? INT64_MAX : (long long)us;
    return 0;
}

/* Handle `h` of kind `kind` (SI_KIND_*) as the object of its kind: a View,
 * a RecvChannel or a SendChannel. */
static PyObject *wrap_kind(int32_t h, int32_t kind, int borrowed) {
    PyTypeObject *type = kind == SI_KIND_VIEW   ? &ViewType
                         : kind == SI_KIND_RECV ? &RecvChannelType
                         : kind == SI_KIND_SEND ? &SendChannelType
                                                : NULL;
    if (!type) {
        if (!borrowed) si_release(h);
        PyErr_Format(ChannelError, "received a handle of unknown kind %d", (int)kind);
        return NULL;
    }
    return handle_make(type, h, borrowed);
}

/* A looked-up handle as the object of its kind (see wrap_kind). */
static PyObject *wrap_handle(int32_t h, int borrowed) { return wrap_kind(h, si_handle_kind(h), borrowed); }

/* The object for a successful si_recv_kind result `r`. */
static PyObject *wrap_received(int64_t r) {
    int32_t kind;
    int32_t h = si_recv_split(r, &kind);
    return wrap_kind(h, kind, 0);
}

/* Optional arguments `names` (positional or by keyword) of a fastcall
 * method after `required` positional ones, into `out` (NULL where not
 * given). */
static int parse_args(PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames, Py_ssize_t required,
                      const char *const *names, Py_ssize_t nnames, PyObject **out, const char *what) {
    for (Py_ssize_t i = 0; i < nnames; i++) out[i] = NULL;
    if (nargs < required || nargs > required + nnames) {
        PyErr_Format(PyExc_TypeError, "%s() takes %zd to %zd positional arguments (%zd given)", what,
                     required, required + nnames, nargs);
        return -1;
    }
    for (Py_ssize_t i = required; i < nargs; i++) out[i - required] = args[i];
    Py_ssize_t nkw = kwnames ? PyTuple_GET_SIZE(kwnames) : 0;
    for (Py_ssize_t k = 0; k < nkw; k++) {
        PyObject *key = PyTuple_GET_ITEM(kwnames, k);
        Py_ssize_t i = 0;
        while (i < nnames && !PyUnicode_EqualToUTF8(key, names[i])) i++;
        if (i == nnames) {
            PyErr_Format(PyExc_TypeError, "%s() got an unexpected keyword argument '%U'", what, key);
            return -1;
        }
        if (out[i]) {
            PyErr_Format(PyExc_TypeError, "%s() got multiple values for argument '%s'", what, names[i]);
            return -1;
        }
        out[i] = args[nargs + k];
    }
    return 0;
}

static const char *const timeout_name[] = {"timeout"};

static PyObject *recv_recv(PyObject *op, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames) {
    PyObject *timeout;
    long long t;
    if (parse_args(args, nargs, kwnames, 0, timeout_name, 1, &timeout, "recv") < 0 ||
        timeout_micros(timeout, "recv", &t) < 0)
        return NULL;
    int64_t r = si_recv_kind(((HandleObject *)op)->h, t);
    return r < 0 ? raise_code((int32_t)r, "recv", t > 0) : wrap_received(r);
}

static PyObject *recv_recv_nowait(PyObject *op, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames) {
    static const char *const names[] = {"default"};
    PyObject *dflt;
    if (parse_args(args, nargs, kwnames, 0, names, 1, &dflt, "recv_nowait") < 0) return NULL;
    int64_t r = si_recv_kind(((HandleObject *)op)->h, SI_NOWAIT);
    if (r > 0) return wrap_received(r);
    if (r == SI_ERR_EMPTY && dflt) return Py_NewRef(dflt);
    return raise_code((int32_t)r, "recv_nowait", 0);
}

/* Sends `obj` on `end`: a Handle (view or channel end) without a copy,
 * else bytes-like data or a str (UTF-8), copied once. */
static PyObject *send_obj(PyObject *end, PyObject *obj, long long t, const char *what) {
    int32_t r;
    if (PyObject_TypeCheck(obj, &HandleType)) {
        int32_t h = ((HandleObject *)obj)->h;
        if (h <= 0)
            return PyErr_Format(ChannelReleasedError, "%s: the %s was released", what, Py_TYPE(obj)->tp_name);
        r = si_send_handle(((HandleObject *)end)->h, h, t);
    } else {
        Data d;
        if (get_data(obj, &d) < 0) return NULL;
        if (too_long(d.len, what)) {
            put_data(&d);
            return NULL;
        }
        r = si_send(((HandleObject *)end)->h, d.p, (uint32_t)d.len, t);
        put_data(&d);
    }
    if (r < 0) return raise_code(r, what, t > 0);
    Py_RETURN_NONE;
}

static PyObject *send_send(PyObject *op, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames) {
    PyObject *timeout;
    long long t;
    if (parse_args(args, nargs, kwnames, 1, timeout_name, 1, &timeout, "send") < 0 ||
        timeout_micros(timeout, "send", &t) < 0)
        return NULL;
    return send_obj(op, args[0], t, "send");
}

static PyObject *send_send_nowait(PyObject *op, PyObject *obj) { return send_obj(op, obj, SI_NOWAIT, "send_nowait"); }

static PyObject *send_close(PyObject *op, PyObject *unused) {
    (void)unused;
    int32_t r = si_close(((HandleObject *)op)->h);
    if (r < 0) return raise_code(r, "close", 0);
    Py_RETURN_NONE;
}

static PyObject *end_repr(PyObject *op) {
    return PyUnicode_FromFormat("<%s handle=%d>", _PyType_Name(Py_TYPE(op)), (int)((HandleObject *)op)->h);
}

#define FASTCALL_KW(f) (PyCFunction)(void (*)(void))(f), METH_FASTCALL | METH_KEYWORDS

static PyMethodDef recv_methods[] = {
    {"recv", FASTCALL_KW(recv_recv),
     "recv(timeout=None): the next message (a View, or a channel end that was sent), waiting for one; "
     "with a timeout (seconds), TimeoutError when none came."},
    {"recv_nowait", FASTCALL_KW(recv_recv_nowait),
     "recv_nowait(default): the next message if one is queued; else default, or ChannelEmptyError "
     "without one."},
    {NULL, NULL, 0, NULL},
};

static PyMethodDef send_methods[] = {
    {"send", FASTCALL_KW(send_send),
     "send(obj, timeout=None): sends bytes-like data or a str (UTF-8), copied once; a View or a channel "
     "end is forwarded without a copy. Waits while the channel is full; with a timeout (seconds), "
     "TimeoutError when there was no room."},
    {"send_nowait", send_send_nowait, METH_O, "send_nowait(obj): sends without waiting: ChannelFullError when there is no room."},
    {"close", send_close, METH_NOARGS,
     "close(): closes the channel for every sender: queued messages can still be received, then "
     "receivers get ChannelClosedError."},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject RecvChannelType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "interpreters.RecvChannel",
    .tp_basicsize = sizeof(HandleObject),
    .tp_dealloc = handle_dealloc,
    .tp_repr = end_repr,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "The receiving end of a channel. Released when garbage-collected.",
    .tp_methods = recv_methods,
    .tp_base = &HandleType,
    .tp_new = handle_new,
};

static PyTypeObject SendChannelType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "interpreters.SendChannel",
    .tp_basicsize = sizeof(HandleObject),
    .tp_dealloc = handle_dealloc,
    .tp_repr = end_repr,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "The sending end of a channel. Released when garbage-collected.",
    .tp_methods = send_methods,
    .tp_base = &HandleType,
    .tp_new = handle_new,
};

/* host_call(name, data): a View of the result of the host function `name`
 * (granted to this interpreter) called with `data` (bytes-like or str). A
 * failure of the function, or a name not granted, raises HostError. */
static PyObject *HostError;

static PyObject *m_host_call(PyObject *self, PyObject *args) {
    (void)self;
    const char *name;
    Py_ssize_t name_len;
    PyObject *obj;
    if (!PyArg_ParseTuple(args, "s#O:host_call", &name, &name_len, &obj)) return NULL;
    Data d;
    if (get_data(obj, &d) < 0) return NULL;
    if (too_long(d.len, "host_call")) {
        put_data(&d);
        return NULL;
    }
    int32_t err = 0;
    int32_t r = si_host_call(name, (uint32_t)name_len, d.p, (uint32_t)d.len, &err);
    put_data(&d);
    if (r > 0) return handle_make(&ViewType, r, 0);
    if (r == SI_ERR_HOST) {
        PyObject *msg = handle_make(&ViewType, err, 0);
        PyObject *text = msg ? view_bytes_range((HandleObject *)msg, 0, si_view_len(err), "host_call") : NULL;
        Py_XDECREF(msg);
        if (!text) return NULL;
        PyErr_Format(HostError, "host_call(%R): %s", PyTuple_GET_ITEM(args, 0), PyBytes_AS_STRING(text));
        Py_DECREF(text);
        return NULL;
    }
    if (r == SI_ERR_NOT_FOUND)
        return PyErr_Format(HostError, "host_call: no host function %R is granted", PyTuple_GET_ITEM(args, 0));
    return raise_code(r, "host_call", 0);
}

/* wrap(h, borrowed=False): the object of h's kind (see wrap_handle). */
static PyObject *m_wrap(PyObject *self, PyObject *args) {
    (void)self;
    int h, borrowed = 0;
    if (!PyArg_ParseTuple(args, "i|p:wrap", &h, &borrowed)) return NULL;
    return wrap_handle(h, borrowed);
}

/* micros(timeout, what): seconds (None: block) as the ABI's microseconds. */
static PyObject *m_micros(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *timeout;
    const char *what;
    long long t;
    if (!PyArg_ParseTuple(args, "Os:micros", &timeout, &what) || timeout_micros(timeout, what, &t) < 0)
        return NULL;
    return PyLong_FromLongLong(t);
}

#define VARARGS(f) (PyCFunction)(void (*)(void))(f), METH_VARARGS
static PyMethodDef subinterp_methods[] = {
    {"lookup", VARARGS(m_lookup), "lookup(name) -> the end bound to name for this run (borrowed), or a code."},
    {"send", VARARGS(m_send), "send(end, data, timeout_us=-1) -> 0 or a code; data: bytes-like or str (UTF-8)."},
    {"send_handle", VARARGS(m_send_handle), "send_handle(end, handle, timeout_us=-1) -> 0 or a code; no copy."},
    {"recv", VARARGS(m_recv), "recv(end, timeout_us=-1) -> a created handle or a code."},
    {"recv_kind", VARARGS(m_recv_kind),
     "recv_kind(end, timeout_us=-1) -> (kind << 32) | a created handle, or a code."},
    {"handle_kind", m_handle_kind, METH_O, "handle_kind(h) -> 1 view, 2 recv, 3 send, 4 job, or a code."},
    {"view_len", m_view_len, METH_O, "view_len(view) -> its length or a code."},
    {"view_read", VARARGS(m_view_read), "view_read(view, offset=0, length=-1) -> bytes or a code."},
    {"view_slice", VARARGS(m_view_slice), "view_slice(view, offset, length) -> a created view or a code."},
    {"release", m_release, METH_O, "release(h) -> 0 or a code."},
    {"close", m_close, METH_O, "close(send_end) -> 0 or a code."},
    {"channel_len", m_channel_len, METH_O, "channel_len(end) -> messages queued now, or a code."},
    {"channel_create", m_channel_create, METH_O, "channel_create(capacity) -> (recv, send) or a code."},
    {"interp_create", VARARGS(m_interp_create), "interp_create(opts_json) -> id or a code."},
    {"interp_run", VARARGS(m_interp_run), "interp_run(id, source, bindings_json) -> a result view or a code."},
    {"interp_start", VARARGS(m_interp_start), "interp_start(id, source, bindings_json) -> a job or a code."},
    {"interp_join", VARARGS(m_interp_join), "interp_join(job, timeout_us=-1) -> a result view or a code."},
    {"interp_close", m_interp_close, METH_O, "interp_close(id) -> 0 or a code."},
    {"interp_status", m_interp_status, METH_O, "interp_status(id) -> 0 idle, 1 running, or a code."},
    {"interp_list", m_interp_list, METH_NOARGS, "interp_list() -> a view of a JSON list of ids, or a code."},
    {"interpreter_id", m_interpreter_id, METH_NOARGS, "This interpreter's id (the host is 0)."},
    {"main_id", m_main_id, METH_NOARGS, "The main interpreter's id: the host, 0."},
    {"bound_names", m_bound_names, METH_NOARGS, "bound_names() -> a view of a JSON list of names, or a code."},
    {"host_call", VARARGS(m_host_call), "host_call(name, data) -> a View of the host function's result."},
    {"wrap", VARARGS(m_wrap), "wrap(h, borrowed=False) -> a View, RecvChannel or SendChannel for h."},
    {"micros", VARARGS(m_micros), "micros(timeout, what) -> seconds (None: block) as the ABI's microseconds."},
    {"error", VARARGS(m_error), "error(code, what, timed=False) -> the exception for an ABI code."},
    {NULL, NULL, 0, NULL},
};

static int add_error(PyObject *m, PyObject **slot, const char *name, PyObject *base, const char *doc) {
    char full[64];
    snprintf(full, sizeof full, "interpreters.%s", name);
    *slot = PyErr_NewExceptionWithDoc(full, doc, base, NULL);
    return *slot ? PyModule_AddObjectRef(m, name, *slot) : -1;
}

static int subinterp_exec(PyObject *m) {
    if (PyType_Ready(&HandleType) < 0 || PyType_Ready(&ViewType) < 0 || PyType_Ready(&RecvChannelType) < 0 ||
        PyType_Ready(&SendChannelType) < 0)
        return -1;
    if (PyModule_AddObjectRef(m, "Handle", (PyObject *)&HandleType) < 0 ||
        PyModule_AddObjectRef(m, "View", (PyObject *)&ViewType) < 0 ||
        PyModule_AddObjectRef(m, "RecvChannel", (PyObject *)&RecvChannelType) < 0 ||
        PyModule_AddObjectRef(m, "SendChannel", (PyObject *)&SendChannelType) < 0)
        return -1;
    if (add_error(m, &ChannelError, "ChannelError", NULL, "A channel operation failed.") < 0 ||
        add_error(m, &ChannelClosedError, "ChannelClosedError", ChannelError,
                  "The channel is closed (and drained), or its other side is gone.") < 0 ||
        add_error(m, &ChannelEmptyError, "ChannelEmptyError", ChannelError, "Nothing to receive.") < 0 ||
        add_error(m, &ChannelFullError, "ChannelFullError", ChannelError, "No room to send.") < 0 ||
        add_error(m, &ChannelReleasedError, "ChannelReleasedError", ChannelClosedError,
                  "This end (or view) was released.") < 0 ||
        add_error(m, &InterpreterError, "InterpreterError", NULL, "An operation on an interpreter failed.") < 0 ||
        add_error(m, &InterpreterClosedError, "InterpreterClosedError", InterpreterError,
                  "The interpreter is closed, or not one this interpreter created.") < 0 ||
        add_error(m, &ExecutionFailed, "ExecutionFailed", InterpreterError,
                  "Source run in another interpreter raised an uncaught exception.") < 0 ||
        add_error(m, &HostError, "HostError", NULL,
                  "A host function failed, or is not granted to this interpreter.") < 0 ||
        add_error(m, &LimitError, "LimitError", NULL,
                  "A limit of this interpreter's tree: memory, handles, interpreters, depth.") < 0)
        return -1;
    static const struct { const char *name; int value; } ints[] = {
        {"OK", SI_OK}, {"ERR_BAD_HANDLE", SI_ERR_BAD_HANDLE}, {"ERR_WRONG_KIND", SI_ERR_WRONG_KIND},
        {"ERR_BOUNDS", SI_ERR_BOUNDS}, {"ERR_EMPTY", SI_ERR_EMPTY}, {"ERR_FULL", SI_ERR_FULL},
        {"ERR_CLOSED", SI_ERR_CLOSED}, {"ERR_TIMEOUT", SI_ERR_TIMEOUT}, {"ERR_NOT_FOUND", SI_ERR_NOT_FOUND},
        {"ERR_LIMIT", SI_ERR_LIMIT}, {"ERR_INVALID", SI_ERR_INVALID}, {"ERR_TOO_LARGE", SI_ERR_TOO_LARGE},
        {"ERR_RELEASED", SI_ERR_RELEASED}, {"ERR_BUSY", SI_ERR_BUSY}, {"ERR_HOST", SI_ERR_HOST},
        {"ERR_DENIED", SI_ERR_DENIED}, {"BLOCK", (int)SI_BLOCK}, {"NOWAIT", (int)SI_NOWAIT},
        {"KIND_VIEW", SI_KIND_VIEW}, {"KIND_RECV", SI_KIND_RECV}, {"KIND_SEND", SI_KIND_SEND},
        {"KIND_JOB", SI_KIND_JOB},
    };
    for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++)
        if (PyModule_AddIntConstant(m, ints[i].name, ints[i].value) < 0) return -1;
    return 0;
}

static PyModuleDef_Slot subinterp_slots[] = {
    {Py_mod_exec, subinterp_exec},
    {0, NULL},
};

static struct PyModuleDef subinterp_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "_subinterp",
    .m_doc = "The subinterp guest ABI (subinterp_v1), one to one; the interpreters module is built on it.",
    .m_size = 0,
    .m_methods = subinterp_methods,
    .m_slots = subinterp_slots,
};

PyObject *si_py_module_init(void) { return PyModuleDef_Init(&subinterp_module); }

