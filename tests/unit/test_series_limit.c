/*
 * test_series_limit.c - the per-tenant series tables behind [tenant]
 * max_series, and their records in the store: new series up to the limit
 * and none past it, known ones always, tenants apart, series given back by
 * a rollback, the window (times moved by hand, no waiting), many series
 * through growth and sweeps, and the records written, loaded back,
 * expired, and the series database made by the format 3 -> 4 conversion.
 */
#include "series_limit.h"

#include <lmdb.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "config.h"
#include "store.h"
#include "tmpstore.h"
#include "unit.h"

#define MIB (1024ull * 1024)

/* A [tenant] section with a limit. */
static struct config_tenant section(uint64_t max, uint64_t window_ms)
{
	struct config_tenant tc;

	memset(&tc, 0, sizeof(tc));
	tc.max_series = max;
	tc.max_series_window_ms = window_ms;
	return tc;
}

/* Distinct, well-spread series hashes. */
static uint64_t series_hash(uint64_t i)
{
	uint64_t x = i + 0x9e3779b97f4a7c15ull;

	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

static void test_limit_and_known(void)
{
	struct config_tenant tc = section(100, 3600000), none = section(0, 0);
	struct series_limit *sl = series_limit_new();
	struct series_req q, o;
	uint64_t refused = 0;

	CHECK(sl != NULL);
	memset(&q, 0, sizeof(q));
	memset(&o, 0, sizeof(o));
	CHECK_EQ_INT(series_limit_begin(sl, &q, "acme", 4, &tc, 1000), 0);
	CHECK(q.t != NULL);
	for (uint64_t i = 0; i < 150; i++)
		refused += series_limit_admit(&q, series_hash(i)) != 0;
	CHECK_EQ_INT(refused, 50);
	CHECK_EQ_INT(q.refused, 50);
	CHECK_EQ_INT(series_limit_count(sl, "acme", 4), 100);
	CHECK_EQ_INT(q.added.len / 8, 100);
	CHECK_EQ_INT(q.notes.len / 8, 100);
	/* Known series pass at the limit, new ones do not, and a known one
	 * stored just now is not noted again. */
	series_limit_end(&q);
	memset(&q, 0, sizeof(q));
	CHECK_EQ_INT(series_limit_begin(sl, &q, "acme", 4, &tc, 1000), 0);
	for (uint64_t i = 0; i < 100; i++)
		CHECK_EQ_INT(series_limit_admit(&q, series_hash(i)), 0);
	CHECK_EQ_INT(series_limit_admit(&q, series_hash(100)), 1);
	CHECK_EQ_INT(q.notes.len, 0);
	/* Another tenant has its own table; one without a limit none. */
	CHECK_EQ_INT(series_limit_begin(sl, &o, "globex", 6, &tc, 1000), 0);
	for (uint64_t i = 100; i < 200; i++)
		CHECK_EQ_INT(series_limit_admit(&o, series_hash(i)), 0);
	CHECK_EQ_INT(series_limit_count(sl, "globex", 6), 100);
	series_limit_end(&o);
	CHECK_EQ_INT(series_limit_begin(sl, &o, "other", 5, &none, 1000), 0);
	CHECK(o.t == NULL);
	CHECK_EQ_INT(series_limit_begin(sl, &o, "other", 5, NULL, 1000), 0);
	CHECK(o.t == NULL);
	series_limit_end(&q);
	series_limit_end(&o);
	series_limit_free(sl);
}

/* A request that is not stored gives its new series back. */
static void test_rollback(void)
{
	struct config_tenant tc = section(10, 3600000);
	struct series_limit *sl = series_limit_new();
	struct series_req q;

	CHECK(sl != NULL);
	memset(&q, 0, sizeof(q));
	CHECK_EQ_INT(series_limit_begin(sl, &q, "acme", 4, &tc, 100), 0);
	for (uint64_t i = 0; i < 6; i++)
		CHECK_EQ_INT(series_limit_admit(&q, series_hash(i)), 0);
	series_limit_end(&q);
	memset(&q, 0, sizeof(q));
	CHECK_EQ_INT(series_limit_begin(sl, &q, "acme", 4, &tc, 100), 0);
	for (uint64_t i = 0; i < 10; i++)    /* 6 known, 4 new */
		CHECK_EQ_INT(series_limit_admit(&q, series_hash(i)), 0);
	CHECK_EQ_INT(series_limit_count(sl, "acme", 4), 10);
	series_limit_rollback(&q);
	CHECK_EQ_INT(series_limit_count(sl, "acme", 4), 6);
	/* Room again for four new ones, not five. */
	for (uint64_t i = 20; i < 24; i++)
		CHECK_EQ_INT(series_limit_admit(&q, series_hash(i)), 0);
	CHECK_EQ_INT(series_limit_admit(&q, series_hash(24)), 1);
	series_limit_end(&q);
	series_limit_free(sl);
}

/* A series not seen within the window is new again, and the table makes
 * room for new ones once old ones expire. Times are moved by hand. */
static void test_window(void)
{
	struct config_tenant tc = section(5, 10000);
	struct series_limit *sl = series_limit_new();
	struct series_req q;

	CHECK(sl != NULL);
	memset(&q, 0, sizeof(q));
	CHECK_EQ_INT(series_limit_begin(sl, &q, "acme", 4, &tc, 100), 0);
	for (uint64_t i = 0; i < 5; i++)
		CHECK_EQ_INT(series_limit_admit(&q, series_hash(i)), 0);
	CHECK_EQ_INT(series_limit_admit(&q, series_hash(5)), 1);
	/* 6 s later series 0 is seen again, the others are not. */
	q.now_s += 6;
	CHECK_EQ_INT(series_limit_admit(&q, series_hash(0)), 0);
	CHECK_EQ_INT(series_limit_admit(&q, series_hash(5)), 1);
	/* 11 s after the start: 1..4 expired, 0 (seen at 6 s) not. */
	q.now_s += 5;
	for (uint64_t i = 5; i < 9; i++)
		CHECK_EQ_INT(series_limit_admit(&q, series_hash(i)), 0);
	CHECK_EQ_INT(series_limit_admit(&q, series_hash(9)), 1);
	CHECK_EQ_INT(series_limit_admit(&q, series_hash(0)), 0);
	CHECK_EQ_INT(series_limit_count(sl, "acme", 4), 5);
	/* Series 1 comes back after its window: new, and refused. */
	CHECK_EQ_INT(series_limit_admit(&q, series_hash(1)), 1);
	series_limit_end(&q);
	series_limit_free(sl);
}

/* Many series: growth, the bound on memory, exact counts throughout. */
static void test_many(void)
{
	struct config_tenant tc = section(100000, 3600000);
	struct series_limit *sl = series_limit_new();
	struct series_req q;
	uint64_t refused = 0, bytes;

	CHECK(sl != NULL);
	memset(&q, 0, sizeof(q));
	CHECK_EQ_INT(series_limit_begin(sl, &q, "acme", 4, &tc, 200000), 0);
	for (uint64_t i = 0; i < 120000; i++)
		refused += series_limit_admit(&q, series_hash(i));
	CHECK_EQ_INT(refused, 20000);
	for (uint64_t i = 0; i < 100000; i++)
		CHECK_EQ_INT(series_limit_admit(&q, series_hash(i)), 0);
	CHECK_EQ_INT(series_limit_count(sl, "acme", 4), 100000);
	bytes = series_limit_bytes(sl);
	CHECK(bytes <= 100000ull * SERIES_LIMIT_BYTES_MAX +
		       SERIES_LIMIT_TENANT_BYTES + 16384);
	/* Hash 0 is a series like another. */
	series_limit_end(&q);
	series_limit_free(sl);
}

/* Requests at the same time cannot pass the limit together: 4 threads,
 * each with its own requests of new series, take exactly max_series. */
struct racer {
	struct series_limit *sl;
	const struct config_tenant *tc;
	uint64_t first;
	_Atomic uint64_t *taken;
};

static void *race(void *arg)
{
	struct racer *r = arg;
	struct series_req q;
	uint64_t taken = 0;

	memset(&q, 0, sizeof(q));
	for (uint64_t i = 0; i < 20000; i++) {
		if (i % 100 == 0 &&
		    series_limit_begin(r->sl, &q, "acme", 4, r->tc, 100) != 0)
			break;
		taken += series_limit_admit(&q, series_hash(r->first + i)) == 0;
	}
	series_limit_end(&q);
	atomic_fetch_add(r->taken, taken);
	return NULL;
}

static void test_concurrent(void)
{
	struct config_tenant tc = section(50000, 3600000);
	struct series_limit *sl = series_limit_new();
	_Atomic uint64_t taken = 0;
	struct racer r[4];
	pthread_t th[4];

	CHECK(sl != NULL);
	for (int i = 0; i < 4; i++) {
		r[i] = (struct racer){sl, &tc, (uint64_t)i * 1000000, &taken};
		CHECK(pthread_create(&th[i], NULL, race, &r[i]) == 0);
	}
	for (int i = 0; i < 4; i++)
		pthread_join(th[i], NULL);
	CHECK_EQ_INT(atomic_load(&taken), 50000);
	CHECK_EQ_INT(series_limit_count(sl, "acme", 4), 50000);
	series_limit_free(sl);
}

/* ---- Persistence ---- */

static char dir[128], path[160];

/* Series of tenant acme written as a batch would, then loaded into a new
 * set of tables: the expired one and another tenant's are left out. */
static void test_store_and_load(void)
{
	static const char conf[] = "[tenant acme]\nmax_series = 3\n"
				   "max_series_window = 1h\n[tenant nolimit]\n";
	struct series_limit *sl = NULL;
	struct config cfg;
	struct store *st = NULL;
	struct store_txn *txn;
	struct store_pos pos;
	struct series_req q;
	uint64_t now = clock_age_now_ms(), n = 0, deleted = 0;
	char cpath[200], err[256];
	FILE *f;
	int rc;

	CHECK(tmpstore_open(dir, sizeof(dir), path, sizeof(path), "series", &st,
			    64 * MIB) == 0);
	snprintf(cpath, sizeof(cpath), "%s/relay.conf", dir);
	CHECK((f = fopen(cpath, "w")) != NULL);
	fputs(conf, f);
	fclose(f);
	CHECK_EQ_INT(config_load(&cfg, cpath, err, sizeof(err)), 0);
	CHECK_EQ_INT(store_txn_begin(st, &txn), 0);
	CHECK_EQ_INT(store_series_put(txn, "acme", 4, 11, now - 1000, 3600000), 0);
	CHECK_EQ_INT(store_series_put(txn, "acme", 4, 12, now - 2000, 3600000), 0);
	CHECK_EQ_INT(store_series_put(txn, "acme", 4, 13, now - 7200000,
				      3600000), 0);
	CHECK_EQ_INT(store_series_put(txn, "nolimit", 7, 14, now, 3600000), 0);
	CHECK_EQ_INT(store_series_put(txn, "", 0, 15, now, 3600000), ERR_FAIL);
	CHECK_EQ_INT(store_txn_commit(txn), 0);

	CHECK((sl = series_limit_new()) != NULL);
	rc = series_limit_load(sl, st, &cfg, &n);
	CHECK_EQ_INT(rc, 0);
	CHECK_EQ_INT(n, 2);
	CHECK_EQ_INT(series_limit_count(sl, "acme", 4), 2);
	CHECK_EQ_INT(series_limit_count(sl, "nolimit", 7), 0);
	/* Known after the load; one new fits, then the limit. */
	memset(&q, 0, sizeof(q));
	CHECK_EQ_INT(series_limit_begin(sl, &q, "acme", 4, cfg.tenants, 100), 0);
	CHECK_EQ_INT(series_limit_admit(&q, 11), 0);
	CHECK_EQ_INT(series_limit_admit(&q, 12), 0);
	CHECK_EQ_INT(series_limit_admit(&q, 21), 0);
	CHECK_EQ_INT(series_limit_admit(&q, 22), 1);
	series_limit_end(&q);

	/* Expiry deletes the expired record, and walks the whole database
	 * in steps. */
	memset(&pos, 0, sizeof(pos));
	CHECK_EQ_INT(store_txn_begin(st, &txn), 0);
	CHECK_EQ_INT(store_series_expire(txn, &pos, 1, now, &deleted), 0);
	CHECK_EQ_INT(deleted, 0);
	CHECK(pos.started);
	CHECK_EQ_INT(store_series_expire(txn, &pos, 100, now, &deleted), 0);
	CHECK_EQ_INT(deleted, 1);
	CHECK(!pos.started);
	CHECK_EQ_INT(store_series_expire(txn, &pos, 100, now + 7200000,
					 &deleted), 0);
	CHECK_EQ_INT(deleted, 3);
	CHECK_EQ_INT(store_txn_commit(txn), 0);
	series_limit_free(sl);
	CHECK((sl = series_limit_new()) != NULL);
	CHECK_EQ_INT(series_limit_load(sl, st, &cfg, &n), 0);
	CHECK_EQ_INT(n, 0);
	series_limit_free(sl);
	config_free(&cfg);
	store_close(st);
	tmpdir_remove(dir);
}

/* A format 3 directory (no series database) is converted: format 4, the
 * database made, empty; a reader takes format 3 as it is. */
static void test_format_3_to_4(void)
{
	struct store *st = NULL;
	struct store_txn *txn;
	MDB_env *env;
	MDB_txn *wt;
	MDB_dbi dbi;
	MDB_val k = {6, "format"}, v;
	uint32_t three = 3;
	char why[256];
	int rc;

	CHECK(tmpstore_open(dir, sizeof(dir), path, sizeof(path), "series3", &st,
			    64 * MIB) == 0);
	store_close(st);
	v.mv_size = sizeof(three);
	v.mv_data = &three;
	CHECK(mdb_env_create(&env) == 0);
	rc = mdb_env_set_maxdbs(env, 16);
	if (rc == 0)
		rc = mdb_env_open(env, path, 0, 0600);
	if (rc == 0 && (rc = mdb_txn_begin(env, NULL, 0, &wt)) == 0) {
		if ((rc = mdb_dbi_open(wt, "series", 0, &dbi)) == 0 &&
		    (rc = mdb_drop(wt, dbi, 1)) == 0 &&
		    (rc = mdb_dbi_open(wt, "meta", 0, &dbi)) == 0 &&
		    (rc = mdb_put(wt, dbi, &k, &v, 0)) == 0)
			rc = mdb_txn_commit(wt);
		else
			mdb_txn_abort(wt);
	}
	mdb_env_close(env);
	CHECK_EQ_INT(rc, 0);
	CHECK((st = store_open_readonly(path, why, sizeof(why))) != NULL);
	CHECK_EQ_INT(st->series, 0);
	store_close(st);
	CHECK((st = store_open(path, 64 * MIB, why, sizeof(why))) != NULL);
	CHECK(st->series != 0);
	CHECK_EQ_INT(store_txn_begin(st, &txn), 0);
	CHECK_EQ_INT(store_series_put(txn, "acme", 4, 1, clock_age_now_ms(),
				      60000), 0);
	CHECK_EQ_INT(store_txn_commit(txn), 0);
	store_close(st);
	CHECK((st = store_open_readonly(path, why, sizeof(why))) != NULL);
	CHECK(st->series != 0);
	store_close(st);
	{
		uint32_t fmt = 0;

		CHECK(mdb_env_create(&env) == 0);
		rc = mdb_env_set_maxdbs(env, 16);
		if (rc == 0)
			rc = mdb_env_open(env, path, MDB_RDONLY, 0600);
		if (rc == 0 && (rc = mdb_txn_begin(env, NULL, MDB_RDONLY, &wt)) == 0) {
			if ((rc = mdb_dbi_open(wt, "meta", 0, &dbi)) == 0 &&
			    (rc = mdb_get(wt, dbi, &k, &v)) == 0 && v.mv_size == 4)
				memcpy(&fmt, v.mv_data, 4);
			mdb_txn_abort(wt);
		}
		mdb_env_close(env);
		CHECK_EQ_INT(rc, 0);
		CHECK_EQ_INT(fmt, STORE_FORMAT);
	}
	tmpdir_remove(dir);
}

int main(void)
{
	clock_start();
	RUN(test_limit_and_known);
	RUN(test_rollback);
	RUN(test_window);
	RUN(test_many);
	RUN(test_concurrent);
	RUN(test_store_and_load);
	RUN(test_format_3_to_4);
	return unit_done();
}
