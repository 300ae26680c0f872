/* sha.h — one-shot SHA digests (sha.c). */
#ifndef SI_SHA_H
#define SI_SHA_H
#include <stddef.h>
#include <stdint.h>

enum { SHA_1 = 1, SHA_256 = 2, SHA_384 = 3, SHA_512 = 4 };

/* Writes the digest of msg[0..len) to out (64 bytes of room); returns its
 * length, or -1 for an unknown algorithm. */
int sha_digest(int alg, const uint8_t *msg, size_t len, uint8_t *out);

#endif
