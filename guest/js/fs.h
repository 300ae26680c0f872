/*
 * fs.h — files and ES module files for the JavaScript guest (fs.c).
 */
#ifndef SI_JS_FS_H
#define SI_JS_FS_H

#include "quickjs.h"

/* Sets the module loader and evaluates the node:* built-in modules
 * (node_modules.h). Called once, while the snapshot is taken; 0 on
 * success, -1 with an exception pending. */
int si_node_setup(JSContext *ctx);

/* Adds the natives the prelude uses (readModule) to its object `si`. */
void si_fs_add_natives(JSContext *ctx, JSValueConst si);

/* Gives module `m`, named `name`, its import.meta.url, filename and dirname
 * when `name` is an absolute path (meta.c); 0, or -1 with an exception
 * pending. */
int si_set_import_meta(JSContext *ctx, JSModuleDef *m, const char *name);

/* Compiles and evaluates module source `src` (NUL-terminated) named `name`,
 * with its import.meta set first: its evaluation's promise, or
 * JS_EXCEPTION. */
JSValue si_eval_module(JSContext *ctx, const char *src, size_t len, const char *name);

#endif
