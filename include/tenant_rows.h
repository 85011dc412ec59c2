/*
 * tenant_rows.h - one row per tenant, joining what memory holds of it:
 * its counters since start (tenant_stats.h) and its share of the buffer
 * (queue.h). The one table behind the per-tenant series of /metrics
 * (metrics.c) and the tenants of the status page (status_page.c), which
 * each add columns of their own: a caller's row starts with struct
 * tenant_row and the table is made for the caller's row size.
 *
 * Not thread-safe: a table belongs to the request that builds it.
 */
#ifndef RELAY_TENANT_ROWS_H
#define RELAY_TENANT_ROWS_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "tenant_stats.h"

struct queue;

struct tenant_row {
	char id[TENANT_ID_MAX + 1];
	size_t idlen;
	struct tenant_counters c;       /* zero when it has none */
	uint64_t entries, samples, bytes, oldest_ms;  /* in the buffer */
};

struct tenant_rows {
	unsigned char *r;  /* owned: n rows of size bytes each */
	size_t n, cap, size;
	int nomem;         /* a row could not be added */
};

/* An empty table of rows of size bytes (at least sizeof(struct
 * tenant_row)). */
void tenant_rows_init(struct tenant_rows *rs, size_t size);

/* The tenant's row, added (zeroed but for its id) if it has none. NULL
 * for an id of 0 or more than TENANT_ID_MAX bytes, or when out of memory
 * (rs->nomem is then set). */
struct tenant_row *tenant_rows_get(struct tenant_rows *rs, const char *id,
				   size_t idlen);

/* Row i (< rs->n). */
static inline struct tenant_row *tenant_rows_at(const struct tenant_rows *rs,
						size_t i)
{
	return (struct tenant_row *)(void *)(rs->r + i * rs->size);
}

/* Adds a row for every tenant with counters or buffered entries, and
 * fills their counters and buffer columns. Returns 0, or ERR_NOMEM. */
int tenant_rows_collect(struct tenant_rows *rs, struct queue *q);

void tenant_rows_free(struct tenant_rows *rs);

#endif
