/*
 * buf.h - a growable byte buffer with a hard upper bound.
 *
 * Every buffer that holds request data is bounded at creation (buf_init's
 * max): an append that would pass the bound fails instead of growing, so a
 * hostile request can never make the relay allocate more than the limit.
 */
#ifndef RELAY_BUF_H
#define RELAY_BUF_H

#include <stddef.h>
#include <stdint.h>

struct buf {
	uint8_t *p;   /* owned; NULL until the first append */
	size_t len;   /* bytes in use */
	size_t cap;   /* bytes allocated */
	size_t max;   /* most bytes the buffer may ever hold */
};

/* Initialises an empty buffer that may grow up to max bytes. */
void buf_init(struct buf *b, size_t max);

/* Frees the storage; the buffer is empty and reusable afterwards. */
void buf_free(struct buf *b);

/* Empties the buffer but keeps its storage for reuse. */
static inline void buf_reset(struct buf *b) { b->len = 0; }

/* Makes room for n more bytes. Returns 0, or -1 when that would pass max
 * or memory is short (the buffer is unchanged then). */
int buf_reserve(struct buf *b, size_t n);

/* Appends n bytes. Returns 0 or -1 as buf_reserve. */
int buf_append(struct buf *b, const void *data, size_t n);

/* Appends a protobuf base-128 varint. Returns 0 or -1. */
int buf_put_varint(struct buf *b, uint64_t v);

/* Appends printf-formatted text (no NUL kept in len). Returns 0 or -1. */
int buf_printf(struct buf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Number of bytes the varint encoding of v takes (1..10). */
static inline size_t varint_size(uint64_t v)
{
	size_t n = 1;
	while (v >= 0x80) {
		v >>= 7;
		n++;
	}
	return n;
}

#endif
