/* web.h — the JS guest's web-standard globals (web.c, url.c, sha.c). */
#ifndef SI_WEB_H
#define SI_WEB_H
#include <stddef.h>

#include "quickjs.h"

/* Defines the web globals (web.js) and the console (console.js) on ctx's
 * global object, given the guest's natives `si`; 0, or -1 with an exception
 * pending. Called once while the guest is set up (in the snapshot). */
int web_setup(JSContext *ctx, JSValueConst si);

/* Adds url.c's natives (URL records and search parameters, by ada) to obj. */
int url_add_natives(JSContext *ctx, JSValueConst obj);

/* Adds encoding.c's natives (TextDecoder's UTF-16 and windows-1252
 * decoders, the streaming split of UTF-8) to obj (the guest's `si`). */
int encoding_add_natives(JSContext *ctx, JSValueConst obj);

/* A JS value as a USVString in UTF-8 (lone surrogates as U+FFFD), NUL
 * terminated; free with js_free. NULL with an exception pending. */
char *usv_string(JSContext *ctx, JSValueConst v, size_t *len);

#endif
