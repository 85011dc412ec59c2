/*
 * test_usage_carry.c - usage records deleted past usage_retention are
 * carried, not lost: the cleanup moves their counters into the tenant's
 * carried record in its transaction; the export's totals (usage_totals)
 * stay what they were, in the same run and after a restart (the store
 * closed and opened again, the totals read anew); `relay usage` (the
 * reports) and every walk over hours never show the carried record.
 */
#include "err.h"
#include "metrics.h"
#include "store.h"
#include "tmpdir.h"
#include "unit.h"
#include "usage.h"
#include "usage_export.h"

#include <inttypes.h>
#include <stdint.h>

#define NOW_H 1796410800ull         /* 2026-12-04T19:00:00Z */
#define NOW_MS ((NOW_H + 1800) * 1000)  /* half past */
#define DAY_MS (24ull * 3600 * 1000)

static char dir[64], path[96];
static struct store *st;

static int open_store(void)
{
	char why[256];

	if ((st = store_open(path, 16u << 20, why, sizeof(why))) == NULL) {
		fprintf(stderr, "store_open: %s\n", why);
		return -1;
	}
	return 0;
}

/* A new directory with a store in it. */
static int new_store(const char *name)
{
	snprintf(dir, sizeof(dir), "/tmp/relay-test-%s-XXXXXX", name);
	if (mkdtemp(dir) == NULL)
		return -1;
	snprintf(path, sizeof(path), "%s/buf", dir);
	return open_store();
}

static void drop_store(void)
{
	store_close(st);
	st = NULL;
	tmpdir_remove(dir);
	dir[0] = '\0';
}

/* A record with every counter set, distinct per (seed, field). */
static struct usage_rec make_rec(uint64_t seed)
{
	struct usage_rec r;

	memset(&r, 0, sizeof(r));
	r.version = USAGE_FORMAT;
	r.requests = seed + 1;
	r.series = seed + 2;
	r.samples = seed + 3;
	r.histograms = seed + 4;
	r.exemplars = seed + 5;
	r.metadata = seed + 6;
	r.bytes_compressed = seed + 7;
	r.bytes_decoded = seed + 8;
	r.active_series = seed + 9;
	r.samples_delivered = seed + 10;
	for (int i = 0; i < USAGE_REFUSED_SLOTS; i++) {
		r.samples_refused[i] = seed + 20 + (uint64_t)i;
		r.requests_refused[i] = seed + 40 + (uint64_t)i;
	}
	for (int i = 0; i < USAGE_DROPPED_SLOTS; i++)
		r.samples_dropped[i] = seed + 60 + (uint64_t)i;
	r.samples_deduplicated = seed + 70;
	return r;
}

/* Whether a and b hold the same counters (all but version, reserved,
 * active_series and carried_to: what the export writes and more). */
static int same_counters(const struct usage_rec *a, const struct usage_rec *b)
{
	struct usage_rec x = *a, y = *b;

	x.version = y.version = 0;
	x.reserved = y.reserved = 0;
	x.active_series = y.active_series = 0;
	x.carried_to = y.carried_to = 0;
	return memcmp(&x, &y, sizeof(x)) == 0;
}

struct hourly {
	const char *tenant;
	int ago;                 /* hours before NOW_H */
};

/* acme: hours kept and hours past a 2-day retention; globex: one of
 * each; gone: only hours past it. */
static const struct hourly recs[] = {
	{"acme", 0}, {"acme", 1}, {"acme", 2}, {"acme", 5}, {"acme", 30},
	{"acme", 47}, {"acme", 48}, {"acme", 49}, {"acme", 72}, {"acme", 100},
	{"globex", 3}, {"globex", 60},
	{"gone", 50}, {"gone", 51},
};
#define NRECS (sizeof(recs) / sizeof(recs[0]))
#define RETENTION_MS (2 * DAY_MS)  /* cutoff NOW_H + 1800 - 48h */

static uint64_t rec_hour(size_t i)
{
	return NOW_H - (uint64_t)recs[i].ago * 3600;
}

static int put_all(void)
{
	struct store_txn *txn;

	if (store_txn_begin(st, &txn) != 0)
		return -1;
	for (size_t i = 0; i < NRECS; i++) {
		struct usage_rec r = make_rec(1000 * (i + 1));
		if (store_usage_put(txn, 0, recs[i].tenant, strlen(recs[i].tenant),
				    rec_hour(i), &r, sizeof(r)) != 0) {
			store_txn_abort(txn);
			return -1;
		}
	}
	return store_txn_commit(txn) == 0 ? 0 : -1;
}

/* The sum of the tenant's records in recs: deleted ones (ago >= 48),
 * kept ones, or all (which < 0). */
static struct usage_rec expect(const char *tenant, int which)
{
	struct usage_rec sum;

	memset(&sum, 0, sizeof(sum));
	for (size_t i = 0; i < NRECS; i++) {
		struct usage_rec r = make_rec(1000 * (i + 1));
		int deleted = recs[i].ago >= 48;
		if (strcmp(recs[i].tenant, tenant) == 0 &&
		    (which < 0 || which == deleted))
			usage_add(&sum, &r);
	}
	return sum;
}

/* The total of tenant in tt; NULL when it has none. */
static const struct usage_rec *total_of(const struct usage_totals *tt,
					const char *tenant)
{
	const char *id;
	size_t idlen;

	for (size_t i = 0; i < usage_totals_count(tt); i++) {
		const struct usage_rec *r = usage_totals_at(tt, i, &id, &idlen);
		if (idlen == strlen(tenant) && memcmp(id, tenant, idlen) == 0)
			return r;
	}
	return NULL;
}

/* Whether every tenant's total in tt is the sum of all its records. */
static int totals_whole(const struct usage_totals *tt)
{
	static const char *const tenants[] = {"acme", "globex", "gone"};

	if (usage_totals_count(tt) != 3)
		return 0;
	for (size_t i = 0; i < 3; i++) {
		const struct usage_rec *got = total_of(tt, tenants[i]);
		struct usage_rec want = expect(tenants[i], -1);
		if (got == NULL || !same_counters(got, &want)) {
			printf("# %s: samples %" PRIu64 ", want %" PRIu64 "\n",
			       tenants[i], got ? got->samples : 0, want.samples);
			return 0;
		}
	}
	return 1;
}

static int cleanup(uint64_t now_ms, uint64_t retention_ms)
{
	struct store_txn *txn;
	int rc;

	if (store_txn_begin(st, &txn) != 0)
		return -1;
	if ((rc = usage_cleanup(txn, now_ms, retention_ms)) != 0) {
		store_txn_abort(txn);
		return rc;
	}
	return store_txn_commit(txn);
}

/* The JSON report of tenant (NULL: all) from from_s on, malloc'd. */
static char *report(const char *tenant, uint64_t from_s, int csv)
{
	struct usage_filter f = {tenant, from_s, 0, 0, NULL};
	struct buf out;
	char *s = NULL;

	buf_init(&out, 1u << 24);
	if (usage_format(st, &f, csv, &out) == 0 && buf_append(&out, "", 1) == 0)
		s = strdup((const char *)out.p);
	buf_free(&out);
	return s;
}

static int count_str(const char *hay, const char *needle)
{
	int n = 0;

	for (const char *p = hay; (p = strstr(p, needle)) != NULL; p++)
		n++;
	return n;
}

static int count_row(void *arg, const char *tenant, size_t tlen,
		     uint64_t hour, const void *val, size_t len)
{
	(void)tenant;
	(void)tlen;
	(void)val;
	(void)len;
	if (hour % 3600 != 0)
		return ERR_FAIL;     /* not an hour: the carried record */
	(*(int *)arg)++;
	return 0;
}

/* The cleanup deletes the hours past retention and adds them into each
 * tenant's carried record, whose carried_to is the cutoff; the kept hours
 * are as they were. The export's totals are the same before and after,
 * in the same run and after a restart, for every column; a second
 * cleanup adds to the carried record. */
static void test_cleanup_carries(void)
{
	struct usage_totals *run, *restart;
	struct store_txn *txn;
	const void *val;
	size_t len;
	struct usage_rec got, want;
	uint64_t cutoff = NOW_MS / 1000 - RETENTION_MS / 1000;

	CHECK(new_store("usagecarry") == 0);
	CHECK(put_all() == 0);
	CHECK((run = usage_totals_new(st)) != NULL);
	CHECK_EQ_INT(usage_totals_refresh(run, NOW_MS), 0);
	CHECK(totals_whole(run));

	CHECK_EQ_INT(cleanup(NOW_MS, RETENTION_MS), 0);
	CHECK_EQ_INT(store_txn_begin(st, &txn), 0);
	for (size_t i = 0; i < NRECS; i++) {
		int rc = store_usage_get(txn, 0, recs[i].tenant,
					 strlen(recs[i].tenant), rec_hour(i),
					 &val, &len);
		struct usage_rec r = make_rec(1000 * (i + 1));
		if (recs[i].ago >= 48) {
			CHECK_EQ_INT(rc, 0);
			continue;
		}
		CHECK_EQ_INT(rc, 1);
		CHECK_EQ_INT(usage_rec_read(val, len, &got), 0);
		CHECK(memcmp(&got, &r, sizeof(r)) == 0);
	}
	for (int k = 0; k < 3; k++) {
		const char *t = k == 0 ? "acme" : k == 1 ? "globex" : "gone";
		CHECK_EQ_INT(store_usage_get(txn, 0, t, strlen(t),
					     STORE_USAGE_CARRIED, &val, &len), 1);
		CHECK_EQ_INT(len, sizeof(struct usage_rec));
		CHECK_EQ_INT(usage_rec_read(val, len, &got), 0);
		want = expect(t, 1);
		CHECK(same_counters(&got, &want));
		CHECK_EQ_INT(got.version, USAGE_FORMAT);
		CHECK_EQ_INT(got.active_series, 0);
		CHECK_EQ_INT(got.carried_to, cutoff);
	}
	store_txn_abort(txn);

	/* The same run: nothing counted twice. */
	CHECK_EQ_INT(usage_totals_refresh(run, NOW_MS + 60000), 0);
	CHECK(totals_whole(run));
	usage_totals_free(run);

	/* A restart: the totals read anew from what is kept. */
	store_close(st);
	CHECK(open_store() == 0);
	CHECK((restart = usage_totals_new(st)) != NULL);
	CHECK_EQ_INT(usage_totals_refresh(restart, NOW_MS + 120000), 0);
	CHECK(totals_whole(restart));

	/* A day later: acme's hours 30, 47 go too, into the same record. */
	CHECK_EQ_INT(cleanup(NOW_MS + DAY_MS, RETENTION_MS), 0);
	CHECK_EQ_INT(store_txn_begin(st, &txn), 0);
	CHECK_EQ_INT(store_usage_get(txn, 0, "acme", 4, STORE_USAGE_CARRIED,
				     &val, &len), 1);
	CHECK_EQ_INT(usage_rec_read(val, len, &got), 0);
	store_txn_abort(txn);
	want = expect("acme", 1);
	for (size_t i = 0; i < NRECS; i++) {
		struct usage_rec r = make_rec(1000 * (i + 1));
		if (strcmp(recs[i].tenant, "acme") == 0 &&
		    (recs[i].ago == 30 || recs[i].ago == 47))
			usage_add(&want, &r);
	}
	CHECK(same_counters(&got, &want));
	CHECK_EQ_INT(got.carried_to, cutoff + DAY_MS / 1000);
	CHECK_EQ_INT(usage_totals_refresh(restart, NOW_MS + DAY_MS), 0);
	CHECK(totals_whole(restart));
	usage_totals_free(restart);
	CHECK((restart = usage_totals_new(st)) != NULL);
	CHECK_EQ_INT(usage_totals_refresh(restart, NOW_MS + DAY_MS), 0);
	CHECK(totals_whole(restart));
	usage_totals_free(restart);
	drop_store();
}

/* `relay usage` (the reports) shows the kept hours as before the
 * cleanup, and no row for the carried record; walks over hours never
 * pass it. */
static void test_report_unchanged(void)
{
	uint64_t cutoff = NOW_MS / 1000 - RETENTION_MS / 1000;
	char *before, *before_csv, *after, *after_csv, *acme;
	int rows = 0;

	CHECK(new_store("usagecarry-report") == 0);
	CHECK(put_all() == 0);
	/* The kept hours are those from the cutoff on. */
	before = report(NULL, cutoff, 0);
	before_csv = report(NULL, cutoff, 1);
	CHECK(before != NULL && before_csv != NULL);
	CHECK_EQ_INT(count_str(before, "{\"tenant\":"), 7);
	CHECK_EQ_INT(cleanup(NOW_MS, RETENTION_MS), 0);
	after = report(NULL, 0, 0);
	after_csv = report(NULL, 0, 1);
	acme = report("acme", 0, 0);
	CHECK(after != NULL && after_csv != NULL && acme != NULL);
	CHECK_STR(after, before);
	CHECK_STR(after_csv, before_csv);
	CHECK_EQ_INT(count_str(acme, "{\"tenant\":"), 6);
	CHECK(strstr(after, "\"gone\"") == NULL);
	free(before);
	free(before_csv);
	free(after);
	free(after_csv);
	free(acme);
	CHECK_EQ_INT(store_usage_range(st, 0, UINT64_MAX, count_row, &rows), 0);
	CHECK_EQ_INT(rows, 7);
	rows = 0;
	CHECK_EQ_INT(store_usage_each(st, NULL, 0, 0, count_row, &rows), 0);
	CHECK_EQ_INT(rows, 7);
	rows = 0;
	CHECK_EQ_INT(store_usage_each(st, "gone", 4, 0, count_row, &rows), 0);
	CHECK_EQ_INT(rows, 0);
	drop_store();
}

/* An export late by more than the retention: the cleanup carried hours
 * that were recent at the last refresh (not in its closed sum). The
 * totals are read anew and stay whole. */
static void test_late_export(void)
{
	struct usage_totals *tt;

	CHECK(new_store("usagecarry-late") == 0);
	CHECK(put_all() == 0);
	CHECK((tt = usage_totals_new(st)) != NULL);
	CHECK_EQ_INT(usage_totals_refresh(tt, NOW_MS), 0);
	CHECK(totals_whole(tt));
	/* Three days on, one day kept: every hour of recs goes. */
	CHECK_EQ_INT(cleanup(NOW_MS + 3 * DAY_MS, DAY_MS), 0);
	CHECK_EQ_INT(usage_totals_refresh(tt, NOW_MS + 3 * DAY_MS), 0);
	CHECK(totals_whole(tt));
	usage_totals_free(tt);
	drop_store();
}

/* A version 3 record (384 bytes, before carried_to) reads with 0 there. */
static void test_v3_record(void)
{
	struct usage_rec r = make_rec(5), got;
	uint8_t v3[USAGE_REC_V3_SIZE];

	r.version = 3;
	r.carried_to = 77;       /* beyond a version 3 record */
	memcpy(v3, &r, sizeof(v3));
	CHECK_EQ_INT(usage_rec_read(v3, sizeof(v3), &got), 0);
	CHECK_EQ_INT(got.carried_to, 0);
	CHECK_EQ_INT(got.samples_deduplicated, r.samples_deduplicated);
}

int main(void)
{
	RUN(test_cleanup_carries);
	if (st != NULL)
		drop_store();
	RUN(test_report_unchanged);
	if (st != NULL)
		drop_store();
	RUN(test_late_export);
	if (st != NULL)
		drop_store();
	RUN(test_v3_record);
	return unit_done();
}
