/*
 * series_limit.c - the exact per-tenant series count behind [tenant]
 * max_series (see series_limit.h).
 *
 * A tenant's table is an array of slots, open addressing with linear
 * probing on the hash's low bits (the series hash is already well mixed).
 * Hash 0 marks an empty slot, so a series whose hash is 0 is tracked as 1.
 * The table doubles at 3/4 full; a sweep rebuilds it from the live entries,
 * at the size that keeps them under 3/4 (so at least 3/8 full after a
 * sweep that removed nothing). Times are seconds since 2020-01-01 on the
 * clock that ages stored records (clock.h: clock_age_now_ms).
 */
#include "series_limit.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "err.h"
#include "log.h"
#include "store.h"

#define EPOCH_2020_S 1577836800ull
#define MIN_SLOTS 64u
#define TENANT_BUCKETS 1024u
#define SWEEP_EVERY_FRACTION 4   /* a sweep every window / 4 */

struct slot {
	uint64_t hash;               /* 0: empty */
	uint32_t seen_s;             /* last seen */
	uint32_t stored_s;           /* last seen as stored; 0: not stored */
};

struct series_table {
	pthread_mutex_t lock;
	char id[TENANT_ID_MAX + 1];
	size_t idlen;
	struct slot *slots;          /* owned; cap of them */
	size_t cap;                  /* a power of two, or 0 */
	size_t n;                    /* slots in use */
	uint32_t window_s;           /* of the last request */
	uint32_t next_sweep_s;
	uint32_t last_sweep_s;
	uint32_t oldest_s;           /* no entry was seen before (a bound) */
	struct series_table *next;   /* bucket chain */
};

struct series_limit {
	pthread_mutex_t lock;        /* the buckets */
	struct series_table *buckets[TENANT_BUCKETS];
	size_t ntables;
};

uint32_t series_limit_secs(uint64_t wall_ms)
{
	uint64_t s = wall_ms / 1000;

	return s > EPOCH_2020_S ? (uint32_t)(s - EPOCH_2020_S) : 1;
}

static uint64_t id_hash(const char *id, size_t n)
{
	uint64_t h = 1469598103934665603ull;

	for (size_t i = 0; i < n; i++)
		h = (h ^ (uint8_t)id[i]) * 1099511628211ull;
	return h;
}

struct series_limit *series_limit_new(void)
{
	struct series_limit *sl = calloc(1, sizeof(*sl));

	if (sl != NULL)
		pthread_mutex_init(&sl->lock, NULL);
	return sl;
}

void series_limit_free(struct series_limit *sl)
{
	struct series_table *t, *next;

	if (sl == NULL)
		return;
	for (size_t i = 0; i < TENANT_BUCKETS; i++) {
		for (t = sl->buckets[i]; t != NULL; t = next) {
			next = t->next;
			pthread_mutex_destroy(&t->lock);
			free(t->slots);
			free(t);
		}
	}
	pthread_mutex_destroy(&sl->lock);
	free(sl);
}

/* The tenant's table, made when create is set and it has none. NULL when
 * there is none, or out of memory. */
static struct series_table *table_get(struct series_limit *sl, const char *id,
				      size_t idlen, int create)
{
	struct series_table **b, *t;

	pthread_mutex_lock(&sl->lock);
	b = &sl->buckets[id_hash(id, idlen) % TENANT_BUCKETS];
	for (t = *b; t != NULL; t = t->next)
		if (t->idlen == idlen && memcmp(t->id, id, idlen) == 0)
			break;
	if (t == NULL && create && idlen <= TENANT_ID_MAX &&
	    (t = calloc(1, sizeof(*t))) != NULL) {
		pthread_mutex_init(&t->lock, NULL);
		memcpy(t->id, id, idlen);
		t->idlen = idlen;
		t->next = *b;
		*b = t;
		sl->ntables++;
	}
	pthread_mutex_unlock(&sl->lock);
	return t;
}

/* The slot of hash h in t, or the empty slot where it would go. t->cap > 0;
 * lock held. */
static struct slot *slot_find(const struct series_table *t, uint64_t h)
{
	size_t mask = t->cap - 1, i = (size_t)h & mask;

	while (t->slots[i].hash != 0 && t->slots[i].hash != h)
		i = (i + 1) & mask;
	return &t->slots[i];
}

/* Moves the entries of t not expired at now_s (all when window_s is 0)
 * into a new array of cap slots. Returns 0 or -1 (out of memory: t as it
 * was). Lock held. */
static int table_rebuild(struct series_table *t, size_t cap, uint32_t now_s,
			 uint32_t window_s)
{
	struct slot *old = t->slots, *s;
	size_t oldcap = t->cap, n = 0;

	if ((t->slots = calloc(cap, sizeof(*t->slots))) == NULL) {
		t->slots = old;
		return -1;
	}
	t->cap = cap;
	for (size_t i = 0; i < oldcap; i++) {
		if (old[i].hash == 0 ||
		    (window_s && old[i].seen_s + (uint64_t)window_s <= now_s))
			continue;
		s = slot_find(t, old[i].hash);
		*s = old[i];
		n++;
	}
	t->n = n;
	free(old);
	return 0;
}

/* Removes the entries not seen within the window, rebuilding the table
 * only when some are; notes the oldest time seen of those left. Lock
 * held. */
static void table_sweep(struct series_table *t, uint32_t now_s)
{
	size_t live = 0, cap = MIN_SLOTS;
	uint32_t oldest = now_s;

	for (size_t i = 0; i < t->cap; i++) {
		const struct slot *s = &t->slots[i];
		if (s->hash == 0 || s->seen_s + (uint64_t)t->window_s <= now_s)
			continue;
		live++;
		if (s->seen_s < oldest)
			oldest = s->seen_s;
	}
	while (live * 4 >= cap * 3)
		cap *= 2;
	/* Out of memory: the expired entries stay until the next sweep. */
	if (t->cap > 0 && (live < t->n || cap < t->cap / 2))
		table_rebuild(t, cap, now_s, t->window_s);
	/* Out of memory the expired entries are still there: no bound. */
	t->oldest_s = t->n == live ? oldest : 0;
	t->last_sweep_s = now_s;
	t->next_sweep_s = now_s + (t->window_s / SWEEP_EVERY_FRACTION ?
				   t->window_s / SWEEP_EVERY_FRACTION : 1);
}

/* Room for one more entry (doubles at 3/4). Returns 0 or -1. Lock held. */
static int table_room(struct series_table *t)
{
	if (t->cap > 0 && (t->n + 1) * 4 <= t->cap * 3)
		return 0;
	return table_rebuild(t, t->cap ? t->cap * 2 : MIN_SLOTS, 0, 0);
}

/* Deletes the entry at s, moving later entries of its probe run back so
 * that every entry stays reachable from its home slot. Lock held. */
static void slot_delete(struct series_table *t, struct slot *s)
{
	size_t mask = t->cap - 1, i = (size_t)(s - t->slots), j = i, k;

	for (;;) {
		j = (j + 1) & mask;
		if (t->slots[j].hash == 0)
			break;
		k = (size_t)t->slots[j].hash & mask;
		/* The entry at j stays when its home k lies cyclically in
		 * (i, j]. */
		if (i <= j ? (i < k && k <= j) : (i < k || k <= j))
			continue;
		t->slots[i] = t->slots[j];
		i = j;
	}
	t->slots[i].hash = 0;
	t->n--;
}

int series_limit_begin(struct series_limit *sl, struct series_req *q,
		       const char *id, size_t idlen,
		       const struct config_tenant *tc,
		       uint64_t max_series_per_request)
{
	size_t bound = (size_t)max_series_per_request * sizeof(uint64_t);
	uint64_t window_s;

	q->t = NULL;
	q->refused = 0;
	if (sl == NULL || tc == NULL || tc->max_series == 0)
		return 0;
	buf_free(&q->added);
	buf_free(&q->notes);
	buf_init(&q->added, bound);
	buf_init(&q->notes, bound);
	if ((q->t = table_get(sl, id, idlen, 1)) == NULL)
		return ERR_NOMEM;
	window_s = (tc->max_series_window_ms + 999) / 1000;
	q->max = tc->max_series;
	q->window_ms = window_s * 1000;
	q->now_ms = clock_age_now_ms();
	q->now_s = series_limit_secs(q->now_ms);
	q->refresh_s = (uint32_t)(window_s / SWEEP_EVERY_FRACTION ?
				  window_s / SWEEP_EVERY_FRACTION : 1);
	pthread_mutex_lock(&q->t->lock);
	if (q->t->window_s != (uint32_t)window_s) {
		/* A reload changed the window: each series' record, written
		 * with the old one (and expired on disk by it), is written
		 * again at the series' next sighting. */
		if (q->t->window_s != 0)
			for (size_t i = 0; i < q->t->cap; i++)
				q->t->slots[i].stored_s = 0;
		q->t->window_s = (uint32_t)window_s;
		q->t->next_sweep_s = 0;
	}
	pthread_mutex_unlock(&q->t->lock);
	return 0;
}

/* Notes h in b (a request's list). Out of memory the note is lost: the
 * series is then stored later, or not tracked after a restart. */
static void note(struct buf *b, uint64_t h)
{
	buf_append(b, &h, sizeof(h));
}

int series_limit_admit(struct series_req *q, uint64_t hash)
{
	struct series_table *t = q->t;
	uint64_t h = hash ? hash : 1;
	uint32_t now = q->now_s;
	struct slot *s;
	int rc = 0;

	pthread_mutex_lock(&t->lock);
	if (now >= t->next_sweep_s)
		table_sweep(t, now);
	s = t->cap ? slot_find(t, h) : NULL;
	if (s != NULL && s->hash == h &&
	    s->seen_s + (uint64_t)t->window_s > now) {
		/* Known. */
		s->seen_s = now > s->seen_s ? now : s->seen_s;
		if (s->stored_s == 0 || now - s->stored_s >= q->refresh_s) {
			s->stored_s = now;
			note(&q->notes, h);
		}
		goto out;
	}
	if (s != NULL && s->hash == h) {
		/* Seen, but not within the window: new again. */
		slot_delete(t, s);
	}
	/* At the limit, a sweep can free room only when the oldest entry
	 * may have expired: without that bound a tenant at its limit that
	 * keeps sending new series would rebuild its whole table (time under
	 * the lock, and twice its memory) every second. */
	if (t->n >= q->max && t->last_sweep_s != now &&
	    now >= t->oldest_s + (uint64_t)t->window_s)
		table_sweep(t, now);
	if (t->n >= q->max) {
		q->refused++;
		rc = 1;
		goto out;
	}
	if (table_room(t) < 0)
		goto out;            /* taken, not tracked */
	s = slot_find(t, h);
	s->hash = h;
	s->seen_s = now;
	s->stored_s = now;
	t->n++;
	note(&q->added, h);
	note(&q->notes, h);
out:
	pthread_mutex_unlock(&t->lock);
	return rc;
}

void series_limit_rollback(struct series_req *q)
{
	struct series_table *t = q->t;
	const uint64_t *h;
	struct slot *s;
	size_t i, n;

	if (t == NULL)
		return;
	pthread_mutex_lock(&t->lock);
	h = (const uint64_t *)q->notes.p;
	n = q->notes.len / sizeof(*h);
	for (i = 0; t->cap > 0 && i < n; i++)
		if ((s = slot_find(t, h[i]))->hash == h[i])
			s->stored_s = 0;
	h = (const uint64_t *)q->added.p;
	n = q->added.len / sizeof(*h);
	for (i = 0; t->cap > 0 && i < n; i++)
		if ((s = slot_find(t, h[i]))->hash == h[i] &&
		    s->seen_s == q->now_s)
			slot_delete(t, s);
	pthread_mutex_unlock(&t->lock);
	buf_reset(&q->added);
	buf_reset(&q->notes);
}

void series_limit_end(struct series_req *q)
{
	buf_free(&q->added);
	buf_free(&q->notes);
	q->t = NULL;
}

uint64_t series_limit_count(struct series_limit *sl, const char *id,
			    size_t idlen)
{
	struct series_table *t = table_get(sl, id, idlen, 0);
	uint64_t n;

	if (t == NULL)
		return 0;
	pthread_mutex_lock(&t->lock);
	n = t->n;
	pthread_mutex_unlock(&t->lock);
	return n;
}

uint64_t series_limit_bytes(struct series_limit *sl)
{
	struct series_table *t;
	uint64_t bytes = sizeof(*sl);

	pthread_mutex_lock(&sl->lock);
	for (size_t i = 0; i < TENANT_BUCKETS; i++)
		for (t = sl->buckets[i]; t != NULL; t = t->next)
			bytes += sizeof(*t) + t->cap * sizeof(struct slot);
	pthread_mutex_unlock(&sl->lock);
	return bytes;
}

/* ---- Loading the stored series ---- */

struct load_ctx {
	struct series_limit *sl;
	const struct config *cfg;
	uint64_t now_ms;
	uint64_t n;
};

/* One stored record: into its tenant's table unless the tenant has no
 * limit now or it is expired by the tenant's window now. */
static int load_one(void *arg, const char *tenant, size_t tlen, uint64_t hash,
		    uint64_t seen_ms, uint64_t window_ms)
{
	struct load_ctx *c = arg;
	const struct config_tenant *tc = config_tenant_find(c->cfg, tenant, tlen);
	struct series_table *t;
	struct slot *s;
	uint32_t seen;

	if (tc == NULL || tc->max_series == 0 || hash == 0 ||
	    seen_ms + tc->max_series_window_ms <= c->now_ms)
		return 0;
	if ((t = table_get(c->sl, tenant, tlen, 1)) == NULL)
		return ERR_NOMEM;
	seen = series_limit_secs(seen_ms);
	pthread_mutex_lock(&t->lock);
	if (table_room(t) < 0) {
		pthread_mutex_unlock(&t->lock);
		return ERR_NOMEM;
	}
	s = slot_find(t, hash);
	if (s->hash == 0) {
		t->n++;
		c->n++;
	}
	s->hash = hash;
	s->seen_s = seen;
	/* Written with another window than the tenant's now (the disk
	 * expires it by that one): written again at its next sighting. */
	s->stored_s = (window_ms + 999) / 1000 ==
		      (tc->max_series_window_ms + 999) / 1000 ? seen : 0;
	pthread_mutex_unlock(&t->lock);
	return 0;
}

int series_limit_load(struct series_limit *sl, struct store *st,
		      const struct config *cfg, uint64_t *n)
{
	struct load_ctx c = {sl, cfg, clock_age_now_ms(), 0};
	int rc = store_series_each(st, load_one, &c);

	*n = c.n;
	return rc;
}
