/*
 * wire.c - one pass over a decoded Remote Write 1.0 WriteRequest (see
 * wire.h): validate, count, and write a copy with the tenant label set.
 *
 * The request is read as raw protobuf. A series is scanned once to collect
 * pointers to its labels (checked as they go by) and the extent of its other
 * fields; it is then written as its labels in canonical encoding, with the
 * tenant label set, followed by the other fields copied byte for byte:
 *
 *   0x0a len(series)
 *     0x0a len(label) 0x0a len(name) name 0x12 len(value) value   per label
 *     samples, exemplars, histograms, unknown fields               verbatim
 *
 * Labels that already come in that encoding (Prometheus sends nothing
 * else) are copied in runs rather than re-encoded. The series hash is taken
 * over the canonical label encoding, so it depends on the final label set
 * only, never on how the sender encoded it. Label names and values are
 * held to the rules in labels.h.
 *
 * This file holds the scanner itself (fields, labels, the checks, the
 * loop over series); a series' output, hash and lane are wire_emit.c's,
 * its labels sorted or relabeled wire_series.c's. What the three share
 * is in wire_int.h.
 */
#include "wire_int.h"
#include "lanes.h"
#include "relabel_cache.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

static const char *const field_errors[] = {
	[F_TRUNC_VARINT] = "truncated varint",
	[F_TRUNC_FIXED] = "truncated fixed-size field",
	[F_LONG_VARINT] = "overlong varint",
	[F_FIELD0] = "field number 0",
	[F_WIRETYPE] = "invalid wire type",
	[F_LENGTH] = "length past the end of the message",
};

/* What the fields of a nested message must be (see scan_msg). */
enum kind {
	K_ANY = 0,     /* unknown: any valid wire type, skipped */
	K_VARINT,      /* singular varint */
	K_FIXED64,     /* singular 64-bit */
	K_UTF8,        /* string */
	K_REP_VARINT,  /* repeated varint, packed or not */
	K_REP_FIXED64, /* repeated 64-bit, packed or not */
	K_SPAN,        /* BucketSpan message */
	K_LABEL        /* exemplar Label message */
};

static const uint8_t sample_kinds[] = { [1] = K_FIXED64, [2] = K_VARINT };
static const uint8_t exemplar_kinds[] = {
	[1] = K_LABEL, [2] = K_FIXED64, [3] = K_VARINT
};
static const uint8_t span_kinds[] = { [1] = K_VARINT, [2] = K_VARINT };
static const uint8_t metadata_kinds[] = {
	[1] = K_VARINT, [2] = K_UTF8, [4] = K_UTF8, [5] = K_UTF8
};
static const uint8_t histogram_kinds[] = {
	[1] = K_VARINT,       [2] = K_FIXED64,  [3] = K_FIXED64,
	[4] = K_VARINT,       [5] = K_FIXED64,  [6] = K_VARINT,
	[7] = K_FIXED64,      [8] = K_SPAN,     [9] = K_REP_VARINT,
	[10] = K_REP_FIXED64, [11] = K_SPAN,    [12] = K_REP_VARINT,
	[13] = K_REP_FIXED64, [14] = K_VARINT,  [15] = K_VARINT
};

/* Per-thread scratch for series with many labels, kept between calls
 * until wire_scratch_free. */
static __thread struct label *scratch_labels;
static __thread size_t scratch_labels_cap;

/* Formats the reason into s->why, prefixed with the series or metadata
 * entry being scanned. Returns rc. */
int wire_fail(struct scan *s, int rc, const char *fmt, ...)
{
	va_list ap;
	int n = 0;

	if (s->why == NULL || s->whylen == 0)
		return rc;
	if (s->what != NULL)
		n = snprintf(s->why, s->whylen, "%s %" PRIu64 ": ", s->what,
			     s->index);
	if (n < 0 || (size_t)n >= s->whylen)
		return rc;
	va_start(ap, fmt);
	vsnprintf(s->why + n, s->whylen - (size_t)n, fmt, ap);
	va_end(ap);
	return rc;
}

/* field_parse with the reason written on failure. Returns 0 or WIRE_BAD. */
static inline int next_field(struct scan *s, const uint8_t *p,
			     const uint8_t *end, struct field *f)
{
	int rc = field_parse(p, end, f);

	if (rc == F_OK)
		return 0;
	if (rc == F_WIRETYPE)
		wire_fail(s, WIRE_BAD, "invalid wire type %u at byte %zu",
			  (unsigned)(*p & 7), (size_t)(p - s->base));
	else
		wire_fail(s, WIRE_BAD, "%s at byte %zu", field_errors[rc],
			  (size_t)(p - s->base));
	return WIRE_BAD;
}

/* The reason for a known field with the wrong wire type. Returns WIRE_BAD. */
static int wrong_type(struct scan *s, const char *msg, const struct field *f)
	__attribute__((cold, noinline));
static int wrong_type(struct scan *s, const char *msg, const struct field *f)
{
	return wire_fail(s, WIRE_BAD, "wrong wire type %u for %s field %u at byte %zu",
			 f->type, msg, f->num, (size_t)(f->start - s->base));
}

/* Reads the Label message in field f into *l (the last name and value
 * win, as protobuf merges). Returns 0 or WIRE_BAD. */
static int label_read(struct scan *s, const struct field *f, struct label *l)
{
	const uint8_t *p;
	struct field g;

	l->name = l->value = f->data;
	l->nlen = l->vlen = 0;
	l->enc = NULL;
	for (p = f->data; p < f->end; p = g.end) {
		if (next_field(s, p, f->end, &g) < 0)
			return WIRE_BAD;
		if (g.num != 1 && g.num != 2)
			continue;
		if (g.type != WT_LEN)
			return wrong_type(s, "label", &g);
		if (g.num == 1) {
			l->name = g.data;
			l->nlen = (size_t)(g.end - g.data);
		} else {
			l->value = g.data;
			l->vlen = (size_t)(g.end - g.data);
		}
	}
	l->size = label_size(l->nlen, l->vlen);
	return 0;
}

/*
 * The usual shapes, read without the general parser: a label field
 * 0x0a len 0x0a nlen name 0x12 vlen value, and a sample field
 * 0x12 len 0x09 value(8) 0x10 timestamp, all lengths in one byte.
 * Each returns the end of the field at p, or NULL when it has another
 * shape (the general parser then takes it, and reports any error).
 */
static inline const uint8_t *label_fast(const uint8_t *p, const uint8_t *end,
					struct label *l)
{
	size_t len, nlen;

	if (end - p < 6 || p[0] != 0x0a || (len = p[1]) >= 0x80 ||
	    len + 2 > (size_t)(end - p) || p[2] != 0x0a ||
	    (nlen = p[3]) >= 0x80 || nlen + 4 > len || p[nlen + 4] != 0x12 ||
	    nlen + 4 + p[nlen + 5] != len)
		return NULL;
	l->name = p + 4;
	l->nlen = nlen;
	l->value = p + nlen + 6;
	l->vlen = p[nlen + 5];
	l->enc = p;
	l->size = len + 2;
	return p + len + 2;
}

static inline const uint8_t *sample_fast(const uint8_t *p, const uint8_t *end)
{
	const uint8_t *q, *e;
	size_t len;
	uint64_t v;

	if (end - p < 13 || p[0] != 0x12 || (len = p[1]) < 11 || len >= 0x80 ||
	    len + 2 > (size_t)(end - p) || p[2] != 0x09 || p[11] != 0x10)
		return NULL;
	q = p + 12;
	e = p + len + 2;
	if (varint_get(&q, e, 10, &v) != F_OK || q != e)
		return NULL;
	return e;
}

/*
 * Validates the nested message p[0..end) whose fields are described by
 * kinds[0..nkinds) (msg names it in reasons). Nests at most two deep
 * (histogram -> span, exemplar -> label). Returns 0 or WIRE_BAD.
 */
static int scan_msg(struct scan *s, const uint8_t *kinds, size_t nkinds,
		    const char *msg, const uint8_t *p, const uint8_t *end)
{
	char name[LABELS_QUOTE_SIZE];
	const uint8_t *q;
	struct label l;
	struct field f;
	uint64_t v;
	int ok;

	for (; p < end; p = f.end) {
		if (next_field(s, p, end, &f) < 0)
			return WIRE_BAD;
		switch (f.num < nkinds ? kinds[f.num] : K_ANY) {
		case K_VARINT:
			ok = f.type == WT_VARINT;
			break;
		case K_FIXED64:
			ok = f.type == WT_FIXED64;
			break;
		case K_UTF8:
			if ((ok = f.type == WT_LEN) &&
			    !labels_utf8_valid(f.data, (size_t)(f.end - f.data)))
				return wire_fail(s, WIRE_BAD,
						 "invalid UTF-8 in %s field %u",
						 msg, f.num);
			break;
		case K_REP_VARINT:
			ok = f.type == WT_VARINT || f.type == WT_LEN;
			for (q = f.data; ok && f.type == WT_LEN && q < f.end;)
				if (varint_get(&q, f.end, 10, &v) != F_OK)
					return wire_fail(s, WIRE_BAD,
							 "bad packed varint in field %u at byte %zu",
							 f.num, (size_t)(q - s->base));
			break;
		case K_REP_FIXED64:
			if ((ok = f.type == WT_FIXED64 || f.type == WT_LEN) &&
			    f.type == WT_LEN && (f.end - f.data) % 8 != 0)
				return wire_fail(s, WIRE_BAD,
						 "packed doubles in %s field %u not a multiple of 8 bytes",
						 msg, f.num);
			break;
		case K_SPAN:
			if ((ok = f.type == WT_LEN) &&
			    scan_msg(s, span_kinds, sizeof(span_kinds),
				     "bucket span", f.data, f.end) < 0)
				return WIRE_BAD;
			break;
		case K_LABEL: /* a valid name; any UTF-8 value, even empty */
			if (!(ok = f.type == WT_LEN))
				break;
			if (label_read(s, &f, &l) < 0)
				return WIRE_BAD;
			if (!labels_name_valid(l.name, l.nlen) ||
			    !labels_utf8_valid(l.value, l.vlen))
				return wire_fail(s, WIRE_BAD,
						 "invalid exemplar label \"%s\"",
						 labels_quote(name, l.name, l.nlen));
			break;
		default:
			ok = 1;
			break;
		}
		if (!ok)
			return wrong_type(s, msg, &f);
	}
	return 0;
}

/* label_check of a label that came out of order: everything but the
 * order (the series is sorted once all its labels are in). Out of line,
 * so that the one inlined label_check of the scanner's loop stays as it
 * was for sorted series. */
static int label_check_unordered(const struct wire_opts *o,
				 const struct label *l)
	__attribute__((cold, noinline));
static int label_check_unordered(const struct wire_opts *o,
				 const struct label *l)
{
	return label_check(o, l, NULL);
}

/* Writes the reason for label_check's rc. Returns WIRE_BAD. */
int wire_label_error(struct scan *s, const struct label *l,
		     const struct label *prev, int rc)
{
	char q[LABELS_QUOTE_SIZE], r[LABELS_QUOTE_SIZE];

	labels_quote(q, l->name, l->nlen);
	switch (rc) {
	case L_EMPTY_NAME:
		return wire_fail(s, WIRE_BAD, "empty label name");
	case L_NAME_LONG:
		return wire_fail(s, WIRE_BAD, "label name \"%s\" longer than %zu bytes",
				 q, s->o->max_label_name_length);
	case L_NAME_BAD:
		return wire_fail(s, WIRE_BAD, "invalid label name \"%s\"", q);
	case L_DUPLICATE:
		return wire_fail(s, WIRE_BAD, "duplicate label name \"%s\"", q);
	case L_UNSORTED:
		return wire_fail(s, WIRE_BAD, "labels not sorted: \"%s\" after \"%s\"",
				 q, labels_quote(r, prev->name, prev->nlen));
	case L_EMPTY_VALUE:
		return wire_fail(s, WIRE_BAD, "empty label value for \"%s\"", q);
	case L_VALUE_LONG:
		return wire_fail(s, WIRE_BAD,
				 "value of label \"%s\" longer than %zu bytes", q,
				 s->o->max_label_value_length);
	case L_VALUE_UTF8:
		return wire_fail(s, WIRE_BAD, "invalid UTF-8 in value of \"%s\"", q);
	default:
		return wire_fail(s, WIRE_BAD, "invalid metric name \"%s\"",
				 labels_quote(r, l->value, l->vlen));
	}
}

/*
 * Reads the series field at p (< end) and sets *next past it: a label
 * into *l (returns 1), or another field, which is checked and counted
 * (returns 0). Returns WIRE_BAD when it is malformed.
 */
static inline int series_field(struct scan *s, const uint8_t *p,
			       const uint8_t *end, struct label *l,
			       const uint8_t **next)
{
	struct field f;

	if ((*next = label_fast(p, end, l)) != NULL)
		return 1;
	if ((*next = sample_fast(p, end)) != NULL) {
		s->n.samples++;
		return 0;
	}
	if (next_field(s, p, end, &f) < 0)
		return WIRE_BAD;
	*next = f.end;
	if (f.num >= 1 && f.num <= 4 && f.type != WT_LEN)
		return wrong_type(s, "series", &f);
	switch (f.num) {
	case 1:
		return label_read(s, &f, l) < 0 ? WIRE_BAD : 1;
	case 2:
		s->n.samples++;
		return scan_msg(s, sample_kinds, sizeof(sample_kinds), "sample",
				f.data, f.end);
	case 3:
		s->n.exemplars++;
		return scan_msg(s, exemplar_kinds, sizeof(exemplar_kinds),
				"exemplar", f.data, f.end);
	case 4:
		s->n.histograms++;
		return scan_msg(s, histogram_kinds, sizeof(histogram_kinds),
				"histogram", f.data, f.end);
	default:
		return 0;
	}
}

/* Hashes the labels of the series field at p (< end) when they come
 * first in it, each canonical (the relabel cache's key, wire_series.c),
 * into the next slot of s->ahead. Returns it, or NULL. */
static const struct wire_ahead *ahead_hash(struct scan *s, const uint8_t *p,
					   const uint8_t *end)
{
	struct wire_ahead *a;
	const uint8_t *q, *next;
	struct field f;
	struct label l;

	if (*p != 0x0a || field_parse(p, end, &f) != F_OK)
		return NULL;
	for (q = f.data; q < f.end && (next = label_fast(q, f.end, &l)) != NULL;
	     q = next)
		;
	if (q == f.data)
		return NULL;
	a = &s->ahead[s->nahead++ & 3];
	a->field = p;
	a->next = f.end;
	a->key = f.data;
	a->klen = (size_t)(q - f.data);
	a->h = relabel_cache_hash(s->o->relabel_scope, a->key, a->klen);
	return a;
}

void wire_series_ahead(struct scan *s, const uint8_t *p, const uint8_t *end)
{
	const struct wire_ahead *a;
	struct field f;

	/* The next three series: each one's bucket is asked for when it is
	 * third in line, the entry it leads to when it is next (the bucket
	 * has come by then). */
	for (int k = 1; k <= 3 && p < end; k++) {
		a = NULL;
		for (unsigned i = 0; i < 4; i++)
			if (s->ahead[i].field == p)
				a = &s->ahead[i];
		if (a != NULL && k == 1)
			relabel_cache_prefetch(s->o->relabel_cache, a->h, 1);
		else if (a == NULL && (a = ahead_hash(s, p, end)) != NULL)
			relabel_cache_prefetch(s->o->relabel_cache, a->h, 0);
		if (a != NULL)
			p = a->next;
		else if (field_parse(p, end, &f) == F_OK)
			p = f.end;
		else
			break;
	}
}

uint64_t wire_ahead_hash(const struct scan *s, const uint8_t *key,
			 size_t klen)
{
	for (unsigned i = 0; i < 4; i++)
		if (s->ahead[i].key == key && s->ahead[i].klen == klen)
			return s->ahead[i].h;
	return relabel_cache_hash(s->o->relabel_scope, key, klen);
}

/* Makes room for 2n labels in the thread's scratch and moves the n at l
 * there. Returns the scratch (which keeps owning it), or NULL when memory
 * is short. */
struct label *wire_scratch_grow(struct label *l, size_t n)
{
	struct label *p = scratch_labels;

	if (2 * n > scratch_labels_cap) {
		if ((p = malloc(2 * n * sizeof(*p))) == NULL)
			return NULL;
		memcpy(p, l, n * sizeof(*p));
		free(scratch_labels);
		scratch_labels = p;
		scratch_labels_cap = 2 * n;
	} else if (l != p) {
		memcpy(p, l, n * sizeof(*p));
	}
	return p;
}

/*
 * Scans one TimeSeries p[0..end), counts it, reports its hash, and in
 * rewrite mode appends it to s->out with the tenant label set.
 * Returns 0, WIRE_BAD or WIRE_TOO_LARGE.
 */
static int scan_series(struct scan *s, const uint8_t *p, const uint8_t *end)
{
	struct label stack[WIRE_STACK_LABELS], *prev;
	size_t cap = WIRE_STACK_LABELS, max = s->o->max_labels_per_series;
	const uint8_t *start = p, *q;
	uint64_t samples = s->n.samples, histograms = s->n.histograms,
		 exemplars = s->n.exemplars;
	struct series r;
	int rc, d = 1;

	memset(&r, 0, sizeof(r));
	r.l = stack;
	r.at = SIZE_MAX;
	r.drop = SIZE_MAX;
	r.ex = SIZE_MAX;
	for (; p < end; p = q) {
		if (r.n == cap) {
			if ((r.l = wire_scratch_grow(r.l, r.n)) == NULL)
				return wire_fail(s, WIRE_TOO_LARGE,
						 "out of memory for labels");
			cap = 2 * r.n;
		}
		if ((rc = series_field(s, p, end, &r.l[r.n], &q)) < 0)
			return rc;
		if (rc == 0) {
			r.rest = r.rest != NULL ? r.rest : p;
			r.other += (size_t)(q - p);
			continue;
		}
		if (max && r.n == max)
			return wire_fail(s, WIRE_BAD, "more than %zu labels", max);
		prev = r.n > 0 ? &r.l[r.n - 1] : NULL;
		if ((rc = label_check(s->o, &r.l[r.n], prev)) != L_OK) {
			/* Out of order: sorted below, once all are in. */
			if (rc != L_UNSORTED ||
			    (rc = label_check_unordered(s->o, &r.l[r.n])) != L_OK)
				return wire_label_error(s, &r.l[r.n], prev, rc);
			r.unsorted = 1;
		}
		r.llen += r.l[r.n++].size;
		r.interleaved |= r.rest != NULL;
	}
	if (r.n == 0)
		return wire_fail(s, WIRE_BAD, "no labels");
	if (r.unsorted && (rc = wire_series_sort(s, &r)) < 0)
		return rc;
	if (s->o->relabel != NULL && (rc = wire_series_relabel(s, &r, &cap)) != 0) {
		uint64_t gone = s->n.samples - samples +
				s->n.histograms - histograms;

		if (rc < 0)
			return rc;
		s->n.series--;
		if (rc == WIRE_REFUSED) {
			s->n.invalid_series++;
			s->n.invalid_samples += gone;
		} else {
			s->n.series_dropped++;
			s->n.samples_dropped += gone;
		}
		s->n.samples = samples;
		s->n.histograms = histograms;
		s->n.exemplars = exemplars;
		return 0;
	}
	for (size_t i = 0; s->dname != NULL && i < r.n; i++) {
		if (name_cmp(r.l[i].name, r.l[i].nlen, s->dname, s->dnlen) == 0) {
			r.drop = i;
			r.llen -= r.l[i].size;
			break;
		}
	}
	if (s->tname != NULL) {
		for (r.at = 0; r.at < r.n; r.at++)
			if ((d = name_cmp(r.l[r.at].name, r.l[r.at].nlen,
					  s->tname, s->tnlen)) >= 0)
				break;
		r.replace = r.at < r.n && d == 0;
		r.llen += label_size(s->tnlen, s->tvlen) -
			  (r.replace ? r.l[r.at].size : 0);
		if (r.replace && (rc = wire_exported_name(s, &r)) != 0)
			return rc;
	}
	if (s->rewrite || s->o->on_series != NULL || s->o->lane_runs != NULL)
		return wire_series_emit(s, &r, start, end);
	return 0;
}

/* Adds what one top-level field added to the counts (now - before) to c. */
static inline void lane_count(struct wire_counts *c,
			      const struct wire_counts *before,
			      const struct wire_counts *now)
{
	c->series += now->series - before->series;
	c->samples += now->samples - before->samples;
	c->histograms += now->histograms - before->histograms;
	c->exemplars += now->exemplars - before->exemplars;
	c->metadata += now->metadata - before->metadata;
}

/* Ends the field just scanned (at end) in s->lane: the last run grows,
 * or a new run starts. Returns 0, or WIRE_NOMEM when memory is short.
 * Out of line, so that the scanner's loop inlines label_check as before. */
static int lane_run(struct scan *s, const uint8_t *end)
	__attribute__((noinline));
static int lane_run(struct scan *s, const uint8_t *end)
{
	struct lane_runs *lr = s->o->lane_runs;
	size_t cap;
	struct lane_run *p;

	if (lr->n > 0 && lr->run[lr->n - 1].lane == s->lane) {
		lr->run[lr->n - 1].end = (uint32_t)(end - s->base);
		return 0;
	}
	if (lr->n == lr->cap) {
		cap = lr->cap ? 2 * lr->cap : 64;
		if ((p = realloc(lr->run, cap * sizeof(*p))) == NULL)
			return wire_fail(s, WIRE_NOMEM, "out of memory for lanes");
		lr->run = p;
		lr->cap = cap;
	}
	lr->run[lr->n].end = (uint32_t)(end - s->base);
	lr->run[lr->n++].lane = s->lane;
	return 0;
}

int wire_scan(const uint8_t *in, size_t len, const struct wire_opts *o,
	      struct wire_counts *c, struct buf *out, char *why, size_t whylen)
{
	static const struct wire_opts none;
	const uint8_t *p = in, *end = len ? in + len : in;
	struct scan s;
	struct field f;
	int rc;

	memset(&s, 0, sizeof(s));
	s.o = o != NULL ? o : &none;
	s.out = out;
	s.base = in;
	s.why = why;
	s.whylen = whylen;
	if (why != NULL && whylen > 0)
		why[0] = '\0';
	if (s.o->tenant_label != NULL) {
		s.tname = (const uint8_t *)s.o->tenant_label;
		s.tvalue = (const uint8_t *)(s.o->tenant_value != NULL ?
					     s.o->tenant_value : "");
		s.tnlen = strlen((const char *)s.tname);
		s.tvlen = strlen((const char *)s.tvalue);
		if (label_size(s.tnlen, s.tvlen) <= sizeof(s.tenc))
			s.tenclen = (size_t)(wire_put_label(s.tenc, s.tname, s.tnlen,
							    s.tvalue, s.tvlen) -
					     s.tenc);
	}
	if (s.o->drop_label != NULL) {
		s.dname = (const uint8_t *)s.o->drop_label;
		s.dnlen = strlen(s.o->drop_label);
	}
	s.rewrite = out != NULL && (s.tname != NULL || s.dname != NULL ||
				    s.o->admit != NULL ||
				    s.o->relabel != NULL);
	if (s.o->lane_out != NULL) {
		s.lanes = s.o->lane_out;
		s.rewrite = 1;
	}
	for (; p < end; p = f.end) {
		struct wire_counts before = s.n;

		if (next_field(&s, p, end, &f) < 0)
			return WIRE_BAD;
		if ((f.num == 1 || f.num == 3) && f.type != WT_LEN)
			return wrong_type(&s, "request", &f);
		if (f.num == 4 || f.num == 5)
			return wire_fail(&s, WIRE_V2,
					 "Remote Write 2.0 body (field %u); this endpoint takes 1.0 only",
					 f.num);
		s.lane = 0;
		if (f.num == 1) {
			s.what = "series";
			s.field = f.start;
			if (s.o->admit != NULL)
				s.before = s.n;
			s.index = s.n.series++;
			if (s.o->relabel != NULL && s.o->relabel_cache != NULL)
				wire_series_ahead(&s, f.end, end);
			if ((rc = scan_series(&s, f.data, f.end)) < 0)
				return rc;
		} else if (f.num == 3) {
			s.what = "metadata";
			s.index = s.n.metadata++;
			if (scan_msg(&s, metadata_kinds, sizeof(metadata_kinds),
				     "metadata", f.data, f.end) < 0)
				return WIRE_BAD;
		}
		s.what = NULL;
		if (s.rewrite && f.num != 1 &&
		    buf_append(s.lanes ? &s.lanes[0] : out, f.start,
			       (size_t)(f.end - f.start)) < 0)
			return wire_fail(&s, WIRE_TOO_LARGE,
					 "decoded request over the size limit");
		if (s.o->lane_counts != NULL)
			lane_count(&s.o->lane_counts[s.lane], &before, &s.n);
		if (s.o->lane_runs != NULL && lane_run(&s, f.end) < 0)
			return WIRE_NOMEM;
	}
	if (out != NULL && !s.rewrite && buf_append(out, in, len) < 0)
		return wire_fail(&s, WIRE_TOO_LARGE,
				 "decoded request over the size limit");
	if (c != NULL) {
		c->series += s.n.series;
		c->series_dropped += s.n.series_dropped;
		c->samples_dropped += s.n.samples_dropped;
		c->invalid_series += s.n.invalid_series;
		c->invalid_samples += s.n.invalid_samples;
		c->samples += s.n.samples;
		c->histograms += s.n.histograms;
		c->exemplars += s.n.exemplars;
		c->metadata += s.n.metadata;
		c->sorted += s.n.sorted;
		c->refused_series += s.n.refused_series;
		c->refused_samples += s.n.refused_samples;
	}
	return WIRE_OK;
}

int wire_varint(const uint8_t **p, const uint8_t *end, uint64_t *out)
{
	return varint_get(p, end, 10, out) == F_OK ? 0 : -1;
}

size_t wire_next_field(const uint8_t *in, size_t len, size_t off)
{
	struct field f;

	if (in == NULL || off >= len ||
	    field_parse(in + off, in + len, &f) != F_OK)
		return 0;
	return (size_t)(f.end - in);
}

void wire_scratch_free(void)
{
	free(scratch_labels);
	scratch_labels = NULL;
	scratch_labels_cap = 0;
	wire_emit_scratch_free();
	wire_series_scratch_free();
}
