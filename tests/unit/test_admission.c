/*
 * test_admission.c - the admission stages: each refusal reason with its
 * status, text and Retry-After, from the stage that decides it; samples
 * refused counted as far as the body was decoded; and each refusal counted
 * once: in /metrics' counters, the tenant's counters, and the tenant's
 * usage record (written by a real writer into a store of the test's own).
 *
 * Configurations are written to a file and read with config_load, as the
 * relay reads them.
 */
#include "admission.h"

/* CHECK_STR of a verdict's text: the message is cut, as unit.h cuts it. */
#pragma GCC diagnostic ignored "-Wformat-truncation"

#include <fcntl.h>
#include <lmdb.h>
#include <snappy-c.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "ingest.h"
#include "queue.h"
#include "store.h"
#include "tenant_stats.h"
#include "tmpstore.h"
#include "unit.h"
#include "usage.h"
#include "writer.h"

static char dir[64], conf_path[96], store_path[96];
static struct config cfg;
static struct queue q;
static struct admission adm;

static const char *conf_text =
	"[server]\n"
	"max_body_size = 2000\n"
	"max_inflight_bytes = 1MiB\n"
	"[limits]\n"
	"[storage]\n"
	"max_size = 1MiB\n"
	"when_full = reject\n"
	"[tenant acme]\n"
	"token = acme-secret\n"
	"max_buffer_bytes = 5000\n"
	"max_samples_per_second = 10\n"
	"[tenant slow]\n"
	"token = slow-secret\n"
	"max_buffer_bytes = 5000\n"
	"limit_status = 503\n"
	"[tenant pair]\n"
	"token = pair-secret\n"
	"max_samples_per_second = 10\n";

static int setup(void)
{
	char err[256];
	FILE *f;

	snprintf(dir, sizeof(dir), "/tmp/relay-test-admission-XXXXXX");
	if (mkdtemp(dir) == NULL)
		return -1;
	snprintf(conf_path, sizeof(conf_path), "%s/relay.conf", dir);
	snprintf(store_path, sizeof(store_path), "%s/buf", dir);
	if ((f = fopen(conf_path, "w")) == NULL)
		return -1;
	fprintf(f, "%s", conf_text);
	fprintf(f, "[storage]\npath = %s\n", store_path);
	fclose(f);
	if (config_load(&cfg, conf_path, err, sizeof(err)) < 0 ||
	    tenant_prepare(&cfg, err, sizeof(err)) < 0) {
		fprintf(stderr, "# config_load: %s\n", err);
		return -1;
	}
	queue_init(&q);
	admission_init(&adm, &q, NULL);
	return 0;
}

/* A request of tenant (its token), through the headers stage. */
static int req_headers(struct admission_req *r, const char *token,
		       const char *method, const char *ct)
{
	char auth[64];
	struct admission_headers h = {method, ct, NULL, NULL, NULL, NULL};

	memset(r, 0, sizeof(*r));
	r->cfg = &cfg;
	if (token != NULL) {
		snprintf(auth, sizeof(auth), "Bearer %s", token);
		h.authorization = auth;
	}
	return admission_headers(&adm, r, &h);
}

#define CHECK_VERDICT(r, reason_, status_, text_, retry_)                     \
	do {                                                                  \
		CHECK_EQ_INT((r)->v.refused, 1);                              \
		CHECK_EQ_INT((r)->v.reason, reason_);                         \
		CHECK_EQ_INT((r)->v.status, status_);                         \
		CHECK_STR((r)->v.text, text_);                                \
		CHECK_EQ_INT((r)->v.retry_after_s, retry_);                   \
	} while (0)

static void test_table(void)
{
	for (int i = 0; i < REFUSE_NREASONS; i++) {
		unsigned st = admission_status((enum refuse_reason)i, NULL);
		CHECK(st >= 400 && st < 600);
		CHECK(admission_text((enum refuse_reason)i) != NULL);
	}
	CHECK_EQ_INT(admission_status(REFUSE_BAD_REQUEST, NULL), 400);
	CHECK_EQ_INT(admission_status(REFUSE_UNAUTHORIZED, NULL), 401);
	CHECK_EQ_INT(admission_status(REFUSE_METHOD, NULL), 405);
	CHECK_EQ_INT(admission_status(REFUSE_TOO_LARGE, NULL), 413);
	CHECK_EQ_INT(admission_status(REFUSE_UNSUPPORTED, NULL), 415);
	CHECK_EQ_INT(admission_status(REFUSE_RATE_LIMITED, NULL), 429);
	CHECK_EQ_INT(admission_status(REFUSE_TENANT_FULL, NULL), 429);
	CHECK_EQ_INT(admission_status(REFUSE_BUFFER_FULL, NULL), 503);
	CHECK_EQ_INT(admission_status(REFUSE_OVERLOADED, NULL), 503);
	CHECK_EQ_INT(admission_status(REFUSE_STORAGE, NULL), 503);
	CHECK_EQ_INT(admission_status(REFUSE_SHUTTING_DOWN, NULL), 503);
	CHECK_EQ_INT(admission_status(REFUSE_RATE_LIMITED,
				      config_tenant_find(&cfg, "slow", 4)), 503);
}

static void test_headers(void)
{
	struct admission_req r;
	struct admission_headers h = {"POST", "application/x-protobuf", "gzip",
				      NULL, "Bearer acme-secret", NULL};

	CHECK_EQ_INT(req_headers(&r, "acme-secret", "GET", NULL), 1);
	CHECK_VERDICT(&r, REFUSE_METHOD, 405, "method not allowed; use POST", 0);
	CHECK_EQ_INT(req_headers(&r, "acme-secret", "POST", NULL), 1);
	CHECK_VERDICT(&r, REFUSE_UNSUPPORTED, 415,
		      "missing Content-Type; want application/x-protobuf", 0);
	CHECK_EQ_INT(req_headers(&r, "acme-secret", "POST", "application/json"), 1);
	CHECK_VERDICT(&r, REFUSE_UNSUPPORTED, 415, "unsupported Content-Type "
		      "application/json; want application/x-protobuf", 0);
	CHECK_EQ_INT(req_headers(&r, "acme-secret", "POST", "application/x-protobuf;"
				 "proto=io.prometheus.write.v2.Request"), 1);
	CHECK_EQ_INT(r.v.status, 415);
	memset(&r, 0, sizeof(r));
	r.cfg = &cfg;
	CHECK_EQ_INT(admission_headers(&adm, &r, &h), 1);
	CHECK_VERDICT(&r, REFUSE_UNSUPPORTED, 415,
		      "unsupported Content-Encoding gzip; want snappy", 0);
	h.content_encoding = "snappy";
	h.content_length = "2001";
	memset(&r, 0, sizeof(r));
	r.cfg = &cfg;
	CHECK_EQ_INT(admission_headers(&adm, &r, &h), 1);
	CHECK_VERDICT(&r, REFUSE_TOO_LARGE, 413, "body over the limit of 2000 bytes", 0);
	CHECK_EQ_INT(req_headers(&r, "stolen", "POST", "application/x-protobuf"), 1);
	CHECK_VERDICT(&r, REFUSE_UNAUTHORIZED, 401, "invalid token", 0);
	CHECK_EQ_INT(r.ident.idlen, 0);
	CHECK(strncmp(r.ident.claim, "token:", 6) == 0);
	CHECK_EQ_INT(req_headers(&r, NULL, "POST", "application/x-protobuf"), 1);
	CHECK_EQ_INT(r.v.reason, REFUSE_UNAUTHORIZED);
	CHECK_EQ_INT(req_headers(&r, "acme-secret", "POST",
				 "application/x-protobuf; proto=prometheus.WriteRequest"), 0);
	CHECK_EQ_INT(r.v.refused, 0);
	CHECK_STR(r.ident.id, "acme");
}

/* A snappy body of n bytes of raw (compressed into out). */
static size_t compress(const uint8_t *raw, size_t n, uint8_t *out, size_t cap)
{
	size_t len = cap;

	return snappy_compress((const char *)raw, n, (char *)out, &len) ==
	       SNAPPY_OK ? len : 0;
}

static void test_body(void)
{
	struct admission_req r;
	uint8_t raw[2000], body[2400];
	size_t len;

	memset(raw, 0, sizeof(raw));
	CHECK_EQ_INT(req_headers(&r, "acme-secret", "POST", "application/x-protobuf"), 0);
	CHECK_EQ_INT(admission_body(&adm, &r, NULL, 0, 1), 1);
	CHECK_VERDICT(&r, REFUSE_TOO_LARGE, 413, "body over the limit of 2000 bytes", 0);
	CHECK_EQ_INT(req_headers(&r, "acme-secret", "POST", "application/x-protobuf"), 0);
	CHECK_EQ_INT(admission_body(&adm, &r, (const uint8_t *)"\xff\xff\xff", 3, 0), 1);
	CHECK_VERDICT(&r, REFUSE_BAD_REQUEST, 400,
		      "corrupt snappy block: bad length preamble", 0);
	/* Decoded bytes in flight: over the limit while others are in. */
	len = compress(raw, sizeof(raw), body, sizeof(body));
	CHECK(len > 0);
	atomic_store(&metrics.inflight_bytes, (1u << 20) - 1000);
	CHECK_EQ_INT(req_headers(&r, "acme-secret", "POST", "application/x-protobuf"), 0);
	CHECK_EQ_INT(admission_body(&adm, &r, body, len, 0), 1);
	CHECK_VERDICT(&r, REFUSE_OVERLOADED, 503,
		      "too many bytes in flight; retry later", 5);
	CHECK_EQ_INT(atomic_load(&metrics.inflight_bytes), (1u << 20) - 1000);
	atomic_store(&metrics.inflight_bytes, 0);
	CHECK_EQ_INT(req_headers(&r, "acme-secret", "POST", "application/x-protobuf"), 0);
	CHECK_EQ_INT(admission_body(&adm, &r, body, len, 0), 0);
	CHECK_EQ_INT(atomic_load(&metrics.inflight_bytes), 2000);
	admission_release(&r);
	CHECK_EQ_INT(atomic_load(&metrics.inflight_bytes), 0);
	/* Shutting down. */
	admission_stop(&adm);
	CHECK_EQ_INT(req_headers(&r, "acme-secret", "POST", "application/x-protobuf"), 0);
	CHECK_EQ_INT(admission_body(&adm, &r, body, len, 0), 1);
	CHECK_VERDICT(&r, REFUSE_SHUTTING_DOWN, 503, "shutting down", 5);
	atomic_store(&adm.stopping, 0);
}

/* Appends a length-delimited field (tag byte, one-byte length). */
static size_t field(uint8_t *out, uint8_t tag, const void *p, size_t n)
{
	out[0] = tag;
	out[1] = (uint8_t)n;
	memcpy(out + 2, p, n);
	return n + 2;
}

/* A TimeSeries with one label name=value and nsamples samples. */
static size_t series(uint8_t *out, const char *name, const char *value,
		     int nsamples)
{
	uint8_t ts[256], lab[64], smp[16];
	size_t n = 0, l = 0;

	l += field(lab + l, 0x0a, name, strlen(name));
	l += field(lab + l, 0x12, value, strlen(value));
	n += field(ts + n, 0x0a, lab, l);
	for (int i = 0; i < nsamples; i++) {
		double v = i;
		smp[0] = 0x09;
		memcpy(smp + 1, &v, 8);
		smp[9] = 0x10;
		smp[10] = (uint8_t)(i + 1);
		n += field(ts + n, 0x12, smp, 11);
	}
	return field(out, 0x0a, ts, n);
}

/* Decoding stops at a bad series: the samples before it are counted. */
static void test_decoded_prefix(void)
{
	struct admission_req r;
	struct ingest_req ir;
	struct batch b;
	struct buf body;
	uint8_t raw[512], comp[600];
	char why[ADMISSION_TEXT_MAX];
	size_t n = 0, len;
	int status;

	n += series(raw + n, "__name__", "up", 3);
	n += series(raw + n, "__name__", "up2", 2);
	n += series(raw + n, "__name__", "bad name", 4); /* not a metric name */
	n += series(raw + n, "__name__", "up3", 5);
	len = compress(raw, n, comp, sizeof(comp));
	CHECK(len > 0);
	CHECK_EQ_INT(req_headers(&r, "acme-secret", "POST", "application/x-protobuf"), 0);
	CHECK_EQ_INT(admission_body(&adm, &r, comp, len, 0), 0);
	buf_init(&body, 1 << 20);
	CHECK_EQ_INT(buf_append(&body, comp, len), 0);
	memset(&ir, 0, sizeof(ir));
	ir.tenant = r.ident.id;
	ir.tlen = r.ident.idlen;
	ir.tenant_label = "tenant";
	status = ingest_body(&cfg, &ir, &body, &b, &r.counts, &r.decoded, why,
			     sizeof(why));
	admission_release(&r);
	buf_free(&body);
	CHECK_EQ_INT(status, 400);
	CHECK_EQ_INT(admission_decoded(&r, status, why), 1);
	CHECK_EQ_INT(r.v.reason, REFUSE_BAD_REQUEST);
	CHECK_EQ_INT(r.v.status, 400);
	CHECK_EQ_INT(r.counts.series, 2);
	CHECK_EQ_INT(r.counts.samples, 5);
	ingest_thread_cleanup();
}

static void test_tenant_limits(void)
{
	struct admission_req r;

	/* Larger than the whole buffer: 413, not 503 for ever. */
	CHECK_EQ_INT(req_headers(&r, "acme-secret", "POST", "application/x-protobuf"), 0);
	CHECK_EQ_INT(admission_tenant(&adm, &r, (1u << 20) + 1), 1);
	CHECK_VERDICT(&r, REFUSE_TOO_LARGE, 413, "request of 1048577 bytes larger "
		      "than the whole buffer ([storage] max_size 1048576 bytes)", 0);
	/* Buffer full (when_full = reject). */
	atomic_store(&metrics.storage_used_bytes, (1u << 20) - 100);
	CHECK_EQ_INT(req_headers(&r, "acme-secret", "POST", "application/x-protobuf"), 0);
	CHECK_EQ_INT(admission_tenant(&adm, &r, 200), 1);
	CHECK_VERDICT(&r, REFUSE_BUFFER_FULL, 503, "buffer full; retry later", 5);
	atomic_store(&metrics.storage_used_bytes, 0);
	/* The tenant's share: 429, or 503 as the tenant says. */
	queue_added(&q, "acme", 4, 1, 4900, 10, 1);
	queue_added(&q, "slow", 4, 1, 4900, 10, 1);
	CHECK_EQ_INT(req_headers(&r, "acme-secret", "POST", "application/x-protobuf"), 0);
	CHECK_EQ_INT(admission_tenant(&adm, &r, 200), 1);
	CHECK_VERDICT(&r, REFUSE_TENANT_FULL, 429,
		      "tenant's share of the buffer is full; retry later", 5);
	CHECK_EQ_INT(req_headers(&r, "slow-secret", "POST", "application/x-protobuf"), 0);
	CHECK_EQ_INT(admission_tenant(&adm, &r, 200), 1);
	CHECK_VERDICT(&r, REFUSE_TENANT_FULL, 503,
		      "tenant's share of the buffer is full; retry later", 5);
	queue_removed(&q, "acme", 4, 1, 4900, 10, 0, 0);
	/* The rate: a full bucket lets one large request through, then not. */
	CHECK_EQ_INT(req_headers(&r, "acme-secret", "POST", "application/x-protobuf"), 0);
	r.counts.samples = 20;
	CHECK_EQ_INT(admission_tenant(&adm, &r, 200), 0);
	CHECK_EQ_INT(admission_tenant(&adm, &r, 200), 1);
	CHECK_VERDICT(&r, REFUSE_RATE_LIMITED, 429,
		      "tenant over its rate of 10 samples/s; retry later", 5);
	/* What the writer refused at commit time, through the same table. */
	CHECK_EQ_INT(req_headers(&r, "acme-secret", "POST", "application/x-protobuf"), 0);
	CHECK_EQ_INT(admission_commit(&r, REFUSE_STORAGE), 1);
	CHECK_VERDICT(&r, REFUSE_STORAGE, 503, "storage error; retry later", 5);
	CHECK_EQ_INT(req_headers(&r, "slow-secret", "POST", "application/x-protobuf"), 0);
	CHECK_EQ_INT(admission_commit(&r, REFUSE_TENANT_FULL), 1);
	CHECK_VERDICT(&r, REFUSE_TENANT_FULL, 503,
		      "tenant's share of the buffer is full; retry later", 5);
	CHECK_EQ_INT(req_headers(&r, "acme-secret", "POST", "application/x-protobuf"), 0);
	CHECK_EQ_INT(admission_commit(&r, REFUSE_BUFFER_FULL), 1);
	CHECK_VERDICT(&r, REFUSE_BUFFER_FULL, 503, "buffer full; retry later", 5);
}

/* A request that stored nothing after all (the HA replica not elected, a
 * resend, a refusal at commit) gives its rate tokens back, once. */
static void test_rate_give_back(void)
{
	struct admission_req a, b;

	CHECK_EQ_INT(req_headers(&a, "pair-secret", "POST", "application/x-protobuf"), 0);
	a.counts.samples = 8;
	CHECK_EQ_INT(admission_tenant(&adm, &a, 200), 0);       /* 10 -> 2 */
	CHECK_EQ_INT(a.rate_taken, 8);
	CHECK_EQ_INT(req_headers(&b, "pair-secret", "POST", "application/x-protobuf"), 0);
	b.counts.samples = 8;
	CHECK_EQ_INT(admission_tenant(&adm, &b, 200), 0);       /* 2 -> -6 */
	/* without b's tokens back this one would wait for 0.6 s of rate */
	admission_rate_give_back(&adm, &b);                     /* -6 -> 2 */
	CHECK_EQ_INT(b.rate_taken, 0);
	CHECK_EQ_INT(req_headers(&a, "pair-secret", "POST", "application/x-protobuf"), 0);
	a.counts.samples = 1;
	CHECK_EQ_INT(admission_tenant(&adm, &a, 200), 0);
	/* a request that took nothing gives nothing */
	CHECK_EQ_INT(req_headers(&b, "slow-secret", "POST", "application/x-protobuf"), 0);
	admission_rate_give_back(&adm, &b);
	CHECK_EQ_INT(b.rate_taken, 0);
}

/* The usage record of tenant in the store at store_path, read with LMDB
 * directly (summed over hours). Returns 0 or -1. */
static int usage_of(const char *tenant, struct usage_rec *sum)
{
	MDB_env *env = NULL;
	MDB_txn *txn = NULL;
	MDB_cursor *cur = NULL;
	MDB_dbi dbi;
	MDB_val k, v;
	struct usage_rec rec;
	size_t tlen = strlen(tenant);
	int rc = -1;

	memset(sum, 0, sizeof(*sum));
	if (mdb_env_create(&env) != 0 || mdb_env_set_maxdbs(env, 16) != 0 ||
	    mdb_env_open(env, store_path, MDB_RDONLY | MDB_NOTLS, 0600) != 0 ||
	    mdb_txn_begin(env, NULL, MDB_RDONLY, &txn) != 0 ||
	    mdb_dbi_open(txn, "usage", 0, &dbi) != 0 ||
	    mdb_cursor_open(txn, dbi, &cur) != 0)
		goto out;
	for (int g = mdb_cursor_get(cur, &k, &v, MDB_FIRST); g == 0;
	     g = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		if (k.mv_size > tlen && memcmp(k.mv_data, tenant, tlen) == 0 &&
		    ((const char *)k.mv_data)[tlen] == '\0' &&
		    usage_rec_read(v.mv_data, v.mv_size, &rec) == 0)
			usage_add(sum, &rec);
	}
	rc = 0;
out:
	if (cur != NULL)
		mdb_cursor_close(cur);
	if (txn != NULL)
		mdb_txn_abort(txn);
	if (env != NULL)
		mdb_env_close(env);
	return rc;
}

/* One refusal, counted once everywhere; a second reason on its own. */
static void test_count_once(void)
{
	struct admission_req r;
	struct tenant_counters tc;
	struct usage_rec u;
	struct store *st;
	struct writer *w;
	char why[256];
	uint64_t refused0 = metric_get(&metrics.refused[REFUSE_BAD_REQUEST]);
	uint64_t samples0 = metric_get(&metrics.samples_refused[REFUSE_BAD_REQUEST]);
	uint64_t status0 = metric_get(&metrics.requests[400]);
	uint64_t s401 = metric_get(&metrics.requests[401]);

	st = store_open(store_path, cfg.max_size, why, sizeof(why));
	CHECK(st != NULL);
	w = writer_start(&cfg, st, &q);
	CHECK(w != NULL);
	adm.w = w;
	tenant_stats_reset();
	CHECK_EQ_INT(req_headers(&r, "acme-secret", "POST", "application/x-protobuf"), 0);
	r.counts.samples = 7;
	admission_refuse(&r, REFUSE_BAD_REQUEST, "series 2: bad");
	admission_count(&adm, &r);
	/* Refused before its tenant is known: in /metrics only. */
	CHECK_EQ_INT(req_headers(&r, "stolen", "POST", "application/x-protobuf"), 1);
	admission_count(&adm, &r);
	/* A refusal with no samples decoded is still a refused request. */
	CHECK_EQ_INT(req_headers(&r, "acme-secret", "POST", "application/x-protobuf"), 0);
	admission_refuse(&r, REFUSE_TOO_LARGE, NULL);
	admission_count(&adm, &r);
	writer_stop(w);
	adm.w = NULL;
	store_close(st);

	CHECK_EQ_INT(metric_get(&metrics.refused[REFUSE_BAD_REQUEST]) - refused0, 1);
	CHECK_EQ_INT(metric_get(&metrics.samples_refused[REFUSE_BAD_REQUEST]) -
		     samples0, 7);
	CHECK_EQ_INT(metric_get(&metrics.requests[400]) - status0, 1);
	CHECK_EQ_INT(metric_get(&metrics.requests[401]) - s401, 1);
	CHECK_EQ_INT(tenant_stats_get("acme", 4, &tc), 0);
	CHECK_EQ_INT(tc.refused[REFUSE_BAD_REQUEST], 1);
	CHECK_EQ_INT(tc.refused[REFUSE_TOO_LARGE], 1);
	CHECK_EQ_INT(tc.refused[REFUSE_UNAUTHORIZED], 0);
	CHECK_EQ_INT(tc.samples_refused, 7);
	CHECK_EQ_INT(usage_of("acme", &u), 0);
	CHECK_EQ_INT(u.requests_refused[REFUSE_BAD_REQUEST], 1);
	CHECK_EQ_INT(u.samples_refused[REFUSE_BAD_REQUEST], 7);
	CHECK_EQ_INT(u.requests_refused[REFUSE_TOO_LARGE], 1);
	CHECK_EQ_INT(u.samples_refused[REFUSE_TOO_LARGE], 0);
	CHECK_EQ_INT(u.requests, 0);
}

/* Lines of path that hold every one of the needles (up to three). */
static int lines_with(const char *path, const char *a, const char *b,
		      const char *c)
{
	char line[1024];
	FILE *f = fopen(path, "r");
	int n = 0;

	if (f == NULL)
		return -1;
	while (fgets(line, sizeof(line), f) != NULL) {
		if (strstr(line, a) && (!b || strstr(line, b)) &&
		    (!c || strstr(line, c)))
			n++;
	}
	fclose(f);
	return n;
}

/* Refusals of every status reach the log at the default level, one line
 * per (tenant, reason) with its count; a request with a wrong token is
 * logged with what it claimed. */
static void test_log(void)
{
	struct admission_req r;
	struct admission_headers h = {"POST", "application/x-protobuf", NULL, NULL,
				      "Basic c2xvdzp3cm9uZw==", NULL}; /* slow:wrong */
	char path[128];
	int saved, fd;

	snprintf(path, sizeof(path), "%s/log", dir);
	fflush(stderr);
	saved = dup(2);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	CHECK(saved >= 0 && fd >= 0);
	dup2(fd, 2);
	close(fd);
	for (int i = 0; i < 3; i++) {
		CHECK_EQ_INT(req_headers(&r, "acme-secret", "POST",
					 "application/x-protobuf"), 0);
		admission_refuse(&r, REFUSE_BAD_REQUEST, "series 1: bad");
		admission_count(&adm, &r);
	}
	CHECK_EQ_INT(req_headers(&r, "slow-secret", "POST",
				 "application/x-protobuf"), 0);
	admission_refuse(&r, REFUSE_BAD_REQUEST, "series 1: bad");
	admission_count(&adm, &r);
	CHECK_EQ_INT(req_headers(&r, "rotated-acme-token", "POST",
				 "application/x-protobuf"), 1);
	admission_count(&adm, &r);
	memset(&r, 0, sizeof(r));
	r.cfg = &cfg;
	CHECK_EQ_INT(admission_headers(&adm, &r, &h), 1);
	admission_count(&adm, &r);
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	/* acme's three: one line (the period has not passed; a later line
	 * would carry the count of the other two). */
	CHECK_EQ_INT(lines_with(path, "level=info msg=\"writes refused\"",
				"status=400 reason=bad_request tenant=\"acme\" count=1",
				"text=\"series 1: bad\""), 1);
	CHECK_EQ_INT(lines_with(path, "reason=bad_request", "tenant=\"acme\"", NULL), 1);
	CHECK_EQ_INT(lines_with(path, "status=400 reason=bad_request",
				"tenant=\"slow\" count=1", NULL), 1);
	/* printf %s rotated-acme-token | sha256sum: dd610877... */
	CHECK_EQ_INT(lines_with(path, "status=401 reason=unauthorized",
				"claim=\"token:dd610877\"", "text=\"invalid token\""), 1);
	CHECK_EQ_INT(lines_with(path, "status=401 reason=unauthorized",
				"claim=\"slow\"", "text=\"invalid credentials\""), 1);
}

int main(void)
{
	char cmd[128];

	if (setup() < 0) {
		printf("FAIL - setup\n");
		return 1;
	}
	RUN(test_table);
	RUN(test_headers);
	RUN(test_body);
	RUN(test_decoded_prefix);
	RUN(test_tenant_limits);
	RUN(test_rate_give_back);
	RUN(test_log);   /* first to log: the log's periods are the process's */
	RUN(test_count_once);
	admission_destroy(&adm);
	queue_destroy(&q);
	config_free(&cfg);
	tenant_stats_reset();
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	if (system(cmd) != 0)
		printf("# could not remove %s\n", dir);
	return unit_done();
}
