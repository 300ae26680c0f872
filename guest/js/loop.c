/*
 * loop.c — the JavaScript guest's event loop and structured messages (the
 * JS side is loop.js, evaluated once at set-up, after prelude.js).
 *
 * The loop: once a script (or a call) and its promise jobs are done, while
 * timers or waiting channel operations remain (loop.js keeps the count in
 * `pending`), call loop.js's step — it fires one due timer, or settles the
 * channel operations that can go ahead, or else sleeps in the host's `wait`
 * import until the next timer is due or a channel end it waits on is ready
 * — and then run the promise jobs it caused. The run's deadline bounds it
 * all: the host never sleeps past it, and once it has passed, `wait` ends the
 * run with an uncatchable error (the host reports the run as timed out).
 *
 * Natives added to `__si` for loop.js:
 *   wait(ends, timeout_us)  ends: [Handle, len, Handle, len, ...] (a send's
 *                           message length, 0 for receiving ends); the index
 *                           of a ready end, or SI_ERR_TIMEOUT / SI_ERR_EMPTY
 *   loopCount(n)            how many timers and waiting operations remain
 *   writeValue(v)           JS_WriteObject's bytes of v, as a Uint8Array
 *   readValue(view)         JS_ReadObject of a view's bytes (a Handle): the
 *                           bytes come from another interpreter and are
 *                           hostile, so they are read without bytecode or
 *                           SharedArrayBuffers (only object references)
 */
#include <stdbool.h>
#include <stdint.h>

#include "quickjs.h"
#include "subinterp.h"
#include "js_guest.h"
#include "loop.h" /* generated from loop.js: loop_js[], loop_js_len */

static int32_t pending;                /* timers + waiting operations in loop.js */
static JSValue step_fn = JS_UNDEFINED; /* loop.js's step and reset, kept for good */
static JSValue reset_fn = JS_UNDEFINED;
/* A failed run's timers and waiting operations are still to be dropped. */
static bool reset_due;

static JSValue js_wait(JSContext *c, JSValueConst this_val, int argc, JSValueConst *argv) {
    (void)this_val;
    (void)argc;
    int64_t len64, timeout;
    if (JS_GetLength(c, argv[0], &len64) || JS_ToInt64(c, &timeout, argv[1])) return JS_EXCEPTION;
    /* The host refuses more than SI_WAIT_MAX ends (loop.js never asks). */
    if (len64 < 0 || len64 / 2 > SI_WAIT_MAX) return JS_NewInt32(c, SI_ERR_INVALID);
    int32_t n = (int32_t)(len64 / 2);
    int32_t *ends = js_malloc(c, sizeof(int32_t) * 2 * (size_t)(n ? n : 1));
    if (!ends) return JS_EXCEPTION;
    for (int32_t i = 0; i < 2 * n; i++) {
        JSValue v = JS_GetPropertyUint32(c, argv[0], (uint32_t)i);
        int bad = (i & 1) ? JS_ToInt32(c, &ends[i], v) : si_js_get_handle(c, v, &ends[i]);
        JS_FreeValue(c, v);
        if (bad) {
            js_free(c, ends);
            return JS_EXCEPTION;
        }
    }
    int32_t r = si_wait(ends, (uint32_t)n, timeout);
    js_free(c, ends);
    if ((r == SI_ERR_TIMEOUT || r == SI_ERR_CLOSED) && si_should_stop()) {
        /* Past the deadline (or closing): unwind as the interrupt handler
         * would, with an error no script can catch. */
        JS_ThrowInternalError(c, "interrupted");
        JSValue e = JS_GetException(c);
        JS_SetUncatchableError(c, e);
        return JS_Throw(c, e);
    }
    return JS_NewInt32(c, r);
}

static JSValue js_loop_count(JSContext *c, JSValueConst this_val, int argc, JSValueConst *argv) {
    (void)this_val;
    (void)argc;
    if (JS_ToInt32(c, &pending, argv[0])) return JS_EXCEPTION;
    return JS_UNDEFINED;
}

static void *value_bytes_realloc(JSRuntime *r, void *opaque, void *ptr, size_t size) {
    (void)opaque;
    return js_realloc_rt(r, ptr, size);
}

static JSValue js_write_value(JSContext *c, JSValueConst this_val, int argc, JSValueConst *argv) {
    (void)this_val;
    (void)argc;
    size_t len;
    uint8_t *bytes = JS_WriteObject(c, &len, argv[0], JS_WRITE_OBJ_REFERENCE);
    if (!bytes) return JS_EXCEPTION;
    return JS_NewUint8Array(c, bytes, len, value_bytes_realloc, NULL, false);
}

static JSValue js_read_value(JSContext *c, JSValueConst this_val, int argc, JSValueConst *argv) {
    (void)this_val;
    (void)argc;
    int32_t h;
    if (si_js_get_handle(c, argv[0], &h)) return JS_EXCEPTION;
    int32_t n = si_view_len(h);
    if (n < 0) return JS_ThrowTypeError(c, "cannot read the message (error %d)", (int)n);
    uint8_t *buf = js_malloc(c, (size_t)n + 1);
    if (!buf) return JS_EXCEPTION;
    int32_t got = n ? si_view_read(h, 0, buf, (uint32_t)n) : 0;
    if (got < 0) {
        js_free(c, buf);
        return JS_ThrowTypeError(c, "cannot read the message (error %d)", (int)got);
    }
    /* Never JS_READ_OBJ_BYTECODE (code from elsewhere) nor JS_READ_OBJ_SAB
     * (a pointer in the bytes). */
    JSValue v = JS_ReadObject(c, buf, (size_t)got, JS_READ_OBJ_REFERENCE);
    js_free(c, buf);
    return v;
}

static const JSCFunctionListEntry loop_funcs[] = {
    JS_CFUNC_DEF("wait", 2, js_wait),
    JS_CFUNC_DEF("loopCount", 1, js_loop_count),
    JS_CFUNC_DEF("writeValue", 1, js_write_value),
    JS_CFUNC_DEF("readValue", 1, js_read_value),
};

int si_js_loop_setup(JSContext *c, JSValueConst internals) {
    JSValue natives = JS_NewObject(c);
    JS_SetPropertyFunctionList(c, natives, loop_funcs, sizeof loop_funcs / sizeof loop_funcs[0]);
    JSValue fn = JS_Eval(c, (const char *)loop_js, loop_js_len, "<loop>", JS_EVAL_TYPE_GLOBAL);
    JSValue args[2] = {natives, JS_DupValue(c, internals)};
    JSValue r = JS_IsException(fn) ? JS_EXCEPTION : JS_Call(c, fn, JS_UNDEFINED, 2, (JSValueConst *)args);
    JS_FreeValue(c, fn);
    JS_FreeValue(c, args[0]);
    JS_FreeValue(c, args[1]);
    if (JS_IsException(r)) return -1;
    step_fn = JS_GetPropertyStr(c, r, "step");
    reset_fn = JS_GetPropertyStr(c, r, "reset");
    JS_FreeValue(c, r);
    return 0;
}

int si_js_run_loop(JSContext *c) {
    int status = si_js_run_jobs();
    while (!status && pending > 0 && !has_unhandled_rejection) {
        JSValue r = JS_Call(c, step_fn, JS_UNDEFINED, 0, NULL);
        status = JS_IsException(r) ? si_js_report_exception("Error") : 0;
        JS_FreeValue(c, r);
        if (!status) status = si_js_run_jobs();
    }
    if (pending > 0 && (status || has_unhandled_rejection)) {
        /* A run that failed leaves nothing to run in the next one. */
        reset_due = true;
        si_js_loop_reset(c);
    }
    return status;
}

void si_js_loop_reset(JSContext *c) {
    if (!reset_due) return;
    JSValue r = JS_Call(c, reset_fn, JS_UNDEFINED, 0, NULL);
    if (JS_IsException(r)) {
        /* Interrupted (past the deadline): the next run starts with it. */
        JSValue e = JS_GetException(c);
        JS_FreeValue(c, e);
    } else {
        reset_due = false;
    }
    JS_FreeValue(c, r);
}
