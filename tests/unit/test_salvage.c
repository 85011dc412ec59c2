/*
 * test_salvage.c - salvage_run copies a store's queue entries, set-aside
 * entries (status and reason kept) and usage records into a new store,
 * leaves out an entry whose block is not a WriteRequest, and after a leaf
 * page of the queue is zeroed copies all but the entries on that page.
 */
#include "salvage.h"

#include <fcntl.h>
#include <snappy-c.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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

int main(void)
{
	RUN(test_salvage_copies_and_checks);
	RUN(test_salvage_refuses_live_store);
	RUN(test_salvage_after_zeroed_leaf);
	return unit_done();
}
