/*
 * test_salvage.c - salvage_run copies a store's queue entries, set-aside
 * entries (status and reason kept) and usage records into a new store,
 * leaves out an entry whose block is not a WriteRequest, and after a leaf
 * page of the queue is zeroed copies all but the entries on that page.
 * With entries whose lanes had delivered different amounts, the new store
 * sends (store_read_batch from each lane's cursor, as the forwarder does)
 * exactly the parts no lane had delivered, each entry keeps its
 * destination, and the HA elections are copied; a zeroed lanes page
 * loses only its cursors.
 */
#include "salvage.h"

#include <fcntl.h>
#include <snappy-c.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "buf.h"
#include "lmdb_read.h"
#include "store_int.h"
#include "tmpdir.h"
#include "unit.h"
#include "usage.h"

#define NENTRIES 400
#define SET_ASIDE_SEQ 5
#define MIB (1024ull * 1024)

static char dir[64], src[96], dst[96], dst2[96], why[1024];

/* The source store: NENTRIES entries of tenant "acme" (a real request
 * body each), one more whose block decodes to text, entry SET_ASIDE_SEQ
 * set aside, and one usage record. */
static int make_source(void)
{
	static uint8_t garbage[128];
	const char *text = "not a WriteRequest, but a valid snappy block!!";
	size_t glen = sizeof(garbage), blen;
	struct store *st;
	struct store_txn *txn;
	struct entry_hdr h;
	struct sblock_part part;
	struct store_span gone, next;
	struct usage_rec u;
	unsigned char *body;
	uint64_t vb, seq;
	int rc;

	snprintf(dir, sizeof(dir), "/tmp/relay-test-salvage-XXXXXX");
	if (mkdtemp(dir) == NULL)
		return -1;
	snprintf(src, sizeof(src), "%s/src", dir);
	snprintf(dst, sizeof(dst), "%s/dst", dir);
	snprintf(dst2, sizeof(dst2), "%s/dst2", dir);
	body = unit_read_file("tests/fixtures/req00000.bin", &blen);
	if (body == NULL ||
	    snappy_compress(text, strlen(text), (char *)garbage, &glen) != SNAPPY_OK)
		return -1;
	if ((st = store_open(src, 64 * MIB, why, sizeof(why))) == NULL)
		return -1;
	if (store_txn_begin(st, &txn) != 0) {
		store_close(st);
		return -1;
	}
	rc = 0;
	for (uint64_t i = 1; i <= NENTRIES + 1 && rc == 0; i++) {
		memset(&h, 0, sizeof(h));
		h.samples = 7;
		part.p = i == NENTRIES + 1 ? garbage : body;
		part.len = i == NENTRIES + 1 ? glen : blen;
		rc = store_put_entry(txn, "acme", 4, &h, &part, 1, &seq, &vb);
	}
	if (rc == 0)
		rc = store_set_aside(txn, "acme", 4, -1, SET_ASIDE_SEQ, 400,
				     "bad labels", &gone, &next);
	memset(&u, 0, sizeof(u));
	u.version = USAGE_FORMAT;
	u.samples = 4242;
	if (rc == 0)
		rc = store_usage_put(txn, 0, "acme", 4, 3600 * 500000, &u,
				     sizeof(u));
	if (rc == 0)
		rc = store_txn_commit(txn);
	else
		store_txn_abort(txn);
	store_close(st);
	free(body);
	return rc == 0 ? 0 : -1;
}

/* The status and reason of the one set-aside entry in store path, or "". */
static void setaside_reason(const char *path, char *out, size_t n, uint32_t *status)
{
	struct store *st;
	struct setaside_hdr sh;
	MDB_cursor *cur;
	MDB_txn *txn;
	MDB_val k, v;

	out[0] = '\0';
	*status = 0;
	if ((st = store_open(path, 64 * MIB, why, sizeof(why))) == NULL)
		return;
	if (mdb_txn_begin(st->env, NULL, MDB_RDONLY, &txn) == 0) {
		if (mdb_cursor_open(txn, st->setaside, &cur) == 0) {
			if (mdb_cursor_get(cur, &k, &v, MDB_FIRST) == 0 &&
			    v.mv_size > sizeof(sh)) {
				memcpy(&sh, v.mv_data, sizeof(sh));
				*status = sh.status;
				snprintf(out, n, "%.*s", (int)sh.reason_len,
					 (const char *)v.mv_data + sizeof(sh));
			}
			mdb_cursor_close(cur);
		}
		mdb_txn_abort(txn);
	}
	store_close(st);
}

static int first_leaf(void *arg, const struct lmdb_entry *e)
{
	uint64_t *p = arg;

	if (p[0] == 0)
		p[0] = e->leaf_pgno;
	if (e->leaf_pgno == p[0])
		p[1]++;
	return 0;
}

static void test_salvage_copies_and_checks(void)
{
	struct salvage_report r;
	char reason[64];
	uint32_t status;
	int rc;

	if (make_source() != 0) {
		snprintf(unit_msg, sizeof(unit_msg), "make_source: %.200s", why);
		unit_cur_failed = 1;
		return;
	}
	rc = salvage_run(src, dst, 64 * MIB, &r, why, sizeof(why));
	CHECK_EQ_INT(rc, 0);
	CHECK_EQ_INT(r.queue.read, NENTRIES);
	CHECK_EQ_INT(r.queue.copied, NENTRIES - 1);
	CHECK_EQ_INT(r.queue.invalid, 1);
	CHECK_EQ_INT(r.queue.samples, 7 * (NENTRIES - 1));
	CHECK_EQ_INT(r.queue.walk.bad_pages, 0);
	CHECK_EQ_INT(r.setaside.copied, 1);
	CHECK_EQ_INT(r.usage.copied, 1);
	CHECK(strstr(r.invalid_sample, "seq=401") != NULL);
	setaside_reason(dst, reason, sizeof(reason), &status);
	CHECK_STR(reason, "bad labels");
	CHECK_EQ_INT(status, 400);
	/* Nor a directory inside the damaged one. */
	snprintf(reason, sizeof(reason), "%.40s/new", src);
	rc = salvage_run(src, reason, 64 * MIB, &r, why, sizeof(why));
	CHECK(rc < 0 && strstr(why, "inside the damaged directory") != NULL);
	/* A directory that is not empty is not written to. */
	rc = salvage_run(src, dst, 64 * MIB, &r, why, sizeof(why));
	CHECK(rc < 0 && strstr(why, "not empty") != NULL);
	tmpdir_remove(dir);
}

static void test_salvage_after_zeroed_leaf(void)
{
	static uint8_t zero[65536];
	struct salvage_report r;
	struct lmdb_file f;
	struct lmdb_db db;
	struct lmdb_walk w;
	uint64_t leaf[2] = {0, 0};
	char file[160];
	int fd, rc;

	if (make_source() != 0) {
		snprintf(unit_msg, sizeof(unit_msg), "make_source: %.200s", why);
		unit_cur_failed = 1;
		return;
	}
	snprintf(file, sizeof(file), "%s/data.mdb", src);
	CHECK(lmdb_file_open(&f, file, 1, why, sizeof(why)) == 0);
	memset(&w, 0, sizeof(w));
	CHECK(lmdb_find_db(&f, "queue", &db, &w) == 0);
	CHECK(db.depth >= 2);
	memset(&w, 0, sizeof(w));
	CHECK(lmdb_walk_tree(&f, &db, 0, first_leaf, leaf, &w) == 0);
	lmdb_file_close(&f);
	CHECK(leaf[1] > 0 && leaf[1] < NENTRIES);
	fd = open(file, O_WRONLY);
	CHECK(fd >= 0);
	rc = pwrite(fd, zero, f.psize, (off_t)(leaf[0] * f.psize)) == (ssize_t)f.psize;
	close(fd);
	CHECK(rc);
	rc = salvage_run(src, dst2, 64 * MIB, &r, why, sizeof(why));
	CHECK_EQ_INT(rc, 0);
	CHECK_EQ_INT(r.queue.walk.bad_pages, 1);
	CHECK_EQ_INT(r.queue.walk.bad_pgno[0], leaf[0]);
	/* The first leaf holds the oldest entries; the garbage entry is the
	 * last, on another page. */
	CHECK_EQ_INT(r.queue.copied, NENTRIES - leaf[1] - 1);
	CHECK_EQ_INT(r.setaside.copied, 1);
	tmpdir_remove(dir);
}

/* A store a relay holds (its lock taken) is not read: the copy could be
 * torn. */
static void test_salvage_refuses_live_store(void)
{
	struct salvage_report r;
	struct store *st;
	char to[128];

	snprintf(to, sizeof(to), "%s/live-copy", dir);
	st = store_open(src, 64 * MIB, why, sizeof(why));
	CHECK(st != NULL);
	CHECK_EQ_INT(salvage_run(src, to, 64 * MIB, &r, why, sizeof(why)),
		     ERR_BUSY);
	store_close(st);
}

/* A store of a newer format than this relay's is refused, said so, and
 * nothing is written: a newer layout would be misread. */
static void test_salvage_refuses_newer_format(void)
{
	struct salvage_report r;
	struct store *st;
	struct store_txn *txn;
	uint32_t fmt = STORE_FORMAT + 1;
	MDB_val k = { 6, "format" }, v = { sizeof(fmt), &fmt };
	char to[128];

	if (make_source() != 0) {
		snprintf(unit_msg, sizeof(unit_msg), "make_source: %.200s", why);
		unit_cur_failed = 1;
		return;
	}
	CHECK((st = store_open(src, 64 * MIB, why, sizeof(why))) != NULL);
	CHECK_EQ_INT(store_txn_begin(st, &txn), 0);
	CHECK_EQ_INT(mdb_put(txn->txn, st->meta, &k, &v, 0), 0);
	CHECK_EQ_INT(store_txn_commit(txn), 0);
	store_close(st);
	snprintf(to, sizeof(to), "%s/newer-copy", dir);
	CHECK_EQ_INT(salvage_run(src, to, 64 * MIB, &r, why, sizeof(why)),
		     ERR_FORMAT);
	CHECK(strstr(why, "newer than this relay") != NULL);
	CHECK(access(to, F_OK) != 0);
	tmpdir_remove(dir);
}

/* --- cursors, destinations, elections ------------------------------------ */

#define LANE_ENTRIES 20
#define LANE_ASIDE 2          /* acme's entry set aside whole */
static const unsigned lanes_used[] = {0, 3, 5};
/* acme's lanes' cursors in the source: lane 0 through 15, lane 3
 * through 5, lane 5 through nothing (so no entry is deleted). */
static const uint64_t lanes_through[] = {15, 5, 0};

/* Entry i of acme: lanes 0, 3, 5, their parts i*100 + lane samples each;
 * entries 1..10 go to account "a1", the rest to "a2". beta: two entries
 * in lane 0 (account "b1"), lane 0 through the first (deleted). HA: one election
 * each. */
static int make_lanes_source(void)
{
	struct store_lane_in in[3];
	struct store_dest d;
	struct store_ha_rec ha;
	struct store *st;
	struct store_txn *txn;
	struct entry_hdr h;
	struct sblock_part part;
	struct store_span gone, next;
	unsigned char *body;
	uint64_t vb, seq, delivered;
	size_t blen;
	int rc = 0;

	snprintf(dir, sizeof(dir), "/tmp/relay-test-salvage-XXXXXX");
	if (mkdtemp(dir) == NULL)
		return -1;
	snprintf(src, sizeof(src), "%s/src", dir);
	snprintf(dst, sizeof(dst), "%s/dst", dir);
	snprintf(dst2, sizeof(dst2), "%s/dst2", dir);
	if ((body = unit_read_file("tests/fixtures/req00000.bin", &blen)) == NULL)
		return -1;
	part.p = body;
	part.len = blen;
	if ((st = store_open(src, 64 * MIB, why, sizeof(why))) == NULL ||
	    store_txn_begin(st, &txn) != 0) {
		store_close(st);
		free(body);
		return -1;
	}
	memset(&d, 0, sizeof(d));
	for (uint64_t i = 1; i <= LANE_ENTRIES && rc == 0; i++) {
		memset(&h, 0, sizeof(h));
		for (unsigned j = 0; j < 3; j++) {
			in[j].lane = lanes_used[j];
			in[j].parts = &part;
			in[j].nparts = 1;
			in[j].samples = (uint32_t)(i * 100 + lanes_used[j]);
			in[j].series = 1;
			h.samples += in[j].samples;
			h.series += 1;
		}
		snprintf(d.account_id, sizeof(d.account_id), "%s",
			 i <= 10 ? "a1" : "a2");
		rc = store_dest_note(txn, "acme", 4, &d);
		if (rc == 0)
			rc = store_put_lanes(txn, "acme", 4, &h, in, 3, &seq, &vb);
	}
	snprintf(d.account_id, sizeof(d.account_id), "b1");
	for (int i = 0; i < 2 && rc == 0; i++) {
		memset(&h, 0, sizeof(h));
		h.samples = 9;
		h.series = 1;
		if ((rc = store_dest_note(txn, "beta", 4, &d)) == 0)
			rc = store_put_entry(txn, "beta", 4, &h, &part, 1, &seq, &vb);
	}
	if (rc == 0)
		rc = store_txn_commit(txn);
	else
		store_txn_abort(txn);
	/* Acknowledged in a transaction of their own, as the writer does. */
	if (rc == 0 && (rc = store_txn_begin(st, &txn)) == 0) {
		memset(&gone, 0, sizeof(gone));
		for (unsigned j = 0; j < 3 && rc == 0; j++)
			if (lanes_through[j] > 0)
				rc = store_lane_ack(txn, "acme", 4, lanes_used[j], 1,
						    lanes_through[j], &gone, &next,
						    &delivered);
		if (rc == 0)
			rc = store_lane_ack(txn, "beta", 4, 0, seq - 1, seq - 1,
					    &gone, &next, &delivered);
		if (rc == 0)
			rc = store_set_aside(txn, "acme", 4, -1, LANE_ASIDE, 400,
					     "bad labels", &gone, &next);
		ha = (struct store_ha_rec){"acme", 4, "eu-1", 4, "a", 1, 1000, 2000};
		if (rc == 0)
			rc = store_ha_put(txn, &ha);
		ha = (struct store_ha_rec){"beta", 4, "eu-2", 4, "b", 1, 3000, 4000};
		if (rc == 0)
			rc = store_ha_put(txn, &ha);
		if (rc == 0)
			rc = store_txn_commit(txn);
		else
			store_txn_abort(txn);
	}
	store_close(st);
	free(body);
	return rc == 0 ? 0 : -1;
}

/* The samples lane would send from its cursor on, as the forwarder does
 * (it starts after the cursor and merges the lane's parts), or -1. */
static long long lane_would_send(struct store *st, const char *tenant,
				 unsigned lane)
{
	uint64_t through[STORE_LANES], seq;
	struct store_span span;
	struct buf b;
	long long samples = 0;

	if (store_lane_cursors(st, tenant, strlen(tenant), through) != 0)
		return -1;
	buf_init(&b, 64 * MIB);
	for (seq = through[lane] + 1;; seq = span.last_seq + 1) {
		buf_reset(&b);
		if (store_read_batch(st, tenant, strlen(tenant), lane, seq,
				     UINT64_MAX, 64 * MIB, STORE_BODY_MAX_ENTRIES,
				     &b, &span) < 0) {
			samples = -1;
			break;
		}
		if (span.entries == 0)
			break;
		samples += (long long)span.samples;
	}
	buf_free(&b);
	return samples;
}

/* What lane's parts of acme's entries after old seq from hold. */
static long long lane_samples_after(unsigned lane, uint64_t from)
{
	long long n = 0;

	for (uint64_t i = from + 1; i <= LANE_ENTRIES; i++)
		if (i != LANE_ASIDE)
			n += (long long)(i * 100 + lane);
	return n;
}

/* The account of each of acme's entries in store path, in order: the
 * queue's into q, the set-aside one into a. */
static int accounts(struct store *st, char q[][STORE_DEST_ID_MAX + 1], size_t nq, char *a)
{
	struct store_dest d;
	MDB_cursor *cur;
	MDB_txn *txn;
	MDB_val k, v;
	const char *t;
	size_t tl, n = 0;
	uint64_t seq, until;
	int rc;

	for (int db = 0; db < 2; db++) {
		if (mdb_txn_begin(st->env, NULL, MDB_RDONLY, &txn) != 0)
			return -1;
		if (mdb_cursor_open(txn, db ? st->setaside : st->queue, &cur) != 0) {
			mdb_txn_abort(txn);
			return -1;
		}
		for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
		     rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
			if (store_key_parse(&k, &t, &tl, &seq) < 0 || tl != 4 ||
			    memcmp(t, "acme", 4) != 0)
				continue;
			memset(&d, 0, sizeof(d));
			if (store_dest_get(st, "acme", 4, seq, &d, &until) != 1)
				snprintf(d.account_id, sizeof(d.account_id), "-");
			if (db)
				snprintf(a, STORE_DEST_ID_MAX + 1, "%s", d.account_id);
			else if (n < nq)
				snprintf(q[n++], STORE_DEST_ID_MAX + 1, "%s", d.account_id);
		}
		mdb_cursor_close(cur);
		mdb_txn_abort(txn);
	}
	return (int)n;
}

static int count_ha(void *arg, const struct store_ha_rec *rec)
{
	char *out = arg;
	size_t n = strlen(out);

	snprintf(out + n, 128 - n, "%.*s/%.*s=%.*s@%llu ", (int)rec->tlen,
		 rec->tenant, (int)rec->clen, rec->cluster, (int)rec->rlen,
		 rec->replica, (unsigned long long)rec->elected_ms);
	return 0;
}

static void test_salvage_keeps_cursors_and_destinations(void)
{
	struct salvage_report r;
	struct store *st;
	struct store_txn *txn;
	char q[LANE_ENTRIES][STORE_DEST_ID_MAX + 1], aside[STORE_DEST_ID_MAX + 1] = "", ha[128] = "";
	int n;

	if (make_lanes_source() != 0) {
		snprintf(unit_msg, sizeof(unit_msg), "make_lanes_source: %.200s", why);
		unit_cur_failed = 1;
		return;
	}
	/* What each lane of the source still has to send. */
	st = store_open(src, 64 * MIB, why, sizeof(why));
	CHECK(st != NULL);
	for (unsigned j = 0; j < 3; j++)
		CHECK_EQ_INT(lane_would_send(st, "acme", lanes_used[j]),
			     lane_samples_after(lanes_used[j], lanes_through[j]));
	CHECK_EQ_INT(lane_would_send(st, "beta", 0), 9);
	store_close(st);

	CHECK_EQ_INT(salvage_run(src, dst, 64 * MIB, &r, why, sizeof(why)), 0);
	CHECK_EQ_INT(r.queue.copied, LANE_ENTRIES - 1 + 1);
	CHECK_EQ_INT(r.setaside.copied, 1);
	/* beta's lane 0 was through its one deleted entry: none left. */
	CHECK_EQ_INT(r.lanes.read, 3);
	CHECK_EQ_INT(r.lanes.copied, 2);
	CHECK_EQ_INT(r.dest.copied, 3);
	CHECK_EQ_INT(r.ha.copied, 2);

	st = store_open(dst, 64 * MIB, why, sizeof(why));
	CHECK(st != NULL);
	/* Nothing a lane delivered is sent again; nothing else is lost. */
	for (unsigned j = 0; j < 3; j++) {
		long long want = lane_samples_after(lanes_used[j], lanes_through[j]);
		long long got = lane_would_send(st, "acme", lanes_used[j]);
		if (got != want) {
			snprintf(unit_msg, sizeof(unit_msg), "lane %u sends %lld "
				 "samples after salvage, wanted %lld",
				 lanes_used[j], got, want);
			unit_cur_failed = 1;
			store_close(st);
			return;
		}
	}
	n = lane_would_send(st, "beta", 0);
	/* Each entry keeps its account; the set-aside one too. */
	CHECK_EQ_INT(accounts(st, q, LANE_ENTRIES, aside), LANE_ENTRIES - 1);
	for (int i = 0; i < LANE_ENTRIES - 1; i++)
		CHECK_STR(q[i], i + 2 <= 10 ? "a1" : "a2");
	CHECK_STR(aside, "a1");
	CHECK(store_txn_begin(st, &txn) == 0);
	CHECK(store_ha_each(txn, count_ha, ha) == 0);
	store_txn_abort(txn);
	store_close(st);
	CHECK_EQ_INT(n, 9);
	CHECK_STR(ha, "acme/eu-1=a@1000 beta/eu-2=b@3000 ");
	tmpdir_remove(dir);
}

/* A zeroed page of the lanes database loses its cursors (those lanes
 * send their parts again), counted; the entries are all copied. */
static void test_salvage_damaged_lanes(void)
{
	static uint8_t zero[65536];
	struct salvage_report r;
	struct lmdb_file f;
	struct lmdb_db db;
	struct lmdb_walk w;
	char file[160];
	int fd, rc;

	if (make_lanes_source() != 0) {
		snprintf(unit_msg, sizeof(unit_msg), "make_lanes_source: %.200s", why);
		unit_cur_failed = 1;
		return;
	}
	snprintf(file, sizeof(file), "%s/data.mdb", src);
	CHECK(lmdb_file_open(&f, file, 1, why, sizeof(why)) == 0);
	memset(&w, 0, sizeof(w));
	CHECK(lmdb_find_db(&f, "lanes", &db, &w) == 0);
	lmdb_file_close(&f);
	fd = open(file, O_WRONLY);
	CHECK(fd >= 0);
	rc = pwrite(fd, zero, f.psize, (off_t)(db.root * f.psize)) == (ssize_t)f.psize;
	close(fd);
	CHECK(rc);
	CHECK_EQ_INT(salvage_run(src, dst2, 64 * MIB, &r, why, sizeof(why)), 0);
	CHECK_EQ_INT(r.lanes.walk.bad_pages, 1);
	CHECK_EQ_INT(r.lanes.copied, 0);
	CHECK_EQ_INT(r.queue.copied, LANE_ENTRIES - 1 + 1);
	CHECK_EQ_INT(r.ha.copied, 2);
	tmpdir_remove(dir);
}

int main(void)
{
	RUN(test_salvage_copies_and_checks);
	RUN(test_salvage_refuses_live_store);
	RUN(test_salvage_refuses_newer_format);
	RUN(test_salvage_after_zeroed_leaf);
	RUN(test_salvage_keeps_cursors_and_destinations);
	RUN(test_salvage_damaged_lanes);
	return unit_done();
}
