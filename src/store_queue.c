/*
 * store_queue.c - the queue database: keys, entries, and the operations
 * the writer and the forwarder run on them (see store.h).
 */
#include "store_int.h"

#include <errno.h>
#include <string.h>

#include "clock.h"
#include "log.h"
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

int store_entry_hdr(const MDB_val *v, struct entry_hdr *hdr)
{
	uint32_t raw;

	if (v->mv_size < sizeof(*hdr) + 1)
		return -1;
	memcpy(hdr, v->mv_data, sizeof(*hdr));
	if (hdr->version != STORE_ENTRY_VERSION)
		return -1;
	if (sblock_preamble((const uint8_t *)v->mv_data + sizeof(*hdr),
			    v->mv_size - sizeof(*hdr), &raw) == 0 ||
	    raw != hdr->raw_len)
		return -1;
	return 0;
}

static void span_add(struct store_span *s, uint64_t seq, const MDB_val *v,
		     const struct entry_hdr *h)
{
	if (s->entries == 0) {
		s->first_seq = seq;
		s->created_ms = h->created_ms;
	}
	s->last_seq = seq;
	s->entries++;
	s->bytes += v->mv_size;
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
		if (store_key_parse(&k, &tenant, &tlen, &seq) < 0 ||
		    store_entry_hdr(&v, &h) < 0) {
			bad++;
			continue;
		}
		queue_added(q, tenant, tlen, seq, v.mv_size, h.samples,
			    h.created_ms);
		if (seq >= st->next_seq)
			st->next_seq = seq + 1;
	}
	mdb_cursor_close(cur);
	mdb_txn_abort(txn);
	/* Another entry version is not misread: skipped, and said so. */
	if (bad > 0)
		log_msg(LOG_WARN, "unreadable buffer entries skipped (damaged, or "
			"of another entry version)",
			"count=%llu", (unsigned long long)bad);
	return rc == MDB_NOTFOUND ? 0 : err_from_mdb(rc);
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

int store_put_entry(struct store_txn *t, const char *tenant, size_t tlen,
		    struct entry_hdr *hdr, const struct sblock_part *parts,
		    size_t nparts, uint64_t *seq, uint64_t *value_bytes)
{
	uint8_t key[STORE_KEY_MAX];
	uint64_t raw_total = 0;
	size_t elements = 0;
	uint32_t raw;
	struct buf out;
	MDB_val k, v;
	int rc;

	for (size_t i = 0; i < nparts; i++) {
		size_t pre = sblock_preamble(parts[i].p, parts[i].len, &raw);
		if (pre == 0)
			return ERR_FAIL;
		raw_total += raw;
		elements += parts[i].len - pre;
	}
	if (raw_total > SBLOCK_MAX_RAW)
		return ERR_FAIL;
	hdr->version = STORE_ENTRY_VERSION;
	hdr->raw_len = (uint32_t)raw_total;
	for (int tries = 0;; tries++) {
		k.mv_size = store_key(key, tenant, tlen, t->next_seq);
		k.mv_data = key;
		v.mv_size = sizeof(*hdr) + sblock_concat_size(raw_total, elements);
		v.mv_data = NULL;
		/* Never over an entry: a number in use is an error of ours,
		 * not a reason to lose what it holds. */
		rc = store_seam_put(t->txn, t->st->queue, &k, &v,
				    MDB_RESERVE | MDB_NOOVERWRITE);
		if (rc != MDB_KEYEXIST || tries > 0)
			break;
		log_msg(LOG_ERROR, "sequence number already in use, moving past it",
			"tenant=\"%.*s\" seq=%llu", (int)tlen, tenant,
			(unsigned long long)t->next_seq);
		t->next_seq = tenant_last_seq(t, tenant, tlen) + 1;
	}
	if (rc != 0)
		return err_from_mdb(rc);
	memcpy(v.mv_data, hdr, sizeof(*hdr));
	/* A buf over the reserved space: sblock_concat fills it exactly. */
	out.p = (uint8_t *)v.mv_data + sizeof(*hdr);
	out.len = 0;
	out.cap = out.max = v.mv_size - sizeof(*hdr);
	if (sblock_concat(&out, parts, nparts) < 0 || out.len != out.cap)
		return ERR_FAIL;
	/* Taken inside the transaction: an abort gives it back. */
	*seq = t->next_seq++;
	*value_bytes = v.mv_size;
	return 0;
}

/* Fills next with the tenant's oldest entry (entries = 0 if none). */
static int tenant_head(MDB_cursor *cur, const char *tenant, size_t tlen,
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
	span_add(next, seq, &v, &h);
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
	int rc;

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
		span_add(gone, seq, &v, &h);
		if ((rc = mdb_cursor_del(cur, 0)) != 0)
			break;
		rc = mdb_cursor_get(cur, &k, &v, MDB_GET_CURRENT);
		if (rc == EINVAL)  /* deleted the last item of the database */
			rc = MDB_NOTFOUND;
	}
	if (rc == MDB_NOTFOUND)
		rc = tenant_head(cur, tenant, tlen, next);
	mdb_cursor_close(cur);
	if (rc == 0 && gone->entries > 0)
		rc = store_dest_prune(t->txn, t->st, tenant, tlen);
	return err_from_mdb(rc);
}

int store_set_aside(struct store_txn *t, const char *tenant, size_t tlen,
		    uint64_t seq, long status, const char *reason,
		    struct store_span *gone, struct store_span *next)
{
	MDB_txn *txn = t->txn;
	struct store *st = t->st;
	uint8_t key[STORE_KEY_MAX];
	struct setaside_hdr sh;
	struct entry_hdr h;
	MDB_cursor *cur;
	MDB_val k, v, out;
	int rc;

	memset(next, 0, sizeof(*next));

	k.mv_size = store_key(key, tenant, tlen, seq);
	k.mv_data = key;
	if ((rc = mdb_get(txn, st->queue, &k, &v)) != 0)
		return err_from_mdb(rc);
	if (store_entry_hdr(&v, &h) < 0)
		memset(&h, 0, sizeof(h));
	sh.status = (uint32_t)status;
	sh.reason_len = (uint32_t)strlen(reason);
	if (sh.reason_len > 1024)
		sh.reason_len = 1024;
	sh.set_aside_ms = clock_wall_ms();
	out.mv_size = sizeof(sh) + sh.reason_len + v.mv_size;
	out.mv_data = NULL;
	if ((rc = store_seam_put(txn, st->setaside, &k, &out, MDB_RESERVE)) != 0)
		return err_from_mdb(rc);
	/* The put may have moved the queue value: look it up again. */
	if ((rc = mdb_get(txn, st->queue, &k, &v)) != 0)
		return err_from_mdb(rc);
	memcpy(out.mv_data, &sh, sizeof(sh));
	memcpy((uint8_t *)out.mv_data + sizeof(sh), reason, sh.reason_len);
	memcpy((uint8_t *)out.mv_data + sizeof(sh) + sh.reason_len, v.mv_data,
	       v.mv_size);
	span_add(gone, seq, &v, &h);
	if ((rc = mdb_del(txn, st->queue, &k, NULL)) != 0 ||
	    (rc = mdb_cursor_open(txn, st->queue, &cur)) != 0)
		return err_from_mdb(rc);
	rc = tenant_head(cur, tenant, tlen, next);
	mdb_cursor_close(cur);
	if (rc == 0)
		rc = store_dest_prune(txn, st, tenant, tlen);
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
		    uint64_t seq, uint64_t max_seq, uint64_t max_raw,
		    uint64_t max_entries, struct store_body *body,
		    struct store_span *span)
{
	uint8_t key[STORE_KEY_MAX];
	MDB_txn *txn;
	MDB_cursor *cur;
	MDB_val k, v;
	struct entry_hdr h;
	struct sblock_part *e;
	const char *t;
	size_t n, nparts = 0;
	uint64_t s, raw_total = 0;
	int rc, ret = 0;

	memset(span, 0, sizeof(*span));
	body->read = NULL;
	body->has_dest = 0;
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
		/* The first entry's destination record bounds the body. */
		if (nparts == 0 && (ret = body_dest(txn, st, body, tenant, tlen, s,
						    &max_seq)) < 0)
			break;
		if (store_entry_hdr(&v, &h) < 0) {
			/* Unreadable: let it travel alone so the upstream's
			 * refusal sets it aside. */
			memset(&h, 0, sizeof(h));
			h.raw_len = (uint32_t)max_raw;
		}
		if (nparts > 0 && (span->raw + h.raw_len > max_raw ||
				   nparts >= max_entries))
			break;
		e = &body->elements[nparts++];
		span_add(span, s, &v, &h);
		/* No block behind the header, or a malformed preamble: the
		 * batch cannot be read. */
		if (v.mv_size <= sizeof(h)) {
			ret = -1;
			break;
		}
		e->p = (const uint8_t *)v.mv_data + sizeof(h);
		e->len = v.mv_size - sizeof(h);
		if (sblock_strip(e, &raw_total) < 0) {
			ret = -1;
			break;
		}
		if (nparts >= max_entries)
			break;
	}
	mdb_cursor_close(cur);
	if (ret == 0 && nparts > 0 &&
	    sblock_stream_init(&body->stream, body->elements, nparts,
			       raw_total) < 0)
		ret = -1;
	if (ret < 0 || nparts == 0)
		store_body_release(body);
	return ret;
}

void store_body_release(struct store_body *body)
{
	if (body->read != NULL)
		mdb_txn_abort(store_read_txn(body->read));
	body->read = NULL;
}

int store_read_batch(struct store *st, const char *tenant, size_t tlen,
		     uint64_t seq, uint64_t max_seq, uint64_t max_raw,
		     uint64_t max_entries, struct buf *body,
		     struct store_span *span)
{
	struct store_body b;
	size_t len;
	int ret = 0;

	if (store_body_open(st, tenant, tlen, seq, max_seq, max_raw,
			    max_entries, &b, span) < 0)
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
