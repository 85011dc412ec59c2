/*
 * batch.h - one accepted remote-write request on its way to the buffer:
 * ingest builds it (ingest.h), the writer commits it (writer.h), and the
 * writer's round assembles entries from its chunks (entries.h).
 */
#ifndef RELAY_BATCH_H
#define RELAY_BATCH_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "ha.h"
#include "metrics.h"
#include "store.h"
#include "usage.h"
#include "wire.h"

/* One compressed piece of a request: a snappy block of whole series, all
 * of one delivery lane (lanes.h). */
struct chunk {
	uint8_t *block;          /* owned by the batch */
	size_t len;
	uint32_t raw_len;
	unsigned lane;           /* 0..LANES-1 */
	struct wire_counts counts;
};

enum batch_status {
	BATCH_PENDING = 0,
	BATCH_STORED,            /* durable: answer 2xx */
	BATCH_DUPLICATE,         /* a resend already stored: 2xx, not stored */
	BATCH_REFUSED,           /* not stored: batch.reason says why */
	BATCH_HA_DEDUPLICATED    /* from an HA replica not elected: 2xx, not
				  * stored (ha.h) */
};

/* The HA cluster and replica of a request (ha.h); on = 0: not an HA
 * request, stored as it is. */
struct batch_ha {
	int on;
	char cluster[HA_VALUE_MAX];
	size_t clen;
	char replica[HA_VALUE_MAX];
	size_t rlen;
	uint64_t failover_ms;    /* the tenant's ha_failover_timeout */
	/* Samples of the series left out (over max_series, or left invalid
	 * by relabel rules): deduplicated with the rest when the replica is
	 * not elected, so that the whole request is billed as such. */
	uint64_t left_out;
};

struct batch {
	char tenant[TENANT_ID_MAX + 1];
	size_t tlen;
	struct chunk *chunks;    /* owned */
	size_t nchunks;
	uint64_t value_bytes;    /* what it will take in LMDB, about */
	uint64_t tenant_max_bytes; /* the tenant's share of the buffer; 0: none */
	/* Where its entries go: the tenant's account and project ids when it
	 * was accepted, stored with them (store.h, the dest database). */
	struct store_dest dest;
	uint8_t digest[32];      /* SHA-256 of tenant and body, for dedup */
	int has_digest;
	struct usage_rec usage;  /* what it adds to the tenant's usage */
	const uint32_t *hll;     /* ref: series as usage_hll_code()s */
	size_t nhll;
	struct batch_ha ha;
	/* Not billed: stored and delivered, but counted in no usage record
	 * and no relay_tenant_* counter (the relay's own usage series,
	 * usage_export.h). */
	int unbilled;
	/* Series of a tenant with [tenant] max_series that the batch adds or
	 * refreshes (series_limit.h): stored with it, last seen at
	 * series_seen_ms, under the window series_window_ms. */
	const uint64_t *series;  /* ref: hashes */
	size_t nseries;
	uint64_t series_seen_ms;
	uint64_t series_window_ms;
	/* Set by the writer before done() is called. */
	enum batch_status status;
	/* BATCH_REFUSED: REFUSE_BUFFER_FULL (over max_size),
	 * REFUSE_TENANT_FULL (over the tenant's max_buffer_bytes) or
	 * REFUSE_STORAGE (the commit failed, or the writer has stopped);
	 * the HTTP side turns it into a status and a text. */
	enum refuse_reason reason;
	/* Called on the writer thread once status is final; must not block. */
	void (*done)(struct batch *b, void *arg);
	void *arg;
	struct batch *next;      /* writer's list */
};

/* Frees what a batch owns (its chunks), not the batch itself. */
void batch_release(struct batch *b);

#endif
