/*
 * writer.c - group commit: the single LMDB writer thread (see writer.h).
 */
#include "writer.h"

#include <sys/statvfs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "dedup.h"
#include "entries.h"
#include "err.h"
#include "evict.h"
#include "ha.h"
#include "log.h"
#include "metrics.h"
#include "prealloc.h"
#include "queue.h"
#include "store.h"
#include "tenant_stats.h"

enum op_kind { OP_ACK, OP_SET_ASIDE, OP_REFUSED, OP_REPLAY, OP_PURGE };

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
	struct evict evict;       /* the eviction policy's state */
	struct change *changes;
	size_t nchanges, changes_cap;
	struct dedup *dedup;      /* owned */
	struct ha *ha;            /* owned: the HA elections */
	struct prealloc *pre;     /* owned; NULL when off */
};

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

	if (usage_count_dropped(&sc->w->usage, tenant, tlen, sc->now,
				DROP_PURGED, samples) != 0)
		sc->failed = 1;
}

/* Replays or purges set-aside entries. Returns 0 or an ERR_* code. */
static int setaside_op(struct writer *w, struct store_txn *txn,
		       const struct writer_op *op, uint64_t now)
{
	struct sink_ctx sc = {w, now, 0};
	struct setaside_sink sink = {sink_replayed, sink_deleted, &sc};
	uint64_t n = 0;
	int rc;

	rc = op->kind == OP_REPLAY ?
	     store_setaside_replay(txn, &op->filter, &sink, &n) :
	     store_setaside_purge(txn, &op->filter, &sink, &n);
	if (rc == 0 && sc.failed)
		rc = ERR_NOMEM;
	if (rc == 0)
		log_msg(LOG_INFO, op->kind == OP_REPLAY ?
			"set-aside entries queued again" : "set-aside entries deleted",
			"entries=%llu", (unsigned long long)n);
	return rc;
}

/* Keeps the set-aside entries within their size and age. */
static int trim_setaside(struct writer *w, struct store_txn *txn, uint64_t now)
{
	struct sink_ctx sc = {w, now, 0};
	struct setaside_sink sink = {NULL, sink_deleted, &sc};
	uint64_t n = 0;
	int rc;

	rc = store_setaside_trim(txn, w->cfg->setaside_max_size,
				 w->cfg->setaside_max_age_ms, clock_age_now_ms(),
				 &sink, &n);
	if (rc == 0 && n > 0)
		log_msg(LOG_WARN, "set-aside entries past their size or age deleted",
			"entries=%llu", (unsigned long long)n);
	return rc == 0 && sc.failed ? ERR_NOMEM : rc;
}

/* Applies the forwarder's acknowledgements and set-asides. Returns 0 or
 * an ERR_* code. */
static int apply_ops(struct writer *w, struct store_txn *txn,
		     struct writer_op *ops, uint64_t now)
{
	struct writer_op *op;
	struct change *c;
	int rc;

	for (op = ops; op != NULL; op = op->next) {
		if (op->kind == OP_REFUSED) {
			if ((rc = usage_count_refused(&w->usage, op->tenant, op->tlen,
						      now, (int)op->status,
						      op->samples)) != 0)
				return rc;
			continue;
		}
		if (op->kind == OP_REPLAY || op->kind == OP_PURGE) {
			if ((rc = setaside_op(w, txn, op, now)) != 0)
				return rc;
			continue;
		}
		if ((c = change_new(w, op->tenant, op->tlen)) == NULL)
			return ERR_NOMEM;
		if (op->kind == OP_ACK) {
			rc = store_delete_range(txn, op->tenant, op->tlen, op->first,
						op->last, &c->gone, &c->next);
		} else {
			rc = store_set_aside(txn, op->tenant, op->tlen, op->first,
					     op->status, op->reason, &c->gone,
					     &c->next);
			if (rc == ERR_NOTFOUND)  /* gone already: nothing moved */
				rc = 0;
		}
		if (rc != 0)
			return rc;
		/* Set-aside samples are kept, not dropped: they count as dropped
		 * when purged, as delivered when replayed and delivered. */
		if (op->kind == OP_ACK &&
		    (rc = usage_count_delivered(&w->usage, op->tenant, op->tlen,
						now, c->gone.samples)) != 0)
			return rc;
	}
	return 0;
}

/* Eviction's report: the queue learns of it after the commit. */
static int evicted(void *arg, const char *tenant, size_t tlen,
		   const struct store_span *gone, const struct store_span *next)
{
	struct change *c = change_new(arg, tenant, tlen);

	if (c == NULL)
		return ERR_NOMEM;
	c->gone = *gone;
	c->next = *next;
	return 0;
}

/* Writes an assembled entry, if any, and records the change for the
 * queue. Returns 0 or an error code. */
static int open_flush(struct writer *w, struct store_txn *txn,
		      struct open_entry *e, uint64_t created_ms)
{
	struct entry_written out;
	struct change *c;
	int rc;

	if ((rc = entry_write(e, txn, created_ms, &out)) != 0)
		return rc == 1 ? 0 : rc;
	if ((c = change_new(w, e->tenant, e->tlen)) == NULL)
		return ERR_NOMEM;
	c->added = 1;
	c->seq = out.seq;
	c->bytes = out.bytes;
	c->samples = out.samples;
	c->created_ms = created_ms;
	return 0;
}

/* Refuses b at commit time; the HTTP side answers from the reason. */
static void refuse(struct batch *b, enum refuse_reason reason)
{
	b->status = BATCH_REFUSED;
	b->reason = reason;
}

static struct ha_key batch_ha_key(const struct batch *b)
{
	struct ha_key k = {b->tenant, b->tlen, b->ha.cluster, b->ha.clen,
			   b->ha.replica, b->ha.rlen};
	return k;
}

/* An HA request from a replica that is not (and may not become) the
 * elected one: 1 (deduplicated, counted in usage), 0 (go on), or an
 * ERR_* code. Judged here, against the election as this transaction
 * sees it, so two replicas in one round or in two cannot both win. */
static int ha_deduplicated(struct writer *w, struct batch *b, uint64_t now,
			   uint64_t mono)
{
	struct ha_key k = batch_ha_key(b);
	int rc;

	if (!b->ha.on || ha_judge(w->ha, &k, mono, b->ha.failover_ms) == 0)
		return 0;
	b->status = BATCH_HA_DEDUPLICATED;
	if (b->tlen > 0 &&
	    (rc = usage_count_deduplicated(&w->usage, b->tenant, b->tlen, now,
					   b->usage.samples)) != 0)
		return rc;
	return 1;
}

/* Decides which batches are stored (not resent, from the elected HA
 * replica, within the buffer and the tenant's share) and writes those,
 * merged per tenant, with their usage and the HA elections they make.
 * Returns 0 or an ERR_* code. */
static int write_batches(struct writer *w, struct store_txn *txn,
			 struct batch *list, uint64_t now)
{
	uint64_t mono = clock_mono_ms();
	struct ha_key hk;
	struct evict_sink sink = {evicted, w};
	uint64_t used, limit = w->cfg->max_size;
	uint64_t window = w->cfg->dedup_window_ms;
	struct open_entry *e;
	struct batch *b;
	int rc;

	used = store_used_bytes(txn);
	entry_set_reset(&w->entries);
	for (b = list; b != NULL; b = b->next) {
		uint64_t fp = store_value_footprint(w->st, b->value_bytes);
		if ((rc = b->has_digest ? dedup_seen(w->dedup, txn, b->digest, now,
						     window) : 0) < 0)
			return rc;
		if (rc == 1) {
			b->status = BATCH_DUPLICATE;
			continue;
		}
		if ((rc = ha_deduplicated(w, b, now, mono)) != 0) {
			if (rc < 0)
				return rc;
			continue;
		}
		if (used + fp > limit && w->cfg->when_full == WHEN_FULL_DROP_OLDEST &&
		    (rc = evict_for_space(&w->evict, txn, w->q, &w->usage, &sink,
					  &used, fp, limit, now)) != 0)
			return rc;
		if (used + fp > limit) {
			refuse(b, REFUSE_BUFFER_FULL);
			continue;
		}
		if ((e = entry_set_find(&w->entries, b->tenant, b->tlen)) == NULL)
			return ERR_NOMEM;
		if (b->tenant_max_bytes > 0 &&
		    queue_tenant_bytes(w->q, b->tenant, b->tlen) + e->round_bytes +
		    b->value_bytes > b->tenant_max_bytes) {
			refuse(b, REFUSE_TENANT_FULL);
			continue;
		}
		used += fp;
		e->round_bytes += b->value_bytes;
		b->status = BATCH_STORED;
		hk = batch_ha_key(b);
		if (b->ha.on && (rc = ha_admitted(w->ha, txn, &hk, mono, now,
						  b->ha.failover_ms)) != 0)
			return rc;
		if (b->has_digest && window > 0 &&
		    (rc = dedup_remember(w->dedup, txn, b->digest, now)) != 0)
			return rc;
		if ((rc = usage_count_stored(&w->usage, txn, b->tenant, b->tlen, now,
					     &b->usage, b->hll, b->nhll)) != 0)
			return rc;
		/* An entry holds chunks of one destination only. */
		if (e->nparts > 0 && e->dest != NULL &&
		    !store_dest_equal(e->dest, &b->dest) &&
		    (rc = open_flush(w, txn, e, now)) != 0)
			return rc;
		e->dest = &b->dest;
		for (size_t i = 0; i < b->nchunks; i++) {
			if (e->nparts > 0 &&
			    e->raw + b->chunks[i].raw_len > w->cfg->max_request_size &&
			    (rc = open_flush(w, txn, e, now)) != 0)
				return rc;
			/* The request counts in the entry its first chunk is in. */
			if (i == 0)
				e->hdr.requests++;
			if (entry_add(e, &b->chunks[i]) < 0)
				return ERR_NOMEM;
		}
	}
	for (size_t i = 0; i < w->entries.n; i++) {
		if ((rc = open_flush(w, txn, &w->entries.open[i], now)) != 0)
			return rc;
	}
	return 0;
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

/* One transaction: ops, then batches. Returns 0 or an ERR_* code; on
 * failure nothing of the round is left, sequence numbers included (the
 * store gives them back with the transaction). */
static int commit_round(struct writer *w, struct batch *list,
			struct writer_op *ops)
{
	struct evict_sink sink = {evicted, w};
	uint64_t t0 = clock_mono_us(), now = clock_wall_ms(), used;
	int cleanup = now - w->last_cleanup_ms > CLEANUP_EVERY_MS;
	struct store_txn *txn;
	int rc;

	w->nchanges = 0;
	evict_round_start(&w->evict);
	usage_round_clear(&w->usage);
	prealloc_lock(w->pre);
	if ((rc = store_txn_begin(w->st, &txn)) != 0) {
		prealloc_unlock(w->pre);
		return rc;
	}
	/* Expiry by age uses a now that a forward step of the wall clock
	 * cannot hasten (clock.h); stored times stay on the wall clock. */
	if ((rc = dedup_expire(w->dedup, txn, clock_age_now_ms(),
			       w->cfg->dedup_window_ms)) != 0 ||
	    (cleanup &&
	     ((rc = usage_cleanup(txn, clock_age_now_ms(),
				  w->cfg->usage_retention_ms)) != 0 ||
	      (rc = trim_setaside(w, txn, now)) != 0)) ||
	    (rc = apply_ops(w, txn, ops, now)) != 0 ||
	    (rc = evict_old(&w->evict, txn, w->q, &w->usage, &sink,
			    w->cfg->max_age_ms, now)) != 0 ||
	    (rc = write_batches(w, txn, list, now)) != 0 ||
	    (rc = usage_round_flush(&w->usage, txn)) != 0) {
		store_txn_abort(txn);
		prealloc_unlock(w->pre);
		dedup_round_end(w->dedup, 0);
		ha_round_end(w->ha, 0);
		/* A clean-up that fails (a damaged usage or set-aside page)
		 * must not fail every round: it waits for its next turn. */
		if (cleanup)
			w->last_cleanup_ms = now;
		return rc;
	}
	used = store_used_bytes(txn);
	rc = store_txn_commit(txn);
	prealloc_unlock(w->pre);
	dedup_round_end(w->dedup, rc == 0);
	ha_round_end(w->ha, rc == 0);
	if (rc != 0)
		return rc;
	if (cleanup)
		w->last_cleanup_ms = now;
	evict_round_committed(&w->evict);
	atomic_store(&metrics.storage_used_bytes, used);
	latency_observe(&metrics.commit_latency, clock_mono_us() - t0);
	metric_add(&metrics.commits, 1);
	publish_changes(w);
	return 0;
}

/* Answers the round's batches; failed: the commit failed, so every one
 * is refused with REFUSE_STORAGE. */
static void finish_batches(struct writer *w, struct batch *list, int failed)
{
	struct batch *b, *next;
	uint64_t n = 0;

	(void)w;
	for (b = list; b != NULL; b = next) {
		next = b->next;
		if (failed)
			refuse(b, REFUSE_STORAGE);
		if (b->status == BATCH_STORED) {
			n++;
			tenant_stats_received(b->tenant, b->tlen, &b->usage, 0);
		} else if (b->status == BATCH_DUPLICATE) {
			tenant_stats_received(b->tenant, b->tlen, NULL, 1);
		} else if (b->status == BATCH_HA_DEDUPLICATED) {
			tenant_stats_ha_deduplicated(b->tenant, b->tlen,
						     b->usage.samples);
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
	uint64_t now = clock_mono_ms(); /* a timer: monotonic */
	int known;

	/* One line every five seconds at most, with how many failed. */
	w->commit_failures++;
	if (now - w->commit_failure_logged_ms < 5000)
		return;
	w->commit_failure_logged_ms = now;
	known = statvfs(w->cfg->path, &fs) == 0;
	if (known)
		avail = (unsigned long long)fs.f_bavail * fs.f_frsize;
	if (rc == ERR_NOSPACE || ((rc == ERR_IO || rc == ERR_FULL) && known &&
				  avail < (16u << 20)))
		log_msg(LOG_ERROR, "buffer commit failed: no space left on the "
			"filesystem; refusing writes with 503 until space returns",
			"error=\"%s\" fs_free_bytes=%llu path=%s failed_commits=%llu "
			"requests_refused=%d", err_str(rc), avail, w->cfg->path,
			(unsigned long long)w->commit_failures, refused);
	else
		log_msg(LOG_ERROR, "buffer commit failed", "error=\"%s\" "
			"fs_free_bytes=%llu failed_commits=%llu requests_refused=%d",
			err_str(rc), avail,
			(unsigned long long)w->commit_failures, refused);
	w->commit_failures = 0;
}

/*
 * Operations whose commit failed (deliveries, set-asides, refusals for
 * usage, replays and purges) go back at the head of the list, in order,
 * for the next round. At a stop that keeps failing they are given up
 * (give_up): delivered entries are then sent again after the restart,
 * never lost.
 */
static void requeue_ops(struct writer *w, struct writer_op *ops, int give_up)
{
	struct writer_op **tail = &ops;
	unsigned n = 0, acks = 0;

	if (give_up) {
		for (struct writer_op *op = ops; op != NULL; op = op->next)
			n++;
		log_msg(LOG_ERROR, "buffer commit failed at stop; operations "
			"given up (delivered entries will be sent again)",
			"operations=%u", n);
		free_ops(ops);
		return;
	}
	for (; *tail != NULL; tail = &(*tail)->next) {
		n++;
		acks += (*tail)->kind == OP_ACK;
	}
	pthread_mutex_lock(&w->lock);
	*tail = w->ops;
	if (w->ops == NULL)
		w->ops_tail = tail;
	w->ops = ops;
	if (acks > 0 && w->nacks == 0)
		w->first_ack_us = clock_mono_us();
	w->nops += n;
	w->nacks += acks;
	pthread_mutex_unlock(&w->lock);
}

static void *writer_main(void *arg)
{
	struct writer *w = arg;
	struct batch *list;
	struct writer_op *ops;
	uint64_t t0;
	int rc, stopping, stop_failures = 0;

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
			finish_batches(w, list, 0);
			free_ops(ops);
			continue;
		}
		metric_add(&metrics.commit_errors, 1);
		log_commit_error(w, rc, list != NULL);
		finish_batches(w, list, 1);
		/* Acknowledgements alone need little space: try them again. */
		if (ops != NULL && list != NULL &&
		    (rc = commit_round(w, NULL, ops)) == 0) {
			free_ops(ops);
			continue;
		}
		if (ops != NULL)
			requeue_ops(w, ops, stopping && ++stop_failures > 3);
		nanosleep(&(struct timespec){0, 100 * 1000000}, NULL);
	}
	return NULL;
}

/* The dedup index and the HA elections, read from the store before the
 * thread starts (every HA leader's fail-over timer starts now). Returns
 * 0, or -1 with neither kept. */
static int open_indexes(struct writer *w)
{
	struct store_txn *txn;
	int rc;

	if ((rc = store_txn_begin(w->st, &txn)) == 0) {
		w->dedup = dedup_open(txn, clock_wall_ms(), w->cfg->dedup_window_ms,
				      &rc);
		if (w->dedup != NULL)
			w->ha = ha_open(txn, clock_mono_ms(), &rc);
		if (w->ha == NULL)
			store_txn_abort(txn);
		else
			rc = store_txn_commit(txn);
	}
	if (rc != 0 || w->ha == NULL) {
		log_msg(LOG_ERROR, "cannot read the dedup records or HA elections",
			"error=\"%s\"", err_str(rc));
		ha_free(w->ha);
		dedup_free(w->dedup);
		w->ha = NULL;
		w->dedup = NULL;
		return -1;
	}
	return 0;
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
	if (evict_init(&w->evict, st) != 0) {
		free(w);
		return NULL;
	}
	if (open_indexes(w) < 0) {
		evict_free(&w->evict);
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
		ha_free(w->ha);
		dedup_free(w->dedup);
		evict_free(&w->evict);
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
	ha_free(w->ha);
	dedup_free(w->dedup);
	evict_free(&w->evict);
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
		refuse(b, REFUSE_STORAGE);
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
