/*
 * entries.c - a round's entries being assembled (see entries.h).
 */
#include "entries.h"

#include <stdlib.h>
#include <string.h>

#include "err.h"

static void entry_empty(struct open_entry *e)
{
	for (unsigned l = 0; l < LANES; l++) {
		e->lane[l].nparts = 0;
		e->lane[l].raw = 0;
		e->lane[l].samples = e->lane[l].series = 0;
	}
	e->nparts = 0;
	e->raw = 0;
	memset(&e->hdr, 0, sizeof(e->hdr));
}

void entry_set_reset(struct entry_set *s)
{
	s->n = 0;
}

struct open_entry *entry_set_find(struct entry_set *s, const char *tenant,
				  size_t tlen)
{
	struct open_entry *e;

	for (size_t i = 0; i < s->n; i++) {
		e = &s->open[i];
		if (e->tlen == tlen && memcmp(e->tenant, tenant, tlen) == 0)
			return e;
	}
	if (s->n == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 8;
		e = realloc(s->open, cap * sizeof(*e));
		if (e == NULL)
			return NULL;
		memset(e + s->cap, 0, (cap - s->cap) * sizeof(*e));
		s->open = e;
		s->cap = cap;
	}
	e = &s->open[s->n++];
	e->tenant = tenant;
	e->tlen = tlen;
	e->round_bytes = 0;
	e->dest = NULL;
	entry_empty(e);
	return e;
}

int entry_fits(const struct open_entry *e, const struct chunk *ch,
	       uint64_t max)
{
	const struct open_lane *l;

	if (ch->lane >= LANES)
		return 1;
	l = &e->lane[ch->lane];
	return l->nparts == 0 || l->raw + ch->raw_len <= max;
}

int entry_add(struct open_entry *e, const struct chunk *ch)
{
	struct open_lane *l;

	if (ch->lane >= LANES)
		return ERR_FAIL;
	l = &e->lane[ch->lane];
	if (l->nparts == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 16;
		struct sblock_part *p = realloc(l->parts, cap * sizeof(*p));
		if (p == NULL)
			return ERR_NOMEM;
		l->parts = p;
		l->cap = cap;
	}
	l->parts[l->nparts].p = ch->block;
	l->parts[l->nparts].len = ch->len;
	l->nparts++;
	l->raw += ch->raw_len;
	l->samples += (uint32_t)ch->counts.samples;
	l->series += (uint32_t)ch->counts.series;
	e->nparts++;
	e->raw += ch->raw_len;
	e->hdr.series += (uint32_t)ch->counts.series;
	e->hdr.samples += (uint32_t)ch->counts.samples;
	e->hdr.histograms += (uint32_t)ch->counts.histograms;
	e->hdr.exemplars += (uint32_t)ch->counts.exemplars;
	e->hdr.metadata += (uint32_t)ch->counts.metadata;
	return 0;
}

int entry_write(struct open_entry *e, struct store_txn *txn,
		uint64_t created_ms, struct entry_written *out)
{
	struct store_lane_in in[LANES];
	uint64_t bytes, seq;
	size_t n = 0;
	int rc;

	if (e->nparts == 0)
		return 1;
	e->hdr.created_ms = created_ms;
	if (e->dest != NULL &&
	    (rc = store_dest_note(txn, e->tenant, e->tlen, e->dest)) != 0)
		return rc;
	for (unsigned l = 0; l < LANES; l++) {
		if (e->lane[l].nparts == 0)
			continue;
		in[n].lane = l;
		in[n].parts = e->lane[l].parts;
		in[n].nparts = e->lane[l].nparts;
		in[n].samples = e->lane[l].samples;
		in[n].series = e->lane[l].series;
		n++;
	}
	rc = store_put_lanes(txn, e->tenant, e->tlen, &e->hdr, in, n, &seq,
			     &bytes);
	if (rc != 0)
		return rc;
	out->seq = seq;
	out->bytes = bytes;
	out->samples = e->hdr.samples;
	entry_empty(e);
	return 0;
}

void entry_set_free(struct entry_set *s)
{
	for (size_t i = 0; i < s->cap; i++)
		for (unsigned l = 0; l < LANES; l++)
			free(s->open[i].lane[l].parts);
	free(s->open);
	s->open = NULL;
	s->n = s->cap = 0;
}
