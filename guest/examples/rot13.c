/* rot13.c — a plugin for examples/plugin_host.rs, in C: the same interface as
 * the JavaScript plugins in examples/plugins/. It receives text records on the
 * channel end "records", and for each sends its ROT13 to "results", until
 * "records" is closed. Returns how many it transformed.
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

EXPORT("transform") int32_t transform(void) {
    int32_t in = si_lookup_str("records"), out = si_lookup_str("results");
    if (in < 0) return in;
    if (out < 0) return out;
    int32_t n = 0;
    for (;;) {
        int32_t v = si_recv(in, SI_BLOCK);
        if (v == SI_ERR_CLOSED) return n;
        if (v < 0) return v;
        int32_t len = si_view_read(v, 0, record, sizeof record); /* copies the record in */
        si_release(v);
        if (len < 0) return len;
        for (int32_t i = 0; i < len; i++) record[i] = rot13(record[i]);
        int32_t rc = si_send(out, record, (uint32_t)len, SI_BLOCK); /* and the result out */
        if (rc < 0) return rc;
        n++;
    }
}
