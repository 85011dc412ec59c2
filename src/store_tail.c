/*
 * store_tail.c - an entry's last partial page kept apart: the tails
 * database (store.h, "tails"), where the bytes of a large queue value
 * past its last whole overflow page go, so that no page of the value is
 * left partly empty.
 *
 * LMDB gives a value larger than a leaf node a run of overflow pages of
 * its own: k pages hold k * page - 16 bytes (one page header), and the
 * rest of the last page is wasted (about half a page per entry). A value
 * of len bytes is therefore stored as its first store_tail_cut() bytes
 * (the head: whole pages, exactly filled) under its queue key, and the
 * rest (the tail, under a page) as one to three records small enough to
 * stay inside a leaf page (at most two of the largest size; the first
 * may be smaller, to fill the last leaf page), keyed by sequence number
 * first so that they are appended at the end of the tree (MDB_APPEND:
 * full leaf pages).
 */
#include "store_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "lanes.h"
#include "sblock.h"

#define ENTRY_TABLE_OFF sizeof(struct entry_hdr)

/* LMDB keeps a node in its leaf page when node header (8 bytes), key and
 * value take at most this (mdb.c: me_nodemax, for MDB_MINKEYS 2). */
static size_t node_max(const struct store *st)
{
	size_t ps = store_page_size(st);

	return (((ps - 16) / 2) & ~(size_t)1) - 2;
}

/* The tails key of (tenant, seq, chunk): u64 big-endian seq, chunk u8,
 * tenant bytes. Returns its length. */
static size_t tail_key(uint8_t *key, const char *tenant, size_t tlen,
		       uint64_t seq, unsigned chunk)
{
	for (int i = 0; i < 8; i++)
		key[i] = (uint8_t)(seq >> (56 - 8 * i));
	key[8] = (uint8_t)chunk;
	memcpy(key + 9, tenant, tlen);
	return 9 + tlen;
}

/* Most bytes one tail record of the tenant holds inside a leaf page. */
static size_t chunk_max(const struct store *st, size_t tlen)
{
	return node_max(st) - 8 - (9 + tlen);
}

size_t store_tail_cut(const struct store *st, size_t tlen, size_t len)
{
	size_t ps = store_page_size(st), head;

	if (len + 16 < ps)
		return 0;    /* one page or less: kept whole */
	head = (len + 16) / ps * ps - 16;
	/* Nothing past whole pages, or a last page nearly full. */
	if (head == len || len - head > 2 * chunk_max(st, tlen))
		return 0;
	return head;
}

size_t store_value_len(const MDB_val *v)
{
	const uint8_t *p = v->mv_data;
	struct entry_hdr h;
	size_t len, table;

	if (v->mv_size < sizeof(h))
		return v->mv_size;
	memcpy(&h, p, sizeof(h));
	if (!(h.flags & STORE_ENTRY_TAIL) || h.version != 2 || h.nlanes == 0 ||
	    h.nlanes > STORE_LANES)
		return v->mv_size;
	table = ENTRY_TABLE_OFF + h.nlanes * sizeof(struct lane_rec);
	if (v->mv_size < table)
		return v->mv_size;
	len = table;
	for (unsigned i = 0; i < h.nlanes; i++) {
		struct lane_rec r;
		memcpy(&r, p + ENTRY_TABLE_OFF + i * sizeof(r), sizeof(r));
		len += r.block_len;
	}
	/* A tail is under a page; anything else is not ours to join. */
	if (len <= v->mv_size || len - v->mv_size >= 65536)
		return v->mv_size;
	return len;
}

/* Bytes a leaf node of a klen-byte key and a d-byte value kept in its
 * page takes there, with its slot in the page's index (mdb_node_add). */
static size_t node_room(size_t klen, size_t d)
{
	return ((8 + klen + d + 1) & ~(size_t)1) + 2;
}

/* Fewest bytes worth a record of their own at the end of a page. */
#define TAIL_FILL_MIN 64

int store_tail_put(struct store_txn *t, const char *tenant, size_t tlen,
		   uint64_t seq, const uint8_t *tail, size_t n)
{
	const struct store *st = t->st;
	uint8_t key[9 + TENANT_ID_MAX];
	size_t klen = 9 + tlen, c = chunk_max(st, tlen), off = 0, need;
	size_t page = store_page_size(st) - 16, room = t->tails_room;
	MDB_val k, v;
	int rc;

	/* n <= 2 * c (store_tail_cut): three records at most. */
	for (unsigned chunk = 0; off < n && chunk < STORE_TAIL_CHUNKS; chunk++) {
		k.mv_size = tail_key(key, tenant, tlen, seq, chunk);
		k.mv_data = key;
		v.mv_size = n - off < c ? n - off : c;
		v.mv_data = (void *)(tail + off);
		/* The first record fills what the last page has left, so
		 * that appended pages end up full. */
		if (chunk == 0 && node_room(klen, v.mv_size) > room &&
		    room >= node_room(klen, TAIL_FILL_MIN))
			v.mv_size = ((room - 2) & ~(size_t)1) - 8 - klen;
		need = node_room(klen, v.mv_size);
		/* Appended when it is the last key (the usual case: the newest
		 * sequence number), else put where it goes. */
		rc = store_seam_put(t->txn, st->tails, &k, &v, MDB_APPEND);
		if (rc == MDB_KEYEXIST) {
			rc = store_seam_put(t->txn, st->tails, &k, &v, 0);
			need = room = 0;   /* not at the end: room unknown */
		}
		if (rc != 0)
			return rc;
		/* A node that does not fit starts a page of its own. */
		room = need <= room ? room - need : page - need;
		off += v.mv_size;
	}
	t->tails_room = room;
	return off == n ? 0 : MDB_BAD_VALSIZE;
}

int store_tail_del(MDB_txn *txn, const struct store *st, const char *tenant,
		   size_t tlen, uint64_t seq)
{
	uint8_t key[9 + TENANT_ID_MAX];
	MDB_val k;
	int rc;

	if (st->tails == 0)
		return 0;
	for (unsigned chunk = 0; chunk < STORE_TAIL_CHUNKS; chunk++) {
		k.mv_size = tail_key(key, tenant, tlen, seq, chunk);
		k.mv_data = key;
		/* Every chunk: one lost (damage) leaves none behind. */
		rc = mdb_del(txn, st->tails, &k, NULL);
		if (rc != 0 && rc != MDB_NOTFOUND)
			return rc;
	}
	return 0;
}

int store_tail_flagged(const MDB_val *v)
{
	const uint8_t *p = v->mv_data;

	return v->mv_size >= 2 && (p[1] & STORE_ENTRY_TAIL) != 0;
}

int store_tail_get(MDB_txn *txn, const struct store *st, const char *tenant,
		   size_t tlen, uint64_t seq, unsigned chunk, MDB_val *v)
{
	uint8_t key[9 + TENANT_ID_MAX];
	MDB_val k;

	if (st->tails == 0)
		return MDB_NOTFOUND;
	k.mv_size = tail_key(key, tenant, tlen, seq, chunk);
	k.mv_data = key;
	return mdb_get(txn, st->tails, &k, v);
}

int store_value_copy(MDB_txn *txn, const struct store *st, const char *tenant,
		     size_t tlen, uint64_t seq, const MDB_val *head, size_t off,
		     size_t n, uint8_t *dst)
{
	size_t at = head->mv_size, want = off + n;
	MDB_val v;
	int rc;

	if (off < head->mv_size) {
		size_t m = head->mv_size - off < n ? head->mv_size - off : n;
		memcpy(dst, (const uint8_t *)head->mv_data + off, m);
	}
	for (unsigned chunk = 0; at < want; chunk++) {
		if (chunk >= STORE_TAIL_CHUNKS)
			return MDB_NOTFOUND;
		if ((rc = store_tail_get(txn, st, tenant, tlen, seq, chunk,
					 &v)) != 0)
			return rc;
		/* The overlap of [at, at + v) with [off, want). */
		size_t lo = off > at ? off : at;
		size_t hi = at + v.mv_size < want ? at + v.mv_size : want;
		if (lo < hi)
			memcpy(dst + (lo - off),
			       (const uint8_t *)v.mv_data + (lo - at), hi - lo);
		at += v.mv_size;
	}
	return 0;
}

int store_value_whole(MDB_txn *txn, const struct store *st, const char *tenant,
		      size_t tlen, uint64_t seq, const MDB_val *head,
		      MDB_val *whole)
{
	size_t len = store_value_len(head);
	uint8_t *p;
	int rc;

	*whole = *head;
	if (len == head->mv_size)
		return 0;
	if ((p = malloc(len)) == NULL)
		return ENOMEM;
	if ((rc = store_value_copy(txn, st, tenant, tlen, seq, head, 0, len,
				   p)) != 0) {
		free(p);
		return rc;
	}
	p[1] &= (uint8_t)~STORE_ENTRY_TAIL;   /* whole now */
	whole->mv_data = p;
	whole->mv_size = len;
	return 0;
}

/* ---- the forwarder's reads (store_body_open) ---- */

/* A block of a body joined from its entry's head and tail. */
struct store_body_copy {
	struct store_body_copy *next;
	uint8_t block[];
};

int store_tail_joined(MDB_txn *txn, const struct store *st,
		      struct store_body *body, const char *tenant, size_t tlen,
		      uint64_t seq, const MDB_val *head,
		      const struct lane_part *lp, struct sblock_part *out)
{
	size_t off = (size_t)(lp->block - (const uint8_t *)head->mv_data);
	struct store_body_copy *c = malloc(sizeof(*c) + lp->len);
	int rc;

	if (c == NULL)
		return ERR_NOMEM;
	if ((rc = store_value_copy(txn, st, tenant, tlen, seq, head, off,
				   lp->len, c->block)) != 0) {
		free(c);
		return err_from_mdb(rc);
	}
	c->next = body->copies;
	body->copies = c;
	out->p = c->block;
	out->len = lp->len;
	return 0;
}

void store_tail_copies_free(struct store_body *body)
{
	while (body->copies != NULL) {
		struct store_body_copy *c = body->copies;
		body->copies = c->next;
		free(c);
	}
}

int store_tail_pieces(MDB_txn *txn, const struct store *st,
		      const char *tenant, size_t tlen, uint64_t seq,
		      const MDB_val *head, const struct lane_part *lp,
		      struct sblock_part *out)
{
	size_t off = (size_t)(lp->block - (const uint8_t *)head->mv_data);
	size_t at = head->mv_size, want = off + lp->len, lo, hi;
	MDB_val v;
	int n = 0, rc;

	if (off < at) {
		out[n].p = lp->block;
		out[n++].len = at - off;
	}
	for (unsigned chunk = 0; at < want; chunk++) {
		/* Fewer records than the table needs: lost, damage. */
		if (chunk >= STORE_TAIL_CHUNKS)
			return ERR_NOTFOUND;
		if ((rc = store_tail_get(txn, st, tenant, tlen, seq, chunk,
					 &v)) != 0)
			return err_from_mdb(rc);
		lo = off > at ? off : at;
		hi = at + v.mv_size < want ? at + v.mv_size : want;
		if (lo < hi) {
			out[n].p = (const uint8_t *)v.mv_data + (lo - at);
			out[n++].len = hi - lo;
		}
		at += v.mv_size;
	}
	return n;
}
