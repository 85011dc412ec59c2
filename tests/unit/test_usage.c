/*
 * test_usage.c - usage records: the HyperLogLog sketch of active series
 * (accuracy from 1 to a million distinct series, duplicates), time parsing
 * for from/to, and the JSON and CSV reports read from a real LMDB
 * environment (tenant and time filters, columns, values).
 */
#include "err.h"
#include "metrics.h"
#include "store.h"
#include "unit.h"
#include "usage.h"
#include "usage_export.h"
#include "wire.h"

#include <inttypes.h>
#include <math.h>
#include <stdint.h>
#include <sys/stat.h>
#include <unistd.h>

/* --- the sketch ----------------------------------------------------------- */

static uint64_t splitmix64(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* Whether est is within 2% of n (for tiny n, within one). */
static int close_enough(uint64_t est, uint64_t n)
{
	double err = fabs((double)est - (double)n);

	return err <= (n < 50 ? 1.0 : 0.02 * (double)n);
}

static void test_hll_code_range(void)
{
	uint64_t seed = 42;

	for (int i = 0; i < 100000; i++) {
		uint32_t c = usage_hll_code(splitmix64(&seed));
		uint32_t idx = c >> 8, rank = c & 0xff;

		CHECK(idx < USAGE_HLL_M);
		CHECK(rank >= 1 && rank <= 64 - USAGE_HLL_P + 1);
	}
	/* Deterministic. */
	CHECK_EQ_INT(usage_hll_code(12345), usage_hll_code(12345));
	/* Zero and all-ones are valid hashes too. */
	CHECK((usage_hll_code(0) & 0xff) >= 1);
	CHECK((usage_hll_code(UINT64_MAX) >> 8) < USAGE_HLL_M);
}

static void test_hll_empty(void)
{
	uint8_t *regs = calloc(USAGE_HLL_M, 1);

	CHECK(regs != NULL);
	CHECK_EQ_INT(usage_hll_estimate(regs), 0);
	free(regs);
}

/* Adds n distinct random hashes (seeded) to regs, then checks the estimate;
 * then adds them all again and checks the registers and the estimate do
 * not change. */
static int hll_run(uint64_t n, uint64_t seed0, int sequential, uint64_t *est_out,
		   int *dup_same)
{
	uint8_t *regs = calloc(USAGE_HLL_M, 1), *copy = malloc(USAGE_HLL_M);
	uint64_t seed, est;

	if (regs == NULL || copy == NULL)
		return -1;
	seed = seed0;
	for (uint64_t i = 0; i < n; i++)
		usage_hll_apply(regs, usage_hll_code(sequential ? i : splitmix64(&seed)));
	est = usage_hll_estimate(regs);
	memcpy(copy, regs, USAGE_HLL_M);
	seed = seed0;
	for (uint64_t i = 0; i < n; i++)
		usage_hll_apply(regs, usage_hll_code(sequential ? i : splitmix64(&seed)));
	*dup_same = memcmp(copy, regs, USAGE_HLL_M) == 0 &&
		    usage_hll_estimate(regs) == est;
	*est_out = est;
	free(regs);
	free(copy);
	return 0;
}

static void test_hll_accuracy(void)
{
	static const uint64_t ns[] = {1, 10, 100, 1000, 10000, 100000, 1000000};

	for (size_t i = 0; i < sizeof(ns) / sizeof(ns[0]); i++) {
		uint64_t est;
		int same;

		CHECK(hll_run(ns[i], 0x5eed0000 + i, 0, &est, &same) == 0);
		printf("# hll random n=%" PRIu64 " estimate=%" PRIu64 " (%+.3f%%)\n",
		       ns[i], est, 100.0 * ((double)est - (double)ns[i]) / (double)ns[i]);
		CHECK(close_enough(est, ns[i]));
		CHECK(same);
	}
}

/* Hashes that differ only in their low bits still spread over the
 * registers (usage_hll_code mixes them). */
static void test_hll_sequential(void)
{
	static const uint64_t ns[] = {1000, 100000};

	for (size_t i = 0; i < sizeof(ns) / sizeof(ns[0]); i++) {
		uint64_t est;
		int same;

		CHECK(hll_run(ns[i], 0, 1, &est, &same) == 0);
		printf("# hll sequential n=%" PRIu64 " estimate=%" PRIu64 "\n",
		       ns[i], est);
		CHECK(close_enough(est, ns[i]));
		CHECK(same);
	}
}

/* Two sketches merged register by register estimate the union. */
static void test_hll_merge(void)
{
	uint8_t *a = calloc(USAGE_HLL_M, 1), *b = calloc(USAGE_HLL_M, 1);
	uint64_t seed = 7, est;

	CHECK(a != NULL && b != NULL);
	/* 60000 in a, the last 30000 of them plus 30000 more in b: 90000. */
	for (int i = 0; i < 60000; i++) {
		uint32_t c = usage_hll_code(splitmix64(&seed));
		usage_hll_apply(a, c);
		if (i >= 30000)
			usage_hll_apply(b, c);
	}
	for (int i = 0; i < 30000; i++)
		usage_hll_apply(b, usage_hll_code(splitmix64(&seed)));
	for (unsigned r = 0; r < USAGE_HLL_M; r++)
		usage_hll_apply(a, r << 8 | b[r]);
	est = usage_hll_estimate(a);
	printf("# hll union of 60000 and 60000 sharing 30000: %" PRIu64 "\n", est);
	CHECK(close_enough(est, 90000));
	free(a);
	free(b);
}

/* --- time parsing ---------------------------------------------------------- */

static void test_parse_time(void)
{
	uint64_t t = 99;

	CHECK_EQ_INT(usage_parse_time("1700000000", &t), 0);
	CHECK_EQ_INT(t, 1700000000);
	CHECK_EQ_INT(usage_parse_time("0", &t), 0);
	CHECK_EQ_INT(t, 0);
	/* date -u -d 2026-11-24 +%s */
	CHECK_EQ_INT(usage_parse_time("2026-11-24", &t), 0);
	CHECK_EQ_INT(t, 1795478400);
	CHECK_EQ_INT(usage_parse_time("2026-11-24T19:00:00Z", &t), 0);
	CHECK_EQ_INT(t, 1795546800);
	CHECK_EQ_INT(usage_parse_time("2026-11-24T19:30:15Z", &t), 0);
	CHECK_EQ_INT(t, 1795546800 + 30 * 60 + 15);
	CHECK_EQ_INT(usage_parse_time("1970-01-01T00:00:00Z", &t), 0);
	CHECK_EQ_INT(t, 0);
	/* Leap day. */
	CHECK_EQ_INT(usage_parse_time("2024-02-29", &t), 0);
	CHECK_EQ_INT(t, 1709164800);

	t = 4242;
	CHECK_EQ_INT(usage_parse_time("garbage", &t), -1);
	CHECK_EQ_INT(usage_parse_time("", &t), -1);
	CHECK_EQ_INT(usage_parse_time("123abc", &t), -1);
	CHECK_EQ_INT(usage_parse_time("12 34", &t), -1);
	CHECK_EQ_INT(usage_parse_time("2026-13-01", &t), -1);
	CHECK_EQ_INT(usage_parse_time("2026-00-10", &t), -1);
	CHECK_EQ_INT(usage_parse_time("2026-11-32", &t), -1);
	CHECK_EQ_INT(usage_parse_time("2026-11-24T25:00:00Z", &t), -1);
	CHECK_EQ_INT(usage_parse_time("2026-11-24T19:61:00Z", &t), -1);
	CHECK_EQ_INT(usage_parse_time("2026-11-24T19:00", &t), -1);
	CHECK_EQ_INT(usage_parse_time("2026-11-24T19:00:00Zjunk", &t), -1);
	CHECK_EQ_INT(usage_parse_time("2026-11-24junk", &t), -1);
	CHECK_EQ_INT(t, 4242); /* untouched on error */
}

/* --- reports from LMDB ----------------------------------------------------- */

static char envdir[48];
static struct store *st;

#define H1 1795546800ull            /* 2026-11-24T19:00:00Z */
#define H2 (H1 + 3600)              /* 2026-11-24T20:00:00Z */
#define H3 (H1 + 2 * 3600)          /* 2026-11-24T21:00:00Z */

static int put_rec(struct store_txn *txn, const char *tenant, uint64_t hour,
		   uint64_t base)
{
	struct usage_rec rec;

	memset(&rec, 0, sizeof(rec));
	rec.version = USAGE_FORMAT;
	rec.requests = base + 1;
	rec.series = base + 2;
	rec.samples = base + 3;
	rec.histograms = base + 4;
	rec.exemplars = base + 5;
	rec.metadata = base + 6;
	rec.bytes_compressed = base + 7;
	rec.bytes_decoded = base + 8;
	rec.active_series = base + 9;
	rec.samples_delivered = base + 10;
	rec.samples_refused[REFUSE_RATE_LIMITED] = base + 11;
	rec.samples_refused[REFUSE_UNAUTHORIZED] = base + 12;
	rec.samples_dropped[DROP_AGE] = base + 13;
	rec.requests_refused[REFUSE_TENANT_FULL] = base + 14;
	return store_usage_put(txn, 0, tenant, strlen(tenant), hour, &rec,
			       sizeof(rec));
}

static int setup_env(void)
{
	struct store_txn *txn;
	char why[256];

	snprintf(envdir, sizeof(envdir), "/tmp/test_usage.XXXXXX");
	if (mkdtemp(envdir) == NULL)
		return -1;
	if ((st = store_open(envdir, 16u << 20, why, sizeof(why))) == NULL)
		return -1;
	if (store_txn_begin(st, &txn) != 0)
		return -1;
	if (put_rec(txn, "acme", H1, 100) != 0 ||
	    put_rec(txn, "acme", H2, 200) != 0 ||
	    put_rec(txn, "acme2", H1, 300) != 0 ||
	    put_rec(txn, "acm", H3, 400) != 0 ||
	    put_rec(txn, "globex", H1, 500) != 0 ||
	    put_rec(txn, "globex", H3, 600) != 0) {
		store_txn_abort(txn);
		return -1;
	}
	return store_txn_commit(txn) == 0 ? 0 : -1;
}

static void teardown_env(void)
{
	char p[96];

	store_close(st);
	st = NULL;
	snprintf(p, sizeof(p), "%s/relay.lock", envdir);
	unlink(p);
	snprintf(p, sizeof(p), "%s/data.mdb", envdir);
	unlink(p);
	snprintf(p, sizeof(p), "%s/lock.mdb", envdir);
	unlink(p);
	rmdir(envdir);
}

/* Runs usage_format into a NUL-terminated malloc'd string (NULL on error). */
static char *report(const char *tenant, uint64_t from, uint64_t to, int csv)
{
	struct usage_filter f = {tenant, from, to, 0, NULL};
	struct buf out;
	char *s = NULL;

	buf_init(&out, 1u << 24);
	if (usage_format(st, &f, csv, &out) == 0 &&
	    buf_append(&out, "", 1) == 0) {
		s = strdup((const char *)out.p);
	}
	buf_free(&out);
	return s;
}

static int count(const char *hay, const char *needle)
{
	int n = 0;

	for (const char *p = hay; (p = strstr(p, needle)) != NULL; p += strlen(needle))
		n++;
	return n;
}

/* Rows of a JSON report: occurrences of "tenant":. */
static int json_rows(const char *s)
{
	return count(s, "{\"tenant\":");
}

/* Lines of a CSV report minus the header. */
static int csv_rows(const char *s)
{
	return count(s, "\n") - 1;
}

static void test_format_all_json(void)
{
	char *s = report(NULL, 0, 0, 0);

	CHECK(s != NULL);
	CHECK(strncmp(s, "{\"usage\":[", 10) == 0);
	CHECK(strstr(s, "]}") != NULL);
	CHECK_EQ_INT(json_rows(s), 6);
	/* Key order: tenant, then hour ascending within a tenant. */
	{
		const char *a1 = strstr(s, "\"tenant\":\"acme\",\"hour\":\"2026-11-24T19:00:00Z\"");
		const char *a2 = strstr(s, "\"tenant\":\"acme\",\"hour\":\"2026-11-24T20:00:00Z\"");
		const char *g1 = strstr(s, "\"tenant\":\"globex\",\"hour\":\"2026-11-24T19:00:00Z\"");
		const char *g3 = strstr(s, "\"tenant\":\"globex\",\"hour\":\"2026-11-24T21:00:00Z\"");
		const char *c3 = strstr(s, "\"tenant\":\"acm\",\"hour\":\"2026-11-24T21:00:00Z\"");
		const char *b1 = strstr(s, "\"tenant\":\"acme2\",\"hour\":\"2026-11-24T19:00:00Z\"");
		CHECK(a1 && a2 && g1 && g3 && c3 && b1);
		CHECK(c3 < a1 && a1 < a2 && a2 < b1 && b1 < g1 && g1 < g3);
	}
	/* Values of acme's first hour (base 100). */
	CHECK(strstr(s, "\"hour\":\"2026-11-24T19:00:00Z\",\"requests\":101,"
		      "\"series\":102,\"samples\":103,") != NULL);
	CHECK(strstr(s, "\"bytes_compressed\":107,\"bytes_decoded\":108,"
		      "\"active_series\":109,\"samples_delivered\":110") != NULL);
	CHECK(strstr(s, "\"samples_refused_rate_limited\":111") != NULL);
	CHECK(strstr(s, "\"samples_refused_unauthorized\":112") != NULL);
	CHECK(strstr(s, "\"samples_refused_bad_request\":0") != NULL);
	free(s);
}

static void test_format_tenant_filter(void)
{
	char *s;

	s = report("acme", 0, 0, 0);
	CHECK(s != NULL);
	CHECK_EQ_INT(json_rows(s), 2);
	CHECK_EQ_INT(count(s, "\"tenant\":\"acme\","), 2);
	CHECK(strstr(s, "acme2") == NULL && strstr(s, "globex") == NULL &&
	      strstr(s, "\"acm\"") == NULL);
	free(s);
	/* A prefix of another tenant's id matches only itself. */
	s = report("acm", 0, 0, 0);
	CHECK(s != NULL);
	CHECK_EQ_INT(json_rows(s), 1);
	CHECK(strstr(s, "\"tenant\":\"acm\",\"hour\":\"2026-11-24T21:00:00Z\",\"requests\":401") != NULL);
	free(s);
	s = report("acme2", 0, 0, 0);
	CHECK(s != NULL);
	CHECK_EQ_INT(json_rows(s), 1);
	CHECK(strstr(s, "\"requests\":301") != NULL);
	free(s);
	/* Unknown tenant: no rows, still valid JSON. */
	s = report("nobody", 0, 0, 0);
	CHECK(s != NULL);
	CHECK_STR(s, "{\"usage\":[]}\n");
	free(s);
	s = report("zzz", 0, 0, 1);
	CHECK(s != NULL);
	CHECK_EQ_INT(csv_rows(s), 0);
	CHECK(strncmp(s, "tenant,hour,", 12) == 0);
	free(s);
}

static void test_format_time_filter(void)
{
	char *s;

	/* from inclusive. */
	s = report(NULL, H2, 0, 0);
	CHECK(s != NULL);
	CHECK_EQ_INT(json_rows(s), 3); /* acme H2, acm H3, globex H3 */
	CHECK(strstr(s, "T19:00:00Z") == NULL);
	free(s);
	/* to exclusive. */
	s = report(NULL, 0, H2, 0);
	CHECK(s != NULL);
	CHECK_EQ_INT(json_rows(s), 3); /* acme H1, acme2 H1, globex H1 */
	CHECK(strstr(s, "T20:00:00Z") == NULL && strstr(s, "T21:00:00Z") == NULL);
	free(s);
	s = report(NULL, H2, H3, 0);
	CHECK(s != NULL);
	CHECK_EQ_INT(json_rows(s), 1);
	CHECK(strstr(s, "\"tenant\":\"acme\",\"hour\":\"2026-11-24T20:00:00Z\",\"requests\":201") != NULL);
	free(s);
	/* A from inside an hour does not include that hour's record. */
	s = report("acme", H1 + 1, 0, 0);
	CHECK(s != NULL);
	CHECK_EQ_INT(json_rows(s), 1);
	CHECK(strstr(s, "T20:00:00Z") != NULL);
	free(s);
	/* Tenant and range together. */
	s = report("globex", H2, 0, 0);
	CHECK(s != NULL);
	CHECK_EQ_INT(json_rows(s), 1);
	CHECK(strstr(s, "\"tenant\":\"globex\",\"hour\":\"2026-11-24T21:00:00Z\",\"requests\":601") != NULL);
	free(s);
	s = report("globex", H1, H2, 1);
	CHECK(s != NULL);
	CHECK_EQ_INT(csv_rows(s), 1);
	CHECK(strstr(s, "\nglobex,2026-11-24T19:00:00Z,501,502,503,") != NULL);
	free(s);
	/* An empty range. */
	s = report(NULL, H3 + 3600, 0, 0);
	CHECK(s != NULL);
	CHECK_EQ_INT(json_rows(s), 0);
	free(s);
}

/* Splits the first JSON object's keys, in order, into keys (comma-joined). */
static int json_first_keys(const char *s, char *keys, size_t keyslen)
{
	const char *p = strstr(s, "{\"tenant\"");
	const char *end;
	size_t o = 0;

	if (p == NULL || (end = strchr(p, '}')) == NULL)
		return -1;
	keys[0] = '\0';
	for (p++; p < end;) {
		const char *q;

		if (*p != '"')
			return -1;
		q = strchr(p + 1, '"');
		if (q == NULL || q[1] != ':')
			return -1;
		if (o + (size_t)(q - p) + 2 >= keyslen)
			return -1;
		if (o > 0)
			keys[o++] = ',';
		memcpy(keys + o, p + 1, (size_t)(q - p - 1));
		o += (size_t)(q - p - 1);
		keys[o] = '\0';
		/* Skip the value: a string or a number, then a comma. */
		p = q + 2;
		if (*p == '"') {
			p = strchr(p + 1, '"');
			if (p == NULL)
				return -1;
			p++;
		} else {
			while (p < end && *p != ',')
				p++;
		}
		if (*p == ',')
			p++;
	}
	return 0;
}

static void test_format_csv(void)
{
	char *j = report(NULL, 0, 0, 0), *c = report(NULL, 0, 0, 1);
	char keys[4096], header[4096];
	const char *nl;

	CHECK(j != NULL && c != NULL);
	nl = strchr(c, '\n');
	CHECK(nl != NULL && (size_t)(nl - c) < sizeof(header));
	memcpy(header, c, (size_t)(nl - c));
	header[nl - c] = '\0';
	CHECK(json_first_keys(j, keys, sizeof(keys)) == 0);
	if (strcmp(header, keys) != 0)
		printf("# csv header: %s\n# json keys:  %s\n", header, keys);
	CHECK(strcmp(header, keys) == 0);
	/* The columns the issue names, in its order. */
	CHECK(strncmp(header, "tenant,hour,requests,series,samples,", 36) == 0);
	{
		const char *want[] = {"tenant", "hour", "requests", "series", "samples",
				      "bytes_compressed", "bytes_decoded",
				      "active_series", "samples_delivered",
				      "samples_refused_rate_limited"};
		const char *prev = header;
		for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
			char col[64];
			const char *at;
			snprintf(col, sizeof(col), "%s%s,", i ? "," : "", want[i]);
			at = strstr(i ? prev : header, col);
			CHECK(at != NULL && (i == 0 ? at == header : at >= prev));
			prev = at + 1;
		}
	}
	CHECK_EQ_INT(csv_rows(c), 6);
	/* Every row has as many fields as the header. */
	{
		int cols = count(header, ",") + 1;
		for (const char *line = nl + 1; *line; ) {
			const char *e = strchr(line, '\n');
			int n = 1;
			CHECK(e != NULL);
			for (const char *p = line; p < e; p++)
				n += *p == ',';
			CHECK_EQ_INT(n, cols);
			line = e + 1;
		}
	}
	CHECK(strstr(c, "\nacme,2026-11-24T19:00:00Z,101,102,103,") != NULL);
	CHECK(strstr(c, "\nacme,2026-11-24T20:00:00Z,201,202,203,") != NULL);
	/* Same values in both formats: acme H2's rate_limited refusals. */
	CHECK(strstr(j, "\"samples_refused_rate_limited\":211") != NULL);
	CHECK(strstr(c, ",211,") != NULL);
	free(j);
	free(c);
}

/* A version 1 record (248 bytes, no requests_refused) of tenant "old" at
 * H1: reported with zeros in the new columns, and added to as version 2
 * without losing what it held. */
static void test_v1_record(void)
{
	uint8_t v1[USAGE_REC_V1_SIZE];
	struct usage_rec rec, got;
	struct usage_round round = {0};
	struct usage_rec *d;
	struct store_txn *txn;
	const void *val;
	size_t len;
	char *j;

	memset(&rec, 0, sizeof(rec));
	rec.version = 1;
	rec.requests = 7;
	rec.samples = 70;
	rec.samples_refused[REFUSE_BAD_REQUEST] = 5;
	rec.samples_dropped[DROP_PURGED] = 3;
	memcpy(v1, &rec, sizeof(v1));
	CHECK_EQ_INT(usage_rec_read(v1, sizeof(v1) - 8, &got), ERR_CORRUPT);
	CHECK_EQ_INT(usage_rec_read(v1, sizeof(v1), &got), 0);
	CHECK_EQ_INT(got.samples_dropped[DROP_PURGED], 3);
	CHECK_EQ_INT(got.requests_refused[REFUSE_BAD_REQUEST], 0);
	CHECK_EQ_INT(store_txn_begin(st, &txn), 0);
	CHECK_EQ_INT(store_usage_put(txn, 0, "old", 3, H1, v1, sizeof(v1)), 0);
	CHECK_EQ_INT(store_txn_commit(txn), 0);
	j = report("old", 0, 0, 0);
	CHECK(j != NULL);
	CHECK_EQ_INT(json_rows(j), 1);
	CHECK(strstr(j, "\"requests\":7,") != NULL);
	CHECK(strstr(j, "\"samples_refused_bad_request\":5,") != NULL);
	CHECK(strstr(j, "\"samples_dropped_purged\":3,") != NULL);
	CHECK(strstr(j, "\"requests_refused_bad_request\":0,") != NULL);
	free(j);
	/* The writer adds a refused request to the old record. */
	CHECK_EQ_INT(store_txn_begin(st, &txn), 0);
	d = usage_round_get(&round, "old", 3, H1);
	CHECK(d != NULL);
	d->requests_refused[REFUSE_BAD_REQUEST] = 1;
	d->samples_refused[REFUSE_BAD_REQUEST] = 2;
	CHECK_EQ_INT(usage_round_flush(&round, txn), 0);
	usage_round_free(&round);
	CHECK_EQ_INT(store_usage_get(txn, 0, "old", 3, H1, &val, &len), 1);
	CHECK_EQ_INT(len, sizeof(struct usage_rec));
	CHECK_EQ_INT(usage_rec_read(val, len, &got), 0);
	CHECK_EQ_INT(got.version, USAGE_FORMAT);
	CHECK_EQ_INT(got.requests, 7);
	CHECK_EQ_INT(got.samples, 70);
	CHECK_EQ_INT(got.samples_dropped[DROP_PURGED], 3);
	CHECK_EQ_INT(got.samples_refused[REFUSE_BAD_REQUEST], 7);
	CHECK_EQ_INT(got.requests_refused[REFUSE_BAD_REQUEST], 1);
	CHECK_EQ_INT(store_txn_commit(txn), 0);
}

/* A version 2 record (376 bytes, no samples_deduplicated) of tenant
 * "old2": read with a zero there, and added to as version 3 with the
 * deduplicated samples of an HA replica, keeping what it held. */
static void test_v2_record(void)
{
	uint8_t v2[USAGE_REC_V2_SIZE];
	struct usage_rec rec, got;
	struct usage_round round = {0};
	struct store_txn *txn;
	const void *val;
	size_t len;
	char *j;

	memset(&rec, 0, sizeof(rec));
	rec.version = 2;
	rec.samples = 70;
	rec.requests_refused[REFUSE_BAD_REQUEST] = 4;
	rec.samples_deduplicated = 99;   /* beyond a version 2 record */
	memcpy(v2, &rec, sizeof(v2));
	CHECK_EQ_INT(usage_rec_read(v2, sizeof(v2), &got), 0);
	CHECK_EQ_INT(got.requests_refused[REFUSE_BAD_REQUEST], 4);
	CHECK_EQ_INT(got.samples_deduplicated, 0);
	CHECK_EQ_INT(store_txn_begin(st, &txn), 0);
	CHECK_EQ_INT(store_usage_put(txn, 0, "old2", 4, H1, v2, sizeof(v2)), 0);
	CHECK_EQ_INT(usage_count_deduplicated(&round, "old2", 4, H1 * 1000, 30),
		     0);
	CHECK_EQ_INT(usage_round_flush(&round, txn), 0);
	usage_round_free(&round);
	CHECK_EQ_INT(store_usage_get(txn, 0, "old2", 4, H1, &val, &len), 1);
	CHECK_EQ_INT(len, sizeof(struct usage_rec));
	CHECK_EQ_INT(usage_rec_read(val, len, &got), 0);
	CHECK_EQ_INT(got.version, USAGE_FORMAT);
	CHECK_EQ_INT(got.samples, 70);
	CHECK_EQ_INT(got.requests_refused[REFUSE_BAD_REQUEST], 4);
	CHECK_EQ_INT(got.samples_deduplicated, 30);
	CHECK_EQ_INT(store_txn_commit(txn), 0);
	j = report("old2", 0, 0, 0);
	CHECK(j != NULL);
	CHECK(strstr(j, "\"samples_deduplicated\":30") != NULL);
	CHECK(strstr(j, "\"samples\":70,") != NULL);
	free(j);
}

/* A version 3 record (384 bytes, no samples_dropped_by_rule) of tenant
 * "old3": read with a zero there, and added to as version 4 with samples
 * relabel rules dropped, keeping what it held. */
static void test_v3_record(void)
{
	uint8_t v3[USAGE_REC_V3_SIZE];
	struct usage_rec rec, got, add;
	struct usage_round round = {0};
	struct store_txn *txn;
	const void *val;
	size_t len;
	char *j;

	memset(&rec, 0, sizeof(rec));
	rec.version = 3;
	rec.samples = 50;
	rec.samples_deduplicated = 6;
	rec.samples_dropped_by_rule = 99;   /* beyond a version 3 record */
	memcpy(v3, &rec, sizeof(v3));
	CHECK_EQ_INT(usage_rec_read(v3, sizeof(v3), &got), 0);
	CHECK_EQ_INT(got.samples_deduplicated, 6);
	CHECK_EQ_INT(got.samples_dropped_by_rule, 0);
	CHECK_EQ_INT(store_txn_begin(st, &txn), 0);
	CHECK_EQ_INT(store_usage_put(txn, 0, "old3", 4, H1, v3, sizeof(v3)), 0);
	memset(&add, 0, sizeof(add));
	add.requests = 1;
	add.samples = 5;
	add.samples_dropped_by_rule = 12;
	CHECK_EQ_INT(usage_count_stored(&round, txn, "old3", 4, H1 * 1000, &add,
					NULL, 0), 0);
	CHECK_EQ_INT(usage_round_flush(&round, txn), 0);
	usage_round_free(&round);
	CHECK_EQ_INT(store_usage_get(txn, 0, "old3", 4, H1, &val, &len), 1);
	CHECK_EQ_INT(len, sizeof(struct usage_rec));
	CHECK_EQ_INT(usage_rec_read(val, len, &got), 0);
	CHECK_EQ_INT(got.version, USAGE_FORMAT);
	CHECK_EQ_INT(got.samples, 55);
	CHECK_EQ_INT(got.samples_deduplicated, 6);
	CHECK_EQ_INT(got.samples_dropped_by_rule, 12);
	CHECK_EQ_INT(store_txn_commit(txn), 0);
	j = report("old3", 0, 0, 0);
	CHECK(j != NULL);
	CHECK(strstr(j, "\"samples_dropped_by_rule\":12") != NULL);
	free(j);
}

/* requests_refused columns: after every older column, in both formats. */
static void test_requests_refused_columns(void)
{
	char *j = report("acme", H2, 0, 0), *c = report("acme", H2, 0, 1);
	const char *last_old, *first_new;

	CHECK(j != NULL && c != NULL);
	CHECK(strstr(j, "\"requests_refused_tenant_buffer_full\":214") != NULL);
	CHECK(strstr(c, ",214") != NULL);
	last_old = strstr(c, "samples_dropped_purged");
	first_new = strstr(c, "requests_refused_bad_request");
	CHECK(last_old != NULL && first_new != NULL && first_new > last_old);
	{
		char last[64];
		/* version 3's and 4's one column each come after them */
		snprintf(last, sizeof(last), "requests_refused_%s,"
			 "samples_deduplicated,samples_dropped_by_rule\n",
			 refuse_reason_name((enum refuse_reason)(REFUSE_NREASONS - 1)));
		CHECK(strstr(c, last) != NULL);
	}
	free(j);
	free(c);
}

/* --- pages ----------------------------------------------------------------- */

/* Collects the keys a page walk hands over. */
struct seen {
	char keys[1024];
	int n;
};

static int seen_row(void *arg, const char *tenant, size_t tlen, uint64_t h,
		    const void *val, size_t len)
{
	struct seen *s = arg;
	size_t o = strlen(s->keys);

	(void)val;
	(void)len;
	snprintf(s->keys + o, sizeof(s->keys) - o, "%.*s@%" PRIu64 " ",
		 (int)tlen, tenant, (uint64_t)((h - H1) / 3600));
	s->n++;
	return 0;
}

/* store_usage_page: pages of max records, each resuming after the last
 * key, see every record once, in key order; 1 while more may follow. */
static void test_store_page(void)
{
	struct store_pos pos = {0};
	struct seen s = {{0}, 0};
	int rc, pages = 0;

	do {
		rc = store_usage_page(st, NULL, 0, 0, &pos, 4, seen_row, &s);
		pages++;
	} while (rc == 1 && pages < 10);
	CHECK_EQ_INT(rc, 0);
	CHECK_EQ_INT(pages, 2);
	CHECK(strcmp(s.keys, "acm@2 acme@0 acme@1 acme2@0 globex@0 globex@2 ") == 0);
	/* One at a time, one tenant: never past its records. */
	memset(&pos, 0, sizeof(pos));
	memset(&s, 0, sizeof(s));
	CHECK_EQ_INT(store_usage_page(st, "acme", 4, 0, &pos, 1, seen_row, &s), 1);
	CHECK_EQ_INT(store_usage_page(st, "acme", 4, 0, &pos, 1, seen_row, &s), 1);
	CHECK_EQ_INT(store_usage_page(st, "acme", 4, 0, &pos, 1, seen_row, &s), 0);
	CHECK(strcmp(s.keys, "acme@0 acme@1 ") == 0);
	/* A tenant and an hour: from that hour; a position before them
	 * starts there too. */
	memset(&s, 0, sizeof(s));
	memset(&pos, 0, sizeof(pos));
	memcpy(pos.tenant, "acm", 3);
	pos.tlen = 3;
	pos.hour = H3;
	pos.started = 1;
	CHECK_EQ_INT(store_usage_page(st, "globex", 6, H2, &pos, 10, seen_row, &s), 0);
	CHECK(strcmp(s.keys, "globex@2 ") == 0);
	/* max 0: only whether the store can be read. */
	CHECK_EQ_INT(store_usage_page(st, NULL, 0, 0, &pos, 0, seen_row, &s), 1);
	CHECK_EQ_INT(s.n, 1);
}

/* One page of a report (NUL-terminated, malloc'd) and its next cursor. */
static char *report_page(const char *tenant, uint64_t from, uint64_t limit,
			 const char *after, int csv, char *next, size_t nextlen)
{
	struct usage_filter f = {tenant, from, 0, limit, after};
	struct usage_report *r;
	struct buf out;
	char *s = NULL;
	int rc;

	next[0] = '\0';
	if (usage_report_open(&r, st, &f, csv) != 0)
		return NULL;
	buf_init(&out, 1u << 24);
	while ((rc = usage_report_next(r, &out)) == 1)
		;
	if (rc == 0 && usage_report_next_cursor(r, next, nextlen) >= 0 &&
	    buf_append(&out, "", 1) == 0)
		s = strdup((const char *)out.p);
	usage_report_free(r);
	buf_free(&out);
	return s;
}

/* limit and after: pages of at most limit rows whose rows, joined, are
 * the unpaged report's; the cursor names the last row; the last page has
 * none. CSV pages are the same rows under the same header. */
static void test_report_pages(void)
{
	char *all = report(NULL, 0, 0, 0), *allc = report(NULL, 0, 0, 1);
	char next[128], after[128], joined[1 << 16], joinedc[1 << 16], *p;
	size_t hdr;
	int pages = 0;

	CHECK(all != NULL && allc != NULL);
	snprintf(joined, sizeof(joined), "{\"usage\":[");
	after[0] = '\0';
	do {
		p = report_page(NULL, 0, 4, after[0] ? after : NULL, 0, next,
				sizeof(next));
		CHECK(p != NULL);
		CHECK(strncmp(p, "{\"usage\":[{", 11) == 0);
		CHECK_EQ_INT(json_rows(p), pages == 0 ? 4 : 2);
		if (pages == 0) {
			char want[160];
			snprintf(want, sizeof(want), "],\"next\":\"acme2:%llu\"}\n",
				 (unsigned long long)H1);
			CHECK(strstr(p, want) != NULL);
			CHECK_STR(next, "acme2:1795546800");
		} else {
			CHECK_STR(next, "");
			CHECK(strstr(p, "]}\n") != NULL && strstr(p, "next") == NULL);
		}
		/* Rows only, joined with commas. */
		*strstr(p, "]") = '\0';
		snprintf(joined + strlen(joined), sizeof(joined) - strlen(joined),
			 "%s%s", pages ? "," : "", p + 10);
		free(p);
		snprintf(after, sizeof(after), "%s", next);
		pages++;
	} while (after[0] != '\0' && pages < 10);
	CHECK_EQ_INT(pages, 2);
	strcat(joined, "]}\n");
	CHECK(strcmp(joined, all) == 0);
	/* CSV: pages of one row, the cursor outside the body. */
	hdr = (size_t)(strchr(allc, '\n') - allc + 1);
	memcpy(joinedc, allc, hdr);
	joinedc[hdr] = '\0';
	after[0] = '\0';
	pages = 0;
	do {
		p = report_page(NULL, 0, 1, after[0] ? after : NULL, 1, next,
				sizeof(next));
		CHECK(p != NULL);
		CHECK(strncmp(p, allc, hdr) == 0);
		CHECK_EQ_INT(csv_rows(p), 1);
		strcat(joinedc, p + hdr);
		free(p);
		snprintf(after, sizeof(after), "%s", next);
		pages++;
	} while (after[0] != '\0' && pages < 10);
	CHECK_EQ_INT(pages, 6);
	CHECK(strcmp(joinedc, allc) == 0);
	free(all);
	free(allc);
}

/* Filters and pages together; bad cursors. */
static void test_report_pages_filtered(void)
{
	char next[128], after[128], *p;
	struct store_pos pos;
	struct usage_report *r;
	struct usage_filter bad = {NULL, 0, 0, 1, "no-hour"};

	/* from H2, a row at a time: acm H3, acme H2, globex H3. */
	p = report_page(NULL, H2, 1, NULL, 0, next, sizeof(next));
	CHECK(p != NULL && json_rows(p) == 1 && strstr(p, "\"tenant\":\"acm\"") != NULL);
	free(p);
	CHECK_STR(next, "acm:1795554000");
	snprintf(after, sizeof(after), "%s", next);
	p = report_page(NULL, H2, 1, after, 0, next, sizeof(next));
	CHECK(p != NULL && json_rows(p) == 1 &&
	      strstr(p, "\"tenant\":\"acme\",\"hour\":\"2026-11-24T20:00:00Z\"") != NULL);
	free(p);
	CHECK_STR(next, "acme:1795550400");
	snprintf(after, sizeof(after), "%s", next);
	p = report_page(NULL, H2, 1, after, 0, next, sizeof(next));
	CHECK(p != NULL && json_rows(p) == 1 && strstr(p, "\"tenant\":\"globex\"") != NULL);
	free(p);
	/* The last matching row: no next, though records follow. */
	CHECK_STR(next, "");
	/* A tenant's pages; a cursor of another tenant starts at its first. */
	p = report_page("globex", 0, 5, "acme:1", 0, next, sizeof(next));
	CHECK(p != NULL && json_rows(p) == 2);
	free(p);
	CHECK_STR(next, "");
	/* Past the end: no rows. */
	p = report_page(NULL, 0, 3, "zzz:0", 0, next, sizeof(next));
	CHECK_STR(p, "{\"usage\":[]}\n");
	free(p);
	/* Cursors. */
	CHECK_EQ_INT(usage_cursor_parse("acme:1795546800", &pos), 0);
	CHECK_EQ_INT(pos.tlen, 4);
	CHECK_EQ_INT(pos.hour, H1);
	CHECK_EQ_INT(usage_cursor_parse("acme", &pos), -1);
	CHECK_EQ_INT(usage_cursor_parse("acme:", &pos), -1);
	CHECK_EQ_INT(usage_cursor_parse("acme:12x", &pos), -1);
	CHECK_EQ_INT(usage_cursor_parse("acme:-1", &pos), -1);
	CHECK_EQ_INT(usage_report_open(&r, st, &bad, 0), ERR_FAIL);
}


/* store_usage_range: only the hours in [from, to), every tenant's, in key
 * order, the others skipped. */
static void test_store_range(void)
{
	struct seen s = {{0}, 0};

	CHECK_EQ_INT(store_usage_range(st, H2, H3, seen_row, &s), 0);
	CHECK(strcmp(s.keys, "acme@1 ") == 0);
	memset(&s, 0, sizeof(s));
	CHECK_EQ_INT(store_usage_range(st, 0, H2, seen_row, &s), 0);
	CHECK(strcmp(s.keys, "acme@0 acme2@0 globex@0 ") == 0);
	memset(&s, 0, sizeof(s));
	CHECK_EQ_INT(store_usage_range(st, H3, UINT64_MAX, seen_row, &s), 0);
	CHECK(strcmp(s.keys, "acm@2 globex@2 ") == 0);
	memset(&s, 0, sizeof(s));
	CHECK_EQ_INT(store_usage_range(st, 0, UINT64_MAX, seen_row, &s), 0);
	CHECK(strcmp(s.keys, "acm@2 acme@0 acme@1 acme2@0 globex@0 globex@2 ") == 0);
	memset(&s, 0, sizeof(s));
	CHECK_EQ_INT(store_usage_range(st, H3 + 3600, UINT64_MAX, seen_row, &s), 0);
	CHECK_EQ_INT(s.n, 0);
}

/* A request without a tenant leaves no usage record (usage.h): the
 * relay's own deliveries on the tenantless queue make no "" row. */
static void test_no_tenant_no_record(void)
{
	struct usage_round r = {0};
	struct usage_rec add = {0};
	struct store_txn *txn;
	const void *val;
	size_t len;
	uint64_t now = H1 * 1000 + 5;

	add.requests = 1;
	add.samples = 7;
	CHECK_EQ_INT(store_txn_begin(st, &txn), 0);
	CHECK_EQ_INT(usage_count_stored(&r, txn, "", 0, now, &add, NULL, 0), 0);
	CHECK_EQ_INT(usage_count_delivered(&r, "", 0, now, 7), 0);
	CHECK_EQ_INT(usage_count_refused(&r, "", 0, now, REFUSE_BAD_REQUEST, 3), 0);
	CHECK_EQ_INT(usage_count_delivered(&r, "x", 1, now, 7), 0);
	CHECK_EQ_INT(usage_round_flush(&r, txn), 0);
	CHECK_EQ_INT(store_usage_get(txn, 0, "", 0, H1, &val, &len), 0);
	CHECK_EQ_INT(store_usage_get(txn, 0, "x", 1, H1, &val, &len), 1);
	store_txn_abort(txn);
	usage_round_free(&r);
}

/* The usage series are a WriteRequest the relay's own scanner takes:
 * labels sorted and valid, one sample each, reasons only where counted. */
static void test_export_series(void)
{
	struct usage_rec sum = {0};
	struct wire_counts c = {0};
	struct wire_opts o = {0};
	struct buf out;
	uint64_t n = 0;
	char why[256];

	sum.samples = 1234;
	sum.requests_refused[REFUSE_RATE_LIMITED] = 2;
	sum.samples_refused[REFUSE_RATE_LIMITED] = 20;
	sum.samples_dropped[DROP_AGE] = 5;
	sum.samples_dropped_by_rule = 7;
	buf_init(&out, 1u << 20);
	CHECK_EQ_INT(usage_export_tenant(&out, "host-1", "acme", 4, &sum,
					 1796000000000, &n), 0);
	/* 10 columns, 2 refusal series, 2 drop series (age, rule). */
	CHECK_EQ_INT((int)n, 14);
	o.max_labels_per_series = 128;
	o.max_label_name_length = 256;
	o.max_label_value_length = 16384;
	CHECK_EQ_INT(wire_scan(out.p, out.len, &o, &c, NULL, why, sizeof(why)),
		     WIRE_OK);
	CHECK_EQ_INT((int)c.series, 14);
	CHECK_EQ_INT((int)c.samples, 14);
	CHECK(memmem(out.p, out.len, "relay_usage_samples_total", 25) != NULL);
	CHECK(memmem(out.p, out.len, "\x04rule", 5) != NULL);  /* reason="rule" */
	CHECK(memmem(out.p, out.len, "rate_limited", 12) != NULL);
	CHECK(memmem(out.p, out.len, "unauthorized", 12) == NULL);
	buf_free(&out);
}

int main(void)
{
	RUN(test_hll_code_range);
	RUN(test_hll_empty);
	RUN(test_hll_accuracy);
	RUN(test_hll_sequential);
	RUN(test_hll_merge);
	RUN(test_parse_time);
	if (setup_env() != 0) {
		printf("FAIL - setup_env: cannot create a test LMDB environment\n");
		teardown_env();
		return 1;
	}
	RUN(test_format_all_json);
	RUN(test_format_tenant_filter);
	RUN(test_format_time_filter);
	RUN(test_format_csv);
	RUN(test_store_page);
	RUN(test_store_range);
	RUN(test_report_pages);
	RUN(test_report_pages_filtered);
	RUN(test_v1_record);
	RUN(test_requests_refused_columns);
	RUN(test_v2_record);
	RUN(test_no_tenant_no_record);
	RUN(test_export_series);
	RUN(test_v3_record);
	teardown_env();
	return unit_done();
}
