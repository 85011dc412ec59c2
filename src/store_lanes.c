/*
 * store_lanes.c - the lanes database: each (tenant, lane)'s delivery
 * cursor, and the deletion of entries every lane is through (see store.h
 * and lanes.h).
 */
#include "store_int.h"

#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "lanes.h"
#include "queue.h"

/* The tenant's cursors as txn sees them. Returns an LMDB code. */
static int cursors_get(MDB_txn *txn, const struct store *st,
		       const char *tenant, size_t tlen,
		       uint64_t through[STORE_LANES])
{
	uint8_t key[STORE_KEY_MAX];
	MDB_val k, v;
	int rc;

	memset(through, 0, STORE_LANES * sizeof(through[0]));
	if (st->lanes == 0)
		return 0;
	for (unsigned l = 0; l < STORE_LANES; l++) {
		k.mv_size = store_key(key, tenant, tlen, l);
		k.mv_data = key;
		rc = mdb_get(txn, st->lanes, &k, &v);
		if (rc == MDB_NOTFOUND)
			continue;
		if (rc != 0)
			return rc;
		if (v.mv_size == 8)
			memcpy(&through[l], v.mv_data, 8);
	}
	return 0;
}

int store_lane_cursors(struct store *st, const char *tenant, size_t tlen,
		       uint64_t through[STORE_LANES])
{
	MDB_txn *txn;
	int rc;

	if ((rc = store_read_begin(st, &txn)) != 0)
		return rc;
	rc = cursors_get(txn, st, tenant, tlen, through);
	mdb_txn_abort(txn);
	return err_from_mdb(rc);
}

/* What entry seq (value v) holds: the mask of its lanes with a part, and
 * in *samples those of lane's part (0: none). From seen[*si..nseen) when
 * listed there (*si moves on; seen is sorted), else read from v; an
 * unreadable entry is lane 0's, whole, with no samples counted. */
static unsigned entry_lanes(const MDB_val *v, uint64_t seq, unsigned lane,
			    const struct store_seen *seen, size_t nseen,
			    size_t *si, uint64_t *samples)
{
	const struct lane_part *lp;
	struct lane_table lt;
	struct entry_hdr h;

	while (*si < nseen && seen[*si].seq < seq)
		(*si)++;
	if (*si < nseen && seen[*si].seq == seq) {
		*samples = seen[*si].mask & (1u << lane) ? seen[*si].samples : 0;
		return seen[*si].mask;
	}
	*samples = 0;
	if (store_head_read(v, &h, &lt) < 0)
		return 1;
	if ((lp = lanes_find(&lt, lane)) != NULL)
		*samples = lp->samples;
	return lt.mask;
}

/* How far delete_through may go: entries it may delete (NULL: any) and
 * look at; where it stopped (0: it got to the end). */
struct sweep_limit {
	size_t *bytes_left;      /* NULL: no budget */
	size_t *looks_left;      /* NULL: none */
	int stop_when_spent;
	uint64_t rest;
};

/* What deleting the entry (key k, value v) changes, roughly: its tail
 * records and its leaf node (store.h, "Deleting what was delivered"). */
static size_t delete_cost(const struct store *st, const MDB_val *k,
			  const MDB_val *v)
{
	size_t len = store_value_len(v), node = k->mv_size + 16;

	/* A value larger than this has overflow pages (LMDB's node limit
	 * is about half a page less its headers). */
	if (v->mv_size < store_page_size(st) / 2)
		node += v->mv_size;
	return node + (len > v->mv_size ? len - v->mv_size : 0);
}

/* Deletes the entries of first..last every lane with a part is through,
 * adding them to *gone, and counts lane's parts the cursor had not passed
 * (was) in *delivered. What the entries hold is read from seen[0..nseen)
 * as far as it goes (entry_lanes). Stops where lim runs out, setting
 * lim->rest. Returns an LMDB code. */
static int delete_through(const struct store *st, MDB_cursor *cur,
			  const char *tenant, size_t tlen,
			  unsigned lane, uint64_t first, uint64_t last,
			  const uint64_t through[STORE_LANES], uint64_t was,
			  const struct store_seen *seen, size_t nseen,
			  struct store_span *gone, uint64_t *delivered,
			  struct sweep_limit *lim)
{
	uint8_t key[STORE_KEY_MAX];
	struct lane_table lt;
	struct entry_hdr h;
	const char *name;
	MDB_val k, v;
	size_t n, si = 0, cost;
	uint64_t seq, samples;
	unsigned mask;
	int rc, done, tail;

	k.mv_size = store_key(key, tenant, tlen, first);
	k.mv_data = key;
	rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
	while (rc == 0) {
		if (store_key_parse(&k, &name, &n, &seq) < 0 || n != tlen ||
		    memcmp(name, tenant, tlen) != 0 || seq > last)
			return MDB_NOTFOUND;
		if (lim->looks_left != NULL) {
			if (*lim->looks_left == 0) {
				if (lim->rest == 0)
					lim->rest = seq;
				return MDB_NOTFOUND;
			}
			(*lim->looks_left)--;
		}
		mask = entry_lanes(&v, seq, lane, seen, nseen, &si, &samples);
		if (seq > was)
			*delivered += samples;
		done = 1;
		for (unsigned l = 0; l < STORE_LANES; l++)
			if ((mask & (1u << l)) && through[l] < seq)
				done = 0;
		if (done && lim->bytes_left != NULL && *lim->bytes_left == 0) {
			/* Past the budget: left for a sweep. A sweep stops
			 * here; an answer goes on counting what it delivered. */
			if (lim->rest == 0)
				lim->rest = seq;
			if (lim->stop_when_spent)
				return MDB_NOTFOUND;
			done = 0;
		}
		if (!done) {
			rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
			continue;
		}
		/* Unreadable: lane 0's, whole (store.h), counted bare. */
		if (store_head_read(&v, &h, &lt) < 0)
			memset(&h, 0, sizeof(h));
		store_span_add(gone, seq, &v, &h);
		tail = store_tail_flagged(&v);
		cost = delete_cost(st, &k, &v);   /* v is gone after the del */
		if ((rc = mdb_cursor_del(cur, 0)) != 0 ||
		    (tail && (rc = store_tail_del(mdb_cursor_txn(cur), st, tenant,
						  tlen, seq)) != 0))
			return rc;
		if (lim->bytes_left != NULL)
			*lim->bytes_left = *lim->bytes_left > cost ?
					   *lim->bytes_left - cost : 0;
		rc = mdb_cursor_get(cur, &k, &v, MDB_GET_CURRENT);
		if (rc == EINVAL)  /* deleted the last item of the database */
			rc = MDB_NOTFOUND;
	}
	return rc;
}

/* delete_through over the queue, then the tenant's oldest entry left in
 * *next, and its destination records pruned when entries went. Returns
 * an LMDB code. */
static int delete_done(struct store_txn *t, const char *tenant, size_t tlen,
		       unsigned lane, uint64_t first, uint64_t last,
		       const uint64_t through[STORE_LANES], uint64_t was,
		       const struct store_seen *seen, size_t nseen,
		       struct store_span *gone, struct store_span *next,
		       uint64_t *delivered, struct sweep_limit *lim)
{
	MDB_cursor *cur;
	int rc;

	if ((rc = mdb_cursor_open(t->txn, t->st->queue, &cur)) != 0)
		return rc;
	rc = delete_through(t->st, cur, tenant, tlen, lane, first, last, through,
			    was, seen, nseen, gone, delivered, lim);
	if (rc == MDB_NOTFOUND)
		rc = store_tenant_head(cur, tenant, tlen, next);
	mdb_cursor_close(cur);
	if (rc == 0 && gone->entries > 0)
		rc = store_dest_prune(t->txn, t->st, tenant, tlen);
	return rc;
}

int store_lane_ack(struct store_txn *t, const char *tenant, size_t tlen,
		   unsigned lane, uint64_t first, uint64_t last,
		   struct store_span *gone, struct store_span *next,
		   uint64_t *delivered)
{
	return store_lane_ack_seen(t, tenant, tlen, lane, first, last, NULL, 0,
				   gone, next, delivered, NULL);
}

int store_lane_ack_seen(struct store_txn *t, const char *tenant, size_t tlen,
			unsigned lane, uint64_t first, uint64_t last,
			const struct store_seen *seen, size_t nseen,
			struct store_span *gone, struct store_span *next,
			uint64_t *delivered, uint64_t *rest)
{
	struct sweep_limit lim = {rest ? &t->delete_bytes_left : NULL, NULL, 0,
				  0};
	uint64_t through[STORE_LANES], was;
	uint8_t key[STORE_KEY_MAX];
	MDB_val k, v;
	int rc;

	memset(next, 0, sizeof(*next));
	*delivered = 0;
	if (lane >= STORE_LANES || t->st->lanes == 0)
		return ERR_FAIL;
	if ((rc = cursors_get(t->txn, t->st, tenant, tlen, through)) != 0)
		return err_from_mdb(rc);
	was = through[lane];
	if (last > was) {
		through[lane] = last;
		k.mv_size = store_key(key, tenant, tlen, lane);
		k.mv_data = key;
		v.mv_size = 8;
		v.mv_data = &last;
		if ((rc = store_seam_put(t->txn, t->st->lanes, &k, &v, 0)) != 0)
			return err_from_mdb(rc);
	}
	rc = delete_done(t, tenant, tlen, lane, first, last, through, was,
			 seen, nseen, gone, next, delivered, &lim);
	if (rest != NULL)
		*rest = lim.rest;
	return err_from_mdb(rc);
}

int store_sweep(struct store_txn *t, const char *tenant, size_t tlen,
		uint64_t first, uint64_t last, struct store_span *gone,
		struct store_span *next, uint64_t *rest)
{
	struct sweep_limit lim = {&t->delete_bytes_left, &t->sweep_looks_left,
				  1, 0};
	uint64_t through[STORE_LANES], delivered = 0;
	int rc;

	memset(next, 0, sizeof(*next));
	*rest = 0;
	if (t->st->lanes == 0)
		return 0;
	if (t->delete_bytes_left == 0 || t->sweep_looks_left == 0) {
		*rest = first;
		return 0;
	}
	if ((rc = cursors_get(t->txn, t->st, tenant, tlen, through)) != 0)
		return err_from_mdb(rc);
	/* was = UINT64_MAX: nothing counts as delivered again. */
	rc = delete_done(t, tenant, tlen, 0, first, last, through, UINT64_MAX,
			 NULL, 0, gone, next, &delivered, &lim);
	*rest = lim.rest;
	return err_from_mdb(rc);
}

int store_entry_undelivered(struct store_txn *t, const char *tenant,
			    size_t tlen, uint64_t seq, uint64_t *samples)
{
	uint8_t key[STORE_KEY_MAX];
	uint64_t through[STORE_LANES];
	struct lane_table lt;
	struct entry_hdr h;
	MDB_val k, v;
	int left = 0;

	*samples = UINT64_MAX;
	if (t->st->lanes == 0 || tlen > TENANT_ID_MAX ||
	    cursors_get(t->txn, t->st, tenant, tlen, through) != 0)
		return 1;
	k.mv_size = store_key(key, tenant, tlen, seq);
	k.mv_data = key;
	if (mdb_get(t->txn, t->st->queue, &k, &v) != 0)
		return 1;
	/* Unreadable: lane 0's, whole, as delivery reads it. */
	if (store_head_read(&v, &h, &lt) < 0) {
		if (through[0] < seq)
			return 1;
		*samples = 0;
		return 0;
	}
	*samples = 0;
	for (unsigned i = 0; i < lt.n; i++) {
		if (through[lt.part[i].lane] < seq) {
			*samples += lt.part[i].samples;
			left = 1;
		}
	}
	return left;
}

/* Hands the queue every cursor of a tenant it holds. Returns an LMDB
 * code. */
int store_load_cursors(MDB_txn *txn, const struct store *st, struct queue *q)
{
	MDB_cursor *cur;
	MDB_val k, v;
	const char *tenant;
	size_t tlen;
	uint64_t lane, through;
	int rc;

	if (st->lanes == 0)
		return 0;
	if ((rc = mdb_cursor_open(txn, st->lanes, &cur)) != 0)
		return rc;
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
	     rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		if (store_key_parse(&k, &tenant, &tlen, &lane) < 0 ||
		    lane >= STORE_LANES || v.mv_size != 8)
			continue;
		memcpy(&through, v.mv_data, 8);
		queue_lane_through(q, tenant, tlen, (unsigned)lane, through);
	}
	mdb_cursor_close(cur);
	return rc == MDB_NOTFOUND ? 0 : rc;
}

int store_lane_set(struct store_txn *t, const char *tenant, size_t tlen,
		   unsigned lane, uint64_t through)
{
	uint8_t key[STORE_KEY_MAX];
	MDB_val k, v;

	if (lane >= STORE_LANES || t->st->lanes == 0 || tlen > TENANT_ID_MAX)
		return ERR_FAIL;
	k.mv_size = store_key(key, tenant, tlen, lane);
	k.mv_data = key;
	v.mv_size = 8;
	v.mv_data = &through;
	return err_from_mdb(store_seam_put(t->txn, t->st->lanes, &k, &v, 0));
}
