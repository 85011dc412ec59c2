/*
 * test_writer.c - the writer thread: batches committed, merged per tenant
 * and read back the way the forwarder reads them (decoded with snappy and
 * protobuf-c), refusals at commit (buffer full, a failed commit: 503 with
 * REFUSE_STORAGE), duplicates, acknowledgements, set-aside and replay,
 * eviction (drop_oldest, max_age), and sequence numbers across restarts.
 * A full disk and a failed commit come from the store's failure seams
 * (store_int.h), swapped for functions that fail: no root, no small
 * filesystem.
 *
 * Every test works in its own directory under /tmp and removes it. Batches
 * go through the real writer thread; a test waits for their done callbacks
 * (and, for acknowledgements, polls the queue totals a bounded number of
 * times). To put several batches in one commit round deterministically, the
 * first batch's done callback holds the writer until the others are queued.
 */
#include "storetest.h"

#include <stddef.h>

#include "metrics.h"
#include "setaside.h"
#include "writer_int.h"   /* writer_setaside_op_bytes */

/* ---- through the writer ------------------------------------------------ */

/* Eight batches, each committed alone: eight entries holding the fixtures
 * in order; the forwarder's read merges them back. */
static void test_writer_stores_and_reads_back(void)
{
	struct entries es = { NULL, 0 };
	struct store_span span;
	struct queue_totals t;
	struct buf body;
	uint64_t before, after, bytes = 0, raw = 0;
	const char *e = NULL;
	char what[256];

	CHECK_NOERR(env_create(64 * MIB, 8 * MIB));
	CHECK_NOERR(batches_new(NFX));
	for (int i = 0; i < NFX; i++)
		CHECK_NOERR(batch_fixture(&E.b[i], "t1", i, NULL));
	before = clock_wall_ms();
	CHECK_NOERR(submit_each(0, NFX));
	after = clock_wall_ms();
	for (int i = 0; i < NFX; i++)
		CHECK_EQ_INT(E.b[i].status, BATCH_STORED);
	queue_totals(&E.q, &t);
	CHECK_EQ_INT(t.entries, NFX);
	CHECK_EQ_INT(t.samples, fx_samples(all8, NFX));
	CHECK(t.oldest_ms >= before && t.oldest_ms <= after);

	/* The records themselves. */
	CHECK_NOERR(entries_read(E.st->queue, &es));
	for (size_t i = 0; i < es.n && e == NULL; i++) {
		const struct entry *en = &es.e[i];
		const struct fixture *f = &fx[i];

		bytes += en->vlen;
		raw += en->h.raw_len;
		if (strcmp(en->tenant, "t1") != 0)
			e = "entry of another tenant";
		else if (i > 0 && en->seq != es.e[i - 1].seq + 1)
			e = "sequence numbers not consecutive";
		else if (en->h.version != 2 || en->h.nlanes != 1 ||
			 en->h.requests != 1 ||
			 en->h.raw_len != f->rawlen ||
			 en->h.series != f->counts.series ||
			 en->h.samples != f->counts.samples ||
			 en->h.metadata != f->counts.metadata ||
			 en->h.histograms != 0 || en->h.exemplars != 0)
			e = err("entry %zu: header does not describe %s", i,
				f->name);
		else if (en->h.created_ms < before || en->h.created_ms > after)
			e = err("entry %zu: created_ms outside the test", i);
		else if ((e = block_is(ENTRY_BLOCK(en),
				       ENTRY_BLOCK_LEN(en),
				       &all8[i], 1)) != NULL) {
			snprintf(what, sizeof(what), "%s", e);
			e = err("entry %zu: %s", i, what);
		}
	}
	if (e == NULL && es.n != NFX)
		e = err("%zu entries", es.n);
	if (e == NULL && bytes != t.bytes)
		e = "queue bytes differ from the records' sizes";
	entries_free(&es);
	CHECK_NOERR(e);

	/* Everything at once, oldest first. */
	CHECK_NOERR(queue_is("t1", all8, NFX, &span));
	CHECK_EQ_INT(span.entries, NFX);
	CHECK_EQ_INT(span.samples, t.samples);
	/* A body counts its blocks: the values less header and lane table. */
	CHECK_EQ_INT(span.bytes, t.bytes - NFX * (sizeof(struct entry_hdr) +
						  sizeof(struct lane_rec)));
	CHECK_EQ_INT(span.raw, raw);
	CHECK_EQ_INT(span.last_seq - span.first_seq, NFX - 1);

	/* The limits of one read: entries, decoded bytes (at least one). */
	buf_init(&body, 1u << 30);
	if (store_read_batch(E.st, "t1", 2, 0, 0, UINT64_MAX, UINT64_MAX, 3, &body, &span) < 0)
		e = "store_read_batch failed";
	else if (span.entries != 3)
		e = err("max_entries 3 read %llu", (unsigned long long)span.entries);
	else
		e = block_is(body.p, body.len, all8, 3);
	buf_reset(&body);
	if (e == NULL &&
	    store_read_batch(E.st, "t1", 2, 0, 0, UINT64_MAX, fx[0].rawlen + fx[1].rawlen, 256,
			     &body, &span) < 0)
		e = "store_read_batch failed";
	else if (e == NULL && span.entries != 2)
		e = err("max_raw of two read %llu", (unsigned long long)span.entries);
	else if (e == NULL)
		e = block_is(body.p, body.len, all8, 2);
	buf_reset(&body);
	if (e == NULL &&
	    store_read_batch(E.st, "t1", 2, 0, 0, UINT64_MAX, 1, 256, &body, &span) < 0)
		e = "store_read_batch failed";
	else if (e == NULL && span.entries != 1)
		e = "a tiny max_raw must still read one entry";
	buf_reset(&body);
	/* From the middle on. */
	if (e == NULL &&
	    store_read_batch(E.st, "t1", 2, 0, span.first_seq + 5, UINT64_MAX, UINT64_MAX, 256,
			     &body, &span) < 0)
		e = "store_read_batch failed";
	else if (e == NULL)
		e = block_is(body.p, body.len, all8 + 5, 3);
	buf_reset(&body);
	/* Another tenant, a prefix of this one: nothing. */
	if (e == NULL &&
	    (store_read_batch(E.st, "t", 1, 0, 0, UINT64_MAX, UINT64_MAX, 256, &body,
			      &span) < 0 || span.entries != 0 || body.len != 0))
		e = "tenant \"t\" read entries of \"t1\"";
	buf_free(&body);
	CHECK_NOERR(e);
}

/* Acknowledged ranges are deleted, and nothing else. */
static void test_ack_deletes_range(void)
{
	static const int rest[] = { 4, 5, 6, 7 }, tail[] = { 6, 7 };
	struct store_span span;
	struct queue_totals t;
	struct queue_tenant ts;
	uint64_t s0;

	CHECK_NOERR(env_create(64 * MIB, 8 * MIB));
	CHECK_NOERR(batches_new(NFX + 1));
	for (int i = 0; i < NFX; i++)
		CHECK_NOERR(batch_fixture(&E.b[i], "t1", i, NULL));
	CHECK_NOERR(batch_fixture(&E.b[NFX], "t2", 0, NULL));
	CHECK_NOERR(submit_each(0, NFX + 1));
	CHECK_NOERR(queue_is("t1", all8, NFX, &span));
	s0 = span.first_seq;

	/* The oldest four, in two acknowledgements. */
	writer_ack(E.w, "t1", 2, 0, s0, s0 + 1);
	writer_ack(E.w, "t1", 2, 0, s0 + 2, s0 + 3);
	CHECK_NOERR(wait_entries(NFX + 1 - 4));
	queue_totals(&E.q, &t);
	CHECK_EQ_INT(t.samples, fx_samples(rest, 4) + fx[0].counts.samples);
	CHECK_NOERR(queue_is("t1", rest, 4, &span));
	CHECK_EQ_INT(span.first_seq, s0 + 4);
	CHECK_EQ_INT(tenant_state("t1", &ts), 0);
	CHECK_EQ_INT(ts.entries, 4);
	CHECK_EQ_INT(ts.first_seq, s0 + 4);
	CHECK(ts.lane[0].send_seq >= s0 + 4);
	/* A range reaching past the newest entry, starting before the
	 * oldest left: deletes what is there, leaves t2 alone. */
	writer_ack(E.w, "t1", 2, 0, s0, s0 + 5);
	CHECK_NOERR(wait_entries(3));
	CHECK_NOERR(queue_is("t1", tail, 2, &span));
	writer_ack(E.w, "t1", 2, 0, s0 + 6, UINT64_MAX);
	CHECK_NOERR(wait_entries(1));
	queue_totals(&E.q, &t);
	CHECK_EQ_INT(t.samples, fx[0].counts.samples);
	CHECK_NOERR(queue_is("t2", all8, 1, &span));
	CHECK_EQ_INT(tenant_state("t1", &ts), 0);
	CHECK_EQ_INT(ts.entries, 0);
	CHECK_EQ_INT(ts.bytes, 0);
	CHECK_EQ_INT(ts.samples, 0);
}

/* The refused entry moves to setaside, whole, with the upstream's answer. */
static void test_set_aside_moves_entry(void)
{
	static const int rest[] = { 0, 1, 3, 4, 5, 6, 7 };
	static const char reason[] = "series 3: labels not sorted: \"a\" after \"b\"";
	struct entries es = { NULL, 0 }, sa = { NULL, 0 };
	struct setaside_hdr sh;
	struct store_span span;
	struct queue_totals t;
	uint8_t *orig = NULL;
	size_t origlen = 0;
	uint64_t s0, before;
	const char *e = NULL;

	CHECK_NOERR(env_create(64 * MIB, 8 * MIB));
	CHECK_NOERR(batches_new(NFX));
	for (int i = 0; i < NFX; i++)
		CHECK_NOERR(batch_fixture(&E.b[i], "t1", i, NULL));
	CHECK_NOERR(submit_each(0, NFX));
	CHECK_NOERR(entries_read(E.st->queue, &es));
	CHECK(es.n == NFX);
	s0 = es.e[0].seq;
	orig = es.e[2].val;      /* keep the value as it was */
	origlen = es.e[2].vlen;
	es.e[2].val = NULL;
	entries_free(&es);

	before = clock_wall_ms();
	writer_set_aside(E.w, "t1", 2, 0, s0 + 2, 400, reason);
	e = wait_entries(NFX - 1);
	if (e == NULL)
		e = entries_read(E.st->setaside, &sa);
	if (e == NULL && sa.n != 1)
		e = err("%zu records set aside", sa.n);
	if (e == NULL && (strcmp(sa.e[0].tenant, "t1") != 0 ||
			  sa.e[0].seq != s0 + 2))
		e = "the record set aside has another key";
	if (e == NULL && sa.e[0].vlen < sizeof(sh))
		e = "setaside record too short";
	if (e == NULL) {
		memcpy(&sh, sa.e[0].val, sizeof(sh));
		if (sh.status != 400)
			e = err("status %u", sh.status);
		else if (sh.reason_len != strlen(reason) ||
			 memcmp(sa.e[0].val + sizeof(sh), reason,
				sh.reason_len) != 0)
			e = "reason not kept";
		else if (sh.set_aside_ms < before || sh.set_aside_ms > clock_wall_ms())
			e = "set_aside_ms outside the test";
		else if (sa.e[0].vlen != sizeof(sh) + sh.reason_len + origlen ||
			 memcmp(sa.e[0].val + sizeof(sh) + sh.reason_len, orig,
				origlen) != 0)
			e = "the queue value is not kept as it was";
	}
	entries_free(&sa);
	free(orig);
	CHECK_NOERR(e);
	/* Gone from the queue, its samples with it. */
	queue_totals(&E.q, &t);
	CHECK_EQ_INT(t.entries, NFX - 1);
	CHECK_EQ_INT(t.samples, fx_samples(rest, 7));
	CHECK_NOERR(queue_is("t1", rest, 7, &span));
	CHECK_EQ_INT(span.entries, NFX - 1);
}

/* An entry that is not there: nothing changes (a later batch, committed
 * after the operation, tells when it was applied). */
static void test_set_aside_missing_entry(void)
{
	struct entries sa = { NULL, 0 };
	struct queue_totals t;
	size_t n;

	CHECK_NOERR(env_create(64 * MIB, 8 * MIB));
	CHECK_NOERR(batches_new(2));
	CHECK_NOERR(batch_fixture(&E.b[0], "t1", 0, NULL));
	CHECK_NOERR(batch_fixture(&E.b[1], "t9", 1, NULL));
	CHECK_NOERR(submit_each(0, 1));
	writer_set_aside(E.w, "t1", 2, 0, 12345, 400, "x");
	writer_set_aside(E.w, "nobody", 6, 0, 1, 400, "x");
	CHECK_NOERR(submit_each(1, 2));
	CHECK_EQ_INT(E.b[1].status, BATCH_STORED);
	queue_totals(&E.q, &t);
	CHECK_EQ_INT(t.entries, 2);
	CHECK_NOERR(entries_read(E.st->setaside, &sa));
	n = sa.n;
	entries_free(&sa);
	CHECK_EQ_INT(n, 0);
}

/*
 * Removing an entry that is not the tenant's oldest must not move the
 * forwarder past the older ones: they are still in the buffer and must be
 * sent. queue_claim shows where the forwarder would start.
 */
static void test_set_aside_middle_keeps_older(void)
{
	struct queue_tenant ts;
	struct queue_job job;
	struct entries es = { NULL, 0 };
	uint64_t s0;

	CHECK_NOERR(env_create(64 * MIB, 8 * MIB));
	CHECK_NOERR(batches_new(6));
	for (int i = 0; i < 6; i++)
		CHECK_NOERR(batch_fixture(&E.b[i], "t1", i, NULL));
	CHECK_NOERR(submit_each(0, 5));
	CHECK_NOERR(entries_read(E.st->queue, &es));
	s0 = es.e[0].seq;
	entries_free(&es);
	writer_set_aside(E.w, "t1", 2, 0, s0 + 2, 400, "bad");
	CHECK_NOERR(wait_entries(4));
	CHECK_EQ_INT(tenant_state("t1", &ts), 0);
	CHECK_EQ_INT(ts.entries, 4);
	CHECK_EQ_INT(queue_claim(&E.q, 1, &job), 0);
	queue_unclaim(&E.q, &job);
	CHECK_EQ_INT(job.first, s0);
	CHECK_EQ_INT(ts.first_seq, s0);
}

/* The same for an acknowledgement of a range after the oldest entry. */
static void test_ack_middle_keeps_older(void)
{
	struct queue_tenant ts;
	struct queue_job job;
	struct entries es = { NULL, 0 };
	uint64_t s0;

	CHECK_NOERR(env_create(64 * MIB, 8 * MIB));
	CHECK_NOERR(batches_new(6));
	for (int i = 0; i < 6; i++)
		CHECK_NOERR(batch_fixture(&E.b[i], "t1", i, NULL));
	CHECK_NOERR(submit_each(0, 5));
	CHECK_NOERR(entries_read(E.st->queue, &es));
	s0 = es.e[0].seq;
	entries_free(&es);
	writer_ack(E.w, "t1", 2, 0, s0 + 1, s0 + 2);
	CHECK_NOERR(wait_entries(3));
	CHECK_EQ_INT(tenant_state("t1", &ts), 0);
	CHECK_EQ_INT(ts.entries, 3);
	CHECK_EQ_INT(queue_claim(&E.q, 1, &job), 0);
	queue_unclaim(&E.q, &job);
	CHECK_EQ_INT(job.first, s0);
	CHECK_EQ_INT(ts.first_seq, s0);
}

/* And for one of the newest entries: the older ones are still counted. */
static void test_ack_newest_keeps_older(void)
{
	struct queue_tenant ts;
	struct queue_totals t;
	struct queue_job job;
	struct entries es = { NULL, 0 };
	uint64_t s0;

	CHECK_NOERR(env_create(64 * MIB, 8 * MIB));
	CHECK_NOERR(batches_new(6));
	for (int i = 0; i < 6; i++)
		CHECK_NOERR(batch_fixture(&E.b[i], "t1", i, NULL));
	CHECK_NOERR(submit_each(0, 5));
	CHECK_NOERR(entries_read(E.st->queue, &es));
	s0 = es.e[0].seq;
	entries_free(&es);
	writer_ack(E.w, "t1", 2, 0, s0 + 3, s0 + 4);
	CHECK_NOERR(wait_entries(3));
	queue_totals(&E.q, &t);
	CHECK_EQ_INT(t.samples, 3 * 500);
	CHECK_EQ_INT(tenant_state("t1", &ts), 0);
	CHECK_EQ_INT(ts.entries, 3);
	CHECK_EQ_INT(ts.samples, 3 * 500);
	CHECK_EQ_INT(ts.first_seq, s0);
	CHECK_EQ_INT(queue_claim(&E.q, 1, &job), 0);
	queue_unclaim(&E.q, &job);
	CHECK_EQ_INT(job.first, s0);
}

/* Reopening rebuilds the queue from the records, and sequence numbers go
 * on where they were. */
static void test_reopen_rebuilds_queue(void)
{
	static const int left[] = { 3, 4, 5, 6, 7 }, after[] = { 3, 4, 5, 6, 7, 1 };
	struct entries sa = { NULL, 0 }, es = { NULL, 0 };
	struct queue_totals t1, t2;
	struct queue_tenant a, b;
	struct store_span span;
	uint64_t s0, next, newest;
	size_t nsa;

	CHECK_NOERR(env_create(64 * MIB, 8 * MIB));
	CHECK_NOERR(batches_new(NFX + 1));
	for (int i = 0; i < NFX; i++)
		CHECK_NOERR(batch_fixture(&E.b[i], "t1", i, NULL));
	CHECK_NOERR(batch_fixture(&E.b[NFX], "t1", 1, NULL));
	CHECK_NOERR(submit_each(0, NFX));
	CHECK_NOERR(queue_is("t1", all8, NFX, &span));
	s0 = span.first_seq;
	writer_ack(E.w, "t1", 2, 0, s0, s0 + 1);
	CHECK_NOERR(wait_entries(NFX - 2));
	writer_set_aside(E.w, "t1", 2, 0, s0 + 2, 422, "refused");
	CHECK_NOERR(wait_entries(NFX - 3));
	queue_totals(&E.q, &t1);
	CHECK_EQ_INT(tenant_state("t1", &a), 0);
	next = E.st->next_seq;
	CHECK_EQ_INT(next, s0 + NFX);

	env_stop();
	CHECK_NOERR(env_start());
	queue_totals(&E.q, &t2);
	CHECK_EQ_INT(t2.entries, t1.entries);
	CHECK_EQ_INT(t2.bytes, t1.bytes);
	CHECK_EQ_INT(t2.samples, t1.samples);
	CHECK_EQ_INT(t2.oldest_ms, t1.oldest_ms);
	CHECK_EQ_INT(tenant_state("t1", &b), 0);
	CHECK_EQ_INT(b.entries, a.entries);
	CHECK_EQ_INT(b.bytes, a.bytes);
	CHECK_EQ_INT(b.samples, a.samples);
	CHECK_EQ_INT(a.first_seq, s0 + 3);
	CHECK_EQ_INT(b.first_seq, s0 + 3);
	CHECK_EQ_INT(b.last_seq, s0 + NFX - 1);
	CHECK_EQ_INT(b.lane[0].send_seq, s0 + 3);
	CHECK_NOERR(entries_read(E.st->queue, &es));
	newest = es.n ? es.e[0].h.created_ms : 0;
	entries_free(&es);
	CHECK_EQ_INT(t2.oldest_ms, newest);
	CHECK_EQ_INT(E.st->next_seq, next);
	CHECK_NOERR(queue_is("t1", left, 5, &span));
	CHECK_NOERR(entries_read(E.st->setaside, &sa));
	nsa = sa.n;
	entries_free(&sa);
	CHECK_EQ_INT(nsa, 1);

	/* A new entry takes the next number, after every one used. */
	CHECK_NOERR(submit_each(NFX, NFX + 1));
	CHECK_EQ_INT(E.b[NFX].status, BATCH_STORED);
	CHECK_NOERR(entries_read(E.st->queue, &es));
	newest = es.n ? es.e[es.n - 1].seq : 0;
	entries_free(&es);
	CHECK_EQ_INT(newest, next);
	CHECK_NOERR(queue_is("t1", after, 6, &span));
}

/* A fresh store holding each fixture as an entry of tenant t1, in order;
 * *span describes them. */
static const char *store_each_fixture(struct store_span *span)
{
	const char *e;

	if ((e = env_create(64 * MIB, 8 * MIB)) != NULL ||
	    (e = batches_new(NFX)) != NULL)
		return e;
	for (int i = 0; i < NFX; i++)
		if ((e = batch_fixture(&E.b[i], "t1", i, NULL)) != NULL)
			return e;
	if ((e = submit_each(0, NFX)) != NULL)
		return e;
	return queue_is("t1", all8, NFX, span);
}

/* Entries every lane is through that are still there at a start (an
 * answer's transaction left them past its budget, then the relay stopped
 * or crashed) are deleted by the start's sweep; the others stay. */
static void test_sweep_at_start(void)
{
	static const int left[] = { 6, 7 };
	struct store_span span;
	struct store_txn *txn;
	struct queue_totals t;
	char why[512];
	uint64_t s0;

	CHECK_NOERR(store_each_fixture(&span));
	s0 = span.first_seq;
	env_stop();
	/* Every lane through all but the last two, no entry deleted. */
	CHECK((E.st = store_open(E.path, E.cfg.max_size, why,
				 sizeof(why))) != NULL);
	E.st_open = 1;
	CHECK_EQ_INT(store_txn_begin(E.st, &txn), 0);
	for (unsigned l = 0; l < STORE_LANES; l++)
		CHECK_EQ_INT(store_lane_set(txn, "t1", 2, l, s0 + NFX - 3), 0);
	CHECK_EQ_INT(store_txn_commit(txn), 0);
	store_close(E.st);
	E.st_open = 0;
	CHECK_NOERR(env_start());
	CHECK_NOERR(wait_entries(2));
	queue_totals(&E.q, &t);
	CHECK_EQ_INT(t.samples, fx_samples(left, 2));
	CHECK_NOERR(queue_is("t1", left, 2, &span));
	CHECK_EQ_INT(span.first_seq, s0 + NFX - 2);
}

/* Answers that the writer holds back for company (only deliveries wait,
 * and it gives them up to 200 ms for more: gather_acks) are committed when
 * it stops, so a restart does not send those requests again. */
static void test_gathered_acks_committed_at_stop(void)
{
	static const int left[] = { 4, 5, 6, 7 };
	struct store_span span;
	struct queue_tenant ts;
	uint64_t s0;

	CHECK_NOERR(store_each_fixture(&span));
	s0 = span.first_seq;
	/* Right after a round that stored requests, an answer goes at once. */
	writer_ack(E.w, "t1", 2, 0, s0, s0 + 1);
	CHECK_NOERR(wait_entries(NFX - 2));
	/* This one waits for company; the stop ends the wait. */
	writer_ack(E.w, "t1", 2, 0, s0 + 2, s0 + 3);
	env_stop();
	CHECK_NOERR(env_start());
	CHECK_NOERR(queue_is("t1", left, 4, &span));
	CHECK_EQ_INT(span.first_seq, s0 + 4);
	CHECK_EQ_INT(tenant_state("t1", &ts), 0);
	CHECK_EQ_INT(ts.first_seq, s0 + 4);
	CHECK_EQ_INT(ts.lane[0].send_seq, s0 + 4);
}

/* Reads meta "next_seq" directly. */
static uint64_t meta_next_seq(void)
{
	MDB_txn *txn;
	MDB_val k = { 8, "next_seq" }, v;
	uint64_t n = 0;

	if (mdb_txn_begin(E.st->env, NULL, MDB_RDONLY, &txn) != 0)
		return 0;
	if (mdb_get(txn, E.st->meta, &k, &v) == 0 && v.mv_size == 8)
		memcpy(&n, v.mv_data, 8);
	mdb_txn_abort(txn);
	return n;
}

/* With every entry delivered and deleted, the numbers still go on after a
 * restart: none is used twice. */
static void test_seq_not_reused_after_restart(void)
{
	struct entries es = { NULL, 0 };
	struct store_span span;
	struct queue_totals t;
	uint64_t s0, next, got;

	CHECK_NOERR(env_create(64 * MIB, 8 * MIB));
	CHECK_NOERR(batches_new(4));
	for (int i = 0; i < 4; i++)
		CHECK_NOERR(batch_fixture(&E.b[i], "t1", i, NULL));
	CHECK_NOERR(submit_each(0, 3));
	CHECK_NOERR(queue_is("t1", all8, 3, &span));
	s0 = span.first_seq;
	writer_ack(E.w, "t1", 2, 0, s0, s0 + 2);
	CHECK_NOERR(wait_entries(0));
	next = E.st->next_seq;
	CHECK_EQ_INT(next, s0 + 3);
	CHECK_EQ_INT(meta_next_seq(), next);

	env_stop();
	CHECK_NOERR(env_start());
	queue_totals(&E.q, &t);
	CHECK_EQ_INT(t.entries, 0);
	CHECK_EQ_INT(E.st->next_seq, next);
	CHECK_NOERR(submit_each(3, 4));
	CHECK_NOERR(entries_read(E.st->queue, &es));
	got = es.n == 1 ? es.e[0].seq : 0;
	entries_free(&es);
	CHECK_EQ_INT(got, next);
	CHECK_EQ_INT(meta_next_seq(), next + 1);
}

/* ---- many entries ------------------------------------------------------ */

#define MANY 2000
#define MANY_SAMPLES 10

/*
 * Packs a WriteRequest of one series {__name__="many", i="<i>"} with
 * MANY_SAMPLES samples. Returns malloc'd bytes (caller frees).
 */
static uint8_t *small_request(size_t i, size_t *len)
{
	Prometheus__WriteRequest req = PROMETHEUS__WRITE_REQUEST__INIT;
	Prometheus__TimeSeries ts = PROMETHEUS__TIME_SERIES__INIT, *tsp = &ts;
	Prometheus__Label l0 = PROMETHEUS__LABEL__INIT,
			  l1 = PROMETHEUS__LABEL__INIT, *lp[2] = { &l0, &l1 };
	Prometheus__Sample sm[MANY_SAMPLES], *smp[MANY_SAMPLES];
	char id[24];

	snprintf(id, sizeof(id), "%zu", i);
	l0.name = "__name__";
	l0.value = "many";
	l1.name = "i";
	l1.value = id;
	for (size_t j = 0; j < MANY_SAMPLES; j++) {
		prometheus__sample__init(&sm[j]);
		sm[j].value = (double)i + (double)j / 8;
		sm[j].timestamp = 1700000000000 + (int64_t)j * 15000;
		smp[j] = &sm[j];
	}
	ts.n_labels = 2;
	ts.labels = lp;
	ts.n_samples = MANY_SAMPLES;
	ts.samples = smp;
	req.n_timeseries = 1;
	req.timeseries = &tsp;
	return pack(&req.base, len);
}

/* Which i a stored small request carries, or -1. */
static long entry_series_i(const struct entry *en)
{
	Prometheus__WriteRequest *m;
	size_t rawlen;
	uint8_t *raw;
	long i = -1;

	raw = uncompress(ENTRY_BLOCK(en),
			 ENTRY_BLOCK_LEN(en), &rawlen);
	if (raw == NULL)
		return -1;
	m = prometheus__write_request__unpack(NULL, rawlen, raw);
	free(raw);
	if (m == NULL)
		return -1;
	if (m->n_timeseries == 1 && m->timeseries[0]->n_labels == 2 &&
	    strcmp(m->timeseries[0]->labels[1]->name, "i") == 0 &&
	    m->timeseries[0]->n_samples == MANY_SAMPLES)
		i = strtol(m->timeseries[0]->labels[1]->value, NULL, 10);
	prometheus__write_request__free_unpacked(m, NULL);
	return i;
}

/*
 * Checks that tenant t (requests i = 3k + t) holds exactly its k in
 * [0, n) outside [gone_from, gone_to), oldest first.
 */
static const char *many_check(const struct entries *es, int t, size_t n,
			      size_t gone_from, size_t gone_to)
{
	static size_t idx[MANY];
	char name[8];
	size_t got, j = 0;

	snprintf(name, sizeof(name), "t%d", t);
	got = entries_of(es, name, idx, MANY);
	for (size_t k = 0; k < n; k++) {
		long want = (long)(3 * k) + t, have;

		if (k >= gone_from && k < gone_to)
			continue;
		if (j >= got)
			return err("%s: entry for i=%ld missing", name, want);
		if ((have = entry_series_i(&es->e[idx[j]])) != want)
			return err("%s: entry %zu holds i=%ld, not i=%ld", name,
				   j, have, want);
		if (j > 0 && es->e[idx[j]].seq <= es->e[idx[j - 1]].seq)
			return err("%s: sequence numbers out of order", name);
		j++;
	}
	if (j != got)
		return err("%s: %zu entries, expected %zu", name, got, j);
	return NULL;
}

/* Sequence numbers of tenant t's entries, in order, into seqs. */
static size_t many_seqs(const struct entries *es, int t, uint64_t *seqs)
{
	static size_t idx[MANY];
	char name[8];
	size_t n;

	snprintf(name, sizeof(name), "t%d", t);
	n = entries_of(es, name, idx, MANY);
	for (size_t i = 0; i < n; i++)
		seqs[i] = es->e[idx[i]].seq;
	return n;
}

/*
 * 2000 small entries of three tenants; acknowledgements at the start of
 * the first, the middle of the second and the end of the third (the end of
 * the database) delete exactly those entries across many LMDB pages.
 */
static void test_many_entries_ack_ranges(void)
{
	static uint64_t s0[MANY], s1[MANY], s2[MANY];
	struct entries es = { NULL, 0 };
	struct queue_totals t;
	struct queue_tenant q0;
	size_t n0, n1, n2;
	const char *e = NULL;

	/* max_request_size 1: every batch is an entry of its own. */
	CHECK_NOERR(env_create(64 * MIB, 1));
	CHECK_NOERR(batches_new(MANY));
	for (size_t i = 0; i < MANY; i++) {
		struct wire_counts c = { .series = 1, .samples = MANY_SAMPLES };
		char tenant[8];
		size_t len;
		uint8_t *raw = small_request(i, &len);

		CHECK(raw != NULL);
		snprintf(tenant, sizeof(tenant), "t%zu", i % 3);
		memset(&E.b[i], 0, sizeof(E.b[i]));
		E.b[i].tlen = strlen(tenant);
		memcpy(E.b[i].tenant, tenant, E.b[i].tlen);
		E.b[i].done = on_done;
		e = batch_add_chunk(&E.b[i], raw, len, &c);
		free(raw);
		CHECK_NOERR(e);
	}
	CHECK_NOERR(submit_wait(0, MANY));
	for (size_t i = 0; i < MANY; i++)
		CHECK_EQ_INT(E.b[i].status, BATCH_STORED);
	queue_totals(&E.q, &t);
	CHECK_EQ_INT(t.entries, MANY);
	CHECK_EQ_INT(t.samples, MANY * MANY_SAMPLES);
	CHECK_NOERR(entries_read(E.st->queue, &es));
	n0 = many_seqs(&es, 0, s0);
	n1 = many_seqs(&es, 1, s1);
	n2 = many_seqs(&es, 2, s2);
	e = many_check(&es, 0, 667, 0, 0);
	if (e == NULL)
		e = many_check(&es, 1, 667, 0, 0);
	if (e == NULL)
		e = many_check(&es, 2, 666, 0, 0);
	entries_free(&es);
	CHECK_NOERR(e);
	CHECK_EQ_INT(n0, 667);
	CHECK_EQ_INT(n1, 667);
	CHECK_EQ_INT(n2, 666);

	writer_ack(E.w, "t0", 2, 0, 0, s0[49]);            /* the first 50 */
	writer_ack(E.w, "t1", 2, 0, s1[100], s1[499]);     /* 400 in the middle */
	writer_ack(E.w, "t2", 2, 0, s2[516], s2[665] + 1000); /* the last 150 */
	CHECK_NOERR(wait_entries(MANY - 50 - 400 - 150));
	queue_totals(&E.q, &t);
	CHECK_EQ_INT(t.samples, (MANY - 600) * MANY_SAMPLES);
	CHECK_EQ_INT(tenant_state("t0", &q0), 0);
	CHECK_EQ_INT(q0.entries, 617);
	CHECK_EQ_INT(q0.first_seq, s0[50]);
	CHECK_NOERR(entries_read(E.st->queue, &es));
	e = many_check(&es, 0, 667, 0, 50);
	if (e == NULL)
		e = many_check(&es, 1, 667, 100, 500);
	if (e == NULL)
		e = many_check(&es, 2, 666, 516, 666);
	entries_free(&es);
	CHECK_NOERR(e);

	/* All of the tenant in the middle of the database: its neighbours
	 * keep every entry. */
	writer_ack(E.w, "t1", 2, 0, 0, UINT64_MAX);
	CHECK_NOERR(wait_entries(617 + 516));
	CHECK_NOERR(entries_read(E.st->queue, &es));
	e = many_check(&es, 0, 667, 0, 50);
	if (e == NULL)
		e = many_check(&es, 1, 0, 0, 0);
	if (e == NULL)
		e = many_check(&es, 2, 666, 516, 666);
	entries_free(&es);
	CHECK_NOERR(e);
	/* And the rest, up to an empty database. */
	writer_ack(E.w, "t2", 2, 0, 0, UINT64_MAX);
	writer_ack(E.w, "t0", 2, 0, 0, UINT64_MAX);
	CHECK_NOERR(wait_entries(0));
	queue_totals(&E.q, &t);
	CHECK_EQ_INT(t.bytes, 0);
	CHECK_EQ_INT(t.samples, 0);
	CHECK_NOERR(entries_read(E.st->queue, &es));
	n0 = es.n;
	entries_free(&es);
	CHECK_EQ_INT(n0, 0);
}

/* ---- buffer full ------------------------------------------------------- */

static void test_buffer_full(void)
{
	enum { N = 120, BIG = 100 };
	struct queue_totals t;
	struct store_span span;
	struct buf body;
	size_t stored = 0, full = 0, series = 0;
	uint64_t stored_bytes = 0, vb;
	const char *e = NULL;

	CHECK_NOERR(env_create(MIB, 8 * MIB));
	CHECK_NOERR(batches_new(N + 2));
	for (int i = 0; i < N; i++)
		CHECK_NOERR(batch_fixture(&E.b[i], "t1", 1, NULL));
	vb = E.b[0].value_bytes;
	CHECK(N * vb > MIB);
	CHECK_NOERR(submit_wait(0, N));
	for (int i = 0; i < N; i++) {
		if (E.b[i].status == BATCH_STORED) {
			stored++;
			stored_bytes += E.b[i].value_bytes;
		} else if (E.b[i].status == BATCH_REFUSED &&
			   E.b[i].reason == REFUSE_BUFFER_FULL) {
			full++;
		}
	}
	CHECK_EQ_INT(stored + full, N);
	CHECK(stored > 0);
	CHECK(full > 0);
	CHECK(stored_bytes <= MIB);
	queue_totals(&E.q, &t);
	CHECK(t.bytes <= MIB);
	/* Refusing only once the buffer is full, not while two more batches
	 * would still fit (max_size bounds what values take on disk, and
	 * what is not a value: the tenant's destination record takes a leaf
	 * page of its own, which the round that writes it counts only in
	 * the next round's measure, up to one more batch). */
	CHECK((stored + 2) * store_value_footprint(E.st, 2, vb) +
	      2 * store_page_size(E.st) > MIB);
	CHECK_EQ_INT(t.samples, stored * fx[1].counts.samples);
	/* What was stored is all there. */
	buf_init(&body, 1u << 30);
	for (uint64_t seq = 0; e == NULL;) {
		buf_reset(&body);
		if (store_read_batch(E.st, "t1", 2, 0, seq, UINT64_MAX, UINT64_MAX, 256, &body,
				     &span) < 0) {
			e = "store_read_batch failed";
		} else if (span.entries == 0) {
			break;
		} else {
			size_t rawlen;
			uint8_t *raw = uncompress(body.p, body.len, &rawlen);
			Prometheus__WriteRequest *m = raw == NULL ? NULL :
				prometheus__write_request__unpack(NULL, rawlen, raw);
			if (m == NULL)
				e = "stored data does not decode";
			else
				series += m->n_timeseries;
			if (m != NULL)
				prometheus__write_request__free_unpacked(m, NULL);
			free(raw);
			seq = span.last_seq + 1;
		}
	}
	buf_free(&body);
	CHECK_NOERR(e);
	CHECK_EQ_INT(series, stored * fx[1].counts.series);

	/* Emptied, the buffer takes batches again, but never one larger
	 * than all of it. */
	writer_ack(E.w, "t1", 2, 0, 0, UINT64_MAX);
	CHECK_NOERR(wait_entries(0));
	CHECK_NOERR(batch_fixture(&E.b[N], "t1", 3, NULL));
	for (int i = 1; i < BIG; i++)
		CHECK_NOERR(batch_add_chunk(&E.b[N], fx[3].raw, fx[3].rawlen,
					    &fx[3].counts));
	CHECK(E.b[N].value_bytes > MIB);
	CHECK_NOERR(batch_fixture(&E.b[N + 1], "t1", 2, NULL));
	CHECK_NOERR(submit_each(N, N + 2));
	CHECK_EQ_INT(E.b[N].status, BATCH_REFUSED);
	CHECK_EQ_INT(E.b[N].reason, REFUSE_BUFFER_FULL);
	CHECK_EQ_INT(E.b[N + 1].status, BATCH_STORED);
	queue_totals(&E.q, &t);
	CHECK_EQ_INT(t.entries, 1);
	CHECK_EQ_INT(t.samples, fx[2].counts.samples);
}

/* ---- merging batches of one commit ------------------------------------- */

/*
 * Submits batch 0 and holds the writer in its done callback while batches
 * 1..n-1 are queued, so that those are written in one round.
 */
static const char *submit_held(struct gate *g, size_t n)
{
	const char *e = NULL;

	writer_submit(E.w, &E.b[0]);
	if (gate_wait_entered(g) < 0)
		e = "the writer never finished the first batch";
	for (size_t i = 1; i < n; i++)
		writer_submit(E.w, &E.b[i]);
	gate_open(g);
	if (e == NULL && wait_done(n) < 0)
		e = "timed out waiting for the writer";
	return e;
}

/* Batches of one tenant committed together become one entry. */
static void test_merge_one_round(void)
{
	static const int round2[] = { 1, 2, 3, 4, 5, 6, 7 };
	struct entries es = { NULL, 0 };
	struct store_span span;
	struct queue_totals t;
	struct gate g = { 0, 0 };
	struct entry_hdr h0, h1;
	const char *e = NULL;
	size_t n;

	memset(&h0, 0, sizeof(h0));
	memset(&h1, 0, sizeof(h1));
	CHECK_NOERR(env_create(64 * MIB, 8 * MIB));
	CHECK_NOERR(batches_new(NFX));
	for (int i = 0; i < NFX; i++)
		CHECK_NOERR(batch_fixture(&E.b[i], "m", i, i == 0 ? &g : NULL));
	CHECK_NOERR(submit_held(&g, NFX));
	for (int i = 0; i < NFX; i++)
		CHECK_EQ_INT(E.b[i].status, BATCH_STORED);
	queue_totals(&E.q, &t);
	CHECK_EQ_INT(t.entries, 2);
	CHECK_EQ_INT(t.samples, fx_samples(all8, NFX));
	CHECK_NOERR(entries_read(E.st->queue, &es));
	n = es.n;
	if (n == 2) {
		h0 = es.e[0].h;
		h1 = es.e[1].h;
		e = block_is(ENTRY_BLOCK(&es.e[1]),
			     ENTRY_BLOCK_LEN(&es.e[1]), round2, 7);
	}
	entries_free(&es);
	CHECK_EQ_INT(n, 2);
	CHECK_NOERR(e);
	CHECK_EQ_INT(h0.requests, 1);
	CHECK_EQ_INT(h1.requests, 7);
	CHECK_EQ_INT(h0.requests + h1.requests, NFX);
	CHECK_EQ_INT(h1.samples, fx_samples(round2, 7));
	CHECK_EQ_INT(h1.metadata, fx[5].counts.metadata);
	{
		uint64_t series = 0, raw = 0;
		for (int i = 1; i < NFX; i++) {
			series += fx[i].counts.series;
			raw += fx[i].rawlen;
		}
		CHECK_EQ_INT(h1.series, series);
		CHECK_EQ_INT(h1.raw_len, raw);
	}
	CHECK_NOERR(queue_is("m", all8, NFX, &span));
}

/* Sums of the headers of es's entries: requests, samples. */
static void entries_sums(const struct entries *es, uint64_t *requests,
			 uint64_t *samples)
{
	*requests = *samples = 0;
	for (size_t i = 0; i < es->n; i++) {
		*requests += es->e[i].h.requests;
		*samples += es->e[i].h.samples;
	}
}

/*
 * With a smaller max_request_size the round's batches go into several
 * entries, none decoding to more than the limit (each fixture is below
 * it), in order, with every request and sample counted.
 */
static void test_merge_respects_max_request_size(void)
{
	struct entries es = { NULL, 0 };
	struct store_span span;
	struct gate g = { 0, 0 };
	uint64_t requests, samples;
	const char *e = NULL;
	size_t n;

	CHECK_NOERR(env_create(64 * MIB, 150000));
	CHECK_NOERR(batches_new(NFX));
	for (int i = 0; i < NFX; i++)
		CHECK_NOERR(batch_fixture(&E.b[i], "m", i, i == 0 ? &g : NULL));
	CHECK_NOERR(submit_held(&g, NFX));
	for (int i = 0; i < NFX; i++)
		CHECK_EQ_INT(E.b[i].status, BATCH_STORED);
	CHECK_NOERR(entries_read(E.st->queue, &es));
	n = es.n;
	entries_sums(&es, &requests, &samples);
	for (size_t i = 0; i < es.n && e == NULL; i++)
		if (es.e[i].h.raw_len > 150000)
			e = err("entry %zu: %u decoded bytes", i, es.e[i].h.raw_len);
	entries_free(&es);
	CHECK_NOERR(e);
	/* 57301 | 70040+57334 | 71105+58657 | 22161+64700+45023 */
	CHECK_EQ_INT(n, 4);
	CHECK_EQ_INT(requests, NFX);
	CHECK_EQ_INT(samples, fx_samples(all8, NFX));
	CHECK_NOERR(queue_is("m", all8, NFX, &span));
	CHECK_EQ_INT(span.entries, 4);
}

/*
 * Each entry's requests counts the requests whose data it holds: with
 * one chunk per batch, the number of batches merged into it. An entry
 * never says it holds no request.
 */
static void test_merge_requests_per_entry(void)
{
	static const uint32_t want[] = { 1, 2, 2, 3 };
	struct entries es = { NULL, 0 };
	struct gate g = { 0, 0 };
	uint32_t got[8] = { 0 };
	size_t n;

	CHECK_NOERR(env_create(64 * MIB, 150000));
	CHECK_NOERR(batches_new(NFX));
	for (int i = 0; i < NFX; i++)
		CHECK_NOERR(batch_fixture(&E.b[i], "m", i, i == 0 ? &g : NULL));
	CHECK_NOERR(submit_held(&g, NFX));
	CHECK_NOERR(entries_read(E.st->queue, &es));
	n = es.n;
	for (size_t i = 0; i < es.n && i < 8; i++)
		got[i] = es.e[i].h.requests;
	entries_free(&es);
	CHECK_EQ_INT(n, 4);
	for (size_t i = 0; i < 4; i++) {
		if (got[i] != want[i]) {
			snprintf(unit_msg, sizeof(unit_msg),
				 "%s:%d: entries' requests are %u %u %u %u, "
				 "their data comes from %u %u %u %u requests",
				 __FILE__, __LINE__, got[0], got[1], got[2],
				 got[3], want[0], want[1], want[2], want[3]);
			unit_cur_failed = 1;
			return;
		}
	}
}

/* Two tenants in one round: one entry each, in submission order. */
static void test_merge_two_tenants(void)
{
	static const int x2[] = { 1, 3, 5, 7 }, y[] = { 2, 4, 6 },
			 xall[] = { 0, 1, 3, 5, 7 };
	struct store_span span;
	struct queue_tenant qx, qy;
	struct gate g = { 0, 0 };
	struct entries es = { NULL, 0 };
	size_t n;
	const char *e = NULL;

	CHECK_NOERR(env_create(64 * MIB, 8 * MIB));
	CHECK_NOERR(batches_new(NFX));
	for (int i = 0; i < NFX; i++)
		CHECK_NOERR(batch_fixture(&E.b[i], i % 2 ? "x" : "y", i,
					  i == 0 ? &g : NULL));
	/* Batch 0 goes to "x" too. */
	memcpy(E.b[0].tenant, "x", 2);
	CHECK_NOERR(submit_held(&g, NFX));
	CHECK_EQ_INT(tenant_state("x", &qx), 0);
	CHECK_EQ_INT(tenant_state("y", &qy), 0);
	CHECK_EQ_INT(qx.entries, 2);
	CHECK_EQ_INT(qy.entries, 1);
	CHECK_EQ_INT(qx.samples, fx_samples(xall, 5));
	CHECK_EQ_INT(qy.samples, fx_samples(y, 3));
	CHECK_NOERR(entries_read(E.st->queue, &es));
	n = es.n;
	if (n == 3)
		e = block_is(ENTRY_BLOCK(&es.e[1]),
			     ENTRY_BLOCK_LEN(&es.e[1]), x2, 4);
	if (n == 3 && e == NULL && es.e[1].h.requests != 4)
		e = "x's merged entry does not count 4 requests";
	if (n == 3 && e == NULL && es.e[2].h.requests != 3)
		e = "y's entry does not count 3 requests";
	entries_free(&es);
	CHECK_EQ_INT(n, 3);
	CHECK_NOERR(e);
	CHECK_NOERR(queue_is("x", xall, 5, &span));
	CHECK_NOERR(queue_is("y", y, 3, &span));
}

/* ---- from request bodies ----------------------------------------------- */

/* Bodies through ingest_body, stored and read back: as sent without a
 * tenant label, with the label set otherwise. */
static void test_ingest_then_store(void)
{
	static const int three[] = { 0, 5, 7 };
	struct store_span span;
	struct buf body;
	struct wire_counts counts;
	uint64_t decoded, series = 0;
	char why[256];
	const char *e = NULL;

	CHECK_NOERR(env_create(64 * MIB, 8 * MIB));
	CHECK_NOERR(batches_new(6));
	for (int i = 0; i < 6; i++) {
		struct ingest_req r = { "acme", 4, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL };
		int status;

		if (i >= 3) {
			r.tenant = "labelled";
			r.tlen = 8;
			r.tenant_label = "tenant";
		}
		buf_init(&body, E.cfg.max_body_size);
		buf_append(&body, fx[three[i % 3]].z, fx[three[i % 3]].zlen);
		status = ingest_body(&E.cfg, &r, &body, &E.b[i], &counts,
				     &decoded, why, sizeof(why));
		buf_free(&body);
		CHECK_EQ_INT(status, 0);
		E.b[i].done = on_done;
	}
	CHECK_NOERR(submit_wait(0, 6));
	for (int i = 0; i < 6; i++)
		CHECK_EQ_INT(E.b[i].status, BATCH_STORED);
	/* Each series in its lane, in order there; all of them. */
	{
		struct queue_tenant qa;
		size_t n = 0;
		CHECK_NOERR(lanes_are("acme", three, 3, &n));
		CHECK_EQ_INT(tenant_state("acme", &qa), 0);
		CHECK_EQ_INT(qa.samples, fx_samples(three, 3));
	}

	/* The labelled tenant: every series carries tenant="labelled". */
	for (unsigned l = 0; l < LANES && e == NULL; l++) {
		buf_init(&body, 1u << 30);
		if (store_read_batch(E.st, "labelled", 8, l, 0, UINT64_MAX,
				     UINT64_MAX, 256, &body, &span) < 0) {
			e = "cannot read \"labelled\"";
		} else if (span.entries > 0) {
			size_t rawlen;
			uint8_t *raw = uncompress(body.p, body.len, &rawlen);
			Prometheus__WriteRequest *m = raw == NULL ? NULL :
				prometheus__write_request__unpack(NULL, rawlen, raw);

			if (m == NULL)
				e = "stored data does not decode";
			for (size_t i = 0; m != NULL && i < m->n_timeseries &&
			     e == NULL; i++) {
				const Prometheus__TimeSeries *s = m->timeseries[i];
				size_t tl = 0;

				series++;
				for (size_t j = 0; j < s->n_labels; j++)
					if (strcmp(s->labels[j]->name, "tenant") == 0 &&
					    strcmp(s->labels[j]->value, "labelled") == 0)
						tl++;
				if (tl != 1)
					e = err("series %zu has %zu tenant labels",
						i, tl);
			}
			if (m != NULL && e == NULL && l == 0 &&
			    m->n_metadata != fx[5].req->n_metadata)
				e = "metadata lost";
			if (m != NULL)
				prometheus__write_request__free_unpacked(m, NULL);
			free(raw);
		}
		buf_free(&body);
	}
	CHECK_NOERR(e);
	CHECK_EQ_INT(series, fx[0].counts.series + fx[5].counts.series +
			     fx[7].counts.series);
	ingest_thread_cleanup();
}

/* ---- refusals at commit, failures, the policies ---------------------- */

/* env_create with when_full and max_age set before the writer starts. */
static const char *env_create_policy(uint64_t max_size, int when_full,
				     uint64_t max_age_ms)
{
	const char *e;

	if ((e = env_mkdir()) != NULL)
		return e;
	config_defaults(&E.cfg);
	E.have_cfg = 1;
	free(E.cfg.path);
	if ((E.cfg.path = strdup(E.path)) == NULL)
		return "out of memory";
	E.cfg.max_size = max_size;
	E.cfg.max_request_size = 8 * MIB;
	E.cfg.when_full = when_full;
	E.cfg.max_age_ms = max_age_ms;
	return NULL;
}

/* The first sequence number in the queue database (0: none). */
static uint64_t first_seq(void)
{
	struct entries es;
	uint64_t s = 0;

	if (entries_read(E.st->queue, &es) == NULL) {
		if (es.n > 0)
			s = es.e[0].seq;
		entries_free(&es);
	}
	return s;
}

/* Sums one usage column over every record of the store. */
struct usage_sum {
	size_t offset;           /* of a uint64_t in struct usage_rec */
	uint64_t total;
};

static int usage_add_up(void *arg, const char *tenant, size_t tlen,
			uint64_t hour, const void *val, size_t len)
{
	struct usage_sum *u = arg;
	uint64_t v;

	(void)tenant, (void)tlen, (void)hour;
	if (len >= sizeof(struct usage_rec)) {
		memcpy(&v, (const char *)val + u->offset, sizeof(v));
		u->total += v;
	}
	return 0;
}

static uint64_t usage_total(size_t offset)
{
	struct usage_sum u = { offset, 0 };

	return store_usage_each(E.st, NULL, 0, 0, usage_add_up, &u) == 0 ?
	       u.total : UINT64_MAX;
}

#define DROPPED(why) (offsetof(struct usage_rec, samples_dropped) + \
		      (why) * sizeof(uint64_t))

/* A commit that fails (the seam stands in for a sync that fails) */
static int failing_commit(MDB_txn *txn)
{
	mdb_txn_abort(txn);
	return EIO;
}

/* A write that finds the filesystem full. */
static int nospace_put(MDB_txn *txn, MDB_dbi dbi, MDB_val *key, MDB_val *val,
		       unsigned flags)
{
	(void)txn, (void)dbi, (void)key, (void)val, (void)flags;
	return ENOSPC;
}

/* A failed commit refuses the round's batches with REFUSE_STORAGE (503 at
 * the HTTP side), leaves nothing behind, and gives its sequence number
 * back: the next stored entry takes it. */
static void test_failed_commit_refused(void)
{
	uint64_t errors0 = metric_get(&metrics.commit_errors), s0;
	struct queue_totals t;

	CHECK_NOERR(env_create(64 * MIB, 8 * MIB));
	CHECK_NOERR(batches_new(3));
	for (int i = 0; i < 3; i++)
		CHECK_NOERR(batch_fixture(&E.b[i], "t1", i, NULL));
	CHECK_NOERR(submit_wait(0, 1));
	CHECK_EQ_INT(E.b[0].status, BATCH_STORED);
	s0 = first_seq();
	store_seam_commit = failing_commit;
	E.b[1].done = on_done;
	CHECK_NOERR(submit_wait(1, 2));
	store_seam_commit = mdb_txn_commit;
	CHECK_EQ_INT(E.b[1].status, BATCH_REFUSED);
	CHECK_EQ_INT(E.b[1].reason, REFUSE_STORAGE);
	CHECK(metric_get(&metrics.commit_errors) > errors0);
	queue_totals(&E.q, &t);
	CHECK_EQ_INT(t.entries, 1);
	CHECK_EQ_INT(E.st->next_seq, s0 + 1);
	CHECK_NOERR(submit_wait(2, 3));
	CHECK_EQ_INT(E.b[2].status, BATCH_STORED);
	{
		struct entries es;

		CHECK_NOERR(entries_read(E.st->queue, &es));
		CHECK(es.n == 2);
		t.entries = es.e[1].seq;
		entries_free(&es);
		CHECK_EQ_INT(t.entries, s0 + 1);
	}
}

/* A commit that fails while fail_commits is above zero. */
static _Atomic int fail_commits;

static int failing_commit_n(MDB_txn *txn)
{
	if (atomic_fetch_sub(&fail_commits, 1) > 0) {
		mdb_txn_abort(txn);
		return EIO;
	}
	return mdb_txn_commit(txn);
}

/* Deliveries whose commit failed are not forgotten: the next round
 * applies them, so the delivered entries are deleted (not kept and sent
 * again, nor counted in the buffer for ever). */
static void test_failed_ack_round_retried(void)
{
	uint64_t errors0 = metric_get(&metrics.commit_errors), s0;

	CHECK_NOERR(env_create(64 * MIB, 8 * MIB));
	CHECK_NOERR(batches_new(2));
	for (int i = 0; i < 2; i++)
		CHECK_NOERR(batch_fixture(&E.b[i], "t1", i, NULL));
	CHECK_NOERR(submit_wait(0, 2));
	s0 = first_seq();
	atomic_store(&fail_commits, 2);
	store_seam_commit = failing_commit_n;
	writer_ack(E.w, "t1", 2, 0, s0, s0 + 1);
	CHECK_NOERR(wait_entries(0));
	store_seam_commit = mdb_txn_commit;
	CHECK(metric_get(&metrics.commit_errors) >= errors0 + 2);
}

/* A full filesystem (a write fails with ENOSPC) refuses with
 * REFUSE_STORAGE too, and the relay stores again once space is back. */
static void test_disk_full_refused(void)
{
	struct queue_totals t;

	CHECK_NOERR(env_create(64 * MIB, 8 * MIB));
	CHECK_NOERR(batches_new(2));
	for (int i = 0; i < 2; i++)
		CHECK_NOERR(batch_fixture(&E.b[i], "t1", i, NULL));
	store_seam_put = nospace_put;
	CHECK_NOERR(submit_wait(0, 1));
	store_seam_put = mdb_put;
	CHECK_EQ_INT(E.b[0].status, BATCH_REFUSED);
	CHECK_EQ_INT(E.b[0].reason, REFUSE_STORAGE);
	queue_totals(&E.q, &t);
	CHECK_EQ_INT(t.entries, 0);
	CHECK_NOERR(submit_wait(1, 2));
	CHECK_EQ_INT(E.b[1].status, BATCH_STORED);
	queue_totals(&E.q, &t);
	CHECK_EQ_INT(t.entries, 1);
}

/* A tenant over its share of the buffer is refused at commit with
 * REFUSE_TENANT_FULL; another tenant is not. */
static void test_tenant_full_refused(void)
{
	CHECK_NOERR(env_create(64 * MIB, 8 * MIB));
	CHECK_NOERR(batches_new(3));
	for (int i = 0; i < 3; i++)
		CHECK_NOERR(batch_fixture(&E.b[i], i < 2 ? "small" : "other", 1,
					  NULL));
	for (int i = 0; i < 2; i++)
		E.b[i].tenant_max_bytes = E.b[0].value_bytes + 1;
	CHECK_NOERR(submit_each(0, 3));
	CHECK_EQ_INT(E.b[0].status, BATCH_STORED);
	CHECK_EQ_INT(E.b[1].status, BATCH_REFUSED);
	CHECK_EQ_INT(E.b[1].reason, REFUSE_TENANT_FULL);
	CHECK_EQ_INT(E.b[2].status, BATCH_STORED);
}

/* A resend within dedup_window is acknowledged but not stored again. */
static void test_duplicate_not_stored(void)
{
	struct queue_totals t;

	CHECK_NOERR(env_create(64 * MIB, 8 * MIB));
	CHECK_NOERR(batches_new(4));
	for (int i = 0; i < 4; i++) {
		CHECK_NOERR(batch_fixture(&E.b[i], "t1", i == 2 ? 4 : 2, NULL));
		E.b[i].has_digest = 1;
		memset(E.b[i].digest, i == 2 ? 0x22 : 0x11, 32);
	}
	CHECK_NOERR(submit_each(0, 3));
	CHECK_EQ_INT(E.b[0].status, BATCH_STORED);
	CHECK_EQ_INT(E.b[1].status, BATCH_DUPLICATE);
	CHECK_EQ_INT(E.b[2].status, BATCH_STORED);
	queue_totals(&E.q, &t);
	CHECK_EQ_INT(t.entries, 2);
	/* After a restart the index is rebuilt from the store. */
	env_stop();
	CHECK_NOERR(env_start());
	CHECK_NOERR(submit_wait(3, 4));
	CHECK_EQ_INT(E.b[3].status, BATCH_DUPLICATE);
	queue_totals(&E.q, &t);
	CHECK_EQ_INT(t.entries, 2);
}

/* Polls until database dbi (what: its name) holds n records, all of
 * them readable (until then, what it last found). */
static const char *wait_records(MDB_dbi dbi, const char *what, size_t n)
{
	struct timespec ts = { 0, POLL_SLEEP_NS };
	struct entries sa;
	const char *e = NULL;
	size_t have = 0;

	for (int i = 0; i < POLL_TRIES; i++) {
		if ((e = entries_read(dbi, &sa)) == NULL) {
			have = sa.n;
			entries_free(&sa);
			if (have == n)
				return NULL;
		}
		nanosleep(&ts, NULL);
	}
	return e != NULL ? e : err("%s holds %zu records, not %zu", what, have, n);
}

/* Polls until the setaside database holds n records. */
static const char *wait_setaside(size_t n)
{
	return wait_records(E.st->setaside, "setaside", n);
}

/* An entry set aside and replayed is back in the queue under a new
 * sequence number, as it was; a purge counts its samples as dropped. */
static void test_replay_and_purge(void)
{
	static const int two[] = { 0, 3 }, one[] = { 0 };
	struct setaside_filter f;
	struct entries sa;
	struct store_span span;
	uint64_t s0, purged0;

	CHECK_NOERR(env_create(64 * MIB, 8 * MIB));
	CHECK_NOERR(batches_new(3));
	CHECK_NOERR(batch_fixture(&E.b[0], "t1", 0, NULL));
	CHECK_NOERR(batch_fixture(&E.b[1], "t1", 3, NULL));
	CHECK_NOERR(batch_fixture(&E.b[2], "t2", 5, NULL));
	CHECK_NOERR(submit_each(0, 3));
	s0 = first_seq();
	writer_set_aside(E.w, "t1", 2, 0, s0 + 1, 400, "bad");
	writer_set_aside(E.w, "t2", 2, 0, s0 + 2, 400, "bad");
	CHECK_NOERR(wait_entries(1));
	CHECK_NOERR(wait_setaside(2));
	CHECK_NOERR(queue_is("t1", one, 1, &span));
	CHECK(setaside_filter_parse(&f, "t1", NULL) == 0);
	writer_setaside_op(E.w, &f, 1);
	CHECK_NOERR(wait_entries(2));
	CHECK_NOERR(queue_is("t1", two, 2, &span));
	CHECK_EQ_INT(span.last_seq, s0 + 3);   /* a new number, after all */
	CHECK_NOERR(entries_read(E.st->setaside, &sa));
	CHECK_EQ_INT(sa.n, 1);                  /* t2's is still there */
	entries_free(&sa);
	purged0 = usage_total(DROPPED(DROP_PURGED));
	CHECK(setaside_filter_parse(&f, NULL, NULL) == 0);
	writer_setaside_op(E.w, &f, 0);
	CHECK_NOERR(wait_setaside(0));
	CHECK_EQ_INT(usage_total(DROPPED(DROP_PURGED)) - purged0,
		     fx[5].counts.samples);
}

/* A set-aside reason that is not valid UTF-8 (an upstream's answer cut
 * inside a character) is listed as valid JSON: each stray byte becomes
 * U+FFFD, whole characters stay. */
static void test_setaside_reason_utf8(void)
{
	struct setaside_filter f;
	struct buf out;
	uint64_t s0;

	CHECK_NOERR(env_create(64 * MIB, 8 * MIB));
	CHECK_NOERR(batches_new(1));
	CHECK_NOERR(batch_fixture(&E.b[0], "t1", 0, NULL));
	CHECK_NOERR(submit_each(0, 1));
	s0 = first_seq();
	writer_set_aside(E.w, "t1", 2, 0, s0, 400, "caf\xc3\xa9 \xff\xe2\x82");
	CHECK_NOERR(wait_setaside(1));
	CHECK(setaside_filter_parse(&f, NULL, NULL) == 0);
	buf_init(&out, 1u << 20);
	CHECK_EQ_INT(setaside_format(E.st, &f, 1, &out), 0);
	buf_append(&out, "", 1);
	CHECK(strstr((const char *)out.p,
		     "\"caf\xc3\xa9 \xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\"")
	      != NULL);
	buf_free(&out);
}

/* A replay larger than a round's share goes over several rounds, each
 * its own commit, and all of it comes back. */
static void test_replay_in_rounds(void)
{
	struct setaside_filter f;
	uint64_t s0, commits0, share = writer_setaside_op_bytes;

	CHECK_NOERR(env_create(64 * MIB, 8 * MIB));
	CHECK_NOERR(batches_new(3));
	for (int i = 0; i < 3; i++)
		CHECK_NOERR(batch_fixture(&E.b[i], "t1", 0, NULL));
	CHECK_NOERR(submit_each(0, 3));
	s0 = first_seq();
	for (int i = 0; i < 3; i++)
		writer_set_aside(E.w, "t1", 2, 0, s0 + (uint64_t)i, 400, "bad");
	CHECK_NOERR(wait_setaside(3));
	CHECK_NOERR(wait_entries(0));
	writer_setaside_op_bytes = 1;   /* one entry a round */
	commits0 = metric_get(&metrics.commits);
	CHECK(setaside_filter_parse(&f, "t1", NULL) == 0);
	writer_setaside_op(E.w, &f, 1);
	CHECK_NOERR(wait_setaside(0));
	CHECK_NOERR(wait_entries(3));
	writer_setaside_op_bytes = share;
	CHECK(metric_get(&metrics.commits) - commits0 >= 3);
}

/* when_full = drop_oldest: every request is stored, the oldest entries
 * make room, and their samples count as dropped (DROP_FULL). */
static void test_drop_oldest(void)
{
	enum { N = 120 };
	uint64_t dropped0 = metric_get(&metrics.samples_dropped_full);
	struct queue_totals t;

	CHECK_NOERR(env_create_policy(MIB, WHEN_FULL_DROP_OLDEST, 0));
	CHECK_NOERR(env_start());
	CHECK_NOERR(batches_new(N));
	for (int i = 0; i < N; i++)
		CHECK_NOERR(batch_fixture(&E.b[i], i % 2 ? "a" : "b", 1, NULL));
	CHECK(N * E.b[0].value_bytes > MIB);
	CHECK_NOERR(submit_each(0, N));
	for (int i = 0; i < N; i++)
		CHECK_EQ_INT(E.b[i].status, BATCH_STORED);
	queue_totals(&E.q, &t);
	CHECK(t.entries < N);
	CHECK(first_seq() > 1);                 /* the oldest went */
	CHECK_EQ_INT(usage_total(DROPPED(DROP_FULL)),
		     (N - t.entries) * fx[1].counts.samples);
	CHECK_EQ_INT(metric_get(&metrics.samples_dropped_full) - dropped0,
		     (N - t.entries) * fx[1].counts.samples);
}

/* when_full = drop_oldest with two tenants: a quiet tenant's entries,
 * older than all of a noisy tenant's flood, stay while the noisy one
 * holds more than its share; the flood evicts its own oldest. */
static void test_drop_oldest_fair(void)
{
	enum { QUIET = 5, N = 200 };
	struct queue_tenant quiet, noisy;

	CHECK_NOERR(env_create_policy(MIB, WHEN_FULL_DROP_OLDEST, 0));
	CHECK_NOERR(env_start());
	CHECK_NOERR(batches_new(QUIET + N));
	for (int i = 0; i < QUIET + N; i++)
		CHECK_NOERR(batch_fixture(&E.b[i], i < QUIET ? "quiet" : "noisy",
					  1, NULL));
	CHECK(N * E.b[0].value_bytes > 2 * MIB);  /* the buffer fills twice */
	CHECK_NOERR(submit_each(0, QUIET + N));
	for (int i = 0; i < QUIET + N; i++)
		CHECK_EQ_INT(E.b[i].status, BATCH_STORED);
	CHECK_EQ_INT(tenant_state("quiet", &quiet), 0);
	CHECK_EQ_INT(tenant_state("noisy", &noisy), 0);
	CHECK(noisy.entries < N);               /* the flood evicted itself */
	CHECK_EQ_INT(quiet.entries, QUIET);     /* the quiet tenant lost none */
	CHECK_EQ_INT(quiet.samples, QUIET * fx[1].counts.samples);
	CHECK_EQ_INT(usage_total(DROPPED(DROP_FULL)),
		     (N - noisy.entries) * fx[1].counts.samples);
}

/* when_full = drop_oldest and a request that cannot fit even in an empty
 * buffer: refused, and nothing of the other tenants dropped for it. */
static void test_drop_oldest_not_for_nothing(void)
{
	enum { BIG = 100 };
	struct queue_totals t;

	CHECK_NOERR(env_create_policy(MIB, WHEN_FULL_DROP_OLDEST, 0));
	CHECK_NOERR(env_start());
	CHECK_NOERR(batches_new(2));
	CHECK_NOERR(batch_fixture(&E.b[0], "quiet", 1, NULL));
	CHECK_NOERR(submit_each(0, 1));
	CHECK_EQ_INT(E.b[0].status, BATCH_STORED);
	CHECK_NOERR(batch_fixture(&E.b[1], "big", 3, NULL));
	for (int i = 1; i < BIG; i++)
		CHECK_NOERR(batch_add_chunk(&E.b[1], fx[3].raw, fx[3].rawlen,
					    &fx[3].counts));
	CHECK(E.b[1].value_bytes > MIB);
	CHECK_NOERR(submit_each(1, 2));
	CHECK_EQ_INT(E.b[1].status, BATCH_REFUSED);
	CHECK_EQ_INT(E.b[1].reason, REFUSE_BUFFER_FULL);
	queue_totals(&E.q, &t);
	CHECK_EQ_INT(t.entries, 1);
	CHECK_EQ_INT(t.samples, fx[1].counts.samples);
	CHECK_EQ_INT(usage_total(DROPPED(DROP_FULL)), 0);
}

/* How many destination records the store holds (-1: unreadable). */
static long db_records(void)
{
	MDB_stat ms;
	MDB_txn *rt;
	long n = -1;

	if (mdb_txn_begin(E.st->env, NULL, MDB_RDONLY, &rt) == 0) {
		if (mdb_stat(rt, E.st->dest, &ms) == 0)
			n = (long)ms.ms_entries;
		mdb_txn_abort(rt);
	}
	return n;
}

/* Sets the destination of batch b. */
static void batch_dest(struct batch *b, const char *account, const char *project)
{
	snprintf(b->dest.account_id, sizeof(b->dest.account_id), "%s", account);
	snprintf(b->dest.project_id, sizeof(b->dest.project_id), "%s", project);
}

/* Entries keep the ids their batch was accepted with: a body never spans
 * two destinations and says which it has; the records go with the
 * entries, but for the latest; a set-aside entry replayed keeps its own. */
static void test_destination_records(void)
{
	struct store_body body;
	struct store_span span;
	struct store_dest d;
	struct setaside_filter f;
	uint64_t s0, until;

	CHECK_NOERR(env_create(64 * MIB, 8 * MIB));
	CHECK_NOERR(batches_new(6));
	for (int i = 0; i < 6; i++)
		CHECK_NOERR(batch_fixture(&E.b[i], "t1", i, NULL));
	batch_dest(&E.b[0], "7", "");
	batch_dest(&E.b[1], "7", "");
	batch_dest(&E.b[2], "9", "3");
	batch_dest(&E.b[3], "7", "");
	batch_dest(&E.b[4], "7", "");
	CHECK_NOERR(submit_each(0, 4));
	s0 = first_seq();
	/* Records at s0 (7), s0+2 (9/3), s0+3 (7): three bodies. */
	CHECK_EQ_INT(store_dest_get(E.st, "t1", 2, s0 + 1, &d, &until), 1);
	CHECK(strcmp(d.account_id, "7") == 0 && d.project_id[0] == 0);
	CHECK_EQ_INT(until, s0 + 2);
	CHECK_EQ_INT(store_body_open(E.st, "t1", 2, 0, 0, UINT64_MAX, UINT64_MAX,
				     256, &body, &span), 0);
	store_body_release(&body);
	CHECK_EQ_INT(span.entries, 2);
	CHECK_EQ_INT(body.has_dest, 1);
	CHECK(strcmp(body.dest.account_id, "7") == 0);
	CHECK_EQ_INT(store_body_open(E.st, "t1", 2, 0, s0 + 2, UINT64_MAX,
				     UINT64_MAX, 256, &body, &span), 0);
	store_body_release(&body);
	CHECK_EQ_INT(span.entries, 1);
	CHECK(strcmp(body.dest.account_id, "9") == 0 &&
	      strcmp(body.dest.project_id, "3") == 0);
	/* The 9 entry is set aside; the older ones delivered: its record
	 * stays for it, and a replay sends it under 9 again, after a newer
	 * entry under 7. */
	writer_set_aside(E.w, "t1", 2, 0, s0 + 2, 400, "bad");
	writer_ack(E.w, "t1", 2, 0, s0, s0 + 1);
	CHECK_NOERR(wait_entries(1));
	CHECK_NOERR(submit_wait(4, 5));
	CHECK(setaside_filter_parse(&f, "t1", NULL) == 0);
	writer_setaside_op(E.w, &f, 1);
	CHECK_NOERR(wait_entries(3));
	CHECK_EQ_INT(store_dest_get(E.st, "t1", 2, s0 + 5, &d, &until), 1);
	CHECK(strcmp(d.account_id, "9") == 0 && strcmp(d.project_id, "3") == 0);
	CHECK_EQ_INT(store_dest_get(E.st, "t1", 2, s0 + 4, &d, &until), 1);
	CHECK(strcmp(d.account_id, "7") == 0);
	CHECK_EQ_INT(until, s0 + 5);
	/* All delivered: only the latest record is left, and a new entry
	 * under the same ids adds none. */
	writer_ack(E.w, "t1", 2, 0, 0, UINT64_MAX);
	CHECK_NOERR(wait_entries(0));
	CHECK_EQ_INT(db_records(), 1);
	CHECK_EQ_INT(store_dest_get(E.st, "t1", 2, s0 + 3, &d, &until), 0);
	CHECK_EQ_INT(store_dest_get(E.st, "t1", 2, s0 + 6, &d, &until), 1);
	CHECK(strcmp(d.account_id, "9") == 0 && strcmp(d.project_id, "3") == 0);
	batch_dest(&E.b[5], "9", "3");
	CHECK_NOERR(submit_wait(5, 6));
	CHECK_NOERR(wait_entries(1));
	CHECK_EQ_INT(db_records(), 1);
}

/* Opens the store of a writer with max_age an hour, not started yet, and
 * begins a transaction in *txn for its old entries. Returns NULL or what
 * is wrong. */
static const char *aged_begin(struct store_txn **txn)
{
	const char *e;
	char why[256];

	if ((e = env_create_policy(64 * MIB, WHEN_FULL_REJECT, 3600 * 1000)) != NULL)
		return e;
	if ((E.st = store_open(E.path, E.cfg.max_size, why, sizeof(why))) == NULL)
		return err("store_open: %s", why);
	E.st_open = 1;
	return store_txn_begin(E.st, txn) == 0 ? NULL : "store_txn_begin failed";
}

/* With two entries of a day ago committed to the store aged_begin opened,
 * starts the writer and stores one new batch: any round checks the age
 * first, so both old entries go. Returns NULL or what is wrong. */
static const char *aged_out(void)
{
	struct queue_totals t;
	const char *e;

	store_close(E.st);
	E.st_open = 0;
	if ((e = env_start()) != NULL)
		return e;
	queue_totals(&E.q, &t);
	if (t.entries != 2)
		return err("%llu entries before, not 2", (unsigned long long)t.entries);
	if ((e = batches_new(1)) != NULL ||
	    (e = batch_fixture(&E.b[0], "new", 0, NULL)) != NULL ||
	    (e = submit_wait(0, 1)) != NULL)
		return e;
	if (E.b[0].status != BATCH_STORED)
		return "the new batch was not stored";
	queue_totals(&E.q, &t);
	return t.entries == 1 ? NULL :
	       err("%llu entries after, not 1", (unsigned long long)t.entries);
}

/* max_age: entries older than it are dropped by the next round, counted
 * as DROP_AGE; younger ones stay. */
static void test_max_age(void)
{
	struct sblock_part part = { fx[2].z, fx[2].zlen };
	struct store_txn *txn;
	struct entry_hdr h;
	uint64_t seq, bytes;
	int rc = 0;

	/* Two entries of a day ago, written before the relay starts. */
	CHECK_NOERR(aged_begin(&txn));
	for (int i = 0; i < 2 && rc == 0; i++) {
		memset(&h, 0, sizeof(h));
		h.samples = (uint32_t)fx[2].counts.samples;
		h.created_ms = clock_wall_ms() - 86400 * 1000;
		rc = store_put_entry(txn, "old", 3, &h, &part, 1, &seq, &bytes);
	}
	CHECK_EQ_INT(rc == 0 ? store_txn_commit(txn) : rc, 0);
	CHECK_NOERR(aged_out());
	CHECK_EQ_INT(usage_total(DROPPED(DROP_AGE)), 2 * fx[2].counts.samples);
}

/* An entry some of whose lanes delivered it, dropped for age: only the
 * other lanes' samples count as dropped (they were counted as delivered
 * when their lane got through). */
static void test_max_age_partly_delivered(void)
{
	struct sblock_part parts[2] = { { fx[2].z, fx[2].zlen },
					{ fx[7].z, fx[7].zlen } };
	struct store_lane_in in[2];
	struct store_txn *txn;
	struct entry_hdr h;
	uint64_t seq[2], bytes, dropped0 = metric_get(&metrics.samples_dropped_age);
	const int f[2] = { 2, 7 };
	int rc = 0;

	/* Lanes of different sizes, so that the one billed shows. */
	CHECK(fx[2].counts.samples > 0 && fx[7].counts.samples > 0 &&
	      fx[2].counts.samples != fx[7].counts.samples);
	CHECK_NOERR(aged_begin(&txn));
	/* Two entries of a day ago in lanes 0 and 3; lane 0 is through the
	 * first. */
	for (int i = 0; i < 2 && rc == 0; i++) {
		memset(&h, 0, sizeof(h));
		for (int l = 0; l < 2; l++) {
			in[l].lane = l == 0 ? 0 : 3;
			in[l].parts = &parts[l];
			in[l].nparts = 1;
			in[l].samples = (uint32_t)fx[f[l]].counts.samples;
			in[l].series = (uint32_t)fx[f[l]].counts.series;
			h.samples += in[l].samples;
			h.series += in[l].series;
		}
		h.created_ms = clock_wall_ms() - 86400 * 1000;
		rc = store_put_lanes(txn, "old", 3, &h, in, 2, &seq[i], &bytes);
	}
	if (rc == 0)
		rc = store_lane_set(txn, "old", 3, 0, seq[0]);
	CHECK_EQ_INT(rc == 0 ? store_txn_commit(txn) : rc, 0);
	CHECK_NOERR(aged_out());
	CHECK_EQ_INT(usage_total(DROPPED(DROP_AGE)),
		     fx[7].counts.samples +
		     fx[2].counts.samples + fx[7].counts.samples);
	CHECK_EQ_INT(metric_get(&metrics.samples_dropped_age) - dropped0,
		     fx[7].counts.samples +
		     fx[2].counts.samples + fx[7].counts.samples);
}

/* ---- review reproductions ---------------------------------------------- */

/* A put into the setaside database that finds no room (a set-aside copy,
 * or a replay, larger than the free pages / the disk); every other write
 * goes through. */
static int setaside_full_put(MDB_txn *txn, MDB_dbi dbi, MDB_val *key,
			     MDB_val *val, unsigned flags)
{
	if (dbi == E.st->setaside)
		return MDB_MAP_FULL;
	return mdb_put(txn, dbi, key, val, flags);
}

/* Polls up to about ms milliseconds for the queue to hold want entries:
 * 0 when it does, -1 when it did not. */
static int entries_within(uint64_t want, int ms)
{
	struct timespec ts = { 0, POLL_SLEEP_NS };
	struct queue_totals t;

	for (int i = 0; i < ms; i++) {
		queue_totals(&E.q, &t);
		if (t.entries == want)
			return 0;
		nanosleep(&ts, NULL);
	}
	return -1;
}

/* One set-aside that cannot be stored must not hold back another tenant's
 * delivery (nor refuse every request): acknowledgements alone need little
 * room, and the writer says it retries them alone. */
static void test_failing_set_aside_blocks_acks(void)
{
	uint64_t s0;
	int ok;

	CHECK_NOERR(env_create(64 * MIB, 8 * MIB));
	CHECK_NOERR(batches_new(3));
	CHECK_NOERR(batch_fixture(&E.b[0], "t1", 0, NULL));
	CHECK_NOERR(batch_fixture(&E.b[1], "t2", 1, NULL));
	CHECK_NOERR(batch_fixture(&E.b[2], "t2", 2, NULL));
	CHECK_NOERR(submit_each(0, 2));
	s0 = first_seq();
	store_seam_put = setaside_full_put;
	/* t1's lane 0 part is refused upstream; t2's entry was delivered. */
	writer_set_aside(E.w, "t1", 2, 0, s0, 400, "bad");
	writer_ack(E.w, "t2", 2, 0, s0 + 1, s0 + 1);
	/* t2's delivery commits: only t1's entry is left */
	ok = entries_within(1, 3000) == 0;
	/* and a write that needs no set-aside room is stored */
	if (ok)
		CHECK_NOERR(submit_wait(2, 3));
	store_seam_put = mdb_put;
	CHECK(ok);
	CHECK_EQ_INT(E.b[2].status, BATCH_STORED);
	/* once there is room, the parked set-aside is stored: t1's entry
	 * leaves the queue, t2's new one stays */
	CHECK_EQ_INT(entries_within(1, 3000), 0);
}

/* A batch refused for its tenant's share (max_buffer_bytes) must not
 * evict anything for room it then does not take. */
static void test_tenant_full_evicts_nothing(void)
{
	enum { N = 120 };
	struct queue_totals t0, t1;
	uint64_t dropped0;

	CHECK_NOERR(env_create_policy(MIB, WHEN_FULL_DROP_OLDEST, 0));
	CHECK_NOERR(env_start());
	CHECK_NOERR(batches_new(N + 1));
	for (int i = 0; i < N + 1; i++)
		CHECK_NOERR(batch_fixture(&E.b[i], i < N ? "b" : "a", 1, NULL));
	CHECK(N * E.b[0].value_bytes > MIB);
	CHECK_NOERR(submit_each(0, N));     /* the buffer is full */
	queue_totals(&E.q, &t0);
	dropped0 = usage_total(DROPPED(DROP_FULL));
	E.b[N].tenant_max_bytes = 1;        /* over its share whatever it is */
	CHECK_NOERR(submit_wait(N, N + 1));
	CHECK_EQ_INT(E.b[N].status, BATCH_REFUSED);
	CHECK_EQ_INT(E.b[N].reason, REFUSE_TENANT_FULL);
	queue_totals(&E.q, &t1);
	CHECK_EQ_INT(t1.entries, t0.entries);
	CHECK_EQ_INT(usage_total(DROPPED(DROP_FULL)), dropped0);
}

/* Makes the closed store's entry (tenant, seq) unreadable as the loader
 * sees it (an entry version this relay does not read, or damage). */
static const char *entry_spoil(const char *tenant, uint64_t seq)
{
	uint8_t key[STORE_KEY_MAX], *copy = NULL;
	MDB_env *env;
	MDB_txn *txn;
	MDB_dbi dbi;
	MDB_val k, v;
	int rc;

	if ((rc = store_raw_begin(&env, &txn)) != 0)
		return mdb_strerror(rc);
	k.mv_size = store_key(key, tenant, strlen(tenant), seq);
	k.mv_data = key;
	if ((rc = mdb_dbi_open(txn, "queue", 0, &dbi)) == 0 &&
	    (rc = mdb_get(txn, dbi, &k, &v)) == 0 &&
	    (copy = malloc(v.mv_size)) != NULL) {
		memcpy(copy, v.mv_data, v.mv_size);
		copy[0] = 9;             /* entry_hdr.version */
		v.mv_data = copy;
		rc = mdb_put(txn, dbi, &k, &v, 0);
	}
	if (rc == 0 && copy != NULL)
		rc = mdb_txn_commit(txn);
	else
		mdb_txn_abort(txn);
	free(copy);
	mdb_env_close(env);
	return rc == 0 ? NULL : mdb_strerror(rc);
}

/* An unreadable entry is counted when the buffer is loaded, as it is
 * counted out when lane 0 passes it: the entry after it stays the
 * tenant's, and lane 0 sends it. (Uncounted at load, its deletion once
 * left the tenant empty to the queue and that entry unsent.) */
static void test_skipped_entry_hides_later_one(void)
{
	struct queue_tenant t;
	uint64_t s0;

	CHECK_NOERR(env_create(64 * MIB, 8 * MIB));
	CHECK_NOERR(batches_new(4));
	for (int i = 0; i < 4; i++)
		CHECK_NOERR(batch_fixture(&E.b[i], "t1", i, NULL));
	CHECK_NOERR(submit_each(0, 4));
	s0 = first_seq();
	env_stop();
	CHECK_NOERR(entry_spoil("t1", s0 + 1));
	CHECK_NOERR(env_start());
	/* lane 0 delivered s0 (and passed the unreadable s0 + 1), then s0 + 2 */
	writer_ack(E.w, "t1", 2, 0, s0, s0 + 1);
	CHECK_NOERR(wait_records(E.st->queue, "queue", 2));
	writer_ack(E.w, "t1", 2, 0, s0 + 2, s0 + 2);
	CHECK_NOERR(wait_records(E.st->queue, "queue", 1));        /* s0 + 3 is buffered */
	/* the queue learns of the commit a moment after it */
	CHECK_EQ_INT(entries_within(1, 3000), 0);
	CHECK_EQ_INT(tenant_state("t1", &t), 0);
	CHECK_EQ_INT(t.entries, 1);
	CHECK(t.lane[0].send_seq <= s0 + 3);    /* and lane 0 will send it */
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
	RUN_STORE(test_writer_stores_and_reads_back);
	RUN_STORE(test_ack_deletes_range);
	RUN_STORE(test_set_aside_moves_entry);
	RUN_STORE(test_set_aside_missing_entry);
	RUN_STORE(test_set_aside_middle_keeps_older);
	RUN_STORE(test_ack_middle_keeps_older);
	RUN_STORE(test_ack_newest_keeps_older);
	RUN_STORE(test_reopen_rebuilds_queue);
	RUN_STORE(test_sweep_at_start);
	RUN_STORE(test_seq_not_reused_after_restart);
	RUN_STORE(test_gathered_acks_committed_at_stop);
	RUN_STORE(test_many_entries_ack_ranges);
	RUN_STORE(test_buffer_full);
	RUN_STORE(test_merge_one_round);
	RUN_STORE(test_merge_respects_max_request_size);
	RUN_STORE(test_merge_requests_per_entry);
	RUN_STORE(test_merge_two_tenants);
	RUN_STORE(test_ingest_then_store);
	RUN_STORE(test_failed_commit_refused);
	RUN_STORE(test_failed_ack_round_retried);
	RUN_STORE(test_disk_full_refused);
	RUN_STORE(test_tenant_full_refused);
	RUN_STORE(test_duplicate_not_stored);
	RUN_STORE(test_replay_and_purge);
	RUN_STORE(test_drop_oldest);
	RUN_STORE(test_drop_oldest_fair);
	RUN_STORE(test_drop_oldest_not_for_nothing);
	RUN_STORE(test_destination_records);
	RUN_STORE(test_max_age);
	RUN_STORE(test_max_age_partly_delivered);
	RUN_STORE(test_replay_in_rounds);
	RUN_STORE(test_setaside_reason_utf8);
	RUN_STORE(test_failing_set_aside_blocks_acks);
	RUN_STORE(test_tenant_full_evicts_nothing);
	RUN_STORE(test_skipped_entry_hides_later_one);
	free_fixtures();
	ingest_thread_cleanup();
	wire_scratch_free();
	return unit_done();
}
