/*
 * url.c — the natives behind URL and URLSearchParams (web.js): the WHATWG
 * URL parser is ada (github.com/ada-url/ada), compiled from the sources the
 * pinned `ada-url` crate vendors (guest/js/web/Cargo.toml), through its C
 * API (ada_c.h). This file only converts between JS values and ada's.
 *
 * A parsed URL is a `UrlRecord` object (a native class) that owns the
 * ada_url and frees it in its finalizer.
 */
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "ada_c.h"
#include "quickjs.h"
#include "web.h"

static JSClassID url_class;

static void url_finalizer(JSRuntime *rt, JSValueConst val) {
    (void)rt;
    ada_url u = JS_GetOpaque(val, url_class);
    if (u) ada_free(u);
}

static JSClassDef url_def = {"UrlRecord", .finalizer = url_finalizer};

/* A JS value as a USVString in UTF-8: QuickJS writes a lone surrogate as its
 * 3-byte form (ED A0..BF xx), which becomes U+FFFD (EF BF BD) as the URL
 * standard's conversion asks. Free with js_free. */
char *usv_string(JSContext *c, JSValueConst v, size_t *len) {
    const char *s = JS_ToCStringLen(c, len, v);
    if (!s) return NULL;
    char *out = js_malloc(c, *len + 1);
    if (out) {
        memcpy(out, s, *len + 1);
        for (size_t i = 0; i + 2 < *len; i++) {
            if ((uint8_t)out[i] == 0xED && (uint8_t)out[i + 1] >= 0xA0)
                out[i] = (char)0xEF, out[i + 1] = (char)0xBF, out[i + 2] = (char)0xBD;
        }
    }
    JS_FreeCString(c, s);
    return out;
}

static ada_url get_url(JSContext *c, JSValueConst v) { return JS_GetOpaque2(c, v, url_class); }

/* urlParse(input, base): a UrlRecord, or null when either does not parse. */
static JSValue js_url_parse(JSContext *c, JSValueConst this_val, int argc, JSValueConst *argv) {
    (void)this_val;
    (void)argc;
    size_t n, bn = 0;
    char *in = usv_string(c, argv[0], &n), *base = NULL;
    if (!in) return JS_EXCEPTION;
    if (!JS_IsUndefined(argv[1]) && !(base = usv_string(c, argv[1], &bn))) {
        js_free(c, in);
        return JS_EXCEPTION;
    }
    ada_url u = base ? ada_parse_with_base(in, n, base, bn) : ada_parse(in, n);
    js_free(c, in);
    js_free(c, base);
    if (!ada_is_valid(u)) {
        ada_free(u);
        return JS_NULL;
    }
    JSValue obj = JS_NewObjectClass(c, (int)url_class);
    if (JS_IsException(obj)) {
        ada_free(u);
        return obj;
    }
    JS_SetOpaque(obj, u);
    return obj;
}

/* The URL's parts, in the order web.js's PARTS names them. */
enum { HREF, ORIGIN, PROTOCOL, USERNAME, PASSWORD, HOST, HOSTNAME, PORT, PATHNAME, SEARCH, HASH };

/* urlGet(record, part): one part as a string. */
static JSValue js_url_get(JSContext *c, JSValueConst this_val, int argc, JSValueConst *argv) {
    (void)this_val;
    (void)argc;
    ada_url u = get_url(c, argv[0]);
    int32_t part;
    if (!u || JS_ToInt32(c, &part, argv[1])) return JS_EXCEPTION;
    ada_string s;
    switch (part) {
    case HREF: s = ada_get_href(u); break;
    case ORIGIN: {
        ada_owned_string o = ada_get_origin(u);
        JSValue r = JS_NewStringLen(c, o.data, o.length);
        ada_free_owned_string(o);
        return r;
    }
    case PROTOCOL: s = ada_get_protocol(u); break;
    case USERNAME: s = ada_get_username(u); break;
    case PASSWORD: s = ada_get_password(u); break;
    case HOST: s = ada_get_host(u); break;
    case HOSTNAME: s = ada_get_hostname(u); break;
    case PORT: s = ada_get_port(u); break;
    case PATHNAME: s = ada_get_pathname(u); break;
    case SEARCH: s = ada_get_search(u); break;
    case HASH: s = ada_get_hash(u); break;
    default: return JS_ThrowRangeError(c, "urlGet: no part %d", part);
    }
    return JS_NewStringLen(c, s.data ? s.data : "", s.length);
}

/* urlSet(record, part, value): the setter of that part; false when ada
 * rejected the value (the URL is then unchanged, as the standard says). */
static JSValue js_url_set(JSContext *c, JSValueConst this_val, int argc, JSValueConst *argv) {
    (void)this_val;
    (void)argc;
    ada_url u = get_url(c, argv[0]);
    int32_t part;
    if (!u || JS_ToInt32(c, &part, argv[1])) return JS_EXCEPTION;
    size_t n;
    char *v = usv_string(c, argv[2], &n);
    if (!v) return JS_EXCEPTION;
    bool ok = true;
    switch (part) {
    case HREF: ok = ada_set_href(u, v, n); break;
    case PROTOCOL: ok = ada_set_protocol(u, v, n); break;
    case USERNAME: ok = ada_set_username(u, v, n); break;
    case PASSWORD: ok = ada_set_password(u, v, n); break;
    case HOST: ok = ada_set_host(u, v, n); break;
    case HOSTNAME: ok = ada_set_hostname(u, v, n); break;
    case PORT:
        if (n == 0) ada_clear_port(u);
        else ok = ada_set_port(u, v, n);
        break;
    case PATHNAME: ok = ada_set_pathname(u, v, n); break;
    case SEARCH:
        if (n == 0) ada_clear_search(u);
        else ada_set_search(u, v, n);
        break;
    case HASH:
        if (n == 0) ada_clear_hash(u);
        else ada_set_hash(u, v, n);
        break;
    default: ok = false;
    }
    js_free(c, v);
    return JS_NewBool(c, ok);
}

/* paramsParse(query): [[name, value], ...] of application/x-www-form-urlencoded
 * text; ada drops one leading "?". */
static JSValue js_params_parse(JSContext *c, JSValueConst this_val, int argc, JSValueConst *argv) {
    (void)this_val;
    (void)argc;
    size_t n;
    char *q = usv_string(c, argv[0], &n);
    if (!q) return JS_EXCEPTION;
    ada_url_search_params p = ada_parse_search_params(q, n);
    js_free(c, q);
    ada_url_search_params_entries_iter it = ada_search_params_get_entries(p);
    JSValue arr = JS_NewArray(c);
    for (uint32_t i = 0; !JS_IsException(arr) && ada_search_params_entries_iter_has_next(it); i++) {
        ada_string_pair kv = ada_search_params_entries_iter_next(it);
        JSValue pair = JS_NewArray(c);
        JS_SetPropertyUint32(c, pair, 0, JS_NewStringLen(c, kv.key.data ? kv.key.data : "", kv.key.length));
        JS_SetPropertyUint32(c, pair, 1, JS_NewStringLen(c, kv.value.data ? kv.value.data : "", kv.value.length));
        if (JS_SetPropertyUint32(c, arr, i, pair) < 0) {
            JS_FreeValue(c, arr);
            arr = JS_EXCEPTION;
        }
    }
    ada_free_search_params_entries_iter(it);
    ada_free_search_params(p);
    return arr;
}

/* paramsSerialize([name, value, name, value, ...]): the urlencoded text. */
static JSValue js_params_serialize(JSContext *c, JSValueConst this_val, int argc, JSValueConst *argv) {
    (void)this_val;
    (void)argc;
    int64_t len;
    if (JS_GetLength(c, argv[0], &len)) return JS_EXCEPTION;
    ada_url_search_params p = ada_parse_search_params("", 0);
    for (int64_t i = 0; i + 1 < len; i += 2) {
        JSValue k = JS_GetPropertyInt64(c, argv[0], i), v = JS_GetPropertyInt64(c, argv[0], i + 1);
        size_t kn = 0, vn = 0;
        char *ks = usv_string(c, k, &kn), *vs = ks ? usv_string(c, v, &vn) : NULL;
        JS_FreeValue(c, k);
        JS_FreeValue(c, v);
        if (vs) ada_search_params_append(p, ks, kn, vs, vn);
        js_free(c, ks);
        js_free(c, vs);
        if (!vs) {
            ada_free_search_params(p);
            return JS_EXCEPTION;
        }
    }
    ada_owned_string s = ada_search_params_to_string(p);
    JSValue r = JS_NewStringLen(c, s.data ? s.data : "", s.length);
    ada_free_owned_string(s);
    ada_free_search_params(p);
    return r;
}

static const JSCFunctionListEntry url_funcs[] = {
    JS_CFUNC_DEF("urlParse", 2, js_url_parse),
    JS_CFUNC_DEF("urlGet", 2, js_url_get),
    JS_CFUNC_DEF("urlSet", 3, js_url_set),
    JS_CFUNC_DEF("paramsParse", 1, js_params_parse),
    JS_CFUNC_DEF("paramsSerialize", 1, js_params_serialize),
};

int url_add_natives(JSContext *c, JSValueConst obj) {
    JSRuntime *rt = JS_GetRuntime(c);
    JS_NewClassID(rt, &url_class);
    if (JS_NewClass(rt, url_class, &url_def)) return -1;
    return JS_SetPropertyFunctionList(c, obj, url_funcs, sizeof url_funcs / sizeof url_funcs[0]);
}
