/*
 * dedup.h - resent requests are acknowledged but not stored twice.
 *
 * A sender that timed out sends the same body again. Each stored request
 * leaves its SHA-256 (of tenant id, 0x00, body) in the dedup_time database
 * for [storage] dedup_window; a request whose digest is there is answered
 * 2xx and neither stored nor counted again. The records are written in the
 * same transaction as the data (formats in store.h).
 *
 * dedup_time is keyed by time, so a commit appends its records to the last
 * leaf page and expiry deletes from the first: a digest-keyed database
 * would rewrite a random leaf page for every request, several per commit,
 * each one more page to sync before the acknowledgement. Lookups by digest
 * go through an index in memory instead, built from dedup_time at start:
 * 36 bits of the digest and the low 28 bits of the record's time in ms,
 * 8 bytes a slot, a quarter to a half of the slots used as the window
 * fills (16 to 32 bytes per request in it), down to an eighth as it
 * empties before the index halves. A match is confirmed with the full
 * record in dedup_time.
 *
 * Owned by the writer thread; not thread-safe.
 */
#ifndef RELAY_DEDUP_H
#define RELAY_DEDUP_H

#include <lmdb.h>
#include <stddef.h>
#include <stdint.h>

struct store;
struct dedup;

/*
 * Builds the index from the records of st's dedup_time that are younger
 * than window_ms at now, and empties the digest-keyed database earlier
 * versions wrote (txn must be a write transaction). Returns NULL when
 * memory is short or LMDB fails (*rc then holds the code).
 */
struct dedup *dedup_open(MDB_txn *txn, struct store *st, uint64_t now,
			 uint64_t window_ms, int *rc);

void dedup_free(struct dedup *d);

/* Whether digest was stored less than window_ms before now, as txn sees
 * it. Returns 1, 0, or a negative LMDB error code. */
int dedup_seen(struct dedup *d, MDB_txn *txn, struct store *st,
	       const uint8_t digest[32], uint64_t now, uint64_t window_ms);

/* Records digest as stored at now. Returns 0 or an LMDB error code. The
 * index changes at once; dedup_round_end says whether txn was committed. */
int dedup_remember(struct dedup *d, MDB_txn *txn, struct store *st,
		   const uint8_t digest[32], uint64_t now);

/* Removes records older than window_ms, a bounded number per call.
 * Returns 0 or an LMDB error code. */
int dedup_expire(struct dedup *d, MDB_txn *txn, struct store *st,
		 uint64_t now, uint64_t window_ms);

/* Ends the transaction's round: when it was aborted (committed == 0), the
 * digests dedup_remember added in it leave the index again. */
void dedup_round_end(struct dedup *d, int committed);

/* Digests in the index. */
size_t dedup_count(const struct dedup *d);

#endif
