/*
 * meta.c — `import.meta` of the JavaScript guest's module files: `url`
 * (a file: URL, percent-encoded as Node's `url.pathToFileURL` does),
 * `filename` and `dirname` (as Node's), for every module named by an
 * absolute path — the main module of a module file run, the files it
 * imports, and the module files children run. Modules with other names
 * (`Run::js_module("name", ...)`, the node: built-ins) get none of them.
 */
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "quickjs.h"
#include "fs.h"

/* Whether byte b of a path is percent-encoded in its file: URL: the URL
 * standard's path percent-encode set, and '%', '\\' and all non-ASCII. */
static bool escaped(uint8_t b) {
    return b <= 0x20 || b >= 0x7F || strchr("\"#%<>?`{}\\", b) != NULL;
}

/* The file: URL of absolute path `path`; JS_EXCEPTION when out of memory. */
static JSValue file_url(JSContext *c, const char *path) {
    static const char hex[] = "0123456789ABCDEF";
    size_t n = strlen(path);
    if (n > (SIZE_MAX - 8) / 3) return JS_ThrowRangeError(c, "import.meta: the path is too long");
    char *out = js_malloc(c, n * 3 + 8), *o = out;
    if (!out) return JS_EXCEPTION;
    memcpy(o, "file://", 7);
    o += 7;
    for (size_t i = 0; i < n; i++) {
        uint8_t b = (uint8_t)path[i];
        if (escaped(b)) {
            *o++ = '%';
            *o++ = hex[b >> 4];
            *o++ = hex[b & 15];
        } else {
            *o++ = (char)b;
        }
    }
    JSValue url = JS_NewStringLen(c, out, (size_t)(o - out));
    js_free(c, out);
    return url;
}

int si_set_import_meta(JSContext *c, JSModuleDef *m, const char *name) {
    if (name[0] != '/') return 0;
    JSValue meta = JS_GetImportMeta(c, m);
    if (JS_IsException(meta)) return -1;
    const char *slash = strrchr(name, '/');
    size_t dir_len = slash == name ? 1 : (size_t)(slash - name);
    int r = JS_DefinePropertyValueStr(c, meta, "url", file_url(c, name), JS_PROP_C_W_E);
    if (r >= 0) r = JS_DefinePropertyValueStr(c, meta, "filename", JS_NewString(c, name), JS_PROP_C_W_E);
    if (r >= 0) r = JS_DefinePropertyValueStr(c, meta, "dirname", JS_NewStringLen(c, name, dir_len), JS_PROP_C_W_E);
    JS_FreeValue(c, meta);
    return r < 0 ? -1 : 0;
}

JSValue si_eval_module(JSContext *c, const char *src, size_t len, const char *name) {
    JSValue f = JS_Eval(c, src, len, name, JS_EVAL_TYPE_MODULE | JS_EVAL_FLAG_COMPILE_ONLY);
    if (JS_IsException(f)) return f;
    if (si_set_import_meta(c, JS_VALUE_GET_PTR(f), name) < 0) {
        JS_FreeValue(c, f);
        return JS_EXCEPTION;
    }
    return JS_EvalFunction(c, f);
}
