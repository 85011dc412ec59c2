/*
 * writer.c - group commit: the single LMDB writer thread (see writer.h).
 */
#include "writer.h"

#include <errno.h>
#include <sys/statvfs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "dedup.h"
#include "entries.h"
#include "log.h"
#include "metrics.h"
#include "prealloc.h"
#include "queue.h"
#include "setaside.h"
#include "store.h"
#include "tenant_stats.h"

enum op_kind { OP_ACK, OP_SET_ASIDE, OP_REFUSED, OP_REPLAY, OP_PURGE };

/* Entries dropped per round at most for age (keeps commits short). */
#define EVICT_PER_ROUND 1024
#define MAX_HEADS 4096
/* How often old sketches and usage past retention are removed. */
#define CLEANUP_EVERY_MS (60 * 1000)
#define ACK_WAIT_MS 100L

struct writer_op {
	enum op_kind kind;
	char tenant[TENANT_ID_MAX + 1];
	size_t tlen;
	uint64_t first, last;
	long status;             /* OP_SET_ASIDE: upstream status; OP_REFUSED: reason */
	uint64_t samples;        /* OP_REFUSED */
	char reason[512];
	struct setaside_filter filter; /* OP_REPLAY, OP_PURGE */
	struct writer_op *next;
};

/* What the queue learns once the transaction is committed. */
struct change {
	int added;                /* 1: added; 0: removed */
	char tenant[TENANT_ID_MAX + 1];
	size_t tlen;
	uint64_t seq, bytes, samples, created_ms;
	struct store_span gone, next;
};

struct writer {
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct batch *batches;
	struct batch **batches_tail;
	unsigned nbatches;        /* in the list */
	/* Group commit: after a round that stored n requests, the next waits
	 * a little for their senders' next requests (see gather()). */
	unsigned last_round;
	uint64_t last_commit_us;
	int idle;                 /* waiting for work: wake on any */
	int acks_only;            /* waiting for more deliveries: wake on any */
	unsigned want;            /* gathering: wake when this many wait */
	uint64_t commit_failures;         /* since the last line about them */
	uint64_t commit_failure_logged_ms;
	struct writer_op *ops;
	struct writer_op **ops_tail;
	unsigned nops, nacks;     /* in ops: all, and deliveries */
	uint64_t first_ack_us;    /* when the first delivery in ops came */
	int stopping;
	int exited;               /* the thread is gone */
	const struct config *cfg; /* ref */
	struct store *st;         /* ref */
	struct queue *q;          /* ref */
	/* Reused between rounds. */
	struct entry_set entries;
	struct usage_round usage;
	uint64_t last_cleanup_ms;
	uint64_t last_age_check_ms;
	uint64_t dropped_entries[USAGE_DROPPED_SLOTS]; /* not yet logged */
	uint64_t dropped_samples[USAGE_DROPPED_SLOTS];
	uint64_t drop_logged_ms[USAGE_DROPPED_SLOTS];
	struct queue_head *heads; /* oldest entry per tenant, this round */
	size_t nheads;
	int have_heads;
	struct change *changes;
	size_t nchanges, changes_cap;
	struct dedup *dedup;      /* owned */
	struct prealloc *pre;     /* owned; NULL when off */
};

void batch_release(struct batch *b)
{
	for (size_t i = 0; i < b->nchunks; i++)
		free(b->chunks[i].block);
	free(b->chunks);
	b->chunks = NULL;
	b->nchunks = 0;
}

static struct change *change_new(struct writer *w, const char *tenant,
				 size_t tlen)
{
	struct change *c;

	if (w->nchanges == w->changes_cap) {
		size_t cap = w->changes_cap ? w->changes_cap * 2 : 64;
		c = realloc(w->changes, cap * sizeof(*c));
		if (c == NULL)
			return NULL;
		w->changes = c;
		w->changes_cap = cap;
	}
	c = &w->changes[w->nchanges++];
	memset(c, 0, sizeof(*c));
	memcpy(c->tenant, tenant, tlen);
	c->tlen = tlen;
	return c;
}

/* Sink of set-aside operations inside the writer's transaction. */
struct sink_ctx {
	struct writer *w;
	uint64_t now;
	int failed;
};

static void sink_replayed(void *arg, const char *tenant, size_t tlen,
			  uint64_t seq, uint64_t bytes, uint64_t samples,
			  uint64_t created_ms)
{
	struct sink_ctx *sc = arg;
	struct change *c = change_new(sc->w, tenant, tlen);

	if (c == NULL) {
		sc->failed = 1;
		return;
	}
	c->added = 1;
	c->seq = seq;
	c->bytes = bytes;
	c->samples = samples;
	c->created_ms = created_ms;
}

static void sink_deleted(void *arg, const char *tenant, size_t tlen,
			 uint64_t samples)
{
	struct sink_ctx *sc = arg;
	struct usage_rec *u = usage_round_get(&sc->w->usage, tenant, tlen,
					      usage_hour(sc->now));

	if (u == NULL)
		sc->failed = 1;
	else
		u->samples_dropped[DROP_PURGED] += samples;
}

/* Replays or purges set-aside entries. Returns 0 or an error code. */
static int setaside_op(struct writer *w, MDB_txn *txn,
		       const struct writer_op *op, uint64_t now)
{
	struct sink_ctx sc = {w, now, 0};
	struct setaside_sink sink = {sink_replayed, sink_deleted, &sc};
	uint64_t n = 0;
	int rc;

	rc = op->kind == OP_REPLAY ?
	     setaside_replay(txn, w->st, &op->filter, &sink, &n) :
	     setaside_purge(txn, w->st, &op->filter, &sink, &n);
	if (rc == 0 && sc.failed)
		rc = ENOMEM;
	if (rc == 0)
		log_msg(LOG_INFO, op->kind == OP_REPLAY ?
			"set-aside entries queued again" : "set-aside entries deleted",
			"entries=%llu", (unsigned long long)n);
	return rc;
}

/* Keeps the set-aside entries within their size and age. */
static int trim_setaside(struct writer *w, MDB_txn *txn, uint64_t now)
{
	struct sink_ctx sc = {w, now, 0};
	struct setaside_sink sink = {NULL, sink_deleted, &sc};
	uint64_t n = 0;
	int rc;

	rc = setaside_trim(txn, w->st, w->cfg->setaside_max_size,
			   w->cfg->setaside_max_age_ms, now, &sink, &n);
	if (rc == 0 && n > 0)
		log_msg(LOG_WARN, "set-aside entries past their size or age deleted",
			"entries=%llu", (unsigned long long)n);
	return rc == 0 && sc.failed ? ENOMEM : rc;
}

/* Applies the forwarder's acknowledgements and set-asides. Returns 0 or an
 * LMDB error code. */
static int apply_ops(struct writer *w, MDB_txn *txn, struct writer_op *ops,
		     uint64_t now)
{
	struct usage_rec *d;
	struct writer_op *op;
	struct change *c;
	int rc;

	for (op = ops; op != NULL; op = op->next) {
		if ((d = usage_round_get(&w->usage, op->tenant, op->tlen,
					 usage_hour(now))) == NULL)
			return ENOMEM;
		if (op->kind == OP_REFUSED) {
			if (op->status >= 0 && op->status < USAGE_REFUSED_SLOTS) {
				d->samples_refused[op->status] += op->samples;
				d->requests_refused[op->status]++;
			}
			continue;
		}
		if (op->kind == OP_REPLAY || op->kind == OP_PURGE) {
			if ((rc = setaside_op(w, txn, op, now)) != 0)
				return rc;
			continue;
		}
		if ((c = change_new(w, op->tenant, op->tlen)) == NULL)
			return ENOMEM;
		if (op->kind == OP_ACK) {
			rc = store_delete_range(txn, w->st, op->tenant, op->tlen,
						op->first, op->last, &c->gone,
						&c->next);
		} else {
			rc = store_set_aside(txn, w->st, op->tenant, op->tlen,
					     op->first, op->status, op->reason,
					     &c->gone, &c->next);
			if (rc == MDB_NOTFOUND)  /* gone already: nothing moved */
				rc = 0;
		}
		if (rc != 0)
			return rc;
		/* Set-aside samples are kept, not dropped: they count as dropped
		 * when purged, as delivered when replayed and delivered. */
		if (op->kind == OP_ACK)
			d->samples_delivered += c->gone.samples;
	}
	return 0;
}

/* Why an entry is dropped, and the bound that stops it. */
struct evict_goal {
	enum usage_drop why;
	uint64_t cutoff_ms;       /* DROP_AGE: drop while older than this */
	uint64_t *used, need, limit; /* DROP_FULL: drop until used+need fits */
};

static int evict_done(const struct evict_goal *g, const struct queue_head *h)
{
	if (h == NULL)
		return 1;
	if (g->why == DROP_AGE)
		return h->created_ms >= g->cutoff_ms;
	return *g->used + g->need <= g->limit;
}

/*
 * Drops the oldest entries of all tenants until the goal is met, at most
 * max of them. Counts them in usage and metrics. Returns 0 or an LMDB error
 * code.
 */
static int evict(struct writer *w, MDB_txn *txn, const struct evict_goal *g,
		 uint64_t now, int max)
{
	struct queue_head *h;
	struct usage_rec *u;
	struct change *c;
	uint64_t samples = 0, entries = 0;
	int rc, n = 0;

	if (!w->have_heads) {
		w->nheads = queue_heads(w->q, w->heads, MAX_HEADS);
		w->have_heads = 1;
	}
	for (; n < max; n++) {
		h = NULL;
		for (size_t i = 0; i < w->nheads; i++) {
			if (w->heads[i].seq != 0 &&
			    (h == NULL || w->heads[i].created_ms < h->created_ms))
				h = &w->heads[i];
		}
		if (evict_done(g, h))
			break;
		if ((c = change_new(w, h->id, h->idlen)) == NULL)
			return ENOMEM;
		rc = store_delete_range(txn, w->st, h->id, h->idlen, h->seq,
					h->seq, &c->gone, &c->next);
		if (rc != 0)
			return rc;
		h->seq = c->next.entries ? c->next.first_seq : 0;
		h->created_ms = c->next.created_ms;
		if (c->gone.entries == 0)
			continue;
		if (g->why == DROP_FULL) {
			uint64_t fp = store_value_footprint(w->st, c->gone.bytes);
			*g->used = *g->used > fp ? *g->used - fp : 0;
		}
		if ((u = usage_round_get(&w->usage, h->id, h->idlen,
					 usage_hour(now))) == NULL)
			return ENOMEM;
		u->samples_dropped[g->why] += c->gone.samples;
		samples += c->gone.samples;
		entries += c->gone.entries;
	}
	if (entries > 0) {
		metric_add(g->why == DROP_AGE ? &metrics.samples_dropped_age :
			   &metrics.samples_dropped_full, samples);
		w->dropped_entries[g->why] += entries;
		w->dropped_samples[g->why] += samples;
	}
	/* One line per reason every ten seconds at most. */
	if (w->dropped_entries[g->why] > 0 && now - w->drop_logged_ms[g->why] >= 10000) {
		log_msg(LOG_WARN, g->why == DROP_AGE ?
			"dropped buffer entries older than max_age" :
			"buffer full, dropped the oldest entries",
			"entries=%llu samples=%llu",
			(unsigned long long)w->dropped_entries[g->why],
			(unsigned long long)w->dropped_samples[g->why]);
		w->dropped_entries[g->why] = w->dropped_samples[g->why] = 0;
		w->drop_logged_ms[g->why] = now;
	}
	return 0;
}

/* Writes an assembled entry, if any, and records the change for the
 * queue. Returns 0 or an error code. */
static int open_flush(struct writer *w, MDB_txn *txn, struct open_entry *e,
		      uint64_t created_ms)
{
	struct entry_written out;
	struct change *c;
	int rc;

	if ((rc = entry_write(e, txn, w->st, created_ms, &out)) != 0)
		return rc == 1 ? 0 : rc;
	if ((c = change_new(w, e->tenant, e->tlen)) == NULL)
		return ENOMEM;
	c->added = 1;
	c->seq = out.seq;
	c->bytes = out.bytes;
	c->samples = out.samples;
	c->created_ms = created_ms;
	return 0;
}

/* Decides which batches are stored (not resent, within the buffer and the
 * tenant's share) and writes those, merged per tenant, with their usage.
 * Returns 0 or an LMDB error code. */
static int write_batches(struct writer *w, MDB_txn *txn, struct batch *list,
			 uint64_t now)
{
	uint64_t used, limit = w->cfg->max_size;
	uint64_t window = w->cfg->dedup_window_ms;
	struct usage_rec *d;
	struct open_entry *e;
	struct batch *b;
	int rc;

	used = store_used_bytes(txn, w->st);
	entry_set_reset(&w->entries);
	for (b = list; b != NULL; b = b->next) {
		uint64_t fp = store_value_footprint(w->st, b->value_bytes);
		if ((rc = b->has_digest ? dedup_seen(w->dedup, txn, w->st, b->digest, now,
						     window) : 0) < 0)
			return -rc;
		if (rc == 1) {
			b->status = BATCH_DUPLICATE;
			continue;
		}
		if (used + fp > limit && w->cfg->when_full == WHEN_FULL_DROP_OLDEST) {
			struct evict_goal g = {DROP_FULL, 0, &used, fp, limit};
			if ((rc = evict(w, txn, &g, now, INT32_MAX)) != 0)
				return rc;
		}
		if (used + fp > limit) {
			b->status = BATCH_FULL;
			continue;
		}
		if ((e = entry_set_find(&w->entries, b->tenant, b->tlen)) == NULL)
			return ENOMEM;
		if (b->tenant_max_bytes > 0 &&
		    queue_tenant_bytes(w->q, b->tenant, b->tlen) + e->round_bytes +
		    b->value_bytes > b->tenant_max_bytes) {
			b->status = BATCH_TENANT_FULL;
			continue;
		}
		used += fp;
		e->round_bytes += b->value_bytes;
		b->status = BATCH_STORED;
		if (b->has_digest && window > 0 &&
		    (rc = dedup_remember(w->dedup, txn, w->st, b->digest, now)) != 0)
			return rc;
		d = usage_round_get(&w->usage, b->tenant, b->tlen, usage_hour(now));
		if (d == NULL)
			return ENOMEM;
		usage_add(d, &b->usage);
		if (b->nhll > 0 &&
		    (rc = usage_round_series(&w->usage, txn, w->st->usage_hll,
					     b->tenant, b->tlen, usage_hour(now),
					     b->hll, b->nhll)) != 0)
			return rc;
		for (size_t i = 0; i < b->nchunks; i++) {
			if (e->nparts > 0 &&
			    e->raw + b->chunks[i].raw_len > w->cfg->max_request_size &&
			    (rc = open_flush(w, txn, e, now)) != 0)
				return rc;
			/* The request counts in the entry its first chunk is in. */
			if (i == 0)
				e->hdr.requests++;
			if (entry_add(e, &b->chunks[i]) < 0)
				return ENOMEM;
		}
	}
	for (size_t i = 0; i < w->entries.n; i++) {
		if ((rc = open_flush(w, txn, &w->entries.open[i], now)) != 0)
			return rc;
	}
	return 0;
}

/* Drops entries older than max_age, checked at most once a second. */
static int evict_old(struct writer *w, MDB_txn *txn, uint64_t now)
{
	struct evict_goal g = {DROP_AGE, 0, NULL, 0, 0};

	if (w->cfg->max_age_ms == 0 || now - w->last_age_check_ms < 1000 ||
	    now < w->cfg->max_age_ms)
		return 0;
	w->last_age_check_ms = now;
	g.cutoff_ms = now - w->cfg->max_age_ms;
	return evict(w, txn, &g, now, EVICT_PER_ROUND);
}

/* Tells the queue what the committed transaction changed. */
static void publish_changes(struct writer *w)
{
	for (size_t i = 0; i < w->nchanges; i++) {
		struct change *c = &w->changes[i];
		if (c->added)
			queue_added(w->q, c->tenant, c->tlen, c->seq, c->bytes,
				    c->samples, c->created_ms);
		else if (c->gone.entries > 0)
			queue_removed(w->q, c->tenant, c->tlen, c->gone.entries,
				      c->gone.bytes, c->gone.samples,
				      c->next.entries ? c->next.first_seq : 0,
				      c->next.created_ms);
	}
}

/* One transaction: ops, then batches. Returns 0 or the error code. */
static int commit_round(struct writer *w, struct batch *list,
			struct writer_op *ops)
{
	uint64_t seq0 = w->st->next_seq, t0 = clock_mono_us(), now = clock_wall_ms(), used;
	MDB_txn *txn;
	int rc;

	w->nchanges = 0;
	w->have_heads = 0;
	usage_round_clear(&w->usage);
	prealloc_lock(w->pre);
	if ((rc = mdb_txn_begin(w->st->env, NULL, 0, &txn)) != 0) {
		prealloc_unlock(w->pre);
		return rc;
	}
	if ((rc = dedup_expire(w->dedup, txn, w->st, now,
				 w->cfg->dedup_window_ms)) != 0 ||
	    (now - w->last_cleanup_ms > CLEANUP_EVERY_MS &&
	     ((rc = usage_cleanup(txn, w->st->usage, w->st->usage_hll, now,
				  w->cfg->usage_retention_ms)) != 0 ||
	      (rc = trim_setaside(w, txn, now)) != 0)) ||
	    (rc = apply_ops(w, txn, ops, now)) != 0 ||
	    (rc = evict_old(w, txn, now)) != 0 ||
	    (rc = write_batches(w, txn, list, now)) != 0 ||
	    (rc = usage_round_flush(&w->usage, txn, w->st->usage,
				    w->st->usage_hll)) != 0 ||
	    (w->st->next_seq != seq0 &&
	     (rc = store_put_next_seq(txn, w->st)) != 0)) {
		mdb_txn_abort(txn);
		prealloc_unlock(w->pre);
		dedup_round_end(w->dedup, 0);
		w->st->next_seq = seq0;
		return rc;
	}
	used = store_used_bytes(txn, w->st);
	rc = mdb_txn_commit(txn);
	prealloc_unlock(w->pre);
	dedup_round_end(w->dedup, rc == 0);
	if (rc != 0) {
		w->st->next_seq = seq0;
		return rc;
	}
	if (now - w->last_cleanup_ms > CLEANUP_EVERY_MS)
		w->last_cleanup_ms = now;
	atomic_store(&metrics.storage_used_bytes, used);
	latency_observe(&metrics.commit_latency, clock_mono_us() - t0);
	metric_add(&metrics.commits, 1);
	publish_changes(w);
	return 0;
}

static void finish_batches(struct writer *w, struct batch *list,
			   enum batch_status failed)
{
	struct batch *b, *next;
	uint64_t n = 0;

	(void)w;
	for (b = list; b != NULL; b = next) {
		next = b->next;
		if (failed != BATCH_PENDING)
			b->status = failed;
		if (b->status == BATCH_STORED) {
			n++;
			tenant_stats_received(b->tenant, b->tlen, &b->usage, 0);
		} else if (b->status == BATCH_DUPLICATE) {
			tenant_stats_received(b->tenant, b->tlen, NULL, 1);
		}
		b->done(b, b->arg);
	}
	metric_add(&metrics.commit_batches, n);
}

static void free_ops(struct writer_op *ops)
{
	struct writer_op *next;

	for (; ops != NULL; ops = next) {
		next = ops->next;
		free(ops);
	}
}

/*
 * Called with the lock held once something is waiting. Senders of the
 * requests answered by the last round send their next ones a moment later;
 * if the round started at once it would take only those that came while
 * the last one synced, and the senders would settle into groups that each
 * wait for two syncs. So wait until as many requests as the last round
 * answered have come on top of those already waiting, but no longer than
 * half a commit (and at most 1 ms): a sync costs more than that wait.
 */
static void gather(struct writer *w)
{
	unsigned want = w->nbatches + w->last_round;
	uint64_t wait_us = w->last_commit_us / 2;
	struct timespec until;

	if (w->last_round == 0 || w->batches == NULL || w->stopping)
		return;
	if (wait_us > 1000)
		wait_us = 1000;
	until = clock_deadline(wait_us);
	w->want = want;
	while (w->nbatches < want && !w->stopping &&
	       pthread_cond_timedwait(&w->cond, &w->lock, &until) == 0)
		;
	w->want = 0;
}

/*
 * Called with the lock held. Deliveries come back one request at a time,
 * and a commit for each costs a sync apiece, while nothing waits for them:
 * a forwarder moves on as soon as it has reported one. So when only
 * deliveries wait, commit them ACK_WAIT_MS after the first of them came,
 * together with all that came meanwhile. Anything else (a request to
 * store, a stop) ends the wait. Not right after a round that stored
 * requests: their senders' next ones may be on the way, and gather() must
 * not then wait for as many again behind a round that took only a request
 * or two. After a crash, the deliveries of those milliseconds are sent
 * again, as those of a commit that did not happen would be.
 */
static void gather_acks(struct writer *w)
{
	uint64_t now = clock_mono_us(), due = w->first_ack_us + ACK_WAIT_MS * 1000;
	struct timespec until;

	if (w->batches != NULL || w->nops != w->nacks || w->stopping ||
	    w->last_round != 0 || due <= now)
		return;
	until = clock_deadline(due - now);
	w->acks_only = 1;
	while (w->nops == w->nacks && w->batches == NULL && !w->stopping &&
	       pthread_cond_timedwait(&w->cond, &w->lock, &until) == 0)
		;
	w->acks_only = 0;
}

/* Logs a failed commit with its likely cause: LMDB turns a write cut
 * short by a full disk into EIO, so the free space is looked at too. */
static void log_commit_error(struct writer *w, int rc, int refused)
{
	struct statvfs fs;
	unsigned long long avail = 0;
	uint64_t now = clock_wall_ms();
	int known;

	/* One line every five seconds at most, with how many failed. */
	w->commit_failures++;
	if (now - w->commit_failure_logged_ms < 5000)
		return;
	w->commit_failure_logged_ms = now;
	known = statvfs(w->cfg->path, &fs) == 0;
	if (known)
		avail = (unsigned long long)fs.f_bavail * fs.f_frsize;
	if (rc == ENOSPC || ((rc == EIO || rc == MDB_MAP_FULL) && known &&
			     avail < (16u << 20)))
		log_msg(LOG_ERROR, "buffer commit failed: no space left on the "
			"filesystem; refusing writes with 503 until space returns",
			"error=\"%s\" fs_free_bytes=%llu path=%s failed_commits=%llu "
			"requests_refused=%d", store_strerror(rc), avail, w->cfg->path,
			(unsigned long long)w->commit_failures, refused);
	else
		log_msg(LOG_ERROR, "buffer commit failed", "error=\"%s\" "
			"fs_free_bytes=%llu failed_commits=%llu requests_refused=%d",
			store_strerror(rc), avail,
			(unsigned long long)w->commit_failures, refused);
	w->commit_failures = 0;
}

static void *writer_main(void *arg)
{
	struct writer *w = arg;
	struct batch *list;
	struct writer_op *ops;
	uint64_t t0;
	int rc, stopping;

	for (;;) {
		pthread_mutex_lock(&w->lock);
		w->idle = 1;
		while (w->batches == NULL && w->ops == NULL && !w->stopping)
			pthread_cond_wait(&w->cond, &w->lock);
		w->idle = 0;
		gather_acks(w);
		gather(w);
		w->last_round = w->nbatches;
		w->nbatches = 0;
		list = w->batches;
		ops = w->ops;
		w->batches = NULL;
		w->batches_tail = &w->batches;
		w->ops = NULL;
		w->ops_tail = &w->ops;
		w->nops = w->nacks = 0;
		stopping = w->stopping;
		if (list == NULL && ops == NULL && stopping)
			w->exited = 1;
		pthread_mutex_unlock(&w->lock);
		if (list == NULL && ops == NULL && stopping)
			break;

		t0 = clock_mono_us();
		rc = commit_round(w, list, ops);
		w->last_commit_us = clock_mono_us() - t0;
		if (rc == 0) {
			finish_batches(w, list, BATCH_PENDING);
			free_ops(ops);
			continue;
		}
		metric_add(&metrics.commit_errors, 1);
		log_commit_error(w, rc, list != NULL);
		finish_batches(w, list, BATCH_FAILED);
		/* Acknowledgements alone need little space: try them again. */
		if (ops != NULL && list != NULL &&
		    (rc = commit_round(w, NULL, ops)) != 0)
			log_msg(LOG_ERROR, "buffer commit failed", "error=\"%s\" "
				"deliveries_forgotten=1", store_strerror(rc));
		free_ops(ops);
	}
	return NULL;
}

/* The dedup index, built from the store before the thread starts. */
static struct dedup *open_dedup(struct writer *w)
{
	struct dedup *d = NULL;
	MDB_txn *txn;
	int rc;

	if ((rc = mdb_txn_begin(w->st->env, NULL, 0, &txn)) == 0) {
		d = dedup_open(txn, w->st, clock_wall_ms(), w->cfg->dedup_window_ms, &rc);
		if (d == NULL)
			mdb_txn_abort(txn);
		else if ((rc = mdb_txn_commit(txn)) != 0) {
			dedup_free(d);
			d = NULL;
		}
	}
	if (d == NULL)
		log_msg(LOG_ERROR, "cannot read the dedup records", "error=\"%s\"",
			store_strerror(rc));
	return d;
}

struct writer *writer_start(const struct config *cfg, struct store *st,
			    struct queue *q)
{
	struct writer *w = calloc(1, sizeof(*w));

	if (w == NULL)
		return NULL;
	w->cfg = cfg;
	w->st = st;
	w->q = q;
	w->batches_tail = &w->batches;
	w->ops_tail = &w->ops;
	w->heads = calloc(MAX_HEADS, sizeof(*w->heads));
	if (w->heads == NULL) {
		free(w);
		return NULL;
	}
	if ((w->dedup = open_dedup(w)) == NULL) {
		free(w->heads);
		free(w);
		return NULL;
	}
	w->pre = prealloc_start(st, cfg->preallocate, 1);
	pthread_mutex_init(&w->lock, NULL);
	clock_cond_init(&w->cond);
	if (pthread_create(&w->thread, NULL, writer_main, w) != 0) {
		prealloc_stop(w->pre);
		pthread_mutex_destroy(&w->lock);
		pthread_cond_destroy(&w->cond);
		dedup_free(w->dedup);
		free(w->heads);
		free(w);
		return NULL;
	}
	return w;
}

void writer_stop(struct writer *w)
{
	pthread_mutex_lock(&w->lock);
	w->stopping = 1;
	pthread_cond_signal(&w->cond);
	pthread_mutex_unlock(&w->lock);
	pthread_join(w->thread, NULL);
	prealloc_stop(w->pre);
	entry_set_free(&w->entries);
	free(w->changes);
	usage_round_free(&w->usage);
	dedup_free(w->dedup);
	free(w->heads);
	pthread_mutex_destroy(&w->lock);
	pthread_cond_destroy(&w->cond);
	free(w);
}

void writer_submit(struct writer *w, struct batch *b)
{
	b->status = BATCH_PENDING;
	b->next = NULL;
	pthread_mutex_lock(&w->lock);
	if (w->exited) {
		pthread_mutex_unlock(&w->lock);
		b->status = BATCH_FAILED;
		b->done(b, b->arg);
		return;
	}
	*w->batches_tail = b;
	w->batches_tail = &b->next;
	w->nbatches++;
	/* Mid-commit the writer comes back by itself; gathering, it wants a
	 * word only once enough are there; waiting for deliveries, at once. */
	if (w->idle || w->acks_only || (w->want > 0 && w->nbatches >= w->want))
		pthread_cond_signal(&w->cond);
	pthread_mutex_unlock(&w->lock);
}

static void push_op(struct writer *w, struct writer_op *op)
{
	op->next = NULL;
	pthread_mutex_lock(&w->lock);
	*w->ops_tail = op;
	w->ops_tail = &op->next;
	if (op->kind == OP_ACK && w->nacks++ == 0)
		w->first_ack_us = clock_mono_us();
	w->nops++;
	/* Mid-commit or gathering it comes back by itself; waiting for more
	 * deliveries, only something else ends the wait. */
	if (w->idle || (w->acks_only && op->kind != OP_ACK))
		pthread_cond_signal(&w->cond);
	pthread_mutex_unlock(&w->lock);
}

static struct writer_op *op_new(enum op_kind kind, const char *tenant,
				size_t tlen)
{
	struct writer_op *op = calloc(1, sizeof(*op));

	if (op == NULL || tlen > TENANT_ID_MAX) {
		free(op);
		log_msg(LOG_ERROR, "out of memory", "where=writer_op");
		return NULL;
	}
	op->kind = kind;
	memcpy(op->tenant, tenant, tlen);
	op->tlen = tlen;
	return op;
}

void writer_ack(struct writer *w, const char *tenant, size_t tlen,
		uint64_t first, uint64_t last)
{
	struct writer_op *op = op_new(OP_ACK, tenant, tlen);

	if (op == NULL)
		return;
	op->first = first;
	op->last = last;
	push_op(w, op);
}

void writer_set_aside(struct writer *w, const char *tenant, size_t tlen,
		      uint64_t seq, long status, const char *reason)
{
	struct writer_op *op = op_new(OP_SET_ASIDE, tenant, tlen);

	if (op == NULL)
		return;
	op->first = op->last = seq;
	op->status = status;
	snprintf(op->reason, sizeof(op->reason), "%s", reason);
	push_op(w, op);
}

void writer_refused(struct writer *w, const char *tenant, size_t tlen,
		    int reason, uint64_t samples)
{
	struct writer_op *op;

	if (tlen == 0)
		return;
	if ((op = op_new(OP_REFUSED, tenant, tlen)) == NULL)
		return;
	op->status = reason;
	op->samples = samples;
	push_op(w, op);
}

void writer_setaside_op(struct writer *w, const struct setaside_filter *f,
			int replay)
{
	struct writer_op *op = op_new(replay ? OP_REPLAY : OP_PURGE, "", 0);

	if (op == NULL)
		return;
	op->filter = *f;
	push_op(w, op);
}
