/*
 * queue.h - the in-memory index of what the buffer holds, per tenant.
 *
 * The entries themselves live in LMDB (store.h); this keeps per tenant the
 * counts, the range of sequence numbers, and the forwarder's place in it.
 * The writer thread adds what it committed and removes what it deleted; the
 * forwarder threads claim one tenant at a time, so at most one request per
 * tenant is in flight and each series' samples go out in order. One mutex
 * guards it all; every call is short.
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

#define QUEUE_MAX_INFLIGHT 64

/* Entries first..last of a tenant that a request took and must send again;
 * isolate: one entry a request (the upstream refused them together). */
struct queue_range {
	uint64_t first, last;
	int isolate;
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
	/* Forwarder state. */
	uint64_t send_seq;     /* next sequence number no request has taken */
	struct queue_range retry[2 * QUEUE_MAX_INFLIGHT + 2]; /* to send again */
	unsigned nretry;
	unsigned inflight;     /* requests being sent */
	int reading;           /* a thread is reading new entries */
	uint64_t retry_at_ms;  /* not before this time */
	unsigned attempts;     /* failed attempts in a row */
	struct queue_tenant *next;
};

struct queue {
	pthread_mutex_t lock;
	pthread_cond_t wake;   /* signalled when work may be there */
	struct queue_tenant *tenants;
	unsigned ntenants;
	uint64_t entries, bytes, samples; /* sums over tenants */
	int stopping;
};

struct queue_totals {
	uint64_t entries, bytes, samples;
	uint64_t oldest_ms;    /* 0 if empty */
	unsigned tenants_waiting; /* tenants in backoff */
};

void queue_init(struct queue *q);
void queue_destroy(struct queue *q);

/* Finds or creates (create != 0) a tenant; call with q->lock held. Returns
 * NULL if absent and not created, or out of memory. */
struct queue_tenant *queue_tenant_get(struct queue *q, const char *id,
				      size_t idlen, int create);

/* The writer committed an entry (or found one at start). */
void queue_added(struct queue *q, const char *id, size_t idlen, uint64_t seq,
		 uint64_t bytes, uint64_t samples, uint64_t created_ms);

/* The writer deleted entries; first_left is the oldest entry's
 * (seq, created_ms) still in the buffer for the tenant, seq 0 if none. */
void queue_removed(struct queue *q, const char *id, size_t idlen,
		   uint64_t entries, uint64_t bytes, uint64_t samples,
		   uint64_t next_seq, uint64_t next_created_ms);

/* What a forwarder thread took on with queue_claim. */
struct queue_job {
	char id[TENANT_ID_MAX + 1];
	size_t idlen;
	uint64_t first;        /* send entries from this seq on */
	uint64_t last;         /* up to this one */
	int isolate;           /* one entry only */
	int fresh;             /* new entries (else a range sent before) */
	unsigned attempts;     /* failed attempts in a row so far */
};

/*
 * Forwarder: waits until some tenant has entries to send (again), has
 * fewer than max_inflight requests in flight, is not backing off and no
 * other thread is reading its new entries; takes them and fills job.
 * Tenants take turns. Returns 0, or -1 once stopping.
 */
int queue_claim(struct queue *q, unsigned max_inflight, struct queue_job *job);

/*
 * Forwarder: after reading, says which entries the request holds
 * (first..last; none if entries is 0). What the job took but the request
 * does not hold is left for the next claim.
 */
void queue_taken(struct queue *q, const struct queue_job *job,
		 uint64_t entries, uint64_t first, uint64_t last);

/* Forwarder: gives a claim back untouched, as if it had not been made. */
void queue_unclaim(struct queue *q, const struct queue_job *job);

enum queue_outcome { QUEUE_SENT, QUEUE_RETRY, QUEUE_ISOLATE };

/*
 * Forwarder: the request holding first..last is done. QUEUE_SENT: the
 * upstream took it or it was set aside; QUEUE_RETRY: send it again after
 * retry_in_ms (the tenant backs off); QUEUE_ISOLATE: send its entries
 * again one by one.
 */
void queue_done(struct queue *q, const struct queue_job *job,
		enum queue_outcome outcome, uint64_t first, uint64_t last,
		uint64_t retry_in_ms);

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
