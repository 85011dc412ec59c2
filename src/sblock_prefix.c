/*
 * sblock_prefix.c - the start of a snappy block as a block of its own
 * (see sblock_prefix.h).
 *
 * Snappy's elements, after the varint32 preamble (the decoded length):
 *   tag & 3 == 0  literal: length-1 in tag >> 2 (60..63: in the next 1..4
 *                 bytes, little-endian), then that many bytes
 *   tag & 3 == 1  copy: length 4 + (tag >> 2 & 7), offset (tag >> 5) << 8
 *                 | the next byte
 *   tag & 3 == 2  copy: length 1 + (tag >> 2), offset in the next 2 bytes
 *   tag & 3 == 3  copy: length 1 + (tag >> 2), offset in the next 4 bytes
 */
#include "sblock_prefix.h"

#include <string.h>

#include "sblock.h"

/* Reads the little-endian k-byte number at p. */
static inline size_t le(const uint8_t *p, unsigned k)
{
	size_t v = 0;

	for (unsigned i = k; i-- > 0;)
		v = v << 8 | p[i];
	return v;
}

/* Writes a literal header for n (>= 1) bytes at d; returns the end. */
static uint8_t *literal_tag(uint8_t *d, size_t n)
{
	size_t m = n - 1;
	unsigned k;

	if (m < 60) {
		*d++ = (uint8_t)(m << 2);
		return d;
	}
	k = m < 1u << 8 ? 1 : m < 1u << 16 ? 2 : m < 1u << 24 ? 3 : 4;
	*d++ = (uint8_t)((59 + k) << 2);
	for (unsigned i = 0; i < k; i++, m >>= 8)
		*d++ = (uint8_t)m;
	return d;
}

/* Writes a copy of n (1..64) bytes from off back at d; returns the end. */
static uint8_t *copy_tag(uint8_t *d, size_t off, size_t n)
{
	if (n >= 4 && n <= 11 && off < 2048) {
		*d++ = (uint8_t)(1 | (n - 4) << 2 | (off >> 8) << 5);
		*d++ = (uint8_t)off;
	} else if (off < 65536) {
		*d++ = (uint8_t)(2 | (n - 1) << 2);
		*d++ = (uint8_t)off;
		*d++ = (uint8_t)(off >> 8);
	} else {
		*d++ = (uint8_t)(3 | (n - 1) << 2);
		for (unsigned i = 0; i < 4; i++, off >>= 8)
			*d++ = (uint8_t)off;
	}
	return d;
}

int sblock_prefix(const uint8_t *in, size_t len, size_t cut, struct buf *out)
{
	const uint8_t *p, *e, *end = in + len, *data = NULL;
	size_t pos = 0, n = 0, off = 0, pre;
	uint32_t raw;
	unsigned t, k;
	uint8_t *d;

	if (cut == 0 || cut > SBLOCK_MAX_RAW ||
	    (pre = sblock_preamble(in, len, &raw)) == 0 || raw < cut)
		return -1;
	/* Whole elements while they end at or before cut; e is the start of
	 * the one that passes it (or ends exactly there). */
	for (p = e = in + pre; p < end && pos < cut; ) {
		e = p;
		t = *p++;
		switch (t & 3) {
		case 0:
			n = t >> 2;
			if (n >= 60) {
				k = (unsigned)n - 59;
				if ((size_t)(end - p) < k)
					return -1;
				n = le(p, k);
				p += k;
			}
			n++;
			if ((size_t)(end - p) < n)
				return -1;
			data = p;
			p += n;
			off = 0;
			break;
		case 1:
			if (p == end)
				return -1;
			n = 4 + (t >> 2 & 7);
			off = (size_t)(t >> 5) << 8 | *p++;
			break;
		default:
			k = (t & 3) == 2 ? 2 : 4;
			if ((size_t)(end - p) < k)
				return -1;
			n = 1 + (t >> 2);
			off = le(p, k);
			p += k;
			break;
		}
		if ((t & 3) != 0 && (off == 0 || off > pos))
			return -1;
		pos += n;
	}
	if (pos < cut)
		return -1;
	/* The elements before e whole, then e up to cut. */
	if (buf_reserve(out, 5 + (size_t)(e - in - pre) + 5 + (n > 5 ? n : 5)) < 0)
		return -1;
	buf_put_varint(out, cut);
	buf_append(out, in + pre, (size_t)(e - in - pre));
	n -= pos - cut;
	d = out->p + out->len;
	if (off == 0) {
		d = literal_tag(d, n);
		memcpy(d, data, n);
		d += n;
	} else {
		d = copy_tag(d, off, n);
	}
	out->len = (size_t)(d - out->p);
	return 0;
}
