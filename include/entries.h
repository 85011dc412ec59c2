/*
 * entries.h - a round's entries being assembled. The writer hands each
 * stored batch's chunks, in order, to its tenant's open entry; an entry
 * is written to the store when the next chunk would take it past
 * max_request_size decoded bytes and at the end of the round, so each
 * entry goes upstream as one request (see store.h for the format).
 *
 * Owned by the writer thread; not thread-safe.
 */
#ifndef RELAY_ENTRIES_H
#define RELAY_ENTRIES_H

#include <stddef.h>
#include <stdint.h>

#include "batch.h"
#include "sblock.h"
#include "store.h"

/* An entry being assembled this round: one tenant's consecutive chunks. */
struct open_entry {
	const char *tenant;       /* ref: the first batch's */
	size_t tlen;
	struct sblock_part *parts;/* owned, grows */
	size_t nparts, cap;
	struct entry_hdr hdr;
	uint64_t raw;             /* decoded bytes of the chunks in it */
	uint64_t round_bytes;     /* admitted for the tenant this round */
	/* ref: where its chunks go (their batch's); NULL: no record */
	const struct store_dest *dest;
};

/* The open entries of a round, one per tenant. Zeroed is empty. */
struct entry_set {
	struct open_entry *open;  /* owned; the first n are this round's */
	size_t n, cap;
};

/* An entry written to the store. */
struct entry_written {
	uint64_t seq, bytes, samples;
};

/* Starts a round: no tenant has an open entry. */
void entry_set_reset(struct entry_set *s);

/* The tenant's open entry this round, empty if new; tenant must outlive
 * the round. NULL when memory is short. */
struct open_entry *entry_set_find(struct entry_set *s, const char *tenant,
				  size_t tlen);

/* Appends chunk ch (its block stays the batch's) and counts it in the
 * header; the caller counts requests. Returns 0, or ERR_NOMEM. */
int entry_add(struct open_entry *e, const struct chunk *ch);

/* Writes e as the store's next entry (the store gives its sequence
 * number), with a destination record first when e->dest is set and the
 * tenant's latest record differs, created at created_ms, fills *out and
 * empties e. An empty
 * entry writes nothing and returns 1. Returns 0, 1, or an ERR_* code. */
int entry_write(struct open_entry *e, struct store_txn *txn,
		uint64_t created_ms, struct entry_written *out);

void entry_set_free(struct entry_set *s);

#endif
