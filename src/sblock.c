/*
 * sblock.c - merging snappy blocks without recompressing (see sblock.h).
 */
#include "sblock.h"

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
