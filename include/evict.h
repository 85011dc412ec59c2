/*
 * evict.h - the buffer's eviction policy, run by the writer inside its
 * write transaction: with [storage] when_full = drop_oldest entries are
 * dropped to make room for a request, the oldest first of the tenants
 * that hold more than their fair share (max_size / tenants with data),
 * and only once none does the oldest of all; so one tenant's flood
 * evicts its own data before a quiet tenant's. Entries older than
 * max_age are dropped at most once a second. Dropped
 * samples are counted in usage (DROP_FULL, DROP_AGE) and metrics, and
 * logged once every ten seconds at most per reason.
 *
 * Owned by the writer thread; not thread-safe.
 */
#ifndef RELAY_EVICT_H
#define RELAY_EVICT_H

#include <stddef.h>
#include <stdint.h>

#include "store.h"
#include "usage.h"

struct queue;
struct queue_head;

struct evict {
	const struct store *st;   /* ref */
	struct queue_head *heads; /* owned: oldest entry per tenant, this round */
	size_t nheads, cap;
	int have_heads;
	uint64_t last_age_check_ms;
	uint64_t round_entries[USAGE_DROPPED_SLOTS]; /* this round, uncommitted */
	uint64_t round_samples[USAGE_DROPPED_SLOTS];
	uint64_t dropped_entries[USAGE_DROPPED_SLOTS]; /* not yet logged */
	uint64_t dropped_samples[USAGE_DROPPED_SLOTS];
	uint64_t drop_logged_ms[USAGE_DROPPED_SLOTS];
};

/* Told of each tenant's entries removed (gone), and what is its oldest
 * left (next), for the queue once the transaction commits. Returns 0 or
 * an ERR_* code. */
struct evict_sink {
	int (*removed)(void *arg, const char *tenant, size_t tlen,
		       const struct store_span *gone,
		       const struct store_span *next);
	void *arg;
};

/* Zeroes ev and allocates its heads. Returns 0 or ERR_NOMEM. */
int evict_init(struct evict *ev, const struct store *st);
void evict_free(struct evict *ev);

/* A new transaction: the queue's heads are read again when first needed. */
void evict_round_start(struct evict *ev);

/* The round's transaction committed: its drops are counted in /metrics
 * and logged (at most once per reason every ten seconds). A round that
 * failed drops nothing and counts nothing. */
void evict_round_committed(struct evict *ev);

/*
 * Drops entries (the oldest of the tenants over their share of limit
 * first, see above) until *used + need <= limit,
 * lowering *used by each one's footprint; drops nothing when dropping
 * every buffered entry could not make room. Returns 0 (the goal may be
 * out of reach: the caller checks *used) or an ERR_* code.
 */
int evict_for_space(struct evict *ev, struct store_txn *txn, struct queue *q,
		    struct usage_round *usage, const struct evict_sink *sink,
		    uint64_t *used, uint64_t need, uint64_t limit, uint64_t now);

/* Drops entries created before now - max_age_ms (0: no limit), checked at
 * most once a second, a bounded number per call. Returns 0 or an ERR_*
 * code. */
int evict_old(struct evict *ev, struct store_txn *txn, struct queue *q,
	      struct usage_round *usage, const struct evict_sink *sink,
	      uint64_t max_age_ms, uint64_t now);

#endif
