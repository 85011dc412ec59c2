/*
 * store_setaside.c - the setaside database: entries the upstream refused
 * for good, moved there by store_set_aside, back to the queue, listed,
 * purged and trimmed (see store.h).
 */
#include "store_int.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "lanes.h"

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
	struct lane_table lt;

	if (store_key_parse(k, &it->tenant, &it->tlen, &it->seq) < 0 ||
	    v->mv_size < sizeof(it->sh))
		return -1;
	memcpy(&it->sh, v->mv_data, sizeof(it->sh));
	if (v->mv_size < sizeof(it->sh) + it->sh.reason_len)
		return -1;
	it->reason = (const char *)v->mv_data + sizeof(it->sh);
	it->entry.mv_data = (uint8_t *)v->mv_data + sizeof(it->sh) + it->sh.reason_len;
	it->entry.mv_size = v->mv_size - sizeof(it->sh) - it->sh.reason_len;
	/* Whole: a record of a head (a tail lost) reads as unreadable. */
	if (store_entry_read(&it->entry, &it->eh, &lt) < 0)
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

int store_setaside_page(struct store *st, const struct setaside_filter *f,
			struct store_pos *pos, unsigned max,
			int (*fn)(void *arg, const struct setaside_item *it),
			void *arg)
{
	uint8_t key[STORE_KEY_MAX];
	struct setaside_item out;
	unsigned seen = 0;
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
	if (pos->started) {
		k.mv_size = store_key(key, pos->tenant, pos->tlen, pos->hour);
		k.mv_data = key;
		rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
		if (rc == 0 && k.mv_size == store_key(key, pos->tenant, pos->tlen,
						      pos->hour) &&
		    memcmp(k.mv_data, key, k.mv_size) == 0)
			rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
	} else {
		rc = first_match(cur, f, key, &k, &v);
	}
	for (; rc == 0; rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		if (seen == max) {
			ret = 1;
			break;
		}
		if (item_parse(&k, &v, &it) < 0 || it.tlen > TENANT_ID_MAX)
			continue;
		if ((m = matches(f, &it)) < 0)
			break;
		seen++;
		memcpy(pos->tenant, it.tenant, it.tlen);
		pos->tlen = it.tlen;
		pos->hour = it.seq;
		pos->started = 1;
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

/* Replays (replay = 1) or purges the matching entries, up to max_bytes
 * of them (0: all; *more set when some are left). Returns an LMDB code. */
static int take(struct store_txn *t, const struct setaside_filter *f,
		const struct setaside_sink *sink, uint64_t max_bytes,
		uint64_t *n, int *more, int replay)
{
	uint64_t bytes = 0;
	uint8_t key[STORE_KEY_MAX], qkey[STORE_KEY_MAX];
	char tenant[TENANT_ID_MAX + 1];
	size_t tlen;
	struct store *st = t->st;
	MDB_cursor *cur;
	MDB_val k, v, qk;
	struct item it;
	int rc, m;

	*n = 0;
	*more = 0;
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
		if (max_bytes > 0 && bytes > 0 &&
		    bytes + it.entry.mv_size > max_bytes) {
			*more = 1;   /* for the next call */
			break;
		}
		bytes += it.entry.mv_size;
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
			  const struct setaside_sink *sink, uint64_t max_bytes,
			  uint64_t *n, int *more)
{
	return err_from_mdb(take(t, f, sink, max_bytes, n, more, 1));
}

int store_setaside_purge(struct store_txn *t, const struct setaside_filter *f,
			 const struct setaside_sink *sink, uint64_t max_bytes,
			 uint64_t *n, int *more)
{
	return err_from_mdb(take(t, f, sink, max_bytes, n, more, 0));
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

/* The size trim's first batch of candidates; it doubles for every pass
 * that deleted a whole batch and was still over. */
#define TRIM_BATCH 1024

uint64_t store_setaside_trim_reads;

/* One candidate of the size trim: an entry's time and key (copied). */
struct trim_cand {
	uint64_t ms, seq;
	size_t tlen;
	char tenant[TENANT_ID_MAX];
};

/* 1 if a goes before b: set aside earlier, or as early and first in key
 * order. */
static int cand_before(const struct trim_cand *a, const struct trim_cand *b)
{
	int c;

	if (a->ms != b->ms)
		return a->ms < b->ms;
	if ((c = memcmp(a->tenant, b->tenant,
			a->tlen < b->tlen ? a->tlen : b->tlen)) != 0)
		return c < 0;
	if (a->tlen != b->tlen)
		return a->tlen < b->tlen;
	return a->seq < b->seq;
}

static int cand_cmp(const void *a, const void *b)
{
	return cand_before(a, b) ? -1 : cand_before(b, a);
}

/* Keeps in h (a heap of at most cap, the latest at the top) the cap
 * earliest candidates offered. */
static void cand_offer(struct trim_cand *h, size_t *n, size_t cap,
		       const struct trim_cand *c)
{
	struct trim_cand tmp;
	size_t i, p, l, m;

	if (*n < cap) {
		for (i = (*n)++, h[i] = *c; i > 0; i = p) {
			p = (i - 1) / 2;
			if (!cand_before(&h[p], &h[i]))
				break;
			tmp = h[p], h[p] = h[i], h[i] = tmp;
		}
		return;
	}
	if (cap == 0 || !cand_before(c, &h[0]))
		return;
	for (h[0] = *c, i = 0;; i = m) {
		l = 2 * i + 1;
		m = i;
		if (l < *n && cand_before(&h[m], &h[l]))
			m = l;
		if (l + 1 < *n && cand_before(&h[m], &h[l + 1]))
			m = l + 1;
		if (m == i)
			break;
		tmp = h[m], h[m] = h[i], h[i] = tmp;
	}
}

/* One pass of the size trim: reads every entry once, keeping the cap
 * earliest, then deletes them earliest first while the database is over
 * max_bytes. *more: still over after deleting all cap of them, with
 * entries left. Returns an LMDB code (ENOMEM too). */
static int trim_pass(struct store_txn *t, uint64_t max_bytes, size_t cap,
		     const struct setaside_sink *sink, uint64_t *n, int *more)
{
	struct store *st = t->st;
	struct setaside_filter one;
	struct trim_cand *h, c;
	size_t nh = 0, total = 0, i;
	MDB_cursor *cur;
	MDB_val k, v;
	struct item it;
	uint64_t k_n;
	int left;
	int rc;

	*more = 0;
	if ((h = malloc(cap * sizeof(*h))) == NULL)
		return ENOMEM;
	if ((rc = mdb_cursor_open(t->txn, st->setaside, &cur)) != 0)
		goto out;
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
	     rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		store_setaside_trim_reads++;
		if (item_parse(&k, &v, &it) < 0 || it.tlen > TENANT_ID_MAX)
			continue;
		c.ms = it.sh.set_aside_ms;
		c.seq = it.seq;
		c.tlen = it.tlen;
		memcpy(c.tenant, it.tenant, it.tlen);
		cand_offer(h, &nh, cap, &c);
		total++;
	}
	mdb_cursor_close(cur);
	if (rc != MDB_NOTFOUND)
		goto out;
	rc = 0;
	qsort(h, nh, sizeof(*h), cand_cmp);
	for (i = 0; i < nh; i++) {
		if (store_db_bytes(t->txn, st, st->setaside) <= max_bytes)
			goto out;
		memset(&one, 0, sizeof(one));
		memcpy(one.tenant, h[i].tenant, h[i].tlen);
		one.tlen = h[i].tlen;
		one.seq = h[i].seq;
		if ((rc = take(t, &one, sink, 0, &k_n, &left, 0)) != 0)
			goto out;
		if (k_n == 0)   /* cannot happen: stop rather than loop */
			goto out;
		*n += k_n;
	}
	*more = total > nh &&
		store_db_bytes(t->txn, st, st->setaside) > max_bytes;
out:
	free(h);
	return rc;
}

int store_setaside_trim(struct store_txn *t, uint64_t max_bytes,
			uint64_t max_age_ms, uint64_t now,
			const struct setaside_sink *sink, uint64_t *n)
{
	size_t cap = TRIM_BATCH;
	int rc, more = 1;

	*n = 0;
	if ((rc = trim_age(t, max_age_ms, now, sink, n)) != 0)
		return err_from_mdb(rc);
	/* By size: the earliest first, while over; each pass reads every
	 * entry once, and the batch doubles, so deleting d of n entries
	 * reads about n * log2(d / TRIM_BATCH + 2) of them. */
	while (more && store_db_bytes(t->txn, t->st, t->st->setaside) > max_bytes) {
		if ((rc = trim_pass(t, max_bytes, cap, sink, n, &more)) != 0)
			return rc == ENOMEM ? ERR_NOMEM : err_from_mdb(rc);
		if (cap < SIZE_MAX / 2 / sizeof(struct trim_cand))
			cap *= 2;
	}
	return 0;
}

/* The set-aside value for entry value v with status and reason; lane's
 * part only when part is not NULL (an entry of version 2 with that one
 * lane, added to the lanes of old, the value already set aside for the
 * same entry, when old is not NULL). Returns the value (malloc'ed; the
 * caller frees it) and its size in *len, or NULL when memory is short or
 * old is unreadable. */
static uint8_t *setaside_value(const MDB_val *v, const struct entry_hdr *h,
			       const struct lane_part *part,
			       const MDB_val *old, long status,
			       const char *reason, size_t *len)
{
	struct setaside_hdr sh;
	struct lane_table ot;
	struct lane_part parts[STORE_LANES];
	struct lane_rec rec;
	struct entry_hdr nh, oh;
	unsigned n = 0;
	size_t size, off;
	uint8_t *out;

	memset(&sh, 0, sizeof(sh));
	sh.status = (uint32_t)status;
	sh.reason_len = (uint32_t)strlen(reason);
	if (sh.reason_len > 1024)
		sh.reason_len = 1024;
	sh.set_aside_ms = clock_wall_ms();
	if (part == NULL) {
		size = sizeof(sh) + sh.reason_len + v->mv_size;
		if ((out = malloc(size)) == NULL)
			return NULL;
		memcpy(out, &sh, sizeof(sh));
		memcpy(out + sizeof(sh), reason, sh.reason_len);
		memcpy(out + sizeof(sh) + sh.reason_len, v->mv_data, v->mv_size);
		*len = size;
		return out;
	}
	nh = *h;
	nh.version = STORE_ENTRY_VERSION;
	nh.raw_len = nh.samples = nh.series = 0;
	nh.histograms = nh.exemplars = nh.metadata = 0;
	if (old != NULL) {
		/* Keep the first answer; add this lane to the lanes there. */
		MDB_val oe;
		if (old->mv_size < sizeof(sh))
			return NULL;
		memcpy(&sh, old->mv_data, sizeof(sh));
		if (sh.reason_len > old->mv_size - sizeof(sh))
			return NULL;
		reason = (const char *)old->mv_data + sizeof(sh);
		oe.mv_data = (uint8_t *)old->mv_data + sizeof(sh) + sh.reason_len;
		oe.mv_size = old->mv_size - sizeof(sh) - sh.reason_len;
		if (store_entry_read(&oe, &oh, &ot) < 0 || oh.version != 2 ||
		    lanes_find(&ot, part->lane) != NULL)
			return NULL;
		for (unsigned i = 0; i < ot.n; i++)
			parts[n++] = ot.part[i];
	}
	parts[n++] = *part;
	/* In lane order. */
	for (unsigned i = n - 1; i > 0 && parts[i].lane < parts[i - 1].lane; i--) {
		struct lane_part tmp = parts[i];
		parts[i] = parts[i - 1];
		parts[i - 1] = tmp;
	}
	size = sizeof(sh) + sh.reason_len + sizeof(nh) + n * sizeof(rec);
	for (unsigned i = 0; i < n; i++) {
		size += parts[i].len;
		nh.raw_len += parts[i].raw_len;
		nh.samples += parts[i].samples;
		nh.series += parts[i].series;
	}
	nh.nlanes = (uint16_t)n;
	if ((out = malloc(size)) == NULL)
		return NULL;
	memcpy(out, &sh, sizeof(sh));
	memcpy(out + sizeof(sh), reason, sh.reason_len);
	off = sizeof(sh) + sh.reason_len;
	memcpy(out + off, &nh, sizeof(nh));
	off += sizeof(nh);
	for (unsigned i = 0; i < n; i++, off += sizeof(rec)) {
		memset(&rec, 0, sizeof(rec));
		rec.lane = (uint8_t)parts[i].lane;
		rec.block_len = (uint32_t)parts[i].len;
		rec.raw_len = parts[i].raw_len;
		rec.samples = parts[i].samples;
		rec.series = parts[i].series;
		memcpy(out + off, &rec, sizeof(rec));
	}
	for (unsigned i = 0; i < n; i++) {
		memcpy(out + off, parts[i].block, parts[i].len);
		off += parts[i].len;
	}
	*len = size;
	return out;
}

/* Whether the set-aside value old holds a part in lane. One whose entry
 * is unreadable holds the entry as it was (set aside whole, or a head
 * whose tail was missing): every part it had. */
static int setaside_has_lane(const MDB_val *old, unsigned lane)
{
	struct setaside_hdr sh;
	struct lane_table ot;
	struct entry_hdr oh;
	MDB_val oe;

	if (old->mv_size < sizeof(sh))
		return 0;
	memcpy(&sh, old->mv_data, sizeof(sh));
	if (sh.reason_len > old->mv_size - sizeof(sh))
		return 0;
	oe.mv_data = (uint8_t *)old->mv_data + sizeof(sh) + sh.reason_len;
	oe.mv_size = old->mv_size - sizeof(sh) - sh.reason_len;
	if (store_entry_read(&oe, &oh, &ot) < 0)
		return 1;
	return lanes_find(&ot, lane) != NULL;
}

/* store_set_aside with the entry's whole value v (whole 0: v is a head
 * whose tail is missing, damage: its table still tells the lanes; a part
 * that lies in it is set aside as usual, one that passes it (or the
 * entry, lane < 0) sets the head aside as it is, read as unreadable; the
 * entry is never taken for gone). */
static int set_aside_whole(struct store_txn *t, const char *tenant,
			   size_t tlen, int lane, uint64_t seq,
			   const MDB_val *v, int whole, long status,
			   const char *reason, struct store_span *gone,
			   struct store_span *next)
{
	MDB_txn *txn = t->txn;
	struct store *st = t->st;
	uint8_t key[STORE_KEY_MAX], *val;
	const struct lane_part *part = NULL;
	struct lane_table lt;
	struct entry_hdr h;
	MDB_cursor *cur;
	MDB_val k, out, old, cur_v;
	int rc, have_old = 0, readable;
	size_t len;

	k.mv_size = store_key(key, tenant, tlen, seq);
	k.mv_data = key;
	readable = (whole ? store_entry_read(v, &h, &lt) :
			    store_head_read(v, &h, &lt)) == 0;
	if (!readable)
		memset(&h, 0, sizeof(h));
	if (lane >= 0) {
		/* An unreadable entry is lane 0's, whole. */
		if (readable && (part = lanes_find(&lt, (unsigned)lane)) == NULL)
			return ERR_NOTFOUND;
		if (!readable && lane != 0)
			return ERR_NOTFOUND;
		/* A version 1 entry (or one with only this lane) is kept whole,
		 * and so is a head whose tail the part needs. */
		if (!readable || h.version == 1 || lt.n == 1 ||
		    (!whole && part->block + part->len >
				       (const uint8_t *)v->mv_data + v->mv_size))
			part = NULL;
		if (part != NULL) {
			rc = mdb_get(txn, st->setaside, &k, &old);
			if (rc != 0 && rc != MDB_NOTFOUND)
				return err_from_mdb(rc);
			have_old = rc == 0;
			if (have_old && setaside_has_lane(&old, part->lane))
				return 0;   /* there already */
		}
	}
	val = setaside_value(v, &h, part, have_old ? &old : NULL, status,
			     reason, &len);
	if (val == NULL)
		return have_old ? ERR_CORRUPT : ERR_NOMEM;
	out.mv_size = len;
	out.mv_data = val;
	rc = store_seam_put(txn, st->setaside, &k, &out, 0);
	free(val);
	if (rc != 0)
		return err_from_mdb(rc);
	if (lane >= 0)
		return 0;
	memset(next, 0, sizeof(*next));
	/* The put may have moved the queue value: look it up again. */
	if ((rc = mdb_get(txn, st->queue, &k, &cur_v)) != 0)
		return err_from_mdb(rc);
	store_span_add(gone, seq, &cur_v, &h);
	if ((rc = mdb_del(txn, st->queue, &k, NULL)) != 0 ||
	    (rc = store_tail_del(txn, st, tenant, tlen, seq)) != 0 ||
	    (rc = mdb_cursor_open(txn, st->queue, &cur)) != 0)
		return err_from_mdb(rc);
	rc = store_tenant_head(cur, tenant, tlen, next);
	mdb_cursor_close(cur);
	if (rc == 0)
		rc = store_dest_prune(txn, st, tenant, tlen);
	return err_from_mdb(rc);
}

int store_set_aside(struct store_txn *t, const char *tenant, size_t tlen,
		    int lane, uint64_t seq, long status, const char *reason,
		    struct store_span *gone, struct store_span *next)
{
	MDB_txn *txn = t->txn;
	struct store *st = t->st;
	uint8_t key[STORE_KEY_MAX];
	MDB_val k, v, head;
	int rc;

	k.mv_size = store_key(key, tenant, tlen, seq);
	k.mv_data = key;
	if ((rc = mdb_get(txn, st->queue, &k, &head)) != 0)
		return err_from_mdb(rc);
	/* Set aside whole: a head is joined with its tail. Without its tail
	 * (damage) it is unreadable, and set aside as it is. */
	rc = store_value_whole(txn, st, tenant, tlen, seq, &head, &v);
	if (rc == ENOMEM)
		return ERR_NOMEM;
	if (rc != 0 && rc != MDB_NOTFOUND)
		return err_from_mdb(rc);
	rc = set_aside_whole(t, tenant, tlen, lane, seq, &v, rc == 0, status,
			     reason, gone, next);
	if (v.mv_data != head.mv_data)
		free(v.mv_data);
	return rc;
}
