/*
 * sblock.h - snappy block helpers.
 *
 * A snappy block is varint32(decoded length) followed by elements (literals
 * and back-references). A back-reference never reaches before the start of
 * its own block, so the elements of several blocks, written one after the
 * other behind a new preamble holding the sum of their lengths, form one
 * valid block that decodes to the concatenation of theirs. Concatenated
 * WriteRequests are one WriteRequest (protobuf merges repeated fields), so
 * batches are merged for storage and for delivery without decompressing or
 * compressing anything again.
 */
#ifndef RELAY_SBLOCK_H
#define RELAY_SBLOCK_H

#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "buf.h"

/* Largest decoded length a merged block may state (varint32 preamble). */
#define SBLOCK_MAX_RAW 0xffffffffu

/*
 * Reads the preamble of block p[0..len). Returns its size in bytes (1..5)
 * and the stated decoded length in *raw, or 0 when it is malformed.
 */
size_t sblock_preamble(const uint8_t *p, size_t len, uint32_t *raw);

/* One block to merge: a whole snappy block, preamble included. */
struct sblock_part {
	const uint8_t *p; /* ref */
	size_t len;
};

/*
 * Appends to out one block that decodes to the concatenation of the n parts.
 * Returns the merged decoded length, or -1 when a part is malformed, the
 * total passes SBLOCK_MAX_RAW, or out's bound is hit (out then holds a
 * partial block the caller discards).
 */
int64_t sblock_concat(struct buf *out, const struct sblock_part *parts, size_t n);

/* Bytes sblock_concat appends for parts with these totals. */
size_t sblock_concat_size(uint64_t raw_total, size_t elements_total);

/*
 * Turns a whole block into its elements: moves part past its preamble and
 * adds the decoded length the preamble states to *raw_total. Returns 0, or
 * -1 when the preamble is malformed (part is unchanged then).
 */
int sblock_strip(struct sblock_part *part, uint64_t *raw_total);

/*
 * The block sblock_concat would make, read piece by piece from where its
 * parts lie instead of copied into one buffer: the merged preamble, then
 * each part's elements in order.
 *
 *   preamble (varint32 raw_total) | elements[0] | elements[1] | ...
 */
struct sblock_stream {
	const struct sblock_part *elements; /* ref: preambles stripped */
	size_t n;
	uint8_t preamble[5];
	size_t preamble_len;
	uint64_t len;   /* bytes of the whole block */
	uint64_t pos;   /* bytes read so far */
	size_t part;    /* element part pos is in (n at the end) */
	size_t off;     /* pos's offset in that part */
};

/*
 * Sets s to read the block merging the n parts of elements[] (stripped with
 * sblock_strip, so raw_total is their decoded total), from the start. The
 * parts are borrowed: they must stay where they are while s is read.
 * Returns 0, or -1 when raw_total passes SBLOCK_MAX_RAW.
 */
int sblock_stream_init(struct sblock_stream *s,
		       const struct sblock_part *elements, size_t n,
		       uint64_t raw_total);

/* Copies the next bytes of the block, at most max, to dst. Returns how
 * many: less than max only at the end, 0 once all were read. */
size_t sblock_stream_read(struct sblock_stream *s, void *dst, size_t max);

/* Goes back to the start of the block. */
void sblock_stream_rewind(struct sblock_stream *s);

/* Points iov[0..max) at the block's next bytes where they lie, from the
 * current position on, without moving it. Returns how many are set: 0
 * once all were read. */
int sblock_stream_iov(const struct sblock_stream *s, struct iovec *iov,
		      int max);

/* Moves the position n bytes on (n at most what is left). */
void sblock_stream_skip(struct sblock_stream *s, size_t n);

#endif
