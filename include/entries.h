/*
 * entries.h - a round's entries being assembled. The writer hands each
 * stored batch's chunks, in order, to its tenant's open entry, which
 * keeps them by lane (lanes.h); an entry is written to the store when the
 * next chunk would take its lane past max_request_size decoded bytes and
 * at the end of the round: one entry per tenant and round, most of the
 * time, holding one block per lane (see store.h for the format), each of
 * which goes upstream merged with the same lane's blocks of the entries
 * after it.
 *
 * Owned by the writer thread; not thread-safe.
 */
#ifndef RELAY_ENTRIES_H
#define RELAY_ENTRIES_H

#include <stddef.h>
#include <stdint.h>

#include "batch.h"
#include "lanes.h"
#include "sblock.h"
#include "store.h"

/* One lane of an open entry: its chunks' blocks, counted. */
struct open_lane {
	struct sblock_part *parts;/* owned, grows */
	size_t nparts, cap;
	uint64_t raw;             /* decoded bytes of its chunks */
	uint32_t samples, series;
};

/* An entry being assembled this round: one tenant's consecutive chunks. */
struct open_entry {
	const char *tenant;       /* ref: the first batch's */
	size_t tlen;
	struct open_lane lane[LANES];
	size_t nparts;            /* chunks in all lanes */
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

/* Whether chunk ch fits in e: its lane stays within max decoded bytes
 * (or holds nothing yet). 1 or 0. */
int entry_fits(const struct open_entry *e, const struct chunk *ch,
	       uint64_t max);

/* Appends chunk ch to its lane (its block stays the batch's) and counts
 * it in the header; the caller counts requests. Returns 0, or ERR_NOMEM
 * (or ERR_FAIL: a lane out of range). */
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
