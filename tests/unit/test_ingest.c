/*
 * test_ingest.c - from a request body to a batch's chunks: limits checked
 * before decoding, counts held against protobuf-c, every series in its
 * delivery lane (in order there), the tenant label set, and large lanes
 * cut into chunks of whole series.
 *
 * Fixtures are read from $RELAY_FIXTURES, or tests/fixtures when unset
 * (run from the top of the tree).
 */
#include "ingest.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "config.h"
#include "remote.pb-c.h"
#include "lanes.h"
#include "store.h"
#include "testlib.h"
#include "unit.h"
#include "wire.h"

static const char *const fixture_names[] = {
	"req00000.bin", "req00001.bin", "req00002.bin", "req00003.bin",
	"req00004.bin", "req00014.bin", "req00044.bin", "req00046.bin",
};
#define NFIXTURES (sizeof(fixture_names) / sizeof(fixture_names[0]))

static char why[256];

/*
 * Checks that the chunks of b hold the series and metadata of the decoded
 * request raw, each once, each series with tenant=value (tenant NULL:
 * unchanged): chunks in ascending lane order (lanes.h), each lane's
 * series in the order they were sent, the metadata in lane 0 in order;
 * each chunk's raw_len and counts must be right, and each chunk at most
 * max decoded bytes unless it holds one field.
 */
static const char *chunks_equal(const struct batch *b, const uint8_t *raw,
				size_t rawlen, const char *tenant,
				const char *value, uint64_t max)
{
	Prometheus__WriteRequest *in = NULL, *part = NULL;
	size_t seen = 0, mi = 0, next[LANES] = {0};
	unsigned char *used;
	uint64_t vb = 0;
	const char *e = NULL;

	if ((in = prometheus__write_request__unpack(NULL, rawlen, raw)) == NULL)
		return "protobuf-c cannot unpack the input";
	used = calloc(in->n_timeseries + 1, 1);
	for (size_t c = 0; c < b->nchunks && e == NULL && used != NULL; c++) {
		const struct chunk *ch = &b->chunks[c];
		struct wire_counts rc;
		uint8_t *dec;
		size_t n;

		vb += ch->len + sizeof(struct entry_hdr);
		if (ch->lane >= LANES || (c > 0 && ch->lane < b->chunks[c - 1].lane)) {
			e = err("chunk %zu: lane %u out of order", c, ch->lane);
			break;
		}
		if ((dec = uncompress(ch->block, ch->len, &n)) == NULL) {
			e = err("chunk %zu: snappy cannot decode it", c);
			break;
		}
		part = prometheus__write_request__unpack(NULL, n, dec);
		free(dec);
		if (part == NULL) {
			e = err("chunk %zu: protobuf-c cannot unpack it", c);
			break;
		}
		ref_counts(part, &rc);
		if (n != ch->raw_len)
			e = err("chunk %zu: raw_len %u, decodes to %zu", c,
				ch->raw_len, n);
		else if (!counts_equal(&rc, &ch->counts))
			e = err("chunk %zu: counts differ from protobuf-c's", c);
		else if (n > max && part->n_timeseries + part->n_metadata != 1)
			e = err("chunk %zu: %zu decoded bytes, over %llu with "
				"%zu series", c, n, (unsigned long long)max,
				part->n_timeseries);
		else if (rc.series + rc.metadata == 0 && rawlen > 0)
			e = err("chunk %zu is empty", c);
		else if (part->n_metadata > 0 && ch->lane != 0)
			e = err("chunk %zu: metadata outside lane 0", c);
		for (size_t i = 0; e == NULL && i < part->n_timeseries; i++, seen++) {
			size_t *j = &next[ch->lane];
			while (*j < in->n_timeseries &&
			       (used[*j] || series_equal(in->timeseries[*j],
							 part->timeseries[i],
							 tenant, value) != NULL))
				(*j)++;
			if (*j == in->n_timeseries)
				e = err("chunk %zu: series %zu unknown or out of "
					"order in lane %u", c, i, ch->lane);
			else
				used[(*j)++] = 1;
		}
		for (size_t i = 0; e == NULL && i < part->n_metadata; i++, mi++)
			if (mi >= in->n_metadata ||
			    !message_equal(in->metadata[mi], part->metadata[i]))
				e = err("metadata %zu differs", mi);
		prometheus__write_request__free_unpacked(part, NULL);
		part = NULL;
	}
	if (used == NULL)
		e = "out of memory";
	if (e == NULL && (seen != in->n_timeseries || mi != in->n_metadata))
		e = err("chunks hold %zu series and %zu metadata of %zu and %zu",
			seen, mi, in->n_timeseries, in->n_metadata);
	if (e == NULL && vb != b->value_bytes)
		e = err("value_bytes %llu, chunks take %llu",
			(unsigned long long)b->value_bytes,
			(unsigned long long)vb);
	free(used);
	prometheus__write_request__free_unpacked(in, NULL);
	return e;
}

/* Sets body to a copy of p[0..len), bounded as the server bounds it. */
static void body_set(struct buf *body, const struct config *cfg,
		     const uint8_t *p, size_t len)
{
	buf_init(body, cfg->max_body_size);
	buf_append(body, p, len);
}

static void test_fixtures_counts_and_lanes(void)
{
	struct config cfg;
	const char *e = NULL;

	config_defaults(&cfg);
	for (size_t i = 0; i < NFIXTURES && e == NULL; i++) {
		struct ingest_req r = { "", 0, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL };
		Prometheus__WriteRequest *ref = NULL;
		struct wire_counts counts, want;
		uint8_t *z, *raw = NULL;
		size_t zlen, rawlen = 0;
		uint64_t decoded = 0;
		struct buf body;
		struct batch b;
		int status;

		if ((z = fixture(fixture_names[i], &zlen)) == NULL) {
			e = err("%s: cannot read", fixture_names[i]);
			break;
		}
		body_set(&body, &cfg, z, zlen);
		status = ingest_body(&cfg, &r, &body, &b, &counts, &decoded, why,
				     sizeof(why));
		if ((raw = uncompress(z, zlen, &rawlen)) == NULL ||
		    (ref = prometheus__write_request__unpack(NULL, rawlen, raw)) ==
			    NULL)
			e = err("%s: reference decoding failed", fixture_names[i]);
		else if (status != 0)
			e = err("%s: status %d (%s)", fixture_names[i], status, why);
		if (e == NULL) {
			ref_counts(ref, &want);
			if (!counts_equal(&counts, &want))
				e = err("%s: counts differ from protobuf-c's",
					fixture_names[i]);
			else if (decoded != rawlen)
				e = err("%s: decoded %llu, not %zu",
					fixture_names[i],
					(unsigned long long)decoded, rawlen);
			else if (b.nchunks < 1 || b.nchunks > LANES)
				e = err("%s: %zu chunks", fixture_names[i],
					b.nchunks);
			else if (!counts_equal(&counts, &want))
				e = err("%s: counts wrong", fixture_names[i]);
			else if ((e = chunks_equal(&b, raw, rawlen, NULL, NULL,
						   cfg.max_request_size)) != NULL)
				e = err("%s: %s", fixture_names[i],
					strcpy(why, e));
			else if (b.tlen != 0)
				e = err("%s: tenant set", fixture_names[i]);
		}
		if (ref != NULL)
			prometheus__write_request__free_unpacked(ref, NULL);
		if (status == 0)
			batch_release(&b);
		buf_free(&body);
		free(raw);
		free(z);
	}
	config_free(&cfg);
	CHECK_NOERR(e);
}

static void test_fixtures_tenant_label(void)
{
	struct config cfg;
	const char *e = NULL;

	config_defaults(&cfg);
	for (size_t i = 0; i < NFIXTURES && e == NULL; i++) {
		struct ingest_req r = { "acme", 4, "tenant", NULL, NULL, NULL, NULL, NULL, NULL, NULL };
		struct wire_counts counts;
		uint8_t *z, *raw = NULL;
		size_t zlen, rawlen = 0;
		uint64_t decoded;
		struct buf body;
		struct batch b;
		int status;

		if ((z = fixture(fixture_names[i], &zlen)) == NULL) {
			e = "cannot read a fixture";
			break;
		}
		body_set(&body, &cfg, z, zlen);
		status = ingest_body(&cfg, &r, &body, &b, &counts, &decoded, why,
				     sizeof(why));
		if (status != 0)
			e = err("%s: status %d (%s)", fixture_names[i], status, why);
		else if ((raw = uncompress(z, zlen, &rawlen)) == NULL)
			e = "reference decoding failed";
		else if (b.nchunks < 1 || b.nchunks > LANES)
			e = err("%s: %zu chunks", fixture_names[i], b.nchunks);
		else if (strcmp(b.tenant, "acme") != 0 || b.tlen != 4)
			e = err("%s: batch tenant %s", fixture_names[i], b.tenant);
		else if (body.p == NULL || body.len != zlen)
			e = err("%s: the body was taken though it was rewritten",
				fixture_names[i]);
		else if ((e = chunks_equal(&b, raw, rawlen, "tenant", "acme",
					   cfg.max_request_size)) != NULL)
			e = err("%s: %s", fixture_names[i], strcpy(why, e));
		if (status == 0)
			batch_release(&b);
		buf_free(&body);
		free(raw);
		free(z);
	}
	config_free(&cfg);
	CHECK_NOERR(e);
}

/*
 * The lane of a series follows its instance label: every series of one
 * instance is in the same lane (the series of one target stay together, so
 * the blocks compress as the request did), and a request of one instance,
 * not rewritten, is stored as it came.
 */
static void test_lane_by_instance(void)
{
	struct config cfg;
	const char *e = NULL;

	config_defaults(&cfg);
	for (size_t i = 0; i < NFIXTURES && e == NULL; i++) {
		struct ingest_req r = { "", 0, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL };
		char inst[64][128];
		unsigned lane_of[64], ninst = 0;
		struct wire_counts counts;
		uint64_t decoded;
		struct buf body;
		struct batch b;
		uint8_t *z;
		size_t zlen;

		if ((z = fixture(fixture_names[i], &zlen)) == NULL) {
			e = "cannot read a fixture";
			break;
		}
		body_set(&body, &cfg, z, zlen);
		if (ingest_body(&cfg, &r, &body, &b, &counts, &decoded, why,
				sizeof(why)) != 0) {
			e = err("%s: refused (%s)", fixture_names[i], why);
			buf_free(&body);
			free(z);
			break;
		}
		for (size_t c = 0; c < b.nchunks && e == NULL; c++) {
			size_t n;
			uint8_t *dec = uncompress(b.chunks[c].block, b.chunks[c].len, &n);
			Prometheus__WriteRequest *m = dec == NULL ? NULL :
				prometheus__write_request__unpack(NULL, n, dec);
			free(dec);
			if (m == NULL) {
				e = "a chunk does not decode";
				break;
			}
			for (size_t k = 0; k < m->n_timeseries && e == NULL; k++) {
				const Prometheus__TimeSeries *t = m->timeseries[k];
				const char *v = NULL;
				unsigned j;
				for (size_t l = 0; l < t->n_labels; l++)
					if (strcmp(t->labels[l]->name, "instance") == 0)
						v = t->labels[l]->value;
				if (v == NULL)
					continue;
				for (j = 0; j < ninst && strcmp(inst[j], v) != 0; j++)
					;
				if (j == ninst && ninst < 64) {
					snprintf(inst[ninst], sizeof(inst[0]), "%s", v);
					lane_of[ninst++] = b.chunks[c].lane;
				} else if (j < ninst && lane_of[j] != b.chunks[c].lane) {
					e = err("%s: instance %s in lanes %u and %u",
						fixture_names[i], v, lane_of[j],
						b.chunks[c].lane);
				}
			}
			prometheus__write_request__free_unpacked(m, NULL);
		}
		/* One instance, no metadata: one lane, the body as it came. */
		if (e == NULL && ninst == 1 && b.nchunks == 1 &&
		    (b.chunks[0].len != zlen ||
		     memcmp(b.chunks[0].block, z, zlen) != 0 || body.p != NULL))
			e = err("%s: one lane, but not stored as it came",
				fixture_names[i]);
		batch_release(&b);
		buf_free(&body);
		free(z);
	}
	config_free(&cfg);
	CHECK_NOERR(e);
}

static size_t series_seen;

static void count_series(void *arg, uint64_t hash)
{
	(void)hash;
	(void)arg;
	series_seen++;
}

static void test_on_series_called_per_series(void)
{
	struct ingest_req r = { "acme", 4, "tenant", count_series, NULL, NULL, NULL, NULL, NULL, NULL };
	struct wire_counts counts;
	struct config cfg;
	struct buf body;
	struct batch b;
	uint64_t decoded;
	uint8_t *z;
	size_t zlen;
	int status;

	config_defaults(&cfg);
	z = fixture("req00046.bin", &zlen);
	if (z == NULL)
		config_free(&cfg);
	CHECK(z != NULL);
	body_set(&body, &cfg, z, zlen);
	series_seen = 0;
	status = ingest_body(&cfg, &r, &body, &b, &counts, &decoded, why,
			     sizeof(why));
	if (status == 0)
		batch_release(&b);
	buf_free(&body);
	free(z);
	config_free(&cfg);
	CHECK_EQ_INT(status, 0);
	CHECK_EQ_INT(counts.series, 320);
	CHECK_EQ_INT(series_seen, 320);
}

/* Runs ingest_body on p[0..len) with cfg; returns the status, batch empty
 * and body untouched on failure (else a test failure message in *e). */
static int ingest_fails(const struct config *cfg, const uint8_t *p, size_t len,
			const char **e)
{
	struct ingest_req r = { "acme", 4, "tenant", NULL, NULL, NULL, NULL, NULL, NULL, NULL };
	struct wire_counts counts;
	struct buf body;
	struct batch b;
	uint64_t decoded = 0;
	int status;

	body_set(&body, cfg, p, len);
	why[0] = '\0';
	status = ingest_body(cfg, &r, &body, &b, &counts, &decoded, why,
			     sizeof(why));
	*e = NULL;
	if (status == 0)
		batch_release(&b);
	else if (b.nchunks != 0 || b.chunks != NULL)
		*e = "a refused body left chunks in the batch";
	else if (body.len != len ||
		 (len > 0 && (body.p == NULL || memcmp(body.p, p, len) != 0)))
		*e = "a refused body was taken or changed";
	else if (why[0] == '\0')
		*e = "no reason given";
	buf_free(&body);
	return status;
}

/* A preamble that claims more than max_decoded_size gets 413 before any
 * decoding: the bytes after it are not valid snappy at all. */
static void test_decoded_size_over_limit(void)
{
	static const uint8_t huge[] = { 0xff, 0xff, 0xff, 0xff, 0x0f,
					0xde, 0xad, 0xbe, 0xef };
	uint8_t just_over[16];
	struct config cfg;
	const char *e;
	int s1, s2, s3, s4;
	uint64_t decoded = 0;
	size_t n = 0;

	config_defaults(&cfg);
	s1 = ingest_fails(&cfg, huge, sizeof(huge), &e);
	if (e != NULL)
		config_free(&cfg);
	CHECK_NOERR(e);
	/* One byte over the default 64 MiB. */
	n = 0;
	{
		uint64_t v = cfg.max_decoded_size + 1;
		while (v >= 0x80) {
			just_over[n++] = (uint8_t)(v | 0x80);
			v >>= 7;
		}
		just_over[n++] = (uint8_t)v;
		memcpy(just_over + n, "\x00\x01\x02", 3);
		n += 3;
	}
	s2 = ingest_fails(&cfg, just_over, n, &e);
	if (e != NULL)
		config_free(&cfg);
	CHECK_NOERR(e);
	s3 = ingest_check_length(&cfg, huge, sizeof(huge), &decoded, why,
				 sizeof(why));
	/* A real body over a lowered limit. */
	cfg.max_decoded_size = 1024;
	{
		size_t zlen;
		uint8_t *z = fixture("req00000.bin", &zlen);

		s4 = z != NULL ? ingest_fails(&cfg, z, zlen, &e) : -1;
		free(z);
	}
	config_free(&cfg);
	CHECK_NOERR(e);
	CHECK_EQ_INT(s1, 413);
	CHECK_EQ_INT(s2, 413);
	CHECK_EQ_INT(s3, 413);
	CHECK_EQ_INT(decoded, 0xffffffffu);
	CHECK_EQ_INT(s4, 413);
}

static void test_corrupt_snappy(void)
{
	static const uint8_t over32[] = { 0xff, 0xff, 0xff, 0xff, 0x1f, 0x00 },
		trunc_pre[] = { 0x80 };
	struct config cfg;
	uint8_t *z, *bad = NULL;
	const char *e = NULL;
	size_t zlen;
	int s[6];

	config_defaults(&cfg);
	z = fixture("req00001.bin", &zlen);
	if (z == NULL || (bad = malloc(zlen + 8)) == NULL) {
		free(z);
		config_free(&cfg);
		CHECK(0);
	}
	s[0] = ingest_fails(&cfg, over32, sizeof(over32), &e);
	if (e == NULL)
		s[1] = ingest_fails(&cfg, trunc_pre, sizeof(trunc_pre), &e);
	if (e == NULL)   /* empty body */
		s[2] = ingest_fails(&cfg, trunc_pre, 0, &e);
	if (e == NULL)   /* cut short */
		s[3] = ingest_fails(&cfg, z, zlen / 2, &e);
	if (e == NULL) { /* stated length one short of the elements */
		uint32_t raw;
		size_t pre = sblock_preamble(z, zlen, &raw), n = 0;
		uint64_t v = raw - 1;
		while (v >= 0x80) {
			bad[n++] = (uint8_t)(v | 0x80);
			v >>= 7;
		}
		bad[n++] = (uint8_t)v;
		memcpy(bad + n, z + pre, zlen - pre);
		s[4] = ingest_fails(&cfg, bad, n + zlen - pre, &e);
	}
	if (e == NULL) { /* a copy that reaches before the start */
		static const uint8_t far[] = { 0x08, 0x00, 'a', 0x0d, 0x20 };
		s[5] = ingest_fails(&cfg, far, sizeof(far), &e);
	}
	free(bad);
	free(z);
	config_free(&cfg);
	CHECK_NOERR(e);
	for (int i = 0; i < 6; i++)
		CHECK_EQ_INT(s[i], 400);
}

/*
 * Packs a WriteRequest of n series, series k named "m" with label i=base+k
 * and samples[k] samples. Returns malloc'd bytes (caller frees).
 */
static uint8_t *make_request(size_t n, size_t base, const size_t *samples,
			     size_t *len)
{
	Prometheus__WriteRequest req = PROMETHEUS__WRITE_REQUEST__INIT;
	Prometheus__TimeSeries *ts = calloc(n, sizeof(*ts));
	Prometheus__TimeSeries **tsp = calloc(n, sizeof(*tsp));
	Prometheus__Label *lb = calloc(2 * n, sizeof(*lb));
	Prometheus__Label **lbp = calloc(2 * n, sizeof(*lbp));
	char (*ids)[24] = calloc(n, sizeof(*ids));
	size_t total = 0, at = 0;
	Prometheus__Sample *sm, **smp;
	uint8_t *out = NULL;

	for (size_t k = 0; k < n; k++)
		total += samples[k];
	sm = calloc(total + 1, sizeof(*sm));
	smp = calloc(total + 1, sizeof(*smp));
	if (ts == NULL || tsp == NULL || lb == NULL || lbp == NULL ||
	    ids == NULL || sm == NULL || smp == NULL)
		goto out;
	for (size_t k = 0; k < n; k++) {
		prometheus__time_series__init(&ts[k]);
		prometheus__label__init(&lb[2 * k]);
		prometheus__label__init(&lb[2 * k + 1]);
		snprintf(ids[k], sizeof(ids[k]), "%zu", base + k);
		lb[2 * k].name = "__name__";
		lb[2 * k].value = "m";
		lb[2 * k + 1].name = "i";
		lb[2 * k + 1].value = ids[k];
		lbp[2 * k] = &lb[2 * k];
		lbp[2 * k + 1] = &lb[2 * k + 1];
		ts[k].n_labels = 2;
		ts[k].labels = &lbp[2 * k];
		ts[k].n_samples = samples[k];
		ts[k].samples = &smp[at];
		for (size_t j = 0; j < samples[k]; j++, at++) {
			prometheus__sample__init(&sm[at]);
			sm[at].value = (double)(base + k) + 0.25 * (double)j;
			sm[at].timestamp = 1700000000000 + (int64_t)j * 15000;
			smp[at] = &sm[at];
		}
		tsp[k] = &ts[k];
	}
	req.n_timeseries = n;
	req.timeseries = tsp;
	out = pack(&req.base, len);
out:
	free(ts);
	free(tsp);
	free(lb);
	free(lbp);
	free(ids);
	free(sm);
	free(smp);
	return out;
}

/*
 * Ingests the decoded request raw (compressed here) with max_request_size
 * max and tenant label (NULL: none); checks the chunks. Returns NULL or
 * what is wrong; *nchunks gets the chunk count.
 */
/* The largest chunk's decoded bytes in split_check's last batch. */
static uint64_t split_biggest;

static const char *split_check(const uint8_t *raw, size_t rawlen, uint64_t max,
			       const char *label, size_t *nchunks)
{
	struct ingest_req r = { "acme", 4, label, NULL, NULL, NULL, NULL, NULL, NULL, NULL };
	struct wire_counts counts, sum;
	struct config cfg;
	struct buf body;
	struct batch b;
	uint64_t decoded;
	const char *e = NULL;
	uint8_t *z;
	size_t zlen;
	int status;

	if ((z = compress(raw, rawlen, &zlen)) == NULL)
		return "snappy_compress failed";
	config_defaults(&cfg);
	cfg.max_request_size = max;
	body_set(&body, &cfg, z, zlen);
	status = ingest_body(&cfg, &r, &body, &b, &counts, &decoded, why,
			     sizeof(why));
	*nchunks = status == 0 ? b.nchunks : 0;
	if (status != 0) {
		e = err("status %d (%s)", status, why);
		goto out;
	}
	memset(&sum, 0, sizeof(sum));
	split_biggest = 0;
	for (size_t i = 0; i < b.nchunks; i++) {
		if (b.chunks[i].raw_len > split_biggest)
			split_biggest = b.chunks[i].raw_len;
		sum.series += b.chunks[i].counts.series;
		sum.samples += b.chunks[i].counts.samples;
		sum.histograms += b.chunks[i].counts.histograms;
		sum.exemplars += b.chunks[i].counts.exemplars;
		sum.metadata += b.chunks[i].counts.metadata;
	}
	if (!counts_equal(&sum, &counts))
		e = "chunk counts do not add up to the request's";
	else if (decoded != rawlen)
		e = "decoded length wrong";
	else
		e = chunks_equal(&b, raw, rawlen, label, "acme", max);
	batch_release(&b);
out:
	buf_free(&body);
	config_free(&cfg);
	free(z);
	return e;
}

static void test_split_fixtures(void)
{
	const char *e = NULL;

	for (size_t i = 0; i < NFIXTURES && e == NULL; i++) {
		uint8_t *z, *raw = NULL;
		size_t zlen, rawlen, n1 = 0, n2 = 0;

		if ((z = fixture(fixture_names[i], &zlen)) == NULL ||
		    (raw = uncompress(z, zlen, &rawlen)) == NULL) {
			e = "cannot read a fixture";
		} else if ((e = split_check(raw, rawlen, 20000, NULL, &n1)) ==
				   NULL &&
			   (e = split_check(raw, rawlen, 20000, "tenant", &n2)) ==
				   NULL) {
			/* 22 KB to 71 KB decoded: at least two chunks. */
			if (n1 < 2 || n2 < 2 || n1 < (rawlen + 19999) / 20000)
				e = err("%s: %zu and %zu chunks for %zu bytes",
					fixture_names[i], n1, n2, rawlen);
		} else {
			e = err("%s: %s", fixture_names[i], strcpy(why, e));
		}
		free(raw);
		free(z);
	}
	CHECK_NOERR(e);
}

/* A lane just at the limit stays one chunk; one byte less splits it. */
static void test_split_boundary(void)
{
	uint8_t *z, *raw = NULL;
	size_t zlen, rawlen = 0, n0 = 0, n = 0;
	const char *e = NULL;
	uint64_t big = 0;

	z = fixture("req00000.bin", &zlen);
	if (z == NULL || (raw = uncompress(z, zlen, &rawlen)) == NULL)
		e = "cannot read a fixture";
	if (e == NULL)
		e = split_check(raw, rawlen, rawlen, NULL, &n0);
	big = split_biggest;
	if (e == NULL && (e = split_check(raw, rawlen, big, NULL, &n)) == NULL &&
	    n != n0)
		e = err("%zu chunks at the limit, %zu lanes", n, n0);
	if (e == NULL &&
	    (e = split_check(raw, rawlen, big - 1, NULL, &n)) == NULL && n <= n0)
		e = err("%zu chunks one byte past the limit", n);
	free(raw);
	free(z);
	CHECK_NOERR(e);
}

/* A single series larger than max_request_size travels alone. */
static void test_split_big_series(void)
{
	size_t samples[40], len = 0, nchunks = 0;
	uint8_t *raw;
	const char *e;

	for (size_t k = 0; k < 40; k++)
		samples[k] = k == 17 ? 3000 : (k == 39 ? 2500 : 3);
	raw = make_request(40, 1000, samples, &len);
	CHECK(raw != NULL);
	e = split_check(raw, len, 20000, NULL, &nchunks);
	if (e == NULL)
		e = split_check(raw, len, 20000, "tenant", &nchunks);
	free(raw);
	CHECK_NOERR(e);
	/* Before 17, 17 alone, 18..38, 39 alone: at least four. */
	CHECK(nchunks >= 4);
}

/* Fields of Remote Write 2.0 (4: symbols, 5: timeseries) get 415. */
static void test_remote_write_2(void)
{
	static const uint8_t symbols[] = { 0x22, 0x00, 0x22, 0x08, '_', '_',
					   'n', 'a', 'm', 'e', '_', '_' };
	static const uint8_t series2[] = { 0x2a, 0x04, 0x0a, 0x02, 0x01, 0x02 };
	size_t samples[1] = { 1 }, len, zlen;
	uint8_t *v1 = make_request(1, 0, samples, &len), *mixed = NULL, *z;
	struct config cfg;
	const char *e = NULL;
	int s[3] = { 0, 0, 0 };

	CHECK(v1 != NULL);
	config_defaults(&cfg);
	if ((z = compress(symbols, sizeof(symbols), &zlen)) != NULL) {
		s[0] = ingest_fails(&cfg, z, zlen, &e);
		free(z);
	}
	if (e == NULL && (z = compress(series2, sizeof(series2), &zlen)) != NULL) {
		s[1] = ingest_fails(&cfg, z, zlen, &e);
		free(z);
	}
	/* A 1.0 series first, then a 2.0 field. */
	if (e == NULL && (mixed = malloc(len + sizeof(series2))) != NULL) {
		memcpy(mixed, v1, len);
		memcpy(mixed + len, series2, sizeof(series2));
		if ((z = compress(mixed, len + sizeof(series2), &zlen)) != NULL) {
			s[2] = ingest_fails(&cfg, z, zlen, &e);
			free(z);
		}
	}
	free(mixed);
	free(v1);
	config_free(&cfg);
	CHECK_NOERR(e);
	CHECK_EQ_INT(s[0], 415);
	CHECK_EQ_INT(s[1], 415);
	CHECK_EQ_INT(s[2], 415);
}

/* A request that breaks the label rules gets 400 and leaves nothing. */
static void test_bad_labels(void)
{
	size_t samples[2] = { 1, 1 }, len, zlen;
	uint8_t *raw = make_request(2, 0, samples, &len), *z = NULL, *p;
	struct config cfg;
	const char *e = NULL;
	int s = 0;

	CHECK(raw != NULL);
	/* Rename the second series' label "i" to "-": not a label name. */
	p = raw + len;
	while (p > raw && !(p[-1] == 'i' && p[-2] == 0x01))
		p--;
	config_defaults(&cfg);
	if (p > raw) {
		p[-1] = '-';
		if ((z = compress(raw, len, &zlen)) != NULL)
			s = ingest_fails(&cfg, z, zlen, &e);
	}
	free(z);
	free(raw);
	config_free(&cfg);
	CHECK_NOERR(e);
	CHECK_EQ_INT(s, 400);
}

/* Ingests p[0..len) as tenant acme with section t (NULL: none). Returns
 * the status; why holds the reason. */
static int ingest_as(const struct config *cfg, const struct config_tenant *t,
		     const uint8_t *p, size_t len)
{
	struct ingest_req r = { "acme", 4, "tenant", NULL, NULL, NULL, NULL, NULL, NULL, NULL };
	struct wire_counts counts;
	struct buf body;
	struct batch b;
	uint64_t decoded = 0;
	int status;

	r.conf = t;
	body_set(&body, cfg, p, len);
	status = ingest_body(cfg, &r, &body, &b, &counts, &decoded, why,
			     sizeof(why));
	if (status == 0)
		batch_release(&b);
	buf_free(&body);
	return status;
}

/* A [tenant] section's label limits override [limits] for that tenant:
 * tighter ones refuse what [limits] takes, looser ones take what [limits]
 * refuses; 0 leaves [limits]'. */
static void test_tenant_label_limits(void)
{
	size_t samples[2] = { 1, 1 }, len, zlen;
	uint8_t *raw = make_request(2, 100, samples, &len), *z;
	struct config_tenant t;
	struct config cfg;
	int s[6];

	CHECK(raw != NULL && (z = compress(raw, len, &zlen)) != NULL);
	config_defaults(&cfg);
	memset(&t, 0, sizeof(t));
	s[0] = ingest_as(&cfg, &t, z, zlen);
	t.max_labels_per_series = 1;   /* __name__ and i, as sent */
	s[1] = ingest_as(&cfg, &t, z, zlen);
	CHECK_STR(why, "series 0: more than 1 labels");
	t.max_labels_per_series = 0;
	t.max_label_value_length = 2;  /* i="100" */
	s[2] = ingest_as(&cfg, &t, z, zlen);
	t.max_label_value_length = 0;
	t.max_label_name_length = 7;   /* __name__ */
	s[3] = ingest_as(&cfg, &t, z, zlen);
	cfg.max_labels_per_series = 1;
	s[4] = ingest_as(&cfg, NULL, z, zlen);
	t.max_label_name_length = 0;
	t.max_labels_per_series = 2;
	s[5] = ingest_as(&cfg, &t, z, zlen);
	CHECK_EQ_INT(s[0], 0);
	CHECK_EQ_INT(s[1], 400);
	CHECK_EQ_INT(s[2], 400);
	CHECK_EQ_INT(s[3], 400);
	CHECK_EQ_INT(s[4], 400);
	CHECK_EQ_INT(s[5], 0);
	free(z);
	free(raw);
	config_free(&cfg);
}

/* A request with labels out of order is stored sorted, also when nothing
 * else would rewrite it (no tenant): the chunk is not the body as it came. */
static void test_unsorted_sorted(void)
{
	size_t samples[2] = { 1, 1 }, len, zlen, n = 0;
	uint8_t *raw = make_request(2, 0, samples, &len), *z = NULL, *p, *dec;
	struct ingest_req r = { "", 0, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL };
	Prometheus__WriteRequest *w = NULL;
	struct wire_counts counts;
	struct config cfg;
	struct buf body;
	struct batch b;
	uint64_t decoded = 0;
	int status = -1;

	CHECK(raw != NULL);
	/* The second series' "i" becomes "I", which sorts before "__name__"
	 * ('I' is 0x49, '_' 0x5f). */
	p = raw + len;
	while (p > raw && !(p[-1] == 'i' && p[-2] == 0x01))
		p--;
	CHECK(p > raw);
	p[-1] = 'I';
	config_defaults(&cfg);
	CHECK((z = compress(raw, len, &zlen)) != NULL);
	body_set(&body, &cfg, z, zlen);
	status = ingest_body(&cfg, &r, &body, &b, &counts, &decoded, why,
			     sizeof(why));
	CHECK_EQ_INT(status, 0);
	CHECK_EQ_INT(counts.sorted, 1);
	CHECK_EQ_INT(counts.series, 2);
	CHECK_EQ_INT(b.nchunks, 1);
	CHECK(b.chunks[0].block != body.p || body.p == NULL);
	CHECK((dec = uncompress(b.chunks[0].block, b.chunks[0].len, &n)) != NULL);
	CHECK((w = prometheus__write_request__unpack(NULL, n, dec)) != NULL);
	CHECK_EQ_INT(w->n_timeseries, 2);
	CHECK_STR(w->timeseries[1]->labels[0]->name, "I");
	CHECK_STR(w->timeseries[1]->labels[1]->name, "__name__");
	CHECK_STR(w->timeseries[0]->labels[0]->name, "__name__");
	prometheus__write_request__free_unpacked(w, NULL);
	free(dec);
	batch_release(&b);
	buf_free(&body);
	free(z);
	free(raw);
	config_free(&cfg);
}

/* A request not rewritten (no tenant label) but with a series out of
 * order is scanned twice (the second time to sort it in a rewrite):
 * on_series still sees each series once, and the rewrite is stored. */
static void test_on_series_once_when_sorted(void)
{
	size_t samples[3] = { 1, 2, 1 }, len, zlen;
	uint8_t *raw = make_request(3, 0, samples, &len), *z = NULL, *p;
	struct ingest_req r = { "acme", 4, NULL, count_series, NULL, NULL, NULL, NULL, NULL, NULL };
	struct wire_counts counts;
	struct config cfg;
	struct buf body;
	struct batch b;
	uint64_t decoded = 0;
	int status;

	CHECK(raw != NULL);
	p = raw + len;
	while (p > raw && !(p[-1] == 'i' && p[-2] == 0x01))
		p--;
	if (p == raw)
		free(raw);
	CHECK(p > raw);
	p[-1] = 'I';
	config_defaults(&cfg);
	z = compress(raw, len, &zlen);
	free(raw);
	CHECK(z != NULL);
	body_set(&body, &cfg, z, zlen);
	series_seen = 0;
	status = ingest_body(&cfg, &r, &body, &b, &counts, &decoded, why,
			     sizeof(why));
	if (status == 0)
		batch_release(&b);
	buf_free(&body);
	free(z);
	config_free(&cfg);
	CHECK_EQ_INT(status, 0);
	CHECK_EQ_INT(counts.sorted, 1);
	CHECK_EQ_INT(counts.series, 3);
	CHECK_EQ_INT(counts.samples, 4);
	CHECK_EQ_INT(series_seen, 3);
}

/* Series of 4 instances, 8 each, side by side, no tenant label: each
 * lane a block of its own (the first the start of the body as it came,
 * the others compressed), in ascending lane order, together the request. */
static void test_as_sent_across_lanes(void)
{
	Prometheus__WriteRequest req = PROMETHEUS__WRITE_REQUEST__INIT;
	Prometheus__TimeSeries ts[32], *tsp[32];
	Prometheus__Label lb[64], *lbp[64];
	Prometheus__Sample sm[32], *smp[32];
	struct ingest_req r = { "", 0, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL };
	static const char *const names[8] = {
		"node_boot_time_seconds", "node_forks_total", "node_load1",
		"node_load15", "node_load5", "node_procs_blocked",
		"node_procs_running", "up"
	};
	char inst[4][16];
	struct wire_counts counts;
	struct config cfg;
	struct buf body;
	struct batch b;
	uint64_t decoded;
	uint8_t *raw, *z = NULL;
	size_t len, zlen = 0;
	const char *e = NULL;
	int status;

	for (size_t k = 0; k < 32; k++) {
		if (k % 8 == 0)
			snprintf(inst[k / 8], sizeof(inst[0]), "host-%zu:9100", k / 8);
		prometheus__time_series__init(&ts[k]);
		prometheus__label__init(&lb[2 * k]);
		prometheus__label__init(&lb[2 * k + 1]);
		prometheus__sample__init(&sm[k]);
		lb[2 * k].name = "__name__";
		lb[2 * k].value = (char *)names[k % 8];
		lb[2 * k + 1].name = "instance";
		lb[2 * k + 1].value = inst[k / 8];
		lbp[2 * k] = &lb[2 * k];
		lbp[2 * k + 1] = &lb[2 * k + 1];
		sm[k].value = (double)k;
		sm[k].timestamp = 1700000000000;
		smp[k] = &sm[k];
		ts[k].n_labels = 2;
		ts[k].labels = &lbp[2 * k];
		ts[k].n_samples = 1;
		ts[k].samples = &smp[k];
		tsp[k] = &ts[k];
	}
	req.n_timeseries = 32;
	req.timeseries = tsp;
	len = prometheus__write_request__get_packed_size(&req);
	raw = malloc(len);
	CHECK(raw != NULL);
	prometheus__write_request__pack(&req, raw);
	config_defaults(&cfg);
	if ((z = compress(raw, len, &zlen)) == NULL) {
		free(raw);
		config_free(&cfg);
	}
	CHECK(z != NULL);
	body_set(&body, &cfg, z, zlen);
	status = ingest_body(&cfg, &r, &body, &b, &counts, &decoded, why,
			     sizeof(why));
	if (status != 0)
		e = err("status %d (%s)", status, why);
	else if (b.nchunks < 2)
		e = err("%zu chunks: the series are in one lane", b.nchunks);
	else
		e = chunks_equal(&b, raw, len, NULL, NULL, cfg.max_request_size);
	if (status == 0)
		batch_release(&b);
	buf_free(&body);
	free(z);
	free(raw);
	config_free(&cfg);
	CHECK_NOERR(e);
}

int main(void)
{
	RUN(test_fixtures_counts_and_lanes);
	RUN(test_lane_by_instance);
	RUN(test_as_sent_across_lanes);
	RUN(test_fixtures_tenant_label);
	RUN(test_on_series_called_per_series);
	RUN(test_on_series_once_when_sorted);
	RUN(test_decoded_size_over_limit);
	RUN(test_corrupt_snappy);
	RUN(test_split_fixtures);
	RUN(test_split_boundary);
	RUN(test_split_big_series);
	RUN(test_remote_write_2);
	RUN(test_bad_labels);
	RUN(test_tenant_label_limits);
	RUN(test_unsorted_sorted);
	ingest_thread_cleanup();
	wire_scratch_free();
	return unit_done();
}
