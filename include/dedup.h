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
 *                (up to 1,023 of them plus one round's), and their
 *                records' time range
 *   closed runs  in the order they closed (oldest first unless the clock
 *                was set back), each up to 16 chunks (closed open runs)
 *                within a slice of time (at most dedup_window / 8, at
 *                least 1 s) and up to 16,384 digests (a round that
 *                stored more makes a larger run of its own), each chunk's
 *                time range kept; per run a table of 257 offsets by the
 *                digest's first byte, then its next 16 bits (digest[1]
 *                and [2]) of each digest, sorted, and its chunk in 4 bits
 *                (2.5 bytes a request, no empty slots)
 *
 * At a round's end an open run that is full (1,024 or more) or spans a
 * slice becomes the next chunk of the newest closed run if it fits there,
 * else a run of its own; a round whose time is before the open run's
 * oldest record (the clock set back) or a slice past it closes the open
 * run first, so that no chunk's time range spans a step of the clock.
 *
 * Cost: a lookup searches the open run and every run still in the window,
 * about max(9, N / 16,384) runs for N requests in the window (more when
 * chunks run over 1,024: ~25 runs for 400,000 requests in 10 minutes),
 * each a table read and a binary search of its first byte's entries. A
 * match (32 bits in the open run, 24 in a closed run) is confirmed by
 * reading the records of its chunk's time range in dedup_time (a chunk
 * holds up to 1,023 plus a round's, mostly 1,024 to 2,000; some 20-50
 * us): real resends pay that, and
 * a new digest whose first 24 bits match one of the N by chance, about
 * N / 2^24 confirmations a lookup (one lookup in 42 at 400,000, one in 10
 * at 1.6 M). Measured on two shared cores (10-minute window, rounds of
 * 1,000, the quieter of two runs; up to 4x more with the machine
 * busy): a new digest 1.6-2.2 us at 400,000 requests in the window and
 * 7.5-12 us at 1.6 M (~100 runs); a resend 19-22 us and 31-51 us. A run
 * leaves the index whole when its newest record leaves the window; the
 * records go from dedup_time a bounded number per round.
 *
 * If memory is short when the open run should close, it stays open and
 * takes the next rounds too (each insert moving more of it). That is not
 * capped: an error from dedup_remember fails the writer's whole round, so
 * refusing to grow would refuse requests, not just skip their dedup.
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
