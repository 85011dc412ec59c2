/*
 * writer_int.h - the writer's state, shared by writer.c (the thread and
 * its commit rounds) and writer_ops.c (the operations other threads hand
 * it: deliveries, set-asides, refusals, replays and purges). Not for other
 * modules: they use writer.h.
 */
#ifndef RELAY_WRITER_INT_H
#define RELAY_WRITER_INT_H

#include <pthread.h>
#include <stdint.h>

#include "dedup.h"
#include "entries.h"
#include "evict.h"
#include "ha.h"
#include "prealloc.h"
#include "setaside.h"
#include "store.h"
#include "usage.h"
#include "writer.h"

enum op_kind { OP_ACK, OP_SET_ASIDE, OP_REFUSED, OP_REPLAY, OP_PURGE };


struct writer_op {
	enum op_kind kind;
	char tenant[TENANT_ID_MAX + 1];
	size_t tlen;
	unsigned lane;           /* OP_ACK, OP_SET_ASIDE */
	uint64_t first, last;
	long status;             /* OP_SET_ASIDE: upstream status; OP_REFUSED: reason */
	uint64_t samples;        /* OP_REFUSED */
	char reason[512];
	struct setaside_filter filter; /* OP_REPLAY, OP_PURGE */
	struct writer_op *next;
	unsigned failures;       /* rounds of its own it failed (parked) */
	int more;                /* OP_REPLAY, OP_PURGE: matching entries left
				  * past its round's share */
	size_t nseen;            /* OP_ACK: what the request's body saw */
	struct store_seen seen[];
};

/* Delivered entries an answer's transaction had no budget left to delete
 * (store.h, "Deleting what was delivered"): first..last of a tenant, to
 * be deleted by the next rounds. The writer thread's own. */
struct sweep {
	struct sweep *next;
	char tenant[TENANT_ID_MAX + 1];
	size_t tlen;
	uint64_t first, last;
	uint64_t rest;           /* where this round stopped (0: the end) */
	int broken;              /* failed its round: dropped (a damaged
				  * page must not fail round after round;
				  * the next start's sweep tries again) */
};

/* What the queue learns once the transaction is committed. */
struct change {
	int added;                /* 1: added; 0: removed */
	int lane_acked;           /* 1: a lane's delivery is recorded */
	unsigned lane;
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
	/* Requests waiting when the last round's answers went out: they
	 * were not sent by its senders. */
	unsigned waiting_at_answer;
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
	/* A forwarder found nothing to claim but a lane waiting for its
	 * delivery's commit (queue_on_ack_wait): commit deliveries soon. */
	int ack_wanted;
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
	struct store_pos series_pos; /* where the expiry of stored series
				      * (store_series_expire) stands */
	struct sweep *sweeps;     /* one per tenant (writer_sweep.c) */
	struct sweep *sweeps_new; /* added by this round's answers */
	int sweeps_paused;        /* no round for sweeps alone (they failed) */
	/* Operations that failed in a round of their own (a set-aside or a
	 * replay with no room for it): tried again alone, never in a round
	 * with others, not before parked_retry_ms (monotonic). */
	struct writer_op *parked;
	uint64_t parked_retry_ms;
};

/* A change for the queue, published after the commit; NULL when out of
 * memory. */
struct change *writer_change_new(struct writer *w, const char *tenant,
				 size_t tlen);

/* Applies ops in the round's transaction. Returns 0 or an ERR_* code. */
int writer_apply_ops(struct writer *w, struct store_txn *txn,
		     struct writer_op *ops, uint64_t now);

/* Deletes set-aside entries past setaside_max_size or _max_age. Returns 0
 * or an ERR_* code. */
int writer_trim_setaside(struct writer *w, struct store_txn *txn, uint64_t now);

void writer_free_ops(struct writer_op *ops);

/* Set-aside bytes one round replays or purges at most (16 MiB). */
extern uint64_t writer_setaside_op_bytes;

/* The ops of a round that committed: freed, but a replay or purge with
 * entries left (op->more) goes back on the list for the next round. */
void writer_ops_done(struct writer *w, struct writer_op *ops);

/* ---- Sweeps (writer_sweep.c) ---- */

/* Adds first..last of the tenant to the sweeps, once the round commits.
 * Returns 0 or ERR_NOMEM (the entries then wait for the sweep of the next
 * start). */
int writer_sweep_add(struct writer *w, const char *tenant, size_t tlen,
		     uint64_t first, uint64_t last);

/* One sweep for each tenant the queue holds entries of that a lane has
 * passed, up to the furthest lane (the entries a stop or a crash left
 * behind); called on the queue as loaded, before the forwarders start. */
void writer_sweep_start(struct writer *w);

/* Runs the sweeps in the round's transaction, within its budget. Returns
 * 0 or an ERR_* code. */
int writer_apply_sweeps(struct writer *w, struct store_txn *txn);

/* After the round: committed (1), each sweep moves on to where it
 * stopped (and is done when it got to its end) and the round's answers'
 * sweeps join; not committed (0), each stays where it was, but one that
 * failed the round is dropped, and so are the round's; -1: as 0, for a
 * round of sweeps alone, after which sweeps wait for a round that comes
 * anyway. WRITER_SWEEPS_END drops every sweep (the writer's end). */
#define WRITER_SWEEPS_END (-2)
void writer_sweeps_after(struct writer *w, int committed);

/* Puts the operations of a failed round back at the head of the list
 * (see writer_ops.c); give_up frees them instead. */
void writer_requeue_ops(struct writer *w, struct writer_op *ops, int give_up);

#endif
