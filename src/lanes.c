/*
 * lanes.c - reading an entry's lane table (see lanes.h).
 */
#include "lanes.h"

#include <string.h>

#include "sblock.h"

#define ENTRY_HDR_LEN 40

int lanes_table(const uint8_t *v, size_t len, unsigned version,
		unsigned nlanes, uint32_t raw_len, uint32_t samples,
		uint32_t series, struct lane_table *t)
{
	uint64_t raw = 0, smp = 0, ser = 0;
	size_t off;

	memset(t, 0, sizeof(*t));
	if (len <= ENTRY_HDR_LEN)
		return -1;
	if (version == 1) {
		if (nlanes != 0)
			return -1;
		t->n = 1;
		t->mask = 1;
		t->part[0].lane = 0;
		t->part[0].block = v + ENTRY_HDR_LEN;
		t->part[0].len = len - ENTRY_HDR_LEN;
		t->part[0].raw_len = raw_len;
		t->part[0].samples = samples;
		t->part[0].series = series;
		return 0;
	}
	if (version != 2 || nlanes == 0 || nlanes > LANES ||
	    (len - ENTRY_HDR_LEN) / sizeof(struct lane_rec) < nlanes)
		return -1;
	off = ENTRY_HDR_LEN + nlanes * sizeof(struct lane_rec);
	for (unsigned i = 0; i < nlanes; i++) {
		struct lane_rec r;
		struct lane_part *lp = &t->part[i];

		memcpy(&r, v + ENTRY_HDR_LEN + i * sizeof(r), sizeof(r));
		if (r.lane >= LANES || r.zero[0] || r.zero[1] || r.zero[2] ||
		    (i > 0 && r.lane <= t->part[i - 1].lane) ||
		    r.block_len == 0 || r.block_len > len - off)
			return -1;
		lp->lane = r.lane;
		lp->block = v + off;
		lp->len = r.block_len;
		lp->raw_len = r.raw_len;
		lp->samples = r.samples;
		lp->series = r.series;
		t->mask |= 1u << r.lane;
		off += r.block_len;
		raw += r.raw_len;
		smp += r.samples;
		ser += r.series;
	}
	if (off != len || raw != raw_len || smp != samples || ser != series)
		return -1;
	t->n = nlanes;
	return 0;
}

int lanes_part_ok(const struct lane_part *p)
{
	uint32_t stated;

	return p->len > 0 && sblock_preamble(p->block, p->len, &stated) != 0 &&
	       stated == p->raw_len;
}

int lanes_parse(const uint8_t *v, size_t len, unsigned version,
		unsigned nlanes, uint32_t raw_len, uint32_t samples,
		uint32_t series, struct lane_table *t)
{
	if (lanes_table(v, len, version, nlanes, raw_len, samples, series,
			t) < 0)
		return -1;
	for (unsigned i = 0; i < t->n; i++)
		if (!lanes_part_ok(&t->part[i]))
			return -1;
	return 0;
}

const struct lane_part *lanes_find(const struct lane_table *t, unsigned lane)
{
	for (unsigned i = 0; i < t->n; i++)
		if (t->part[i].lane == lane)
			return &t->part[i];
	return NULL;
}
