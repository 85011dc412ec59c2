/*
 * salvage_state.c - what `relay salvage` carries with the entries
 * (salvage_int.h): the lanes' delivery cursors and the destination
 * records, both keyed by sequence numbers that the copy changes.
 *
 * A cursor "lane L of tenant T is through old seq S" becomes "through the
 * new seq of T's last copied queue entry whose old seq is at most S": the
 * copy keeps each tenant's entries in their order, so the lane passes
 * over exactly the parts it had delivered. A destination record is noted
 * again before each copied entry that was under it (store_dest_note adds
 * one only where the tenant's latest differs), and each tenant's latest
 * at the end.
 */
#include "salvage_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "err.h"
#include "store_int.h"

/* One tenant's cursors. */
struct salvage_cursors {
	char tenant[TENANT_ID_MAX];
	size_t tlen;
	unsigned mask;                 /* lanes with a record */
	uint64_t old[STORE_LANES];     /* through, in the old numbers */
	uint64_t now[STORE_LANES];     /* the same, new numbers; 0: none */
};

/* One destination record of the old store. */
struct salvage_dest {
	char tenant[TENANT_ID_MAX];
	size_t tlen;
	uint64_t seq;                  /* the first entry it covers */
	struct store_dest d;
	int used;                      /* carried into the new store */
};

/* Key order: the tenant's bytes (a shorter id first on a tie), then seq. */
static int key_cmp(const char *a, size_t alen, uint64_t aseq, const char *b,
		   size_t blen, uint64_t bseq)
{
	int c = memcmp(a, b, alen < blen ? alen : blen);

	if (c != 0)
		return c;
	if (alen != blen)
		return alen < blen ? -1 : 1;
	return aseq < bseq ? -1 : aseq > bseq;
}

struct load {
	struct salvage_state *s;
	struct salvage_report *r;
	size_t cap;
	int nomem;
};

static void *grow(void *p, size_t *cap, size_t n, size_t size, int *nomem)
{
	void *q;

	if (n < *cap)
		return p;
	*cap = *cap ? *cap * 2 : 64;
	if ((q = realloc(p, *cap * size)) == NULL)
		*nomem = 1;
	return q;
}

static int load_cursor(void *arg, const struct lmdb_entry *e)
{
	struct load *l = arg;
	struct salvage_state *s = l->s;
	struct salvage_cursors *c;
	MDB_val k = {e->klen, (void *)e->key};
	const char *tenant;
	size_t tlen;
	uint64_t lane;
	void *p;

	l->r->lanes.read++;
	if (store_key_parse(&k, &tenant, &tlen, &lane) < 0 ||
	    lane >= STORE_LANES || e->val == NULL || e->vlen != 8) {
		salvage_invalid(l->r, &l->r->lanes, "", 0, 0,
				"lane cursor: bad key or value");
		return 0;
	}
	/* The walk gives keys in order, so a tenant's lanes are adjacent
	 * (state_sort merges what damage might have split). */
	c = s->ncur ? &s->cur[s->ncur - 1] : NULL;
	if (c == NULL || c->tlen != tlen || memcmp(c->tenant, tenant, tlen)) {
		if ((p = grow(s->cur, &l->cap, s->ncur, sizeof(*c),
			      &l->nomem)) == NULL)
			return ERR_NOMEM;
		s->cur = p;
		c = &s->cur[s->ncur++];
		memset(c, 0, sizeof(*c));
		memcpy(c->tenant, tenant, tlen);
		c->tlen = tlen;
	}
	memcpy(&c->old[lane], e->val, 8);
	c->mask |= 1u << lane;
	return 0;
}

static int load_dest(void *arg, const struct lmdb_entry *e)
{
	struct load *l = arg;
	struct salvage_state *s = l->s;
	struct salvage_dest *d;
	MDB_val k = {e->klen, (void *)e->key}, v = {e->vlen, (void *)e->val};
	const char *tenant;
	size_t tlen;
	uint64_t seq;
	void *p;

	l->r->dest.read++;
	if ((p = grow(s->dest, &l->cap, s->ndest, sizeof(*d),
		      &l->nomem)) == NULL)
		return ERR_NOMEM;
	s->dest = p;
	d = &s->dest[s->ndest];
	memset(d, 0, sizeof(*d));
	if (store_key_parse(&k, &tenant, &tlen, &seq) < 0 || e->val == NULL ||
	    store_dest_parse(&v, &d->d) < 0) {
		salvage_invalid(l->r, &l->r->dest, "", 0, 0,
				"destination record: bad key or value");
		return 0;
	}
	memcpy(d->tenant, tenant, tlen);
	d->tlen = tlen;
	d->seq = seq;
	s->ndest++;
	return 0;
}

static int cursors_cmp(const void *a, const void *b)
{
	const struct salvage_cursors *x = a, *y = b;

	return key_cmp(x->tenant, x->tlen, 0, y->tenant, y->tlen, 0);
}

static int dest_cmp(const void *a, const void *b)
{
	const struct salvage_dest *x = a, *y = b;

	return key_cmp(x->tenant, x->tlen, x->seq, y->tenant, y->tlen, y->seq);
}

/* The walk gives intact pages' keys in order; a damaged page that passed
 * its checks might not. The lookups below need both arrays sorted and
 * one cursor row per tenant: sort, and merge a tenant's rows. */
static void state_sort(struct salvage_state *s)
{
	size_t i, n = 0;

	if (s->ndest > 1)      /* the arrays are NULL when empty */
		qsort(s->dest, s->ndest, sizeof(*s->dest), dest_cmp);
	if (s->ncur > 1)
		qsort(s->cur, s->ncur, sizeof(*s->cur), cursors_cmp);
	for (i = 0; i < s->ncur; i++) {
		struct salvage_cursors *c = &s->cur[i];
		struct salvage_cursors *last = n ? &s->cur[n - 1] : NULL;

		if (last != NULL && cursors_cmp(last, c) == 0) {
			for (unsigned l = 0; l < STORE_LANES; l++)
				if (c->mask & (1u << l))
					last->old[l] = c->old[l];
			last->mask |= c->mask;
			continue;
		}
		if (n != i)
			s->cur[n] = *c;
		n++;
	}
	s->ncur = n;
}

int salvage_state_load(struct salvage_state *s, struct lmdb_file *f,
		       struct salvage_report *r, char *err, size_t errlen)
{
	struct load l = {s, r, 0, 0};
	int rc;

	memset(s, 0, sizeof(*s));
	rc = salvage_walk(f, "lanes", &r->lanes, load_cursor, &l, err, errlen);
	if (rc == 0) {
		l.cap = 0;
		rc = salvage_walk(f, "dest", &r->dest, load_dest, &l, err,
				  errlen);
	}
	if (rc == 0)
		rc = salvage_tails_load(s, f, err, errlen);
	if (rc < 0 && l.nomem)
		snprintf(err, errlen, "out of memory");
	if (rc == 0)
		state_sort(s);
	return rc;
}

static struct salvage_cursors *cursors_find(struct salvage_state *s,
					    const char *tenant, size_t tlen)
{
	size_t lo = 0, hi = s->ncur;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = key_cmp(s->cur[mid].tenant, s->cur[mid].tlen, 0,
				tenant, tlen, 0);
		if (c == 0)
			return &s->cur[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

/* The record in force for (tenant, seq): the last one at or below it. */
static struct salvage_dest *dest_find(struct salvage_state *s,
				      const char *tenant, size_t tlen,
				      uint64_t seq)
{
	size_t lo = 0, hi = s->ndest;
	struct salvage_dest *d;

	/* lo: the first record after (tenant, seq). */
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		d = &s->dest[mid];
		if (key_cmp(d->tenant, d->tlen, d->seq, tenant, tlen, seq) <= 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo == 0)
		return NULL;
	d = &s->dest[lo - 1];
	return d->tlen == tlen && memcmp(d->tenant, tenant, tlen) == 0 ? d : NULL;
}

int salvage_state_dest(struct salvage_state *s, struct store_txn *t,
		       const char *tenant, size_t tlen, uint64_t old_seq)
{
	struct salvage_dest *d = dest_find(s, tenant, tlen, old_seq);

	if (d == NULL)
		return 0;
	d->used = 1;
	return store_dest_note(t, tenant, tlen, &d->d);
}

void salvage_state_moved(struct salvage_state *s, const char *tenant,
			 size_t tlen, uint64_t old_seq, uint64_t new_seq)
{
	struct salvage_cursors *c = cursors_find(s, tenant, tlen);

	if (c == NULL)
		return;
	for (unsigned l = 0; l < STORE_LANES; l++)
		if ((c->mask & (1u << l)) && c->old[l] >= old_seq)
			c->now[l] = new_seq;
}

int salvage_state_write(struct salvage_state *s, struct store_txn *t,
			struct salvage_report *r)
{
	const struct salvage_dest *d;
	int rc;

	for (size_t i = 0; i < s->ncur; i++) {
		const struct salvage_cursors *c = &s->cur[i];
		for (unsigned l = 0; l < STORE_LANES; l++) {
			if (c->now[l] == 0)
				continue;
			if ((rc = store_lane_set(t, c->tenant, c->tlen, l,
						 c->now[l])) < 0)
				return rc;
			r->lanes.copied++;
		}
	}
	for (size_t i = 0; i < s->ndest; i++) {
		d = &s->dest[i];
		if (i + 1 == s->ndest || d[1].tlen != d->tlen ||
		    memcmp(d[1].tenant, d->tenant, d->tlen) != 0) {
			/* The tenant's latest: its next entries' too. */
			if ((rc = store_dest_note(t, d->tenant, d->tlen,
						  &d->d)) < 0)
				return rc;
			s->dest[i].used = 1;
		}
	}
	for (size_t i = 0; i < s->ndest; i++)
		r->dest.copied += (uint64_t)s->dest[i].used;
	return 0;
}

void salvage_state_free(struct salvage_state *s)
{
	free(s->cur);
	free(s->dest);
	salvage_tails_free(s);
	memset(s, 0, sizeof(*s));
}
