/*
 * series_limit.h - [tenant] max_series: how many distinct series each
 * tenant sent within its max_series_window, exactly, and whether a series
 * new to it may still be taken.
 *
 * A series is identified by the 64-bit hash of its labels as stored
 * (wire.h: the canonical encoding of the final label set, tenant label
 * included). Two different series of one tenant share a hash with
 * probability about n^2 / 2^65 for n series (1e-9 for 200,000 series): the
 * second is then taken as known, never refused wrongly.
 *
 * Each tenant with a limit has its own table, hash -> last seen, in open
 * addressing with 16-byte slots kept between 3/8 and 3/4 full: about 21
 * to 43 bytes per tracked series (SERIES_LIMIT_BYTES_MAX is the bound
 * stated in relay.conf), plus SERIES_LIMIT_TENANT_BYTES per tenant. A
 * tenant's table holds at most its max_series series (a new one is
 * refused at the limit), so memory is bounded by the sum of the limits.
 * Entries not seen within the window are removed when the table is swept:
 * every quarter of the window, and at once (at most once a second) when
 * the tenant is at its limit and a new series comes.
 *
 * Reservation: series_limit_admit decides under the tenant's lock and
 * takes a new series into the table at once, so two concurrent requests
 * cannot both pass the limit. A request that is not stored after all (a
 * later refusal, a failed commit) gives its new series back with
 * series_limit_rollback. (A series another request saw in between as
 * known is then stored without being tracked; its next sighting counts it
 * again.)
 *
 * Persistence: each request notes the series it added, and those whose
 * stored last-seen time is older than a quarter of the window (so steady
 * traffic writes each series about four times a window, not on every
 * request); the writer stores them with the batch, in the same
 * transaction (store.h, the series database), and deletes expired records.
 * At start, series_limit_load reads them back, so a restart or a kill -9
 * does not reset a tenant's count.
 *
 * Threads: any thread; one mutex per tenant table, one for the set of
 * tables (taken once per request).
 */
#ifndef RELAY_SERIES_LIMIT_H
#define RELAY_SERIES_LIMIT_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "config.h"

#define SERIES_LIMIT_BYTES_MAX 48     /* per tracked series, at most */
#define SERIES_LIMIT_TENANT_BYTES 256 /* per tenant with a table, about */

struct series_limit;        /* the tables of every tenant with a limit */
struct series_table;        /* one tenant's */
struct store;

/*
 * One request's dealings with its tenant's table. The transport owns it
 * (zeroed, then series_limit_begin); the buffers grow with the request.
 */
struct series_req {
	struct series_table *t;    /* ref; NULL: no limit for the request */
	uint64_t max;              /* the tenant's max_series */
	uint64_t window_ms;
	uint64_t now_ms;           /* wall-clock time of the request (stored) */
	uint32_t now_s;            /* the same, in table seconds */
	uint32_t refresh_s;        /* store a known series again after this */
	struct buf added;          /* uint64_t hashes it added to the table */
	struct buf notes;          /* uint64_t hashes to store: added and
				    * refreshed */
	uint64_t refused;          /* series refused at the limit */
};

/* A new, empty set of tables; NULL when out of memory. */
struct series_limit *series_limit_new(void);

/* Frees sl and its tables. Accepts NULL. */
void series_limit_free(struct series_limit *sl);

/*
 * Reads the stored series of the tenants that have a limit in cfg (the
 * others' records are left to expire), skipping the expired ones.
 * Returns 0 or an ERR_* code; *n counts the series loaded.
 */
int series_limit_load(struct series_limit *sl, struct store *st,
		      const struct config *cfg, uint64_t *n);

/*
 * Starts request q of tenant id[0..idlen) under section tc: no limit (q->t
 * NULL) unless tc sets max_series. max_series_per_request bounds q's
 * lists (a request cannot hold more series than its decoded size / 4).
 * Returns 0, or ERR_NOMEM (the caller refuses the request).
 */
int series_limit_begin(struct series_limit *sl, struct series_req *q,
		       const char *id, size_t idlen,
		       const struct config_tenant *tc,
		       uint64_t max_series_per_request);

/*
 * Whether the series with this hash is taken for q's tenant: 0 (known,
 * refreshed; or new, added to the table), or 1 (new, and the tenant is at
 * its limit: refused, counted in q->refused). Out of memory the series is
 * taken without being tracked. For wire_opts.admit.
 */
int series_limit_admit(struct series_req *q, uint64_t hash);

/* The request was not stored: gives back the series it added, and makes
 * the ones it refreshed due for storing again. */
void series_limit_rollback(struct series_req *q);

/* Frees q's buffers (not the table). */
void series_limit_end(struct series_req *q);

/* How many series the tenant's table holds (expired ones included until
 * the next sweep); 0 when it has none. For tests and tools. */
uint64_t series_limit_count(struct series_limit *sl, const char *id,
			    size_t idlen);

/* Bytes the tables take (slots and tenants). */
uint64_t series_limit_bytes(struct series_limit *sl);

/* Table seconds of a wall-clock time in ms (seconds since 2020). */
uint32_t series_limit_secs(uint64_t wall_ms);

#endif
