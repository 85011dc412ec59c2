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
 * go through an index in memory instead, built from dedup_time at start,
 * of about 2.5 bytes per request in the window:
 *
 *   open run     the first 4 bytes of each digest stored lately, sorted
 *                (up to 1,024 of them), and their records' time range
 *   closed runs  oldest first, each up to 16 chunks (closed open runs)
 *                within a slice of time (at most dedup_window / 8, at
 *                least 1 s), at most 16,384 digests, each chunk's time
 *                range kept; per run a table of 257 offsets by the
 *                digest's first byte, then bytes 2-3 of each digest,
 *                sorted, and its chunk in 4 bits (2.5 bytes a request,
 *                no empty slots)
 *
 * At a round's end an open run that is full (or spans a slice) becomes
 * the next chunk of the newest closed run if it fits there, else a run of
 * its own. A lookup searches the open run and each run still in the
 * window; a match (24 bits in a closed run) is confirmed by reading the
 * records of its chunk's time range in dedup_time (about 1,000, some
 * 20-30 us): only real resends and about one lookup in 2^24 / (requests
 * in the window) pay that. A run leaves the index whole when its newest
 * record leaves the window; the records go from dedup_time a bounded
 * number per round.
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

/* Digests in the index (those of a run that is partly out of the window
 * too). */
size_t dedup_count(const struct dedup *d);

/* Bytes of memory the index holds (its mappings and allocations). */
size_t dedup_bytes(const struct dedup *d);

/* For tests: the widest time range of a chunk or of the open run (ms),
 * and the open run as it is (its keys, sorted, and its time range; the
 * count is returned). */
uint64_t dedup_widest_ms(const struct dedup *d);
size_t dedup_open_view(const struct dedup *d, const uint32_t **keys,
		       uint64_t *lo, uint64_t *hi);

#endif
