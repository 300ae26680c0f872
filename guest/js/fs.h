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

#endif
