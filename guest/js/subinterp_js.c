/*
 * subinterp_js.c — the JavaScript guest: QuickJS-ng (compiled to wasm32-wasi)
 * with a small native object `__si` that binds the subinterp ABI
 * (guest/include/subinterp.h) to JS. The JS-facing API (`interpreters`,
 * `channels`, the error classes, `console`) is written in JS in prelude.js,
 * which wraps these natives; this file only crosses the ABI.
 *
 * Exports, called by the host:
 *   si_js_init(memory_limit)   create the runtime and context, evaluate the
 *                              prelude; 0 on success (si_js_setup, then
 *                              si_js_configure)
 *   si_js_setup()              the first half: runtime, context, prelude.
 *                              The host runs it once and snapshots the
 *                              resulting memory, so new interpreters start
 *                              from a ready heap
 *   si_js_configure(memory_limit)
 *                              the second half, per interpreter: the heap
 *                              limit, and a fresh random seed and time origin
 *   si_js_alloc(len)           a buffer of len+1 bytes for the next source
 *   si_js_eval(ptr, len)       evaluate that source as a global script, run
 *                              promise jobs to completion; 0 when it completed,
 *                              1 when it threw (the error was reported to the
 *                              host with subinterp_v1.run_error as JSON)
 *   si_js_eval_module(ptr, len, name_ptr, name_len)
 *                              the same for an ES module named `name` (both
 *                              buffers from si_js_alloc); it may import
 *                              modules evaluated earlier in this interpreter
 *                              by their names, and use top-level await
 *
 * Handles: every view or channel end the script holds is a `Handle` object
 * (a native class) whose finalizer releases the ABI handle as soon as the
 * object is unreachable, so scripts that never call release() do not leak
 * handles. Ends bound by name for a run are "borrowed" and never released by
 * the finalizer.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <wasi/api.h>

#include "quickjs.h"
#include "subinterp.h"
#include "js_guest.h"
#include "prelude.h" /* generated from prelude.js: prelude_js[], prelude_js_len */
#include "fs.h"      /* files, module files and the node:* modules */
#include "web.h"     /* the web-standard globals and console (web.c) */

#define EXPORT(name) __attribute__((export_name(name)))

#ifndef JS_STACK_SIZE
#define JS_STACK_SIZE (448 * 1024)
#endif

static JSRuntime *rt;
static JSContext *ctx;
static JSClassID handle_class;
static JSValue unhandled_rejection; /* first unhandled rejection of a run */
bool has_unhandled_rejection;

typedef struct {
    int32_t h;     /* ABI handle; 0 once released */
    bool borrowed; /* bound by name: never released by the finalizer */
} Handle;

/* process.exit(code) asked for: the code, until the exception it threw has
 * unwound the script; -1 otherwise. */
static int32_t exit_requested = -1;

/* process.exitCode as the script last set it (0: none). */
static int32_t exit_code_set = 0;

/* An eval's status for an exit: 0x100 | code (0x100 alone: exit(0)). */
#define SI_JS_EXIT 0x100

/* The helpers the prelude returns to this layer (not on globalThis); and,
 * for Views made in C, View.prototype and the key a View's Handle is kept
 * under. */
static JSValue view_proto = JS_UNDEFINED;
static JSAtom view_key = JS_ATOM_NULL;
static JSValue internals = JS_UNDEFINED;

/* ---- handles ---------------------------------------------------------- */

static void handle_finalizer(JSRuntime *r, JSValueConst val) {
    Handle *p = JS_GetOpaque(val, handle_class);
    if (p) {
        if (p->h > 0 && !p->borrowed) si_release(p->h);
        js_free_rt(r, p);
    }
}

static JSClassDef handle_def = {"Handle", .finalizer = handle_finalizer};

static JSValue new_handle(JSContext *c, int32_t h, bool borrowed) {
    JSValue obj = JS_NewObjectClass(c, (int)handle_class);
    if (JS_IsException(obj)) {
        if (!borrowed) si_release(h);
        return obj;
    }
    Handle *p = js_malloc(c, sizeof *p);
    if (!p) {
        JS_FreeValue(c, obj);
        if (!borrowed) si_release(h);
        return JS_EXCEPTION;
    }
    p->h = h;
    p->borrowed = borrowed;
    JS_SetOpaque(obj, p);
    return obj;
}

/* The ABI handle inside a Handle argument; 0 when released (the ABI then
 * answers SI_ERR_BAD_HANDLE and the prelude maps it to a "released" error). */
static int get_handle(JSContext *c, JSValueConst v, int32_t *out) {
    Handle *p = JS_GetOpaque2(c, v, handle_class);
    if (!p) return -1;
    *out = p->h;
    return 0;
}

static int64_t get_timeout(JSContext *c, JSValueConst v) {
    int64_t t = -1;
    if (!JS_IsUndefined(v) && JS_ToInt64(c, &t, v)) return -1;
    return t;
}

/* Results: an int code, or a new Handle when the ABI returned one. */
static JSValue handle_or_code(JSContext *c, int32_t r) {
    return r > 0 ? new_handle(c, r, false) : JS_NewInt32(c, r);
}

/* ---- bytes going out -------------------------------------------------- */

/* The bytes of a string (as UTF-8) or a Uint8Array argument (the prelude
 * turns every other binary type into a Uint8Array view of the same bytes).
 * Give them back with put_bytes. -1 with an exception pending. */
typedef struct {
    const uint8_t *p;
    size_t len;
    const char *str; /* set when they are a string's */
} Bytes;

static int get_bytes(JSContext *c, JSValueConst v, Bytes *b) {
    b->str = NULL;
    if (JS_IsString(v)) {
        b->str = JS_ToCStringLen(c, &b->len, v);
        b->p = (const uint8_t *)b->str;
        return b->str ? 0 : -1;
    }
    b->p = JS_GetUint8Array(c, &b->len, v);
    if (!b->p && b->len) return -1;
    if (!b->p) b->p = (const uint8_t *)"";
    return 0;
}

static void put_bytes(JSContext *c, Bytes *b) {
    if (b->str) JS_FreeCString(c, b->str);
}

/* Sends a string (as UTF-8) or a Uint8Array. */
static JSValue js_send(JSContext *c, JSValueConst this_val, int argc, JSValueConst *argv) {
    (void)this_val;
    (void)argc;
    int32_t end;
    if (get_handle(c, argv[0], &end)) return JS_EXCEPTION;
    int64_t timeout = get_timeout(c, argv[2]);
    Bytes b;
    if (get_bytes(c, argv[1], &b)) return JS_EXCEPTION;
    int32_t r = si_send(end, b.p, (uint32_t)b.len, timeout);
    put_bytes(c, &b);
    return JS_NewInt32(c, r);
}

static JSValue js_send_handle(JSContext *c, JSValueConst this_val, int argc, JSValueConst *argv) {
    (void)this_val;
    (void)argc;
    int32_t end, h;
    if (get_handle(c, argv[0], &end) || get_handle(c, argv[1], &h)) return JS_EXCEPTION;
    return JS_NewInt32(c, si_send_handle(end, h, get_timeout(c, argv[2])));
}

/* ---- receiving and views ---------------------------------------------- */

static JSValue js_recv(JSContext *c, JSValueConst this_val, int argc, JSValueConst *argv) {
    (void)this_val;
    (void)argc;
    int32_t end;
    if (get_handle(c, argv[0], &end)) return JS_EXCEPTION;
    return handle_or_code(c, si_recv(end, get_timeout(c, argv[1])));
}

static JSValue js_handle_id(JSContext *c, JSValueConst this_val, int argc, JSValueConst *argv) {
    (void)this_val;
    (void)argc;
    int32_t h;
    if (get_handle(c, argv[0], &h)) return JS_EXCEPTION;
    return JS_NewInt32(c, h);
}

static JSValue js_kind(JSContext *c, JSValueConst this_val, int argc, JSValueConst *argv) {
    (void)this_val;
    (void)argc;
    int32_t h;
    if (get_handle(c, argv[0], &h)) return JS_EXCEPTION;
    return JS_NewInt32(c, si_handle_kind(h));
}

static JSValue js_view_len(JSContext *c, JSValueConst this_val, int argc, JSValueConst *argv) {
    (void)this_val;
    (void)argc;
    int32_t h;
    if (get_handle(c, argv[0], &h)) return JS_EXCEPTION;
    return JS_NewInt32(c, si_view_len(h));
}

/* viewRead(view, offset, u8array): one copy, straight into the array. */
static JSValue js_view_read(JSContext *c, JSValueConst this_val, int argc, JSValueConst *argv) {
    (void)this_val;
    (void)argc;
    int32_t h;
    uint32_t off;
    size_t len;
    if (get_handle(c, argv[0], &h) || JS_ToUint32(c, &off, argv[1])) return JS_EXCEPTION;
    uint8_t *dst = JS_GetUint8Array(c, &len, argv[2]);
    if (!dst && len) return JS_EXCEPTION;
    if (!len) return JS_NewInt32(c, 0);
    return JS_NewInt32(c, si_view_read(h, off, dst, (uint32_t)len));
}

/* viewBytes(view): a Uint8Array copy of the whole view (one copy, one
 * call), or an error code as a number. */
static JSValue js_view_bytes(JSContext *c, JSValueConst this_val, int argc, JSValueConst *argv) {
    (void)this_val;
    (void)argc;
    int32_t h;
    size_t len;
    if (get_handle(c, argv[0], &h)) return JS_EXCEPTION;
    int32_t n = si_view_len(h);
    if (n < 0) return JS_NewInt32(c, n);
    JSValue out = JS_NewUint8ArrayCopy(c, NULL, (size_t)n);
    if (JS_IsException(out) || n == 0) return out;
    uint8_t *dst = JS_GetUint8Array(c, &len, out);
    int32_t r = dst ? si_view_read(h, 0, dst, (uint32_t)len) : SI_ERR_BOUNDS;
    if (r == n) return out;
    JS_FreeValue(c, out);
    return JS_NewInt32(c, r < 0 ? r : SI_ERR_BOUNDS);
}

/* View.prototype.bytes as the prelude wrote it: what the native below
 * falls back on for anything but a live view (its errors are the prelude's). */
static JSValue view_bytes_js = JS_UNDEFINED;

/* View.prototype.bytes in C: no JS frames on a call's common path. */
static JSValue view_bytes_native(JSContext *c, JSValueConst this_val, int argc, JSValueConst *argv) {
    JSValue handle = JS_GetProperty(c, this_val, view_key);
    JSValue out = JS_UNDEFINED;
    if (JS_GetOpaque(handle, handle_class)) out = js_view_bytes(c, JS_UNDEFINED, 1, (JSValueConst *)&handle);
    JS_FreeValue(c, handle);
    if (JS_IsObject(out) || JS_IsException(out)) return out;
    return JS_Call(c, view_bytes_js, this_val, argc, argv);
}

/* ---- the message path's methods in C ------------------------------------
 * RecvChannel.prototype.recv, SendChannel.prototype.send and the ends' and
 * views' release, replaced by C functions for their common case (a live
 * end, no options, a view or bytes): no JS frames per message. Anything
 * else goes to the prelude's own method, so behaviour and errors stay its. */

static JSValue new_view(JSValueConst handle);
static JSValue js_release(JSContext *c, JSValueConst this_val, int argc, JSValueConst *argv);
static JSValue recv_js = JS_UNDEFINED, send_js = JS_UNDEFINED, release_js = JS_UNDEFINED;
/* The prelude's wrap(handle) and fail(code, what, timed). */
static JSValue wrap_js = JS_UNDEFINED, fail_js = JS_UNDEFINED;

/* this[H] when it is a Handle (a live wrapper): the Handle, else undefined. */
static JSValue own_handle(JSContext *c, JSValueConst this_val) {
    if (!JS_IsObject(this_val)) return JS_UNDEFINED;
    JSValue h = JS_GetProperty(c, this_val, view_key);
    if (JS_GetOpaque(h, handle_class)) return h;
    JS_FreeValue(c, h);
    return JS_UNDEFINED;
}

static JSValue fail_code(JSContext *c, int32_t code, const char *what) {
    JSValue args[3] = {JS_NewInt32(c, code), JS_NewString(c, what), JS_FALSE};
    JSValue r = JS_Call(c, fail_js, JS_UNDEFINED, 3, (JSValueConst *)args);
    JS_FreeValue(c, args[1]);
    return r;
}

JSValue si_js_recv_message(JSContext *c, int32_t end, int64_t timeout_us, int32_t *code) {
    int64_t rk = si_recv_kind(end, timeout_us);
    if (rk < 0) {
        *code = (int32_t)rk;
        return JS_UNDEFINED;
    }
    int32_t kind, r = si_recv_split(rk, &kind);
    JSValue h = new_handle(c, r, false);
    if (JS_IsException(h) || kind != SI_KIND_VIEW) {
        JSValue w = JS_IsException(h) ? h : JS_Call(c, wrap_js, JS_UNDEFINED, 1, (JSValueConst *)&h);
        JS_FreeValue(c, h);
        return w;
    }
    JSValue view = new_view(h);
    JS_FreeValue(c, h);
    return view;
}

JSValue si_js_own_handle(JSContext *c, JSValueConst obj, int32_t *h) {
    JSValue end = own_handle(c, obj);
    Handle *p = JS_GetOpaque(end, handle_class);
    *h = p ? p->h : 0;
    return end;
}

JSValue si_js_fail(JSContext *c, int32_t code, const char *what, bool timed) {
    JSValue args[3] = {JS_NewInt32(c, code), JS_NewString(c, what), JS_NewBool(c, timed)};
    JSValue r = JS_Call(c, fail_js, JS_UNDEFINED, 3, (JSValueConst *)args);
    JS_FreeValue(c, args[1]);
    return r;
}

static JSValue recv_native(JSContext *c, JSValueConst this_val, int argc, JSValueConst *argv) {
    JSValue end = (argc == 0 || JS_IsUndefined(argv[0])) ? own_handle(c, this_val) : JS_UNDEFINED;
    Handle *p = JS_GetOpaque(end, handle_class);
    if (!p) return JS_Call(c, recv_js, this_val, argc, argv);
    int32_t code = 0;
    JSValue m = si_js_recv_message(c, p->h, -1, &code);
    JS_FreeValue(c, end);
    return JS_IsUndefined(m) ? fail_code(c, code, "recv") : m;
}

static JSValue send_native(JSContext *c, JSValueConst this_val, int argc, JSValueConst *argv) {
    bool plain = argc == 1 || (argc == 2 && JS_IsUndefined(argv[1]));
    bool bytes = plain && (JS_IsString(argv[0]) || JS_GetTypedArrayType(argv[0]) == JS_TYPED_ARRAY_UINT8);
    JSValue end = bytes ? own_handle(c, this_val) : JS_UNDEFINED;
    if (JS_IsUndefined(end)) return JS_Call(c, send_js, this_val, argc, argv);
    JSValue args[3] = {end, argv[0], JS_UNDEFINED};
    JSValue r = js_send(c, JS_UNDEFINED, 3, (JSValueConst *)args);
    JS_FreeValue(c, end);
    int32_t code = 0;
    if (JS_IsException(r) || JS_ToInt32(c, &code, r)) return JS_EXCEPTION;
    return code < 0 ? fail_code(c, code, "send") : JS_UNDEFINED;
}

static JSValue release_native(JSContext *c, JSValueConst this_val, int argc, JSValueConst *argv) {
    JSValue h = own_handle(c, this_val);
    if (JS_IsUndefined(h)) return JS_Call(c, release_js, this_val, argc, argv);
    int ok = JS_SetProperty(c, this_val, view_key, JS_UNDEFINED);
    JSValue r = ok < 0 ? JS_EXCEPTION : js_release(c, JS_UNDEFINED, 1, (JSValueConst *)&h);
    JS_FreeValue(c, h);
    if (JS_IsException(r)) return r;
    JS_FreeValue(c, r);
    return JS_UNDEFINED;
}

/* Objects kept for good so that the shapes of a Handle, of a bare View and
 * of a View holding its Handle always exist: QuickJS frees a shape with the
 * last object that has it, so without these every message would build the
 * shapes again and free them with the View. */
static JSValue pinned[2];

/* A View holding a dead Handle: what new_view copies the shape of. */
static JSValue view_template = JS_UNDEFINED;

static void pin_shapes(void) {
    pinned[0] = JS_NewObjectClass(ctx, (int)handle_class); /* no opaque: a dead Handle */
    pinned[1] = JS_NewObjectProto(ctx, view_proto);
    view_template = JS_NewObjectProto(ctx, view_proto);
    /* An own data property, as `this[H] = h` makes it: the same shape. */
    JS_DefinePropertyValue(ctx, view_template, view_key, JS_DupValue(ctx, pinned[0]), JS_PROP_C_W_E);
}

/* Puts `fn` on `proto` as the method `name`, keeping the prelude's in *old. */
static void native_method(JSValueConst proto, const char *name, JSCFunction *fn, int len, JSValue *old) {
    if (old) *old = JS_GetPropertyStr(ctx, proto, name);
    JS_DefinePropertyValueStr(ctx, proto, name, JS_NewCFunction(ctx, fn, name, len),
                              JS_PROP_WRITABLE | JS_PROP_CONFIGURABLE);
}

/* Installs the methods above (after the prelude ran). */
static void install_natives(void) {
    JSValue ends = JS_GetPropertyStr(ctx, internals, "ends");
    JSValue recv_proto = JS_GetPropertyStr(ctx, ends, "recv");
    JSValue send_proto = JS_GetPropertyStr(ctx, ends, "send");
    wrap_js = JS_GetPropertyStr(ctx, ends, "wrap");
    fail_js = JS_GetPropertyStr(ctx, ends, "fail");
    native_method(recv_proto, "recv", recv_native, 1, &recv_js);
    native_method(send_proto, "send", send_native, 2, &send_js);
    /* One release for the three: the prelude's is the same function too. */
    native_method(view_proto, "release", release_native, 0, &release_js);
    JSValue rel = JS_GetPropertyStr(ctx, view_proto, "release");
    JS_DefinePropertyValueStr(ctx, recv_proto, "release", JS_DupValue(ctx, rel), JS_PROP_WRITABLE | JS_PROP_CONFIGURABLE);
    JS_DefinePropertyValueStr(ctx, send_proto, "release", rel, JS_PROP_WRITABLE | JS_PROP_CONFIGURABLE);
    si_js_batch_setup(ctx, recv_proto, send_proto);
    JS_FreeValue(ctx, recv_proto);
    JS_FreeValue(ctx, send_proto);
    JS_FreeValue(ctx, ends);
    pin_shapes();
}

static bool valid_utf8(const uint8_t *s, size_t n) {
    size_t i = 0;
    while (i < n) {
        uint8_t b = s[i];
        size_t need;
        uint32_t cp;
        if (b < 0x80) {
            i++;
            continue;
        }
        if ((b & 0xE0) == 0xC0) { need = 1; cp = b & 0x1F; }
        else if ((b & 0xF0) == 0xE0) { need = 2; cp = b & 0x0F; }
        else if ((b & 0xF8) == 0xF0) { need = 3; cp = b & 0x07; }
        else return false;
        if (n - i <= need) return false; /* truncated sequence */
        for (size_t k = 1; k <= need; k++) {
            if ((s[i + k] & 0xC0) != 0x80) return false;
            cp = (cp << 6) | (s[i + k] & 0x3F);
        }
        if ((need == 1 && cp < 0x80) || (need == 2 && cp < 0x800) || (need == 3 && cp < 0x10000))
            return false; /* overlong */
        if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
        i += need + 1;
    }
    return true;
}

/* viewText(view): the whole view decoded as UTF-8; TypeError if invalid. */
static JSValue js_view_text(JSContext *c, JSValueConst this_val, int argc, JSValueConst *argv) {
    (void)this_val;
    (void)argc;
    int32_t h;
    if (get_handle(c, argv[0], &h)) return JS_EXCEPTION;
    int32_t n = si_view_len(h);
    if (n < 0) return JS_NewInt32(c, n);
    uint8_t *buf = js_malloc(c, (size_t)n + 1);
    if (!buf) return JS_EXCEPTION;
    int32_t got = n ? si_view_read(h, 0, buf, (uint32_t)n) : 0;
    if (got < 0) {
        js_free(c, buf);
        return JS_NewInt32(c, got);
    }
    if (!valid_utf8(buf, (size_t)got)) {
        js_free(c, buf);
        return JS_ThrowTypeError(c, "view is not valid UTF-8");
    }
    JSValue s = JS_NewStringLen(c, (const char *)buf, (size_t)got);
    js_free(c, buf);
    return s;
}

static JSValue js_view_slice(JSContext *c, JSValueConst this_val, int argc, JSValueConst *argv) {
    (void)this_val;
    (void)argc;
    int32_t h;
    uint32_t off, len;
    if (get_handle(c, argv[0], &h) || JS_ToUint32(c, &off, argv[1]) || JS_ToUint32(c, &len, argv[2]))
        return JS_EXCEPTION;
    return handle_or_code(c, si_view_slice(h, off, len));
}

static JSValue js_release(JSContext *c, JSValueConst this_val, int argc, JSValueConst *argv) {
    (void)this_val;
    (void)argc;
    Handle *p = JS_GetOpaque2(c, argv[0], handle_class);
    if (!p) return JS_EXCEPTION;
    int32_t r = p->h > 0 ? si_release(p->h) : SI_ERR_BAD_HANDLE;
    p->h = 0;
    return JS_NewInt32(c, r);
}

static JSValue js_close(JSContext *c, JSValueConst this_val, int argc, JSValueConst *argv) {
    (void)this_val;
    (void)argc;
    int32_t h;
    if (get_handle(c, argv[0], &h)) return JS_EXCEPTION;
    return JS_NewInt32(c, si_close(h));
}

static JSValue js_channel_create(JSContext *c, JSValueConst this_val, int argc, JSValueConst *argv) {
    (void)this_val;
    (void)argc;
    int32_t cap, out[2];
    if (JS_ToInt32(c, &cap, argv[0])) return JS_EXCEPTION;
    int32_t r = si_channel_create(cap, out);
    if (r < 0) return JS_NewInt32(c, r);
    JSValue arr = JS_NewArray(c);
    JS_SetPropertyUint32(c, arr, 0, new_handle(c, out[0], false));
    JS_SetPropertyUint32(c, arr, 1, new_handle(c, out[1], false));
    return arr;
}

/* lookup(name): the end bound to `name` for this run, as a borrowed Handle. */
static JSValue js_lookup(JSContext *c, JSValueConst this_val, int argc, JSValueConst *argv) {
    (void)this_val;
    (void)argc;
    size_t len;
    const char *s = JS_ToCStringLen(c, &len, argv[0]);
    if (!s) return JS_EXCEPTION;
    int32_t r = si_lookup(s, (uint32_t)len);
    JS_FreeCString(c, s);
    return r > 0 ? new_handle(c, r, true) : JS_NewInt32(c, r);
}

/* ---- host results that come back as views of JSON --------------------- */

/* Reads a view holding UTF-8 text into a JS string and releases it. */
static JSValue take_text(JSContext *c, int32_t h) {
    if (h < 0) return JS_NewInt32(c, h);
    JSValue hv = new_handle(c, h, false);
    if (JS_IsException(hv)) return hv;
    JSValue s = js_view_text(c, JS_UNDEFINED, 1, (JSValueConst *)&hv);
    js_release(c, JS_UNDEFINED, 1, (JSValueConst *)&hv);
    JS_FreeValue(c, hv);
    return s;
}

/* A JS string argument as (pointer, length); free with JS_FreeCString. */
#define WITH_STR(var, len, arg)                        \
    size_t len;                                        \
    const char *var = JS_ToCStringLen(c, &len, arg);   \
    if (!var) return JS_EXCEPTION

static JSValue js_interp_create(JSContext *c, JSValueConst this_val, int argc, JSValueConst *argv) {
    (void)this_val;
    (void)argc;
    WITH_STR(opts, len, argv[0]);
    int64_t id = si_interp_create(opts, (uint32_t)len);
    JS_FreeCString(c, opts);
    return JS_NewInt64(c, id);
}

/* interpRun(id, source, bindingsJSON, start): runs (or starts) source in a
 * child. Returns the result JSON (run) or a job Handle (start), or a code. */
static JSValue js_interp_run(JSContext *c, JSValueConst this_val, int argc, JSValueConst *argv) {
    (void)this_val;
    (void)argc;
    int64_t id;
    if (JS_ToInt64(c, &id, argv[0])) return JS_EXCEPTION;
    bool start = JS_ToBool(c, argv[3]);
    WITH_STR(src, src_len, argv[1]);
    size_t bind_len;
    const char *bind = JS_ToCStringLen(c, &bind_len, argv[2]);
    if (!bind) {
        JS_FreeCString(c, src);
        return JS_EXCEPTION;
    }
    int32_t r = start ? si_interp_start(id, src, (uint32_t)src_len, bind, (uint32_t)bind_len)
                      : si_interp_run(id, src, (uint32_t)src_len, bind, (uint32_t)bind_len);
    JS_FreeCString(c, src);
    JS_FreeCString(c, bind);
    if (start) return handle_or_code(c, r);
    return take_text(c, r);
}

static JSValue js_interp_join(JSContext *c, JSValueConst this_val, int argc, JSValueConst *argv) {
    (void)this_val;
    (void)argc;
    int32_t h;
    if (get_handle(c, argv[0], &h)) return JS_EXCEPTION;
    return take_text(c, si_interp_join(h, get_timeout(c, argv[1])));
}

static JSValue js_interp_close(JSContext *c, JSValueConst this_val, int argc, JSValueConst *argv) {
    (void)this_val;
    (void)argc;
    int64_t id;
    if (JS_ToInt64(c, &id, argv[0])) return JS_EXCEPTION;
    return JS_NewInt32(c, si_interp_close(id));
}

static JSValue js_interp_status(JSContext *c, JSValueConst this_val, int argc, JSValueConst *argv) {
    (void)this_val;
    (void)argc;
    int64_t id;
    if (JS_ToInt64(c, &id, argv[0])) return JS_EXCEPTION;
    return JS_NewInt32(c, si_interp_status(id));
}

static JSValue js_interp_list(JSContext *c, JSValueConst this_val, int argc, JSValueConst *argv) {
    (void)this_val;
    (void)argc;
    (void)argv;
    return take_text(c, si_interp_list());
}

static JSValue js_bound_names(JSContext *c, JSValueConst this_val, int argc, JSValueConst *argv) {
    (void)this_val;
    (void)argc;
    (void)argv;
    return take_text(c, si_bound_names());
}

static JSValue js_ids(JSContext *c, JSValueConst this_val, int argc, JSValueConst *argv, int magic) {
    (void)this_val;
    (void)argc;
    (void)argv;
    return JS_NewInt64(c, magic ? si_main_id() : si_interpreter_id());
}

/* write(fd, string): console output through WASI. */
static JSValue js_write(JSContext *c, JSValueConst this_val, int argc, JSValueConst *argv) {
    (void)this_val;
    (void)argc;
    int32_t fd;
    if (JS_ToInt32(c, &fd, argv[0])) return JS_EXCEPTION;
    WITH_STR(s, len, argv[1]);
    size_t done = 0;
    while (done < len) {
        ssize_t n = write(fd == 2 ? 2 : 1, s + done, len - done);
        if (n <= 0) break;
        done += (size_t)n;
    }
    JS_FreeCString(c, s);
    return JS_UNDEFINED;
}

/* exit(code): ends the run with `code` (process.exit): an uncatchable
 * exception unwinds the script, and the eval returns the exit status. */
static JSValue js_exit(JSContext *c, JSValueConst this_val, int argc, JSValueConst *argv) {
    (void)this_val;
    (void)argc;
    int32_t code = 0;
    if (JS_ToInt32(c, &code, argv[0])) return JS_EXCEPTION;
    exit_requested = code & 0xff;
    JSValue e = JS_NewError(c);
    JS_SetPropertyStr(c, e, "message", JS_NewString(c, "process.exit"));
    JS_SetUncatchableError(c, e);
    return JS_Throw(c, e);
}

/* setExitCode(n): process.exitCode's setter. */
static JSValue js_set_exit_code(JSContext *c, JSValueConst this_val, int argc, JSValueConst *argv) {
    (void)this_val;
    (void)argc;
    int32_t n = 0;
    if (!JS_IsUndefined(argv[0]) && !JS_IsNull(argv[0]) && JS_ToInt32(c, &n, argv[0])) return JS_EXCEPTION;
    exit_code_set = n;
    return JS_UNDEFINED;
}

/* WASI's argument or environment strings (`env`), read now (an
 * interpreter started from the snapshot has its own). */
static JSValue js_wasi_strings(JSContext *c, JSValueConst this_val, int argc, JSValueConst *argv) {
    (void)this_val;
    (void)argc;
    bool env = JS_ToBool(c, argv[0]);
    __wasi_size_t count = 0, size = 0;
    __wasi_errno_t e = env ? __wasi_environ_sizes_get(&count, &size) : __wasi_args_sizes_get(&count, &size);
    if (e) return JS_NewArray(c);
    uint8_t **ptrs = malloc((count + 1) * sizeof *ptrs);
    uint8_t *buf = malloc(size ? size : 1);
    JSValue arr = JS_NewArray(c);
    if (ptrs && buf && !(env ? __wasi_environ_get(ptrs, buf) : __wasi_args_get(ptrs, buf))) {
        for (__wasi_size_t i = 0; i < count; i++)
            JS_SetPropertyUint32(c, arr, i, JS_NewString(c, (const char *)ptrs[i]));
    }
    free(ptrs);
    free(buf);
    return arr;
}

/* ---- web-standard helpers (TextEncoder/TextDecoder, crypto, clones) ---- */

/* decodeUtf8(bytes, fatal): the WHATWG UTF-8 decoder: each maximal invalid
 * subpart becomes U+FFFD, or with `fatal` the result is null. */
static JSValue js_decode_utf8(JSContext *c, JSValueConst this_val, int argc, JSValueConst *argv) {
    (void)this_val;
    (void)argc;
    size_t n;
    const uint8_t *s = JS_GetUint8Array(c, &n, argv[0]);
    if (!s && n) return JS_EXCEPTION;
    bool fatal = JS_ToBool(c, argv[1]);
    if (n > (SIZE_MAX - 1) / 3) return JS_ThrowRangeError(c, "decodeUtf8: the input is too large");
    uint8_t *out = js_malloc(c, n * 3 + 1);
    if (!out) return JS_EXCEPTION;
    size_t i = 0, o = 0;
    while (i < n) {
        uint8_t b = s[i];
        if (b < 0x80) {
            out[o++] = b;
            i++;
            continue;
        }
        size_t need = 0;
        uint8_t lo = 0x80, hi = 0xBF;
        if (b >= 0xC2 && b <= 0xDF) need = 1;
        else if (b >= 0xE0 && b <= 0xEF) {
            need = 2;
            if (b == 0xE0) lo = 0xA0;
            if (b == 0xED) hi = 0x9F;
        } else if (b >= 0xF0 && b <= 0xF4) {
            need = 3;
            if (b == 0xF0) lo = 0x90;
            if (b == 0xF4) hi = 0x8F;
        }
        size_t k = 1;
        if (need) {
            for (; k <= need && i + k < n; k++) {
                if (s[i + k] < lo || s[i + k] > hi) break;
                lo = 0x80;
                hi = 0xBF;
            }
        }
        if (!need || k <= need) {
            if (fatal) {
                js_free(c, out);
                return JS_NULL;
            }
            out[o++] = 0xEF, out[o++] = 0xBF, out[o++] = 0xBD;
            i += need ? k : 1;
            continue;
        }
        memcpy(out + o, s + i, need + 1);
        o += need + 1;
        i += need + 1;
    }
    JSValue str = JS_NewStringLen(c, (const char *)out, o);
    js_free(c, out);
    return str;
}

/* encodeUtf8(string): its UTF-8 bytes; a lone surrogate is U+FFFD. */
static JSValue js_encode_utf8(JSContext *c, JSValueConst this_val, int argc, JSValueConst *argv) {
    (void)this_val;
    (void)argc;
    size_t len;
    const char *s = JS_ToCStringLen(c, &len, argv[0]);
    if (!s) return JS_EXCEPTION;
    JSValue out = JS_NewUint8ArrayCopy(c, (const uint8_t *)s, len);
    JS_FreeCString(c, s);
    size_t n;
    uint8_t *p = JS_GetUint8Array(c, &n, out);
    /* A lone surrogate comes out as its 3-byte form ED A0..BF xx. */
    for (size_t i = 0; p && i + 2 < n; i++) {
        if (p[i] == 0xED && p[i + 1] >= 0xA0) p[i] = 0xEF, p[i + 1] = 0xBF, p[i + 2] = 0xBD;
    }
    return out;
}

/* randomFill(typedArray): fills its bytes from the host's entropy. */
static JSValue js_random_fill(JSContext *c, JSValueConst this_val, int argc, JSValueConst *argv) {
    (void)this_val;
    (void)argc;
    size_t off, len, per;
    JSValue buf = JS_GetTypedArrayBuffer(c, argv[0], &off, &len, &per);
    if (JS_IsException(buf)) return buf;
    size_t size;
    uint8_t *p = JS_GetArrayBuffer(c, &size, buf);
    JS_FreeValue(c, buf);
    if (!p && len) return JS_EXCEPTION;
    for (size_t done = 0; done < len;) {
        size_t chunk = len - done > 256 ? 256 : len - done;
        if (getentropy(p + off + done, chunk) != 0) return JS_ThrowInternalError(c, "no entropy");
        done += chunk;
    }
    return JS_DupValue(c, argv[0]);
}

/* clone(value): structuredClone through QuickJS's own serialisation; a
 * function or SharedArrayBuffer is a DataCloneError. */
static JSValue js_clone(JSContext *c, JSValueConst this_val, int argc, JSValueConst *argv) {
    (void)this_val;
    (void)argc;
    size_t len;
    uint8_t *bytes = JS_WriteObject(c, &len, argv[0], JS_WRITE_OBJ_REFERENCE);
    if (!bytes) return JS_EXCEPTION;
    JSValue v = JS_ReadObject(c, bytes, len, JS_READ_OBJ_REFERENCE);
    js_free(c, bytes);
    return v;
}

/* readStdin(max): up to `max` bytes of stdin as a Uint8Array (empty at its
 * end). */
static JSValue js_read_stdin(JSContext *c, JSValueConst this_val, int argc, JSValueConst *argv) {
    (void)this_val;
    (void)argc;
    int32_t max = 65536;
    if (JS_ToInt32(c, &max, argv[0])) return JS_EXCEPTION;
    if (max <= 0) max = 65536;
    uint8_t *buf = js_malloc(c, (size_t)max);
    if (!buf) return JS_EXCEPTION;
    ssize_t n = read(0, buf, (size_t)max);
    JSValue out = JS_NewUint8ArrayCopy(c, buf, n > 0 ? (size_t)n : 0);
    js_free(c, buf);
    return out;
}

/* output(data): a string (UTF-8) or a Uint8Array as the run's output
 * (call_output); returns the ABI's code. */
static JSValue js_output(JSContext *c, JSValueConst this_val, int argc, JSValueConst *argv) {
    (void)this_val;
    (void)argc;
    Bytes b;
    if (get_bytes(c, argv[0], &b)) return JS_EXCEPTION;
    int32_t r = si_call_output(b.p, (uint32_t)b.len);
    put_bytes(c, &b);
    return JS_NewInt32(c, r);
}

/* hostCall(name, data): a Handle of the host function's result; or
 * [SI_ERR_HOST, Handle of its message]; or another code. `data` is a string
 * (UTF-8) or a Uint8Array. */
static JSValue js_host_call(JSContext *c, JSValueConst this_val, int argc, JSValueConst *argv) {
    (void)this_val;
    (void)argc;
    size_t name_len;
    const char *name = JS_ToCStringLen(c, &name_len, argv[0]);
    if (!name) return JS_EXCEPTION;
    Bytes b;
    if (get_bytes(c, argv[1], &b)) {
        JS_FreeCString(c, name);
        return JS_EXCEPTION;
    }
    int32_t err = 0;
    int32_t r = si_host_call(name, (uint32_t)name_len, b.p, (uint32_t)b.len, &err);
    JS_FreeCString(c, name);
    put_bytes(c, &b);
    if (r == SI_ERR_HOST) {
        JSValue pair = JS_NewArray(c);
        JS_SetPropertyUint32(c, pair, 0, JS_NewInt32(c, r));
        JS_SetPropertyUint32(c, pair, 1, new_handle(c, err, false));
        return pair;
    }
    return handle_or_code(c, r);
}

static const JSCFunctionListEntry si_funcs[] = {
    JS_CFUNC_DEF("hostCall", 2, js_host_call),
    JS_CFUNC_DEF("output", 1, js_output),
    JS_CFUNC_DEF("exit", 1, js_exit),
    JS_CFUNC_DEF("setExitCode", 1, js_set_exit_code),
    JS_CFUNC_DEF("wasiStrings", 1, js_wasi_strings),
    JS_CFUNC_DEF("readStdin", 1, js_read_stdin),
    JS_CFUNC_DEF("decodeUtf8", 2, js_decode_utf8),
    JS_CFUNC_DEF("encodeUtf8", 1, js_encode_utf8),
    JS_CFUNC_DEF("randomFill", 1, js_random_fill),
    JS_CFUNC_DEF("clone", 1, js_clone),
    JS_CFUNC_DEF("send", 3, js_send),
    JS_CFUNC_DEF("sendHandle", 3, js_send_handle),
    JS_CFUNC_DEF("recv", 2, js_recv),
    JS_CFUNC_DEF("kind", 1, js_kind),
    JS_CFUNC_DEF("handleId", 1, js_handle_id),
    JS_CFUNC_DEF("viewLen", 1, js_view_len),
    JS_CFUNC_DEF("viewRead", 3, js_view_read),
    JS_CFUNC_DEF("viewBytes", 1, js_view_bytes),
    JS_CFUNC_DEF("viewText", 1, js_view_text),
    JS_CFUNC_DEF("viewSlice", 3, js_view_slice),
    JS_CFUNC_DEF("release", 1, js_release),
    JS_CFUNC_DEF("close", 1, js_close),
    JS_CFUNC_DEF("channelCreate", 1, js_channel_create),
    JS_CFUNC_DEF("lookup", 1, js_lookup),
    JS_CFUNC_DEF("boundNames", 0, js_bound_names),
    JS_CFUNC_DEF("interpCreate", 1, js_interp_create),
    JS_CFUNC_DEF("interpRun", 4, js_interp_run),
    JS_CFUNC_DEF("interpJoin", 2, js_interp_join),
    JS_CFUNC_DEF("interpClose", 1, js_interp_close),
    JS_CFUNC_DEF("interpStatus", 1, js_interp_status),
    JS_CFUNC_DEF("interpList", 0, js_interp_list),
    JS_CFUNC_MAGIC_DEF("id", 0, js_ids, 0),
    JS_CFUNC_MAGIC_DEF("mainId", 0, js_ids, 1),
    JS_CFUNC_DEF("write", 2, js_write),
};

/* ---- errors, promises, interrupts ------------------------------------- */

static void rejection_tracker(JSContext *c, JSValueConst promise, JSValueConst reason,
                              bool is_handled, void *opaque) {
    (void)promise;
    (void)opaque;
    if (!is_handled && !has_unhandled_rejection) {
        unhandled_rejection = JS_DupValue(c, reason);
        has_unhandled_rejection = true;
    } else if (is_handled && has_unhandled_rejection) {
        /* handled later in the same run (e.g. a late .catch): forget it */
        JS_FreeValue(c, unhandled_rejection);
        has_unhandled_rejection = false;
    }
}

/* QuickJS asks this every few thousand operations: stop cleanly (an
 * uncatchable error that unwinds the JS stack) once the host says the run's
 * deadline passed or the interpreter is closing. */
static int interrupt_handler(JSRuntime *r, void *opaque) {
    (void)r;
    (void)opaque;
    return si_should_stop();
}

/* Reports `exc` to the host as {type, message, stack} JSON, built by the
 * prelude's __describeError. */
static void report(JSValueConst exc, const char *fallback_type) {
    JSValue global = JS_GetGlobalObject(ctx);
    JSValue describe = JS_GetPropertyStr(ctx, internals, "describeError");
    JSValue args[2] = {JS_DupValue(ctx, exc), JS_NewString(ctx, fallback_type)};
    JSValue json = JS_Call(ctx, describe, JS_UNDEFINED, 2, (JSValueConst *)args);
    size_t len = 0;
    const char *s = JS_IsException(json) ? NULL : JS_ToCStringLen(ctx, &len, json);
    if (s) {
        si_run_error(s, (uint32_t)len);
        JS_FreeCString(ctx, s);
    } else {
        static const char oom[] = "{\"type\":\"InternalError\",\"message\":\"out of memory while reporting an error\",\"stack\":\"\"}";
        JSValue ignored = JS_GetException(ctx);
        JS_FreeValue(ctx, ignored);
        si_run_error(oom, sizeof oom - 1);
    }
    JS_FreeValue(ctx, json);
    JS_FreeValue(ctx, args[0]);
    JS_FreeValue(ctx, args[1]);
    JS_FreeValue(ctx, describe);
    JS_FreeValue(ctx, global);
}

/* Reports the pending exception (status 1); or, when it is process.exit's
 * unwinding, drops it and gives the exit status. */
static int report_exception(const char *fallback_type) {
    JSValue exc = JS_GetException(ctx);
    if (exit_requested >= 0) {
        int32_t code = exit_requested;
        exit_requested = -1;
        JS_FreeValue(ctx, exc);
        return SI_JS_EXIT | (code & 0xff);
    }
    report(exc, fallback_type);
    JS_FreeValue(ctx, exc);
    return 1;
}

/* ---- exports ------------------------------------------------------------ */

/* Added to quickjs.c by guest/js/patch_quickjs.py. */
void si_js_reseed(JSContext *ctx, uint64_t seed);
JSValue si_js_new_like(JSContext *ctx, JSValueConst tmpl, JSValue *values);

EXPORT("si_js_setup") int32_t si_js_setup(void) {
    if (rt) return 0;
    rt = JS_NewRuntime();
    if (!rt) return -1;
    JS_SetHostPromiseRejectionTracker(rt, rejection_tracker, NULL);
    JS_SetInterruptHandler(rt, interrupt_handler, NULL);
    /* The C stack lives in linear memory (1 MiB, see the Makefile); stop JS
     * recursion with a RangeError well before it or the host's wasm stack
     * runs out. */
    JS_SetMaxStackSize(rt, JS_STACK_SIZE);
    JS_NewClassID(rt, &handle_class);
    if (JS_NewClass(rt, handle_class, &handle_def)) return -2;
    ctx = JS_NewContext(rt);
    if (!ctx) return -3;
    JSValue global = JS_GetGlobalObject(ctx);
    JSValue si = JS_NewObject(ctx);
    JS_SetPropertyFunctionList(ctx, si, si_funcs, sizeof si_funcs / sizeof si_funcs[0]);
    si_fs_add_natives(ctx, si);
    JS_SetPropertyStr(ctx, global, "__si", JS_DupValue(ctx, si));
    JS_FreeValue(ctx, global);
    JSValue r = JS_Eval(ctx, (const char *)prelude_js, prelude_js_len, "<prelude>", JS_EVAL_TYPE_GLOBAL);
    if (JS_IsException(r) || web_setup(ctx, si)) {
        JS_FreeValue(ctx, r);
        JS_FreeValue(ctx, si);
        report_exception("InternalError");
        return -4;
    }
    JS_FreeValue(ctx, si);
    internals = r; /* kept for good */
    JSValue view = JS_GetPropertyStr(ctx, internals, "view");
    view_proto = JS_GetPropertyStr(ctx, view, "proto");
    JSValue key = JS_GetPropertyStr(ctx, view, "key");
    view_key = JS_ValueToAtom(ctx, key);
    JS_FreeValue(ctx, key);
    JS_FreeValue(ctx, view);
    view_bytes_js = JS_GetPropertyStr(ctx, view_proto, "bytes");
    JS_DefinePropertyValueStr(ctx, view_proto, "bytes",
                              JS_NewCFunction(ctx, view_bytes_native, "bytes", 0),
                              JS_PROP_WRITABLE | JS_PROP_CONFIGURABLE);
    install_natives();
    if (si_js_loop_setup(ctx, internals)) {
        report_exception("InternalError");
        return -6;
    }
    if (si_node_setup(ctx)) {
        report_exception("InternalError");
        return -7;
    }
    /* Collect the set-up's garbage now, and put the next cycle collection a
     * megabyte of allocations away: a collection walks (and writes to) every
     * object, so in an interpreter started from the snapshot an early one
     * would turn the whole shared heap image into private copies. */
    JS_RunGC(rt);
    JSMemoryUsage u;
    JS_ComputeMemoryUsage(rt, &u);
    JS_SetGCThreshold(rt, (size_t)u.malloc_size + 1024 * 1024);
    return 0;
}

/* The snapshot's initialiser (a function of no arguments and no result, as
 * the snapshotting tool wants); traps when the set-up fails. */
EXPORT("si_js_snapshot_init") void si_js_snapshot_init(void) {
    if (si_js_setup() != 0) __builtin_trap();
}

EXPORT("si_js_configure") int32_t si_js_configure(int32_t memory_limit) {
    if (!ctx) return -5;
    if (memory_limit > 0) JS_SetMemoryLimit(rt, (size_t)(uint32_t)memory_limit);
    uint64_t seed = 0;
    if (getentropy(&seed, sizeof seed) != 0) seed = 0x9e3779b97f4a7c15ULL;
    si_js_reseed(ctx, seed);
    return 0;
}

EXPORT("si_js_init") int32_t si_js_init(int32_t memory_limit) {
    int32_t r = si_js_setup();
    return r ? r : si_js_configure(memory_limit);
}

EXPORT("si_js_alloc") char *si_js_alloc(int32_t len) {
    if (len < 0) return NULL;
    return malloc((size_t)len + 1);
}

/* Runs every pending promise job; returns 1 if one threw (reported). */
static int run_jobs(void) {
    for (;;) {
        JSContext *c;
        int r = JS_ExecutePendingJob(rt, &c);
        if (r == 0) return 0;
        if (r < 0) return report_exception("Error");
    }
}

/* For the guest's other C files (js_guest.h). */
int si_js_get_handle(JSContext *c, JSValueConst v, int32_t *out) { return get_handle(c, v, out); }
int si_js_run_jobs(void) { return run_jobs(); }
int si_js_report_exception(const char *fallback_type) { return report_exception(fallback_type); }

/* Gives `v` back as the call's output through the prelude's output helper
 * (strings, bytes, numbers, booleans, null; JSON text with `json`); a value
 * of another type is an error, reported. Returns 1 on an error. */
static int set_output(JSValueConst v, bool json) {
    JSValue out = JS_GetPropertyStr(ctx, internals, "output");
    JSValue args[2] = {JS_DupValue(ctx, v), JS_NewBool(ctx, json)};
    JSValue r = JS_Call(ctx, out, JS_UNDEFINED, 2, (JSValueConst *)args);
    int status = JS_IsException(r) ? report_exception("TypeError") : 0;
    JS_FreeValue(ctx, r);
    JS_FreeValue(ctx, args[0]);
    JS_FreeValue(ctx, out);
    return status;
}

/* A script that ended normally with process.exitCode set to a non-zero
 * number exits with it (as Node). Kept in C by the prelude's setter, so
 * that a run which never sets it reads no JS object (each read would write
 * a reference count into a page shared with the snapshot). */
static int32_t exit_code_status(void) {
    int32_t n = exit_code_set & 0xff;
    return n ? SI_JS_EXIT | n : 0;
}

/* A script's completion value as its output, in C: a string, a number, a
 * boolean, null or a Uint8Array; anything else is no output. No JS is
 * called (see exit_code_status). */
static void completion_output(JSValueConst v) {
    if (JS_VALUE_GET_TAG(v) == JS_TAG_INT) {
        /* The common case (`1 + 1`) formatted here: no allocation. */
        char buf[16];
        int n = snprintf(buf, sizeof buf, "%d", (int)JS_VALUE_GET_INT(v));
        si_call_output(buf, (uint32_t)n);
    } else if (JS_IsBool(v)) {
        si_call_output(JS_ToBool(ctx, v) ? "true" : "false", JS_ToBool(ctx, v) ? 4 : 5);
    } else if (JS_IsString(v) || JS_IsNumber(v)) {
        size_t len;
        const char *s = JS_ToCStringLen(ctx, &len, v);
        if (s) {
            si_call_output(s, (uint32_t)len);
            JS_FreeCString(ctx, s);
        } else {
            JSValue ignored = JS_GetException(ctx);
            JS_FreeValue(ctx, ignored);
        }
    } else if (JS_IsNull(v)) {
        si_call_output("", 0);
    } else if (JS_GetTypedArrayType(v) == JS_TYPED_ARRAY_UINT8) {
        size_t len;
        uint8_t *p = JS_GetUint8Array(ctx, &len, v);
        if (p || !len) si_call_output(p ? p : (uint8_t *)"", (uint32_t)len);
    }
}

/* Evaluates src (NUL-terminated by the caller) as a script or a module. */
/* Whether the global `channels` is the empty object the prelude made. */
static bool channels_empty = true;

/* Sets the global `channels` from the ends bound for this run. With none
 * bound, and none before, there is nothing to do: skipping the JS call keeps
 * a first run from writing to (and so copying) more of the snapshot's heap. */
static JSValue bind_channels(void) {
    int32_t names = si_bound_names();
    int32_t n = names > 0 ? si_view_len(names) : -1;
    if (names > 0) si_release(names);
    if (n == 2 && channels_empty) return JS_UNDEFINED; /* "[]" */
    channels_empty = n == 2;
    JSValue global = JS_GetGlobalObject(ctx);
    JSValue refresh = JS_GetPropertyStr(ctx, internals, "bindChannels");
    JSValue b = JS_Call(ctx, refresh, JS_UNDEFINED, 0, NULL);
    JS_FreeValue(ctx, refresh);
    JS_FreeValue(ctx, global);
    return b;
}

static int32_t eval(char *src, int32_t len, const char *name, int flags) {
    has_unhandled_rejection = false;
    si_js_loop_reset(ctx);
    JSValue b = bind_channels();
    int status = 0;
    if (JS_IsException(b)) {
        status = report_exception("Error");
    } else {
        JS_FreeValue(ctx, b);
        JSValue r = (flags & JS_EVAL_TYPE_MASK) == JS_EVAL_TYPE_MODULE
                        ? si_eval_module(ctx, src, (size_t)len, name)
                        : JS_Eval(ctx, src, (size_t)len, name, flags);
        if (JS_IsException(r)) {
            status = report_exception("Error");
        } else {
            if ((flags & JS_EVAL_TYPE_MASK) == JS_EVAL_TYPE_GLOBAL) completion_output(r);
            if (!status) status = si_js_run_loop(ctx);
            /* A module's evaluation is a promise: its rejection is the error. */
            if (!status && (flags & JS_EVAL_TYPE_MASK) == JS_EVAL_TYPE_MODULE &&
                JS_PromiseState(ctx, r) == JS_PROMISE_REJECTED) {
                JSValue reason = JS_PromiseResult(ctx, r);
                report(reason, "Error");
                JS_FreeValue(ctx, reason);
                if (has_unhandled_rejection) {
                    JS_FreeValue(ctx, unhandled_rejection);
                    has_unhandled_rejection = false;
                }
                status = 1;
            }
            JS_FreeValue(ctx, r);
        }
    }
    if (!status && has_unhandled_rejection) {
        report(unhandled_rejection, "UnhandledRejection");
        status = 1;
    }
    if (has_unhandled_rejection) {
        JS_FreeValue(ctx, unhandled_rejection);
        has_unhandled_rejection = false;
    }
    if (!status) status = exit_code_status();
    return status;
}

EXPORT("si_js_eval") int32_t si_js_eval(char *src, int32_t len) {
    if (!ctx || !src || len < 0) return 2;
    src[len] = '\0'; /* JS_Eval wants a NUL-terminated buffer */
    int32_t status = eval(src, len, "<script>", JS_EVAL_TYPE_GLOBAL);
    free(src);
    return status;
}

EXPORT("si_js_eval_module")
int32_t si_js_eval_module(char *src, int32_t len, char *name, int32_t name_len) {
    if (!ctx || !src || len < 0 || !name || name_len < 0) {
        free(src);
        free(name);
        return 2;
    }
    src[len] = '\0';
    name[name_len] = '\0';
    int32_t status = eval(src, len, name, JS_EVAL_TYPE_MODULE);
    free(src);
    free(name);
    return status;
}

/* What `new View(handle)` makes, without running the constructor. */
static JSValue new_view(JSValueConst handle) {
    if (JS_IsException(handle)) return JS_EXCEPTION;
    JSValue h = JS_DupValue(ctx, handle);
    return si_js_new_like(ctx, view_template, &h);
}

/* Calls the function `name` (a global, or "module.js#export") with the input
 * view `input` (JSON text parsed first with `json`) through the prelude's
 * __call; its result, awaited when it is a promise, becomes the output.
 * Returns 0, or 1 with the error reported. */
EXPORT("si_js_call")
int32_t si_js_call(int32_t name_view, int32_t input, int32_t json) {
    /* The name is a view (borrowed): read it into a buffer of our own. */
    char small[128];
    int32_t name_len = si_view_len(name_view);
    if (!ctx || name_len < 0) return 2;
    char *name = (size_t)name_len < sizeof small ? small : malloc((size_t)name_len + 1);
    if (!name) return 2;
    if (si_view_read(name_view, 0, name, (uint32_t)name_len) != name_len) {
        if (name != small) free(name);
        return 2;
    }
    has_unhandled_rejection = false;
    si_js_loop_reset(ctx);
    JSValue global = JS_GetGlobalObject(ctx);
    /* The common case in C: a global function, its input a View (made with
     * the prelude's class), its result a string or bytes. Everything else
     * (module exports, JSON, other result types, errors' messages) goes
     * through the prelude's __call and __output. */
    JSValue fast = JS_UNDEFINED;
    if (!json && !memchr(name, '#', (size_t)name_len)) {
        JSAtom atom = JS_NewAtomLen(ctx, name, (size_t)name_len);
        fast = JS_GetProperty(ctx, global, atom);
        JS_FreeAtom(ctx, atom);
        if (JS_IsException(fast) || !JS_IsFunction(ctx, fast) || view_key == JS_ATOM_NULL) {
            JS_FreeValue(ctx, fast);
            fast = JS_UNDEFINED;
        }
    }
    JSValue call = JS_UNDEFINED, r;
    /* The name as a string only for the prelude's __call. */
    JSValue args[3] = {JS_IsUndefined(fast) ? JS_NewStringLen(ctx, name, (size_t)name_len) : JS_UNDEFINED,
                       new_handle(ctx, input, true), JS_NewBool(ctx, json != 0)};
    if (name != small) free(name);
    if (!JS_IsUndefined(fast)) {
        JSValue view = new_view(args[1]);
        r = JS_IsException(view) ? view : JS_Call(ctx, fast, JS_UNDEFINED, 1, (JSValueConst *)&view);
        JS_FreeValue(ctx, view);
        JS_FreeValue(ctx, fast);
    } else {
        call = JS_GetPropertyStr(ctx, internals, "call");
        r = JS_Call(ctx, call, JS_UNDEFINED, 3, (JSValueConst *)args);
    }
    int status = 0;
    if (JS_IsException(r)) {
        status = report_exception("Error");
    } else {
        status = si_js_run_loop(ctx);
        JSValue v = JS_DupValue(ctx, r);
        if (!status && JS_IsPromise(r)) {
            JS_FreeValue(ctx, v);
            v = JS_UNDEFINED;
            switch (JS_PromiseState(ctx, r)) {
            case JS_PROMISE_FULFILLED: v = JS_PromiseResult(ctx, r); break;
            case JS_PROMISE_REJECTED: {
                JSValue reason = JS_PromiseResult(ctx, r);
                report(reason, "Error");
                JS_FreeValue(ctx, reason);
                if (has_unhandled_rejection) {
                    JS_FreeValue(ctx, unhandled_rejection);
                    has_unhandled_rejection = false;
                }
                status = 1;
                break;
            }
            default: {
                JSValue e = JS_NewError(ctx);
                JS_SetPropertyStr(ctx, e, "name", JS_NewString(ctx, "TypeError"));
                JS_SetPropertyStr(ctx, e, "message",
                                  JS_NewString(ctx, "call: the function's promise never settled"));
                report(e, "TypeError");
                JS_FreeValue(ctx, e);
                status = 1;
            }
            }
        }
        if (!status && !json && JS_IsString(v)) {
            size_t len;
            const char *out = JS_ToCStringLen(ctx, &len, v);
            if (out) {
                si_call_output(out, (uint32_t)len);
                JS_FreeCString(ctx, out);
            } else {
                status = report_exception("Error");
            }
        } else if (!status && !json && JS_GetTypedArrayType(v) == JS_TYPED_ARRAY_UINT8) {
            size_t len;
            uint8_t *p = JS_GetUint8Array(ctx, &len, v);
            if (p || !len) si_call_output(p ? p : (uint8_t *)"", (uint32_t)len);
            else status = report_exception("Error");
        } else if (!status) {
            status = set_output(v, json != 0);
        }
        JS_FreeValue(ctx, v);
    }
    JS_FreeValue(ctx, r);
    for (int i = 0; i < 3; i++) JS_FreeValue(ctx, args[i]);
    JS_FreeValue(ctx, call);
    JS_FreeValue(ctx, global);
    if (!status && has_unhandled_rejection) {
        report(unhandled_rejection, "UnhandledRejection");
        status = 1;
    }
    if (has_unhandled_rejection) {
        JS_FreeValue(ctx, unhandled_rejection);
        has_unhandled_rejection = false;
    }
    return status;
}
