/*
 * writer_ops.c - the operations other threads hand the writer (see
 * writer.h): deliveries, set-asides, refused requests for usage, replays
 * and purges of set-aside entries; and how a round applies them.
 */
#include "writer_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "err.h"
#include "log.h"
#include "metrics.h"
#include "queue.h"


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
	struct change *c = writer_change_new(sc->w, tenant, tlen);

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

/* Set-aside bytes one round replays or purges at most: a large replay
 * (up to setaside_max_size) goes over several rounds, so that no one
 * transaction needs room for all of it at once. A test sets it lower. */
uint64_t writer_setaside_op_bytes = 16u << 20;

/* Replays or purges set-aside entries, writer_setaside_op_bytes at most
 * (op->more: some are left). Returns 0 or an ERR_* code. */
static int setaside_op(struct writer *w, struct store_txn *txn,
		       struct writer_op *op, uint64_t now)
{
	struct sink_ctx sc = {w, now, 0};
	struct setaside_sink sink = {sink_replayed, sink_deleted, &sc};
	uint64_t n = 0;
	int rc;

	rc = op->kind == OP_REPLAY ?
	     store_setaside_replay(txn, &op->filter, &sink, writer_setaside_op_bytes,
				   &n, &op->more) :
	     store_setaside_purge(txn, &op->filter, &sink, writer_setaside_op_bytes,
				  &n, &op->more);
	if (rc == 0 && sc.failed)
		rc = ERR_NOMEM;
	if (rc == 0)
		log_msg(LOG_INFO, op->kind == OP_REPLAY ?
			"set-aside entries queued again" : "set-aside entries deleted",
			"entries=%llu more=%d", (unsigned long long)n, op->more);
	return rc;
}

/* Keeps the set-aside entries within their size and age. */
int writer_trim_setaside(struct writer *w, struct store_txn *txn, uint64_t now)
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
int writer_apply_ops(struct writer *w, struct store_txn *txn,
		     struct writer_op *ops, uint64_t now)
{
	struct writer_op *op;
	struct change *c;
	uint64_t delivered, rest;
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
		if ((c = writer_change_new(w, op->tenant, op->tlen)) == NULL)
			return ERR_NOMEM;
		if (op->kind == OP_SET_ASIDE) {
			rc = store_set_aside(txn, op->tenant, op->tlen,
					     (int)op->lane, op->first, op->status,
					     op->reason, &c->gone, &c->next);
			if (rc == ERR_NOTFOUND)  /* gone already: nothing moved */
				rc = 0;
			if (rc != 0)
				return rc;
		}
		/* The lane is through what it delivered or set aside; once
		 * committed, it may send again. */
		rc = store_lane_ack_seen(txn, op->tenant, op->tlen, op->lane,
					 op->first, op->last, op->seen, op->nseen,
					 &c->gone, &c->next, &delivered, &rest);
		if (rc != 0)
			return rc;
		/* Past the transaction's budget: later rounds delete them. */
		if (rest != 0 &&
		    writer_sweep_add(w, op->tenant, op->tlen, rest, op->last) != 0)
			log_msg(LOG_WARN, "out of memory; delivered entries stay "
				"until the next start", "where=sweep");
		c->lane_acked = 1;
		c->lane = op->lane;
		/* Set-aside samples are kept, not dropped: they count as dropped
		 * when purged, as delivered when replayed and delivered. */
		if (op->kind == OP_ACK &&
		    (rc = usage_count_delivered(&w->usage, op->tenant, op->tlen,
						now, delivered)) != 0)
			return rc;
	}
	return 0;
}

void writer_free_ops(struct writer_op *ops)
{
	struct writer_op *next;

	for (; ops != NULL; ops = next) {
		next = ops->next;
		free(ops);
	}
}

static void push_op(struct writer *w, struct writer_op *op);

void writer_ops_done(struct writer *w, struct writer_op *ops)
{
	struct writer_op *next;

	for (; ops != NULL; ops = next) {
		next = ops->next;
		if ((ops->kind == OP_REPLAY || ops->kind == OP_PURGE) &&
		    ops->more) {
			ops->more = 0;
			ops->failures = 0;
			push_op(w, ops);
			continue;
		}
		free(ops);
	}
}

/*
 * While stopping, operations whose commit failed (deliveries, set-asides,
 * refusals for usage, replays and purges) go back at the head of the
 * list, in order, for the next round (before, they are parked: writer.c,
 * park()). At a stop that keeps failing they are given up (give_up):
 * delivered entries are then sent again after the restart, never lost.
 */
void writer_requeue_ops(struct writer *w, struct writer_op *ops, int give_up)
{
	struct writer_op **tail = &ops;
	unsigned n = 0, acks = 0;

	if (give_up) {
		for (struct writer_op *op = ops; op != NULL; op = op->next)
			n++;
		log_msg(LOG_ERROR, "buffer commit failed at stop; operations "
			"given up (delivered entries will be sent again)",
			"operations=%u", n);
		writer_free_ops(ops);
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
	if (acks > 0)
		w->ack_wanted = 1;   /* their lanes waited once already */
	w->nops += n;
	w->nacks += acks;
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

/* A new operation with room for nseen records in op->seen. */
static struct writer_op *op_new_seen(enum op_kind kind, const char *tenant,
				     size_t tlen, size_t nseen)
{
	struct writer_op *op = calloc(1, sizeof(*op) +
				      nseen * sizeof(op->seen[0]));

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

static struct writer_op *op_new(enum op_kind kind, const char *tenant,
				size_t tlen)
{
	return op_new_seen(kind, tenant, tlen, 0);
}

void writer_ack(struct writer *w, const char *tenant, size_t tlen,
		unsigned lane, uint64_t first, uint64_t last)
{
	writer_ack_seen(w, tenant, tlen, lane, first, last, NULL, 0);
}

void writer_ack_seen(struct writer *w, const char *tenant, size_t tlen,
		     unsigned lane, uint64_t first, uint64_t last,
		     const struct store_seen *seen, size_t nseen)
{
	struct writer_op *op = op_new_seen(OP_ACK, tenant, tlen, nseen);

	/* The records only spare the writer a read: without them the
	 * answer is recorded all the same. */
	if (op == NULL && nseen > 0 && (op = op_new(OP_ACK, tenant, tlen)) != NULL)
		nseen = 0;
	if (op == NULL) {
		/* Not recorded: sent again after a restart, as after a crash. */
		queue_lane_acked(w->q, tenant, tlen, lane);
		return;
	}
	op->lane = lane;
	op->first = first;
	op->last = last;
	if (nseen > 0)
		memcpy(op->seen, seen, nseen * sizeof(op->seen[0]));
	op->nseen = nseen;
	push_op(w, op);
}

void writer_set_aside(struct writer *w, const char *tenant, size_t tlen,
		      unsigned lane, uint64_t seq, long status,
		      const char *reason)
{
	struct writer_op *op = op_new(OP_SET_ASIDE, tenant, tlen);

	if (op == NULL) {
		queue_lane_acked(w->q, tenant, tlen, lane);
		return;
	}
	op->lane = lane;
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
