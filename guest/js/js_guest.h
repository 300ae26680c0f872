/*
 * js_guest.h — what subinterp_js.c shares with the JS guest's other C files
 * (loop.c, batch.c). All of it runs on the guest's one thread.
 */
#ifndef SI_JS_GUEST_H
#define SI_JS_GUEST_H

#include <stdbool.h>
#include <stdint.h>

#include "quickjs.h"

/* subinterp_js.c */

/* The ABI handle inside a Handle object; -1 with a TypeError pending when
 * `v` is not one. */
int si_js_get_handle(JSContext *c, JSValueConst v, int32_t *out);
/* Runs the pending promise jobs; 1 when one threw (reported), or an exit
 * status. */
int si_js_run_jobs(void);
/* Reports the pending exception; the eval status it makes (1, or an exit). */
int si_js_report_exception(const char *fallback_type);
/* Set by the rejection tracker: a promise was rejected with no handler. */
extern bool has_unhandled_rejection;
/* One message received on the end handle `end`, waiting at most
 * `timeout_us`, as recv() returns it (a View, or a channel end): a new
 * value; JS_UNDEFINED with the ABI error in *code when none was received;
 * JS_EXCEPTION when making the value failed. */
JSValue si_js_recv_message(JSContext *c, int32_t end, int64_t timeout_us, int32_t *code);
/* The Handle of a live view or channel end `obj` (free it), with its ABI
 * handle in *h; JS_UNDEFINED and *h 0 when `obj` is not one. */
JSValue si_js_own_handle(JSContext *c, JSValueConst obj, int32_t *h);
/* Throws the error the prelude maps an ABI `code` to (`timed`: a timeout
 * was given); JS_EXCEPTION. */
JSValue si_js_fail(JSContext *c, int32_t code, const char *what, bool timed);

/* batch.c */

/* Puts recvMany on RecvChannel.prototype and sendMany on
 * SendChannel.prototype. At set-up. */
void si_js_batch_setup(JSContext *c, JSValueConst recv_proto, JSValueConst send_proto);

/* loop.c */

/* Adds the loop's natives and evaluates loop.js with the prelude's
 * `internals`; 0, or -1 with an exception pending. At set-up. */
int si_js_loop_setup(JSContext *c, JSValueConst internals);
/* Runs promise jobs, then timers and waiting channel operations, until none
 * is left (or one fails): the eval status. */
int si_js_run_loop(JSContext *c);
/* Drops what a failed run left pending, if that is still to do (it is done
 * when the run fails, unless that was interrupted): at the start of a run. */
void si_js_loop_reset(JSContext *c);

#endif
