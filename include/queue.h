/*
 * queue.h - the in-memory index of what the buffer holds, per tenant, and
 * the delivery lanes' places in it.
 *
 * The entries themselves live in LMDB (store.h); this keeps per tenant the
 * counts and the range of sequence numbers, and per (tenant, lane) the
 * forwarder's place (lanes.h): a lane has at most one request in flight
 * and sends its parts in sequence order, so each series' samples go out
 * in order, while a tenant's lanes go in parallel (at most max_inflight
 * of them, [upstream] inflight_per_tenant). The writer thread adds what it
 * committed and removes what it deleted; forwarder threads claim one
 * (tenant, lane) at a time: tenants take turns first, so that one
 * tenant's backlog does not hold back another's fresh data, then the
 * tenant's lane furthest behind. One mutex guards it all; every call is short.
 *
 * Only the delivery index lives here: the per-tenant counters of /metrics
 * are in tenant_stats.h, the rate limit's token buckets in ratelimit.h.
 */
#ifndef RELAY_QUEUE_H
#define RELAY_QUEUE_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "lanes.h"

#define QUEUE_LANES LANES

/* Entries first..last of a lane that a request took and must send again;
 * isolate: one entry a request (the upstream refused them together). */
struct queue_range {
	uint64_t first, last;
	int isolate;
};

/* One lane of a tenant: where its delivery stands. */
struct queue_lane {
	uint64_t send_seq;     /* next sequence number no request has taken */
	struct queue_range retry; /* to send again first, when has_retry */
	int has_retry;
	int inflight;          /* a request (or a read) of the lane: 0 or 1 */
	/* Deliveries reported (QUEUE_SENT) less those the writer committed
	 * (queue_lane_acked; either may come first): above 0, the lane
	 * waits. */
	int unacked;
};

struct queue_tenant {
	char id[TENANT_ID_MAX + 1];
	size_t idlen;
	/* What the buffer holds for this tenant (committed, not yet deleted). */
	uint64_t entries;
	uint64_t bytes;        /* LMDB value bytes */
	uint64_t samples;
	uint64_t first_seq;    /* oldest entry's sequence number, if entries */
	uint64_t last_seq;     /* newest entry's sequence number, if entries */
	uint64_t oldest_ms;    /* when the oldest entry was committed */
	/* Newest entry of version 1 (found at start; 0: none): lanes other
	 * than 0 wait while the tenant holds entries up to it (lanes.h). */
	uint64_t legacy_last;
	/* Forwarder state. A failure to deliver (QUEUE_RETRY) is the
	 * upstream's, not a lane's: the tenant's lanes back off together. */
	struct queue_lane lane[QUEUE_LANES];
	uint64_t retry_at_ms;  /* no lane sends before this time */
	/* Its upstream is down and probed by another request: no lane is
	 * claimed before this time (the gate's next probe), or before
	 * queue_gate_changed, whichever comes first. */
	uint64_t gate_at_ms;
	unsigned attempts;     /* failed attempts in a row */
	unsigned inflight;     /* lanes with a request in flight */
	unsigned next_lane;    /* where the tenant's next claim starts */
	struct queue_tenant *next;
};

struct queue {
	pthread_mutex_t lock;
	pthread_cond_t wake;   /* signalled when work may be there */
	struct queue_tenant *tenants;
	unsigned ntenants;
	uint64_t entries, bytes, samples; /* sums over tenants */
	uint64_t gate_changes; /* queue_gate_changed calls (queue_gate_seen) */
	int stopping;
	/* queue_on_ack_wait's hook, or NULL. */
	void (*ack_wait)(void *arg);
	void *ack_wait_arg;
};

struct queue_totals {
	uint64_t entries, bytes, samples;
	uint64_t oldest_ms;    /* 0 if empty */
	unsigned tenants_waiting; /* tenants in backoff, or waiting for their
				   * upstream's gate (down) */
};

void queue_init(struct queue *q);
void queue_destroy(struct queue *q);

/* Finds or creates (create != 0) a tenant; call with q->lock held. Returns
 * NULL if absent and not created, or out of memory. */
struct queue_tenant *queue_tenant_get(struct queue *q, const char *id,
				      size_t idlen, int create);

/*
 * Sets the hook called when a forwarder finds nothing to claim (or only
 * another tenant's lane, later in turn) while a lane that has more to
 * send waits only for the writer to commit its last delivery
 * (queue_lane_acked), its tenant under max_inflight: committing now would
 * give that lane a forwarder. The writer commits deliveries
 * promptly then, and otherwise lets them gather (writer.c). fn is called
 * with the queue's lock held: it must not call the queue. Set it before
 * the forwarders start.
 */
void queue_on_ack_wait(struct queue *q, void (*fn)(void *arg), void *arg);

/* The writer committed an entry (or found one at start). */
void queue_added(struct queue *q, const char *id, size_t idlen, uint64_t seq,
		 uint64_t bytes, uint64_t samples, uint64_t created_ms);

/* The writer deleted entries; first_left is the oldest entry's
 * (seq, created_ms) still in the buffer for the tenant, seq 0 if none. */
void queue_removed(struct queue *q, const char *id, size_t idlen,
		   uint64_t entries, uint64_t bytes, uint64_t samples,
		   uint64_t next_seq, uint64_t next_created_ms);

/* What the loader found (store_load_queue): the tenant's newest entry of
 * version 1 is seq. */
void queue_legacy(struct queue *q, const char *id, size_t idlen, uint64_t seq);

/* What the loader found: the tenant's lane is through seq (its cursor). */
void queue_lane_through(struct queue *q, const char *id, size_t idlen,
			unsigned lane, uint64_t seq);

/* What a forwarder thread took on with queue_claim. */
struct queue_job {
	char id[TENANT_ID_MAX + 1];
	size_t idlen;
	unsigned lane;
	uint64_t first;        /* send the lane's parts from this seq on */
	uint64_t last;         /* up to this one */
	int isolate;           /* one entry only */
	int fresh;             /* new entries (else a range sent before) */
	unsigned attempts;     /* the tenant's failed attempts in a row so far */
};

/*
 * Forwarder: waits until some tenant has a lane with entries to send
 * (again), no request in flight and no backoff, while fewer than
 * max_inflight of the tenant's lanes are in flight (lane 0 only while
 * the tenant holds entries of version 1); takes them and fills job.
 * Tenants take turns; of a tenant's lanes, the one furthest behind in its
 * sequence goes first. Returns 0, or -1 once stopping.
 */
int queue_claim(struct queue *q, unsigned max_inflight, struct queue_job *job);

/*
 * Forwarder: after reading, says which entries the request holds (entries
 * parts, first..last: last is the last entry the body covers, parts or
 * not; entries 0: the lane has nothing in the job's range, which it is
 * then through, and no request follows). What the job took but the
 * request does not hold is left for the next claim.
 */
void queue_taken(struct queue *q, const struct queue_job *job,
		 uint64_t entries, uint64_t first, uint64_t last);

/* Forwarder: gives a claim back untouched, as if it had not been made. */
void queue_unclaim(struct queue *q, const struct queue_job *job);

/* Forwarder: how many times an upstream's gate changed so far; read it
 * before asking the gate, and give it to queue_defer. */
uint64_t queue_gate_seen(struct queue *q);

/*
 * Forwarder: gives a claim back untouched because the tenant's upstream
 * is down and this request may not probe it yet (upstream_gate_pass): no
 * lane of the tenant is claimed again for wait_ms, or until
 * queue_gate_changed. The thread is free for other tenants meanwhile.
 * seen is queue_gate_seen's answer from before the gate was asked: if the
 * gate changed since, the claim is given back without a wait.
 */
void queue_defer(struct queue *q, const struct queue_job *job,
		 uint64_t wait_ms, uint64_t seen);

/* Forwarder: an upstream's gate changed (up, down, or a probe's place is
 * free): every deferred tenant may be claimed at once. */
void queue_gate_changed(struct queue *q);

enum queue_outcome { QUEUE_SENT, QUEUE_RETRY, QUEUE_ISOLATE };

/*
 * Forwarder: the lane's request holding first..last is done. QUEUE_SENT:
 * the upstream took it or it was set aside: the lane sends nothing more
 * until queue_lane_acked says the writer committed that (so that a crash
 * sends again at most the request that was in flight); QUEUE_RETRY: send
 * it again after retry_in_ms (the lane backs off); QUEUE_ISOLATE: send its
 * entries again one by one.
 */
void queue_done(struct queue *q, const struct queue_job *job,
		enum queue_outcome outcome, uint64_t first, uint64_t last,
		uint64_t retry_in_ms);

/* Writer: the delivery (or set-aside) the lane reported with QUEUE_SENT
 * is committed: the lane may send again. */
void queue_lane_acked(struct queue *q, const char *id, size_t idlen,
		      unsigned lane);

void queue_totals(struct queue *q, struct queue_totals *t);

/* Bytes the buffer holds for a tenant. */
uint64_t queue_tenant_bytes(struct queue *q, const char *id, size_t idlen);

/* The oldest entry of a tenant, for eviction. */
struct queue_head {
	char id[TENANT_ID_MAX + 1];
	size_t idlen;
	uint64_t seq;          /* 0: the tenant has nothing left */
	uint64_t created_ms;
	uint64_t bytes;        /* LMDB value bytes the tenant holds */
};

/* Fills heads (room for max) with the oldest entry of each tenant that has
 * one; returns how many. */
size_t queue_heads(struct queue *q, struct queue_head *heads, size_t max);

/* Calls fn for each tenant with the lock held (fn must not call queue_*). */
void queue_each(struct queue *q, void (*fn)(const struct queue_tenant *t,
					    void *arg), void *arg);

/* Wakes every waiter; queue_claim returns -1 from then on. */
void queue_stop(struct queue *q);


#endif
