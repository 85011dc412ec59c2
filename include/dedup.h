/*
 * dedup.h - resent requests are acknowledged but not stored twice.
 *
 * A sender that timed out sends the same body again. Each stored request
 * leaves its SHA-256 (of tenant id, 0x00, body) in the dedup database for
 * [storage] dedup_window; a request whose digest is there is answered 2xx
 * and neither stored nor counted again. The records are written in the
 * same transaction as the data (formats in store.h).
 */
#ifndef RELAY_DEDUP_H
#define RELAY_DEDUP_H

#include <lmdb.h>
#include <stdint.h>

struct store;

/* Whether digest was stored less than window_ms before now. Returns 1, 0,
 * or a negative LMDB error code. */
int dedup_seen(MDB_txn *txn, struct store *st, const uint8_t digest[32],
	       uint64_t now, uint64_t window_ms);

/* Records digest as stored at now. Returns 0 or an LMDB error code. */
int dedup_remember(MDB_txn *txn, struct store *st, const uint8_t digest[32],
		   uint64_t now);

/* Removes records older than window_ms, a bounded number per call.
 * Returns 0 or an LMDB error code. */
int dedup_expire(MDB_txn *txn, struct store *st, uint64_t now,
		 uint64_t window_ms);

#endif
