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
 */
#include "wire.h"
#include "err.h"
#include "labels.h"
#include "lanes.h"
#include "relabel.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define WIRE_STACK_LABELS 64 /* labels per series before the heap scratch */
#define WIRE_STACK_BYTES 2048 /* label bytes hashed on the stack */

enum { WT_VARINT = 0, WT_FIXED64 = 1, WT_LEN = 2, WT_FIXED32 = 5 };

/* Outcomes of field_parse. */
enum { F_OK, F_TRUNC_VARINT, F_TRUNC_FIXED, F_LONG_VARINT, F_FIELD0,
       F_WIRETYPE, F_LENGTH };

static const char *const field_errors[] = {
	[F_TRUNC_VARINT] = "truncated varint",
	[F_TRUNC_FIXED] = "truncated fixed-size field",
	[F_LONG_VARINT] = "overlong varint",
	[F_FIELD0] = "field number 0",
	[F_WIRETYPE] = "invalid wire type",
	[F_LENGTH] = "length past the end of the message",
};

/* One field of a message; the pointers borrow from the request. */
struct field {
	uint32_t num;
	uint32_t type;
	const uint8_t *start; /* the first byte of the tag */
	const uint8_t *data;  /* the payload (after the length for WT_LEN) */
	const uint8_t *end;   /* the first byte after the field */
};

/* One label of a series; the pointers borrow from the request. */
struct label {
	const uint8_t *name;
	const uint8_t *value;
	const uint8_t *enc;   /* the field, when already canonical; or NULL */
	size_t nlen;
	size_t vlen;
	size_t size;          /* bytes of its canonical encoding */
};

/* A series between its scan and its output. */
struct series {
	struct label *l;      /* ref: on the stack or the thread's scratch */
	size_t n;             /* labels in l */
	size_t at;            /* where the tenant label goes; SIZE_MAX: none */
	int replace;          /* the tenant label replaces l[at] */
	size_t drop;          /* l[drop] is left out; SIZE_MAX: none */
	size_t llen;          /* bytes of the final labels */
	const uint8_t *rest;  /* the first field that is not a label */
	size_t other;         /* bytes of all fields that are not labels */
	int interleaved;      /* some label comes after such a field */
	size_t ex;            /* the sender's tenant label, renamed (see
			       * exported_name), goes before l[ex];
			       * SIZE_MAX: none */
	int ex_first;         /* it sorts before the tenant label */
	int unsorted;         /* labels came out of order: l is sorted */
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

/* What is wrong with a series label (label_check). */
enum { L_OK, L_EMPTY_NAME, L_NAME_LONG, L_NAME_BAD, L_DUPLICATE, L_UNSORTED,
       L_EMPTY_VALUE, L_VALUE_LONG, L_VALUE_UTF8, L_METRIC_BAD };

/* The state of one wire_scan call. */
struct scan {
	const struct wire_opts *o;     /* ref */
	struct buf *out;               /* ref; NULL when only scanning */
	const uint8_t *base;           /* ref: the request, for byte offsets */
	char *why;                     /* ref */
	size_t whylen;
	const char *what;              /* "series", "metadata" or NULL */
	uint64_t index;                /* of that series or metadata entry */
	struct wire_counts n;
	int rewrite;                   /* out != NULL, a tenant label set, a
					* label dropped, series admitted or
					* a series' labels sorted */
	const uint8_t *field;          /* ref: the series field being scanned */
	struct wire_counts before;     /* the counts before that series */
	const uint8_t *tname, *tvalue; /* ref: the tenant label, or NULL */
	size_t tnlen, tvlen;
	uint8_t tenc[128];             /* its encoding, when it fits */
	size_t tenclen;                /* bytes in tenc, or 0 */
	const uint8_t *dname;          /* ref: the label to remove, or NULL */
	size_t dnlen;
	uint8_t exname[256];           /* the current series' exported_ name */
	size_t exnlen;
	struct buf *lanes;             /* ref: o->lane_out, or NULL */
	unsigned lane;                 /* of the series emitted last */
	size_t lane_bytes;             /* written to all lanes so far */
};

/* Per-thread scratch for series with many labels, kept between calls
 * until wire_scratch_free. */
static __thread struct label *scratch_labels;
static __thread size_t scratch_labels_cap;
static __thread uint8_t *scratch_bytes;
static __thread size_t scratch_bytes_cap;

/* Formats the reason into s->why, prefixed with the series or metadata
 * entry being scanned. Returns rc. */
static int fail(struct scan *s, int rc, const char *fmt, ...)
	__attribute__((format(printf, 3, 4), cold, noinline));
static int fail(struct scan *s, int rc, const char *fmt, ...)
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

/* Reads a varint of at most max bytes from *pp (< end) and advances *pp.
 * Returns F_OK, F_TRUNC_VARINT or F_LONG_VARINT. */
static inline int varint_get(const uint8_t **pp, const uint8_t *end,
			     unsigned max, uint64_t *v)
{
	const uint8_t *p = *pp;
	uint64_t x = 0;
	unsigned i;

	if (p < end && *p < 0x80) {
		*v = *p;
		*pp = p + 1;
		return F_OK;
	}
	for (i = 0; i < max; i++) {
		if (p + i >= end)
			return F_TRUNC_VARINT;
		x |= (uint64_t)(p[i] & 0x7f) << (7 * i);
		if (p[i] < 0x80) {
			*v = x;
			*pp = p + i + 1;
			return F_OK;
		}
	}
	return F_LONG_VARINT;
}

/*
 * Parses the field that starts at p (p < end). Tags and lengths may take
 * at most 5 bytes (as in protobuf-c), other varints 10; a length may not
 * pass end. Fills *f and returns F_OK, or another F_ value.
 */
static inline int field_parse(const uint8_t *p, const uint8_t *end,
			      struct field *f)
{
	uint64_t tag, v;
	int rc;

	f->start = p;
	if ((rc = varint_get(&p, end, 5, &tag)) != F_OK)
		return rc;
	if (tag > UINT32_MAX)
		return F_LONG_VARINT;
	f->num = (uint32_t)(tag >> 3);
	f->type = (uint32_t)(tag & 7);
	if (f->num == 0)
		return F_FIELD0;
	f->data = p;
	switch (f->type) {
	case WT_VARINT:
		if ((rc = varint_get(&p, end, 10, &v)) != F_OK)
			return rc;
		break;
	case WT_FIXED64:
	case WT_FIXED32:
		v = f->type == WT_FIXED64 ? 8 : 4;
		if ((uint64_t)(end - p) < v)
			return F_TRUNC_FIXED;
		p += v;
		break;
	case WT_LEN:
		if ((rc = varint_get(&p, end, 5, &v)) != F_OK)
			return rc;
		if (v > (uint64_t)(end - p))
			return F_LENGTH;
		f->data = p;
		p += v;
		break;
	default:
		return F_WIRETYPE;
	}
	f->end = p;
	return F_OK;
}

/* field_parse with the reason written on failure. Returns 0 or WIRE_BAD. */
static inline int next_field(struct scan *s, const uint8_t *p,
			     const uint8_t *end, struct field *f)
{
	int rc = field_parse(p, end, f);

	if (rc == F_OK)
		return 0;
	if (rc == F_WIRETYPE)
		fail(s, WIRE_BAD, "invalid wire type %u at byte %zu",
		     (unsigned)(*p & 7), (size_t)(p - s->base));
	else
		fail(s, WIRE_BAD, "%s at byte %zu", field_errors[rc],
		     (size_t)(p - s->base));
	return WIRE_BAD;
}

/* The reason for a known field with the wrong wire type. Returns WIRE_BAD. */
static int wrong_type(struct scan *s, const char *msg, const struct field *f)
	__attribute__((cold, noinline));
static int wrong_type(struct scan *s, const char *msg, const struct field *f)
{
	return fail(s, WIRE_BAD, "wrong wire type %u for %s field %u at byte %zu",
		    f->type, msg, f->num, (size_t)(f->start - s->base));
}

/* Byte-order comparison of two names. */
static inline int name_cmp(const uint8_t *a, size_t an, const uint8_t *b,
			   size_t bn)
{
	int d;

	if (an > 0 && bn > 0 && a[0] != b[0])
		return a[0] < b[0] ? -1 : 1;
	if ((d = memcmp(a, b, an < bn ? an : bn)) != 0)
		return d;
	return an < bn ? -1 : an > bn;
}

/* Size of the canonical encoding of one label (tag and length included). */
static inline size_t label_size(size_t nlen, size_t vlen)
{
	size_t body = 2 + varint_size(nlen) + nlen + varint_size(vlen) + vlen;

	return 1 + varint_size(body) + body;
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
				return fail(s, WIRE_BAD,
					    "invalid UTF-8 in %s field %u",
					    msg, f.num);
			break;
		case K_REP_VARINT:
			ok = f.type == WT_VARINT || f.type == WT_LEN;
			for (q = f.data; ok && f.type == WT_LEN && q < f.end;)
				if (varint_get(&q, f.end, 10, &v) != F_OK)
					return fail(s, WIRE_BAD,
						    "bad packed varint in field %u at byte %zu",
						    f.num, (size_t)(q - s->base));
			break;
		case K_REP_FIXED64:
			if ((ok = f.type == WT_FIXED64 || f.type == WT_LEN) &&
			    f.type == WT_LEN && (f.end - f.data) % 8 != 0)
				return fail(s, WIRE_BAD,
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
				return fail(s, WIRE_BAD,
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

/*
 * Checks label l of a series (prev is the one before it, or NULL): name,
 * order against prev, value, and the opts bounds. Returns an L_ value.
 */
static inline int label_check(const struct wire_opts *o, const struct label *l,
			      const struct label *prev)
{
	int d;

	if (l->nlen == 0)
		return L_EMPTY_NAME;
	if (o->max_label_name_length && l->nlen > o->max_label_name_length)
		return L_NAME_LONG;
	if (!labels_name_valid(l->name, l->nlen))
		return L_NAME_BAD;
	if (prev != NULL &&
	    (d = name_cmp(l->name, l->nlen, prev->name, prev->nlen)) <= 0)
		return d == 0 ? L_DUPLICATE : L_UNSORTED;
	if (l->vlen == 0)
		return L_EMPTY_VALUE;
	if (o->max_label_value_length && l->vlen > o->max_label_value_length)
		return L_VALUE_LONG;
	if (!labels_utf8_valid(l->value, l->vlen))
		return L_VALUE_UTF8;
	if (l->nlen == 8 && memcmp(l->name, "__name__", 8) == 0 &&
	    !labels_metric_name_valid(l->value, l->vlen))
		return L_METRIC_BAD;
	return L_OK;
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
static int label_error(struct scan *s, const struct label *l,
		       const struct label *prev, int rc)
	__attribute__((cold, noinline));
static int label_error(struct scan *s, const struct label *l,
		       const struct label *prev, int rc)
{
	char q[LABELS_QUOTE_SIZE], r[LABELS_QUOTE_SIZE];

	labels_quote(q, l->name, l->nlen);
	switch (rc) {
	case L_EMPTY_NAME:
		return fail(s, WIRE_BAD, "empty label name");
	case L_NAME_LONG:
		return fail(s, WIRE_BAD, "label name \"%s\" longer than %zu bytes",
			    q, s->o->max_label_name_length);
	case L_NAME_BAD:
		return fail(s, WIRE_BAD, "invalid label name \"%s\"", q);
	case L_DUPLICATE:
		return fail(s, WIRE_BAD, "duplicate label name \"%s\"", q);
	case L_UNSORTED:
		return fail(s, WIRE_BAD, "labels not sorted: \"%s\" after \"%s\"",
			    q, labels_quote(r, prev->name, prev->nlen));
	case L_EMPTY_VALUE:
		return fail(s, WIRE_BAD, "empty label value for \"%s\"", q);
	case L_VALUE_LONG:
		return fail(s, WIRE_BAD,
			    "value of label \"%s\" longer than %zu bytes", q,
			    s->o->max_label_value_length);
	case L_VALUE_UTF8:
		return fail(s, WIRE_BAD, "invalid UTF-8 in value of \"%s\"", q);
	default:
		return fail(s, WIRE_BAD, "invalid metric name \"%s\"",
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

/* Makes room for 2n labels in the thread's scratch and moves the n at l
 * there. Returns the scratch (which keeps owning it), or NULL when memory
 * is short. */
static struct label *scratch_grow(struct label *l, size_t n)
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

/* Writes v as a varint at d (room for 10 bytes); returns the end. */
static inline uint8_t *put_varint(uint8_t *d, uint64_t v)
{
	while (v >= 0x80) {
		*d++ = (uint8_t)(v | 0x80);
		v >>= 7;
	}
	*d++ = (uint8_t)v;
	return d;
}

/* Writes the canonical encoding of one label at d; returns the end. */
static uint8_t *put_label(uint8_t *d, const uint8_t *name, size_t nlen,
			  const uint8_t *value, size_t vlen)
{
	*d++ = 0x0a;
	d = put_varint(d, 2 + varint_size(nlen) + nlen + varint_size(vlen) +
				  vlen);
	*d++ = 0x0a;
	d = put_varint(d, nlen);
	memcpy(d, name, nlen);
	d += nlen;
	*d++ = 0x12;
	d = put_varint(d, vlen);
	memcpy(d, value, vlen);
	return d + vlen;
}

/* Writes the final labels of series r at d: the tenant label at r->at,
 * canonical labels adjacent in the request copied as one run, the others
 * encoded afresh. Returns the end. */
static uint8_t *put_labels(const struct scan *s, const struct series *r,
			   uint8_t *d)
{
	const uint8_t *run = NULL, *run_end = NULL;
	const struct label *l = r->l;
	size_t i;

	for (i = 0; i <= r->n; i++) {
		if (run != NULL && (i == r->n || i == r->at || i == r->drop ||
				    i == r->ex || l[i].enc != run_end)) {
			memcpy(d, run, (size_t)(run_end - run));
			d += run_end - run;
			run = NULL;
		}
		if (i == r->ex && r->ex_first)
			d = put_label(d, s->exname, s->exnlen, l[r->at].value,
				      l[r->at].vlen);
		if (i == r->at) {
			if (s->tenclen > 0)
				d = (uint8_t *)memcpy(d, s->tenc, s->tenclen) +
				    s->tenclen;
			else
				d = put_label(d, s->tname, s->tnlen, s->tvalue,
					      s->tvlen);
		}
		if (i == r->ex && !r->ex_first)
			d = put_label(d, s->exname, s->exnlen, l[r->at].value,
				      l[r->at].vlen);
		if (i == r->at && r->replace)
			continue;
		if (i == r->n)
			break;
		if (i == r->drop)
			continue;
		if (l[i].enc == NULL) {
			d = put_label(d, l[i].name, l[i].nlen, l[i].value,
				      l[i].vlen);
			continue;
		}
		if (run == NULL)
			run = l[i].enc;
		run_end = l[i].enc + l[i].size;
	}
	return d;
}

#ifdef __SIZEOF_INT128__
__extension__ typedef unsigned __int128 wire_u128;
#endif

/* Folds the 128-bit product of a and b to 64 bits. */
static inline uint64_t hash_mix(uint64_t a, uint64_t b)
{
#ifdef __SIZEOF_INT128__
	wire_u128 r = (wire_u128)a * b;

	return (uint64_t)r ^ (uint64_t)(r >> 64);
#else
	return (a * b) ^ ((a >> 32) * (b >> 32)) ^ ((a * b) >> 29);
#endif
}

/* Little-endian loads, so that the hash is the same on every host. */
static inline uint64_t load64(const uint8_t *p)
{
	uint64_t v;

	memcpy(&v, p, 8);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
	v = __builtin_bswap64(v);
#endif
	return v;
}

static inline uint64_t load32(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, 4);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
	v = __builtin_bswap32(v);
#endif
	return v;
}

/* A fast non-cryptographic 64-bit hash of p[0..n): multiply-fold mixing,
 * 16 bytes a step, the length mixed in first and last. */
static uint64_t hash_bytes(const uint8_t *p, size_t n)
{
	const uint64_t k1 = 0xc2b2ae3d27d4eb4full, k2 = 0x165667b19e3779f9ull,
		       k3 = 0xff51afd7ed558ccdull;
	uint64_t h = hash_mix(n ^ k1, k2), a = 0, b = 0;
	size_t len = n;

	for (; n > 16; p += 16, n -= 16)
		h = hash_mix(load64(p) ^ k1, load64(p + 8) ^ h);
	if (n > 8) {
		a = load64(p);
		b = load64(p + n - 8);
	} else if (n >= 4) {
		a = load32(p) << 32 | load32(p + n - 4);
	} else if (n > 0) {
		a = (uint64_t)p[0] << 16 | (uint64_t)p[n / 2] << 8 | p[n - 1];
	}
	h = hash_mix(a ^ k1, b ^ h ^ k3);
	return hash_mix(h ^ k2, len ^ k3);
}

/* The series being scanned was not admitted: it is left out of the
 * output, and its counts move to the refused ones. Returns 0. */
static int series_refused(struct scan *s) __attribute__((cold, noinline));
static int series_refused(struct scan *s)
{
	uint64_t samples = s->n.samples - s->before.samples;

	s->n.series--;
	s->n.samples = s->before.samples;
	s->n.histograms = s->before.histograms;
	s->n.exemplars = s->before.exemplars;
	s->n.refused_series++;
	s->n.refused_samples += samples;
	return 0;
}

/* qsort's comparison of two labels by name. */
static int label_order(const void *a, const void *b)
{
	const struct label *x = a, *y = b;

	return name_cmp(x->name, x->nlen, y->name, y->nlen);
}

/* Past this many labels a series is sorted with qsort: insertion sort is
 * quadratic, and a request of series with max_labels_per_series labels in
 * reverse order would cost seconds to minutes of CPU. */
#define LABELS_INSERTION_MAX 32

/* Sorts the n labels at l by name (insertion sort for few labels, most of
 * them in order already, as the senders that do not sort keep one order;
 * qsort for more). */
static void labels_sort(struct label *l, size_t n)
{
	struct label x;
	size_t i, j;

	if (n > LABELS_INSERTION_MAX) {
		qsort(l, n, sizeof(*l), label_order);
		return;
	}
	for (i = 1; i < n; i++) {
		if (name_cmp(l[i].name, l[i].nlen, l[i - 1].name,
			     l[i - 1].nlen) >= 0)
			continue;
		x = l[i];
		for (j = i; j > 0 &&
		     name_cmp(x.name, x.nlen, l[j - 1].name, l[j - 1].nlen) < 0;
		     j--)
			l[j] = l[j - 1];
		l[j] = x;
	}
}

/*
 * The labels of series r came out of order: sorts them and refuses a name
 * that comes twice. In a scan that copies the request as it came, the copy
 * becomes a rewrite from this series on (what came before is copied as
 * it is). Counts the series as sorted. Returns 0, WIRE_BAD or
 * WIRE_TOO_LARGE.
 */
static int series_sort(struct scan *s, struct series *r)
	__attribute__((noinline));
static int series_sort(struct scan *s, struct series *r)
{
	char q[LABELS_QUOTE_SIZE];

	labels_sort(r->l, r->n);
	for (size_t i = 1; i < r->n; i++)
		if (name_cmp(r->l[i].name, r->l[i].nlen, r->l[i - 1].name,
			     r->l[i - 1].nlen) == 0)
			return fail(s, WIRE_BAD, "duplicate label name \"%s\"",
				    labels_quote(q, r->l[i].name, r->l[i].nlen));
	s->n.sorted++;
	if (s->rewrite || s->out == NULL)
		return 0;
	if (buf_append(s->out, s->base, (size_t)(s->field - s->base)) < 0)
		return fail(s, WIRE_TOO_LARGE,
			    "decoded request over the size limit");
	s->rewrite = 1;
	return 0;
}

/*
 * The hash that picks series r's delivery lane (lanes.h): of its instance
 * label's value, or of its metric name when it has no instance label;
 * when it has neither, the hash of all its final labels (the one
 * on_series gets) does. The series of one target, which a request carries
 * side by side, stay together in a lane, so each lane's block compresses
 * as well as the request did (a hash of all labels scatters them: 1.67x
 * the bytes on node-exporter-like requests). Part of the stored format
 * (store.h). Returns 1 with the hash in *h, or 0 when r has neither label.
 */
static int lane_key(const struct scan *s, const struct series *r,
		    uint64_t *h)
{
	const uint64_t k1 = 0x9e3779b97f4a7c15ull, k2 = 0xc2b2ae3d27d4eb4full;
	const uint8_t *name = NULL, *inst = NULL;
	size_t nlen = 0, ilen = 0;

	for (size_t i = 0; i < r->n; i++) {
		const struct label *l = &r->l[i];
		if (i == r->drop || l->nlen != 8)
			continue;
		if (memcmp(l->name, "__name__", 8) == 0) {
			name = l->value;
			nlen = l->vlen;
		} else if (memcmp(l->name, "instance", 8) == 0) {
			inst = l->value;
			ilen = l->vlen;
		}
	}
	/* The labels as stored: the tenant label's value wins. */
	if (s->tname != NULL && s->tnlen == 8) {
		if (memcmp(s->tname, "instance", 8) == 0) {
			inst = s->tvalue;
			ilen = s->tvlen;
		} else if (memcmp(s->tname, "__name__", 8) == 0) {
			name = s->tvalue;
			nlen = s->tvlen;
		}
	}
	if (inst != NULL)
		*h = hash_mix(hash_bytes(inst, ilen) ^ k1, k2);
	else if (name != NULL)
		*h = hash_mix(hash_bytes(name, nlen) ^ k2, k1);
	return inst != NULL || name != NULL;
}

/*
 * Hands series r (its fields at p[0..end)) on: in rewrite mode appends it
 * to s->out as the file comment shows; reports its hash when asked.
 * Returns 0, or WIRE_TOO_LARGE when out would pass its bound or memory is
 * short.
 */
static int series_emit(struct scan *s, const struct series *r,
		       const uint8_t *p, const uint8_t *end)
{
	size_t body = r->llen + r->other, total = 1 + varint_size(body) + body;
	uint8_t tmp[WIRE_STACK_BYTES], *d = tmp, *labels = NULL;
	struct buf *out = s->out;
	struct field f;
	uint64_t h = 0;
	int direct = 1;   /* labels written straight into out */

	/* The lane, from the instance (or name) label alone when it has one:
	 * then the labels go straight into the lane's output. */
	if (s->lanes != NULL && lane_key(s, r, &h)) {
		s->lane = lanes_of(h);
		out = &s->lanes[s->lane];
	} else if (!s->rewrite || s->lanes != NULL) {
		/* The final labels first, for their hash (and lane). */
		if (r->llen > sizeof(tmp) && r->llen > scratch_bytes_cap) {
			if ((d = realloc(scratch_bytes, r->llen)) == NULL)
				return fail(s, WIRE_TOO_LARGE,
					    "out of memory for labels");
			scratch_bytes = d;
			scratch_bytes_cap = r->llen;
		}
		if (r->llen > sizeof(tmp))
			d = scratch_bytes;
		put_labels(s, r, d);
		h = hash_bytes(d, r->llen);
		if (s->o->admit != NULL && s->o->admit(s->o->arg, h) != 0)
			return series_refused(s);
		if (s->o->on_series != NULL)
			s->o->on_series(s->o->arg, h);
		if (!s->rewrite)
			return 0;
		s->lane = lanes_of(h);
		out = &s->lanes[s->lane];
		labels = d;
		direct = 0;
	}
	/* lane_out[0].max bounds the lanes' sum, as out->max bounds out. */
	if ((s->lanes != NULL &&
	     (s->lane_bytes += total) > s->lanes[0].max) ||
	    (out->cap - out->len < total && buf_reserve(out, total) < 0)) {
		s->what = NULL;
		return fail(s, WIRE_TOO_LARGE,
			    "decoded request over the size limit");
	}
	d = out->p + out->len;
	*d++ = 0x0a;
	d = put_varint(d, body);
	if (!direct) {
		memcpy(d, labels, r->llen);
		d += r->llen;
	} else {
		labels = d;
		d = put_labels(s, r, d);
		if (s->o->admit != NULL || s->o->on_series != NULL) {
			h = hash_bytes(labels, r->llen);
			if (s->o->admit != NULL && s->o->admit(s->o->arg, h) != 0) {
				/* Left out: what was written is not counted. */
				if (s->lanes != NULL)
					s->lane_bytes -= total;
				return series_refused(s);
			}
			if (s->o->on_series != NULL)
				s->o->on_series(s->o->arg, h);
		}
	}
	if (!r->interleaved) {
		if (r->other > 0)
			memcpy(d, r->rest, r->other);
	} else {
		for (; p < end && field_parse(p, end, &f) == F_OK; p = f.end)
			if (f.num != 1)
				d = (uint8_t *)memcpy(d, f.start,
						      (size_t)(f.end - f.start)) +
				    (f.end - f.start);
	}
	out->len += total;
	return 0;
}

/*
 * The sender's own tenant label (r->l[r->at]) is kept, renamed as
 * Prometheus renames a scraped label that conflicts with a target label:
 * exported_<name>, or exported_exported_<name> when that is taken too,
 * and so on. Sets s->exname and where it sorts among the labels. Returns
 * 0, or WIRE_BAD when the name would not fit.
 */
static int exported_name(struct scan *s, struct series *r)
{
	static const char prefix[] = "exported_";
	size_t k = sizeof(prefix) - 1, i;

	if (k + s->tnlen > sizeof(s->exname))   /* a long [tenancy] label */
		return fail(s, WIRE_BAD, "the sender's tenant label cannot be "
			    "kept: exported_ name too long");
	memcpy(s->exname + k, s->tname, s->tnlen);
	memcpy(s->exname, prefix, k);
	s->exnlen = k + s->tnlen;
	for (i = 0; i < r->n; i++) {
		if (name_cmp(r->l[i].name, r->l[i].nlen, s->exname,
			     s->exnlen) != 0)
			continue;
		if (s->exnlen + k > sizeof(s->exname))
			return fail(s, WIRE_BAD, "too many exported_ labels");
		memmove(s->exname + k, s->exname, s->exnlen);
		s->exnlen += k;
		i = (size_t)-1;  /* taken: one prefix more, look again */
	}
	/* Before the first label after it; the tenant label sits at at. */
	r->ex_first = name_cmp(s->exname, s->exnlen, s->tname, s->tnlen) < 0;
	for (r->ex = 0; r->ex < r->n; r->ex++)
		if (r->ex == r->at ? r->ex_first :
		    name_cmp(r->l[r->ex].name, r->l[r->ex].nlen, s->exname,
			     s->exnlen) > 0)
			break;
	r->llen += label_size(s->exnlen, r->l[r->at].vlen);
	return 0;
}

/* The thread's labels handed to the relabel hook, kept between calls
 * until wire_scratch_free. */
static __thread struct relabel_label *relabel_buf;
static __thread struct label *relabel_orig;  /* the labels as sent */
static __thread size_t relabel_buf_cap;

/*
 * Runs the relabel hook over series r (its label array has room for *cap)
 * and checks what it leaves as sent labels are checked. Returns 0 keep,
 * 1 dropped, or WIRE_BAD / WIRE_TOO_LARGE with the reason.
 */
static int series_relabel(struct scan *s, struct series *r, size_t *cap)
{
	size_t max = s->o->max_labels_per_series, room, n = r->n, i, j = 0, norig;
	struct label *prev = NULL;
	int rc, d;

	room = max ? max + 1 : 2 * n + 16;
	room = room > n ? room : n;
	if (room > relabel_buf_cap) {
		struct relabel_label *b = realloc(relabel_buf, room * sizeof(*b));
		struct label *o = b ? realloc(relabel_orig, room * sizeof(*o)) : NULL;
		if (b != NULL)
			relabel_buf = b;
		if (o == NULL)
			return fail(s, WIRE_TOO_LARGE, "out of memory for labels");
		relabel_orig = o;
		relabel_buf_cap = room;
	}
	memcpy(relabel_orig, r->l, n * sizeof(*r->l));
	for (i = 0; i < n; i++)
		relabel_buf[i] = (struct relabel_label){ r->l[i].name,
			r->l[i].nlen, r->l[i].value, r->l[i].vlen };
	rc = s->o->relabel(s->o->relabel_arg, relabel_buf, &n, room);
	if (rc == ERR_NOMEM)
		return fail(s, WIRE_TOO_LARGE, "out of memory for relabeling");
	if (rc == ERR_FULL || (rc == 0 && max && n > max))
		return fail(s, WIRE_BAD, "more than %zu labels after relabeling",
			    max);
	if (rc < 0)
		return fail(s, WIRE_BAD, "relabeling failed: %s", err_str(rc));
	if (rc == 1 || n == 0)
		return 1;
	while (*cap < n) {
		if ((r->l = scratch_grow(r->l, *cap)) == NULL)
			return fail(s, WIRE_TOO_LARGE, "out of memory for labels");
		*cap *= 2;
	}
	s->what = "relabeled series";
	norig = r->n;
	r->llen = 0;
	for (r->n = 0; r->n < n; prev = &r->l[r->n++]) {
		const struct relabel_label *b = &relabel_buf[r->n];
		const struct label *o;
		struct label *l = &r->l[r->n];

		/* A label as sent (the same bytes) keeps its encoding and its
		 * checks; only its place is checked again. */
		while (j < norig && relabel_orig[j].name != b->name &&
		       name_cmp(relabel_orig[j].name, relabel_orig[j].nlen,
				b->name, b->nlen) < 0)
			j++;
		o = j < norig ? &relabel_orig[j] : NULL;
		if (o != NULL && o->name == b->name && o->nlen == b->nlen &&
		    o->value == b->value && o->vlen == b->vlen) {
			*l = *o;
			if (prev != NULL && (d = name_cmp(l->name, l->nlen,
							  prev->name,
							  prev->nlen)) <= 0)
				return label_error(s, l, prev, d == 0 ?
						   L_DUPLICATE : L_UNSORTED);
		} else {
			*l = (struct label){ .name = b->name, .nlen = b->nlen,
				.value = b->value, .vlen = b->vlen };
			l->size = label_size(l->nlen, l->vlen);
			if ((rc = label_check(s->o, l, prev)) != L_OK)
				return label_error(s, l, prev, rc);
		}
		r->llen += l->size;
	}
	s->what = "series";
	return 0;
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
			if ((r.l = scratch_grow(r.l, r.n)) == NULL)
				return fail(s, WIRE_TOO_LARGE,
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
			return fail(s, WIRE_BAD, "more than %zu labels", max);
		prev = r.n > 0 ? &r.l[r.n - 1] : NULL;
		if ((rc = label_check(s->o, &r.l[r.n], prev)) != L_OK) {
			/* Out of order: sorted below, once all are in. */
			if (rc != L_UNSORTED ||
			    (rc = label_check_unordered(s->o, &r.l[r.n])) != L_OK)
				return label_error(s, &r.l[r.n], prev, rc);
			r.unsorted = 1;
		}
		r.llen += r.l[r.n++].size;
		r.interleaved |= r.rest != NULL;
	}
	if (r.n == 0)
		return fail(s, WIRE_BAD, "no labels");
	if (r.unsorted && (rc = series_sort(s, &r)) < 0)
		return rc;
	if (s->o->relabel != NULL && (rc = series_relabel(s, &r, &cap)) != 0) {
		if (rc < 0)
			return rc;
		s->n.series--;
		s->n.series_dropped++;
		s->n.samples_dropped += s->n.samples - samples +
					s->n.histograms - histograms;
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
		if (r.replace && (rc = exported_name(s, &r)) != 0)
			return rc;
	}
	if (s->rewrite || s->o->on_series != NULL)
		return series_emit(s, &r, start, end);
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
			s.tenclen = (size_t)(put_label(s.tenc, s.tname, s.tnlen,
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
			return fail(&s, WIRE_V2,
				    "Remote Write 2.0 body (field %u); this endpoint takes 1.0 only",
				    f.num);
		s.lane = 0;
		if (f.num == 1) {
			s.what = "series";
			s.field = f.start;
			if (s.o->admit != NULL)
				s.before = s.n;
			s.index = s.n.series++;
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
			return fail(&s, WIRE_TOO_LARGE,
				    "decoded request over the size limit");
		if (s.o->lane_counts != NULL)
			lane_count(&s.o->lane_counts[s.lane], &before, &s.n);
	}
	if (out != NULL && !s.rewrite && buf_append(out, in, len) < 0)
		return fail(&s, WIRE_TOO_LARGE,
			    "decoded request over the size limit");
	if (c != NULL) {
		c->series += s.n.series;
		c->series_dropped += s.n.series_dropped;
		c->samples_dropped += s.n.samples_dropped;
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
	free(scratch_bytes);
	scratch_bytes = NULL;
	scratch_bytes_cap = 0;
	free(relabel_buf);
	relabel_buf = NULL;
	free(relabel_orig);
	relabel_orig = NULL;
	relabel_buf_cap = 0;
}
