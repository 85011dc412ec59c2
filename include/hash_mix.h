/*
 * hash_mix.h - the two steps of the relay's 64-bit hashes of bytes (the
 * lane hash in wire_emit.c, part of the stored format, and the relabel
 * cache's in relabel_cache.c): a 128-bit multiply folded to 64 bits, and
 * little-endian loads, so that a hash is the same on every host.
 */
#ifndef RELAY_HASH_MIX_H
#define RELAY_HASH_MIX_H

#include <stdint.h>
#include <string.h>

#ifdef __SIZEOF_INT128__
__extension__ typedef unsigned __int128 hash_u128;
#endif

/* Folds the 128-bit product of a and b to 64 bits. */
static inline uint64_t hash_mix(uint64_t a, uint64_t b)
{
#ifdef __SIZEOF_INT128__
	hash_u128 r = (hash_u128)a * b;

	return (uint64_t)r ^ (uint64_t)(r >> 64);
#else
	return (a * b) ^ ((a >> 32) * (b >> 32)) ^ ((a * b) >> 29);
#endif
}

/* The 8 bytes at p as a little-endian integer. */
static inline uint64_t hash_load64(const uint8_t *p)
{
	uint64_t v;

	memcpy(&v, p, 8);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
	v = __builtin_bswap64(v);
#endif
	return v;
}

#endif
