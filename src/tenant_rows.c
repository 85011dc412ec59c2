/*
 * tenant_rows.c - a table of one row per tenant (see tenant_rows.h).
 */
#include "tenant_rows.h"

#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "queue.h"

void tenant_rows_init(struct tenant_rows *rs, size_t size)
{
	memset(rs, 0, sizeof(*rs));
	rs->size = size < sizeof(struct tenant_row) ?
		   sizeof(struct tenant_row) : size;
}

struct tenant_row *tenant_rows_get(struct tenant_rows *rs, const char *id,
				   size_t idlen)
{
	struct tenant_row *r;
	unsigned char *p;

	if (idlen == 0 || idlen > TENANT_ID_MAX)
		return NULL;
	for (size_t i = 0; i < rs->n; i++) {
		r = tenant_rows_at(rs, i);
		if (r->idlen == idlen && memcmp(r->id, id, idlen) == 0)
			return r;
	}
	if (rs->n == rs->cap) {
		size_t cap = rs->cap ? rs->cap * 2 : 16;
		if ((p = realloc(rs->r, cap * rs->size)) == NULL) {
			rs->nomem = 1;
			return NULL;
		}
		rs->r = p;
		rs->cap = cap;
	}
	r = tenant_rows_at(rs, rs->n++);
	memset(r, 0, rs->size);
	memcpy(r->id, id, idlen);
	r->idlen = idlen;
	return r;
}

static void add_counters(const char *id, size_t idlen,
			 const struct tenant_counters *c, void *arg)
{
	struct tenant_row *r = tenant_rows_get(arg, id, idlen);

	if (r != NULL)
		r->c = *c;
}

static void add_buffer(const struct queue_tenant *t, void *arg)
{
	struct tenant_row *r = tenant_rows_get(arg, t->id, t->idlen);

	if (r == NULL)
		return;
	r->entries = t->entries;
	r->samples = t->samples;
	r->bytes = t->bytes;
	r->oldest_ms = t->oldest_ms;
}

int tenant_rows_collect(struct tenant_rows *rs, struct queue *q)
{
	tenant_stats_each(add_counters, rs);
	queue_each(q, add_buffer, rs);
	return rs->nomem ? ERR_NOMEM : 0;
}

void tenant_rows_free(struct tenant_rows *rs)
{
	free(rs->r);
	rs->r = NULL;
	rs->n = rs->cap = 0;
}
