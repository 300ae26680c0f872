/*
 * encoding.c — natives of TextDecoder (encoding.js), after the WHATWG
 * Encoding Standard's decoders: UTF-16LE/BE and windows-1252 here (UTF-8 is
 * subinterp_js.c's decodeUtf8), and the length of an unfinished UTF-8
 * sequence at the end of a chunk (for `stream: true`). Each decoder treats
 * its input as the whole rest of the stream; encoding.js holds back the
 * bytes of an unfinished character when streaming. Every length here is
 * checked before a buffer is sized from it.
 */
#include <stdbool.h>
#include <stdint.h>

#include "quickjs.h"
#include "web.h"

/* Appends code point cp (not a surrogate) to out as UTF-8; returns its end. */
static uint8_t *put_utf8(uint8_t *out, uint32_t cp) {
    if (cp < 0x80) {
        *out++ = (uint8_t)cp;
    } else if (cp < 0x800) {
        *out++ = (uint8_t)(0xC0 | cp >> 6);
        *out++ = (uint8_t)(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
        *out++ = (uint8_t)(0xE0 | cp >> 12);
        *out++ = (uint8_t)(0x80 | (cp >> 6 & 0x3F));
        *out++ = (uint8_t)(0x80 | (cp & 0x3F));
    } else {
        *out++ = (uint8_t)(0xF0 | cp >> 18);
        *out++ = (uint8_t)(0x80 | (cp >> 12 & 0x3F));
        *out++ = (uint8_t)(0x80 | (cp >> 6 & 0x3F));
        *out++ = (uint8_t)(0x80 | (cp & 0x3F));
    }
    return out;
}

/* A buffer of n * per + 4 bytes, or NULL with an exception pending (also
 * when that size does not fit in a size_t). */
static uint8_t *out_buffer(JSContext *c, size_t n, size_t per) {
    if (n > (SIZE_MAX - 4) / per) {
        JS_ThrowRangeError(c, "TextDecoder: the input is too large");
        return NULL;
    }
    return js_malloc(c, n * per + 4);
}

/* A string of the UTF-8 in [out, end), freeing out. */
static JSValue take_string(JSContext *c, uint8_t *out, uint8_t *end) {
    JSValue s = JS_NewStringLen(c, (const char *)out, (size_t)(end - out));
    js_free(c, out);
    return s;
}

/* The code unit at s[i], s[i + 1]. */
static uint32_t unit(const uint8_t *s, size_t i, bool be) {
    return be ? (uint32_t)s[i] << 8 | s[i + 1] : (uint32_t)s[i + 1] << 8 | s[i];
}

/* utf16Decode(bytes, bigEndian, fatal): the text of a whole UTF-16 stream.
 * A lone surrogate, or an odd last byte, is U+FFFD (one for a high
 * surrogate followed only by an odd byte, as the standard's decoder
 * reports one error at the end); with `fatal` the result is null. */
static JSValue js_utf16_decode(JSContext *c, JSValueConst this_val, int argc, JSValueConst *argv) {
    (void)this_val;
    (void)argc;
    size_t n;
    const uint8_t *s = JS_GetUint8Array(c, &n, argv[0]);
    if (!s && n) return JS_EXCEPTION;
    bool be = JS_ToBool(c, argv[1]), fatal = JS_ToBool(c, argv[2]);
    uint8_t *out = out_buffer(c, n, 2), *o = out;
    if (!out) return JS_EXCEPTION;
    size_t i = 0;
    while (i + 1 < n) {
        uint32_t u = unit(s, i, be);
        i += 2;
        if (u < 0xD800 || u > 0xDFFF) {
            o = put_utf8(o, u);
            continue;
        }
        if (u <= 0xDBFF && i + 1 < n) {
            uint32_t t = unit(s, i, be);
            if (t >= 0xDC00 && t <= 0xDFFF) {
                o = put_utf8(o, 0x10000 + ((u - 0xD800) << 10) + (t - 0xDC00));
                i += 2;
                continue;
            }
        }
        if (fatal) goto bad;
        o = put_utf8(o, 0xFFFD);
        if (u <= 0xDBFF && i + 1 == n) i = n; /* the odd byte is part of this error */
    }
    if (i < n) {
        if (fatal) goto bad;
        o = put_utf8(o, 0xFFFD);
    }
    return take_string(c, out, o);
bad:
    js_free(c, out);
    return JS_NULL;
}

/* windows-1252's bytes 0x80..0x9F (the rest are their own code points). */
static const uint16_t W1252[32] = {
    0x20AC, 0x81,   0x201A, 0x192,  0x201E, 0x2026, 0x2020, 0x2021, 0x2C6,  0x2030, 0x160,
    0x2039, 0x152,  0x8D,   0x17D,  0x8F,   0x90,   0x2018, 0x2019, 0x201C, 0x201D, 0x2022,
    0x2013, 0x2014, 0x2DC,  0x2122, 0x161,  0x203A, 0x153,  0x9D,   0x17E,  0x178,
};

/* windows1252Decode(bytes): the text of windows-1252 bytes (every byte is
 * a character, so there are no errors). */
static JSValue js_w1252_decode(JSContext *c, JSValueConst this_val, int argc, JSValueConst *argv) {
    (void)this_val;
    (void)argc;
    size_t n;
    const uint8_t *s = JS_GetUint8Array(c, &n, argv[0]);
    if (!s && n) return JS_EXCEPTION;
    uint8_t *out = out_buffer(c, n, 3), *o = out;
    if (!out) return JS_EXCEPTION;
    for (size_t i = 0; i < n; i++) o = put_utf8(o, s[i] >= 0x80 && s[i] <= 0x9F ? W1252[s[i] - 0x80] : s[i]);
    return take_string(c, out, o);
}

/* utf8Tail(bytes): how many bytes (0..3) at the end of `bytes` are the
 * start of a UTF-8 sequence that more bytes could still complete — what a
 * streaming decoder holds back. Bytes that are already an error are not. */
static JSValue js_utf8_tail(JSContext *c, JSValueConst this_val, int argc, JSValueConst *argv) {
    (void)this_val;
    (void)argc;
    size_t n;
    const uint8_t *s = JS_GetUint8Array(c, &n, argv[0]);
    if (!s && n) return JS_EXCEPTION;
    for (size_t k = 1; k <= 3 && k <= n; k++) {
        uint8_t b = s[n - k];
        if (b >= 0x80 && b <= 0xBF) continue; /* a continuation: look further back */
        size_t need = b >= 0xC2 && b <= 0xDF ? 1 : b >= 0xE0 && b <= 0xEF ? 2 : b >= 0xF0 && b <= 0xF4 ? 3 : 0;
        if (need < k) return JS_NewInt32(c, 0); /* complete, or not a lead byte */
        uint8_t lo = b == 0xE0 ? 0xA0 : b == 0xF0 ? 0x90 : 0x80;
        uint8_t hi = b == 0xED ? 0x9F : b == 0xF4 ? 0x8F : 0xBF;
        if (k >= 2 && (s[n - k + 1] < lo || s[n - k + 1] > hi)) return JS_NewInt32(c, 0);
        return JS_NewInt32(c, (int32_t)k);
    }
    return JS_NewInt32(c, 0);
}

static const JSCFunctionListEntry encoding_funcs[] = {
    JS_CFUNC_DEF("utf16Decode", 3, js_utf16_decode),
    JS_CFUNC_DEF("windows1252Decode", 1, js_w1252_decode),
    JS_CFUNC_DEF("utf8Tail", 1, js_utf8_tail),
};

int encoding_add_natives(JSContext *c, JSValueConst obj) {
    return JS_SetPropertyFunctionList(c, obj, encoding_funcs, sizeof encoding_funcs / sizeof encoding_funcs[0]);
}
