/*
 * test_setaside_trim.c - store_setaside_trim by size: of 10,000 set-aside
 * entries (their set-aside times a permutation of their key order, over
 * three tenants) it deletes exactly the earliest ones until the database
 * fits, reporting each to the sink, and reads each entry a few times in
 * all (one read per pass), not once per entry deleted.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "tmpstore.h"
#include "unit.h"

#define N 10000
#define MS0 1000000u
#define MIB (1024ull * 1024)

static char dir[64], path[96];

static void count_deleted(void *arg, const char *tenant, size_t tlen,
			  uint64_t samples)
{
	(void)tenant;
	(void)tlen;
	(void)samples;
	(*(uint64_t *)arg)++;
}

/* Writes the N entries straight into the setaside database: entry i is
 * tenant "t<i % 3>", seq i + 1, set aside at MS0 + (i * 7919) % N. */
static int fill(struct store *st)
{
	uint8_t key[STORE_KEY_MAX], val[sizeof(struct setaside_hdr) + 200];
	struct setaside_hdr sh;
	char tenant[4];
	MDB_txn *txn;
	MDB_val k, v;
	int rc;

	if (mdb_txn_begin(st->env, NULL, 0, &txn) != 0)
		return -1;
	memset(val, 0x5a, sizeof(val));
	rc = 0;
	for (uint64_t i = 0; i < N && rc == 0; i++) {
		memset(&sh, 0, sizeof(sh));
		sh.status = 400;
		sh.set_aside_ms = MS0 + (i * 7919) % N;
		memcpy(val, &sh, sizeof(sh));
		snprintf(tenant, sizeof(tenant), "t%u", (unsigned)(i % 3));
		k.mv_size = store_key(key, tenant, 2, i + 1);
		k.mv_data = key;
		v.mv_size = sizeof(val);
		v.mv_data = val;
		rc = mdb_put(txn, st->setaside, &k, &v, 0);
	}
	if (rc != 0) {
		mdb_txn_abort(txn);
		return -1;
	}
	return mdb_txn_commit(txn) == 0 ? 0 : -1;
}

/* The entries left and the earliest set-aside time among them. */
static int survivors(struct store *st, uint64_t *n, uint64_t *min_ms)
{
	struct setaside_hdr sh;
	MDB_cursor *cur;
	MDB_txn *txn;
	MDB_val k, v;
	int rc;

	*n = 0;
	*min_ms = UINT64_MAX;
	if (mdb_txn_begin(st->env, NULL, MDB_RDONLY, &txn) != 0)
		return -1;
	if (mdb_cursor_open(txn, st->setaside, &cur) != 0) {
		mdb_txn_abort(txn);
		return -1;
	}
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
	     rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		memcpy(&sh, v.mv_data, sizeof(sh));
		(*n)++;
		if (sh.set_aside_ms < *min_ms)
			*min_ms = sh.set_aside_ms;
	}
	mdb_cursor_close(cur);
	mdb_txn_abort(txn);
	return rc == MDB_NOTFOUND ? 0 : -1;
}

static void test_trim_by_size(void)
{
	struct setaside_sink sink = {NULL, count_deleted, NULL};
	struct store *st;
	struct store_txn *t;
	uint64_t before, max, n = 0, deleted = 0, left, min_ms, reads;

	sink.arg = &deleted;
	CHECK(tmpstore_open(dir, sizeof(dir), path, sizeof(path), "trim", &st,
			    64 * MIB) == 0);
	CHECK(fill(st) == 0);
	CHECK(store_txn_begin(st, &t) == 0);
	before = store_db_bytes(t->txn, st, st->setaside);
	max = before / 10;
	reads = store_setaside_trim_reads;
	/* No entry is older than a day: only the size trims. */
	CHECK_EQ_INT(store_setaside_trim(t, max, 86400000, MS0 + N, &sink, &n), 0);
	reads = store_setaside_trim_reads - reads;
	CHECK(store_db_bytes(t->txn, st, st->setaside) <= max);
	CHECK_EQ_INT(store_txn_commit(t), 0);
	CHECK(survivors(st, &left, &min_ms) == 0);
	store_close(st);
	tmpdir_remove(dir);
	/* Most went, each reported; exactly the earliest (times MS0 + 0 ..
	 * MS0 + n - 1). */
	CHECK(n > N / 2 && n < N);
	CHECK_EQ_INT(deleted, n);
	CHECK_EQ_INT(left, N - n);
	CHECK_EQ_INT(min_ms, MS0 + n);
	printf("# the trim read %llu entries to delete %llu of %d\n",
	       (unsigned long long)reads, (unsigned long long)n, N);
	/* A few passes over the entries (batches of 1024, 2048, ...), not
	 * one per entry deleted (which read about n * N / 2 of them). */
	if (reads > 8 * (uint64_t)N) {
		snprintf(unit_msg, sizeof(unit_msg), "the trim read %llu entries "
			 "to delete %llu of %d", (unsigned long long)reads,
			 (unsigned long long)n, N);
		unit_cur_failed = 1;
	}
}

int main(void)
{
	RUN(test_trim_by_size);
	return unit_done();
}
