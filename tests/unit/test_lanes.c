/*
 * test_lanes.c - delivery lanes in the store: the entry format of version
 * 2 (written by store_put_lanes, read back by lanes_parse, malformed lane
 * tables refused), a lane's request body (its parts of many entries,
 * others passed over), the lanes' cursors and the deletion of an entry
 * once every lane with a part in it is through it, a lane's part set
 * aside alone, and the conversion of a format 3 store whose entries of
 * version 1 go first, by lane 0 alone.
 *
 * Every test works in its own directory under /tmp and removes it.
 */
#include "storetest.h"
#include "lanes.h"

/* Writes one entry whose lane lanes[i] holds fixture fxs[i] (n lanes, in
 * ascending order); its sequence number in *seq. */
static const char *put_lanes(const char *tenant, const unsigned *lanes,
			     const int *fxs, size_t n, uint64_t *seq)
{
	struct store_lane_in in[LANES];
	struct sblock_part parts[LANES];
	struct store_txn *txn;
	struct entry_hdr h;
	uint64_t bytes;
	int rc;

	memset(&h, 0, sizeof(h));
	for (size_t i = 0; i < n; i++) {
		parts[i].p = fx[fxs[i]].z;
		parts[i].len = fx[fxs[i]].zlen;
		in[i].lane = lanes[i];
		in[i].parts = &parts[i];
		in[i].nparts = 1;
		in[i].samples = (uint32_t)fx[fxs[i]].counts.samples;
		in[i].series = (uint32_t)fx[fxs[i]].counts.series;
		h.samples += in[i].samples;
		h.series += in[i].series;
	}
	if ((rc = store_txn_begin(E.st, &txn)) != 0)
		return err("store_txn_begin: %s", err_str(rc));
	rc = store_put_lanes(txn, tenant, strlen(tenant), &h, in, n, seq, &bytes);
	if (rc != 0) {
		store_txn_abort(txn);
		return err("store_put_lanes: %s", err_str(rc));
	}
	if ((rc = store_txn_commit(txn)) != 0)
		return err("commit: %s", err_str(rc));
	return NULL;
}

/* The stored value of (tenant, seq), copied into out (cap bytes). */
static size_t get_value(const char *tenant, uint64_t seq, uint8_t *out,
			size_t cap)
{
	uint8_t key[STORE_KEY_MAX];
	MDB_val k, v, h;
	MDB_txn *txn;
	size_t n = 0;

	k.mv_size = store_key(key, tenant, strlen(tenant), seq);
	k.mv_data = key;
	if (mdb_txn_begin(E.st->env, NULL, MDB_RDONLY, &txn) != 0)
		return 0;
	/* Whole: a head joined with its tail (store.h). */
	if (mdb_get(txn, E.st->queue, &k, &h) == 0 &&
	    store_value_whole(txn, E.st, tenant, strlen(tenant), seq, &h,
			      &v) == 0) {
		if (v.mv_size <= cap) {
			memcpy(out, v.mv_data, v.mv_size);
			n = v.mv_size;
		}
		if (v.mv_data != h.mv_data)
			free(v.mv_data);
	}
	mdb_txn_abort(txn);
	return n;
}

/* Parses a value as the store does. */
static int parse(const uint8_t *v, size_t n, struct lane_table *t)
{
	struct entry_hdr h;

	if (n < sizeof(h))
		return -1;
	memcpy(&h, v, sizeof(h));
	return lanes_parse(v, n, h.version, h.nlanes, h.raw_len, h.samples,
			   h.series, t);
}

static uint8_t val[1 << 20], bad[1 << 20];

/* Version 2 as written: header, table, blocks; read back the same; every
 * kind of damage to the table refused. */
static void test_format_v2(void)
{
	static const unsigned lanes[] = { 1, 3, 7 };
	static const int fxs[] = { 0, 1, 2 };
	struct lane_table t;
	struct entry_hdr h;
	struct lane_rec r;
	uint64_t seq;
	size_t n;

	CHECK_NOERR(store_direct());
	CHECK_NOERR(put_lanes("t", lanes, fxs, 3, &seq));
	n = get_value("t", seq, val, sizeof(val));
	CHECK(n > 0);
	memcpy(&h, val, sizeof(h));
	CHECK_EQ_INT(h.version, 2);
	CHECK_EQ_INT(STORE_ENTRY_VERSION, 2);
	CHECK_EQ_INT(h.nlanes, 3);
	CHECK_EQ_INT(h.raw_len, fx[0].rawlen + fx[1].rawlen + fx[2].rawlen);
	CHECK_EQ_INT(n, sizeof(h) + 3 * sizeof(r) + fx[0].zlen + fx[1].zlen +
			fx[2].zlen);
	CHECK_EQ_INT(parse(val, n, &t), 0);
	CHECK_EQ_INT(t.n, 3);
	CHECK_EQ_INT(t.mask, (1u << 1) | (1u << 3) | (1u << 7));
	for (unsigned i = 0; i < 3; i++) {
		CHECK_EQ_INT(t.part[i].lane, lanes[i]);
		CHECK_EQ_INT(t.part[i].len, fx[fxs[i]].zlen);
		CHECK(memcmp(t.part[i].block, fx[fxs[i]].z, fx[fxs[i]].zlen) == 0);
		CHECK_EQ_INT(t.part[i].samples, fx[fxs[i]].counts.samples);
	}
	CHECK(lanes_find(&t, 3) == &t.part[1]);
	CHECK(lanes_find(&t, 2) == NULL);

	/* Damage, one kind at a time, each refused. */
#define DAMAGED(what, edit)                                                 \
	do {                                                                \
		size_t bn = n;                                              \
		memcpy(bad, val, n);                                        \
		edit;                                                       \
		if (parse(bad, bn, &t) != -1)                               \
			CHECK(!"accepted: " what);                          \
	} while (0)
#define REC(i) (bad + sizeof(h) + (i) * sizeof(r))
	DAMAGED("no lanes", { ((struct entry_hdr *)(void *)bad)->nlanes = 0; });
	DAMAGED("nine lanes", { ((struct entry_hdr *)(void *)bad)->nlanes = 9; });
	DAMAGED("a table past the value", {
		((struct entry_hdr *)(void *)bad)->nlanes = 8; bn = sizeof(h) + 100; });
	DAMAGED("lane 8", { REC(2)[0] = 8; });
	DAMAGED("lanes not ascending", { REC(1)[0] = 1; });
	DAMAGED("a zero byte set", { REC(0)[2] = 1; });
	DAMAGED("a block past the end", { uint32_t x = 1u << 30;
		memcpy(REC(0) + 4, &x, 4); });
	DAMAGED("an empty block", { uint32_t x = 0; memcpy(REC(0) + 4, &x, 4); });
	DAMAGED("raw_len not the block's", { uint32_t x;
		memcpy(&x, REC(1) + 8, 4); x++; memcpy(REC(1) + 8, &x, 4); });
	DAMAGED("samples not the header's", { uint32_t x;
		memcpy(&x, REC(1) + 12, 4); x++; memcpy(REC(1) + 12, &x, 4); });
	DAMAGED("series not the header's", { uint32_t x;
		memcpy(&x, REC(2) + 16, 4); x++; memcpy(REC(2) + 16, &x, 4); });
	DAMAGED("a byte past the blocks", { bad[n] = 0; bn = n + 1; });
	DAMAGED("a block cut short", { bn = n - 1; });
	DAMAGED("version 3", { bad[0] = 3; });
#undef REC
#undef DAMAGED
	/* Version 1: one part in lane 0, the whole block. */
	memset(&h, 0, sizeof(h));
	h.version = 1;
	h.raw_len = (uint32_t)fx[4].rawlen;
	h.samples = (uint32_t)fx[4].counts.samples;
	memcpy(bad, &h, sizeof(h));
	memcpy(bad + sizeof(h), fx[4].z, fx[4].zlen);
	CHECK_EQ_INT(parse(bad, sizeof(h) + fx[4].zlen, &t), 0);
	CHECK_EQ_INT(t.n, 1);
	CHECK_EQ_INT(t.mask, 1);
	CHECK_EQ_INT(t.part[0].len, fx[4].zlen);
	((struct entry_hdr *)(void *)bad)->nlanes = 1;
	CHECK_EQ_INT(parse(bad, sizeof(h) + fx[4].zlen, &t), -1);
}

/* A lane's body merges its parts of many entries and passes over the
 * entries without one; it stops at max_raw. */
static void test_lane_body(void)
{
	static const unsigned l13[] = { 1, 3 }, l3[] = { 3 }, l35[] = { 3, 5 };
	static const int f01[] = { 0, 1 }, f2[] = { 2 }, f34[] = { 3, 4 };
	struct store_body body;
	struct store_span span;
	struct buf out;
	uint64_t s1, s2, s3;

	CHECK_NOERR(store_direct());
	CHECK_NOERR(put_lanes("t", l13, f01, 2, &s1));
	CHECK_NOERR(put_lanes("t", l3, f2, 1, &s2));
	CHECK_NOERR(put_lanes("t", l35, f34, 2, &s3));
	/* Lane 3: fixtures 1, 2, 3 in one block. */
	buf_init(&out, 1u << 30);
	CHECK_EQ_INT(store_read_batch(E.st, "t", 1, 3, 0, UINT64_MAX, UINT64_MAX,
				      256, &out, &span), 0);
	CHECK_EQ_INT(span.entries, 3);
	CHECK_EQ_INT(span.first_seq, s1);
	CHECK_EQ_INT(span.last_seq, s3);
	CHECK_EQ_INT(span.samples, fx[1].counts.samples + fx[2].counts.samples +
				   fx[3].counts.samples);
	{
		static const int want[] = { 1, 2, 3 };
		CHECK_NOERR(block_is(out.p, out.len, want, 3));
	}
	buf_free(&out);
	/* Lane 5: the first two passed over, the last taken. */
	CHECK_EQ_INT(store_body_open(E.st, "t", 1, 5, 0, UINT64_MAX, UINT64_MAX,
				     256, &body, &span), 0);
	store_body_release(&body);
	CHECK_EQ_INT(span.entries, 1);
	CHECK_EQ_INT(span.first_seq, s3);
	CHECK_EQ_INT(span.samples, fx[4].counts.samples);
	/* Lane 1: only the first; the body covers the others too. */
	CHECK_EQ_INT(store_body_open(E.st, "t", 1, 1, 0, UINT64_MAX, UINT64_MAX,
				     256, &body, &span), 0);
	store_body_release(&body);
	CHECK_EQ_INT(span.entries, 1);
	CHECK_EQ_INT(span.last_seq, s3);
	/* Lane 0: nothing, the lane is through all three. */
	CHECK_EQ_INT(store_body_open(E.st, "t", 1, 0, 0, UINT64_MAX, UINT64_MAX,
				     256, &body, &span), 0);
	CHECK_EQ_INT(span.entries, 0);
	CHECK_EQ_INT(span.last_seq, s3);
	CHECK(body.read == NULL);
	/* Lane 3 within fixture 1's size: one part, the body ends before
	 * the next part. */
	CHECK_EQ_INT(store_body_open(E.st, "t", 1, 3, 0, UINT64_MAX,
				     fx[1].rawlen, 256, &body, &span), 0);
	store_body_release(&body);
	CHECK_EQ_INT(span.entries, 1);
	CHECK_EQ_INT(span.last_seq, s1);
}

/* Acks lane through last (first..last) in a transaction of its own. */
static const char *ack(unsigned lane, uint64_t first, uint64_t last,
		       struct store_span *gone, uint64_t *delivered)
{
	struct store_span next;
	struct store_txn *txn;
	int rc;

	memset(gone, 0, sizeof(*gone));
	if ((rc = store_txn_begin(E.st, &txn)) != 0)
		return err("store_txn_begin: %s", err_str(rc));
	rc = store_lane_ack(txn, "t", 1, lane, first, last, gone, &next,
			    delivered);
	if (rc != 0) {
		store_txn_abort(txn);
		return err("store_lane_ack: %s", err_str(rc));
	}
	return (rc = store_txn_commit(txn)) == 0 ? NULL :
	       err("commit: %s", err_str(rc));
}

/* The cursors move forward only, persist, and an entry goes once every
 * lane with a part in it is through it. */
static void test_lane_cursors(void)
{
	static const unsigned l13[] = { 1, 3 }, l3[] = { 3 };
	static const int f01[] = { 0, 1 }, f2[] = { 2 };
	uint64_t through[STORE_LANES], s1, s2, delivered;
	struct store_span gone;
	char why[512];

	CHECK_NOERR(store_direct());
	CHECK_NOERR(put_lanes("t", l13, f01, 2, &s1));
	CHECK_NOERR(put_lanes("t", l3, f2, 1, &s2));
	/* Lane 3 delivered both: entry 2 (lane 3 only) goes, entry 1 waits
	 * for lane 1. */
	CHECK_NOERR(ack(3, s1, s2, &gone, &delivered));
	CHECK_EQ_INT(gone.entries, 1);
	CHECK_EQ_INT(gone.first_seq, s2);
	CHECK_EQ_INT(delivered, fx[1].counts.samples + fx[2].counts.samples);
	/* Again (a resend after a crash): nothing more counted. */
	CHECK_NOERR(ack(3, s1, s2, &gone, &delivered));
	CHECK_EQ_INT(gone.entries, 0);
	CHECK_EQ_INT(delivered, 0);
	/* A cursor never goes back. */
	CHECK_NOERR(ack(3, s1, s1, &gone, &delivered));
	CHECK_EQ_INT(store_lane_cursors(E.st, "t", 1, through), 0);
	CHECK_EQ_INT(through[3], s2);
	CHECK_EQ_INT(through[1], 0);
	/* They survive a restart. */
	store_close(E.st);
	E.st_open = 0;
	CHECK((E.st = store_open(E.path, 64 * MIB, why, sizeof(why))) != NULL);
	E.st_open = 1;
	CHECK_EQ_INT(store_lane_cursors(E.st, "t", 1, through), 0);
	CHECK_EQ_INT(through[3], s2);
	/* The queue finds them: lane 3 goes on after s2. */
	{
		struct queue_tenant *qt;
		queue_init(&E.q);
		E.q_init = 1;
		CHECK_EQ_INT(store_load_queue(E.st, &E.q), 0);
		qt = queue_tenant_get(&E.q, "t", 1, 0);
		CHECK(qt != NULL);
		CHECK_EQ_INT(qt->lane[3].send_seq, s2 + 1);
		CHECK_EQ_INT(qt->lane[1].send_seq, s1);
		CHECK_EQ_INT(qt->entries, 1);
	}
	/* Lane 1 through s1: entry 1 goes too. */
	CHECK_NOERR(ack(1, s1, s1, &gone, &delivered));
	CHECK_EQ_INT(gone.entries, 1);
	CHECK_EQ_INT(delivered, fx[0].counts.samples);
}

/* Acks with what the body saw: the same deletions and counts as reading
 * each entry, and what the body saw is what decides. */
static void test_lane_ack_seen(void)
{
	static const unsigned l13[] = { 1, 3 }, l3[] = { 3 };
	static const int f01[] = { 0, 1 }, f2[] = { 2 };
	static struct store_body body;
	struct store_span span, gone, next;
	struct store_seen lie;
	struct store_txn *txn;
	uint64_t s1, s2, s3, delivered = 0, rest = 1;

	CHECK_NOERR(store_direct());
	CHECK_NOERR(put_lanes("t", l13, f01, 2, &s1));
	CHECK_NOERR(put_lanes("t", l3, f2, 1, &s2));
	CHECK_NOERR(put_lanes("t", l13, f01, 2, &s3));
	/* Lane 3's body sees all three, with their lanes and its samples. */
	CHECK_EQ_INT(store_body_open(E.st, "t", 1, 3, 0, UINT64_MAX, UINT64_MAX,
				     256, &body, &span), 0);
	store_body_release(&body);
	CHECK_EQ_INT(body.nseen, 3);
	CHECK_EQ_INT(body.seen[0].seq, s1);
	CHECK_EQ_INT(body.seen[0].mask, 0x0a);
	CHECK_EQ_INT(body.seen[0].samples, fx[1].counts.samples);
	CHECK_EQ_INT(body.seen[1].mask, 0x08);
	CHECK_EQ_INT(body.seen[1].samples, fx[2].counts.samples);
	/* Lane 3 through s1..s2 as seen: s2 (lane 3 only) goes. */
	memset(&gone, 0, sizeof(gone));
	CHECK_EQ_INT(store_txn_begin(E.st, &txn), 0);
	CHECK_EQ_INT(store_lane_ack_seen(txn, "t", 1, 3, s1, s2, body.seen,
					 body.nseen, &gone, &next, &delivered,
					 &rest), 0);
	CHECK_EQ_INT(rest, 0);
	CHECK_EQ_INT(store_txn_commit(txn), 0);
	CHECK_EQ_INT(gone.entries, 1);
	CHECK_EQ_INT(gone.first_seq, s2);
	CHECK_EQ_INT(gone.samples, fx[2].counts.samples);
	CHECK_EQ_INT(delivered, fx[1].counts.samples + fx[2].counts.samples);
	/* What was seen decides: told that s3 has lane 3 alone, lane 3's
	 * ack deletes it (lane 1's part with it), and counts what it was
	 * told. */
	lie.seq = s3;
	lie.mask = 0x08;
	lie.samples = 7;
	memset(&gone, 0, sizeof(gone));
	CHECK_EQ_INT(store_txn_begin(E.st, &txn), 0);
	CHECK_EQ_INT(store_lane_ack_seen(txn, "t", 1, 3, s3, s3, &lie, 1, &gone,
					 &next, &delivered, NULL), 0);
	CHECK_EQ_INT(store_txn_commit(txn), 0);
	CHECK_EQ_INT(gone.entries, 1);
	CHECK_EQ_INT(gone.first_seq, s3);
	CHECK_EQ_INT(delivered, 7);
	/* Lane 1 through s1, nothing seen: read, and s1 goes. */
	CHECK_NOERR(ack(1, s1, s1, &gone, &delivered));
	CHECK_EQ_INT(gone.entries, 1);
	CHECK_EQ_INT(gone.first_seq, s1);
	CHECK_EQ_INT(delivered, fx[0].counts.samples);
}

/* The number of records in the queue and tails databases. */
static void count_records(size_t *queue, size_t *tails)
{
	MDB_txn *txn;
	MDB_stat ms;

	*queue = *tails = SIZE_MAX;
	if (mdb_txn_begin(E.st->env, NULL, MDB_RDONLY, &txn) != 0)
		return;
	if (mdb_stat(txn, E.st->queue, &ms) == 0)
		*queue = ms.ms_entries;
	if (mdb_stat(txn, E.st->tails, &ms) == 0)
		*tails = ms.ms_entries;
	mdb_txn_abort(txn);
}

/* An answer for more entries than a transaction's budget deletes as many
 * as the budget allows (here one), counts every delivered sample all the
 * same, and says where it stopped; sweeps delete the rest, those every
 * lane is through only, and the tails records with them. */
static void test_ack_budget(void)
{
	static const unsigned l0[] = { 0 }, l03[] = { 0, 3 };
	static const int f0[] = { 0 }, f01[] = { 0, 1 };
	enum { N = 12 };
	struct store_span gone, next, g2, n2;
	struct store_txn *txn;
	uint64_t seq[N], delivered = 0, rest = 0, r2 = 0, want = 0;
	size_t nq, nt;

	CHECK_NOERR(store_direct());
	for (int i = 0; i < N; i++) {
		/* Entry 5 also has a part in lane 3, which is not through. */
		if (i == 5) {
			CHECK_NOERR(put_lanes("t", l03, f01, 2, &seq[i]));
		} else {
			CHECK_NOERR(put_lanes("t", l0, f0, 1, &seq[i]));
		}
		want += fx[0].counts.samples;
	}
	count_records(&nq, &nt);
	CHECK_EQ_INT(nq, N);
	CHECK(nt >= N);   /* every entry has a tail (fixture sizes) */
	memset(&gone, 0, sizeof(gone));
	CHECK_EQ_INT(store_txn_begin(E.st, &txn), 0);
	txn->delete_bytes_left = 1;
	CHECK_EQ_INT(store_lane_ack_seen(txn, "t", 1, 0, seq[0], seq[N - 1],
					 NULL, 0, &gone, &next, &delivered,
					 &rest), 0);
	/* The budget spent, a sweep in the same transaction does nothing. */
	memset(&g2, 0, sizeof(g2));
	CHECK_EQ_INT(store_sweep(txn, "t", 1, rest, seq[N - 1], &g2, &n2, &r2),
		     0);
	CHECK_EQ_INT(g2.entries, 0);
	CHECK_EQ_INT(r2, rest);
	CHECK_EQ_INT(store_txn_commit(txn), 0);
	CHECK_EQ_INT(gone.entries, 1);
	CHECK_EQ_INT(gone.first_seq, seq[0]);
	CHECK_EQ_INT(rest, seq[1]);
	CHECK_EQ_INT(delivered, want);
	CHECK_EQ_INT(next.entries, 1);
	CHECK_EQ_INT(next.first_seq, seq[1]);
	/* The next transaction's sweep goes on from there. */
	CHECK_EQ_INT(store_txn_begin(E.st, &txn), 0);
	txn->delete_bytes_left = 1;
	memset(&g2, 0, sizeof(g2));
	CHECK_EQ_INT(store_sweep(txn, "t", 1, rest, seq[N - 1], &g2, &n2, &r2),
		     0);
	CHECK_EQ_INT(store_txn_commit(txn), 0);
	CHECK_EQ_INT(g2.entries, 1);
	CHECK_EQ_INT(g2.first_seq, seq[1]);
	CHECK_EQ_INT(r2, seq[2]);
	count_records(&nq, &nt);
	CHECK_EQ_INT(nq, N - 2);
	/* A second answer for the same range (no budget) counts nothing
	 * again, and deletes all but entry 5. */
	CHECK_NOERR(ack(0, seq[0], seq[N - 1], &gone, &delivered));
	CHECK_EQ_INT(delivered, 0);
	CHECK_EQ_INT(gone.entries, N - 3);
	count_records(&nq, &nt);
	CHECK_EQ_INT(nq, 1);
	/* Lane 3 through entry 5, a sweep of the whole range (the default
	 * budget): it goes, tails and all. */
	CHECK_EQ_INT(store_txn_begin(E.st, &txn), 0);
	CHECK_EQ_INT(store_lane_set(txn, "t", 1, 3, seq[5]), 0);
	memset(&gone, 0, sizeof(gone));
	CHECK_EQ_INT(store_sweep(txn, "t", 1, 1, seq[N - 1], &gone, &next,
				 &rest), 0);
	CHECK_EQ_INT(store_txn_commit(txn), 0);
	CHECK_EQ_INT(gone.entries, 1);
	CHECK_EQ_INT(gone.first_seq, seq[5]);
	CHECK_EQ_INT(rest, 0);
	CHECK_EQ_INT(next.entries, 0);
	count_records(&nq, &nt);
	CHECK_EQ_INT(nq, 0);
	CHECK_EQ_INT(nt, 0);
}

/* Bytes of the records in the tails database. */
static size_t tails_bytes(void)
{
	MDB_txn *txn;
	MDB_cursor *cur;
	MDB_val k, v;
	size_t n = 0;

	if (mdb_txn_begin(E.st->env, NULL, MDB_RDONLY, &txn) != 0)
		return SIZE_MAX;
	if (mdb_cursor_open(txn, E.st->tails, &cur) == 0) {
		for (MDB_cursor_op op = MDB_FIRST;
		     mdb_cursor_get(cur, &k, &v, op) == 0; op = MDB_NEXT)
			n += v.mv_size;
		mdb_cursor_close(cur);
	}
	mdb_txn_abort(txn);
	return n;
}

/* The default budget deletes a 500-series entry's worth many times over,
 * not hundreds: what one transaction changes stays bounded. */
static void test_budget_bounds_pages(void)
{
	static const unsigned l0[] = { 0 };
	static const int f0[] = { 0 };
	enum { N = 400 };
	struct store_span gone, next;
	struct store_txn *txn;
	uint64_t first = 0, last = 0, delivered = 0, rest = 0, s;
	size_t nq, nt, before, after;

	CHECK_NOERR(store_direct());
	for (int i = 0; i < N; i++) {
		CHECK_NOERR(put_lanes("t", l0, f0, 1, &s));
		if (i == 0)
			first = s;
		last = s;
	}
	before = tails_bytes();
	CHECK(before > 2 * STORE_DELETE_BYTES_PER_TXN);
	memset(&gone, 0, sizeof(gone));
	CHECK_EQ_INT(store_txn_begin(E.st, &txn), 0);
	CHECK_EQ_INT(store_lane_ack_seen(txn, "t", 1, 0, first, last, NULL, 0,
					 &gone, &next, &delivered, &rest), 0);
	CHECK_EQ_INT(store_txn_commit(txn), 0);
	count_records(&nq, &nt);
	/* At most the budget in tails bytes, one entry's tail (under a
	 * page) over. */
	after = tails_bytes();
	CHECK(after < before);
	CHECK(before - after <= STORE_DELETE_BYTES_PER_TXN + 4096);
	CHECK(gone.entries >= 1 && gone.entries < N);
	CHECK(rest == first + gone.entries);
	CHECK_EQ_INT(nq, N - gone.entries);
	CHECK_EQ_INT(delivered, (uint64_t)N * fx[0].counts.samples);
}

/* Sweeps look at a bounded number of entries per transaction (here
 * three), and each transaction goes on where the last stopped. */
static void test_sweep_resumes(void)
{
	static const unsigned l0[] = { 0 };
	static const int f0[] = { 0 };
	enum { N = 10 };
	struct store_span gone, next;
	struct store_txn *txn;
	uint64_t seq[N], rest = 0, from = 1;
	size_t nq, nt, total = 0;
	int rounds = 0;

	CHECK_NOERR(store_direct());
	for (int i = 0; i < N; i++)
		CHECK_NOERR(put_lanes("t", l0, f0, 1, &seq[i]));
	/* The cursor moved without a deletion (as by an answer whose
	 * transaction had spent its budget, then a crash). */
	CHECK_EQ_INT(store_txn_begin(E.st, &txn), 0);
	CHECK_EQ_INT(store_lane_set(txn, "t", 1, 0, seq[N - 1]), 0);
	CHECK_EQ_INT(store_txn_commit(txn), 0);
	do {
		memset(&gone, 0, sizeof(gone));
		CHECK_EQ_INT(store_txn_begin(E.st, &txn), 0);
		txn->sweep_looks_left = 3;
		CHECK_EQ_INT(store_sweep(txn, "t", 1, from, seq[N - 1], &gone,
					 &next, &rest), 0);
		CHECK_EQ_INT(store_txn_commit(txn), 0);
		CHECK(gone.entries <= 3);
		total += gone.entries;
		if (rest != 0) {
			CHECK_EQ_INT(next.first_seq, rest);
			from = rest;
		}
	} while (rest != 0 && ++rounds < 10);
	CHECK_EQ_INT(rounds, 3);   /* 3 + 3 + 3 + 1 */
	CHECK_EQ_INT(total, N);
	count_records(&nq, &nt);
	CHECK_EQ_INT(nq, 0);
	CHECK_EQ_INT(nt, 0);
}

/* store_entry_undelivered: the samples of the lanes not through the
 * entry; 0 once every lane with a part is; all when there is no entry. */
static void test_entry_undelivered(void)
{
	static const unsigned l03[] = { 0, 3 };
	static const int f07[] = { 0, 7 };
	struct store_txn *txn;
	uint64_t s, left;

	/* Lanes of different sizes, so that the one billed shows. */
	CHECK(fx[0].counts.samples > 0 && fx[7].counts.samples > 0 &&
	      fx[0].counts.samples != fx[7].counts.samples);
	CHECK_NOERR(store_direct());
	CHECK_NOERR(put_lanes("t", l03, f07, 2, &s));
	CHECK_EQ_INT(store_txn_begin(E.st, &txn), 0);
	CHECK_EQ_INT(store_entry_undelivered(txn, "t", 1, s, &left), 1);
	CHECK_EQ_INT(left, fx[0].counts.samples + fx[7].counts.samples);
	CHECK_EQ_INT(store_lane_set(txn, "t", 1, 0, s), 0);
	CHECK_EQ_INT(store_entry_undelivered(txn, "t", 1, s, &left), 1);
	CHECK_EQ_INT(left, fx[7].counts.samples);
	CHECK_EQ_INT(store_lane_set(txn, "t", 1, 3, s), 0);
	CHECK_EQ_INT(store_entry_undelivered(txn, "t", 1, s, &left), 0);
	CHECK_EQ_INT(left, 0);
	CHECK_EQ_INT(store_entry_undelivered(txn, "t", 1, s + 1, &left), 1);
	CHECK(left == UINT64_MAX);
	CHECK_EQ_INT(store_entry_undelivered(txn, "u", 1, s, &left), 1);
	CHECK(left == UINT64_MAX);
	store_txn_abort(txn);
}

/* A lane's part refused alone is set aside alone, as an entry of version
 * 2 with that lane; a second lane's part of the same entry joins it. */
static void test_lane_set_aside(void)
{
	static const unsigned l135[] = { 1, 3, 5 };
	static const int f012[] = { 0, 1, 2 };
	struct store_span gone, next;
	struct store_txn *txn;
	struct lane_table t;
	struct setaside_hdr sh;
	uint8_t key[STORE_KEY_MAX];
	MDB_val k, v;
	MDB_txn *rt;
	uint64_t s1, delivered;
	size_t n = 0;

	CHECK_NOERR(store_direct());
	CHECK_NOERR(put_lanes("t", l135, f012, 3, &s1));
	for (unsigned lane = 3; lane <= 5; lane += 2) {
		memset(&gone, 0, sizeof(gone));
		CHECK_EQ_INT(store_txn_begin(E.st, &txn), 0);
		CHECK_EQ_INT(store_set_aside(txn, "t", 1, (int)lane, s1, 400, "no",
					     &gone, &next), 0);
		CHECK_EQ_INT(store_lane_ack(txn, "t", 1, lane, s1, s1, &gone,
					    &next, &delivered), 0);
		CHECK_EQ_INT(store_txn_commit(txn), 0);
		/* Lane 1 still has its part: the entry stays. */
		CHECK_EQ_INT(gone.entries, 0);
	}
	k.mv_size = store_key(key, "t", 1, s1);
	k.mv_data = key;
	CHECK(mdb_txn_begin(E.st->env, NULL, MDB_RDONLY, &rt) == 0);
	if (mdb_get(rt, E.st->setaside, &k, &v) == 0 && v.mv_size <= sizeof(val)) {
		memcpy(val, v.mv_data, v.mv_size);
		n = v.mv_size;
	}
	mdb_txn_abort(rt);
	CHECK(n > sizeof(sh));
	memcpy(&sh, val, sizeof(sh));
	CHECK_EQ_INT(sh.status, 400);
	CHECK_EQ_INT(parse(val + sizeof(sh) + sh.reason_len,
			   n - sizeof(sh) - sh.reason_len, &t), 0);
	CHECK_EQ_INT(t.n, 2);
	CHECK_EQ_INT(t.mask, (1u << 3) | (1u << 5));
	CHECK(memcmp(t.part[0].block, fx[1].z, fx[1].zlen) == 0);
	CHECK(memcmp(t.part[1].block, fx[2].z, fx[2].zlen) == 0);
	/* Lane 1 delivers its part: the entry goes. */
	CHECK_NOERR(ack(1, s1, s1, &gone, &delivered));
	CHECK_EQ_INT(gone.entries, 1);
	CHECK_EQ_INT(delivered, fx[0].counts.samples);
}

/* Overwrites the stored value of (tenant, seq) with v[0..n), whole (its
 * tail records, if any, deleted). */
static const char *put_raw(const char *tenant, uint64_t seq, uint8_t *v,
			   size_t n)
{
	uint8_t key[STORE_KEY_MAX];
	MDB_val k, mv = { n, v };
	MDB_txn *txn;
	int rc;

	k.mv_size = store_key(key, tenant, strlen(tenant), seq);
	k.mv_data = key;
	if (mdb_txn_begin(E.st->env, NULL, 0, &txn) != 0)
		return "cannot begin a write transaction";
	if ((rc = mdb_put(txn, E.st->queue, &k, &mv, 0)) != 0 ||
	    (rc = store_tail_del(txn, E.st, tenant, strlen(tenant), seq)) != 0) {
		mdb_txn_abort(txn);
		return mdb_strerror(rc);
	}
	return (rc = mdb_txn_commit(txn)) == 0 ? NULL : mdb_strerror(rc);
}

/* A part whose block's preamble is damaged (its table intact): the lane's
 * body ends before it; alone, store_body_open says 1 (to be set aside
 * unsent), and it can be set aside as a part; the entry's other lanes
 * and the lane's later parts read as ever. */
static void test_lane_damaged_block(void)
{
	static const unsigned l13[] = { 1, 3 }, l35[] = { 3, 5 }, l3[] = { 3 };
	static const int f01[] = { 0, 1 }, f23[] = { 2, 3 }, f4[] = { 4 };
	struct store_span span, gone, next;
	struct store_body body;
	struct store_txn *txn;
	struct lane_table t;
	struct entry_hdr h;
	uint64_t s1, s2, s3, delivered;
	size_t n;

	CHECK_NOERR(store_direct());
	CHECK_NOERR(put_lanes("t", l13, f01, 2, &s1));
	CHECK_NOERR(put_lanes("t", l35, f23, 2, &s2));
	CHECK_NOERR(put_lanes("t", l3, f4, 1, &s3));
	n = get_value("t", s2, val, sizeof(val));
	CHECK(n > sizeof(h));
	memcpy(&h, val, sizeof(h));
	/* Lane 3's block comes first: its preamble states another length. */
	val[sizeof(h) + 2 * sizeof(struct lane_rec)] ^= 1;
	CHECK_NOERR(put_raw("t", s2, val, n));
	CHECK_EQ_INT(parse(val, n, &t), -1);
	CHECK_EQ_INT(lanes_table(val, n, h.version, h.nlanes, h.raw_len,
				 h.samples, h.series, &t), 0);
	/* Lane 3: s1's part, then the body ends. */
	CHECK_EQ_INT(store_body_open(E.st, "t", 1, 3, 0, UINT64_MAX, UINT64_MAX,
				     256, &body, &span), 0);
	store_body_release(&body);
	CHECK_EQ_INT(span.entries, 1);
	CHECK_EQ_INT(span.last_seq, s1);
	/* From s2 on: that part alone, not to be sent. */
	CHECK_EQ_INT(store_body_open(E.st, "t", 1, 3, s2, UINT64_MAX, UINT64_MAX,
				     256, &body, &span), 1);
	CHECK(body.read == NULL);
	CHECK_EQ_INT(span.entries, 1);
	CHECK_EQ_INT(span.first_seq, s2);
	CHECK_EQ_INT(span.last_seq, s2);
	CHECK_EQ_INT(span.samples, fx[2].counts.samples);
	/* Lane 5's part of the same entry reads. */
	CHECK_EQ_INT(store_body_open(E.st, "t", 1, 5, 0, UINT64_MAX, UINT64_MAX,
				     256, &body, &span), 0);
	store_body_release(&body);
	CHECK_EQ_INT(span.entries, 1);
	CHECK_EQ_INT(span.first_seq, s2);
	/* Set aside as lane 3's part; lane 3 goes on with s3. */
	memset(&gone, 0, sizeof(gone));
	CHECK_EQ_INT(store_txn_begin(E.st, &txn), 0);
	CHECK_EQ_INT(store_set_aside(txn, "t", 1, 3, s2, 0, "malformed",
				     &gone, &next), 0);
	CHECK_EQ_INT(store_lane_ack(txn, "t", 1, 3, s2, s2, &gone, &next,
				    &delivered), 0);
	CHECK_EQ_INT(store_txn_commit(txn), 0);
	CHECK_EQ_INT(store_body_open(E.st, "t", 1, 3, s2 + 1, UINT64_MAX,
				     UINT64_MAX, 256, &body, &span), 0);
	store_body_release(&body);
	CHECK_EQ_INT(span.entries, 1);
	CHECK_EQ_INT(span.first_seq, s3);
}

/* Format 3 -> 4: the lanes database is made; the entries of version 1
 * already there go first, whole, by lane 0, while the other lanes wait. */
static void test_format_3_converted(void)
{
	static const unsigned l26[] = { 2, 6 };
	static const int f23[] = { 2, 3 };
	struct queue_tenant *qt;
	struct store_body body;
	struct store_span span;
	struct store_txn *txn;
	struct queue_job j;
	struct entry_hdr h;
	uint64_t seq, v1a = 0, v1b = 0, s2;
	char why[512];

	CHECK_NOERR(store_direct());
	/* Two entries of version 1, as format 3 wrote them. */
	for (int f = 0; f < 2; f++) {
		memset(&h, 0, sizeof(h));
		h.version = 1;
		h.raw_len = (uint32_t)fx[f].rawlen;
		h.samples = (uint32_t)fx[f].counts.samples;
		h.series = (uint32_t)fx[f].counts.series;
		memcpy(val, &h, sizeof(h));
		memcpy(val + sizeof(h), fx[f].z, fx[f].zlen);
		CHECK_EQ_INT(store_txn_begin(E.st, &txn), 0);
		CHECK_EQ_INT(store_put_value(txn, "t", 1, val,
					     sizeof(h) + fx[f].zlen, &seq), 0);
		CHECK_EQ_INT(store_txn_commit(txn), 0);
		if (f == 0)
			v1a = seq;
		else
			v1b = seq;
	}
	store_close(E.st);
	E.st_open = 0;
	CHECK_NOERR(store_older_format(3, "lanes"));
	CHECK((E.st = store_open(E.path, 64 * MIB, why, sizeof(why))) != NULL);
	E.st_open = 1;
	CHECK(E.st->lanes != 0);
	{
		MDB_val k = { 6, "format" }, v;
		MDB_txn *rt;
		uint32_t fmt = 0;
		CHECK(mdb_txn_begin(E.st->env, NULL, MDB_RDONLY, &rt) == 0);
		if (mdb_get(rt, E.st->meta, &k, &v) == 0 && v.mv_size == 4)
			memcpy(&fmt, v.mv_data, 4);
		mdb_txn_abort(rt);
		CHECK_EQ_INT(fmt, STORE_FORMAT);
	}
	/* An entry of version 2 after them. */
	CHECK_NOERR(put_lanes("t", l26, f23, 2, &s2));
	queue_init(&E.q);
	E.q_init = 1;
	CHECK_EQ_INT(store_load_queue(E.st, &E.q), 0);
	qt = queue_tenant_get(&E.q, "t", 1, 0);
	CHECK(qt != NULL);
	CHECK_EQ_INT(qt->entries, 3);
	CHECK_EQ_INT(qt->legacy_last, v1b);
	/* Lane 0 first: the old entries whole, in order. */
	CHECK_EQ_INT(queue_claim(&E.q, LANES, &j), 0);
	CHECK_EQ_INT(j.lane, 0);
	CHECK_EQ_INT(j.first, v1a);
	CHECK_EQ_INT(store_body_open(E.st, "t", 1, 0, j.first, j.last,
				     UINT64_MAX, 256, &body, &span), 0);
	store_body_release(&body);
	CHECK_EQ_INT(span.entries, 2);
	CHECK_EQ_INT(span.samples, fx[0].counts.samples + fx[1].counts.samples);
	CHECK_EQ_INT(span.last_seq, s2);
	queue_taken(&E.q, &j, span.entries, span.first_seq, span.last_seq);
	/* The other lanes wait: with lane 0 in flight nothing is ready (a
	 * new tenant is served instead). */
	queue_added(&E.q, "z", 1, 1000, 1, 1, 1);
	for (unsigned l = 1; l < LANES; l++)
		queue_lane_through(&E.q, "z", 1, l, 2000);
	CHECK_EQ_INT(queue_claim(&E.q, LANES, &j), 0);
	CHECK_STR(j.id, "z");
	/* Lane 0 delivered them, the writer deleted them: the others go. */
	{
		struct store_span gone, next;
		uint64_t delivered;
		memset(&gone, 0, sizeof(gone));
		CHECK_EQ_INT(store_txn_begin(E.st, &txn), 0);
		CHECK_EQ_INT(store_lane_ack(txn, "t", 1, 0, v1a, s2, &gone, &next,
					    &delivered), 0);
		CHECK_EQ_INT(store_txn_commit(txn), 0);
		CHECK_EQ_INT(gone.entries, 2);
		queue_removed(&E.q, "t", 1, gone.entries, gone.bytes,
			      gone.samples, next.first_seq, next.created_ms);
	}
	CHECK_EQ_INT(qt->legacy_last, 0);
	CHECK_EQ_INT(queue_claim(&E.q, LANES, &j), 0);
	CHECK_STR(j.id, "t");
	CHECK(j.lane != 0);
	CHECK_EQ_INT(j.first, s2);
}

int main(void)
{
	if (load_fixtures() < 0) {
		free_fixtures();
		return 1;
	}
#define RUN_STORE(fn)                                                         \
	do {                                                                  \
		RUN(fn);                                                      \
		env_cleanup();                                                \
	} while (0)
	RUN_STORE(test_format_v2);
	RUN_STORE(test_lane_body);
	RUN_STORE(test_lane_cursors);
	RUN_STORE(test_lane_ack_seen);
	RUN_STORE(test_ack_budget);
	RUN_STORE(test_budget_bounds_pages);
	RUN_STORE(test_sweep_resumes);
	RUN_STORE(test_entry_undelivered);
	RUN_STORE(test_lane_set_aside);
	RUN_STORE(test_lane_damaged_block);
	RUN_STORE(test_format_3_converted);
	free_fixtures();
	return unit_done();
}
