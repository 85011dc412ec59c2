/*
 * store_setaside.c - the setaside database: entries the upstream refused
 * for good, moved there by store_set_aside (store_queue.c) and back to the
 * queue, listed, purged and trimmed here (see store.h).
 */
#include "store_int.h"

#include <errno.h>
#include <string.h>

/* One set-aside value, split up. */
struct item {
	const char *tenant;
	size_t tlen;
	uint64_t seq;
	struct setaside_hdr sh;
	const char *reason;
	struct entry_hdr eh;
	MDB_val entry;           /* the queue value as it was */
};

static int item_parse(const MDB_val *k, const MDB_val *v, struct item *it)
{
	if (store_key_parse(k, &it->tenant, &it->tlen, &it->seq) < 0 ||
	    v->mv_size < sizeof(it->sh))
		return -1;
	memcpy(&it->sh, v->mv_data, sizeof(it->sh));
	if (v->mv_size < sizeof(it->sh) + it->sh.reason_len)
		return -1;
	it->reason = (const char *)v->mv_data + sizeof(it->sh);
	it->entry.mv_data = (uint8_t *)v->mv_data + sizeof(it->sh) + it->sh.reason_len;
	it->entry.mv_size = v->mv_size - sizeof(it->sh) - it->sh.reason_len;
	if (store_entry_hdr(&it->entry, &it->eh) < 0)
		memset(&it->eh, 0, sizeof(it->eh));
	return 0;
}

/* Positions cur at the first entry f may take; returns an LMDB code. */
static int first_match(MDB_cursor *cur, const struct setaside_filter *f,
		       uint8_t *key, MDB_val *k, MDB_val *v)
{
	if (f->any_tenant)
		return mdb_cursor_get(cur, k, v, MDB_FIRST);
	k->mv_size = store_key(key, f->tenant, f->tlen, f->seq);
	k->mv_data = key;
	return mdb_cursor_get(cur, k, v, MDB_SET_RANGE);
}

/* 1 if it matches f, 0 if not, -1 if no later entry can match. */
static int matches(const struct setaside_filter *f, const struct item *it)
{
	if (!f->any_tenant &&
	    (it->tlen != f->tlen || memcmp(it->tenant, f->tenant, f->tlen) != 0))
		return -1;
	if (f->seq != 0 && it->seq != f->seq)
		return f->any_tenant ? 0 : -1;
	return 1;
}

int store_setaside_each(struct store *st, const struct setaside_filter *f,
			int (*fn)(void *arg, const struct setaside_item *it),
			void *arg)
{
	uint8_t key[STORE_KEY_MAX];
	struct setaside_item out;
	MDB_cursor *cur;
	MDB_txn *txn;
	MDB_val k, v;
	struct item it;
	int rc, m, ret = 0;

	if (st->setaside == 0)   /* a reader of a directory without one */
		return 0;
	if ((rc = store_read_begin(st, &txn)) != 0)
		return rc;
	if ((rc = mdb_cursor_open(txn, st->setaside, &cur)) != 0) {
		mdb_txn_abort(txn);
		return err_from_mdb(rc);
	}
	for (rc = first_match(cur, f, key, &k, &v); rc == 0;
	     rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		if (item_parse(&k, &v, &it) < 0)
			continue;
		if ((m = matches(f, &it)) < 0)
			break;
		if (m == 0)
			continue;
		out.tenant = it.tenant;
		out.tlen = it.tlen;
		out.seq = it.seq;
		out.status = it.sh.status;
		out.reason = it.reason;
		out.reason_len = it.sh.reason_len;
		out.set_aside_ms = it.sh.set_aside_ms;
		out.samples = it.eh.samples;
		out.series = it.eh.series;
		out.bytes = it.entry.mv_size;
		if ((ret = fn(arg, &out)) != 0)
			break;
	}
	mdb_cursor_close(cur);
	mdb_txn_abort(txn);
	if (ret != 0)
		return ret;
	return rc == 0 || rc == MDB_NOTFOUND ? 0 : err_from_mdb(rc);
}

/* Replays (replay = 1) or purges the matching entries. Returns an LMDB
 * code. */
static int take(struct store_txn *t, const struct setaside_filter *f,
		const struct setaside_sink *sink, uint64_t *n, int replay)
{
	uint8_t key[STORE_KEY_MAX], qkey[STORE_KEY_MAX];
	char tenant[TENANT_ID_MAX + 1];
	size_t tlen;
	struct store *st = t->st;
	MDB_cursor *cur;
	MDB_val k, v, qk;
	struct item it;
	int rc, m;

	*n = 0;
	if ((rc = mdb_cursor_open(t->txn, st->setaside, &cur)) != 0)
		return rc;
	rc = first_match(cur, f, key, &k, &v);
	while (rc == 0) {
		if (item_parse(&k, &v, &it) < 0) {
			rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
			continue;
		}
		if ((m = matches(f, &it)) < 0)
			break;
		if (m == 0) {
			rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
			continue;
		}
		/* Copied: a write may move the value it points into. */
		memcpy(tenant, it.tenant, it.tlen);
		tlen = it.tlen;
		if (replay) {
			/* A new sequence number, taken in the transaction. */
			uint64_t seq = t->next_seq;
			qk.mv_size = store_key(qkey, it.tenant, it.tlen, seq);
			qk.mv_data = qkey;
			/* It goes where it would have gone (store.h). */
			if ((rc = store_seam_put(t->txn, st->queue, &qk, &it.entry,
						 MDB_NOOVERWRITE)) != 0 ||
			    (rc = store_dest_carry(t->txn, st, tenant, it.tlen,
						   it.seq, seq)) != 0)
				break;
			t->next_seq++;
			if (sink && sink->replayed)
				sink->replayed(sink->arg, tenant, it.tlen, seq,
					       it.entry.mv_size, it.eh.samples,
					       it.eh.created_ms);
		} else if (sink && sink->deleted) {
			sink->deleted(sink->arg, it.tenant, it.tlen, it.eh.samples);
		}
		(*n)++;
		if ((rc = mdb_cursor_del(cur, 0)) != 0 ||
		    (rc = store_dest_prune(t->txn, st, tenant, tlen)) != 0)
			break;
		rc = mdb_cursor_get(cur, &k, &v, MDB_GET_CURRENT);
		if (rc == EINVAL)
			rc = MDB_NOTFOUND;
	}
	mdb_cursor_close(cur);
	return rc == MDB_NOTFOUND ? 0 : rc;
}

int store_setaside_replay(struct store_txn *t, const struct setaside_filter *f,
			  const struct setaside_sink *sink, uint64_t *n)
{
	return err_from_mdb(take(t, f, sink, n, 1));
}

int store_setaside_purge(struct store_txn *t, const struct setaside_filter *f,
			 const struct setaside_sink *sink, uint64_t *n)
{
	return err_from_mdb(take(t, f, sink, n, 0));
}

/* Deletes entries set aside before now - max_age_ms. Returns an LMDB
 * code. */
static int trim_age(struct store_txn *t, uint64_t max_age_ms, uint64_t now,
		    const struct setaside_sink *sink, uint64_t *n)
{
	char tenant[TENANT_ID_MAX + 1];
	MDB_cursor *cur;
	MDB_val k, v;
	struct item it;
	int rc;

	if ((rc = mdb_cursor_open(t->txn, t->st->setaside, &cur)) != 0)
		return rc;
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;) {
		if (item_parse(&k, &v, &it) == 0 &&
		    it.sh.set_aside_ms + max_age_ms < now) {
			if (sink && sink->deleted)
				sink->deleted(sink->arg, it.tenant, it.tlen, it.eh.samples);
			(*n)++;
			memcpy(tenant, it.tenant, it.tlen);
			if ((rc = mdb_cursor_del(cur, 0)) != 0 ||
			    (rc = store_dest_prune(t->txn, t->st, tenant,
						   it.tlen)) != 0)
				break;
			rc = mdb_cursor_get(cur, &k, &v, MDB_GET_CURRENT);
		} else {
			rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
		}
	}
	mdb_cursor_close(cur);
	return rc == MDB_NOTFOUND || rc == EINVAL ? 0 : rc;
}

int store_setaside_trim(struct store_txn *t, uint64_t max_bytes,
			uint64_t max_age_ms, uint64_t now,
			const struct setaside_sink *sink, uint64_t *n)
{
	struct store *st = t->st;
	struct setaside_filter one;
	MDB_cursor *cur;
	MDB_val k, v;
	struct item it, oldest = {0};
	uint64_t k_n;
	int rc;

	*n = 0;
	if ((rc = trim_age(t, max_age_ms, now, sink, n)) != 0)
		return err_from_mdb(rc);
	/* By size: the oldest first, while over. */
	while (store_db_bytes(t->txn, st, st->setaside) > max_bytes) {
		int found = 0;
		if ((rc = mdb_cursor_open(t->txn, st->setaside, &cur)) != 0)
			return err_from_mdb(rc);
		for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
		     rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
			if (item_parse(&k, &v, &it) == 0 &&
			    (!found || it.sh.set_aside_ms < oldest.sh.set_aside_ms)) {
				oldest = it;
				found = 1;
			}
		}
		mdb_cursor_close(cur);
		if (!found)
			break;
		memset(&one, 0, sizeof(one));
		memcpy(one.tenant, oldest.tenant, oldest.tlen);
		one.tlen = oldest.tlen;
		one.seq = oldest.seq;
		if ((rc = take(t, &one, sink, &k_n, 0)) != 0)
			return err_from_mdb(rc);
		if (k_n == 0)
			break;
		*n += k_n;
	}
	return 0;
}
