/*
 * salvage_tails.c - `relay salvage` and entries' tails (store.h, "Heads
 * and tails"): each queue head the copy meets is joined with its tail
 * records, looked up one by one in the old store's tails database (with
 * the same checked reader, lmdb_read.h: a few page reads per entry, no
 * more memory than a page per tree level), before it is checked and
 * written again.
 */
#include "salvage_int.h"

#include <stdio.h>
#include <string.h>

#include "buf.h"
#include "err.h"
#include "store_int.h"

int salvage_tails_load(struct salvage_state *s, struct lmdb_file *f,
		       char *err, size_t errlen)
{
	struct lmdb_walk w;

	(void)err;
	(void)errlen;
	memset(&w, 0, sizeof(w));
	w.name = "the main DB";
	s->file = f;
	/* A store before format 6 has none: nothing to join. */
	s->has_tails = lmdb_find_db(f, "tails", &s->tails, &w) == 0;
	return 0;
}

/* Appends a tail record's value to the buf (arg). */
static int append_tail(void *arg, const struct lmdb_entry *e)
{
	struct buf *out = arg;

	if (e->val == NULL || e->vlen == 0 || e->vlen > 65536)
		return -1;   /* not a tail */
	return buf_append(out, e->val, e->vlen) < 0 ? ERR_NOMEM : 0;
}

int salvage_tails_join(const struct salvage_state *s, const char *tenant,
		       size_t tlen, uint64_t seq, const uint8_t *head,
		       size_t hlen, size_t len, struct buf *out)
{
	uint8_t key[9 + TENANT_ID_MAX];
	int rc;

	buf_reset(out);
	if (!s->has_tails || tlen > TENANT_ID_MAX || hlen < 2 || len <= hlen)
		return -1;
	if (buf_append(out, head, hlen) < 0)
		return ERR_NOMEM;
	for (int i = 0; i < 8; i++)
		key[i] = (uint8_t)(seq >> (56 - 8 * i));
	memcpy(key + 9, tenant, tlen);
	for (unsigned chunk = 0; out->len < len && chunk < STORE_TAIL_CHUNKS;
	     chunk++) {
		key[8] = (uint8_t)chunk;
		rc = lmdb_get(s->file, &s->tails, key, 9 + tlen, append_tail,
			      out);
		if (rc == ERR_NOMEM)
			return rc;
		if (rc != 0)
			return -1;
	}
	if (out->len != len)
		return -1;
	out->p[1] &= (uint8_t)~STORE_ENTRY_TAIL;   /* whole now */
	return 0;
}

void salvage_tails_free(struct salvage_state *s)
{
	s->file = NULL;
	s->has_tails = 0;
}
