/*
 * store_usage.c - the usage and usage_hll databases: values per tenant
 * and hour, and each tenant's carried record (STORE_USAGE_CARRIED), whose
 * contents the usage module defines (see store.h and usage.h).
 */
#include "store_int.h"

#include <errno.h>
#include <string.h>

static MDB_dbi usage_dbi(const struct store *st, int hll)
{
	return hll ? st->usage_hll : st->usage;
}

int store_usage_get(struct store_txn *t, int hll, const char *tenant,
		    size_t tlen, uint64_t hour, const void **val, size_t *len)
{
	uint8_t key[STORE_KEY_MAX];
	MDB_val k = {store_key(key, tenant, tlen, hour), key}, v;
	int rc = mdb_get(t->txn, usage_dbi(t->st, hll), &k, &v);

	if (rc == MDB_NOTFOUND)
		return 0;
	if (rc != 0)
		return err_from_mdb(rc);
	*val = v.mv_data;
	*len = v.mv_size;
	return 1;
}

int store_usage_put(struct store_txn *t, int hll, const char *tenant,
		    size_t tlen, uint64_t hour, const void *val, size_t len)
{
	uint8_t key[STORE_KEY_MAX];
	MDB_val k = {store_key(key, tenant, tlen, hour), key};
	MDB_val v = {len, (void *)val};

	return err_from_mdb(store_seam_put(t->txn, usage_dbi(t->st, hll), &k,
					   &v, 0));
}

int store_usage_reserve(struct store_txn *t, int hll, const char *tenant,
			size_t tlen, uint64_t hour, size_t len, void **out)
{
	uint8_t key[STORE_KEY_MAX];
	MDB_val k = {store_key(key, tenant, tlen, hour), key};
	MDB_val v = {len, NULL};
	int rc = store_seam_put(t->txn, usage_dbi(t->st, hll), &k, &v,
				MDB_RESERVE);

	if (rc != 0)
		return err_from_mdb(rc);
	*out = v.mv_data;
	return 0;
}

/* Deletes the records of db whose hour is before cutoff_s, each passed to
 * gone first (when not NULL). Returns 0 or an ERR_* code (gone's). */
static int delete_before(MDB_txn *txn, MDB_dbi db, uint64_t cutoff_s,
			 int (*gone)(void *arg, const char *tenant, size_t tlen,
				     uint64_t hour, const void *val, size_t len),
			 void *arg)
{
	uint8_t key[STORE_KEY_MAX];
	const char *tenant;
	size_t tlen;
	uint64_t h;
	MDB_cursor *cur;
	MDB_val k, v, last;
	int rc, ret = 0;

	if ((rc = mdb_cursor_open(txn, db, &cur)) != 0)
		return err_from_mdb(rc);
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;) {
		if (store_key_parse(&k, &tenant, &tlen, &h) != 0) {
			rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
			continue;
		}
		/* A tenant's records go by hour: past the cutoff, its others
		 * are too (the carried hour, all ones, is never before one).
		 * So on to the next tenant, not through every hour kept. */
		if (h >= cutoff_s) {
			last.mv_size = store_key(key, tenant, tlen, UINT64_MAX);
			last.mv_data = key;
			k = last;
			rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
			if (rc == 0 && k.mv_size == last.mv_size &&
			    memcmp(k.mv_data, key, last.mv_size) == 0)
				rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
			continue;
		}
		if (gone != NULL &&
		    (ret = gone(arg, tenant, tlen, h, v.mv_data, v.mv_size)) != 0)
			break;
		if ((rc = mdb_cursor_del(cur, 0)) != 0)
			break;
		rc = mdb_cursor_get(cur, &k, &v, MDB_GET_CURRENT);
	}
	mdb_cursor_close(cur);
	if (ret != 0)
		return ret;
	return rc == MDB_NOTFOUND || rc == EINVAL ? 0 : err_from_mdb(rc);
}

int store_usage_cleanup(struct store_txn *t, uint64_t hll_before_s,
			uint64_t usage_before_s,
			int (*gone)(void *arg, const char *tenant, size_t tlen,
				    uint64_t hour, const void *val, size_t len),
			void *arg)
{
	int rc;

	if ((rc = delete_before(t->txn, t->st->usage_hll, hll_before_s,
				NULL, NULL)) == 0 && usage_before_s > 0)
		rc = delete_before(t->txn, t->st->usage, usage_before_s, gone,
				   arg);
	return rc;
}

/* A read transaction and a cursor on the usage database. Returns 0, 1 when
 * the store has none (a reader of a directory without one: nothing to
 * read), or an ERR_* code. */
static int usage_cursor(struct store *st, MDB_txn **txn, MDB_cursor **cur)
{
	int rc;

	if (st->usage == 0)
		return 1;
	if ((rc = store_read_begin(st, txn)) != 0)
		return rc;
	if ((rc = mdb_cursor_open(*txn, st->usage, cur)) != 0) {
		mdb_txn_abort(*txn);
		return err_from_mdb(rc);
	}
	return 0;
}

int store_usage_each(struct store *st, const char *tenant, size_t tlen,
		     uint64_t from_s,
		     int (*fn)(void *arg, const char *tenant, size_t tlen,
			       uint64_t hour, const void *val, size_t len),
		     void *arg)
{
	uint8_t key[STORE_KEY_MAX];
	const char *t;
	size_t n;
	uint64_t h;
	MDB_cursor *cur;
	MDB_txn *txn;
	MDB_val k, v;
	int rc, ret = 0;

	if ((rc = usage_cursor(st, &txn, &cur)) != 0)
		return rc > 0 ? 0 : rc;
	if (tenant != NULL) {
		k.mv_size = store_key(key, tenant, tlen, from_s);
		k.mv_data = key;
		rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
	} else {
		rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
	}
	for (; rc == 0; rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		if (store_key_parse(&k, &t, &n, &h) < 0)
			continue;
		if (tenant != NULL && (n != tlen || memcmp(t, tenant, tlen) != 0))
			break;
		if (h == STORE_USAGE_CARRIED)
			continue;
		if ((ret = fn(arg, t, n, h, v.mv_data, v.mv_size)) != 0)
			break;
	}
	mdb_cursor_close(cur);
	mdb_txn_abort(txn);
	if (ret < 0)
		return ret;
	return ret == 1 || rc == 0 || rc == MDB_NOTFOUND ? 0 : err_from_mdb(rc);
}

/* Positions cur at the first record a page after pos takes: after pos,
 * and at (tenant, from_s) or later when tenant is not NULL. Returns an
 * LMDB code (MDB_NOTFOUND: none). */
static int page_seek(MDB_cursor *cur, const char *tenant, size_t tlen,
		     uint64_t from_s, const struct store_pos *pos,
		     MDB_val *k, MDB_val *v)
{
	uint8_t key[STORE_KEY_MAX], at[STORE_KEY_MAX];
	MDB_val start = {0, key}, after = {0, at};
	int rc;

	if (tenant != NULL)
		start.mv_size = store_key(key, tenant, tlen, from_s);
	if (pos->started)
		after.mv_size = store_key(at, pos->tenant, pos->tlen, pos->hour);
	if (pos->started &&
	    (tenant == NULL || mdb_cmp(mdb_cursor_txn(cur), mdb_cursor_dbi(cur),
				       &after, &start) >= 0)) {
		*k = after;
		rc = mdb_cursor_get(cur, k, v, MDB_SET_RANGE);
		if (rc == 0 && k->mv_size == after.mv_size &&
		    memcmp(k->mv_data, at, after.mv_size) == 0)
			rc = mdb_cursor_get(cur, k, v, MDB_NEXT);
		return rc;
	}
	if (tenant != NULL) {
		*k = start;
		return mdb_cursor_get(cur, k, v, MDB_SET_RANGE);
	}
	return mdb_cursor_get(cur, k, v, MDB_FIRST);
}

int store_usage_page(struct store *st, const char *tenant, size_t tlen,
		     uint64_t from_s, struct store_pos *pos, unsigned max,
		     int (*fn)(void *arg, const char *tenant, size_t tlen,
			       uint64_t hour, const void *val, size_t len),
		     void *arg)
{
	const char *t;
	size_t n;
	uint64_t h;
	unsigned seen = 0;
	MDB_cursor *cur;
	MDB_txn *txn;
	MDB_val k, v;
	int rc, ret = 0;

	if ((rc = usage_cursor(st, &txn, &cur)) != 0)
		return rc > 0 ? 0 : rc;
	if (max == 0) {
		mdb_cursor_close(cur);
		mdb_txn_abort(txn);
		return 1;
	}
	for (rc = page_seek(cur, tenant, tlen, from_s, pos, &k, &v); rc == 0;
	     rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		if (seen == max) {
			ret = 1;
			break;
		}
		if (store_key_parse(&k, &t, &n, &h) < 0 || n > TENANT_ID_MAX)
			continue;
		if (tenant != NULL && (n != tlen || memcmp(t, tenant, tlen) != 0))
			break;
		if (h == STORE_USAGE_CARRIED)
			continue;
		seen++;
		memcpy(pos->tenant, t, n);
		pos->tlen = n;
		pos->hour = h;
		pos->started = 1;
		if ((ret = fn(arg, t, n, h, v.mv_data, v.mv_size)) != 0)
			break;
	}
	mdb_cursor_close(cur);
	mdb_txn_abort(txn);
	if (ret != 0)
		return ret;
	return rc == 0 || rc == MDB_NOTFOUND ? 0 : err_from_mdb(rc);
}

/* store_usage_range and store_usage_range_carried (carried 1). */
static int range_walk(struct store *st, uint64_t from_s, uint64_t to_s,
		      int carried,
		      int (*fn)(void *arg, const char *tenant, size_t tlen,
				uint64_t hour, const void *val, size_t len),
		      void *arg)
{
	uint8_t key[STORE_KEY_MAX];
	const char *t;
	size_t n;
	uint64_t h;
	MDB_cursor *cur;
	MDB_txn *txn;
	MDB_val k, v;
	int rc, ret = 0;

	if ((rc = usage_cursor(st, &txn, &cur)) != 0)
		return rc > 0 ? 0 : rc;
	rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
	while (rc == 0) {
		if (store_key_parse(&k, &t, &n, &h) < 0 || n > TENANT_ID_MAX) {
			rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
			continue;
		}
		if (h == STORE_USAGE_CARRIED) {
			if (carried &&
			    (ret = fn(arg, t, n, h, v.mv_data, v.mv_size)) != 0)
				break;
			rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
			continue;
		}
		if (h < from_s) {
			/* Jump to the tenant's first hour in the range. */
			k.mv_size = store_key(key, t, n, from_s);
			k.mv_data = key;
			rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
			continue;
		}
		if (h >= to_s) {
			/* Jump to the tenant's carried record, the last of
			 * its keys, or past the tenant: its id then 0x01
			 * sorts after all of its keys (id, 0x00, hour). */
			if (carried) {
				k.mv_size = store_key(key, t, n,
						      STORE_USAGE_CARRIED);
			} else {
				memcpy(key, t, n);
				key[n] = 0x01;
				k.mv_size = n + 1;
			}
			k.mv_data = key;
			rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
			continue;
		}
		if ((ret = fn(arg, t, n, h, v.mv_data, v.mv_size)) != 0)
			break;
		rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
	}
	mdb_cursor_close(cur);
	mdb_txn_abort(txn);
	if (ret < 0)
		return ret;
	return ret == 1 || rc == 0 || rc == MDB_NOTFOUND ? 0 : err_from_mdb(rc);
}

int store_usage_range(struct store *st, uint64_t from_s, uint64_t to_s,
		      int (*fn)(void *arg, const char *tenant, size_t tlen,
				uint64_t hour, const void *val, size_t len),
		      void *arg)
{
	return range_walk(st, from_s, to_s, 0, fn, arg);
}

int store_usage_range_carried(struct store *st, uint64_t from_s,
			      uint64_t to_s,
			      int (*fn)(void *arg, const char *tenant,
					size_t tlen, uint64_t hour,
					const void *val, size_t len),
			      void *arg)
{
	return range_walk(st, from_s, to_s, 1, fn, arg);
}
