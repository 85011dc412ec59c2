/*
 * store_series.c - the series database: the series each tenant with a
 * [tenant] max_series sent, with when each was last seen, so that a
 * restart does not reset its count (see store.h, series_limit.h).
 */
#include "store_int.h"

#include <errno.h>
#include <string.h>

/* The record of (tenant, hash) when the key and value are readable:
 * 0 with its fields, or -1. */
static int series_parse(const MDB_val *k, const MDB_val *v, const char **tenant,
			size_t *tlen, uint64_t *hash,
			struct store_series_rec *rec)
{
	if (v->mv_size != sizeof(*rec) ||
	    store_key_parse(k, tenant, tlen, hash) != 0 || *tlen == 0 ||
	    *tlen > TENANT_ID_MAX)
		return -1;
	memcpy(rec, v->mv_data, sizeof(*rec));
	return 0;
}

int store_series_put(struct store_txn *t, const char *tenant, size_t tlen,
		     uint64_t hash, uint64_t seen_ms, uint64_t window_ms)
{
	struct store_series_rec rec = {seen_ms, window_ms};
	uint8_t key[STORE_KEY_MAX];
	MDB_val k, v = {sizeof(rec), &rec};

	if (tlen == 0 || tlen > TENANT_ID_MAX || t->st->series == 0)
		return ERR_FAIL;
	k.mv_size = store_key(key, tenant, tlen, hash);
	k.mv_data = key;
	return err_from_mdb(store_seam_put(t->txn, t->st->series, &k, &v, 0));
}

int store_series_each(struct store *st,
		      int (*fn)(void *arg, const char *tenant, size_t tlen,
				uint64_t hash, uint64_t seen_ms,
				uint64_t window_ms),
		      void *arg)
{
	struct store_series_rec rec;
	MDB_txn *txn;
	MDB_cursor *cur;
	MDB_val k, v;
	const char *tenant;
	size_t tlen;
	uint64_t hash;
	int rc, ret = 0;

	if (st->series == 0)
		return 0;
	if ((rc = store_read_begin(st, &txn)) != 0)
		return rc;
	if ((rc = mdb_cursor_open(txn, st->series, &cur)) != 0) {
		mdb_txn_abort(txn);
		return err_from_mdb(rc);
	}
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
	     rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		if (series_parse(&k, &v, &tenant, &tlen, &hash, &rec) != 0)
			continue;
		if ((ret = fn(arg, tenant, tlen, hash, rec.seen_ms,
			      rec.window_ms)) != 0)
			break;
	}
	mdb_cursor_close(cur);
	mdb_txn_abort(txn);
	if (ret != 0)
		return ret;
	return rc == MDB_NOTFOUND ? 0 : err_from_mdb(rc);
}

int store_series_expire(struct store_txn *t, struct store_pos *pos,
			unsigned max, uint64_t now_ms, uint64_t *deleted)
{
	struct store_series_rec rec;
	uint8_t key[STORE_KEY_MAX];
	MDB_cursor *cur;
	MDB_val k, v;
	const char *tenant;
	size_t tlen;
	uint64_t hash;
	unsigned seen = 0;
	int rc;

	*deleted = 0;
	if (t->st->series == 0)
		return 0;
	if ((rc = mdb_cursor_open(t->txn, t->st->series, &cur)) != 0)
		return err_from_mdb(rc);
	if (pos->started) {
		k.mv_size = store_key(key, pos->tenant, pos->tlen, pos->hour);
		k.mv_data = key;
		rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
	} else {
		rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
	}
	while (rc == 0 && seen++ < max) {
		if (series_parse(&k, &v, &tenant, &tlen, &hash, &rec) != 0 ||
		    rec.seen_ms + rec.window_ms <= now_ms) {
			if ((rc = mdb_cursor_del(cur, 0)) != 0)
				break;
			++*deleted;
			/* The cursor now stands on the next record, if any. */
			rc = mdb_cursor_get(cur, &k, &v, MDB_GET_CURRENT);
			if (rc == EINVAL)  /* deleted the last record */
				rc = MDB_NOTFOUND;
			continue;
		}
		memcpy(pos->tenant, tenant, tlen);
		pos->tlen = tlen;
		pos->hour = hash;
		pos->started = 1;
		rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
	}
	mdb_cursor_close(cur);
	if (rc == MDB_NOTFOUND) {
		pos->started = 0;       /* the end: start over next time */
		return 0;
	}
	return err_from_mdb(rc);
}
