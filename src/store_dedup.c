/*
 * store_dedup.c - the dedup_time database: one record per stored request,
 * keyed by time and digest (see store.h and dedup.h).
 */
#include "store_int.h"

#include <string.h>

#define DEDUP_KEY 40

static void time_key(uint8_t out[DEDUP_KEY], uint64_t t,
		     const uint8_t digest[32])
{
	for (int i = 0; i < 8; i++)
		out[i] = (uint8_t)(t >> (56 - 8 * i));
	memcpy(out + 8, digest, 32);
}

static uint64_t key_time(const MDB_val *k)
{
	uint64_t t = 0;

	for (int i = 0; i < 8; i++)
		t = t << 8 | ((const uint8_t *)k->mv_data)[i];
	return t;
}

int store_dedup_each(struct store_txn *t,
		     int (*fn)(void *arg, uint64_t ms, const uint8_t digest[32]),
		     void *arg)
{
	MDB_cursor *cur;
	MDB_val k, v;
	int rc, ret = 0;

	if ((rc = mdb_cursor_open(t->txn, t->st->dedup_time, &cur)) != 0)
		return err_from_mdb(rc);
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
	     rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		if (k.mv_size != DEDUP_KEY)
			continue;
		if ((ret = fn(arg, key_time(&k), (const uint8_t *)k.mv_data + 8)) != 0)
			break;
	}
	mdb_cursor_close(cur);
	if (ret != 0)
		return ret;
	return rc == MDB_NOTFOUND ? 0 : err_from_mdb(rc);
}

int store_dedup_find(struct store_txn *t, uint64_t from_ms, uint64_t to_ms,
		     const uint8_t digest[32])
{
	static const uint8_t none[32];
	uint8_t tk[DEDUP_KEY];
	MDB_val k = {sizeof(tk), tk}, v;
	MDB_cursor *cur;
	int rc, found = 0;

	if ((rc = mdb_cursor_open(t->txn, t->st->dedup_time, &cur)) != 0)
		return err_from_mdb(rc);
	time_key(tk, from_ms, none);
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); rc == 0;
	     rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		if (k.mv_size != DEDUP_KEY)
			continue;
		if (key_time(&k) > to_ms)
			break;
		if (memcmp((const uint8_t *)k.mv_data + 8, digest, 32) == 0) {
			found = 1;
			break;
		}
	}
	mdb_cursor_close(cur);
	if (found)
		return 1;
	return rc == 0 || rc == MDB_NOTFOUND ? 0 : err_from_mdb(rc);
}

int store_dedup_put(struct store_txn *t, uint64_t ms, const uint8_t digest[32])
{
	uint8_t tk[DEDUP_KEY];
	MDB_val k = {sizeof(tk), tk}, empty = {0, NULL};

	time_key(tk, ms, digest);
	return err_from_mdb(store_seam_put(t->txn, t->st->dedup_time, &k, &empty, 0));
}

int store_dedup_expire(struct store_txn *t, uint64_t before_ms, unsigned max,
		       void (*gone)(void *arg, uint64_t ms,
				    const uint8_t digest[32]),
		       void *arg)
{
	MDB_cursor *cur;
	MDB_val k, v;
	uint64_t ms;
	unsigned n = 0;
	int rc;

	if ((rc = mdb_cursor_open(t->txn, t->st->dedup_time, &cur)) != 0)
		return err_from_mdb(rc);
	while ((rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST)) == 0 && n++ < max) {
		if (k.mv_size == DEDUP_KEY) {
			if ((ms = key_time(&k)) >= before_ms)
				break;
			gone(arg, ms, (const uint8_t *)k.mv_data + 8);
		}
		if ((rc = mdb_cursor_del(cur, 0)) != 0)
			break;
	}
	mdb_cursor_close(cur);
	return rc == MDB_NOTFOUND || rc == 0 ? 0 : err_from_mdb(rc);
}
