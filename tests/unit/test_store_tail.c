/*
 * test_store_tail.c - an entry's last partial page kept apart (store.h,
 * "Heads and tails"): entries of sizes around page multiples take
 * floor((len + 16) / page) overflow pages, their rest in the tails
 * database; every lane's block reads back byte for byte through the
 * forwarder's body (one that straddles the cut, one whose preamble does,
 * one wholly in the tail); set-aside keeps values whole; deleting an
 * entry deletes its tail; a format 5 store (whole entries, no tails
 * database) is converted and read as it is.
 *
 * Every test works in its own directory under /tmp and removes it.
 */
#include "storetest.h"
#include "lanes.h"
#include "salvage.h"

#define NLANES 3
static const unsigned lane_of[NLANES] = { 0, 3, 7 };

/* One test entry: three lanes' blocks of literal bytes. */
struct tentry {
	size_t len;                  /* the whole value */
	uint8_t *block[NLANES];      /* owned */
	size_t blen[NLANES];
	uint64_t seq;
};

/* A snappy block of one literal of n bytes (131 <= n < 16384): varint
 * preamble (2 bytes), tag 61 with a 2-byte length, the bytes. n + 5
 * bytes; decodes to n bytes: a WriteRequest holding one field it does
 * not know (15, n - 3 bytes), so that salvage takes it as valid. */
static uint8_t *lit_block(size_t n, unsigned seed)
{
	uint8_t *p = malloc(n + 5);

	if (p == NULL)
		return NULL;
	p[0] = (uint8_t)(n | 0x80);
	p[1] = (uint8_t)(n >> 7);
	p[2] = 61 << 2;
	p[3] = (uint8_t)((n - 1) & 0xff);
	p[4] = (uint8_t)((n - 1) >> 8);
	for (size_t i = 0; i < n; i++)
		p[5 + i] = (uint8_t)(seed * 131 + i * 7 + (i >> 8));
	p[5] = 15 << 3 | 2;
	p[6] = (uint8_t)((n - 3) | 0x80);
	p[7] = (uint8_t)((n - 3) >> 7);
	return p;
}

static void tentry_free(struct tentry *te)
{
	for (int i = 0; i < NLANES; i++)
		free(te->block[i]);
	memset(te, 0, sizeof(*te));
}

/* Stores an entry whose three blocks are b0, b1, b2 bytes long. */
static const char *tentry_put(struct tentry *te, const char *tenant,
			      size_t b0, size_t b1, size_t b2, unsigned seed)
{
	struct store_lane_in in[NLANES];
	struct sblock_part parts[NLANES];
	const size_t b[NLANES] = { b0, b1, b2 };
	struct store_txn *txn;
	struct entry_hdr h;
	uint64_t bytes;
	int rc;

	memset(te, 0, sizeof(*te));
	memset(&h, 0, sizeof(h));
	te->len = sizeof(h) + NLANES * sizeof(struct lane_rec);
	for (int i = 0; i < NLANES; i++) {
		if ((te->block[i] = lit_block(b[i] - 5, seed + i)) == NULL)
			return "out of memory";
		te->blen[i] = b[i];
		te->len += b[i];
		parts[i].p = te->block[i];
		parts[i].len = b[i];
		in[i].lane = lane_of[i];
		in[i].parts = &parts[i];
		in[i].nparts = 1;
		in[i].samples = 10 + i;
		in[i].series = 1;
		h.samples += in[i].samples;
		h.series += 1;
	}
	if ((rc = store_txn_begin(E.st, &txn)) != 0)
		return err("store_txn_begin: %s", err_str(rc));
	rc = store_put_lanes(txn, tenant, strlen(tenant), &h, in, NLANES,
			     &te->seq, &bytes);
	if (rc != 0) {
		store_txn_abort(txn);
		return err("store_put_lanes: %s", err_str(rc));
	}
	if (bytes != te->len)
		return err("value_bytes %llu, want %zu",
			   (unsigned long long)bytes, te->len);
	if ((rc = store_txn_commit(txn)) != 0)
		return err("commit: %s", err_str(rc));
	return NULL;
}

/* Overflow pages of the queue and records of the tails database. */
static const char *db_counts(uint64_t *overflow, uint64_t *tails)
{
	MDB_txn *txn;
	MDB_stat ms;

	if (mdb_txn_begin(E.st->env, NULL, MDB_RDONLY, &txn) != 0)
		return "cannot begin a read transaction";
	if (mdb_stat(txn, E.st->queue, &ms) != 0) {
		mdb_txn_abort(txn);
		return "mdb_stat queue";
	}
	*overflow = ms.ms_overflow_pages;
	if (E.st->tails == 0)
		ms.ms_entries = 0;
	else if (mdb_stat(txn, E.st->tails, &ms) != 0) {
		mdb_txn_abort(txn);
		return "mdb_stat tails";
	}
	*tails = ms.ms_entries;
	mdb_txn_abort(txn);
	return NULL;
}

/* Each lane's body of entry te (alone) is its block, byte for byte. */
static const char *lanes_read_back(const char *tenant, const struct tentry *te)
{
	static uint8_t got[65536];
	struct store_body body;
	struct store_span span;
	const char *e = NULL;

	for (int i = 0; i < NLANES && e == NULL; i++) {
		size_t n;
		if (store_body_open(E.st, tenant, strlen(tenant), lane_of[i],
				    te->seq, te->seq, UINT64_MAX, 256, &body,
				    &span) != 0)
			return err("lane %u: store_body_open failed", lane_of[i]);
		if (span.entries != 1 || span.bytes != te->blen[i])
			e = err("lane %u: %llu entries, %llu bytes", lane_of[i],
				(unsigned long long)span.entries,
				(unsigned long long)span.bytes);
		else if ((n = sblock_stream_read(&body.stream, got,
						 sizeof(got))) != te->blen[i] ||
			 memcmp(got, te->block[i], n) != 0)
			e = err("lane %u: the body is not the block (%zu bytes, "
				"want %zu)", lane_of[i], n, te->blen[i]);
		store_body_release(&body);
	}
	return e;
}

/* Lane lane_of[i]'s body over the n entries te[] (all of the tenant's)
 * is the merge of their blocks (sblock_concat), byte for byte. */
static const char *lane_merged(const char *tenant, const struct tentry *te,
			       size_t n, int i)
{
	struct sblock_part parts[16];
	struct store_body body;
	struct store_span span;
	struct buf want, got;
	const char *e = NULL;

	buf_init(&want, 1u << 24);
	buf_init(&got, 1u << 24);
	for (size_t c = 0; c < n && c < 16; c++) {
		parts[c].p = te[c].block[i];
		parts[c].len = te[c].blen[i];
	}
	if (sblock_concat(&want, parts, n) < 0)
		e = "sblock_concat";
	else if (store_body_open(E.st, tenant, strlen(tenant), lane_of[i], 0,
				 UINT64_MAX, UINT64_MAX, 256, &body, &span) != 0)
		e = "store_body_open";
	else {
		if (span.entries != n)
			e = err("lane %u: %llu entries", lane_of[i],
				(unsigned long long)span.entries);
		else if (buf_reserve(&got, body.stream.len) < 0)
			e = "out of memory";
		else if ((got.len = sblock_stream_read(&body.stream, got.p,
						       body.stream.len)) !=
				 want.len ||
			 memcmp(got.p, want.p, want.len) != 0)
			e = err("lane %u: the merged body differs", lane_of[i]);
		store_body_release(&body);
	}
	buf_free(&want);
	buf_free(&got);
	return e;
}

/* Entries of sizes around page multiples: pages, tails, and bytes. */
static void test_tail_pages(void)
{
	const size_t ps = 4096, hdr = 40 + NLANES * 20;
	/* Lengths of the three blocks, and whether the value is cut. */
	static const struct {
		size_t b0, b1, b2;
		int cut;
		const char *what;
	} cases[] = {
		/* 2 pages + 1000: the cut inside lane 7's block. */
		{ 3000, 4000, 2 * 4096 - 16 + 1000 - 100 - 7000, 1,
		  "cut inside a block" },
		/* lane 7's block starts a byte before the cut. */
		{ 4000, 4075, 1501, 1, "cut inside a preamble" },
		/* lane 7's block wholly in the tail. */
		{ 2000, 1980, 3000, 1, "a block in the tail" },
		/* exactly three pages: nothing past them. */
		{ 4000, 4000, 3 * 4096 - 16 - 100 - 8000, 0, "whole pages" },
		/* one byte past a page. */
		{ 2000, 1000, 4096 - 16 + 1 - 100 - 3000, 1, "one byte past" },
		/* a last page nearly full: kept whole. */
		{ 2000, 3000, 2 * 4096 - 16 - 10 - 100 - 5000, 0,
		  "last page nearly full" },
		/* under a page. */
		{ 1000, 1000, 1000, 0, "under a page" },
	};
	enum { NCASES = sizeof(cases) / sizeof(cases[0]) };
	static struct tentry all[NCASES];
	uint64_t ov0, ov1, tl0, tl1, fp = 0;
	const char *e = NULL;

	for (size_t c = 0; c < NCASES && e == NULL; c++) {
		struct tentry *te = &all[c];
		size_t len, want_pages;

		if ((e = db_counts(&ov0, &tl0)) != NULL ||
		    (e = tentry_put(te, "t", cases[c].b0, cases[c].b1,
				    cases[c].b2, (unsigned)c)) != NULL)
			break;
		len = te->len;
		if (len != hdr + cases[c].b0 + cases[c].b1 + cases[c].b2 ||
		    (e = db_counts(&ov1, &tl1)) != NULL) {
			e = e ? e : "value length";
			break;
		}
		/* Cut: whole pages exactly filled; else LMDB's own count. */
		want_pages = cases[c].cut ? (len + 16) / ps
					  : (len + 16 + ps - 1) / ps;
		if (ov1 - ov0 != want_pages || (tl1 > tl0) != cases[c].cut)
			e = err("%s: %zu bytes took %llu pages (want %zu), %llu "
				"tail records", cases[c].what, len,
				(unsigned long long)(ov1 - ov0), want_pages,
				(unsigned long long)(tl1 - tl0));
		/* What admission and eviction count: the pages and the tail's
		 * bytes, not a page more. */
		else if (cases[c].cut &&
			 ((fp = store_value_footprint(E.st, 1, len)) < len + 16 ||
			  fp >= (want_pages + 1) * ps))
			e = err("%s: footprint %llu of %zu bytes in %zu pages",
				cases[c].what, (unsigned long long)fp, len,
				want_pages);
		else
			e = lanes_read_back("t", te);
	}
	/* Each lane's body over them all: the blocks merged, as stored. */
	for (int i = 0; i < NLANES && e == NULL; i++)
		e = lane_merged("t", all, NCASES, i);
	for (size_t c = 0; c < NCASES; c++)
		tentry_free(&all[c]);
	CHECK_NOERR(e);
}

/* Acks every lane of entry seq; the entry is deleted. */
static const char *ack_all(const char *tenant, uint64_t seq, uint64_t *gone_n,
			   uint64_t *gone_bytes)
{
	struct store_span gone, next;
	struct store_txn *txn;
	uint64_t delivered;
	int rc = 0;

	memset(&gone, 0, sizeof(gone));
	if ((rc = store_txn_begin(E.st, &txn)) != 0)
		return err("store_txn_begin: %s", err_str(rc));
	for (int i = 0; i < NLANES && rc == 0; i++)
		rc = store_lane_ack(txn, tenant, strlen(tenant), lane_of[i], seq,
				    seq, &gone, &next, &delivered);
	if (rc != 0) {
		store_txn_abort(txn);
		return err("store_lane_ack: %s", err_str(rc));
	}
	if ((rc = store_txn_commit(txn)) != 0)
		return err("commit: %s", err_str(rc));
	*gone_n = gone.entries;
	*gone_bytes = gone.bytes;
	return NULL;
}

/* The set-aside value of seq: its queue value (whole) into out. */
static const char *setaside_entry(const char *tenant, uint64_t seq,
				  uint8_t *out, size_t cap, size_t *n)
{
	uint8_t key[STORE_KEY_MAX];
	struct setaside_hdr sh;
	MDB_val k, v;
	MDB_txn *txn;
	const char *e = NULL;

	k.mv_size = store_key(key, tenant, strlen(tenant), seq);
	k.mv_data = key;
	if (mdb_txn_begin(E.st->env, NULL, MDB_RDONLY, &txn) != 0)
		return "cannot begin a read transaction";
	if (mdb_get(txn, E.st->setaside, &k, &v) != 0 || v.mv_size < sizeof(sh))
		e = "no set-aside value";
	if (e == NULL) {
		memcpy(&sh, v.mv_data, sizeof(sh));
		*n = v.mv_size - sizeof(sh) - sh.reason_len;
		if (*n > cap)
			e = "set-aside value too large";
		else
			memcpy(out, (uint8_t *)v.mv_data + sizeof(sh) +
			       sh.reason_len, *n);
	}
	mdb_txn_abort(txn);
	return e;
}

/* Deletion, set-aside and the queue's byte counts with tails. */
static void test_tail_lifecycle(void)
{
	static uint8_t sa[65536];
	struct store_span gone, next;
	struct store_txn *txn;
	struct queue_tenant *qt;
	struct lane_table lt;
	struct entry_hdr h;
	struct tentry a, b, c;
	uint64_t ov, tl, n, bytes;
	size_t salen;
	MDB_val sv;
	const char *e;

	CHECK_NOERR(tentry_put(&a, "t", 3000, 4000, 2176, 1));
	CHECK_NOERR(tentry_put(&b, "t", 4000, 4075, 1501, 2));
	CHECK_NOERR(tentry_put(&c, "t", 2000, 1980, 3000, 3));
	CHECK_NOERR(db_counts(&ov, &tl));
	CHECK(tl >= 3);
	/* The queue counts whole values. */
	queue_init(&E.q);
	E.q_init = 1;
	CHECK_EQ_INT(store_load_queue(E.st, &E.q), 0);
	qt = queue_tenant_get(&E.q, "t", 1, 0);
	CHECK(qt != NULL);
	CHECK_EQ_INT(qt->bytes, a.len + b.len + c.len);
	/* Delivered by every lane: a and its tail go. */
	e = ack_all("t", a.seq, &n, &bytes);
	CHECK_NOERR(e);
	CHECK_EQ_INT(n, 1);
	CHECK_EQ_INT(bytes, a.len);
	/* Lane 7's part of b (straddling the cut) set aside alone. */
	CHECK_EQ_INT(store_txn_begin(E.st, &txn), 0);
	CHECK_EQ_INT(store_set_aside(txn, "t", 1, 7, b.seq, 400, "bad", &gone,
				     &next), 0);
	CHECK_EQ_INT(store_txn_commit(txn), 0);
	CHECK_NOERR(setaside_entry("t", b.seq, sa, sizeof(sa), &salen));
	sv.mv_data = sa;
	sv.mv_size = salen;
	CHECK_EQ_INT(store_entry_read(&sv, &h, &lt), 0);
	CHECK_EQ_INT(lt.n, 1);
	CHECK_EQ_INT(lt.part[0].len, b.blen[2]);
	CHECK(memcmp(lt.part[0].block, b.block[2], b.blen[2]) == 0);
	/* c set aside whole: the value as it was, whole, flag clear. */
	memset(&gone, 0, sizeof(gone));
	CHECK_EQ_INT(store_txn_begin(E.st, &txn), 0);
	CHECK_EQ_INT(store_set_aside(txn, "t", 1, -1, c.seq, 400, "bad", &gone,
				     &next), 0);
	CHECK_EQ_INT(store_txn_commit(txn), 0);
	CHECK_EQ_INT(gone.bytes, c.len);
	CHECK_NOERR(setaside_entry("t", c.seq, sa, sizeof(sa), &salen));
	CHECK_EQ_INT(salen, c.len);
	CHECK_EQ_INT(sa[1] & STORE_ENTRY_TAIL, 0);
	sv.mv_data = sa;
	sv.mv_size = salen;
	CHECK_EQ_INT(store_entry_check(&sv, &h), 0);
	CHECK_EQ_INT(store_entry_read(&sv, &h, &lt), 0);
	for (int i = 0; i < NLANES; i++)
		CHECK(lt.part[i].len == c.blen[i] &&
		      memcmp(lt.part[i].block, c.block[i], c.blen[i]) == 0);
	/* b deleted: no tail record is left behind. */
	memset(&gone, 0, sizeof(gone));
	CHECK_EQ_INT(store_txn_begin(E.st, &txn), 0);
	CHECK_EQ_INT(store_delete_range(txn, "t", 1, 0, UINT64_MAX, &gone,
					&next), 0);
	CHECK_EQ_INT(store_txn_commit(txn), 0);
	CHECK_EQ_INT(gone.entries, 1);
	CHECK_EQ_INT(gone.bytes, b.len);
	CHECK_NOERR(db_counts(&ov, &tl));
	CHECK_EQ_INT(ov, 0);
	CHECK_EQ_INT(tl, 0);
	tentry_free(&a);
	tentry_free(&b);
	tentry_free(&c);
}

/* A store of format 5 (entries whole) is read as it is, then converted:
 * format 6, the tails database made, new entries cut. */
static void test_format_5_read(void)
{
	static uint8_t whole[65536];
	struct tentry a, b;
	struct store_txn *txn;
	uint64_t seq, ov0, ov1, tl;
	char why[512];
	MDB_val k = { 6, "format" }, v;
	MDB_txn *rt;
	uint32_t fmt = 0;

	/* An entry as format 5 wrote it: one value, whole. */
	CHECK_NOERR(tentry_put(&a, "t", 3000, 4000, 2176, 1));
	{
		MDB_val h, w;
		uint8_t key[STORE_KEY_MAX];
		CHECK(mdb_txn_begin(E.st->env, NULL, MDB_RDONLY, &rt) == 0);
		k.mv_size = store_key(key, "t", 1, a.seq);
		k.mv_data = key;
		CHECK(mdb_get(rt, E.st->queue, &k, &h) == 0);
		CHECK(store_value_whole(rt, E.st, "t", 1, a.seq, &h, &w) == 0);
		CHECK(w.mv_data != h.mv_data && w.mv_size == a.len);
		memcpy(whole, w.mv_data, w.mv_size);
		free(w.mv_data);
		mdb_txn_abort(rt);
		k.mv_size = 6;
		k.mv_data = "format";
	}
	CHECK_EQ_INT(store_txn_begin(E.st, &txn), 0);
	CHECK_EQ_INT(store_delete_range(txn, "t", 1, 0, UINT64_MAX,
					&(struct store_span){0},
					&(struct store_span){0}), 0);
	CHECK_EQ_INT(store_txn_commit(txn), 0);
	{
		uint8_t key[STORE_KEY_MAX];
		MDB_val kk, vv = { a.len, whole };
		MDB_txn *wt;
		kk.mv_size = store_key(key, "t", 1, a.seq);
		kk.mv_data = key;
		CHECK(mdb_txn_begin(E.st->env, NULL, 0, &wt) == 0);
		CHECK(mdb_put(wt, E.st->queue, &kk, &vv, 0) == 0);
		CHECK(mdb_txn_commit(wt) == 0);
	}
	store_close(E.st);
	E.st_open = 0;
	CHECK_NOERR(store_older_format(5, "tails"));
	/* A reader takes it as it is. */
	CHECK((E.st = store_open_readonly(E.path, why, sizeof(why))) != NULL);
	E.st_open = 1;
	CHECK_EQ_INT(E.st->tails, 0);
	CHECK_NOERR(lanes_read_back("t", &a));
	store_close(E.st);
	E.st_open = 0;
	/* Opened writable: converted. */
	CHECK((E.st = store_open(E.path, 64 * MIB, why, sizeof(why))) != NULL);
	E.st_open = 1;
	CHECK(E.st->tails != 0);
	CHECK(mdb_txn_begin(E.st->env, NULL, MDB_RDONLY, &rt) == 0);
	if (mdb_get(rt, E.st->meta, &k, &v) == 0 && v.mv_size == 4)
		memcpy(&fmt, v.mv_data, 4);
	mdb_txn_abort(rt);
	CHECK_EQ_INT(fmt, STORE_FORMAT);
	CHECK_EQ_INT(STORE_FORMAT, 6);
	CHECK_NOERR(lanes_read_back("t", &a));
	/* Stored whole, it is deleted whole. */
	CHECK_NOERR(db_counts(&ov0, &tl));
	CHECK_EQ_INT(ov0, (a.len + 16 + 4095) / 4096);
	/* A new entry gets a tail. */
	CHECK_NOERR(tentry_put(&b, "t", 3000, 4000, 2176, 2));
	CHECK_NOERR(db_counts(&ov1, &tl));
	CHECK_EQ_INT(ov1 - ov0, (b.len + 16) / 4096);
	CHECK(tl > 0);
	CHECK_NOERR(lanes_read_back("t", &b));
	CHECK_NOERR(ack_all("t", a.seq, &seq, &ov0));
	CHECK_EQ_INT(seq, 1);
	CHECK_EQ_INT(ov0, a.len);
	tentry_free(&a);
	tentry_free(&b);
}

static int count_item(void *arg, const struct setaside_item *it)
{
	(void)it;
	(*(uint64_t *)arg)++;
	return 0;
}

/* The tenant's set-aside entries, as listed. */
static uint64_t setaside_count(const char *tenant)
{
	struct setaside_filter f;
	struct store_pos pos;
	uint64_t n = 0;

	memset(&f, 0, sizeof(f));
	memset(&pos, 0, sizeof(pos));
	f.tlen = strlen(tenant);
	memcpy(f.tenant, tenant, f.tlen);
	if (store_setaside_page(E.st, &f, &pos, 100, count_item, &n) < 0)
		return UINT64_MAX;
	return n;
}

/* Damage: the tail of an entry is lost. A lane whose part lies in the
 * head sets that part aside; one whose part passes the head sets the
 * head aside as it is (never "gone already", which would ack the lane
 * with nothing kept). */
static void test_tail_missing_set_aside(void)
{
	static uint8_t sa[65536];
	struct store_span gone, next;
	struct store_txn *txn;
	struct lane_table lt;
	struct entry_hdr h;
	struct tentry a;
	uint64_t ov, tl;
	size_t salen, head = 2 * 4096 - 16;
	MDB_val sv;

	/* Lane 7's block straddles the cut (two pages); lane 3's is in the
	 * head. */
	CHECK_NOERR(tentry_put(&a, "t", 3000, 4000, 2176, 1));
	CHECK_EQ_INT(store_txn_begin(E.st, &txn), 0);
	CHECK_EQ_INT(store_tail_del(txn->txn, E.st, "t", 1, a.seq), 0);
	CHECK_EQ_INT(store_txn_commit(txn), 0);
	CHECK_NOERR(db_counts(&ov, &tl));
	CHECK_EQ_INT(tl, 0);
	/* Lane 3: its part, as usual. */
	CHECK_EQ_INT(store_txn_begin(E.st, &txn), 0);
	CHECK_EQ_INT(store_set_aside(txn, "t", 1, 3, a.seq, 0, "malformed",
				     &gone, &next), 0);
	CHECK_EQ_INT(store_txn_commit(txn), 0);
	CHECK_NOERR(setaside_entry("t", a.seq, sa, sizeof(sa), &salen));
	sv.mv_data = sa;
	sv.mv_size = salen;
	CHECK_EQ_INT(store_entry_read(&sv, &h, &lt), 0);
	CHECK(lt.n == 1 && lt.part[0].lane == 3 && lt.part[0].len == a.blen[1] &&
	      memcmp(lt.part[0].block, a.block[1], a.blen[1]) == 0);
	/* Lane 7: the head, as it is (lane 3's part is in it too). */
	CHECK_EQ_INT(store_txn_begin(E.st, &txn), 0);
	CHECK_EQ_INT(store_set_aside(txn, "t", 1, 7, a.seq, 0, "malformed",
				     &gone, &next), 0);
	CHECK_EQ_INT(store_txn_commit(txn), 0);
	CHECK_NOERR(setaside_entry("t", a.seq, sa, sizeof(sa), &salen));
	CHECK_EQ_INT(salen, head);
	CHECK_EQ_INT(setaside_count("t"), 1);
	/* Lane 0 again: there already. */
	CHECK_EQ_INT(store_txn_begin(E.st, &txn), 0);
	CHECK_EQ_INT(store_set_aside(txn, "t", 1, 0, a.seq, 0, "malformed",
				     &gone, &next), 0);
	CHECK_EQ_INT(store_txn_commit(txn), 0);
	CHECK_NOERR(setaside_entry("t", a.seq, sa, sizeof(sa), &salen));
	CHECK_EQ_INT(salen, head);
	tentry_free(&a);
}

/* A tail whose first record is lost (damage) leaves none of its other
 * records behind when its entry is deleted. */
static void test_tail_del_after_loss(void)
{
	uint64_t ov, tl, gone_n, gone_bytes;
	struct store_txn *txn;
	struct tentry a;
	uint8_t key[9 + 1];
	MDB_val k;

	/* About 3 KB past two pages: a tail of two records or more. */
	CHECK_NOERR(tentry_put(&a, "t", 3000, 4000, 4100, 2));
	CHECK_NOERR(db_counts(&ov, &tl));
	CHECK(tl >= 2);
	for (int i = 0; i < 8; i++)
		key[i] = (uint8_t)(a.seq >> (56 - 8 * i));
	key[8] = 0;
	key[9] = 't';
	k.mv_size = sizeof(key);
	k.mv_data = key;
	CHECK_EQ_INT(store_txn_begin(E.st, &txn), 0);
	CHECK_EQ_INT(mdb_del(txn->txn, E.st->tails, &k, NULL), 0);
	CHECK_EQ_INT(store_txn_commit(txn), 0);
	CHECK_NOERR(ack_all("t", a.seq, &gone_n, &gone_bytes));
	CHECK_EQ_INT(gone_n, 1);
	CHECK_NOERR(db_counts(&ov, &tl));
	CHECK_EQ_INT(tl, 0);
	tentry_free(&a);
}

/* A tail that cannot be read now (here: a read of the tails database
 * fails, not "not found") is no damage: store_body_open fails (-1, the
 * job is retried), it does not offer the part to be set aside (1). */
static void test_tail_read_fails(void)
{
	struct store_body body;
	struct store_span span;
	struct tentry a, b;
	MDB_dbi tails = E.st->tails;

	/* Lane 7's block straddles the cut; in b its preamble does. */
	CHECK_NOERR(tentry_put(&a, "t", 3000, 4000, 2176, 1));
	CHECK_NOERR(tentry_put(&b, "u", 4000, 4075, 1501, 2));
	E.st->tails = 250;   /* no such database: mdb_get says EINVAL */
	CHECK_EQ_INT(store_body_open(E.st, "t", 1, 7, a.seq, a.seq, UINT64_MAX,
				     256, &body, &span), -1);
	CHECK_EQ_INT(store_body_open(E.st, "u", 1, 7, b.seq, b.seq, UINT64_MAX,
				     256, &body, &span), -1);
	E.st->tails = tails;
	CHECK_NOERR(lanes_read_back("t", &a));
	CHECK_NOERR(lanes_read_back("u", &b));
	tentry_free(&a);
	tentry_free(&b);
}

/* relay salvage joins each head with its tail records, looked up in the
 * old store's tails database (a tree of more than one level here); an
 * entry whose tail is lost counts invalid, the others are copied whole
 * and read back as they were. */
static void test_salvage_joins_tails(void)
{
	enum { N = 12 };
	static struct tentry te[N];
	struct salvage_report r;
	struct store_txn *txn;
	struct tentry bad;
	MDB_txn *rt;
	MDB_stat ms;
	char to[160], why[512];
	const char *e = NULL;

	for (unsigned c = 0; c < N && e == NULL; c++)
		e = tentry_put(&te[c], "t", 3000 + 50 * c, 4000, 1500 + 60 * c, c);
	CHECK_NOERR(e);
	CHECK_NOERR(tentry_put(&bad, "u", 3000, 4000, 2176, 99));
	CHECK_EQ_INT(store_txn_begin(E.st, &txn), 0);
	CHECK_EQ_INT(store_tail_del(txn->txn, E.st, "u", 1, bad.seq), 0);
	CHECK_EQ_INT(store_txn_commit(txn), 0);
	CHECK(mdb_txn_begin(E.st->env, NULL, MDB_RDONLY, &rt) == 0);
	CHECK(mdb_stat(rt, E.st->tails, &ms) == 0);
	mdb_txn_abort(rt);
	CHECK(ms.ms_depth >= 2);
	store_close(E.st);
	E.st_open = 0;
	snprintf(to, sizeof(to), "%s/salvaged", E.dir);
	CHECK_EQ_INT(salvage_run(E.path, to, 64 * MIB, &r, why, sizeof(why)), 0);
	CHECK_EQ_INT(r.queue.copied, N);
	CHECK_EQ_INT(r.queue.invalid, 1);
	CHECK((E.st = store_open(to, 64 * MIB, why, sizeof(why))) != NULL);
	E.st_open = 1;
	for (int i = 0; i < NLANES && e == NULL; i++)
		e = lane_merged("t", te, N, i);
	for (unsigned c = 0; c < N; c++)
		tentry_free(&te[c]);
	tentry_free(&bad);
	CHECK_NOERR(e);
}

/* A value with STORE_ENTRY_TAIL set whose table claims more than it
 * holds (a head set aside without its tail, or damage): read as a whole
 * value it is unreadable, no block pointer past its end; only a queue
 * reader (store_head_read) takes it for a head. */
static void test_flagged_short_value(void)
{
	const size_t n = 4096, claimed = 4096 + 500;
	struct entry_hdr h;
	struct lane_rec r;
	struct lane_table lt;
	uint8_t *p = calloc(1, n);   /* exactly n: a read past it is seen */
	MDB_val v = { n, p };

	CHECK(p != NULL);
	memset(&h, 0, sizeof(h));
	h.version = 2;
	h.flags = STORE_ENTRY_TAIL;
	h.nlanes = 1;
	memset(&r, 0, sizeof(r));
	r.block_len = (uint32_t)(claimed - sizeof(h) - sizeof(r));
	memcpy(p, &h, sizeof(h));
	memcpy(p + sizeof(h), &r, sizeof(r));
	CHECK_EQ_INT(store_value_len(&v), claimed);
	CHECK_EQ_INT(store_entry_read(&v, &h, &lt), -1);
	CHECK_EQ_INT(store_entry_check(&v, &h), -1);
	CHECK_EQ_INT(store_head_read(&v, &h, &lt), 0);
	CHECK_EQ_INT(lt.part[0].len, r.block_len);
	free(p);
}

int main(void)
{
	/* The cases are sized for 4 KiB pages (the store's are the host's). */
	long page = sysconf(_SC_PAGESIZE);

#define RUN_STORE(fn)                                                         \
	do {                                                                  \
		const char *e_;                                               \
		if (page != 4096) {                                           \
			printf("ok - %s # SKIP page size %ld, not 4096\n",    \
			       #fn, page);                                    \
			break;                                                \
		}                                                             \
		if ((e_ = store_direct()) != NULL) {                          \
			fprintf(stderr, "setup: %s\n", e_);                   \
			return 1;                                             \
		}                                                             \
		RUN(fn);                                                      \
		env_cleanup();                                                \
	} while (0)
	RUN_STORE(test_tail_pages);
	RUN_STORE(test_tail_lifecycle);
	RUN_STORE(test_format_5_read);
	RUN(test_flagged_short_value);
	RUN_STORE(test_tail_missing_set_aside);
	RUN_STORE(test_tail_read_fails);
	RUN_STORE(test_tail_del_after_loss);
	RUN_STORE(test_salvage_joins_tails);
	return unit_done();
}
