/* rot13.c — a plugin for examples/plugin_host.rs, in C: the same interface as
 * the JavaScript plugins in examples/plugins/, a function `transform` the host
 * calls with a record (Interpreter::call) and that gives back its ROT13.
 *
 * Build: make guest (-> target/guest/rot13.wasm).
 */
#include <stdint.h>
#include "subinterp.h"

#define EXPORT(name) __attribute__((export_name(name)))

static char record[64 * 1024];

static char rot13(char c) {
    if (c >= 'a' && c <= 'z') return (char)('a' + (c - 'a' + 13) % 26);
    if (c >= 'A' && c <= 'Z') return (char)('A' + (c - 'A' + 13) % 26);
    return c;
}

/* The record arrives as a view (borrowed: the host releases it); its
 * ROT13 goes back with si_call_output. Returns 0, or an ABI error code. */
EXPORT("transform") int32_t transform(int32_t input) {
    int32_t len = si_view_read(input, 0, record, sizeof record); /* copies the record in */
    if (len < 0) return len;
    for (int32_t i = 0; i < len; i++) record[i] = rot13(record[i]);
    return si_call_output(record, (uint32_t)len); /* and the result out */
}
