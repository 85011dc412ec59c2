/*
 * dedup.h - resent requests are acknowledged but not stored twice.
 *
 * A sender that timed out sends the same body again. Each stored request
 * leaves its SHA-256 (of tenant id, 0x00, body) in the dedup_time database
 * for [storage] dedup_window; a request whose digest is there is answered
 * 2xx and neither stored nor counted again. The records are written in the
 * same transaction as the data (formats in store.h; the store reads and
 * writes the records, this module keeps the index).
 *
 * dedup_time is keyed by time, so a commit appends its records to the last
 * leaf page and expiry deletes from the first: a digest-keyed database
 * would rewrite a random leaf page for every request, several per commit,
 * each one more page to sync before the acknowledgement. Lookups by digest
 * go through an index in memory instead, built from dedup_time at start:
 * 36 bits of the digest and the low 28 bits of the record's time in ms,
 * 8 bytes a slot, 0.4 to 0.8 of the slots used as the window fills (10
 * to 20 bytes per request in it), down to an eighth as it empties before
 * the index halves. A match is confirmed with the full
 * record in dedup_time.
 *
 * Owned by the writer thread; not thread-safe.
 */
#ifndef RELAY_DEDUP_H
#define RELAY_DEDUP_H

#include <stddef.h>
#include <stdint.h>

struct store_txn;
struct dedup;

/*
 * Builds the index from the store's records that are younger than
 * window_ms at now (txn: the writer's transaction). Returns NULL when
 * memory is short or the store fails (*rc then holds the ERR_* code).
 */
struct dedup *dedup_open(struct store_txn *txn, uint64_t now,
			 uint64_t window_ms, int *rc);

void dedup_free(struct dedup *d);

/* Whether digest was stored less than window_ms before now, as txn sees
 * it. Returns 1 (a duplicate), 0, or an ERR_* code. */
int dedup_seen(struct dedup *d, struct store_txn *txn,
	       const uint8_t digest[32], uint64_t now, uint64_t window_ms);

/* Records digest as stored at now. Returns 0 or an ERR_* code. The index
 * changes at once; dedup_round_end says whether txn was committed. */
int dedup_remember(struct dedup *d, struct store_txn *txn,
		   const uint8_t digest[32], uint64_t now);

/* Removes records older than window_ms, a bounded number per call.
 * Returns 0 or an ERR_* code. */
int dedup_expire(struct dedup *d, struct store_txn *txn, uint64_t now,
		 uint64_t window_ms);

/* Ends the transaction's round: when it was aborted (committed == 0), the
 * digests dedup_remember added in it leave the index again. */
void dedup_round_end(struct dedup *d, int committed);

/* Digests in the index. */
size_t dedup_count(const struct dedup *d);

#endif
