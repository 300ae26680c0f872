/* relay.c — a reactor guest that passes messages along a chain of
 * interpreters using the subinterp ABI (guest/include/subinterp.h).
 *
 * Exports (each looks up the channel ends the host passed as "in" / "out"):
 *   relay()        forward every message from "in" to "out" without copying,
 *                  until "in" is closed; then close "out"; returns the count
 *   relay_one()    forward one message; returns 0 or an SI_ERR_* code
 *   read_prefix()  receive one message and read only its first 1 KiB;
 *                  returns the sum of those bytes
 *   upper()        receive every message, copy it in, upper-case it and send
 *                  the copy to "out", until "in" is closed; returns the count
 *   counter()      returns 1, 2, 3, ... on successive runs (state persists)
 *   buffer_addr()  the address of a static buffer (for isolation tests)
 *   poke()         writes 42 into that buffer; peek() reads it back
 */
#include <stdint.h>
#include "subinterp.h"

#define EXPORT(name) __attribute__((export_name(name)))

static uint8_t scratch[64 * 1024];
static int32_t calls;

EXPORT("relay") int32_t relay(void) {
    int32_t in = si_lookup_str("in"), out = si_lookup_str("out");
    if (in < 0) return in;
    if (out < 0) return out;
    int32_t n = 0;
    for (;;) {
        int32_t v = si_recv(in, SI_BLOCK);
        if (v == SI_ERR_CLOSED) break;
        if (v < 0) return v;
        int32_t rc = si_send_handle(out, v, SI_BLOCK); /* forwarded, no copy */
        si_release(v);
        if (rc < 0) return rc;
        n++;
    }
    si_close(out);
    return n;
}

EXPORT("relay_one") int32_t relay_one(void) {
    int32_t in = si_lookup_str("in"), out = si_lookup_str("out");
    int32_t v = si_recv(in, SI_BLOCK);
    if (v < 0) return v;
    int32_t rc = si_send_handle(out, v, SI_BLOCK);
    si_release(v);
    return rc;
}

EXPORT("read_prefix") int32_t read_prefix(void) {
    int32_t v = si_recv(si_lookup_str("in"), SI_BLOCK);
    if (v < 0) return v;
    int32_t n = si_view_read(v, 0, scratch, 1024); /* copies 1 KiB, not the whole view */
    si_release(v);
    if (n < 0) return n;
    int32_t sum = 0;
    for (int32_t i = 0; i < n; i++) sum += scratch[i];
    return sum;
}

EXPORT("upper") int32_t upper(void) {
    int32_t in = si_lookup_str("in"), out = si_lookup_str("out");
    int32_t n = 0;
    for (;;) {
        int32_t v = si_recv(in, SI_BLOCK);
        if (v == SI_ERR_CLOSED) break;
        if (v < 0) return v;
        int32_t len = si_view_read(v, 0, scratch, sizeof scratch);
        si_release(v);
        if (len < 0) return len;
        for (int32_t i = 0; i < len; i++)
            if (scratch[i] >= 'a' && scratch[i] <= 'z') scratch[i] -= 32;
        int32_t rc = si_send(out, scratch, (uint32_t)len, SI_BLOCK);
        if (rc < 0) return rc;
        n++;
    }
    si_close(out);
    return n;
}

EXPORT("counter") int32_t counter(void) { return ++calls; }

EXPORT("buffer_addr") int32_t buffer_addr(void) { return (int32_t)(uintptr_t)scratch; }

EXPORT("poke") void poke(void) { scratch[0] = 42; }

EXPORT("peek") int32_t peek(void) { return scratch[0]; }
