/*
 * decoder_check.h - what the decoder fuzz target checks on one input,
 * shared with tests/unit/test_fuzz_regress.c, which replays the inputs
 * kept under tests/fuzz/regress/decoder/.
 *
 * Every input is tried two ways:
 *
 *   as a request body:  ingest_check_length + ingest_body, the relay's own
 *                       path, without and with a tenant label; when it is
 *                       a valid snappy block, its decoded bytes also go
 *                       through the wire checks below;
 *   as a decoded WriteRequest: the wire checks, then ingest_body on its
 *                       snappy compression.
 *
 * The wire checks hold wire_scan against protobuf-c (the reference decoder
 * generated from proto/):
 *   - wire_scan accepts  =>  protobuf-c unpacks, with the same counts of
 *     series, samples, exemplars, histograms and metadata;
 *   - a wire_scan failure's reason is one non-empty printable line, and a
 *     short reason buffer is never overrun;
 *   - without a tenant label the output is the input, but for series whose
 *     labels came out of order: then it is sorted (scanning it again
 *     finds nothing to sort and copies it as it is);
 *   - with a tenant label, wire_scan accepts exactly what it accepts
 *     without (but for a series whose exported_ name would not fit); the
 *     output unpacks, and is the input with every series' labels sorted,
 *     carrying exactly
 *     one tenant label with the tenant's value, a tenant label the sender
 *     set kept as exported_<name> (exported_exported_<name> when that is
 *     taken, ...), as Prometheus keeps a conflicting scraped label
 *     (protobuf-c packs both to the same bytes);
 *   - the series hashes do not depend on whether the output is written,
 *     and rewriting the output again is accepted with the same counts.
 * The ingest checks: the status is the one wire_scan's result maps to; on
 * success the counts and series hashes are wire_scan's, the chunks
 * decompress to whole requests whose counts add up and whose concatenation
 * is the (rewritten) request sorted into delivery lanes (lanes.h), lane by
 * lane; on failure the batch holds nothing.
 *
 * decoder_check() returns NULL, or a one-line description of the first
 * mismatch (in a static buffer). Memory errors are left to the sanitizers.
 */
#ifndef RELAY_DECODER_CHECK_H
#define RELAY_DECODER_CHECK_H

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <snappy-c.h>

#include "buf.h"
#include "config.h"
#include "ingest.h"
#include "lanes.h"
#include "remote.pb-c.h"
#include "wire.h"
#include "writer.h"

/* Small limits keep each input fast; the captures in the seed corpus
 * decode to 22-72 KiB, so they pass and are cut into several chunks. */
#define DC_DECODED_MAX (128u << 10)
#define DC_REQUEST_MAX (16u << 10)
#define DC_WHY 512

/* Tenant labels: one that sorts first, one that replaces the "job" label
 * most series carry, the default, and a long one that sorts last (with the
 * long tenant its encoding takes more than 127 bytes). */
static const char *const dc_labels[] = {
	"A", "job", "tenant",
	"zz_tenant_label_with_a_long_name_0123456789_0123456789_0123456789_0123456789"
};
static const char *const dc_tenants[] = {
	"acme",
	"t0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcde"
};

static char dc_msg[1024];

static const char *dc_fail(const char *fmt, ...)
	__attribute__((format(printf, 1, 2)));
static const char *dc_fail(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(dc_msg, sizeof(dc_msg), fmt, ap);
	va_end(ap);
	return dc_msg;
}

/* Series hashes reported through wire_opts.on_series. */
struct dc_hashes {
	uint64_t *h; /* owned */
	size_t n, cap;
	int oom;
};

static void dc_on_series(void *arg, uint64_t hash)
{
	struct dc_hashes *hs = arg;
	uint64_t *p;

	if (hs->n == hs->cap) {
		p = realloc(hs->h, (hs->cap ? 2 * hs->cap : 64) * sizeof(*p));
		if (p == NULL) {
			hs->oom = 1;
			return;
		}
		hs->h = p;
		hs->cap = hs->cap ? 2 * hs->cap : 64;
	}
	hs->h[hs->n++] = hash;
}

static int dc_hashes_equal(const struct dc_hashes *a, const struct dc_hashes *b)
{
	return a->oom || b->oom ||
	       (a->n == b->n &&
		(a->n == 0 || memcmp(a->h, b->h, a->n * sizeof(*a->h)) == 0));
}

static int dc_counts_equal(const struct wire_counts *a,
			   const struct wire_counts *b)
{
	return a->series == b->series && a->samples == b->samples &&
	       a->exemplars == b->exemplars &&
	       a->histograms == b->histograms && a->metadata == b->metadata;
}

static void dc_counts_add(struct wire_counts *a, const struct wire_counts *b)
{
	a->series += b->series;
	a->samples += b->samples;
	a->exemplars += b->exemplars;
	a->histograms += b->histograms;
	a->metadata += b->metadata;
}

static const char *dc_counts_str(const struct wire_counts *c, char *s,
				 size_t n)
{
	snprintf(s, n, "series %llu samples %llu exemplars %llu "
		 "histograms %llu metadata %llu",
		 (unsigned long long)c->series, (unsigned long long)c->samples,
		 (unsigned long long)c->exemplars,
		 (unsigned long long)c->histograms,
		 (unsigned long long)c->metadata);
	return s;
}

static void dc_ref_counts(const Prometheus__WriteRequest *r,
			  struct wire_counts *c)
{
	size_t i;

	memset(c, 0, sizeof(*c));
	c->series = r->n_timeseries;
	c->metadata = r->n_metadata;
	for (i = 0; i < r->n_timeseries; i++) {
		c->samples += r->timeseries[i]->n_samples;
		c->exemplars += r->timeseries[i]->n_exemplars;
		c->histograms += r->timeseries[i]->n_histograms;
	}
}

/* Whether why is one non-empty line of printable ASCII. */
static int dc_why_ok(const char *why)
{
	const unsigned char *p = (const unsigned char *)why;

	if (*p == '\0')
		return 0;
	for (; *p != '\0'; p++)
		if (*p < 0x20 || *p > 0x7e)
			return 0;
	return 1;
}

/* Packs m; returns a malloc'd buffer (caller frees) or NULL. */
static uint8_t *dc_pack(const ProtobufCMessage *m, size_t *len)
{
	uint8_t *p;

	*len = protobuf_c_message_get_packed_size(m);
	if ((p = malloc(*len + 1)) != NULL)
		protobuf_c_message_pack(m, p);
	return p;
}

/* Whether a and b pack to the same bytes (1), not (0), or -1 when memory
 * is short. */
static int dc_packed_equal(const ProtobufCMessage *a, const ProtobufCMessage *b)
{
	size_t na, nb;
	uint8_t *pa = dc_pack(a, &na), *pb = dc_pack(b, &nb);
	int eq = pa == NULL || pb == NULL ? -1 :
		 na == nb && memcmp(pa, pb, na) == 0;

	free(pa);
	free(pb);
	return eq;
}

/* The name the sender's own label `name` takes in series in (malloc'd):
 * exported_<name>, one more exported_ while the series has that label. */
static char *dc_exported_name(const Prometheus__TimeSeries *in,
			      const char *name)
{
	size_t cap = strlen(name) + 10, j;
	char *ex = malloc(cap), *t;

	if (ex == NULL)
		return NULL;
	snprintf(ex, cap, "exported_%s", name);
	for (j = 0; j < in->n_labels; j++) {
		if (strcmp(in->labels[j]->name, ex) != 0)
			continue;
		cap += 9;
		if ((t = malloc(cap)) == NULL) {
			free(ex);
			return NULL;
		}
		snprintf(t, cap, "exported_%s", ex);
		free(ex);
		ex = t;
		j = (size_t)-1;
	}
	return ex;
}

/* The copy of a request whose labels were sorted (c counted it): scanning
 * it again finds nothing to sort and copies it as it is. Returns NULL or
 * what is wrong. */
static const char *dc_sorted_copy(const struct buf *copy,
				  const struct wire_counts *c)
{
	struct wire_counts c2;
	struct buf again;
	const char *e = NULL;
	char why[DC_WHY];
	int rc;

	memset(&c2, 0, sizeof(c2));
	buf_init(&again, copy->len + 1);
	rc = wire_scan(copy->p, copy->len, NULL, &c2, &again, why, sizeof(why));
	if (rc != WIRE_OK || c2.sorted != 0 || !dc_counts_equal(c, &c2) ||
	    again.len != copy->len ||
	    (copy->len > 0 && memcmp(again.p, copy->p, copy->len) != 0))
		e = dc_fail("the copy with labels sorted is not sorted, or not "
			    "the same request (rc %d)", rc);
	buf_free(&again);
	return e;
}

/*
 * Checks that out is ref with label name=value set on every series: each
 * series of out has that label exactly once, and out packs to the same
 * bytes as ref with the label put in each series' sorted label list (its
 * other labels stripped of unknown fields, as wire_scan writes them).
 * Returns NULL or what differs.
 */
static const char *dc_rewritten(const Prometheus__WriteRequest *ref,
				const Prometheus__WriteRequest *out,
				const char *name, const char *value)
{
	Prometheus__WriteRequest want = *ref;
	Prometheus__TimeSeries *series = NULL, **sp = NULL;
	Prometheus__Label *labels = NULL, **lp = NULL, tl = PROMETHEUS__LABEL__INIT;
	char **exnames = NULL;
	size_t i, j, k, nl = 0, seen;
	const char *e = NULL;
	int eq;

	if (out->n_timeseries != ref->n_timeseries)
		return dc_fail("rewrite: %zu series in, %zu out",
			       ref->n_timeseries, out->n_timeseries);
	for (i = 0; i < out->n_timeseries; i++) {
		const Prometheus__TimeSeries *ts = out->timeseries[i];

		for (j = 0, seen = 0; j < ts->n_labels; j++)
			if (strcmp(ts->labels[j]->name, name) == 0) {
				if (strcmp(ts->labels[j]->value, value) != 0)
					return dc_fail("rewrite: series %zu: "
						       "tenant label has another value",
						       i);
				seen++;
			}
		if (seen != 1)
			return dc_fail("rewrite: series %zu has %zu tenant labels",
				       i, seen);
		nl += ref->timeseries[i]->n_labels + 1;
	}

	tl.name = (char *)name;
	tl.value = (char *)value;
	series = calloc(ref->n_timeseries + 1, sizeof(*series));
	sp = calloc(ref->n_timeseries + 1, sizeof(*sp));
	labels = calloc(nl + 1, sizeof(*labels));
	lp = calloc(nl + 1, sizeof(*lp));
	if (series == NULL || sp == NULL || labels == NULL || lp == NULL)
		goto out;
	exnames = calloc(ref->n_timeseries + 1, sizeof(*exnames));
	if (exnames == NULL)
		goto out;
	for (i = 0, k = 0; i < ref->n_timeseries; i++) {
		const Prometheus__TimeSeries *in = ref->timeseries[i];
		Prometheus__Label **first = lp + k;
		size_t m, x;

		series[i] = *in;
		if ((exnames[i] = dc_exported_name(in, name)) == NULL)
			goto out;
		for (j = 0; j < in->n_labels; j++) {
			labels[k] = (Prometheus__Label)PROMETHEUS__LABEL__INIT;
			labels[k].name = strcmp(in->labels[j]->name, name) == 0 ?
					 exnames[i] : in->labels[j]->name;
			labels[k].value = in->labels[j]->value;
			lp[k] = &labels[k];
			k++;
		}
		lp[k++] = &tl;
		/* Sorted by name (insertion: the lists are short). */
		m = (size_t)(lp + k - first);
		for (j = 1; j < m; j++)
			for (x = j; x > 0 && strcmp(first[x - 1]->name,
						    first[x]->name) > 0; x--) {
				Prometheus__Label *t = first[x];
				first[x] = first[x - 1];
				first[x - 1] = t;
			}
		series[i].labels = first;
		series[i].n_labels = m;
		sp[i] = &series[i];
	}
	want.timeseries = sp;
	eq = dc_packed_equal(&want.base, &out->base);
	if (eq == 0) {
		for (i = 0; i < ref->n_timeseries; i++)
			if (dc_packed_equal(&sp[i]->base,
					    &out->timeseries[i]->base) == 0)
				break;
		if (i < ref->n_timeseries)
			e = dc_fail("rewrite: series %zu is not the input's "
				    "with the tenant label set", i);
		else
			e = dc_fail("rewrite: fields outside the series differ");
	}
out:
	for (i = 0; exnames != NULL && i < ref->n_timeseries; i++)
		free(exnames[i]);
	free(exnames);
	free(series);
	free(sp);
	free(labels);
	free(lp);
	return e;
}

/* wire_scan with a reason buffer of exactly whylen bytes (so that ASan sees
 * an overrun) and the reason checked when whylen is the full size. */
/* The reason of the last failed dc_scan with a full-size buffer. */
static char dc_last_why[DC_WHY];

static int dc_scan(const uint8_t *in, size_t len, const struct wire_opts *o,
		   struct wire_counts *c, struct buf *out, size_t whylen,
		   const char **e)
{
	char *why = whylen ? malloc(whylen) : NULL;
	int rc;

	*e = NULL;
	rc = wire_scan(in, len, o, c, out, why, why != NULL ? whylen : 0);
	if (rc != WIRE_OK && rc != WIRE_BAD && rc != WIRE_V2 &&
	    rc != WIRE_TOO_LARGE)
		*e = dc_fail("wire_scan returned %d", rc);
	else if (rc != WIRE_OK && why != NULL && whylen >= DC_WHY &&
		 !dc_why_ok(why))
		*e = dc_fail("wire_scan's reason is not one printable line: "
			     "\"%.200s\"", why);
	else if (rc != WIRE_OK && why != NULL && strlen(why) >= whylen)
		*e = dc_fail("wire_scan's reason overran its buffer");
	if (rc != WIRE_OK && why != NULL && whylen >= DC_WHY)
		snprintf(dc_last_why, sizeof(dc_last_why), "%s", why);
	free(why);
	return rc;
}

/* The wire checks on the decoded request raw[0..len). Returns NULL or what
 * failed. */
static const char *dc_wire(const uint8_t *raw, size_t len, unsigned pick)
{
	struct wire_opts o0, ot;
	struct wire_counts c0, c1, c2, cr;
	struct dc_hashes h1 = { 0 }, h2 = { 0 }, h3 = { 0 };
	struct buf out, out2, copy;
	Prometheus__WriteRequest *ref = NULL, *rew = NULL;
	const char *name = dc_labels[pick % 4], *value = dc_tenants[pick / 4 % 2];
	const char *e = NULL;
	char s1[160], s2[160];
	int rc0, rc1, rc;

	memset(&o0, 0, sizeof(o0));
	memset(&c0, 0, sizeof(c0));
	memset(&c1, 0, sizeof(c1));
	memset(&c2, 0, sizeof(c2));
	buf_init(&copy, len + 1);
	/* The rewrite adds at most a tenant label (under 200 bytes) and a
	 * longer length to each series, which takes at least 2 bytes. */
	buf_init(&out, len + (len / 2 + 1) * 256);
	buf_init(&out2, 2 * (len + (len / 2 + 1) * 256));

	rc0 = dc_scan(raw, len, &o0, &c0, &copy, DC_WHY, &e);
	if (e != NULL)
		goto out;
	ref = prometheus__write_request__unpack(NULL, len, raw);
	if (rc0 == WIRE_TOO_LARGE) {
		e = dc_fail("wire_scan without a rewrite returned WIRE_TOO_LARGE");
		goto out;
	}
	/* Short reason buffers: truncated, never overrun. */
	if (rc0 != WIRE_OK &&
	    ((rc = dc_scan(raw, len, &o0, NULL, NULL, 1, &e)) != rc0 ||
	     e != NULL ||
	     (rc = dc_scan(raw, len, &o0, NULL, NULL, 9, &e)) != rc0 ||
	     e != NULL)) {
		if (e == NULL)
			e = dc_fail("wire_scan returned %d with a short reason "
				    "buffer, %d with a long one", rc, rc0);
		goto out;
	}

	memset(&ot, 0, sizeof(ot));
	ot.tenant_label = name;
	ot.tenant_value = value;
	ot.on_series = dc_on_series;
	ot.arg = &h1;
	rc1 = dc_scan(raw, len, &ot, &c1, &out, DC_WHY, &e);
	if (e != NULL)
		goto out;
	if (rc0 == WIRE_OK && rc1 == WIRE_BAD &&
	    strstr(dc_last_why, "exported_") != NULL)
		goto out;        /* the renamed sender's label would not fit */
	if ((rc0 == WIRE_OK) != (rc1 == WIRE_OK)) {
		e = dc_fail("wire_scan returned %d without a tenant label, %d "
			    "with %s=%s", rc0, rc1, name, value);
		goto out;
	}
	if (rc0 != WIRE_OK)
		goto out;

	/* Accepted: protobuf-c must agree, count for count. */
	if (ref == NULL) {
		e = dc_fail("wire_scan accepted a request protobuf-c cannot "
			    "unpack");
		goto out;
	}
	dc_ref_counts(ref, &cr);
	if (!dc_counts_equal(&c0, &cr)) {
		e = dc_fail("counts differ: wire_scan %s; protobuf-c %s",
			    dc_counts_str(&c0, s1, sizeof(s1)),
			    dc_counts_str(&cr, s2, sizeof(s2)));
		goto out;
	}
	if (c0.sorted == 0 &&
	    (copy.len != len || (len > 0 && memcmp(copy.p, raw, len) != 0))) {
		e = dc_fail("without a tenant label the output is not the input");
		goto out;
	}
	if (c0.sorted > 0 && (e = dc_sorted_copy(&copy, &c0)) != NULL)
		goto out;
	if (!dc_counts_equal(&c0, &c1)) {
		e = dc_fail("counts differ with a tenant label: %s; without %s",
			    dc_counts_str(&c1, s1, sizeof(s1)),
			    dc_counts_str(&c0, s2, sizeof(s2)));
		goto out;
	}

	/* The rewritten request. */
	rew = prometheus__write_request__unpack(NULL, out.len, out.p);
	if (rew == NULL) {
		e = dc_fail("protobuf-c cannot unpack the rewritten request "
			    "(%s=%s)", name, value);
		goto out;
	}
	if ((e = dc_rewritten(ref, rew, name, value)) != NULL)
		goto out;

	/* Hashes without writing the output. */
	ot.arg = &h2;
	rc = dc_scan(raw, len, &ot, NULL, NULL, DC_WHY, &e);
	if (e != NULL)
		goto out;
	if (rc != WIRE_OK || !dc_hashes_equal(&h1, &h2)) {
		e = dc_fail("series hashes differ when the output is not "
			    "written (rc %d, %zu and %zu hashes)", rc, h1.n,
			    h2.n);
		goto out;
	}

	/* Rewriting the output again: accepted, the same counts (its tenant
	 * labels are kept as exported_ ones, so the bytes grow). */
	ot.arg = &h3;
	rc = dc_scan(out.p, out.len, &ot, &c2, &out2, DC_WHY, &e);
	if (e != NULL)
		goto out;
	if ((rc != WIRE_OK && !(rc == WIRE_BAD &&
				strstr(dc_last_why, "exported_") != NULL)) ||
	    (rc == WIRE_OK && !dc_counts_equal(&c1, &c2)))
		e = dc_fail("rewriting the rewritten request again fails or "
			    "counts otherwise (rc %d)", rc);
out:
	if (ref != NULL)
		prometheus__write_request__free_unpacked(ref, NULL);
	if (rew != NULL)
		prometheus__write_request__free_unpacked(rew, NULL);
	buf_free(&copy);
	buf_free(&out);
	buf_free(&out2);
	free(h1.h);
	free(h2.h);
	free(h3.h);
	return e;
}

/* The relay's configuration for the fuzzer: defaults with small sizes;
 * tight set, small label limits too. */
static void dc_config(struct config *cfg, int tight)
{
	config_defaults(cfg);
	cfg->max_body_size = DC_DECODED_MAX;
	cfg->max_decoded_size = DC_DECODED_MAX;
	cfg->max_request_size = DC_REQUEST_MAX;
	if (tight) {
		cfg->max_labels_per_series = 8;
		cfg->max_label_name_length = 16;
		cfg->max_label_value_length = 64;
	}
}

/* Checks the chunks of a batch that ingest_body filled from a request
 * whose final form (after any rewrite) is want[0..wlen) with counts c.
 * Returns NULL or what is wrong. */
/* Bytes in all lanes. */
static size_t dc_lanes_total(const struct buf *lanes)
{
	size_t n = 0;

	for (unsigned l = 0; l < LANES; l++)
		n += lanes[l].len;
	return n;
}

static const char *dc_chunks(const struct config *cfg, const struct batch *b,
			     const uint8_t *want, size_t wlen,
			     const struct wire_counts *c)
{
	struct wire_counts sum, cc;
	struct buf lanes[LANES];
	struct wire_opts lo;
	uint8_t *raw = NULL;
	size_t i, n, off[LANES] = {0}, first;
	const char *e = NULL;
	char s1[160], s2[160], why[64];

	memset(&sum, 0, sizeof(sum));
	/* An empty request leaves nothing to store. */
	if (b->nchunks == 0)
		return wlen == 0 ? NULL :
		       dc_fail("ingest accepted a request but left no chunk");
	/* What each lane must hold: the request sorted into lanes. */
	for (i = 0; i < LANES; i++)
		buf_init(&lanes[i], wlen + wlen / 2 + 64);
	memset(&lo, 0, sizeof(lo));
	lo.lane_out = lanes;
	if (wire_scan(want, wlen, &lo, NULL, NULL, why, sizeof(why)) != WIRE_OK)
		e = dc_fail("the request does not sort into lanes");
	for (i = 0; i < b->nchunks && e == NULL; i++) {
		const struct chunk *ch = &b->chunks[i];

		free(raw);
		raw = NULL;
		if (snappy_uncompressed_length((const char *)ch->block, ch->len,
					       &n) != SNAPPY_OK ||
		    n != ch->raw_len || (raw = malloc(n + 1)) == NULL ||
		    snappy_uncompress((const char *)ch->block, ch->len,
				      (char *)raw, &n) != SNAPPY_OK ||
		    n != ch->raw_len) {
			e = dc_fail("chunk %zu: not a snappy block of %u bytes",
				    i, (unsigned)ch->raw_len);
			break;
		}
		first = wire_next_field(raw, n, 0);
		if (n > cfg->max_request_size && first != n) {
			e = dc_fail("chunk %zu: %zu bytes, over max_request_size "
				    "and more than one field", i, n);
			break;
		}
		/* The body as it came: the whole request, all in its lane. */
		if (b->nchunks == 1 && ch->lane < LANES && n == wlen &&
		    memcmp(raw, want, n) == 0 &&
		    lanes[ch->lane].len == dc_lanes_total(lanes)) {
			off[ch->lane] = lanes[ch->lane].len;
		} else if (ch->lane >= LANES ||
			   off[ch->lane] + n > lanes[ch->lane].len ||
		    (n > 0 && memcmp(raw, lanes[ch->lane].p + off[ch->lane],
				     n) != 0)) {
			e = dc_fail("chunk %zu: not the next %zu bytes of its "
				    "lane", i, n);
			break;
		} else {
			off[ch->lane] += n;
		}
		memset(&cc, 0, sizeof(cc));
		if (wire_scan(raw, n, NULL, &cc, NULL, why, sizeof(why)) !=
			    WIRE_OK ||
		    !dc_counts_equal(&cc, &ch->counts)) {
			e = dc_fail("chunk %zu: its counts (%s) are not what it "
				    "holds", i,
				    dc_counts_str(&ch->counts, s1, sizeof(s1)));
			break;
		}
		dc_counts_add(&sum, &cc);
	}
	for (i = 0; i < LANES; i++) {
		if (e == NULL && off[i] != lanes[i].len)
			e = dc_fail("the chunks hold %zu of lane %zu's %zu bytes",
				    off[i], i, lanes[i].len);
		buf_free(&lanes[i]);
	}
	if (e == NULL && !dc_counts_equal(&sum, c))
		e = dc_fail("the chunks' counts (%s) do not add up to the "
			    "request's (%s)", dc_counts_str(&sum, s1, sizeof(s1)),
			    dc_counts_str(c, s2, sizeof(s2)));
	free(raw);
	return e;
}

/*
 * Runs the snappy body[0..len) through ingest_check_length and ingest_body
 * (tenant label name, or NULL for none) and checks the outcome against
 * what wire_scan makes of its decoded bytes. Returns NULL or what failed.
 */
static const char *dc_ingest(const struct config *cfg, const uint8_t *body,
			     size_t len, const char *name, const char *tenant)
{
	struct ingest_req ir;
	struct batch b;
	struct wire_counts counts, want;
	struct wire_opts o;
	struct buf in, out;
	struct dc_hashes hw = { 0 }, hi = { 0 };
	uint8_t *raw = NULL;
	uint64_t decoded = 0, decoded2 = 0;
	size_t n = 0;
	const char *e = NULL;
	char why[DC_WHY], s1[160], s2[160];
	int status, expect, rc, snappy_ok;

	memset(&b, 0, sizeof(b));
	buf_init(&in, cfg->max_body_size);
	buf_init(&out, cfg->max_decoded_size + cfg->max_decoded_size / 2);

	/* The length check alone. */
	why[0] = '\0';
	status = ingest_check_length(cfg, body, len, &decoded, why, sizeof(why));
	snappy_ok = snappy_uncompressed_length((const char *)body, len, &n) ==
		    SNAPPY_OK;
	expect = !snappy_ok ? 400 : n > cfg->max_decoded_size ? 413 : 0;
	if (status != expect || (snappy_ok && decoded != n)) {
		e = dc_fail("ingest_check_length returned %d (decoded %llu), "
			    "expected %d (decoded %zu)", status,
			    (unsigned long long)decoded, expect, n);
		goto out;
	}
	if (status != 0 && !dc_why_ok(why)) {
		e = dc_fail("ingest_check_length's reason is not one printable "
			    "line");
		goto out;
	}

	/* What ingest_body should answer: decode and scan here. */
	if (status == 0) {
		if ((raw = malloc(n + 1)) == NULL)
			goto out;
		if (snappy_uncompress((const char *)body, len, (char *)raw, &n) !=
			    SNAPPY_OK || n != decoded) {
			expect = 400;
		} else {
			memset(&o, 0, sizeof(o));
			memset(&want, 0, sizeof(want));
			o.tenant_label = name;
			o.tenant_value = tenant;
			o.max_labels_per_series = (size_t)cfg->max_labels_per_series;
			o.max_label_name_length = (size_t)cfg->max_label_name_length;
			o.max_label_value_length = (size_t)cfg->max_label_value_length;
			o.on_series = dc_on_series;
			o.arg = &hw;
			rc = wire_scan(raw, n, &o, &want, &out, why,
				       sizeof(why));
			expect = rc == WIRE_OK ? 0 : rc == WIRE_V2 ? 415 :
				 rc == WIRE_TOO_LARGE ? 413 : 400;
		}
	}

	if (buf_append(&in, body, len) < 0)
		goto out;
	memset(&ir, 0, sizeof(ir));
	ir.tenant = name != NULL ? tenant : "";
	ir.tlen = strlen(ir.tenant);
	ir.tenant_label = name;
	ir.on_series = dc_on_series;
	ir.arg = &hi;
	why[0] = '\0';
	status = ingest_body(cfg, &ir, &in, &b, &counts, &decoded2, why,
			     sizeof(why));
	if (status == 503)      /* out of memory: not a finding */
		goto out;
	if (status != expect) {
		e = dc_fail("ingest_body returned %d, expected %d (%s=%s): %.200s",
			    status, expect, name ? name : "-",
			    name ? tenant : "-", why);
		goto out;
	}
	if (status != 0) {
		if (!dc_why_ok(why))
			e = dc_fail("ingest_body's reason is not one printable "
				    "line: \"%.200s\"", why);
		else if (b.nchunks != 0 || b.chunks != NULL)
			e = dc_fail("ingest_body failed with %d but left %zu "
				    "chunks", status, b.nchunks);
		goto out;
	}
	if (!dc_counts_equal(&counts, &want)) {
		e = dc_fail("ingest_body counted %s, wire_scan %s",
			    dc_counts_str(&counts, s1, sizeof(s1)),
			    dc_counts_str(&want, s2, sizeof(s2)));
		goto out;
	}
	if (!dc_hashes_equal(&hw, &hi)) {
		e = dc_fail("ingest_body reported other series hashes than "
			    "wire_scan (%zu and %zu)", hi.n, hw.n);
		goto out;
	}
	/* out is the request as wire_scan copies it: as it came, or with
	 * labels set or sorted. */
	e = dc_chunks(cfg, &b, out.p, out.len, &counts);
out:
	batch_release(&b);
	buf_free(&in);
	buf_free(&out);
	free(raw);
	free(hw.h);
	free(hi.h);
	return e;
}

/* Both ingest runs on one body: without a tenant label and with one. */
static const char *dc_ingest_both(const uint8_t *body, size_t len,
				  unsigned pick)
{
	static struct config cfg[2];
	static int ready;
	const struct config *c = &cfg[pick / 8 % 2];
	const char *e;

	if (!ready) {
		dc_config(&cfg[0], 0);
		dc_config(&cfg[1], 1);
		ready = 1;
	}
	if ((e = dc_ingest(c, body, len, NULL, NULL)) != NULL)
		return e;
	return dc_ingest(c, body, len, dc_labels[pick % 4],
			 dc_tenants[pick / 4 % 2]);
}

/* A few bits taken from the input to pick the tenant label, its value and
 * the limits, so that the fuzzer can steer them. */
static unsigned dc_pick(const uint8_t *data, size_t size)
{
	return size == 0 ? 0 : (unsigned)(data[size - 1] ^ (size & 0xff));
}

static const char *decoder_check(const uint8_t *data, size_t size)
{
	unsigned pick = dc_pick(data, size);
	const char *e;
	uint8_t *raw = NULL, *z = NULL;
	size_t n, zn;

	/* As a request body. */
	if ((e = dc_ingest_both(data, size, pick)) != NULL)
		return e;
	if (snappy_uncompressed_length((const char *)data, size, &n) ==
		    SNAPPY_OK && n <= DC_DECODED_MAX &&
	    (raw = malloc(n + 1)) != NULL &&
	    snappy_uncompress((const char *)data, size, (char *)raw, &n) ==
		    SNAPPY_OK)
		e = dc_wire(raw, n, pick);
	free(raw);
	if (e != NULL)
		return e;

	/* As a decoded WriteRequest. */
	if ((e = dc_wire(data, size, pick)) != NULL || size > DC_DECODED_MAX)
		return e;
	zn = snappy_max_compressed_length(size);
	if ((z = malloc(zn + 1)) != NULL &&
	    snappy_compress((const char *)data, size, (char *)z, &zn) ==
		    SNAPPY_OK)
		e = dc_ingest_both(z, zn, pick);
	free(z);
	return e;
}

#endif
