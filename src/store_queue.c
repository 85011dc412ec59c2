/*
 * store_queue.c - the queue database: keys, entries, and the operations
 * the writer and the forwarder run on them (see store.h).
 */
#include "store_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "log.h"
#include "lanes.h"
#include "queue.h"

size_t store_key(uint8_t *key, const char *tenant, size_t tlen, uint64_t seq)
{
	memcpy(key, tenant, tlen);
	key[tlen] = 0;
	for (int i = 0; i < 8; i++)
		key[tlen + 1 + i] = (uint8_t)(seq >> (56 - 8 * i));
	return tlen + 9;
}

int store_key_parse(const MDB_val *k, const char **tenant, size_t *tlen,
		    uint64_t *seq)
{
	const uint8_t *p = k->mv_data;
	uint64_t s = 0;
	size_t n;

	if (k->mv_size < 9 || k->mv_size > STORE_KEY_MAX)
		return -1;
	n = k->mv_size - 9;
	if (p[n] != 0 || memchr(p, 0, n) != NULL)
		return -1;
	for (int i = 0; i < 8; i++)
		s = s << 8 | p[n + 1 + i];
	*tenant = (const char *)p;
	*tlen = n;
	*seq = s;
	return 0;
}

/* The header and lane table of a value whose table covers len bytes
 * (v->mv_size for a whole value, more for a head). */
static int entry_read_len(const MDB_val *v, size_t len, struct entry_hdr *hdr,
			  struct lane_table *t)
{
	if (v->mv_size < sizeof(*hdr) + 1)
		return -1;
	memcpy(hdr, v->mv_data, sizeof(*hdr));
	if (hdr->version != 1 && hdr->version != STORE_ENTRY_VERSION)
		return -1;
	return lanes_table(v->mv_data, len, hdr->version, hdr->nlanes,
			   hdr->raw_len, hdr->samples, hdr->series, t);
}

int store_entry_read(const MDB_val *v, struct entry_hdr *hdr,
		     struct lane_table *t)
{
	/* Every block within v, whatever the flag says. */
	return entry_read_len(v, v->mv_size, hdr, t);
}

int store_head_read(const MDB_val *v, struct entry_hdr *hdr,
		    struct lane_table *t)
{
	/* A head: the table covers its tail too (store_tail.c). */
	return entry_read_len(v, store_value_len(v), hdr, t);
}

int store_entry_check(const MDB_val *v, struct entry_hdr *hdr)
{
	struct lane_table t;

	/* Whole values only: a head's blocks are not all in it. */
	if (store_entry_read(v, hdr, &t) < 0)
		return -1;
	for (unsigned i = 0; i < t.n; i++)
		if (!lanes_part_ok(&t.part[i]))
			return -1;
	return 0;
}

int store_entry_hdr(const MDB_val *v, struct entry_hdr *hdr)
{
	struct lane_table t;

	return store_head_read(v, hdr, &t);
}

void store_span_add(struct store_span *s, uint64_t seq, const MDB_val *v,
		    const struct entry_hdr *h)
{
	if (s->entries == 0) {
		s->first_seq = seq;
		s->created_ms = h->created_ms;
	}
	s->last_seq = seq;
	s->entries++;
	s->bytes += store_value_len(v);
	s->raw += h->raw_len;
	s->series += h->series;
	s->samples += h->samples;
	s->histograms += h->histograms;
	s->exemplars += h->exemplars;
}

int store_load_queue(struct store *st, struct queue *q)
{
	MDB_txn *txn;
	MDB_cursor *cur;
	MDB_val k, v;
	struct entry_hdr h;
	const char *tenant;
	size_t tlen;
	uint64_t seq, bad = 0;
	int rc;

	if ((rc = store_read_begin(st, &txn)) != 0)
		return rc;
	if ((rc = mdb_cursor_open(txn, st->queue, &cur)) != 0) {
		mdb_txn_abort(txn);
		return err_from_mdb(rc);
	}
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
	     rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		if (store_key_parse(&k, &tenant, &tlen, &seq) < 0) {
			bad++;
			continue;
		}
		if (store_entry_hdr(&v, &h) < 0) {
			/* Still the tenant's: lane 0 reads it (whole, alone)
			 * and deletes it once through it, which counts it out.
			 * Its age is not known: from this start. */
			bad++;
			queue_added(q, tenant, tlen, seq, store_value_len(&v), 0,
				    clock_wall_ms());
			if (seq >= st->next_seq)
				st->next_seq = seq + 1;
			continue;
		}
		queue_added(q, tenant, tlen, seq, store_value_len(&v), h.samples,
			    h.created_ms);
		/* Written before lanes: lane 0's, the others wait (lanes.h). */
		if (h.version == 1)
			queue_legacy(q, tenant, tlen, seq);
		if (seq >= st->next_seq)
			st->next_seq = seq + 1;
	}
	mdb_cursor_close(cur);
	if (rc == MDB_NOTFOUND)
		rc = store_load_cursors(txn, st, q);
	mdb_txn_abort(txn);
	/* Another entry version is not misread: said so; each goes whole
	 * and alone, as lane 0's (store_body_open), unless its key is
	 * unreadable too. */
	if (bad > 0)
		log_msg(LOG_WARN, "unreadable buffer entries (damaged, or of "
			"another entry version); each is sent alone as it is",
			"count=%llu", (unsigned long long)bad);
	return rc == 0 ? 0 : err_from_mdb(rc);
}

/*
 * The tenant's newest sequence number in the queue database, or 0. Used
 * when next_seq is found taken: it moves past every number in use.
 */
static uint64_t tenant_last_seq(struct store_txn *t, const char *tenant,
				size_t tlen)
{
	uint8_t key[STORE_KEY_MAX];
	MDB_cursor *cur;
	MDB_val k, v;
	const char *kt;
	size_t kl;
	uint64_t seq = 0, last = 0;
	int rc;

	if (mdb_cursor_open(t->txn, t->st->queue, &cur) != 0)
		return 0;
	k.mv_size = store_key(key, tenant, tlen, UINT64_MAX);
	k.mv_data = key;
	rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
	rc = mdb_cursor_get(cur, &k, &v, rc == 0 ? MDB_PREV : MDB_LAST);
	if (rc == 0 && store_key_parse(&k, &kt, &kl, &seq) == 0 && kl == tlen &&
	    memcmp(kt, tenant, tlen) == 0)
		last = seq;
	mdb_cursor_close(cur);
	return last;
}

/* Reserves a queue value of size bytes under the transaction's next
 * sequence number (*v then points at it). Returns an LMDB code. */
static int reserve_value(struct store_txn *t, const char *tenant, size_t tlen,
			 size_t size, MDB_val *v)
{
	uint8_t key[STORE_KEY_MAX];
	MDB_val k;
	int rc;

	for (int tries = 0;; tries++) {
		k.mv_size = store_key(key, tenant, tlen, t->next_seq);
		k.mv_data = key;
		v->mv_size = size;
		v->mv_data = NULL;
		/* Never over an entry: a number in use is an error of ours,
		 * not a reason to lose what it holds. */
		rc = store_seam_put(t->txn, t->st->queue, &k, v,
				    MDB_RESERVE | MDB_NOOVERWRITE);
		if (rc != MDB_KEYEXIST || tries > 0)
			return rc;
		log_msg(LOG_ERROR, "sequence number already in use, moving past it",
			"tenant=\"%.*s\" seq=%llu", (int)tlen, tenant,
			(unsigned long long)t->next_seq);
		t->next_seq = tenant_last_seq(t, tenant, tlen) + 1;
	}
}

/* Sums a lane's parts: decoded bytes and elements. Returns 0 or -1. */
static int lane_sizes(const struct store_lane_in *l, uint64_t *raw,
		      size_t *elements)
{
	uint32_t r;

	*raw = 0;
	*elements = 0;
	if (l->nparts == 0 || l->lane >= STORE_LANES)
		return -1;
	for (size_t i = 0; i < l->nparts; i++) {
		size_t pre = sblock_preamble(l->parts[i].p, l->parts[i].len, &r);
		if (pre == 0)
			return -1;
		*raw += r;
		*elements += l->parts[i].len - pre;
	}
	return *raw > SBLOCK_MAX_RAW ? -1 : 0;
}

/* Writes the blocks of lanes[from..to) (sizes in rec) one after the
 * other from p. Returns 0 or -1. */
static int fill_lanes(uint8_t *p, const struct store_lane_in *lanes,
		      const struct lane_rec *rec, size_t from, size_t to)
{
	struct buf out;

	for (size_t i = from; i < to; i++) {
		/* A buf over the reserved space: sblock_concat fills it. */
		out.p = p;
		out.len = 0;
		out.cap = out.max = rec[i].block_len;
		if (sblock_concat(&out, lanes[i].parts, lanes[i].nparts) < 0 ||
		    out.len != out.cap)
			return -1;
		p += rec[i].block_len;
	}
	return 0;
}

/* The block of lane l (len bytes, as fill_lanes writes it) read from
 * the stream of its parts' elements (el[], room for l->nparts): its
 * first n1 bytes to a, the rest to b. Returns 0 or -1. */
static int fill_split(const struct store_lane_in *l, struct sblock_part *el,
		      size_t len, uint8_t *a, size_t n1, uint8_t *b)
{
	struct sblock_stream s;
	uint64_t raw = 0;
	uint8_t end;

	for (size_t i = 0; i < l->nparts; i++) {
		el[i] = l->parts[i];
		if (sblock_strip(&el[i], &raw) < 0)
			return -1;
	}
	if (sblock_stream_init(&s, el, l->nparts, raw) < 0 || s.len != len ||
	    sblock_stream_read(&s, a, n1) != n1 ||
	    sblock_stream_read(&s, b, len - n1) != len - n1 ||
	    sblock_stream_read(&s, &end, 1) != 0)
		return -1;
	return 0;
}

int store_put_lanes(struct store_txn *t, const char *tenant, size_t tlen,
		    struct entry_hdr *hdr, const struct store_lane_in *lanes,
		    size_t n, uint64_t *seq, uint64_t *value_bytes)
{
	struct lane_rec rec[STORE_LANES];
	struct sblock_part *el = NULL;
	uint64_t raw_total = 0, raw;
	size_t size, elements, cut, base, cross, in_head;
	uint8_t *p, *apart = NULL;
	MDB_val v;
	int rc;

	if (n == 0 || n > STORE_LANES)
		return ERR_FAIL;
	size = sizeof(*hdr) + n * sizeof(rec[0]);
	for (size_t i = 0; i < n; i++) {
		if (lane_sizes(&lanes[i], &raw, &elements) < 0 ||
		    (i > 0 && lanes[i].lane <= lanes[i - 1].lane))
			return ERR_FAIL;
		memset(&rec[i], 0, sizeof(rec[i]));
		rec[i].lane = (uint8_t)lanes[i].lane;
		rec[i].block_len = (uint32_t)sblock_concat_size(raw, elements);
		rec[i].raw_len = (uint32_t)raw;
		rec[i].samples = lanes[i].samples;
		rec[i].series = lanes[i].series;
		raw_total += raw;
		size += rec[i].block_len;
	}
	if (raw_total > SBLOCK_MAX_RAW)
		return ERR_FAIL;
	hdr->version = STORE_ENTRY_VERSION;
	hdr->flags = 0;
	hdr->nlanes = (uint16_t)n;
	hdr->raw_len = (uint32_t)raw_total;
	/* With a tail (store_tail.c), the block that crosses the cut goes
	 * to the head up to it, its rest and the blocks after to a buffer
	 * of the tail's bytes; all in memory before the tail's records are
	 * written (the head reserved must be filled before the
	 * transaction's next write). */
	base = sizeof(*hdr) + n * sizeof(rec[0]);
	cross = n;
	if ((cut = store_tail_cut(t->st, tlen, size)) > 0) {
		hdr->flags = STORE_ENTRY_TAIL;
		for (cross = 0; base + rec[cross].block_len <= cut; cross++)
			base += rec[cross].block_len;
		apart = malloc(size - cut);
		el = malloc(lanes[cross].nparts * sizeof(*el));
		if (apart == NULL || el == NULL) {
			rc = ERR_NOMEM;
			goto out;
		}
	}
	if ((rc = reserve_value(t, tenant, tlen, cut ? cut : size, &v)) != 0) {
		rc = err_from_mdb(rc);
		goto out;
	}
	p = v.mv_data;
	memcpy(p, hdr, sizeof(*hdr));
	memcpy(p + sizeof(*hdr), rec, n * sizeof(rec[0]));
	p += sizeof(*hdr) + n * sizeof(rec[0]);
	rc = ERR_FAIL;
	if (fill_lanes(p, lanes, rec, 0, cross) < 0)
		goto out;
	if (cut > 0) {
		in_head = cut - base;
		if (fill_split(&lanes[cross], el, rec[cross].block_len,
			       (uint8_t *)v.mv_data + base, in_head, apart) < 0 ||
		    fill_lanes(apart + (rec[cross].block_len - in_head), lanes,
			       rec, cross + 1, n) < 0)
			goto out;
		if ((rc = store_tail_put(t, tenant, tlen, t->next_seq, apart,
					 size - cut)) != 0) {
			rc = err_from_mdb(rc);
			goto out;
		}
	}
	rc = 0;
out:
	free(el);
	free(apart);
	if (rc != 0)
		return rc;
	/* Taken inside the transaction: an abort gives it back. */
	*seq = t->next_seq++;
	*value_bytes = size;
	return 0;
}

int store_put_entry(struct store_txn *t, const char *tenant, size_t tlen,
		    struct entry_hdr *hdr, const struct sblock_part *parts,
		    size_t nparts, uint64_t *seq, uint64_t *value_bytes)
{
	struct store_lane_in l = {0, parts, nparts, hdr->samples, hdr->series};

	return store_put_lanes(t, tenant, tlen, hdr, &l, 1, seq, value_bytes);
}

int store_put_value(struct store_txn *t, const char *tenant, size_t tlen,
		    const void *value, size_t len, uint64_t *seq)
{
	MDB_val in = {len, (void *)value}, v;
	struct entry_hdr h;
	size_t cut = 0;
	uint8_t *p;
	int rc;

	if (store_entry_check(&in, &h) < 0)
		return ERR_CORRUPT;
	/* Version 2 values get a tail as store_put_lanes gives them. */
	if (h.version == 2)
		cut = store_tail_cut(t->st, tlen, len);
	if ((rc = reserve_value(t, tenant, tlen, cut ? cut : len, &v)) != 0)
		return err_from_mdb(rc);
	p = v.mv_data;
	memcpy(p, value, cut ? cut : len);
	if (h.version == 2)
		p[1] = cut ? STORE_ENTRY_TAIL : 0;   /* entry_hdr.flags */
	if (cut > 0 && (rc = store_tail_put(t, tenant, tlen,
					    t->next_seq, (const uint8_t *)value + cut,
					    len - cut)) != 0)
		return err_from_mdb(rc);
	*seq = t->next_seq++;
	return 0;
}

/* Fills next with the tenant's oldest entry (entries = 0 if none). */
int store_tenant_head(MDB_cursor *cur, const char *tenant, size_t tlen,
		       struct store_span *next)
{
	uint8_t key[STORE_KEY_MAX];
	struct entry_hdr h;
	MDB_val k, v;
	const char *t;
	size_t n;
	uint64_t seq;
	int rc;

	memset(next, 0, sizeof(*next));
	k.mv_size = store_key(key, tenant, tlen, 0);
	k.mv_data = key;
	rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
	if (rc == MDB_NOTFOUND)
		return 0;
	if (rc != 0)
		return rc;
	if (store_key_parse(&k, &t, &n, &seq) < 0 || n != tlen ||
	    memcmp(t, tenant, tlen) != 0)
		return 0;
	if (store_entry_hdr(&v, &h) < 0)
		memset(&h, 0, sizeof(h));
	store_span_add(next, seq, &v, &h);
	return 0;
}

int store_delete_range(struct store_txn *t, const char *tenant, size_t tlen,
		       uint64_t first, uint64_t last, struct store_span *gone,
		       struct store_span *next)
{
	uint8_t key[STORE_KEY_MAX];
	MDB_cursor *cur;
	MDB_val k, v;
	struct entry_hdr h;
	const char *name;
	size_t n;
	uint64_t seq;
	int rc, tail;

	memset(next, 0, sizeof(*next));
	if ((rc = mdb_cursor_open(t->txn, t->st->queue, &cur)) != 0)
		return err_from_mdb(rc);
	k.mv_size = store_key(key, tenant, tlen, first);
	k.mv_data = key;
	rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
	while (rc == 0) {
		if (store_key_parse(&k, &name, &n, &seq) < 0 || n != tlen ||
		    memcmp(name, tenant, tlen) != 0 || seq > last) {
			rc = MDB_NOTFOUND;
			break;
		}
		if (store_entry_hdr(&v, &h) < 0)
			memset(&h, 0, sizeof(h));
		store_span_add(gone, seq, &v, &h);
		tail = store_tail_flagged(&v);
		if ((rc = mdb_cursor_del(cur, 0)) != 0 ||
		    (tail && (rc = store_tail_del(t->txn, t->st, tenant, tlen,
						  seq)) != 0))
			break;
		rc = mdb_cursor_get(cur, &k, &v, MDB_GET_CURRENT);
		if (rc == EINVAL)  /* deleted the last item of the database */
			rc = MDB_NOTFOUND;
	}
	if (rc == MDB_NOTFOUND)
		rc = store_tenant_head(cur, tenant, tlen, next);
	mdb_cursor_close(cur);
	if (rc == 0 && gone->entries > 0)
		rc = store_dest_prune(t->txn, t->st, tenant, tlen);
	return err_from_mdb(rc);
}

/* Sets body's destination from the record in force for entry seq, and
 * lowers *max_seq below the next record. Returns 0 or -1. */
static int body_dest(MDB_txn *txn, const struct store *st,
		     struct store_body *body, const char *tenant, size_t tlen,
		     uint64_t seq, uint64_t *max_seq)
{
	uint64_t until;
	int rc = store_dest_lookup(txn, st, tenant, tlen, seq, &body->dest,
				   &until);

	if (rc < 0)
		return -1;
	body->has_dest = rc;
	if (until <= *max_seq)
		*max_seq = until - 1;
	return 0;
}

int store_body_open(struct store *st, const char *tenant, size_t tlen,
		    unsigned lane, uint64_t seq, uint64_t max_seq,
		    uint64_t max_raw, uint64_t max_entries,
		    struct store_body *body, struct store_span *span)
{
	uint8_t key[STORE_KEY_MAX];
	MDB_txn *txn;
	MDB_cursor *cur;
	MDB_val k, v;
	struct entry_hdr h;
	struct lane_table lt;
	const struct lane_part *lp;
	struct lane_part whole, first;
	struct sblock_part *e, pc[STORE_TAIL_PIECES];
	const char *t;
	size_t n, nparts = 0, nelem = 0, npc;
	uint64_t s, raw_total = 0, seen = 0;
	uint32_t stated;
	int rc, ret = 0, readable, ok, pr;

	memset(span, 0, sizeof(*span));
	body->read = NULL;
	body->copies = NULL;
	body->has_dest = 0;
	body->nseen = 0;
	if (max_entries > STORE_BODY_MAX_ENTRIES)
		max_entries = STORE_BODY_MAX_ENTRIES;
	if (store_read_begin(st, &txn) != 0)
		return -1;
	body->read = store_read_of(txn);
	if (mdb_cursor_open(txn, st->queue, &cur) != 0) {
		store_body_release(body);
		return -1;
	}
	k.mv_size = store_key(key, tenant, tlen, seq);
	k.mv_data = key;
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); rc == 0;
	     rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		if (store_key_parse(&k, &t, &n, &s) < 0 || n != tlen ||
		    memcmp(t, tenant, tlen) != 0 || s > max_seq)
			break;
		readable = store_head_read(&v, &h, &lt) == 0;
		if (readable && body->nseen < STORE_BODY_MAX_ENTRIES) {
			struct store_seen *sn = &body->seen[body->nseen++];
			lp = lanes_find(&lt, lane);
			sn->seq = s;
			sn->mask = (uint8_t)lt.mask;
			sn->samples = lp != NULL ? lp->samples : 0;
		}
		if (!readable) {
			/* Unreadable: lane 0's, and it travels alone so that
			 * the upstream's refusal sets it aside. */
			if (lane != 0) {
				seen = s;
				continue;
			}
			size_t skip = sizeof(h);
			/* Past a lane table, when the header gives one. */
			if (v.mv_size >= sizeof(h) &&
			    h.nlanes <= STORE_LANES &&
			    v.mv_size >= sizeof(h) + h.nlanes * sizeof(struct lane_rec))
				skip += h.nlanes * sizeof(struct lane_rec);
			memset(&h, 0, sizeof(h));
			h.raw_len = (uint32_t)max_raw;
			whole.block = (const uint8_t *)v.mv_data + skip;
			whole.len = v.mv_size > skip ? v.mv_size - skip : 0;
			whole.raw_len = h.raw_len;
			whole.samples = whole.series = 0;
			lp = &whole;
		} else if ((lp = lanes_find(&lt, lane)) == NULL) {
			seen = s;   /* nothing of this lane: passed over */
			continue;
		}
		/* The first part's destination record bounds the body. */
		if (nparts == 0 && (ret = body_dest(txn, st, body, tenant, tlen, s,
						    &max_seq)) < 0)
			break;
		pc[0].p = lp->block;
		pc[0].len = lp->len;
		npc = 1;
		/* Past the head: read where it lies, head and tail records
		 * (a missing tail makes the part one that cannot be sent;
		 * any other failure, memory or a read, is retried); a
		 * preamble cut in two is copied, joined. */
		if (readable && lp->block + lp->len >
				(const uint8_t *)v.mv_data + v.mv_size) {
			pr = store_tail_pieces(txn, st, tenant, tlen, s, &v, lp,
					       pc);
			if (pr > 1 && pc[0].len < 5 &&
			    (pr = store_tail_joined(txn, st, body, tenant, tlen,
						    s, &v, lp, &pc[0])) == 0)
				pr = 1;
			if (pr < 0 && pr != ERR_NOTFOUND) {
				ret = -1;
				break;
			}
			npc = pr > 0 ? (size_t)pr : 0;
		}
		first = *lp;
		first.block = pc[0].p;
		first.len = pc[0].len;
		ok = readable ? npc > 0 && lanes_part_ok(&first) :
		     lp->len > 0 && sblock_preamble(lp->block, lp->len, &stated) != 0;
		if (nparts > 0 && (span->raw + lp->raw_len > max_raw ||
				   nparts >= max_entries || !readable || !ok ||
				   nelem + npc > STORE_BODY_MAX_PIECES))
			break;
		if (!ok) {
			/* Cannot be sent: the caller sets it aside. */
			span->entries = 1;
			span->first_seq = seen = s;
			span->created_ms = h.created_ms;
			span->bytes = lp->len;
			span->raw = readable ? lp->raw_len : 0;
			span->series = lp->series;
			span->samples = lp->samples;
			ret = 1;
			break;
		}
		e = &body->elements[nelem];
		memcpy(e, pc, npc * sizeof(pc[0]));
		nelem += npc;
		nparts++;
		if (span->entries == 0) {
			span->first_seq = s;
			span->created_ms = h.created_ms;
		}
		span->entries++;
		span->bytes += lp->len;
		span->raw += lp->raw_len;
		span->series += lp->series;
		span->samples += lp->samples;
		if (lt.n == 1 || !readable) {
			span->histograms += h.histograms;
			span->exemplars += h.exemplars;
		}
		seen = s;
		if (sblock_strip(e, &raw_total) < 0) {
			ret = -1;   /* checked above: not reached */
			break;
		}
		if (nparts >= max_entries || !readable)
			break;
	}
	mdb_cursor_close(cur);
	/* A read that failed is not the range's end: the lane would pass
	 * over what it did not see. Tried again later, as a failed read. */
	if (ret == 0 && rc != 0 && rc != MDB_NOTFOUND)
		ret = -1;
	span->last_seq = seen;
	if (ret == 0 && nparts > 0 &&
	    sblock_stream_init(&body->stream, body->elements, nelem,
			       raw_total) < 0)
		ret = -1;
	if (ret != 0 || nparts == 0)
		store_body_release(body);
	return ret;
}

void store_body_release(struct store_body *body)
{
	if (body->read != NULL)
		mdb_txn_abort(store_read_txn(body->read));
	body->read = NULL;
	store_tail_copies_free(body);
}

int store_read_batch(struct store *st, const char *tenant, size_t tlen,
		     unsigned lane, uint64_t seq, uint64_t max_seq, uint64_t max_raw,
		     uint64_t max_entries, struct buf *body,
		     struct store_span *span)
{
	struct store_body b;
	size_t len;
	int ret = 0;

	if (store_body_open(st, tenant, tlen, lane, seq, max_seq, max_raw,
			    max_entries, &b, span) != 0)
		return -1;
	if (span->entries == 0)
		return 0;
	len = (size_t)b.stream.len;
	if (buf_reserve(body, len) < 0)
		ret = -1;
	else
		body->len += sblock_stream_read(&b.stream, body->p + body->len, len);
	store_body_release(&b);
	return ret;
}
