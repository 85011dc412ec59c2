/*
 * dedup.c - digests of stored requests, by time (see dedup.h).
 */
#include "dedup.h"

#include <string.h>

#include "store.h"

/* Expired records removed per call at most (keeps commits short). */
#define EXPIRE_PER_CALL 4096

int dedup_seen(MDB_txn *txn, struct store *st, const uint8_t digest[32],
	       uint64_t now, uint64_t window_ms)
{
	MDB_val k = {32, (void *)digest}, v;
	uint64_t t;
	int rc;

	if (window_ms == 0)
		return 0;
	rc = mdb_get(txn, st->dedup, &k, &v);
	if (rc == MDB_NOTFOUND)
		return 0;
	if (rc != 0)
		return -rc;
	if (v.mv_size != 8)
		return 0;
	memcpy(&t, v.mv_data, 8);
	return t + window_ms > now;
}

int dedup_remember(MDB_txn *txn, struct store *st, const uint8_t digest[32],
		   uint64_t now)
{
	uint8_t tkey[8 + 32];
	MDB_val k = {32, (void *)digest}, v = {8, &now}, empty = {0, NULL};
	int rc;

	if ((rc = mdb_put(txn, st->dedup, &k, &v, 0)) != 0)
		return rc;
	for (int i = 0; i < 8; i++)
		tkey[i] = (uint8_t)(now >> (56 - 8 * i));
	memcpy(tkey + 8, digest, 32);
	k.mv_size = sizeof(tkey);
	k.mv_data = tkey;
	return mdb_put(txn, st->dedup_time, &k, &empty, 0);
}

int dedup_expire(MDB_txn *txn, struct store *st, uint64_t now,
		 uint64_t window_ms)
{
	MDB_cursor *cur;
	MDB_val k, v, dk, cur_v;
	uint64_t t;
	int rc, n = 0;

	if ((rc = mdb_cursor_open(txn, st->dedup_time, &cur)) != 0)
		return rc;
	while ((rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST)) == 0 &&
	       n++ < EXPIRE_PER_CALL) {
		if (k.mv_size != 8 + 32)
			break;
		t = 0;
		for (int i = 0; i < 8; i++)
			t = t << 8 | ((const uint8_t *)k.mv_data)[i];
		if (t + window_ms > now)
			break;
		dk.mv_size = 32;
		dk.mv_data = (uint8_t *)k.mv_data + 8;
		/* Only the record of this time: a later resend may have
		 * renewed the digest. */
		if (mdb_get(txn, st->dedup, &dk, &cur_v) == 0 && cur_v.mv_size == 8) {
			uint64_t stored;
			memcpy(&stored, cur_v.mv_data, 8);
			if (stored == t && (rc = mdb_del(txn, st->dedup, &dk, NULL)) != 0)
				break;
		}
		if ((rc = mdb_cursor_del(cur, 0)) != 0)
			break;
	}
	mdb_cursor_close(cur);
	return rc == MDB_NOTFOUND || rc == 0 ? 0 : rc;
}
