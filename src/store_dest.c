/*
 * store_dest.c - the dest database: where each tenant's entries go, the
 * account and project ids they were accepted under (see store.h). The
 * writer notes them with the entries, the forwarder reads them, and
 * records no entry needs are deleted with the entries (each tenant's
 * latest stays).
 */
#include "store_int.h"

#include <errno.h>
#include <string.h>

int store_dest_equal(const struct store_dest *a, const struct store_dest *b)
{
	return strcmp(a->account_id, b->account_id) == 0 &&
	       strcmp(a->project_id, b->project_id) == 0;
}

/* Whether key k is one of the tenant's; sets *seq if so. */
static int is_tenant(const MDB_val *k, const char *tenant, size_t tlen,
		     uint64_t *seq)
{
	const char *t;
	size_t n;

	return store_key_parse(k, &t, &n, seq) == 0 && n == tlen &&
	       memcmp(t, tenant, tlen) == 0;
}

int store_dest_parse(const MDB_val *v, struct store_dest *d)
{
	const uint8_t *p = v->mv_data;

	if (v->mv_size < 2 || p[0] > STORE_DEST_ID_MAX ||
	    p[1] > STORE_DEST_ID_MAX || v->mv_size != 2u + p[0] + p[1])
		return -1;
	memcpy(d->account_id, p + 2, p[0]);
	d->account_id[p[0]] = '\0';
	memcpy(d->project_id, p + 2 + p[0], p[1]);
	d->project_id[p[1]] = '\0';
	return 0;
}

int store_dest_lookup(MDB_txn *txn, const struct store *st,
		      const char *tenant, size_t tlen, uint64_t seq,
		      struct store_dest *d, uint64_t *until)
{
	uint8_t key[STORE_KEY_MAX];
	MDB_cursor *cur;
	MDB_val k, v;
	uint64_t s;
	int rc, found = 0;

	*until = UINT64_MAX;
	if (st->dest == 0)
		return 0;
	if ((rc = mdb_cursor_open(txn, st->dest, &cur)) != 0)
		return rc;
	/* The first record after seq (or after the tenant's keys) ... */
	k.mv_size = store_key(key, tenant, tlen, seq);
	if (seq == UINT64_MAX)
		key[tlen] = 1;   /* past every key of the tenant */
	else
		k.mv_size = store_key(key, tenant, tlen, seq + 1);
	k.mv_data = key;
	rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
	if (rc == 0 && seq != UINT64_MAX && is_tenant(&k, tenant, tlen, &s))
		*until = s;
	/* ... and the one before it, if it is the tenant's. */
	if (rc == 0)
		rc = mdb_cursor_get(cur, &k, &v, MDB_PREV);
	else if (rc == MDB_NOTFOUND)
		rc = mdb_cursor_get(cur, &k, &v, MDB_LAST);
	if (rc == 0 && is_tenant(&k, tenant, tlen, &s) && s <= seq &&
	    store_dest_parse(&v, d) == 0)
		found = 1;
	mdb_cursor_close(cur);
	if (rc != 0 && rc != MDB_NOTFOUND)
		return rc;
	return found;
}

int store_dest_get(struct store *st, const char *tenant, size_t tlen,
		   uint64_t seq, struct store_dest *d, uint64_t *until)
{
	MDB_txn *txn;
	int rc;

	if ((rc = store_read_begin(st, &txn)) != 0)
		return rc;
	rc = store_dest_lookup(txn, st, tenant, tlen, seq, d, until);
	mdb_txn_abort(txn);
	return rc < 0 ? err_from_mdb(rc) : rc;
}

/* Writes the record (tenant, seq) -> d unless the tenant's latest record
 * says d already. Returns an LMDB code, or -1 for an id too long. */
static int note_at(MDB_txn *txn, const struct store *st, const char *tenant,
		   size_t tlen, uint64_t seq, const struct store_dest *d)
{
	uint8_t key[STORE_KEY_MAX], val[2 + 2 * STORE_DEST_ID_MAX];
	size_t al = strlen(d->account_id), pl = strlen(d->project_id);
	struct store_dest latest;
	uint64_t until;
	MDB_val k, v;
	int rc;

	if (al > STORE_DEST_ID_MAX || pl > STORE_DEST_ID_MAX)
		return -1;
	rc = store_dest_lookup(txn, st, tenant, tlen, UINT64_MAX, &latest, &until);
	if (rc < 0 || (rc == 1 && store_dest_equal(&latest, d)))
		return rc < 0 ? rc : 0;
	val[0] = (uint8_t)al;
	val[1] = (uint8_t)pl;
	memcpy(val + 2, d->account_id, al);
	memcpy(val + 2 + al, d->project_id, pl);
	k.mv_size = store_key(key, tenant, tlen, seq);
	k.mv_data = key;
	v.mv_size = 2 + al + pl;
	v.mv_data = val;
	return store_seam_put(txn, st->dest, &k, &v, 0);
}

int store_dest_note(struct store_txn *t, const char *tenant, size_t tlen,
		    const struct store_dest *d)
{
	int rc = note_at(t->txn, t->st, tenant, tlen, t->next_seq, d);

	return rc == -1 ? ERR_FAIL : err_from_mdb(rc);
}

int store_dest_carry(MDB_txn *txn, const struct store *st,
		     const char *tenant, size_t tlen, uint64_t seq,
		     uint64_t new_seq)
{
	struct store_dest d;
	uint64_t until;
	int rc = store_dest_lookup(txn, st, tenant, tlen, seq, &d, &until);

	if (rc <= 0)
		return rc;
	rc = note_at(txn, st, tenant, tlen, new_seq, &d);
	return rc == -1 ? 0 : rc;
}

/* The tenant's lowest sequence number in dbi: 1 and *seq, 0 if it has
 * none there, or an LMDB code. */
static int lowest(MDB_txn *txn, MDB_dbi dbi, const char *tenant, size_t tlen,
		  uint64_t *seq)
{
	uint8_t key[STORE_KEY_MAX];
	MDB_cursor *cur;
	MDB_val k, v;
	int rc;

	if ((rc = mdb_cursor_open(txn, dbi, &cur)) != 0)
		return rc;
	k.mv_size = store_key(key, tenant, tlen, 0);
	k.mv_data = key;
	rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
	mdb_cursor_close(cur);
	if (rc == MDB_NOTFOUND)
		return 0;
	if (rc != 0)
		return rc;
	return is_tenant(&k, tenant, tlen, seq);
}

int store_dest_prune(MDB_txn *txn, const struct store *st,
		     const char *tenant, size_t tlen)
{
	uint8_t key[STORE_KEY_MAX];
	uint64_t head = 0, aside, s;
	MDB_cursor *cur;
	MDB_val k, v;
	int rc, have_head, have_aside;

	if (st->dest == 0)
		return 0;
	if ((rc = have_head = lowest(txn, st->queue, tenant, tlen, &head)) < 0 ||
	    (rc = have_aside = lowest(txn, st->setaside, tenant, tlen,
				      &aside)) < 0)
		return rc;
	if (have_aside && (!have_head || aside < head))
		head = aside;
	/* With no entry left, the latest record stays: a tenant whose ids
	 * do not change writes no record for its next entries. */
	if (!have_head && !have_aside)
		head = UINT64_MAX;
	if ((rc = mdb_cursor_open(txn, st->dest, &cur)) != 0)
		return rc;
	k.mv_size = store_key(key, tenant, tlen, 0);
	k.mv_data = key;
	rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
	/* A record goes when the next one starts at or below the oldest
	 * entry: none of the entries is under it. */
	while (rc == 0 && is_tenant(&k, tenant, tlen, &s)) {
		rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
		if (rc == MDB_NOTFOUND ||
		    (rc == 0 && (!is_tenant(&k, tenant, tlen, &s) || s > head))) {
			rc = 0;
			break;
		}
		if (rc != 0 || (rc = mdb_cursor_get(cur, &k, &v, MDB_PREV)) != 0 ||
		    (rc = mdb_cursor_del(cur, 0)) != 0)
			break;
		rc = mdb_cursor_get(cur, &k, &v, MDB_GET_CURRENT);
	}
	mdb_cursor_close(cur);
	return rc == MDB_NOTFOUND || rc == EINVAL ? 0 : rc;
}
