/*
 * evict.c - dropping the oldest entries, for room or for age (see
 * evict.h).
 */
#include "evict.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "err.h"
#include "log.h"
#include "metrics.h"
#include "queue.h"

/* Entries dropped per round at most for age (keeps commits short). */
#define EVICT_PER_ROUND 1024
#define MIN_HEADS 64

/* Why an entry is dropped, and the bound that stops it. */
struct goal {
	enum usage_drop why;
	uint64_t max_age_ms;      /* DROP_AGE: drop while older than this */
	uint64_t *used, need, limit; /* DROP_FULL: drop until used+need fits */
};

int evict_init(struct evict *ev, const struct store *st)
{
	memset(ev, 0, sizeof(*ev));
	ev->st = st;
	ev->cap = MIN_HEADS;
	ev->heads = calloc(ev->cap, sizeof(*ev->heads));
	return ev->heads != NULL ? 0 : ERR_NOMEM;
}

void evict_free(struct evict *ev)
{
	free(ev->heads);
	ev->heads = NULL;
}

void evict_round_start(struct evict *ev)
{
	ev->have_heads = 0;
	memset(ev->round_entries, 0, sizeof(ev->round_entries));
	memset(ev->round_samples, 0, sizeof(ev->round_samples));
}

/* Reads every tenant's oldest entry, room made for all of them. */
static int read_heads(struct evict *ev, struct queue *q)
{
	for (;;) {
		ev->nheads = queue_heads(q, ev->heads, ev->cap);
		if (ev->nheads < ev->cap)
			return 0;
		struct queue_head *h = realloc(ev->heads, 2 * ev->cap * sizeof(*h));
		if (h == NULL)
			return ERR_NOMEM;
		ev->heads = h;
		ev->cap *= 2;
	}
}

static int goal_met(const struct goal *g, const struct queue_head *h)
{
	if (h == NULL)
		return 1;
	if (g->why == DROP_AGE)
		return clock_age_ms(h->created_ms) <= g->max_age_ms;
	return *g->used + g->need <= g->limit;
}

/* One line per reason every ten seconds at most. */
static void log_drops(struct evict *ev, enum usage_drop why)
{
	uint64_t now = clock_mono_ms(); /* a timer: monotonic */

	if (ev->dropped_entries[why] == 0 || now - ev->drop_logged_ms[why] < 10000)
		return;
	log_msg(LOG_WARN, why == DROP_AGE ?
		"dropped buffer entries older than max_age" :
		"buffer full, dropped the oldest entries",
		"entries=%llu samples=%llu",
		(unsigned long long)ev->dropped_entries[why],
		(unsigned long long)ev->dropped_samples[why]);
	ev->dropped_entries[why] = ev->dropped_samples[why] = 0;
	ev->drop_logged_ms[why] = now;
}

/*
 * The head to drop next: for age, the oldest of all. For room, the oldest
 * of the tenants holding more than their fair share of the buffer (limit
 * / tenants with data), so that a tenant's flood evicts its own entries
 * and a quiet tenant's go last; the oldest of all once no tenant is over
 * its share. NULL when nothing is left.
 */
static struct queue_head *victim(struct evict *ev, const struct goal *g)
{
	struct queue_head *h = NULL, *over = NULL, *e;
	uint64_t share, n = 0;

	for (size_t i = 0; i < ev->nheads; i++)
		n += ev->heads[i].seq != 0;
	if (n == 0)
		return NULL;
	share = g->why == DROP_FULL ? g->limit / n : UINT64_MAX;
	for (size_t i = 0; i < ev->nheads; i++) {
		e = &ev->heads[i];
		if (e->seq == 0)
			continue;
		if (h == NULL || e->created_ms < h->created_ms)
			h = e;
		if (e->bytes > share &&
		    (over == NULL || e->created_ms < over->created_ms))
			over = e;
	}
	return over != NULL ? over : h;
}

/*
 * Drops the entries victim() picks until the goal is met, at most
 * max of them. Counts them in usage and metrics. Returns 0 or an ERR_*
 * code.
 */
static int evict(struct evict *ev, struct store_txn *txn, struct queue *q,
		 struct usage_round *usage, const struct evict_sink *sink,
		 const struct goal *g, uint64_t now, int max)
{
	struct store_span gone, next;
	struct queue_head *h;
	uint64_t samples = 0, entries = 0, lost;
	int rc, n = 0, left;

	if (!ev->have_heads) {
		if ((rc = read_heads(ev, q)) != 0)
			return rc;
		ev->have_heads = 1;
	}
	for (; n < max; n++) {
		h = victim(ev, g);
		if (goal_met(g, h))
			break;
		memset(&gone, 0, sizeof(gone));
		/* What its lanes delivered is not dropped: all of it when its
		 * deletion was left to a sweep (store.h). */
		left = store_entry_undelivered(txn, h->id, h->idlen, h->seq,
					       &lost);
		rc = store_delete_range(txn, h->id, h->idlen, h->seq, h->seq,
					&gone, &next);
		if (rc != 0)
			return rc;
		h->seq = next.entries ? next.first_seq : 0;
		h->created_ms = next.created_ms;
		h->bytes = h->bytes > gone.bytes ? h->bytes - gone.bytes : 0;
		if (gone.entries == 0)
			continue;
		if ((rc = sink->removed(sink->arg, h->id, h->idlen, &gone, &next)) != 0)
			return rc;
		if (g->why == DROP_FULL) {
			uint64_t fp = store_value_footprint(ev->st, h->idlen,
							    gone.bytes);
			*g->used = *g->used > fp ? *g->used - fp : 0;
		}
		if (!left)
			continue;
		lost = lost < gone.samples ? lost : gone.samples;
		if ((rc = usage_count_dropped(usage, h->id, h->idlen, now, g->why,
					      lost)) != 0)
			return rc;
		samples += lost;
		entries += gone.entries;
	}
	ev->round_entries[g->why] += entries;
	ev->round_samples[g->why] += samples;
	return 0;
}

void evict_round_committed(struct evict *ev)
{
	static const enum usage_drop whys[] = {DROP_FULL, DROP_AGE};

	for (size_t i = 0; i < sizeof(whys) / sizeof(whys[0]); i++) {
		enum usage_drop why = whys[i];

		if (ev->round_entries[why] > 0) {
			metric_add(why == DROP_AGE ? &metrics.samples_dropped_age :
				   &metrics.samples_dropped_full,
				   ev->round_samples[why]);
			ev->dropped_entries[why] += ev->round_entries[why];
			ev->dropped_samples[why] += ev->round_samples[why];
		}
		log_drops(ev, why);
	}
}

int evict_for_space(struct evict *ev, struct store_txn *txn, struct queue *q,
		    struct usage_round *usage, const struct evict_sink *sink,
		    uint64_t *used, uint64_t need, uint64_t limit, uint64_t now)
{
	struct goal g = {DROP_FULL, 0, used, need, limit};
	struct queue_totals t;
	uint64_t most;

	/* What dropping every buffered entry could free at most (each one's
	 * bytes, and a page of rounding, its node and key): when even that
	 * leaves no room (the set-aside, usage and other records fill the
	 * rest of limit), nothing is dropped for a request that is refused
	 * anyway. Loose for entries much smaller than a page. */
	queue_totals(q, &t);
	most = t.bytes + t.entries * (store_page_size(ev->st) + 16 +
				      STORE_KEY_MAX);
	if (*used + need > limit + most)
		return 0;
	return evict(ev, txn, q, usage, sink, &g, now, INT32_MAX);
}

int evict_old(struct evict *ev, struct store_txn *txn, struct queue *q,
	      struct usage_round *usage, const struct evict_sink *sink,
	      uint64_t max_age_ms, uint64_t now)
{
	struct goal g = {DROP_AGE, 0, NULL, 0, 0};

	uint64_t mono = clock_mono_ms();

	/* Ages by clock_age_ms, which a step of the wall clock cannot
	 * hasten; checked at most once a second. */
	if (max_age_ms == 0 || mono - ev->last_age_check_ms < 1000)
		return 0;
	ev->last_age_check_ms = mono;
	g.max_age_ms = max_age_ms;
	return evict(ev, txn, q, usage, sink, &g, now, EVICT_PER_ROUND);
}
