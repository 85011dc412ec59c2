/*
 * salvage_tails.c - `relay salvage` and entries' tails (store.h, "Heads
 * and tails"): the old store's tails database is read first, whole, into
 * memory (under a page per entry), so that each queue head the copy meets
 * is joined with its tail before it is checked and written again.
 */
#include "salvage_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "store_int.h"

/* One tail record: its key (u64 big-endian seq, chunk, tenant) and value,
 * in one allocation. */
struct salvage_tail {
	uint8_t *rec;      /* owned: key then value */
	size_t klen, vlen;
};

struct tails_load {
	struct salvage_state *s;
	size_t cap;
	int nomem;
};

static int tail_cmp_key(const uint8_t *a, size_t alen, const uint8_t *b,
			size_t blen)
{
	int c = memcmp(a, b, alen < blen ? alen : blen);

	if (c != 0)
		return c;
	return alen < blen ? -1 : alen > blen;
}

static int tail_cmp(const void *a, const void *b)
{
	const struct salvage_tail *x = a, *y = b;

	return tail_cmp_key(x->rec, x->klen, y->rec, y->klen);
}

static int load_tail(void *arg, const struct lmdb_entry *e)
{
	struct tails_load *l = arg;
	struct salvage_state *s = l->s;
	struct salvage_tail *t;

	if (e->val == NULL || e->klen < 9 || e->klen > 9 + TENANT_ID_MAX ||
	    e->vlen == 0 || e->vlen > 65536)
		return 0;   /* not a tail: a head that needs it fails alone */
	if (s->ntail == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 256;
		if ((t = realloc(s->tail, cap * sizeof(*t))) == NULL)
			goto nomem;
		s->tail = t;
		l->cap = cap;
	}
	t = &s->tail[s->ntail];
	if ((t->rec = malloc(e->klen + e->vlen)) == NULL)
		goto nomem;
	memcpy(t->rec, e->key, e->klen);
	memcpy(t->rec + e->klen, e->val, e->vlen);
	t->klen = e->klen;
	t->vlen = e->vlen;
	s->ntail++;
	return 0;
nomem:
	l->nomem = 1;
	return ERR_NOMEM;
}

int salvage_tails_load(struct salvage_state *s, struct lmdb_file *f,
		       char *err, size_t errlen)
{
	struct tails_load l = {s, 0, 0};
	struct salvage_db db;
	int rc;

	/* A store before format 6 has none: nothing to join. */
	rc = salvage_walk(f, "tails", &db, load_tail, &l, err, errlen);
	if (rc < 0 && l.nomem)
		snprintf(err, errlen, "out of memory");
	if (rc == 0 && s->ntail > 1)
		qsort(s->tail, s->ntail, sizeof(s->tail[0]), tail_cmp);
	return rc;
}

static const struct salvage_tail *tail_find(const struct salvage_state *s,
					    const uint8_t *key, size_t klen)
{
	size_t lo = 0, hi = s->ntail;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = tail_cmp_key(s->tail[mid].rec, s->tail[mid].klen, key,
				     klen);
		if (c == 0)
			return &s->tail[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

int salvage_tails_join(const struct salvage_state *s, const char *tenant,
		       size_t tlen, uint64_t seq, const uint8_t *head,
		       size_t hlen, size_t len, struct buf *out)
{
	uint8_t key[9 + TENANT_ID_MAX];
	const struct salvage_tail *t;

	buf_reset(out);
	if (tlen > TENANT_ID_MAX || hlen < 2 || len <= hlen ||
	    buf_append(out, head, hlen) < 0)
		return -1;
	for (int i = 0; i < 8; i++)
		key[i] = (uint8_t)(seq >> (56 - 8 * i));
	memcpy(key + 9, tenant, tlen);
	for (unsigned chunk = 0; out->len < len && chunk < STORE_TAIL_CHUNKS;
	     chunk++) {
		key[8] = (uint8_t)chunk;
		if ((t = tail_find(s, key, 9 + tlen)) == NULL)
			return -1;
		if (buf_append(out, t->rec + t->klen, t->vlen) < 0)
			return -1;
	}
	if (out->len != len)
		return -1;
	out->p[1] &= (uint8_t)~STORE_ENTRY_TAIL;   /* whole now */
	return 0;
}

void salvage_tails_free(struct salvage_state *s)
{
	for (size_t i = 0; i < s->ntail; i++)
		free(s->tail[i].rec);
	free(s->tail);
	s->tail = NULL;
	s->ntail = 0;
}
