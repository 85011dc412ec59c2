/*
 * sblock_prefix.h - the start of a snappy block as a block of its own,
 * without compressing again.
 *
 * A back-reference in a snappy block only reaches back into what the
 * block decoded before it. So the elements that decode the first cut
 * bytes, the last of them shortened to end at cut, form a whole block
 * that decodes to those bytes:
 *
 *   block:   preamble(n)   e0 e1 ... ek ... em     decodes to raw[0..n)
 *   prefix:  preamble(cut) e0 e1 ... ek'           decodes to raw[0..cut)
 *
 * ek' is ek cut where the prefix ends (a literal keeps its first bytes, a
 * copy its first length). Ingest stores the first lane of a request that
 * spans several lanes this way (ingest.c): its block costs a pass over
 * the elements instead of a compression, and is as small as the sender
 * made it.
 */
#ifndef RELAY_SBLOCK_PREFIX_H
#define RELAY_SBLOCK_PREFIX_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"

/*
 * Appends to out a whole snappy block (preamble included) that decodes to
 * the first cut bytes (cut >= 1) of what the whole block in[0..len)
 * decodes to, made of its elements. Returns 0, or -1 when the block is
 * malformed before cut, decodes to fewer than cut bytes, or out's bound
 * is hit (out then holds a partial block the caller discards).
 */
int sblock_prefix(const uint8_t *in, size_t len, size_t cut, struct buf *out);

#endif
