/*
 * test_wire.c - the Remote Write scanner held against protobuf-c, the
 * reference decoder generated from proto/: captured requests, rewritten
 * requests, hand-made malformed ones and random mutations.
 *
 * Fixtures are read from $RELAY_FIXTURES, or tests/fixtures when unset
 * (run from the top of the tree).
 */
#include "wire.h"

#include <dirent.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "config.h"
#include "relabel_cache.h"
#include "relabel_pass.h"
#include "remote.pb-c.h"
#include "testlib.h"
#include "unit.h"

#define OUT_MAX (64u << 20)
#define STALE_NAN 0x7ff0000000000002ull

struct fixture {
	char name[64];
	uint8_t *body; /* decoded WriteRequest */
	size_t len;
};

static struct fixture fixtures[32];
static size_t nfixtures;
static char why[256];

/* Hashes reported through on_series. */
static uint64_t hashes[4096];
static size_t nhashes;

static void on_series(void *arg, uint64_t hash)
{
	(void)arg;
	if (nhashes < sizeof(hashes) / sizeof(hashes[0]))
		hashes[nhashes] = hash;
	nhashes++;
}

static int fixture_cmp(const void *a, const void *b)
{
	return strcmp(((const struct fixture *)a)->name,
		      ((const struct fixture *)b)->name);
}

/* Loads and decodes every req*.bin of the fixture directory. */
static void load_fixtures(void)
{
	struct dirent *e;
	uint8_t *z;
	size_t zlen, n;
	DIR *d;

	if ((d = opendir(fixture_dir())) == NULL)
		return;
	while ((e = readdir(d)) != NULL && nfixtures < 32) {
		struct fixture *f = &fixtures[nfixtures];

		n = strlen(e->d_name);
		if (strncmp(e->d_name, "req", 3) != 0 || n < 5 || n > 60 ||
		    strcmp(e->d_name + n - 4, ".bin") != 0)
			continue;
		if ((z = fixture(e->d_name, &zlen)) == NULL)
			continue;
		if ((f->body = uncompress(z, zlen, &f->len)) != NULL) {
			memcpy(f->name, e->d_name, n + 1);
			nfixtures++;
		}
		free(z);
	}
	closedir(d);
	qsort(fixtures, nfixtures, sizeof(fixtures[0]), fixture_cmp);
}

static const struct fixture *fixture_find(const char *name)
{
	size_t i;

	for (i = 0; i < nfixtures; i++)
		if (strncmp(fixtures[i].name, name, strlen(name)) == 0)
			return &fixtures[i];
	return NULL;
}

static int scan(const uint8_t *in, size_t len, const struct wire_opts *o,
		struct wire_counts *c, struct buf *out)
{
	struct wire_counts tmp;

	memset(&tmp, 0, sizeof(tmp));
	return wire_scan(in, len, o, c != NULL ? c : &tmp, out, why,
			 sizeof(why));
}

static Prometheus__WriteRequest *unpack(const uint8_t *p, size_t len)
{
	return prometheus__write_request__unpack(NULL, len, p);
}

/* Checks that out (a rewritten request) is in with the tenant label set,
 * both through protobuf-c. Returns NULL or what differs. */
static const char *request_equal(const uint8_t *in, size_t inlen,
				 const uint8_t *out, size_t outlen,
				 const char *tenant, const char *value)
{
	Prometheus__WriteRequest *a = unpack(in, inlen);
	Prometheus__WriteRequest *b = unpack(out, outlen);
	const char *e = NULL;
	char tmp[512];
	size_t i;

	if (a == NULL || b == NULL)
		e = err("protobuf-c cannot unpack the %s",
			a == NULL ? "input" : "output");
	else if (a->n_timeseries != b->n_timeseries ||
		 a->n_metadata != b->n_metadata)
		e = err("series or metadata counts differ");
	for (i = 0; e == NULL && i < a->n_timeseries; i++)
		if ((e = series_equal(a->timeseries[i], b->timeseries[i],
				      tenant, value)) != NULL) {
			snprintf(tmp, sizeof(tmp), "%s", e);
			e = err("series %zu: %s", i, tmp);
		}
	for (i = 0; e == NULL && i < a->n_metadata; i++)
		if (!message_equal(a->metadata[i], b->metadata[i]))
			e = err("metadata %zu differs", i);
	if (a != NULL)
		prometheus__write_request__free_unpacked(a, NULL);
	if (b != NULL)
		prometheus__write_request__free_unpacked(b, NULL);
	return e;
}

/* Hand encoding, for what protobuf-c would not write. */

static void pb_tag(struct buf *b, uint32_t field, unsigned type)
{
	buf_put_varint(b, (uint64_t)field << 3 | type);
}

static void pb_varint(struct buf *b, uint32_t field, uint64_t v)
{
	pb_tag(b, field, 0);
	buf_put_varint(b, v);
}

static void pb_fixed64(struct buf *b, uint32_t field, uint64_t v)
{
	uint8_t le[8];
	int i;

	for (i = 0; i < 8; i++)
		le[i] = (uint8_t)(v >> (8 * i));
	pb_tag(b, field, 1);
	buf_append(b, le, 8);
}

static void pb_double(struct buf *b, uint32_t field, double d)
{
	pb_fixed64(b, field, double_bits(d));
}

static void pb_bytes(struct buf *b, uint32_t field, const void *p, size_t n)
{
	pb_tag(b, field, 2);
	buf_put_varint(b, n);
	buf_append(b, p, n);
}

static void pb_str(struct buf *b, uint32_t field, const char *s)
{
	pb_bytes(b, field, s, strlen(s));
}

/* Appends inner as field of b and empties inner. */
static void pb_msg(struct buf *b, uint32_t field, struct buf *inner)
{
	pb_bytes(b, field, inner->p, inner->len);
	buf_reset(inner);
}

static void pb_label(struct buf *b, uint32_t field, const char *name,
		     const char *value)
{
	struct buf t;

	buf_init(&t, OUT_MAX);
	pb_str(&t, 1, name);
	pb_str(&t, 2, value);
	pb_msg(b, field, &t);
	buf_free(&t);
}

static void pb_sample(struct buf *b, double v, int64_t ts)
{
	struct buf t;

	buf_init(&t, OUT_MAX);
	pb_double(&t, 1, v);
	pb_varint(&t, 2, (uint64_t)ts);
	pb_msg(b, 2, &t);
	buf_free(&t);
}

/* Appends a series with labels kv (name, value, ..., NULL) and a sample. */
static void pb_series(struct buf *req, const char *const *kv)
{
	struct buf s;

	buf_init(&s, OUT_MAX);
	for (; kv[0] != NULL; kv += 2)
		pb_label(&s, 1, kv[0], kv[1]);
	pb_sample(&s, 1.5, 1700000000000);
	pb_msg(req, 1, &s);
	buf_free(&s);
}

static uint64_t zigzag(int64_t v)
{
	return ((uint64_t)v << 1) ^ (uint64_t)(v >> 63);
}

/* Appends a native histogram; packed selects how repeated scalars go. */
static void pb_histogram(struct buf *series, int packed, int floats)
{
	static const int64_t deltas[] = { 1, -1, 3 };
	static const double counts[] = { 0.5, 2.25, -0.0 };
	struct buf h, t;
	size_t i;

	buf_init(&h, OUT_MAX);
	buf_init(&t, OUT_MAX);
	if (floats) {
		pb_double(&h, 2, 17.5);
		pb_double(&h, 7, 0.25);
	} else {
		pb_varint(&h, 1, 17);
		pb_varint(&h, 6, 2);
	}
	pb_double(&h, 3, 42.125);
	pb_varint(&h, 4, zigzag(-3));
	pb_double(&h, 5, 1e-128);
	pb_varint(&t, 1, zigzag(-2));
	pb_varint(&t, 2, 3);
	pb_msg(&h, 8, &t);
	pb_varint(&t, 1, zigzag(4));
	pb_varint(&t, 2, 1);
	pb_msg(&h, 11, &t);
	for (i = 0; i < 3; i++) {
		if (packed) {
			buf_put_varint(&t, zigzag(deltas[i]));
		} else {
			pb_varint(&h, 9, zigzag(deltas[i]));
			pb_varint(&h, 12, zigzag(-deltas[i]));
		}
	}
	if (packed) {
		pb_msg(&h, 9, &t);
		for (i = 0; i < 3; i++)
			buf_put_varint(&t, zigzag(-deltas[i]));
		pb_msg(&h, 12, &t);
		for (i = 0; i < 3; i++)
			buf_append(&t, &counts[i], 8);
		pb_msg(&h, 10, &t);
		for (i = 0; i < 3; i++)
			buf_append(&t, &counts[i], 8);
		pb_msg(&h, 13, &t);
	} else {
		for (i = 0; i < 3; i++) {
			pb_double(&h, 10, counts[i]);
			pb_double(&h, 13, counts[i]);
		}
	}
	pb_varint(&h, 14, 2);
	pb_varint(&h, 15, 1700000000123);
	pb_msg(series, 4, &h);
	buf_free(&h);
	buf_free(&t);
}

static void pb_exemplar(struct buf *series, const char *name,
			const char *value)
{
	struct buf e;

	buf_init(&e, OUT_MAX);
	pb_label(&e, 1, name, value);
	pb_double(&e, 2, 0.042);
	pb_varint(&e, 3, 1700000000001);
	pb_msg(series, 3, &e);
	buf_free(&e);
}

static void pb_metadata(struct buf *req, const char *family,
			const char *help)
{
	struct buf m;

	buf_init(&m, OUT_MAX);
	pb_varint(&m, 1, 1);
	pb_str(&m, 2, family);
	pb_str(&m, 4, help);
	pb_str(&m, 5, "seconds");
	pb_msg(req, 3, &m);
	buf_free(&m);
}

/* A small request with one of everything: two series (one with an
 * exemplar and native histograms), a metadata entry. */
static void small_request(struct buf *req)
{
	static const char *const a[] = { "__name__", "up", "instance",
					 "localhost:9090", "job", "prom",
					 NULL };
	struct buf s;

	buf_init(&s, OUT_MAX);
	pb_series(req, a);
	pb_label(&s, 1, "__name__", "rpc_seconds");
	pb_label(&s, 1, "job", "api");
	pb_sample(&s, 0.5, 1700000000000);
	pb_exemplar(&s, "trace_id", "abc123");
	pb_histogram(&s, 1, 0);
	pb_histogram(&s, 0, 1);
	pb_msg(req, 1, &s);
	pb_metadata(req, "up", "Whether the target is up.");
	buf_free(&s);
}

/* Every captured request scans clean and counts as protobuf-c does; the
 * copy without a tenant label is the input byte for byte. */
static void test_fixtures_match_reference(void)
{
	struct wire_counts c, ref;
	Prometheus__WriteRequest *r;
	struct wire_opts o;
	struct buf out;
	size_t i;

	CHECK(nfixtures >= 8);
	memset(&o, 0, sizeof(o));
	o.on_series = on_series;
	buf_init(&out, OUT_MAX);
	for (i = 0; i < nfixtures; i++) {
		const struct fixture *f = &fixtures[i];

		memset(&c, 0, sizeof(c));
		nhashes = 0;
		buf_reset(&out);
		CHECK_EQ_INT(scan(f->body, f->len, &o, &c, &out), WIRE_OK);
		CHECK((r = unpack(f->body, f->len)) != NULL);
		ref_counts(r, &ref);
		prometheus__write_request__free_unpacked(r, NULL);
		CHECK_NOERR(counts_check(&c, &ref));
		CHECK_EQ_INT(nhashes, c.series);
		CHECK_EQ_INT(out.len, f->len);
		CHECK(memcmp(out.p, f->body, f->len) == 0);
	}
	buf_free(&out);
	CHECK(fixture_find("req00014") != NULL);
}

/* With a tenant label every captured series gains tenant="acme" at its
 * sorted place and keeps everything else, checked through protobuf-c. */
static void test_fixtures_tenant_rewrite(void)
{
	struct wire_counts c;
	struct wire_opts o;
	struct buf out;
	size_t i;

	CHECK(nfixtures > 0);
	memset(&o, 0, sizeof(o));
	o.tenant_label = "tenant";
	o.tenant_value = "acme";
	buf_init(&out, OUT_MAX);
	for (i = 0; i < nfixtures; i++) {
		const struct fixture *f = &fixtures[i];

		memset(&c, 0, sizeof(c));
		buf_reset(&out);
		CHECK_EQ_INT(scan(f->body, f->len, &o, &c, &out), WIRE_OK);
		CHECK_NOERR(request_equal(f->body, f->len, out.p, out.len,
					  "tenant", "acme"));
		/* The rewritten request scans clean and is stable. */
		memset(&c, 0, sizeof(c));
		CHECK_EQ_INT(scan(out.p, out.len, NULL, &c, NULL), WIRE_OK);
	}
	buf_free(&out);
}

static size_t count_stale(const uint8_t *p, size_t len)
{
	Prometheus__WriteRequest *r = unpack(p, len);
	size_t i, j, n = 0;

	if (r == NULL)
		return 0;
	for (i = 0; i < r->n_timeseries; i++)
		for (j = 0; j < r->timeseries[i]->n_samples; j++)
			n += double_bits(r->timeseries[i]->samples[j]->value) ==
			     STALE_NAN;
	prometheus__write_request__free_unpacked(r, NULL);
	return n;
}

/* The stale-marker NaNs of req00044 leave with their exact bits. */
static void test_stale_markers_survive(void)
{
	const struct fixture *f = fixture_find("req00044");
	struct wire_opts o;
	struct buf out;
	size_t n;

	CHECK(f != NULL);
	memset(&o, 0, sizeof(o));
	o.tenant_label = "tenant";
	o.tenant_value = "acme";
	buf_init(&out, OUT_MAX);
	CHECK_EQ_INT(scan(f->body, f->len, &o, NULL, &out), WIRE_OK);
	n = count_stale(f->body, f->len);
	CHECK_EQ_INT(n, 253);
	CHECK_EQ_INT(count_stale(out.p, out.len), n);
	buf_free(&out);
}

/* Packs a request with protobuf-c: series[i] is a NULL-ended name, value
 * list. Returns a malloc'd buffer (caller frees). */
static uint8_t *pack_request(const char *const series[][12], size_t nseries,
			     size_t *len)
{
	Prometheus__WriteRequest req = PROMETHEUS__WRITE_REQUEST__INIT;
	Prometheus__TimeSeries ts[8], *tsp[8];
	Prometheus__Label lab[8][6], *labp[8][6];
	Prometheus__Sample smp[8], *smpp[8];
	size_t i, j;
	uint8_t *p;

	for (i = 0; i < nseries && i < 8; i++) {
		prometheus__time_series__init(&ts[i]);
		prometheus__sample__init(&smp[i]);
		smp[i].value = (double)i + 0.25;
		smp[i].timestamp = 1700000000000 + (int64_t)i;
		smpp[i] = &smp[i];
		for (j = 0; j < 6 && series[i][2 * j] != NULL; j++) {
			prometheus__label__init(&lab[i][j]);
			lab[i][j].name = (char *)series[i][2 * j];
			lab[i][j].value = (char *)series[i][2 * j + 1];
			labp[i][j] = &lab[i][j];
		}
		ts[i].n_labels = j;
		ts[i].labels = labp[i];
		ts[i].n_samples = 1;
		ts[i].samples = &smpp[i];
		tsp[i] = &ts[i];
	}
	req.n_timeseries = i;
	req.timeseries = tsp;
	*len = prometheus__write_request__get_packed_size(&req);
	p = malloc(*len + 1);
	if (p != NULL)
		prometheus__write_request__pack(&req, p);
	return p;
}

/* A sender's own tenant label is kept as exported_tenant (as Prometheus
 * keeps a scraped label that conflicts with a target label) and the tenant
 * label set, wherever the two sort; a missing one is inserted first, in the
 * middle or last. */
static void test_tenant_replaced_and_inserted(void)
{
	static const char *const series[][12] = {
		{ "__name__", "up", "instance", "a:1", "tenant", "evil",
		  "zone", "x", NULL },
		{ "__name__", "up", "tenant", "evil", NULL },
		{ "tenant", "acme", NULL },
		{ "tenant", "evil", "zz", "1", NULL },
		{ "zz", "1", NULL },
		{ "a", "1", NULL },
		{ "a", "1", "zz", "2", NULL },
	};
	size_t n = sizeof(series) / sizeof(series[0]), len, i;
	Prometheus__WriteRequest *r;
	struct wire_counts c;
	struct wire_opts o;
	struct buf out;
	uint8_t *in;

	CHECK((in = pack_request(series, n, &len)) != NULL);
	memset(&o, 0, sizeof(o));
	o.tenant_label = "tenant";
	o.tenant_value = "acme";
	buf_init(&out, OUT_MAX);
	memset(&c, 0, sizeof(c));
	CHECK_EQ_INT(scan(in, len, &o, &c, &out), WIRE_OK);
	CHECK_EQ_INT(c.series, n);
	CHECK_NOERR(request_equal(in, len, out.p, out.len, "tenant", "acme"));
	CHECK((r = unpack(out.p, out.len)) != NULL);
	CHECK_EQ_INT(r->timeseries[0]->n_labels, 5);
	CHECK_STR(r->timeseries[0]->labels[1]->name, "exported_tenant");
	CHECK_STR(r->timeseries[0]->labels[1]->value, "evil");
	CHECK_STR(r->timeseries[0]->labels[3]->name, "tenant");
	CHECK_STR(r->timeseries[0]->labels[3]->value, "acme");
	CHECK_EQ_INT(r->timeseries[2]->n_labels, 2);
	CHECK_STR(r->timeseries[2]->labels[0]->name, "exported_tenant");
	CHECK_STR(r->timeseries[2]->labels[0]->value, "acme");
	CHECK_EQ_INT(r->timeseries[4]->n_labels, 2);
	CHECK_STR(r->timeseries[4]->labels[0]->name, "tenant");
	CHECK_STR(r->timeseries[5]->labels[1]->name, "tenant");
	CHECK_STR(r->timeseries[6]->labels[1]->name, "tenant");
	for (i = 0; i < n; i++)
		for (size_t j = 0; j < r->timeseries[i]->n_labels; j++)
			CHECK(strcmp(r->timeseries[i]->labels[j]->name, "tenant") != 0 ||
			      strcmp(r->timeseries[i]->labels[j]->value, "acme") == 0);
	prometheus__write_request__free_unpacked(r, NULL);
	buf_free(&out);
	free(in);
}

/* exported_tenant taken already: exported_exported_tenant, and so on;
 * the labels stay sorted, other tenant labels (tenant_x) are left alone. */
static void test_exported_tenant_taken(void)
{
	static const char *const series[][12] = {
		{ "exported_tenant", "b", "tenant", "c", NULL },
		{ "exported_exported_tenant", "a", "exported_tenant", "b",
		  "tenant", "c", "tenant_x", "d", NULL },
		{ "exported_tenant", "b", "job", "j", NULL },
	};
	size_t n = sizeof(series) / sizeof(series[0]), len;
	Prometheus__WriteRequest *r;
	struct wire_opts o;
	struct buf out;
	uint8_t *in;

	CHECK((in = pack_request(series, n, &len)) != NULL);
	memset(&o, 0, sizeof(o));
	o.tenant_label = "tenant";
	o.tenant_value = "acme";
	buf_init(&out, OUT_MAX);
	CHECK_EQ_INT(scan(in, len, &o, NULL, &out), WIRE_OK);
	CHECK_NOERR(request_equal(in, len, out.p, out.len, "tenant", "acme"));
	CHECK((r = unpack(out.p, out.len)) != NULL);
	CHECK_EQ_INT(r->timeseries[0]->n_labels, 3);
	CHECK_STR(r->timeseries[0]->labels[0]->name, "exported_exported_tenant");
	CHECK_STR(r->timeseries[0]->labels[0]->value, "c");
	CHECK_STR(r->timeseries[0]->labels[1]->value, "b");
	CHECK_STR(r->timeseries[0]->labels[2]->value, "acme");
	CHECK_EQ_INT(r->timeseries[1]->n_labels, 5);
	CHECK_STR(r->timeseries[1]->labels[0]->name,
		  "exported_exported_exported_tenant");
	CHECK_STR(r->timeseries[1]->labels[0]->value, "c");
	CHECK_STR(r->timeseries[1]->labels[4]->name, "tenant_x");
	/* No tenant label sent: exported_tenant is the sender's, untouched. */
	CHECK_EQ_INT(r->timeseries[2]->n_labels, 3);
	CHECK_STR(r->timeseries[2]->labels[0]->value, "b");
	prometheus__write_request__free_unpacked(r, NULL);
	buf_free(&out);
	free(in);
}

/* A [tenancy] label name too long to be kept with the exported_ prefix
 * (the name buffer is 256 bytes): the series is refused, nothing is
 * written past the buffer. */
static void test_exported_tenant_long(void)
{
	static char name[300];
	const char *kv[] = { name, "evil", NULL };
	struct wire_opts o;
	struct buf req, out;

	memset(name, 'a', sizeof(name) - 1);
	memset(&o, 0, sizeof(o));
	o.tenant_label = name;
	o.tenant_value = "acme";
	buf_init(&req, OUT_MAX);
	buf_init(&out, OUT_MAX);
	pb_series(&req, kv);
	CHECK_EQ_INT(scan(req.p, req.len, &o, NULL, &out), WIRE_BAD);
	CHECK(strstr(why, "exported_ name too long") != NULL);
	buf_free(&req);
	buf_free(&out);
}

/* HA's replica label is removed from every series that has it, with the
 * tenant label set or not, wherever the two sort; other labels and the
 * samples stay as sent. */
static void test_drop_label(void)
{
	static const char *const series[][12] = {
		{ "__name__", "up", "__replica__", "a", "cluster", "eu-1",
		  "tenant", "evil", NULL },
		{ "__replica__", "a", "cluster", "eu-1", "zz", "1", NULL },
		{ "__name__", "up", "cluster", "eu-1", NULL },
	};
	size_t n = sizeof(series) / sizeof(series[0]), len;
	Prometheus__WriteRequest *r;
	struct wire_opts o;
	struct buf out;
	uint8_t *in;

	CHECK((in = pack_request(series, n, &len)) != NULL);
	for (int tenant = 0; tenant < 2; tenant++) {
		memset(&o, 0, sizeof(o));
		o.tenant_label = tenant ? "tenant" : NULL;
		o.tenant_value = "acme";
		o.drop_label = "__replica__";
		buf_init(&out, OUT_MAX);
		CHECK_EQ_INT(scan(in, len, &o, NULL, &out), WIRE_OK);
		CHECK((r = unpack(out.p, out.len)) != NULL);
		CHECK_EQ_INT(r->timeseries[0]->n_labels, 3 + tenant);
		CHECK_STR(r->timeseries[0]->labels[0]->name, "__name__");
		CHECK_STR(r->timeseries[0]->labels[1]->name, "cluster");
		CHECK_STR(r->timeseries[0]->labels[2]->value, "evil");
		CHECK_STR(r->timeseries[0]->labels[2 + tenant]->value,
			  tenant ? "acme" : "evil");
		CHECK_EQ_INT(r->timeseries[1]->n_labels, 2 + tenant);
		CHECK_STR(r->timeseries[1]->labels[0]->name, "cluster");
		CHECK_STR(r->timeseries[1]->labels[1 + tenant]->name, "zz");
		CHECK_EQ_INT(r->timeseries[2]->n_labels, 2 + tenant);
		CHECK_EQ_INT(r->timeseries[1]->n_samples, 1);
		CHECK(r->timeseries[1]->samples[0]->value == 1.25);
		prometheus__write_request__free_unpacked(r, NULL);
		buf_free(&out);
	}
	free(in);
}

/* The relabel hook: a dropped series is not written and is counted apart;
 * a rewritten one keeps its samples and gets the tenant label and the HA
 * label removal after the rules; a series a rule makes invalid (a bad
 * label name, its __name__ removed, too many labels) is left out alone,
 * counted, the first one's reason kept in why. */
static void test_relabel_hook(void)
{
	static const char *const series[][12] = {
		{ "__name__", "go_gc", "instance", "a", NULL },
		{ "__name__", "up", "__replica__", "r1", "instance", "a:9100",
		  "tmp_x", "1", NULL },
		{ "__name__", "up", "bad_9", "x", NULL },
		{ "__name__", "gone", "instance", "c", NULL },
		{ "__name__", "many", "instance", "b", "wide", "1", "zz", "1",
		  NULL },
	};
	static const char rules[] =
		"- source_labels: [__name__]\n  regex: 'go_.*'\n  action: drop\n"
		"- regex: 'tmp_.*'\n  action: labeldrop\n"
		"- source_labels: [instance]\n  regex: '(.*):9100'\n"
		"  target_label: host\n";
	static const char bad[] =
		"- regex: 'bad_(.*)'\n  action: labelmap\n"
		"- source_labels: [__name__]\n  regex: 'gone'\n"
		"  target_label: __name__\n  replacement: ''\n"
		"- source_labels: [wide]\n  regex: '1'\n"
		"  target_label: extra\n  replacement: x\n";
	struct relabel_pass rp = {.rules = {0}};
	struct wire_counts c;
	Prometheus__WriteRequest *r;
	Prometheus__TimeSeries *t;
	struct wire_opts o;
	struct buf out;
	char err[256];
	size_t len;
	uint8_t *in;

	rp.rules[0] = relabel_load_buf("r.yml", rules, sizeof(rules) - 1, err,
				       sizeof(err));
	CHECK(rp.rules[0] != NULL);
	CHECK((in = pack_request(series, 2, &len)) != NULL);
	memset(&o, 0, sizeof(o));
	o.tenant_label = "tenant";
	o.tenant_value = "acme";
	o.drop_label = "__replica__";
	o.relabel = relabel_pass_series;
	o.relabel_arg = &rp;
	memset(&c, 0, sizeof(c));
	buf_init(&out, OUT_MAX);
	CHECK_EQ_INT(scan(in, len, &o, &c, &out), WIRE_OK);
	CHECK_EQ_INT(c.series, 1);
	CHECK_EQ_INT(c.samples, 1);
	CHECK_EQ_INT(c.series_dropped, 1);
	CHECK_EQ_INT(c.samples_dropped, 1);
	CHECK((r = unpack(out.p, out.len)) != NULL);
	CHECK_EQ_INT(r->n_timeseries, 1);
	t = r->timeseries[0];
	CHECK_EQ_INT(t->n_labels, 4);
	CHECK_STR(t->labels[0]->value, "up");
	CHECK_STR(t->labels[1]->name, "host");
	CHECK_STR(t->labels[1]->value, "a");
	CHECK_STR(t->labels[2]->value, "a:9100");
	CHECK_STR(t->labels[3]->value, "acme");
	CHECK_EQ_INT(t->n_samples, 1);
	CHECK(t->samples[0]->value == 1.25);
	prometheus__write_request__free_unpacked(r, NULL);
	buf_free(&out);
	free(in);
	relabel_free((struct relabel_rules *)rp.rules[0]);

	rp.rules[0] = relabel_load_buf("b.yml", bad, sizeof(bad) - 1, err,
				       sizeof(err));
	CHECK(rp.rules[0] != NULL);
	CHECK((in = pack_request(series, 5, &len)) != NULL);
	buf_init(&out, OUT_MAX);
	memset(&c, 0, sizeof(c));
	o.max_labels_per_series = 4;
	CHECK_EQ_INT(scan(in, len, &o, &c, &out), WIRE_OK);
	CHECK_STR(why, "relabeled series 2: invalid label name \"9\"");
	CHECK_EQ_INT(c.series, 2);
	CHECK_EQ_INT(c.samples, 2);
	CHECK_EQ_INT(c.invalid_series, 3);
	CHECK_EQ_INT(c.invalid_samples, 3);
	CHECK_EQ_INT(c.series_dropped, 0);
	CHECK((r = unpack(out.p, out.len)) != NULL);
	CHECK_EQ_INT(r->n_timeseries, 2);
	CHECK_STR(r->timeseries[0]->labels[0]->value, "go_gc");
	CHECK_STR(r->timeseries[1]->labels[0]->value, "up");
	prometheus__write_request__free_unpacked(r, NULL);
	buf_free(&out);
	free(in);
	/* Each kind's reason, when it comes first. */
	CHECK((in = pack_request(series + 3, 1, &len)) != NULL);
	CHECK_EQ_INT(scan(in, len, &o, NULL, NULL), WIRE_OK);
	CHECK_STR(why, "relabeled series 0: empty metric name: the rules "
		  "removed __name__");
	free(in);
	CHECK((in = pack_request(series + 4, 1, &len)) != NULL);
	CHECK_EQ_INT(scan(in, len, &o, NULL, NULL), WIRE_OK);
	CHECK_STR(why, "relabeled series 0: more than 4 labels after "
		  "relabeling");
	free(in);
	relabel_free((struct relabel_rules *)rp.rules[0]);
	relabel_pass_thread_cleanup();
}

/* Scans in[0..len) with o into out, a fresh buffer (the caller frees
 * it), the counts in *c. Returns scan's result. */
static int scan_copy(const uint8_t *in, size_t len, const struct wire_opts *o,
		     struct wire_counts *c, struct buf *out)
{
	buf_init(out, OUT_MAX);
	memset(c, 0, sizeof(*c));
	return scan(in, len, o, c, out);
}

/* Labels a rule makes over 127 bytes take lengths of two bytes in a
 * cache entry: a hit gives the same bytes as the rules. */
static void test_relabel_cache_long_label(void)
{
	char rules[512];
	const char *const series[][12] = {
		{ "__name__", "up", "instance", "a:9100", NULL },
	};
	struct relabel_cache_stats st;
	struct wire_counts c0, c1, c2;
	struct relabel_pass rp;
	struct config cfg;
	struct wire_opts o;
	struct buf b0, b1, b2;
	char err[256];
	size_t len;
	uint8_t *in;

	/* a value of 150 bytes, and one joined from it and the instance */
	snprintf(rules, sizeof(rules),
		 "- target_label: note\n  replacement: '%0150d'\n"
		 "- source_labels: [note, instance]\n  target_label: path\n", 7);
	memset(&cfg, 0, sizeof(cfg));
	cfg.relabel_rules = relabel_load_buf("l.yml", rules, strlen(rules),
					     err, sizeof(err));
	CHECK(cfg.relabel_rules != NULL);
	cfg.relabel_gen = 2001;
	cfg.relabel_cache_size = 1 << 20;
	cfg.threads = 1;
	CHECK((in = pack_request(series, 1, &len)) != NULL);
	CHECK_EQ_INT(relabel_pass_init(&rp, &cfg, NULL), 1);
	CHECK(rp.cache != NULL);
	memset(&o, 0, sizeof(o));
	o.relabel = relabel_pass_series;
	o.relabel_arg = &rp;
	CHECK_EQ_INT(scan_copy(in, len, &o, &c0, &b0), WIRE_OK); /* no cache */
	o.relabel_cache = rp.cache;
	o.relabel_scope = rp.scope;
	CHECK_EQ_INT(scan_copy(in, len, &o, &c1, &b1), WIRE_OK); /* miss */
	CHECK_EQ_INT(scan_copy(in, len, &o, &c2, &b2), WIRE_OK); /* hit */
	relabel_cache_stats(rp.cache, &st);
	CHECK_EQ_INT(st.hits, 1);
	CHECK_EQ_INT(c0.series, 1);
	CHECK(b1.len == b0.len && memcmp(b1.p, b0.p, b0.len) == 0);
	CHECK(b2.len == b0.len && memcmp(b2.p, b0.p, b0.len) == 0);
	CHECK(memcmp(&c2, &c0, sizeof(c0)) == 0);
	buf_free(&b0);
	buf_free(&b1);
	buf_free(&b2);
	free(in);
	relabel_free(cfg.relabel_rules);
	relabel_pass_thread_cleanup();
}

/* The relabel cache gives what the rules give: the same bytes out and
 * the same counts, from its first scan (misses) and its second (hits);
 * a series out of order or left invalid is not looked up or not kept;
 * another scope, or another load of the configuration, does not see
 * what the cache holds. */
static void test_relabel_cache(void)
{
	static const char *const series[][12] = {
		{ "__name__", "go_gc", "instance", "a", NULL },
		{ "__name__", "up", "instance", "a:9100", "tmp_x", "1", NULL },
		{ "instance", "z:9100", "__name__", "up", NULL },  /* unsorted */
		{ "__name__", "up", "bad_9", "x", NULL },         /* invalid */
		{ "__name__", "node_load1", "instance", "b:9100", "job", "node",
		  NULL },
	};
	static const char rules[] =
		"- source_labels: [__name__]\n  regex: 'go_.*'\n  action: drop\n"
		"- regex: 'tmp_.*'\n  action: labeldrop\n"
		"- regex: 'bad_(.*)'\n  action: labelmap\n"
		"- source_labels: [instance]\n  regex: '(.*):9100'\n"
		"  target_label: host\n"
		"- target_label: cluster\n  replacement: eu-1\n";
	static const char stage[] =
		"- target_label: stage\n  replacement: two\n";
	struct relabel_cache_stats st;
	struct wire_counts c0, c1, c2;
	struct relabel_pass rp;
	struct config cfg;
	struct wire_opts o;
	struct buf b0, b1, b2;
	char err[256];
	size_t len;
	uint8_t *in;

	memset(&cfg, 0, sizeof(cfg));
	cfg.relabel_rules = relabel_load_buf("r.yml", rules, sizeof(rules) - 1,
					     err, sizeof(err));
	CHECK(cfg.relabel_rules != NULL);
	cfg.relabel_gen = 1001;
	cfg.relabel_cache_size = 1 << 20;
	cfg.threads = 1;
	CHECK((in = pack_request(series, 5, &len)) != NULL);
	CHECK_EQ_INT(relabel_pass_init(&rp, &cfg, NULL), 1);
	CHECK(rp.cache != NULL);
	memset(&o, 0, sizeof(o));
	o.tenant_label = "tenant";
	o.tenant_value = "acme";
	o.relabel = relabel_pass_series;
	o.relabel_arg = &rp;
	CHECK_EQ_INT(scan_copy(in, len, &o, &c0, &b0), WIRE_OK); /* no cache */
	CHECK_STR(why, "relabeled series 2: invalid label name \"9\"");
	o.relabel_cache = rp.cache;
	o.relabel_scope = rp.scope;
	CHECK_EQ_INT(scan_copy(in, len, &o, &c1, &b1), WIRE_OK); /* misses */
	CHECK_EQ_INT(scan_copy(in, len, &o, &c2, &b2), WIRE_OK); /* hits */
	CHECK_STR(why, "relabeled series 2: invalid label name \"9\"");
	CHECK_EQ_INT(b1.len, b0.len);
	CHECK_EQ_INT(b2.len, b0.len);
	CHECK(memcmp(b1.p, b0.p, b0.len) == 0);
	CHECK(memcmp(b2.p, b0.p, b0.len) == 0);
	CHECK(memcmp(&c1, &c0, sizeof(c0)) == 0);
	CHECK(memcmp(&c2, &c0, sizeof(c0)) == 0);
	CHECK_EQ_INT(c0.series, 3);
	CHECK_EQ_INT(c0.series_dropped, 1);
	CHECK_EQ_INT(c0.invalid_series, 1);
	relabel_cache_stats(rp.cache, &st);
	/* 4 series looked up per scan (not the unsorted one); the invalid
	 * one is not kept, so it misses both times */
	CHECK_EQ_INT(st.misses, 5);
	CHECK_EQ_INT(st.hits, 3);
	CHECK_EQ_INT(st.entries, 3);
	buf_free(&b1);
	buf_free(&b2);
	/* another scope: looked up afresh */
	o.relabel_scope = &cfg;
	CHECK_EQ_INT(scan_copy(in, len, &o, &c1, &b1), WIRE_OK);
	CHECK(b1.len == b0.len && memcmp(b1.p, b0.p, b0.len) == 0);
	relabel_cache_stats(rp.cache, &st);
	CHECK_EQ_INT(st.misses, 9);
	buf_free(&b1);
	/* another load of the configuration (a reload), with a rule that
	 * drops nothing: the thread's cache starts afresh */
	relabel_free(cfg.relabel_rules);
	cfg.relabel_rules = relabel_load_buf("s.yml", stage, sizeof(stage) - 1,
					     err, sizeof(err));
	CHECK(cfg.relabel_rules != NULL);
	cfg.relabel_gen = 1002;
	CHECK_EQ_INT(relabel_pass_init(&rp, &cfg, NULL), 1);
	o.relabel_cache = rp.cache;
	o.relabel_scope = rp.scope;
	CHECK_EQ_INT(scan_copy(in, len, &o, &c1, &b1), WIRE_OK);
	CHECK_EQ_INT(c1.series, 5);
	CHECK_EQ_INT(c1.series_dropped, 0);
	relabel_cache_stats(rp.cache, &st);
	CHECK_EQ_INT(st.hits, 0);
	buf_free(&b1);
	buf_free(&b0);
	free(in);
	relabel_free(cfg.relabel_rules);
	relabel_pass_thread_cleanup();
	test_relabel_cache_long_label();
}

/* Native histograms (packed and unpacked repeated scalars, integer and
 * float counts) and exemplars scan clean and survive the rewrite. */
static void test_histograms_and_exemplars(void)
{
	Prometheus__WriteRequest *r;
	struct wire_counts c, ref;
	struct wire_opts o;
	struct buf req, out;
	Prometheus__Histogram *h0, *h1;

	buf_init(&req, OUT_MAX);
	buf_init(&out, OUT_MAX);
	small_request(&req);
	CHECK((r = unpack(req.p, req.len)) != NULL);
	ref_counts(r, &ref);
	CHECK_EQ_INT(ref.histograms, 2);
	CHECK_EQ_INT(ref.exemplars, 1);
	/* Packed and unpacked decode to the same values. */
	h0 = r->timeseries[1]->histograms[0];
	h1 = r->timeseries[1]->histograms[1];
	CHECK_EQ_INT(h0->n_negative_deltas, 3);
	CHECK_EQ_INT(h1->n_negative_deltas, 3);
	CHECK(memcmp(h0->negative_deltas, h1->negative_deltas,
		     3 * sizeof(int64_t)) == 0);
	CHECK(memcmp(h0->positive_counts, h1->positive_counts,
		     3 * sizeof(double)) == 0);
	CHECK_EQ_INT(h1->count_case, PROMETHEUS__HISTOGRAM__COUNT_COUNT_FLOAT);
	prometheus__write_request__free_unpacked(r, NULL);

	memset(&o, 0, sizeof(o));
	o.tenant_label = "tenant";
	o.tenant_value = "acme";
	memset(&c, 0, sizeof(c));
	CHECK_EQ_INT(scan(req.p, req.len, &o, &c, &out), WIRE_OK);
	CHECK_NOERR(counts_check(&c, &ref));
	CHECK_NOERR(request_equal(req.p, req.len, out.p, out.len, "tenant",
				  "acme"));
	buf_free(&req);
	buf_free(&out);
}

/* Labels after other fields, unknown fields and non-canonical encodings:
 * the output puts the labels first in canonical form and copies the rest
 * in order. */
static void test_interleaved_and_unknown_fields(void)
{
	struct buf req, s, l, want, out;
	struct wire_opts o;
	struct wire_counts c;

	buf_init(&req, OUT_MAX);
	buf_init(&s, OUT_MAX);
	buf_init(&l, OUT_MAX);
	buf_init(&want, OUT_MAX);
	buf_init(&out, OUT_MAX);
	pb_varint(&req, 2, 7);          /* reserved field, copied */
	pb_label(&s, 1, "a", "1");
	pb_sample(&s, 2.0, 5);
	/* label b with an unknown field and a two-byte name length */
	buf_append(&l, "\x0a\x81\x00" "b\x12\x01" "2\x48\x05", 9);
	pb_msg(&s, 1, &l);
	pb_fixed64(&s, 9, 99);          /* unknown series field */
	pb_label(&s, 1, "c", "3");
	pb_msg(&req, 1, &s);
	pb_label(&s, 1, "only", "labels");
	pb_msg(&req, 1, &s);
	pb_str(&req, 7, "trailer");     /* unknown top-level field */

	pb_varint(&want, 2, 7);
	pb_label(&s, 1, "a", "1");
	pb_label(&s, 1, "b", "2");
	pb_label(&s, 1, "c", "3");
	pb_label(&s, 1, "tenant", "t1");
	pb_sample(&s, 2.0, 5);
	pb_fixed64(&s, 9, 99);
	pb_msg(&want, 1, &s);
	pb_label(&s, 1, "only", "labels");
	pb_label(&s, 1, "tenant", "t1");
	pb_msg(&want, 1, &s);
	pb_str(&want, 7, "trailer");

	memset(&o, 0, sizeof(o));
	o.tenant_label = "tenant";
	o.tenant_value = "t1";
	memset(&c, 0, sizeof(c));
	CHECK_EQ_INT(scan(req.p, req.len, &o, &c, &out), WIRE_OK);
	CHECK_EQ_INT(c.series, 2);
	CHECK_EQ_INT(c.samples, 1);
	CHECK_EQ_INT(out.len, want.len);
	CHECK(memcmp(out.p, want.p, want.len) == 0);
	CHECK_NOERR(request_equal(req.p, req.len, out.p, out.len, "tenant",
				  "t1"));
	buf_free(&req);
	buf_free(&s);
	buf_free(&l);
	buf_free(&want);
	buf_free(&out);
}

static uint64_t hash_of(const uint8_t *p, size_t len, const char *tenant,
			int rewrite)
{
	struct wire_opts o;
	struct buf out;

	memset(&o, 0, sizeof(o));
	o.tenant_label = tenant;
	o.tenant_value = "acme";
	o.on_series = on_series;
	buf_init(&out, OUT_MAX);
	nhashes = 0;
	hashes[0] = 0;
	if (scan(p, len, &o, NULL, rewrite ? &out : NULL) != WIRE_OK ||
	    nhashes != 1)
		hashes[0] = 0;
	buf_free(&out);
	return hashes[0];
}

static uint64_t hash_series(const char *const *kv, const char *tenant,
			    int rewrite)
{
	struct buf req;
	uint64_t h;

	buf_init(&req, OUT_MAX);
	pb_series(&req, kv);
	h = hash_of(req.p, req.len, tenant, rewrite);
	buf_free(&req);
	return h;
}

/* The series hash depends on the final label set only: not on the mode,
 * the encoding or where the labels sit, and it tells "ab","c" from
 * "a","bc". */
static void test_series_hash(void)
{
	static const char *const ab_c[] = { "ab", "c", NULL };
	static const char *const a_bc[] = { "a", "bc", NULL };
	static const char *const plain[] = { "job", "x", NULL };
	static const char *const forged[] = { "job", "x", "tenant", "evil",
					      NULL };
	static const char *const set[] = { "job", "x", "tenant", "acme",
					   NULL };
	static const char *const acme_kept[] = { "exported_tenant", "acme",
						 "job", "x", "tenant", "acme",
						 NULL };
	static const char *const forged_set[] = { "exported_tenant", "evil",
						  "job", "x", "tenant", "acme",
						  NULL };
	struct buf req, s;
	uint64_t h;

	h = hash_series(plain, NULL, 0);
	CHECK(h != 0);
	CHECK(h == hash_series(plain, NULL, 1));
	CHECK(h != hash_series(plain, "tenant", 0));
	CHECK(hash_series(ab_c, NULL, 0) != hash_series(a_bc, NULL, 0));
	h = hash_series(set, NULL, 0);
	CHECK(h == hash_series(plain, "tenant", 0));
	CHECK(h == hash_series(plain, "tenant", 1));
	h = hash_series(forged_set, NULL, 0);
	CHECK(h == hash_series(forged, "tenant", 1));
	CHECK(h == hash_series(forged, "tenant", 0));

	/* The same labels after the sample, one with a padded length. */
	buf_init(&req, OUT_MAX);
	buf_init(&s, OUT_MAX);
	pb_sample(&s, 1.0, 1);
	buf_append(&s, "\x0a\x09\x0a\x03job\x12\x81\x00x", 11);
	pb_label(&s, 1, "tenant", "acme");
	pb_msg(&req, 1, &s);
	CHECK(hash_series(set, NULL, 0) == hash_of(req.p, req.len, NULL, 0));
	CHECK(hash_series(acme_kept, NULL, 0) ==
	      hash_of(req.p, req.len, "tenant", 0));
	buf_free(&req);
	buf_free(&s);
}

/* Series with many labels (past the stack scratch) in both modes. */
static void test_many_labels(void)
{
	struct wire_opts o;
	struct wire_counts c;
	Prometheus__WriteRequest *r;
	struct buf req, s, out;
	char name[16], value[32];
	uint64_t h;
	size_t i;

	buf_init(&req, OUT_MAX);
	buf_init(&s, OUT_MAX);
	buf_init(&out, OUT_MAX);
	for (i = 0; i < 3000; i++) {
		snprintf(name, sizeof(name), "l%04zu", i);
		snprintf(value, sizeof(value), "value-%zu", i);
		pb_label(&s, 1, name, value);
	}
	pb_sample(&s, 3.0, 3);
	pb_msg(&req, 1, &s);
	memset(&o, 0, sizeof(o));
	o.tenant_label = "tenant";
	o.tenant_value = "acme";
	o.on_series = on_series;
	nhashes = 0;
	CHECK_EQ_INT(scan(req.p, req.len, &o, NULL, NULL), WIRE_OK);
	h = hashes[0];
	nhashes = 0;
	memset(&c, 0, sizeof(c));
	CHECK_EQ_INT(scan(req.p, req.len, &o, &c, &out), WIRE_OK);
	CHECK_EQ_INT(nhashes, 1);
	CHECK(hashes[0] == h);
	CHECK((r = unpack(out.p, out.len)) != NULL);
	CHECK_EQ_INT(r->timeseries[0]->n_labels, 3001);
	CHECK_STR(r->timeseries[0]->labels[3000]->name, "tenant");
	prometheus__write_request__free_unpacked(r, NULL);
	CHECK_NOERR(request_equal(req.p, req.len, out.p, out.len, "tenant",
				  "acme"));
	o.max_labels_per_series = 2999;
	CHECK_EQ_INT(scan(req.p, req.len, &o, NULL, NULL), WIRE_BAD);
	CHECK_STR(why, "series 0: more than 2999 labels");
	wire_scratch_free();
	CHECK_EQ_INT(scan(req.p, req.len, NULL, NULL, &out), WIRE_OK);
	wire_scratch_free();
	buf_free(&req);
	buf_free(&s);
	buf_free(&out);
}

struct label_case {
	const char *name;
	const char *kv[10];
	int rc;
	const char *why; /* exact reason, or NULL when accepted */
};

/* Label rules, one series at a time (the bad series is the second). */
static void test_label_rules(void)
{
	static const struct label_case cases[] = {
		{ "ok", { "__name__", "up", "job", "x", NULL }, WIRE_OK,
		  NULL },
		{ "metric with colons",
		  { "__name__", "job:up:rate5m", NULL }, WIRE_OK, NULL },
		{ "utf8 values",
		  { "a", "caf\xc3\xa9", "b", "\xe2\x82\xac",
		    "c", "\xf0\x9f\x98\x80", NULL }, WIRE_OK, NULL },
		{ "unsorted", { "job", "x", "__name__", "up", NULL },
		  WIRE_OK, NULL },
		{ "duplicate apart, unsorted",
		  { "b", "1", "a", "2", "b", "3", NULL }, WIRE_BAD,
		  "series 1: duplicate label name \"b\"" },
		{ "unsorted, then empty name", { "b", "1", "a", "2", "", "3", NULL },
		  WIRE_BAD, "series 1: empty label name" },
		{ "unsorted, then bad name", { "b", "1", "a", "2", "c-d", "3", NULL },
		  WIRE_BAD, "series 1: invalid label name \"c-d\"" },
		{ "unsorted, bad value", { "b", "1", "a", "\xff", NULL },
		  WIRE_BAD, "series 1: invalid UTF-8 in value of \"a\"" },
		{ "unsorted, empty value", { "b", "1", "a", "", NULL },
		  WIRE_BAD, "series 1: empty label value for \"a\"" },
		{ "unsorted, bad metric name", { "b", "1", "__name__", "1x", NULL },
		  WIRE_BAD, "series 1: invalid metric name \"1x\"" },
		{ "duplicate", { "a", "1", "a", "2", NULL }, WIRE_BAD,
		  "series 1: duplicate label name \"a\"" },
		{ "empty name", { "", "x", NULL }, WIRE_BAD,
		  "series 1: empty label name" },
		{ "empty value", { "job", "", NULL }, WIRE_BAD,
		  "series 1: empty label value for \"job\"" },
		{ "bad name char", { "jo-b", "x", NULL }, WIRE_BAD,
		  "series 1: invalid label name \"jo-b\"" },
		{ "colon in label name", { "a:b", "x", NULL }, WIRE_BAD,
		  "series 1: invalid label name \"a:b\"" },
		{ "name starts with digit", { "1job", "x", NULL }, WIRE_BAD,
		  "series 1: invalid label name \"1job\"" },
		{ "bad metric name", { "__name__", "1up", NULL }, WIRE_BAD,
		  "series 1: invalid metric name \"1up\"" },
		{ "metric name with dash", { "__name__", "a-b", NULL },
		  WIRE_BAD, "series 1: invalid metric name \"a-b\"" },
		{ "invalid utf8", { "job", "\xff", NULL }, WIRE_BAD,
		  "series 1: invalid UTF-8 in value of \"job\"" },
		{ "overlong utf8", { "job", "\xc0\xaf", NULL }, WIRE_BAD,
		  "series 1: invalid UTF-8 in value of \"job\"" },
		{ "overlong 3-byte", { "job", "\xe0\x80\xaf", NULL },
		  WIRE_BAD, "series 1: invalid UTF-8 in value of \"job\"" },
		{ "surrogate", { "job", "\xed\xa0\x80", NULL }, WIRE_BAD,
		  "series 1: invalid UTF-8 in value of \"job\"" },
		{ "past U+10FFFF", { "job", "\xf4\x90\x80\x80", NULL },
		  WIRE_BAD, "series 1: invalid UTF-8 in value of \"job\"" },
		{ "cut sequence", { "job", "abcdefgh\xe2\x82", NULL },
		  WIRE_BAD, "series 1: invalid UTF-8 in value of \"job\"" },
		{ "unprintable name", { "a\x01\x7f", "x", NULL }, WIRE_BAD,
		  "series 1: invalid label name \"a??\"" },
	};
	static const char *const good[] = { "__name__", "ok", NULL };
	struct wire_counts c;
	struct buf req;
	size_t i;

	buf_init(&req, OUT_MAX);
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		buf_reset(&req);
		pb_series(&req, good);
		pb_series(&req, cases[i].kv);
		memset(&c, 0, sizeof(c));
		if (scan(req.p, req.len, NULL, &c, NULL) != cases[i].rc) {
			snprintf(unit_msg, sizeof(unit_msg), "%s: got %s",
				 cases[i].name, why);
			unit_cur_failed = 1;
			return;
		}
		if (cases[i].why != NULL && strcmp(why, cases[i].why) != 0) {
			snprintf(unit_msg, sizeof(unit_msg), "%s: why \"%s\"",
				 cases[i].name, why);
			unit_cur_failed = 1;
			return;
		}
		if (cases[i].rc == WIRE_OK)
			CHECK_EQ_INT(c.series, 2);
	}
	buf_free(&req);
}

/* The opts bounds, the output bound, and reasons cut to printable text. */
static void test_limits(void)
{
	static const char *const three[] = { "a", "1", "bb", "22", "ccc",
					     "333", NULL };
	struct wire_opts o;
	struct buf req, out;
	char longname[300];
	const char *kv[3];
	size_t i;

	buf_init(&req, OUT_MAX);
	pb_series(&req, three);
	memset(&o, 0, sizeof(o));
	o.max_labels_per_series = 4;
	o.max_label_name_length = 3;
	o.max_label_value_length = 3;
	CHECK_EQ_INT(scan(req.p, req.len, &o, NULL, NULL), WIRE_OK);
	o.max_labels_per_series = 2;
	CHECK_EQ_INT(scan(req.p, req.len, &o, NULL, NULL), WIRE_BAD);
	CHECK_STR(why, "series 0: more than 2 labels");
	o.max_labels_per_series = 0;
	o.max_label_name_length = 2;
	CHECK_EQ_INT(scan(req.p, req.len, &o, NULL, NULL), WIRE_BAD);
	CHECK_STR(why, "series 0: label name \"ccc\" longer than 2 bytes");
	o.max_label_name_length = 0;
	o.max_label_value_length = 2;
	CHECK_EQ_INT(scan(req.p, req.len, &o, NULL, NULL), WIRE_BAD);
	CHECK_STR(why,
		  "series 0: value of label \"ccc\" longer than 2 bytes");

	/* The output bound, with and without a rewrite. */
	buf_init(&out, req.len - 1);
	CHECK_EQ_INT(scan(req.p, req.len, NULL, NULL, &out), WIRE_TOO_LARGE);
	CHECK_STR(why, "decoded request over the size limit");
	buf_free(&out);
	buf_init(&out, req.len);
	CHECK_EQ_INT(scan(req.p, req.len, NULL, NULL, &out), WIRE_OK);
	buf_reset(&out);
	o.max_label_value_length = 0;
	o.tenant_label = "tenant";
	o.tenant_value = "acme";
	CHECK_EQ_INT(scan(req.p, req.len, &o, NULL, &out), WIRE_TOO_LARGE);
	CHECK_STR(why, "decoded request over the size limit");
	buf_free(&out);

	/* A long unprintable name is cut and made printable. */
	for (i = 0; i + 1 < sizeof(longname); i++)
		longname[i] = (char)(i % 2 ? 0x01 : 'a');
	longname[sizeof(longname) - 1] = '\0';
	kv[0] = longname;
	kv[1] = "x";
	kv[2] = NULL;
	buf_reset(&req);
	pb_series(&req, kv);
	CHECK_EQ_INT(scan(req.p, req.len, NULL, NULL, NULL), WIRE_BAD);
	CHECK(strlen(why) < 120);
	for (i = 0; why[i] != '\0'; i++)
		CHECK(why[i] >= 0x20 && why[i] < 0x7f);
	CHECK(strstr(why, "...\"") != NULL);
	buf_free(&req);
}

/* The reference rules, byte by byte. */
static int ref_name_ok(const uint8_t *p, size_t n, int metric)
{
	size_t i;

	for (i = 0; i < n; i++) {
		uint8_t c = p[i];
		int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			 c == '_' || (metric && c == ':') ||
			 (i > 0 && c >= '0' && c <= '9');

		if (!ok)
			return 0;
	}
	return n > 0;
}

/* Label and metric names of 1 to 20 bytes with every byte value at every
 * position agree with the rules applied byte by byte. */
static void test_name_characters(void)
{
	char name[24], metric[24];
	const char *kv[5];
	size_t len, pos;
	struct buf req;
	unsigned b;
	int rc;

	buf_init(&req, OUT_MAX);
	for (len = 1; len <= 20; len++) {
		for (pos = 0; pos < len; pos++) {
			for (b = 1; b < 256; b++) {
				memset(name, 'n', len);
				name[len] = '\0';
				name[pos] = (char)b;
				memcpy(metric, name, len + 1);
				/* as a label name */
				kv[0] = name;
				kv[1] = "v";
				kv[2] = NULL;
				buf_reset(&req);
				pb_series(&req, kv);
				rc = scan(req.p, req.len, NULL, NULL, NULL);
				if ((rc == WIRE_OK) !=
				    ref_name_ok((const uint8_t *)name, len, 0)) {
					snprintf(unit_msg, sizeof(unit_msg),
						 "label name len %zu byte 0x%02x at %zu: %d",
						 len, b, pos, rc);
					unit_cur_failed = 1;
					return;
				}
				/* as a metric name */
				kv[0] = "__name__";
				kv[1] = metric;
				buf_reset(&req);
				pb_series(&req, kv);
				rc = scan(req.p, req.len, NULL, NULL, NULL);
				if ((rc == WIRE_OK) !=
				    ref_name_ok((const uint8_t *)metric, len, 1)) {
					snprintf(unit_msg, sizeof(unit_msg),
						 "metric name len %zu byte 0x%02x at %zu: %d",
						 len, b, pos, rc);
					unit_cur_failed = 1;
					return;
				}
			}
		}
	}
	buf_free(&req);
}

/* Labels too long for one-byte lengths and a tenant label too long to be
 * kept encoded take the general path and come out the same. */
static void test_long_labels(void)
{
	char value[300], tenant[200];
	const char *kv[7];
	struct wire_opts o;
	struct buf req, out;
	uint64_t h;

	memset(value, 'v', sizeof(value) - 1);
	value[sizeof(value) - 1] = '\0';
	memset(tenant, 't', sizeof(tenant) - 1);
	tenant[sizeof(tenant) - 1] = '\0';
	kv[0] = "__name__";
	kv[1] = "up";
	kv[2] = "long";
	kv[3] = value;
	kv[4] = "zone";
	kv[5] = "a";
	kv[6] = NULL;
	buf_init(&req, OUT_MAX);
	buf_init(&out, OUT_MAX);
	pb_series(&req, kv);
	pb_series(&req, kv + 2);
	memset(&o, 0, sizeof(o));
	o.tenant_label = "tenant";
	o.tenant_value = tenant;
	o.on_series = on_series;
	nhashes = 0;
	CHECK_EQ_INT(scan(req.p, req.len, &o, NULL, &out), WIRE_OK);
	CHECK_EQ_INT(nhashes, 2);
	h = hashes[0];
	CHECK_NOERR(request_equal(req.p, req.len, out.p, out.len, "tenant",
				  tenant));
	nhashes = 0;
	CHECK_EQ_INT(scan(req.p, req.len, &o, NULL, NULL), WIRE_OK);
	CHECK(hashes[0] == h);
	/* Rewriting the output again keeps its long tenant label as
	 * exported_tenant. */
	buf_reset(&req);
	buf_append(&req, out.p, out.len);
	buf_reset(&out);
	CHECK_EQ_INT(scan(req.p, req.len, &o, NULL, &out), WIRE_OK);
	CHECK_NOERR(request_equal(req.p, req.len, out.p, out.len, "tenant",
				  tenant));
	buf_free(&req);
	buf_free(&out);
}

struct raw_case {
	const char *name;
	const char *bytes;
	size_t len;
	int rc;
	const char *why;
};

#define RAW(s) s, sizeof(s) - 1

/* Hand-made malformed bodies; each is also held against protobuf-c. */
static void test_malformed(void)
{
	static const struct raw_case cases[] = {
		{ "empty body", RAW(""), WIRE_OK, "" },
		{ "group wire type", RAW("\x0b"), WIRE_BAD,
		  "invalid wire type 3 at byte 0" },
		{ "end group", RAW("\x4c"), WIRE_BAD,
		  "invalid wire type 4 at byte 0" },
		{ "wire type 6", RAW("\x4e\x00"), WIRE_BAD,
		  "invalid wire type 6 at byte 0" },
		{ "wire type 7", RAW("\x4f"), WIRE_BAD,
		  "invalid wire type 7 at byte 0" },
		{ "field 0", RAW("\x02\x00"), WIRE_BAD,
		  "field number 0 at byte 0" },
		{ "overlong varint",
		  RAW("\x48\x80\x80\x80\x80\x80\x80\x80\x80\x80\x80\x01"),
		  WIRE_BAD, "overlong varint at byte 0" },
		{ "overlong tag", RAW("\xc8\x80\x80\x80\x80\x01\x00"),
		  WIRE_BAD, "overlong varint at byte 0" },
		{ "truncated varint", RAW("\x48\x80"), WIRE_BAD,
		  "truncated varint at byte 0" },
		{ "truncated fixed64", RAW("\x49\x01\x02"), WIRE_BAD,
		  "truncated fixed-size field at byte 0" },
		{ "length past end", RAW("\x0a\x05\x0a\x03"), WIRE_BAD,
		  "length past the end of the message at byte 0" },
		{ "inner length past end",
		  RAW("\x0a\x06\x0a\x05\x0a\x01\x61\x12"), WIRE_BAD,
		  "series 0: length past the end of the message at byte 2" },
		{ "series as varint", RAW("\x08\x01"), WIRE_BAD,
		  "wrong wire type 0 for request field 1 at byte 0" },
		{ "metadata as fixed32", RAW("\x1d\x01\x02\x03\x04"),
		  WIRE_BAD,
		  "wrong wire type 5 for request field 3 at byte 0" },
		{ "label as varint", RAW("\x0a\x02\x08\x01"), WIRE_BAD,
		  "series 0: wrong wire type 0 for series field 1 at byte 2" },
		{ "label name as varint",
		  RAW("\x0a\x04\x0a\x02\x08\x01"), WIRE_BAD,
		  "series 0: wrong wire type 0 for label field 1 at byte 4" },
		{ "sample value as varint",
		  RAW("\x0a\x0c\x0a\x06\x0a\x01\x61\x12\x01\x62"
		      "\x12\x02\x08\x01"), WIRE_BAD,
		  "series 0: wrong wire type 0 for sample field 1 at byte 12" },
		{ "sample timestamp as fixed64",
		  RAW("\x0a\x13\x0a\x06\x0a\x01\x61\x12\x01\x62"
		      "\x12\x09\x11\x00\x00\x00\x00\x00\x00\x00\x00"),
		  WIRE_BAD,
		  "series 0: wrong wire type 1 for sample field 2 at byte 12" },
		{ "group inside a sample",
		  RAW("\x0a\x0c\x0a\x06\x0a\x01\x61\x12\x01\x62"
		      "\x12\x02\x4b\x4c"), WIRE_BAD,
		  "series 0: invalid wire type 3 at byte 12" },
		{ "remote write 2 symbols", RAW("\x22\x00\x22\x03job"),
		  WIRE_V2,
		  "Remote Write 2.0 body (field 4); this endpoint takes 1.0 only" },
		{ "remote write 2 series",
		  RAW("\x0a\x08\x0a\x06\x0a\x01\x61\x12\x01\x62\x2a\x00"),
		  WIRE_V2,
		  "Remote Write 2.0 body (field 5); this endpoint takes 1.0 only" },
		{ "series without labels", RAW("\x0a\x00"), WIRE_BAD,
		  "series 0: no labels" },
		{ "series with only a sample",
		  RAW("\x0a\x0b\x12\x09\x09\x00\x00\x00\x00\x00\x00\xf0\x3f"),
		  WIRE_BAD, "series 0: no labels" },
		{ "metadata bad utf8", RAW("\x1a\x03\x22\x01\xff"), WIRE_BAD,
		  "metadata 0: invalid UTF-8 in metadata field 4" },
		{ "metadata type as string", RAW("\x1a\x03\x0a\x01\x61"),
		  WIRE_BAD,
		  "metadata 0: wrong wire type 2 for metadata field 1 at byte 2" },
		{ "metadata unknown field 3", RAW("\x1a\x03\x1a\x01\xff"),
		  WIRE_OK, "" },
		{ "histogram packed doubles not a multiple of 8",
		  RAW("\x0a\x11\x0a\x06\x0a\x01\x61\x12\x01\x62"
		      "\x22\x07\x52\x05\x00\x00\x00\x00\x00"), WIRE_BAD,
		  "series 0: packed doubles in histogram field 10 not a multiple of 8 bytes" },
		{ "histogram packed varint cut",
		  RAW("\x0a\x0d\x0a\x06\x0a\x01\x61\x12\x01\x62"
		      "\x22\x03\x4a\x01\x80"), WIRE_BAD,
		  "series 0: bad packed varint in field 9 at byte 14" },
		{ "histogram sum as varint",
		  RAW("\x0a\x0c\x0a\x06\x0a\x01\x61\x12\x01\x62"
		      "\x22\x02\x18\x01"), WIRE_BAD,
		  "series 0: wrong wire type 0 for histogram field 3 at byte 12" },
		{ "histogram deltas as fixed64",
		  RAW("\x0a\x13\x0a\x06\x0a\x01\x61\x12\x01\x62"
		      "\x22\x09\x49\x00\x00\x00\x00\x00\x00\x00\x00"),
		  WIRE_BAD,
		  "series 0: wrong wire type 1 for histogram field 9 at byte 12" },
		{ "bucket span offset as fixed32",
		  RAW("\x0a\x11\x0a\x06\x0a\x01\x61\x12\x01\x62"
		      "\x22\x07\x42\x05\x0d\x00\x00\x00\x00"), WIRE_BAD,
		  "series 0: wrong wire type 5 for bucket span field 1 at byte 14" },
		{ "exemplar label bad name",
		  RAW("\x0a\x10\x0a\x06\x0a\x01\x61\x12\x01\x62"
		      "\x1a\x06\x0a\x04\x0a\x02\x31\x78"), WIRE_BAD,
		  "series 0: invalid exemplar label \"1x\"" },
		{ "exemplar label empty value",
		  RAW("\x0a\x10\x0a\x06\x0a\x01\x61\x12\x01\x62"
		      "\x1a\x06\x0a\x04\x0a\x02\x74\x78"), WIRE_OK, "" },
		{ "exemplar label bad utf8",
		  RAW("\x0a\x13\x0a\x06\x0a\x01\x61\x12\x01\x62"
		      "\x1a\x09\x0a\x07\x0a\x02\x74\x78\x12\x01\xc1"),
		  WIRE_BAD,
		  "series 0: invalid exemplar label \"tx\"" },
		{ "unknown fields of every wire type",
		  RAW("\x48\x01\x51\x01\x02\x03\x04\x05\x06\x07\x08"
		      "\x5a\x01\x00\x65\x01\x02\x03\x04\x12\x00"),
		  WIRE_OK, "" },
	};
	Prometheus__WriteRequest *r;
	struct wire_counts c;
	uint8_t *p;
	size_t i;
	int rc;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct raw_case *k = &cases[i];

		/* An exact-size copy so that any over-read is caught. */
		CHECK((p = malloc(k->len ? k->len : 1)) != NULL);
		memcpy(p, k->bytes, k->len);
		memset(&c, 0, sizeof(c));
		rc = scan(p, k->len, NULL, &c, NULL);
		r = unpack(p, k->len);
		if (r != NULL)
			prometheus__write_request__free_unpacked(r, NULL);
		free(p);
		if (rc != k->rc || strcmp(why, k->why) != 0) {
			snprintf(unit_msg, sizeof(unit_msg),
				 "%s: got %d \"%s\"", k->name, rc, why);
			unit_cur_failed = 1;
			return;
		}
		if (r == NULL && rc == WIRE_OK) {
			snprintf(unit_msg, sizeof(unit_msg),
				 "%s: protobuf-c rejects it", k->name);
			unit_cur_failed = 1;
			return;
		}
	}
}

/* Scans p[0..len) and unpacks it with protobuf-c: a body protobuf-c
 * rejects must be rejected; an accepted one must count the same and be
 * rewritten into something protobuf-c reads. Returns NULL or the failure;
 * *accepted tells whether wire_scan took it. */
static const char *differential(const uint8_t *body, size_t len,
				int *accepted)
{
	Prometheus__WriteRequest *r;
	struct wire_counts c, ref;
	struct wire_opts o;
	struct buf out;
	const char *e = NULL;
	uint8_t *p;
	int rc;

	if ((p = malloc(len ? len : 1)) == NULL)
		return "out of memory";
	memcpy(p, body, len);
	memset(&o, 0, sizeof(o));
	o.tenant_label = "tenant";
	o.tenant_value = "acme";
	buf_init(&out, OUT_MAX);
	memset(&c, 0, sizeof(c));
	rc = scan(p, len, &o, &c, &out);
	r = unpack(p, len);
	*accepted = rc == WIRE_OK;
	if (rc == WIRE_OK && r == NULL) {
		e = "accepted a body protobuf-c rejects";
	} else if (rc == WIRE_OK) {
		ref_counts(r, &ref);
		if ((e = counts_check(&c, &ref)) == NULL)
			e = request_equal(p, len, out.p, out.len, "tenant",
					  "acme");
	} else if (rc != WIRE_BAD && rc != WIRE_V2) {
		e = err("unexpected result %d", rc);
	} else if (why[0] == '\0') {
		e = "rejected without a reason";
	}
	if (r != NULL)
		prometheus__write_request__free_unpacked(r, NULL);
	buf_free(&out);
	free(p);
	return e;
}

/* Every prefix of a small valid request: never an over-read, never
 * accepted where protobuf-c fails. */
static void test_truncation(void)
{
	size_t k, rejected = 0, accepted = 0;
	struct buf req;
	int ok;

	buf_init(&req, OUT_MAX);
	small_request(&req);
	for (k = 0; k <= req.len; k++) {
		CHECK_NOERR(differential(req.p, k, &ok));
		if (ok)
			accepted++;
		else
			rejected++;
	}
	/* Only the cuts at the three top-level field boundaries (and the
	 * empty and the whole body) are whole requests. */
	CHECK_EQ_INT(accepted, 4);
	CHECK_EQ_INT(rejected, req.len + 1 - 4);
	buf_free(&req);
}

static uint64_t rng_state = 0x2545f4914f6cdd1dull;

static uint64_t rng(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
}

/* Random byte flips of the captured requests and of the small one, held
 * against protobuf-c. */
static void test_mutation_differential(void)
{
	size_t it, m, nflips, len, accepted = 0;
	struct buf small;
	uint8_t *body;
	int ok;

	CHECK(nfixtures > 0);
	buf_init(&small, OUT_MAX);
	small_request(&small);
	for (it = 0; it < 3000; it++) {
		const uint8_t *src = small.p;

		len = small.len;
		if (it % 3 == 0) {
			src = fixtures[(it / 3) % nfixtures].body;
			len = fixtures[(it / 3) % nfixtures].len;
		}
		CHECK((body = malloc(len)) != NULL);
		memcpy(body, src, len);
		nflips = 1 + rng() % 3;
		for (m = 0; m < nflips; m++) {
			size_t at = rng() % len;

			switch (rng() % 4) {
			case 0:
				body[at] ^= (uint8_t)(1u << (rng() % 8));
				break;
			case 1:
				body[at] = (uint8_t)rng();
				break;
			case 2:
				body[at] = (uint8_t)(rng() % 2 ? 0x80 : 0x00);
				break;
			default:
				len = at + 1; /* cut */
				break;
			}
		}
		CHECK_NOERR(differential(body, len, &ok));
		accepted += ok;
		free(body);
	}
	/* Some mutations must have stayed valid, or the loop tests little. */
	CHECK(accepted > 100);
	buf_free(&small);
}

/* wire_next_field walks a captured request field by field. */
static void test_next_field(void)
{
	struct wire_counts c;
	size_t i, off, next, last, fields;

	CHECK(nfixtures > 0);
	for (i = 0; i < nfixtures; i++) {
		const struct fixture *f = &fixtures[i];

		memset(&c, 0, sizeof(c));
		CHECK_EQ_INT(scan(f->body, f->len, NULL, &c, NULL), WIRE_OK);
		last = 0;
		for (off = 0, fields = 0; off < f->len; off = next, fields++) {
			CHECK((next = wire_next_field(f->body, f->len, off)) >
			      off);
			last = off;
		}
		CHECK_EQ_INT(off, f->len);
		CHECK_EQ_INT(fields, c.series + c.metadata);
		CHECK_EQ_INT(wire_next_field(f->body, f->len, f->len), 0);
		/* The last field, cut short, is no field. */
		CHECK_EQ_INT(wire_next_field(f->body, f->len - 1, last), 0);
	}
	CHECK_EQ_INT(wire_next_field((const uint8_t *)"\x0b", 1, 0), 0);
	CHECK_EQ_INT(wire_next_field((const uint8_t *)"\x0a\x01\x00", 3, 0),
		     3);
}

/* Two requests back to back are one request holding both (protobuf
 * merge), and counts add up across calls. */
static void test_concatenation(void)
{
	const struct fixture *a, *b;
	struct wire_counts c, ca;
	struct buf both, out;

	CHECK(nfixtures >= 2);
	a = &fixtures[0];
	b = &fixtures[1];
	buf_init(&both, OUT_MAX);
	buf_init(&out, OUT_MAX);
	buf_append(&both, a->body, a->len);
	buf_append(&both, b->body, b->len);
	memset(&c, 0, sizeof(c));
	memset(&ca, 0, sizeof(ca));
	CHECK_EQ_INT(scan(a->body, a->len, NULL, &ca, NULL), WIRE_OK);
	CHECK_EQ_INT(scan(b->body, b->len, NULL, &ca, NULL), WIRE_OK);
	CHECK_EQ_INT(scan(both.p, both.len, NULL, &c, &out), WIRE_OK);
	CHECK_NOERR(counts_check(&c, &ca));
	CHECK_EQ_INT(out.len, both.len);
	buf_free(&both);
	buf_free(&out);
}

/* A series with many labels in reverse order (the sort's qsort branch):
 * the copy is the sorted series, and a name that comes twice among them
 * is still refused. */
static void test_sort_many(void)
{
	enum { N = 200 };
	static char names[N][16];
	const char *rev[2 * N + 1], *fwd[2 * N + 1];
	struct buf want, got, in;
	struct wire_counts c;

	for (int i = 0; i < N; i++) {
		snprintf(names[i], sizeof(names[i]), "l%03d", i);
		fwd[2 * i] = names[i];
		fwd[2 * i + 1] = "v";
		rev[2 * (N - 1 - i)] = names[i];
		rev[2 * (N - 1 - i) + 1] = "v";
	}
	fwd[2 * N] = rev[2 * N] = NULL;
	buf_init(&want, OUT_MAX);
	buf_init(&got, OUT_MAX);
	buf_init(&in, OUT_MAX);
	pb_series(&want, fwd);
	pb_series(&in, rev);
	memset(&c, 0, sizeof(c));
	CHECK_EQ_INT(scan(in.p, in.len, NULL, &c, &got), WIRE_OK);
	CHECK_EQ_INT(c.sorted, 1);
	CHECK(got.len == want.len && memcmp(got.p, want.p, want.len) == 0);
	/* The same with one name twice, far apart. */
	rev[2 * 10] = names[150];
	buf_reset(&in);
	pb_series(&in, rev);
	CHECK_EQ_INT(scan(in.p, in.len, NULL, NULL, NULL), WIRE_BAD);
	CHECK(strcmp(why, "series 0: duplicate label name \"l150\"") == 0);
	buf_free(&want);
	buf_free(&got);
	buf_free(&in);
}

/* Unsorted labels are sorted in the copy, whether it is rewritten or
 * copied as it came: what comes out is what a sender that sorts would
 * have sent (same bytes, same series hash), and it is counted. */
static void test_sort(void)
{
	static const char *const sorted[] = { "__name__", "up", "a", "1",
					      "job", "x", NULL };
	static const char *const unsorted[] = { "job", "x", "__name__", "up",
						"a", "1", NULL };
	static const char *const first[] = { "__name__", "m", "z", "9", NULL };
	struct buf want, got, in, out;
	struct wire_counts c;
	struct wire_opts o;
	uint64_t h;

	buf_init(&want, OUT_MAX);
	buf_init(&got, OUT_MAX);
	buf_init(&in, OUT_MAX);
	buf_init(&out, OUT_MAX);
	/* Copied as it came, but for the series to sort. */
	pb_series(&want, first);
	pb_series(&want, sorted);
	pb_series(&in, first);
	pb_series(&in, unsorted);
	memset(&c, 0, sizeof(c));
	CHECK_EQ_INT(scan(in.p, in.len, NULL, &c, &got), WIRE_OK);
	CHECK_EQ_INT(c.sorted, 1);
	CHECK_EQ_INT(c.series, 2);
	CHECK(got.len == want.len && memcmp(got.p, want.p, want.len) == 0);
	/* Scanned only: counted, nothing written. */
	memset(&c, 0, sizeof(c));
	CHECK_EQ_INT(scan(in.p, in.len, NULL, &c, NULL), WIRE_OK);
	CHECK_EQ_INT(c.sorted, 1);
	/* Rewritten with the tenant label: the same as the sorted request's
	 * rewrite, and the same series hash. */
	memset(&o, 0, sizeof(o));
	o.tenant_label = "tenant";
	o.tenant_value = "acme";
	o.on_series = on_series;
	nhashes = 0;
	buf_reset(&got);
	CHECK_EQ_INT(scan(want.p, want.len, &o, NULL, &got), WIRE_OK);
	h = hashes[1];
	nhashes = 0;
	CHECK_EQ_INT(scan(in.p, in.len, &o, NULL, &out), WIRE_OK);
	CHECK_EQ_INT(nhashes, 2);
	CHECK(hashes[1] == h);
	CHECK(got.len == out.len && memcmp(got.p, out.p, out.len) == 0);
	CHECK_NOERR(request_equal(in.p, in.len, out.p, out.len, "tenant",
				  "acme"));
	buf_free(&want);
	buf_free(&got);
	buf_free(&in);
	buf_free(&out);
}

/* admit: a series it refuses is left out and counted apart. */
static int admit_odd(void *arg, uint64_t hash)
{
	size_t *n = arg;

	(void)hash;
	return (*n)++ % 2 == 1;
}

static void test_admit(void)
{
	static const char *const kv[][5] = {
		{ "__name__", "a", "i", "0", NULL },
		{ "__name__", "b", "i", "1", NULL },
		{ "__name__", "c", "i", "2", NULL },
	};
	struct buf in, out, want;
	struct wire_counts c;
	struct wire_opts o;
	size_t n = 0;

	buf_init(&in, OUT_MAX);
	buf_init(&out, OUT_MAX);
	buf_init(&want, OUT_MAX);
	for (size_t i = 0; i < 3; i++)
		pb_series(&in, kv[i]);
	pb_series(&want, kv[0]);
	pb_series(&want, kv[2]);
	memset(&o, 0, sizeof(o));
	o.admit = admit_odd;
	o.arg = &n;
	memset(&c, 0, sizeof(c));
	CHECK_EQ_INT(scan(in.p, in.len, &o, &c, &out), WIRE_OK);
	CHECK_EQ_INT(n, 3);
	CHECK_EQ_INT(c.series, 2);
	CHECK_EQ_INT(c.samples, 2);
	CHECK_EQ_INT(c.refused_series, 1);
	CHECK_EQ_INT(c.refused_samples, 1);
	CHECK(out.len == want.len && memcmp(out.p, want.p, want.len) == 0);
	buf_free(&in);
	buf_free(&out);
	buf_free(&want);
}

/* A refused series' native histogram samples: left out of the
 * output and of c.histograms, and counted in refused_samples, as
 * a relabel rule's drop or refusal counts them (wire.c scan_series). */
static void test_admit_histograms(void)
{
	static const char *const a[] = { "__name__", "a", "i", "0", NULL };
	struct buf in, out, s;
	struct wire_counts c;
	struct wire_opts o;
	size_t n = 0;

	buf_init(&in, OUT_MAX);
	buf_init(&out, OUT_MAX);
	buf_init(&s, OUT_MAX);
	pb_series(&in, a);
	pb_label(&s, 1, "__name__", "h");
	pb_label(&s, 1, "i", "1");
	pb_sample(&s, 0.5, 1700000000000);
	pb_histogram(&s, 1, 0);
	pb_histogram(&s, 0, 1);
	pb_msg(&in, 1, &s);
	memset(&o, 0, sizeof(o));
	o.admit = admit_odd;
	o.arg = &n;
	memset(&c, 0, sizeof(c));
	CHECK_EQ_INT(scan(in.p, in.len, &o, &c, &out), WIRE_OK);
	CHECK_EQ_INT(c.refused_series, 1);
	CHECK_EQ_INT(c.histograms, 0);
	/* 1 float sample + 2 histogram samples refused: counted 3 by the
	 * relabel path's convention. */
	CHECK_EQ_INT(c.refused_samples, 3);
	buf_free(&in);
	buf_free(&out);
	buf_free(&s);
}

int main(void)
{
	size_t i;

	load_fixtures();
	RUN(test_fixtures_match_reference);
	RUN(test_relabel_cache);
	RUN(test_fixtures_tenant_rewrite);
	RUN(test_stale_markers_survive);
	RUN(test_tenant_replaced_and_inserted);
	RUN(test_exported_tenant_taken);
	RUN(test_exported_tenant_long);
	RUN(test_drop_label);
	RUN(test_histograms_and_exemplars);
	RUN(test_interleaved_and_unknown_fields);
	RUN(test_series_hash);
	RUN(test_many_labels);
	RUN(test_label_rules);
	RUN(test_name_characters);
	RUN(test_long_labels);
	RUN(test_limits);
	RUN(test_malformed);
	RUN(test_truncation);
	RUN(test_mutation_differential);
	RUN(test_next_field);
	RUN(test_concatenation);
	RUN(test_sort);
	RUN(test_sort_many);
	RUN(test_admit);
	RUN(test_admit_histograms);
	RUN(test_relabel_hook);
	for (i = 0; i < nfixtures; i++)
		free(fixtures[i].body);
	wire_scratch_free();
	return unit_done();
}
