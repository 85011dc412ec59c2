/*
 * writer.h - the one thread that writes to LMDB: group commit.
 *
 * HTTP threads hand it batches (decoded, validated, compressed requests)
 * and wait; forwarder threads hand it acknowledgements and set-asides and
 * do not wait. Each round it takes everything that is waiting, writes it in
 * one transaction (a tenant's batches merged into few large entries), and
 * commits with a sync; only then does it tell each batch's owner. So many
 * concurrent requests share one fsync and none is answered before it is on
 * disk.
 */
#ifndef RELAY_WRITER_H
#define RELAY_WRITER_H

#include <pthread.h>
#include <stdint.h>

#include "config.h"
#include "sblock.h"
#include "usage.h"
#include "wire.h"

struct store;
struct queue;

/* One compressed piece of a request: a snappy block of whole series. */
struct chunk {
	uint8_t *block;          /* owned by the batch */
	size_t len;
	uint32_t raw_len;
	struct wire_counts counts;
};

enum batch_status {
	BATCH_PENDING = 0,
	BATCH_STORED,            /* durable: answer 2xx */
	BATCH_DUPLICATE,         /* a resend already stored: 2xx, not stored */
	BATCH_FULL,              /* over max_size: 503 */
	BATCH_TENANT_FULL,       /* over the tenant's max_buffer_bytes */
	BATCH_FAILED             /* commit failed: 503 */
};

struct batch {
	char tenant[TENANT_ID_MAX + 1];
	size_t tlen;
	struct chunk *chunks;    /* owned */
	size_t nchunks;
	uint64_t value_bytes;    /* what it will take in LMDB, about */
	uint64_t tenant_max_bytes; /* the tenant's share of the buffer; 0: none */
	uint8_t digest[32];      /* SHA-256 of tenant and body, for dedup */
	int has_digest;
	struct usage_rec usage;  /* what it adds to the tenant's usage */
	const uint32_t *hll;     /* ref: series as usage_hll_code()s */
	size_t nhll;
	/* Set by the writer before done() is called. */
	enum batch_status status;
	/* Called on the writer thread once status is final; must not block. */
	void (*done)(struct batch *b, void *arg);
	void *arg;
	struct batch *next;      /* writer's list */
};

/* Frees what a batch owns (its chunks), not the batch itself. */
void batch_release(struct batch *b);

struct writer;

/* Starts the writer thread. Returns NULL on failure. */
struct writer *writer_start(const struct config *cfg, struct store *st,
			    struct queue *q);

/* Stops after writing all that was submitted; frees the writer. */
void writer_stop(struct writer *w);

/* Hands a batch over; b->done is called later on the writer thread.
 * After writer_stop has begun, done is called at once with BATCH_FAILED. */
void writer_submit(struct writer *w, struct batch *b);

/* The upstream took the tenant's entries first..last: delete them. */
void writer_ack(struct writer *w, const char *tenant, size_t tlen,
		uint64_t first, uint64_t last);

struct setaside_filter;

/* Replays (replay = 1) or purges the matching set-aside entries. */
void writer_setaside_op(struct writer *w, const struct setaside_filter *f,
			int replay);

/* A request of the tenant was refused: count it and its samples in usage. */
void writer_refused(struct writer *w, const char *tenant, size_t tlen,
		    int reason, uint64_t samples);

/* The upstream refused entry seq for good: move it to setaside. */
void writer_set_aside(struct writer *w, const char *tenant, size_t tlen,
		      uint64_t seq, long status, const char *reason);

#endif
