/*
 * entries.c - a round's entries being assembled (see entries.h).
 */
#include "entries.h"

#include <stdlib.h>
#include <string.h>

#include "err.h"

static void entry_empty(struct open_entry *e)
{
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

int entry_add(struct open_entry *e, const struct chunk *ch)
{
	if (e->nparts == e->cap) {
		size_t cap = e->cap ? e->cap * 2 : 16;
		struct sblock_part *p = realloc(e->parts, cap * sizeof(*p));
		if (p == NULL)
			return ERR_NOMEM;
		e->parts = p;
		e->cap = cap;
	}
	e->parts[e->nparts].p = ch->block;
	e->parts[e->nparts].len = ch->len;
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
	uint64_t bytes, seq;
	int rc;

	if (e->nparts == 0)
		return 1;
	e->hdr.created_ms = created_ms;
	if (e->dest != NULL &&
	    (rc = store_dest_note(txn, e->tenant, e->tlen, e->dest)) != 0)
		return rc;
	rc = store_put_entry(txn, e->tenant, e->tlen, &e->hdr, e->parts,
			     e->nparts, &seq, &bytes);
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
		free(s->open[i].parts);
	free(s->open);
	s->open = NULL;
	s->n = s->cap = 0;
}
