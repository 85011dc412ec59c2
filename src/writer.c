/*
 * writer.c - group commit: the single LMDB writer thread (see writer.h).
 */
#include "writer_int.h"

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

/* How often old sketches and usage past retention are removed. */
#define CLEANUP_EVERY_MS (60 * 1000)
#define ACK_WAIT_US 2000L
/* Longest wait for more deliveries while every lane that has more to
 * send can go meanwhile (see gather_acks()). */
#define ACK_MAX_WAIT_US 200000L
/* Stored series (max_series) looked at for expiry per commit round. */
#define SERIES_EXPIRE_PER_ROUND 512

struct change *writer_change_new(struct writer *w, const char *tenant,
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




/* Eviction's report: the queue learns of it after the commit. */
static int evicted(void *arg, const char *tenant, size_t tlen,
		   const struct store_span *gone, const struct store_span *next)
{
	struct change *c = writer_change_new(arg, tenant, tlen);

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
	if ((c = writer_change_new(w, e->tenant, e->tlen)) == NULL)
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

/* What a request from the HA replica not elected counts as deduplicated:
 * all its samples, histogram samples and those of the series it left
 * out included. */
static uint64_t ha_samples(const struct batch *b)
{
	return b->usage.samples + b->usage.histograms + b->ha.left_out;
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
					   ha_samples(b))) != 0)
		return rc;
	return 1;
}

/* Stores the series b adds or refreshes for its tenant's max_series.
 * Returns 0 or an ERR_* code. */
static int series_store(struct store_txn *txn, const struct batch *b)
{
	int rc;

	for (size_t i = 0; i < b->nseries; i++)
		if ((rc = store_series_put(txn, b->tenant, b->tlen, b->series[i],
					   b->series_seen_ms,
					   b->series_window_ms)) != 0)
			return rc;
	return 0;
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
	/* Dedup records are stamped on the wall clock (kept across restarts
	 * as they are) and looked up from the clock they expire by, which a
	 * step of the wall clock cannot hasten (clock.h): looked up on the
	 * wall clock, a forward step shortened the window for what came
	 * before it (a resend stored and billed again). */
	uint64_t dnow = clock_age_now_ms();
	struct open_entry *e;
	struct batch *b;
	int rc;

	used = store_used_bytes(txn);
	entry_set_reset(&w->entries);
	for (b = list; b != NULL; b = b->next) {
		uint64_t fp = store_value_footprint(w->st, b->tlen,
						    b->value_bytes);
		if ((rc = b->has_digest ? dedup_seen(w->dedup, txn, b->digest, dnow,
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
		/* The tenant's share first: a batch refused for it must not
		 * evict anything for room it then does not take. */
		if ((e = entry_set_find(&w->entries, b->tenant, b->tlen)) == NULL)
			return ERR_NOMEM;
		if (b->tenant_max_bytes > 0 &&
		    queue_tenant_bytes(w->q, b->tenant, b->tlen) + e->round_bytes +
		    b->value_bytes > b->tenant_max_bytes) {
			refuse(b, REFUSE_TENANT_FULL);
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
		if ((!b->unbilled &&
		     (rc = usage_count_stored(&w->usage, txn, b->tenant, b->tlen, now,
					      &b->usage, b->hll, b->nhll)) != 0) ||
		    (rc = series_store(txn, b)) != 0)
			return rc;
		/* An entry holds chunks of one destination only. */
		if (e->nparts > 0 && e->dest != NULL &&
		    !store_dest_equal(e->dest, &b->dest) &&
		    (rc = open_flush(w, txn, e, now)) != 0)
			return rc;
		e->dest = &b->dest;
		for (size_t i = 0; i < b->nchunks; i++) {
			if (!entry_fits(e, &b->chunks[i], w->cfg->max_request_size) &&
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
		if (c->lane_acked)
			queue_lane_acked(w->q, c->tenant, c->tlen, c->lane);
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
	/* writer_sweeps_after's word for a failed round: sweeps alone must
	 * not fail round after round. */
	int failed = list == NULL && ops == NULL ? -1 : 0;
	struct store_txn *txn;
	uint64_t expired;
	int rc;

	w->nchanges = 0;
	evict_round_start(&w->evict);
	usage_round_clear(&w->usage);
	prealloc_lock(w->pre);
	if ((rc = store_txn_begin(w->st, &txn)) != 0) {
		prealloc_unlock(w->pre);
		writer_sweeps_after(w, failed);
		return rc;
	}
	/* Expiry by age uses a now that a forward step of the wall clock
	 * cannot hasten (clock.h); stored times stay on the wall clock. */
	if ((rc = dedup_expire(w->dedup, txn, clock_age_now_ms(),
			       w->cfg->dedup_window_ms)) != 0 ||
	    (rc = store_series_expire(txn, &w->series_pos,
				      SERIES_EXPIRE_PER_ROUND,
				      clock_age_now_ms(), &expired)) != 0 ||
	    (cleanup &&
	     ((rc = usage_cleanup(txn, clock_age_now_ms(),
				  w->cfg->usage_retention_ms)) != 0 ||
	      (rc = writer_trim_setaside(w, txn, now)) != 0)) ||
	    (rc = writer_apply_sweeps(w, txn)) != 0 ||
	    (rc = writer_apply_ops(w, txn, ops, now)) != 0 ||
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
		writer_sweeps_after(w, failed);
		return rc;
	}
	used = store_used_bytes(txn);
	rc = store_txn_commit(txn);
	prealloc_unlock(w->pre);
	dedup_round_end(w->dedup, rc == 0);
	ha_round_end(w->ha, rc == 0);
	writer_sweeps_after(w, rc == 0 ? 1 : failed);
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
			if (!b->unbilled)
				tenant_stats_received(b->tenant, b->tlen,
						      &b->usage, 0);
		} else if (b->status == BATCH_DUPLICATE) {
			tenant_stats_received(b->tenant, b->tlen, NULL, 1);
		} else if (b->status == BATCH_HA_DEDUPLICATED) {
			tenant_stats_ha_deduplicated(b->tenant, b->tlen,
						     ha_samples(b));
		}
		b->done(b, b->arg);
	}
	metric_add(&metrics.commit_batches, n);
}


/*
 * Called with the lock held once something is waiting. Senders of the
 * requests answered by the last round send their next ones a moment later;
 * if the round started at once it would take only those that came while
 * the last one synced, and the senders would settle into groups that each
 * wait for two syncs. So wait until as many requests as the last round
 * answered have come on top of those that were waiting when its answers
 * went out, but no longer than half a commit (and at most 1 ms): a sync
 * costs more than that wait. Counted from the answers, not from now: the
 * senders that are back already (they come back while the writer answers
 * the rest of the round) are not waited for a second time, which would
 * hold a round that has every sender until the time is up.
 */
static void gather(struct writer *w)
{
	unsigned want = w->waiting_at_answer + w->last_round;
	uint64_t wait_us = w->last_commit_us / 2;
	struct timespec until;

	if (w->last_round == 0 || w->batches == NULL || w->stopping ||
	    w->nbatches >= want)
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
 * and a commit for each costs two syncs (about half a millisecond of CPU
 * in a catch-up); their lanes wait for the commit before they send again
 * (queue.h). When only deliveries wait, they are committed together with
 * all that came meanwhile (and those that come while one commit syncs go
 * together in the next):
 * - ACK_WAIT_US after the first of them came once a forwarder found
 *   nothing to claim but a lane waiting for such a commit (ack_wanted,
 *   from queue_on_ack_wait): the commit gives it work;
 * - else up to ACK_MAX_WAIT_US: every lane that has more to send can go
 *   meanwhile (a tenant's 8 lanes take turns for its inflight_per_tenant
 *   slots), so the wait costs no delivery, and a catch-up commits the
 *   answers of several lanes at once.
 * Anything else (a request to store, a stop) ends the wait. Not right
 * after a round that stored requests: their senders' next ones may be on
 * the way, and gather() must not then wait for as many again behind a
 * round that took only a request or two. After a crash, the deliveries not
 * committed are sent again, as those of a commit that did not happen
 * would be: a lane waiting for its commit sends nothing else, so that is
 * at most one request per lane.
 */
static void gather_acks(struct writer *w)
{
	uint64_t now, due;
	struct timespec until;

	if (w->batches != NULL || w->nops != w->nacks || w->stopping ||
	    w->last_round != 0 || w->ops == NULL)
		return;
	w->acks_only = 1;
	for (;;) {
		now = clock_mono_us();
		due = w->first_ack_us + (w->ack_wanted ? ACK_WAIT_US :
					 ACK_MAX_WAIT_US);
		if (due <= now || w->nops != w->nacks || w->batches != NULL ||
		    w->stopping)
			break;
		until = clock_deadline(due - now);
		pthread_cond_timedwait(&w->cond, &w->lock, &until);
	}
	w->acks_only = 0;
}

/* The queue's hook (queue_on_ack_wait), called with its lock held. */
static void ack_wanted(void *arg)
{
	struct writer *w = arg;

	pthread_mutex_lock(&w->lock);
	if (!w->ack_wanted) {
		w->ack_wanted = 1;
		if (w->acks_only)
			pthread_cond_signal(&w->cond);
	}
	pthread_mutex_unlock(&w->lock);
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
 * Parked operations. When a round's operations fail again alone (after
 * its requests were refused), each is tried in a round of its own: one
 * that cannot be stored (a set-aside or a replay of set-aside entries
 * with no room left for its copy) must hold back neither the requests
 * nor the other lanes' deliveries, round after round. What still fails
 * is parked: tried again alone once a second, never with others. A
 * delivery or a set-aside stays parked until it is stored (its lane
 * waits for it; giving it up would lose the lane's place); a replay or a
 * purge is given up after PARK_MAX_TRIES (the set-aside entries stay as
 * they were), and so is whatever is parked at a stop.
 */
#define PARK_RETRY_MS 1000
#define PARK_MAX_TRIES 10

/* Commits each of ops in a round of its own; returns those that failed,
 * in order, each with its failures counted. */
static struct writer_op *ops_alone(struct writer *w, struct writer_op *ops)
{
	struct writer_op *failed = NULL, **tail = &failed, *op, *next;
	int rc;

	for (op = ops; op != NULL; op = next) {
		next = op->next;
		op->next = NULL;
		if ((rc = commit_round(w, NULL, op)) == 0) {
			writer_ops_done(w, op);
			continue;
		}
		metric_add(&metrics.commit_errors, 1);
		log_commit_error(w, rc, 0);
		op->failures++;
		*tail = op;
		tail = &op->next;
	}
	return failed;
}

/* Appends ops to the parked ones, each but a replay or purge tried too
 * often; give_up (a stop): none is kept. */
static void park(struct writer *w, struct writer_op *ops, int give_up)
{
	struct writer_op **tail = &w->parked, *op, *next;
	unsigned parked = 0;

	while (*tail != NULL)
		tail = &(*tail)->next;
	for (op = ops; op != NULL; op = next) {
		next = op->next;
		op->next = NULL;
		if (give_up || ((op->kind == OP_REPLAY || op->kind == OP_PURGE) &&
				op->failures >= PARK_MAX_TRIES)) {
			log_msg(LOG_ERROR, op->kind == OP_REPLAY ?
				"set-aside replay given up: it could not be stored" :
				op->kind == OP_PURGE ?
				"set-aside purge given up: it could not be stored" :
				"buffer operation given up at stop (delivered entries "
				"will be sent again)", "tenant=%.*s tries=%u",
				(int)op->tlen, op->tenant, op->failures);
			writer_free_ops(op);
			continue;
		}
		*tail = op;
		tail = &op->next;
		parked++;
	}
	if (parked > 0)
		w->parked_retry_ms = clock_mono_ms() + PARK_RETRY_MS;
}

/* Tries the parked operations again when it is time: together first
 * (after a full disk most go through at once), then each alone. */
static void retry_parked(struct writer *w)
{
	struct writer_op *ops = w->parked;

	if (ops == NULL || clock_mono_ms() < w->parked_retry_ms)
		return;
	w->parked = NULL;
	if (ops->next != NULL && commit_round(w, NULL, ops) == 0) {
		writer_ops_done(w, ops);
		return;
	}
	park(w, ops_alone(w, ops), 0);
}

/* Called with the lock held: waits for work, or for the parked
 * operations' next try. */
static void wait_work(struct writer *w)
{
	struct timespec until;
	uint64_t now;

	/* Sweeps left (writer_sweep.c) make a round by themselves. */
	while (w->batches == NULL && w->ops == NULL && !w->stopping &&
	       (w->sweeps == NULL || w->sweeps_paused)) {
		if (w->parked == NULL) {
			pthread_cond_wait(&w->cond, &w->lock);
			continue;
		}
		if ((now = clock_mono_ms()) >= w->parked_retry_ms)
			return;
		until = clock_deadline((w->parked_retry_ms - now) * 1000);
		pthread_cond_timedwait(&w->cond, &w->lock, &until);
	}
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
		wait_work(w);
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
		w->ack_wanted = 0;
		stopping = w->stopping;
		if (list == NULL && ops == NULL && stopping)
			w->exited = 1;
		pthread_mutex_unlock(&w->lock);
		retry_parked(w);
		if (list == NULL && ops == NULL && stopping)
			break;
		/* Woken for the parked operations alone. */
		if (list == NULL && ops == NULL &&
		    (w->sweeps == NULL || w->sweeps_paused))
			continue;

		t0 = clock_mono_us();
		rc = commit_round(w, list, ops);
		w->last_commit_us = clock_mono_us() - t0;
		pthread_mutex_lock(&w->lock);
		w->waiting_at_answer = w->nbatches;
		pthread_mutex_unlock(&w->lock);
		if (rc == 0) {
			finish_batches(w, list, 0);
			writer_ops_done(w, ops);
			continue;
		}
		metric_add(&metrics.commit_errors, 1);
		log_commit_error(w, rc, list != NULL);
		finish_batches(w, list, 1);
		/* Acknowledgements alone need little space: try them again. */
		if (ops != NULL && list != NULL &&
		    (rc = commit_round(w, NULL, ops)) == 0) {
			writer_ops_done(w, ops);
			continue;
		}
		/* Then each alone, when there are several: what still fails
		 * is parked (see park()). */
		if (ops != NULL && !stopping) {
			if (ops->next != NULL)
				ops = ops_alone(w, ops);
			else
				ops->failures++;
			park(w, ops, 0);
			ops = NULL;
		}
		if (ops != NULL)
			writer_requeue_ops(w, ops, ++stop_failures > 3);
		nanosleep(&(struct timespec){0, 100 * 1000000}, NULL);
	}
	/* Stopping: the parked operations get a last try. */
	w->parked_retry_ms = 0;
	retry_parked(w);
	ops = w->parked;
	w->parked = NULL;
	park(w, ops, 1);
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
	writer_sweep_start(w);
	w->pre = prealloc_start(st, cfg->preallocate, 1);
	pthread_mutex_init(&w->lock, NULL);
	clock_cond_init(&w->cond);
	/* The queue takes its lock, then the writer's: the writer never
	 * calls the queue with its own held. */
	queue_on_ack_wait(q, ack_wanted, w);
	if (pthread_create(&w->thread, NULL, writer_main, w) != 0) {
		queue_on_ack_wait(q, NULL, NULL);
		prealloc_stop(w->pre);
		pthread_mutex_destroy(&w->lock);
		pthread_cond_destroy(&w->cond);
		ha_free(w->ha);
		dedup_free(w->dedup);
		evict_free(&w->evict);
		writer_sweeps_after(w, WRITER_SWEEPS_END);
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
	queue_on_ack_wait(w->q, NULL, NULL);
	prealloc_stop(w->pre);
	entry_set_free(&w->entries);
	free(w->changes);
	usage_round_free(&w->usage);
	ha_free(w->ha);
	dedup_free(w->dedup);
	evict_free(&w->evict);
	writer_sweeps_after(w, WRITER_SWEEPS_END);
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

