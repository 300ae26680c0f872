/*
 * web.c — natives for the web-standard globals and the console that
 * web.js and console.js define, and the step that evaluates those two
 * scripts while the guest is set up (so new interpreters get them from the
 * snapshot, at no start-up cost). The URL natives are in url.c, the SHA
 * digests in sha.c.
 */
#include <stdint.h>

#include "quickjs.h"
#include "sha.h"
#include "web.h"
#include "web_js.h"     /* generated from web.js: web_js[], web_js_len */
#include "console_js.h" /* generated from console.js: console_js[], console_js_len */
#include "encoding_js.h" /* generated from encoding.js: encoding_js[], encoding_js_len */

/* digest(alg, u8array): an ArrayBuffer of the SHA digest (sha.h's numbers). */
static JSValue js_digest(JSContext *c, JSValueConst this_val, int argc, JSValueConst *argv) {
    (void)this_val;
    (void)argc;
    int32_t alg;
    if (JS_ToInt32(c, &alg, argv[0])) return JS_EXCEPTION;
    size_t len;
    const uint8_t *p = JS_GetUint8Array(c, &len, argv[1]);
    if (!p && len) return JS_EXCEPTION;
    uint8_t out[64];
    int n = sha_digest(alg, p ? p : (const uint8_t *)"", len, out);
    if (n < 0) return JS_ThrowRangeError(c, "digest: unknown algorithm %d", alg);
    return JS_NewArrayBufferCopy(c, out, (size_t)n);
}

/* promiseState(p): [state, result] ("pending", "fulfilled", "rejected"), or
 * null when p is not a promise; for console.log. */
static JSValue js_promise_state(JSContext *c, JSValueConst this_val, int argc, JSValueConst *argv) {
    (void)this_val;
    (void)argc;
    static const char *names[] = {"pending", "fulfilled", "rejected"};
    if (!JS_IsPromise(argv[0])) return JS_NULL;
    JSPromiseStateEnum s = JS_PromiseState(c, argv[0]);
    JSValue out = JS_NewArray(c);
    JS_SetPropertyUint32(c, out, 0, JS_NewString(c, s >= 0 && s <= 2 ? names[s] : "pending"));
    JS_SetPropertyUint32(c, out, 1, s == JS_PROMISE_PENDING ? JS_UNDEFINED : JS_PromiseResult(c, argv[0]));
    return out;
}

/* proxyTarget(v): [target, handler] of a Proxy, or null; for console.log
 * (which shows a Proxy's target without running its traps). */
static JSValue js_proxy_target(JSContext *c, JSValueConst this_val, int argc, JSValueConst *argv) {
    (void)this_val;
    (void)argc;
    if (!JS_IsProxy(argv[0])) return JS_NULL;
    JSValue out = JS_NewArray(c);
    JS_SetPropertyUint32(c, out, 0, JS_GetProxyTarget(c, argv[0]));
    JS_SetPropertyUint32(c, out, 1, JS_GetProxyHandler(c, argv[0]));
    return out;
}

static const JSCFunctionListEntry web_funcs[] = {
    JS_CFUNC_DEF("digest", 2, js_digest),
    JS_CFUNC_DEF("promiseState", 1, js_promise_state),
    JS_CFUNC_DEF("proxyTarget", 1, js_proxy_target),
};

/* Evaluates `src` (a function expression) and calls it with (si, web). */
static int run_setup_script(JSContext *c, const unsigned char *src, unsigned len, const char *name,
                            JSValueConst si, JSValueConst web) {
    JSValue fn = JS_Eval(c, (const char *)src, len, name, JS_EVAL_TYPE_GLOBAL);
    if (JS_IsException(fn)) return -1;
    JSValueConst args[2] = {si, web};
    JSValue r = JS_Call(c, fn, JS_UNDEFINED, 2, args);
    JS_FreeValue(c, fn);
    if (JS_IsException(r)) return -1;
    JS_FreeValue(c, r);
    return 0;
}

int web_setup(JSContext *c, JSValueConst si) {
    JSValue web = JS_NewObject(c);
    if (JS_IsException(web)) return -1;
    int r = JS_SetPropertyFunctionList(c, web, web_funcs, sizeof web_funcs / sizeof web_funcs[0]);
    if (!r) r = url_add_natives(c, web);
    if (!r) r = encoding_add_natives(c, si); /* the prelude's stdin uses utf8Tail too */
    if (!r) r = run_setup_script(c, encoding_js, encoding_js_len, "<encoding>", si, web);
    if (!r) r = run_setup_script(c, web_js, web_js_len, "<web>", si, web);
    if (!r) r = run_setup_script(c, console_js, console_js_len, "<console>", si, web);
    JS_FreeValue(c, web);
    return r;
}
