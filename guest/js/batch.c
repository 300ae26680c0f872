/*
 * batch.c — batch forms of the message path, for scripts that move many
 * small messages:
 *
 *   recv.recvMany(max, {timeout})  waits as recv() does for the first
 *       message, then takes the messages already queued behind it without
 *       waiting, up to `max` (at most RECV_MANY_MAX): an array of at least
 *       one View (or channel end). It stops early, keeping what it took,
 *       where a further recv() would fail (empty, closed, the handle or
 *       memory limit): that failure is for the next call to report, and the
 *       message that hit a limit stays queued. The first message's failure
 *       throws as recv()'s does. Running out of the script's own heap while
 *       making the batch throws, and the messages taken for it are lost
 *       (their handles released), as recv() loses its one message then.
 *   send.sendMany(messages, {timeout})  send() of each element of an array
 *       in order, each as send() would (the timeout is per message); the
 *       first failure throws, the messages before it having been sent.
 *
 * One native call for many messages, with no JS frame per message. Every
 * message still goes through the ABI's own recv_kind / send, so the host's
 * checks and limits apply to each as to a single recv() or send().
 */
#include <math.h>
#include <stdint.h>

#include "js_guest.h"
#include "subinterp.h"

/* The most messages one recvMany returns: bounds the array (and the
 * native buffer) one call makes, whatever a script asks for. */
#define RECV_MANY_MAX 1024

/* SendChannel.prototype.send as it is at set-up (the C one). */
static JSValue send_fn = JS_UNDEFINED;

/* {timeout: ms} as the prelude reads it: microseconds for the ABI, -1 (block)
 * when there is none; -1 with an exception pending when it is invalid. */
static int get_timeout_us(JSContext *c, JSValueConst opts, int64_t *out) {
    *out = -1;
    if (JS_IsUndefined(opts) || JS_IsNull(opts)) return 0;
    JSValue t = JS_GetPropertyStr(c, opts, "timeout");
    if (JS_IsException(t)) return -1;
    if (JS_IsUndefined(t)) return 0;
    double ms;
    int bad = JS_ToFloat64(c, &ms, t);
    JS_FreeValue(c, t);
    if (bad) return -1;
    if (!(ms >= 0)) {
        JS_ThrowTypeError(c, "timeout must be a number of milliseconds >= 0");
        return -1;
    }
    double us = floor(ms * 1000);
    *out = us >= 9.2e18 ? INT64_MAX : (int64_t)us;
    return 0;
}

/* Receives up to `max` messages on `end` into `vals`: how many; 0 with the
 * first one's error in *code; -1 with an exception pending (the values
 * received so far freed). */
static int32_t take_batch(JSContext *c, int32_t end, int32_t max, int64_t timeout_us,
                          JSValue *vals, int32_t *code) {
    int32_t n = 0;
    while (n < max) {
        JSValue v = si_js_recv_message(c, end, n == 0 ? timeout_us : SI_NOWAIT, code);
        if (JS_IsException(v)) {
            while (n > 0) JS_FreeValue(c, vals[--n]);
            return -1;
        }
        if (JS_IsUndefined(v)) break;
        vals[n++] = v;
    }
    return n;
}

static JSValue recv_many(JSContext *c, JSValueConst this_val, int argc, JSValueConst *argv) {
    double want;
    if (JS_ToFloat64(c, &want, argc > 0 ? argv[0] : JS_UNDEFINED)) return JS_EXCEPTION;
    if (!(want >= 1) || want != floor(want))
        return JS_ThrowRangeError(c, "recvMany: max must be an integer >= 1");
    int32_t max = want > RECV_MANY_MAX ? RECV_MANY_MAX : (int32_t)want;
    int64_t timeout;
    if (get_timeout_us(c, argc > 1 ? argv[1] : JS_UNDEFINED, &timeout)) return JS_EXCEPTION;
    int32_t end;
    JSValue keep = si_js_own_handle(c, this_val, &end);
    if (JS_IsException(keep)) return keep;
    if (JS_IsUndefined(keep)) return si_js_fail(c, SI_ERR_BAD_HANDLE, "recvMany", false);
    JSValue *vals = js_malloc(c, sizeof(JSValue) * (size_t)max);
    int32_t code = 0;
    int32_t n = vals ? take_batch(c, end, max, timeout, vals, &code) : -1;
    JS_FreeValue(c, keep);
    JSValue out;
    if (n < 0) out = JS_EXCEPTION;
    else if (n == 0) out = si_js_fail(c, code, "recvMany", timeout > 0);
    else out = JS_NewArrayFrom(c, n, vals); /* takes the values */
    js_free(c, vals);
    return out;
}

static JSValue send_many(JSContext *c, JSValueConst this_val, int argc, JSValueConst *argv) {
    JSValueConst items = argc > 0 ? argv[0] : JS_UNDEFINED;
    if (!JS_IsArray(items)) return JS_ThrowTypeError(c, "sendMany: messages must be an array");
    int64_t len;
    if (JS_GetLength(c, items, &len)) return JS_EXCEPTION;
    JSValue args[2] = {JS_UNDEFINED, argc > 1 ? argv[1] : JS_UNDEFINED};
    for (int64_t i = 0; i < len; i++) {
        args[0] = JS_GetPropertyInt64(c, items, i);
        if (JS_IsException(args[0])) return JS_EXCEPTION;
        JSValue r = JS_Call(c, send_fn, this_val, argc > 1 ? 2 : 1, (JSValueConst *)args);
        JS_FreeValue(c, args[0]);
        if (JS_IsException(r)) return r;
        JS_FreeValue(c, r);
    }
    return JS_UNDEFINED;
}

void si_js_batch_setup(JSContext *c, JSValueConst recv_proto, JSValueConst send_proto) {
    const int flags = JS_PROP_WRITABLE | JS_PROP_CONFIGURABLE;
    send_fn = JS_GetPropertyStr(c, send_proto, "send");
    JS_DefinePropertyValueStr(c, recv_proto, "recvMany", JS_NewCFunction(c, recv_many, "recvMany", 1), flags);
    JS_DefinePropertyValueStr(c, send_proto, "sendMany", JS_NewCFunction(c, send_many, "sendMany", 1), flags);
}
