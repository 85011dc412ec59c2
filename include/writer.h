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

#include "batch.h"
#include "config.h"

struct store;
struct queue;

struct writer;

/* Starts the writer thread. Returns NULL on failure. */
struct writer *writer_start(const struct config *cfg, struct store *st,
			    struct queue *q);

/* Stops after writing all that was submitted; frees the writer. */
void writer_stop(struct writer *w);

/* Hands a batch over; b->done is called later on the writer thread.
 * After writer_stop has begun, done is called at once with BATCH_REFUSED
 * and REFUSE_STORAGE. */
void writer_submit(struct writer *w, struct batch *b);

/* The upstream took lane's parts of the tenant's entries first..last:
 * the lane is through last (store_lane_ack), entries no lane needs are
 * deleted. */
void writer_ack(struct writer *w, const char *tenant, size_t tlen,
		unsigned lane, uint64_t first, uint64_t last);

/* writer_ack, with what the request's body saw of the entries
 * (store_body's seen[0..nseen), copied): entries listed there are read
 * again only to be deleted (store_lane_ack_seen). */
void writer_ack_seen(struct writer *w, const char *tenant, size_t tlen,
		     unsigned lane, uint64_t first, uint64_t last,
		     const struct store_seen *seen, size_t nseen);

struct setaside_filter;

/* Replays (replay = 1) or purges the matching set-aside entries. */
void writer_setaside_op(struct writer *w, const struct setaside_filter *f,
			int replay);

/* A request of the tenant was refused: count it and its samples in usage. */
void writer_refused(struct writer *w, const char *tenant, size_t tlen,
		    int reason, uint64_t samples);

/* The upstream refused lane's part of entry seq for good: copy it to
 * setaside, and the lane is through seq. */
void writer_set_aside(struct writer *w, const char *tenant, size_t tlen,
		      unsigned lane, uint64_t seq, long status,
		      const char *reason);

#endif
