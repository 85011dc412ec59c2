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

#endif
