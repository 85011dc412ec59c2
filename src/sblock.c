/*
 * sblock.c - merging snappy blocks without recompressing (see sblock.h).
 */
#include "sblock.h"

#include <string.h>

size_t sblock_preamble(const uint8_t *p, size_t len, uint32_t *raw)
{
	uint64_t v = 0;

	for (size_t i = 0; i < len && i < 5; i++) {
		v |= (uint64_t)(p[i] & 0x7f) << (7 * i);
		if ((p[i] & 0x80) == 0) {
			if (v > SBLOCK_MAX_RAW)
				return 0;
			*raw = (uint32_t)v;
			return i + 1;
		}
	}
	return 0;
}

size_t sblock_concat_size(uint64_t raw_total, size_t elements_total)
{
	return varint_size(raw_total) + elements_total;
}

int64_t sblock_concat(struct buf *out, const struct sblock_part *parts, size_t n)
{
	uint64_t total = 0;
	size_t elements = 0;
	uint32_t raw;

	for (size_t i = 0; i < n; i++) {
		size_t pre = sblock_preamble(parts[i].p, parts[i].len, &raw);
		if (pre == 0)
			return -1;
		total += raw;
		elements += parts[i].len - pre;
	}
	if (total > SBLOCK_MAX_RAW)
		return -1;
	if (buf_reserve(out, sblock_concat_size(total, elements)) < 0)
		return -1;
	buf_put_varint(out, total);
	for (size_t i = 0; i < n; i++) {
		size_t pre = sblock_preamble(parts[i].p, parts[i].len, &raw);
		buf_append(out, parts[i].p + pre, parts[i].len - pre);
	}
	return (int64_t)total;
}

int sblock_strip(struct sblock_part *part, uint64_t *raw_total)
{
	uint32_t raw;
	size_t pre = sblock_preamble(part->p, part->len, &raw);

	if (pre == 0)
		return -1;
	part->p += pre;
	part->len -= pre;
	*raw_total += raw;
	return 0;
}

int sblock_stream_init(struct sblock_stream *s,
		       const struct sblock_part *elements, size_t n,
		       uint64_t raw_total)
{
	uint64_t v = raw_total;

	memset(s, 0, sizeof(*s));
	if (raw_total > SBLOCK_MAX_RAW)
		return -1;
	s->elements = elements;
	s->n = n;
	while (v >= 0x80) {
		s->preamble[s->preamble_len++] = (uint8_t)(v | 0x80);
		v >>= 7;
	}
	s->preamble[s->preamble_len++] = (uint8_t)v;
	s->len = s->preamble_len;
	for (size_t i = 0; i < n; i++)
		s->len += elements[i].len;
	return 0;
}

size_t sblock_stream_read(struct sblock_stream *s, void *dst, size_t max)
{
	uint8_t *out = dst;
	size_t done = 0, k;

	if (s->pos < s->preamble_len) {
		k = s->preamble_len - (size_t)s->pos;
		if (k > max)
			k = max;
		memcpy(out, s->preamble + s->pos, k);
		done = k;
		s->pos += k;
	}
	while (done < max && s->part < s->n) {
		const struct sblock_part *e = &s->elements[s->part];

		k = e->len - s->off;
		if (k > max - done)
			k = max - done;
		if (k > 0)
			memcpy(out + done, e->p + s->off, k);
		done += k;
		s->pos += k;
		s->off += k;
		if (s->off == e->len) {
			s->part++;
			s->off = 0;
		}
	}
	return done;
}

int sblock_stream_iov(const struct sblock_stream *s, struct iovec *iov,
		      int max)
{
	size_t part = s->part, off = s->off;
	int k = 0;

	if (k < max && s->pos < s->preamble_len) {
		iov[k].iov_base = (void *)(s->preamble + s->pos);
		iov[k++].iov_len = s->preamble_len - (size_t)s->pos;
	}
	for (; k < max && part < s->n; part++, off = 0) {
		const struct sblock_part *e = &s->elements[part];

		if (e->len == off)
			continue;
		iov[k].iov_base = (void *)(e->p + off);
		iov[k++].iov_len = e->len - off;
	}
	return k;
}

void sblock_stream_skip(struct sblock_stream *s, size_t n)
{
	size_t k;

	if (s->pos < s->preamble_len) {
		k = s->preamble_len - (size_t)s->pos;
		if (k > n)
			k = n;
		s->pos += k;
		n -= k;
	}
	while (n > 0 && s->part < s->n) {
		const struct sblock_part *e = &s->elements[s->part];

		k = e->len - s->off;
		if (k > n)
			k = n;
		n -= k;
		s->pos += k;
		s->off += k;
		if (s->off == e->len) {
			s->part++;
			s->off = 0;
		}
	}
	/* Parts of no bytes at the end count as read. */
	while (s->part < s->n && s->elements[s->part].len == 0)
		s->part++;
}

void sblock_stream_rewind(struct sblock_stream *s)
{
	s->pos = 0;
	s->part = 0;
	s->off = 0;
}
