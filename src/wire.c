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
 * Labels that already come in that encoding (Prometheus writes nothing
 * else) are copied in runs rather than re-encoded. The series hash is taken
 * over the canonical label encoding, so it depends on the final label set
 * only, never on how the sender encoded it.
 */
#include "wire.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Labels a series may carry before the scratch moves off the stack. */
#define WIRE_STACK_LABELS 64
/* Bytes of canonical labels hashed on the stack when not rewriting. */
#define WIRE_STACK_BYTES 2048
/* Longest piece of a name or value quoted in a reason. */
#define WIRE_QUOTE_MAX 64

enum { WT_VARINT = 0, WT_FIXED64 = 1, WT_LEN = 2, WT_FIXED32 = 5 };

/* Outcomes of field_parse. */
enum {
	F_OK = 0,
	F_TRUNC_VARINT,
	F_TRUNC_FIXED,
	F_LONG_VARINT,
	F_FIELD0,
	F_WIRETYPE,
	F_LENGTH
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

/* Name characters: 1 starts a label name, 2 continues one, 4 starts a
 * metric name, 8 continues one. */
static const uint8_t name_class[256] = {
	[0x30] = 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 12,
	[0x41] = 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15,
	15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, [0x5f] = 15,
	[0x61] = 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15,
	15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15
};

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
	int rewrite;                   /* out != NULL and a tenant label set */
	const uint8_t *tname, *tvalue; /* ref: the tenant label, or NULL */
	size_t tnlen, tvlen;
	uint8_t tenc[128];             /* its encoding, when it fits */
	size_t tenclen;                /* bytes in tenc, or 0 */
};

/* Per-thread scratch for series with many labels, kept between calls and
 * freed by wire_scratch_free. */
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

/* Copies p[0..n) into dst as printable ASCII ('?' for anything else), cut
 * to WIRE_QUOTE_MAX bytes with "...". Returns dst. */
static const char *quote(char dst[WIRE_QUOTE_MAX + 4], const uint8_t *p,
			 size_t n)
{
	size_t i, m = n > WIRE_QUOTE_MAX ? WIRE_QUOTE_MAX : n;

	for (i = 0; i < m; i++)
		dst[i] = p[i] >= 0x20 && p[i] < 0x7f && p[i] != '"' &&
				 p[i] != '\\' ? (char)p[i] : '?';
	if (m < n) {
		memcpy(dst + m, "...", 3);
		m += 3;
	}
	dst[m] = '\0';
	return dst;
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
 * at most 5 bytes (as protobuf-c), other varints 10; a length may not pass
 * end. Fills *f and returns F_OK, or another F_ value.
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
	switch (f->type) {
	case WT_VARINT:
		f->data = p;
		if ((rc = varint_get(&p, end, 10, &v)) != F_OK)
			return rc;
		break;
	case WT_FIXED64:
	case WT_FIXED32:
		v = f->type == WT_FIXED64 ? 8 : 4;
		if ((uint64_t)(end - p) < v)
			return F_TRUNC_FIXED;
		f->data = p;
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

/* Writes the reason for field_parse's rc at p. Returns WIRE_BAD. */
static int field_error(struct scan *s, const uint8_t *p, int rc)
	__attribute__((cold, noinline));
static int field_error(struct scan *s, const uint8_t *p, int rc)
{
	size_t at = (size_t)(p - s->base);

	switch (rc) {
	case F_TRUNC_VARINT:
		return fail(s, WIRE_BAD, "truncated varint at byte %zu", at);
	case F_TRUNC_FIXED:
		return fail(s, WIRE_BAD, "truncated fixed-size field at byte %zu",
			    at);
	case F_LONG_VARINT:
		return fail(s, WIRE_BAD, "overlong varint at byte %zu", at);
	case F_FIELD0:
		return fail(s, WIRE_BAD, "field number 0 at byte %zu", at);
	case F_WIRETYPE:
		return fail(s, WIRE_BAD, "invalid wire type %u at byte %zu",
			    (unsigned)(*p & 7), at);
	default:
		return fail(s, WIRE_BAD,
			    "length past the end of the message at byte %zu",
			    at);
	}
}

/* field_parse with the reason written on failure. Returns 0 or WIRE_BAD. */
static inline int next_field(struct scan *s, const uint8_t *p,
			     const uint8_t *end, struct field *f)
{
	int rc = field_parse(p, end, f);

	return rc == F_OK ? 0 : field_error(s, p, rc);
}

static int wrong_type(struct scan *s, const char *msg, const struct field *f)
	__attribute__((cold, noinline));
static int wrong_type(struct scan *s, const char *msg, const struct field *f)
{
	return fail(s, WIRE_BAD, "wrong wire type %u for %s field %u at byte %zu",
		    f->type, msg, f->num, (size_t)(f->start - s->base));
}

/* Whether p[0..n), which holds some non-ASCII byte, is valid UTF-8: no
 * overlong forms, no surrogates, nothing past U+10FFFF. */
static int utf8_valid_slow(const uint8_t *p, size_t n)
	__attribute__((noinline));
static int utf8_valid_slow(const uint8_t *p, size_t n)
{
	size_t i = 0;
	uint8_t c;

	while (i < n) {
		c = p[i];
		if (c < 0x80) {
			i++;
		} else if (c < 0xc2) {
			return 0;
		} else if (c < 0xe0) {
			if (n - i < 2 || (p[i + 1] & 0xc0) != 0x80)
				return 0;
			i += 2;
		} else if (c < 0xf0) {
			if (n - i < 3 || (p[i + 1] & 0xc0) != 0x80 ||
			    (p[i + 2] & 0xc0) != 0x80 ||
			    (c == 0xe0 && p[i + 1] < 0xa0) ||
			    (c == 0xed && p[i + 1] >= 0xa0))
				return 0;
			i += 3;
		} else if (c < 0xf5) {
			if (n - i < 4 || (p[i + 1] & 0xc0) != 0x80 ||
			    (p[i + 2] & 0xc0) != 0x80 ||
			    (p[i + 3] & 0xc0) != 0x80 ||
			    (c == 0xf0 && p[i + 1] < 0x90) ||
			    (c == 0xf4 && p[i + 1] >= 0x90))
				return 0;
			i += 4;
		} else {
			return 0;
		}
	}
	return 1;
}

/* Whether p[0..n) is valid UTF-8; ASCII is taken eight bytes at a time. */
static inline int utf8_valid(const uint8_t *p, size_t n)
{
	uint64_t acc = 0, w;
	size_t i;

	if (n >= 8) {
		for (i = 0; i + 8 < n; i += 8) {
			memcpy(&w, p + i, 8);
			acc |= w;
		}
		memcpy(&w, p + n - 8, 8);
		acc |= w;
	} else {
		for (i = 0; i < n; i++)
			acc |= p[i];
	}
	return (acc & 0x8080808080808080ull) == 0 || utf8_valid_slow(p, n);
}

/* Per byte of w (all below 0x80): 0x80 where it lies in [lo, hi], else 0. */
static inline uint64_t bytes_in(uint64_t w, unsigned lo, unsigned hi)
{
	const uint64_t ones = 0x0101010101010101ull;

	return (w + ones * (0x80 - lo)) & ~(w + ones * (0x7f - hi)) &
	       ones * 0x80;
}

/* Whether the 8 bytes at p are all name characters (metric: colon too). */
static inline int name_word(const uint8_t *p, int metric)
{
	const uint64_t high = 0x8080808080808080ull;
	uint64_t w, ok;

	memcpy(&w, p, 8);
	ok = bytes_in(w | 0x2020202020202020ull, 'a', 'z') |
	     bytes_in(w, '0', '9') | bytes_in(w, '_', '_') |
	     (metric ? bytes_in(w, ':', ':') : 0);
	return (w & high) == 0 && ok == high;
}

/* Whether p[0..n) matches [a-zA-Z_][a-zA-Z0-9_]*, or with metric set
 * [a-zA-Z_:][a-zA-Z0-9_:]*. Eight bytes at a time past the first. */
static inline int name_valid(const uint8_t *p, size_t n, int metric)
{
	unsigned acc = 0xff;
	size_t i;

	if (n == 0 || !(name_class[p[0]] & (metric ? 4 : 1)))
		return 0;
	if (n >= 8) {
		for (i = 0; i + 8 < n; i += 8)
			if (!name_word(p + i, metric))
				return 0;
		return name_word(p + n - 8, metric);
	}
	for (i = 1; i < n; i++)
		acc &= name_class[p[i]];
	return (acc & (metric ? 8 : 2)) != 0;
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
	const uint8_t *q = p + 12, *e;
	size_t len;
	uint64_t v;

	if (end - p < 13 || p[0] != 0x12 || (len = p[1]) < 11 || len >= 0x80 ||
	    len + 2 > (size_t)(end - p) || p[2] != 0x09 || p[11] != 0x10)
		return NULL;
	e = p + len + 2;
	if (varint_get(&q, e, 10, &v) != F_OK || q != e)
		return NULL;
	return e;
}

/* Checks an exemplar's label: a valid name and a UTF-8 value (which may be
 * empty). Returns 0 or WIRE_BAD. */
static int exemplar_label(struct scan *s, const struct field *f)
{
	char q[WIRE_QUOTE_MAX + 4];
	struct label l;

	if (label_read(s, f, &l) < 0)
		return WIRE_BAD;
	if (!name_valid(l.name, l.nlen, 0))
		return fail(s, WIRE_BAD, "invalid exemplar label name \"%s\"",
			    quote(q, l.name, l.nlen));
	if (!utf8_valid(l.value, l.vlen))
		return fail(s, WIRE_BAD,
			    "invalid UTF-8 in exemplar label value of \"%s\"",
			    quote(q, l.name, l.nlen));
	return 0;
}

/* Checks that a packed run of varints is whole. Returns 0 or WIRE_BAD. */
static int packed_varints(struct scan *s, const struct field *f)
{
	const uint8_t *p = f->data;
	uint64_t v;

	while (p < f->end)
		if (varint_get(&p, f->end, 10, &v) != F_OK)
			return fail(s, WIRE_BAD,
				    "bad packed varint in field %u at byte %zu",
				    f->num, (size_t)(p - s->base));
	return 0;
}

/*
 * Validates the nested message p[0..end) whose fields are described by
 * kinds[0..nkinds) (msg names it in reasons). Nests at most two deep
 * (histogram -> span, exemplar -> label). Returns 0 or WIRE_BAD.
 */
static int scan_msg(struct scan *s, const uint8_t *kinds, size_t nkinds,
		    const char *msg, const uint8_t *p, const uint8_t *end)
{
	struct field f;
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
			    !utf8_valid(f.data, (size_t)(f.end - f.data)))
				return fail(s, WIRE_BAD,
					    "invalid UTF-8 in %s field %u",
					    msg, f.num);
			break;
		case K_REP_VARINT:
			if ((ok = f.type == WT_VARINT || f.type == WT_LEN) &&
			    f.type == WT_LEN && packed_varints(s, &f) < 0)
				return WIRE_BAD;
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
		case K_LABEL:
			if ((ok = f.type == WT_LEN) && exemplar_label(s, &f) < 0)
				return WIRE_BAD;
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

/* What is wrong with a series label (label_check). */
enum {
	L_OK = 0,
	L_EMPTY_NAME,
	L_NAME_LONG,
	L_NAME_BAD,
	L_DUPLICATE,
	L_UNSORTED,
	L_EMPTY_VALUE,
	L_VALUE_LONG,
	L_VALUE_UTF8,
	L_METRIC_BAD
};

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
	if (!name_valid(l->name, l->nlen, 0))
		return L_NAME_BAD;
	if (prev != NULL &&
	    (d = name_cmp(l->name, l->nlen, prev->name, prev->nlen)) <= 0)
		return d == 0 ? L_DUPLICATE : L_UNSORTED;
	if (l->vlen == 0)
		return L_EMPTY_VALUE;
	if (o->max_label_value_length && l->vlen > o->max_label_value_length)
		return L_VALUE_LONG;
	if (!utf8_valid(l->value, l->vlen))
		return L_VALUE_UTF8;
	if (l->nlen == 8 && memcmp(l->name, "__name__", 8) == 0 &&
	    !name_valid(l->value, l->vlen, 1))
		return L_METRIC_BAD;
	return L_OK;
}

/* Writes the reason for label_check's rc. Returns WIRE_BAD. */
static int label_error(struct scan *s, const struct label *l,
		       const struct label *prev, int rc)
	__attribute__((cold, noinline));
static int label_error(struct scan *s, const struct label *l,
		       const struct label *prev, int rc)
{
	char q[WIRE_QUOTE_MAX + 4], r[WIRE_QUOTE_MAX + 4];

	quote(q, l->name, l->nlen);
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
			    q, quote(r, prev->name, prev->nlen));
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
			    quote(r, l->value, l->vlen));
	}
}

/* Moves the n labels at l to the per-thread scratch with room for 2n.
 * Returns the scratch (which keeps owning it), or NULL when memory is
 * short. */
static struct label *labels_grow(struct label *l, size_t n)
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

/* Writes the final label set at d: l[0..n) with the tenant label put at
 * position at (replacing l[at] when replace; at > n: no tenant label).
 * Canonical labels adjacent in the request are copied as one run.
 * Returns the end. */
static uint8_t *put_labels(const struct scan *s, uint8_t *d,
			   const struct label *l, size_t n, size_t at,
			   int replace)
{
	const uint8_t *run = NULL, *run_end = NULL;
	size_t i;

	for (i = 0; i <= n; i++) {
		if (run != NULL && (i == n || i == at || l[i].enc != run_end)) {
			memcpy(d, run, (size_t)(run_end - run));
			d += run_end - run;
			run = run_end = NULL;
		}
		if (i == at) {
			if (s->tenclen > 0) {
				memcpy(d, s->tenc, s->tenclen);
				d += s->tenclen;
			} else {
				d = put_label(d, s->tname, s->tnlen, s->tvalue,
					      s->tvlen);
			}
			if (replace)
				continue;
		}
		if (i == n)
			break;
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

static inline uint64_t hash_mix(uint64_t a, uint64_t b)
{
#ifdef __SIZEOF_INT128__
	unsigned __int128 r = (unsigned __int128)a * b;

	return (uint64_t)r ^ (uint64_t)(r >> 64);
#else
	uint64_t lo = a * b, hi = (a >> 32) * (b >> 32);

	return lo ^ hi ^ ((lo >> 29) | (hi << 35));
#endif
}

/* Little-endian load of the n (1..8) bytes at p. */
static inline uint64_t load_le(const uint8_t *p, size_t n)
{
	uint64_t v = 0;
	size_t i;

	if (n == 8) {
		memcpy(&v, p, 8);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
		v = __builtin_bswap64(v);
#endif
		return v;
	}
	for (i = 0; i < n; i++)
		v |= (uint64_t)p[i] << (8 * i);
	return v;
}

/* A fast non-cryptographic 64-bit hash of p[0..n): multiply-fold mixing,
 * 16 bytes a step, the same on every host. */
static uint64_t hash_bytes(const uint8_t *p, size_t n)
{
	const uint64_t k1 = 0xc2b2ae3d27d4eb4full, k2 = 0x165667b19e3779f9ull,
		       k3 = 0xff51afd7ed558ccdull;
	uint64_t h = hash_mix(n ^ k1, k2), a = 0, b = 0;
	size_t len = n;

	for (; n > 16; p += 16, n -= 16)
		h = hash_mix(load_le(p, 8) ^ k1, load_le(p + 8, 8) ^ h);
	if (n > 8) {
		a = load_le(p, 8);
		b = load_le(p + n - 8, 8);
	} else if (n > 0) {
		a = load_le(p, n);
	}
	h = hash_mix(a ^ k1, b ^ h ^ k3);
	return hash_mix(h ^ k2, len ^ k3);
}

/*
 * Writes series p[0..end) with its labels l[0..n) to s->out as the file
 * comment shows, reporting its hash; llen is the size of the final labels,
 * rest/other the first non-label field and their total size (interleaved:
 * some label comes after one of them). Returns 0 or WIRE_TOO_LARGE.
 */
static int series_write(struct scan *s, const uint8_t *p, const uint8_t *end,
			const struct label *l, size_t n, size_t at,
			int replace, size_t llen, const uint8_t *rest,
			size_t other, int interleaved)
{
	size_t body = llen + other, total = 1 + varint_size(body) + body;
	uint8_t *d, *labels;
	struct field f;

	if (s->out->cap - s->out->len < total &&
	    buf_reserve(s->out, total) < 0) {
		s->what = NULL;
		return fail(s, WIRE_TOO_LARGE,
			    "decoded request over the size limit");
	}
	d = s->out->p + s->out->len;
	*d++ = 0x0a;
	d = put_varint(d, body);
	labels = d;
	d = put_labels(s, d, l, n, at, replace);
	if (s->o->on_series != NULL)
		s->o->on_series(s->o->arg, hash_bytes(labels, llen));
	if (!interleaved && other > 0) {
		memcpy(d, rest, other);
	} else if (interleaved) {
		for (; p < end && field_parse(p, end, &f) == F_OK; p = f.end) {
			if (f.num != 1) {
				memcpy(d, f.start, (size_t)(f.end - f.start));
				d += f.end - f.start;
			}
		}
	}
	s->out->len += total;
	return 0;
}

/* Reports the hash of the final labels when not rewriting. Returns 0 or
 * WIRE_TOO_LARGE when memory is short. */
static int series_hash(struct scan *s, const struct label *l, size_t n,
		       size_t at, int replace, size_t llen)
{
	uint8_t tmp[WIRE_STACK_BYTES], *d = tmp;

	if (llen > sizeof(tmp)) {
		if (llen > scratch_bytes_cap) {
			if ((d = realloc(scratch_bytes, llen)) == NULL)
				return fail(s, WIRE_TOO_LARGE,
					    "out of memory for labels");
			scratch_bytes = d;
			scratch_bytes_cap = llen;
		}
		d = scratch_bytes;
	}
	put_labels(s, d, l, n, at, replace);
	s->o->on_series(s->o->arg, hash_bytes(d, llen));
	return 0;
}

/*
 * Scans one TimeSeries p[0..end), counts it, reports its hash, and in
 * rewrite mode appends it to s->out with the tenant label set.
 * Returns 0, WIRE_BAD or WIRE_TOO_LARGE.
 */
static int scan_series(struct scan *s, const uint8_t *p, const uint8_t *end)
{
	struct label stack[WIRE_STACK_LABELS], *l = stack;
	size_t n = 0, cap = WIRE_STACK_LABELS, other = 0, llen = 0;
	size_t max = s->o->max_labels_per_series, at = SIZE_MAX, lo, hi, mid;
	const uint8_t *rest = NULL, *series = p, *q;
	int interleaved = 0, replace = 0, rc, d;
	struct field f;

	while (p < end) {
		if (n < cap && (max == 0 || n < max) &&
		    (q = label_fast(p, end, &l[n])) != NULL) {
			if ((rc = label_check(s->o, &l[n], n ? &l[n - 1] :
							      NULL)) != L_OK)
				return label_error(s, &l[n], n ? &l[n - 1] :
							   NULL, rc);
			llen += l[n++].size;
			interleaved |= rest != NULL;
			p = q;
			continue;
		}
		if ((q = sample_fast(p, end)) != NULL) {
			s->n.samples++;
			if (rest == NULL)
				rest = p;
			other += (size_t)(q - p);
			p = q;
			continue;
		}
		if (next_field(s, p, end, &f) < 0)
			return WIRE_BAD;
		p = f.end;
		if (f.num == 1) {
			if (f.type != WT_LEN)
				return wrong_type(s, "series", &f);
			if (max && n == max)
				return fail(s, WIRE_BAD, "more than %zu labels",
					    max);
			if (n == cap) {
				if ((l = labels_grow(l, n)) == NULL)
					return fail(s, WIRE_TOO_LARGE,
						    "out of memory for labels");
				cap = 2 * n;
			}
			if (label_read(s, &f, &l[n]) < 0)
				return WIRE_BAD;
			if ((rc = label_check(s->o, &l[n], n ? &l[n - 1] :
							      NULL)) != L_OK)
				return label_error(s, &l[n], n ? &l[n - 1] :
							   NULL, rc);
			llen += l[n++].size;
			interleaved |= rest != NULL;
			continue;
		}
		if (f.num >= 2 && f.num <= 4 && f.type != WT_LEN)
			return wrong_type(s, "series", &f);
		if (f.num == 2) {
			rc = scan_msg(s, sample_kinds, sizeof(sample_kinds),
				      "sample", f.data, f.end);
			s->n.samples++;
		} else if (f.num == 3) {
			rc = scan_msg(s, exemplar_kinds, sizeof(exemplar_kinds),
				      "exemplar", f.data, f.end);
			s->n.exemplars++;
		} else if (f.num == 4) {
			rc = scan_msg(s, histogram_kinds,
				      sizeof(histogram_kinds), "histogram",
				      f.data, f.end);
			s->n.histograms++;
		} else {
			rc = 0;
		}
		if (rc < 0)
			return rc;
		if (rest == NULL)
			rest = f.start;
		other += (size_t)(f.end - f.start);
	}
	if (n == 0)
		return fail(s, WIRE_BAD, "no labels");

	if (s->tname != NULL) {
		/* Binary search of the sorted names for the tenant's place. */
		for (lo = 0, hi = n; lo < hi;) {
			mid = lo + (hi - lo) / 2;
			d = name_cmp(l[mid].name, l[mid].nlen, s->tname,
				     s->tnlen);
			if (d == 0) {
				lo = mid;
				replace = 1;
				break;
			}
			if (d < 0)
				lo = mid + 1;
			else
				hi = mid;
		}
		at = lo;
		llen += label_size(s->tnlen, s->tvlen) -
			(replace ? l[at].size : 0);
	}
	if (s->rewrite)
		return series_write(s, series, end, l, n, at, replace, llen,
				    rest, other, interleaved);
	if (s->o->on_series != NULL)
		return series_hash(s, l, n, at, replace, llen);
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
		s.tnlen = strlen(s.o->tenant_label);
		s.tvalue = (const uint8_t *)(s.o->tenant_value != NULL ?
					     s.o->tenant_value : "");
		s.tvlen = strlen((const char *)s.tvalue);
		s.rewrite = out != NULL;
		if (label_size(s.tnlen, s.tvlen) <= sizeof(s.tenc))
			s.tenclen = (size_t)(put_label(s.tenc, s.tname, s.tnlen,
						       s.tvalue, s.tvlen) -
					     s.tenc);
	}

	for (; p < end; p = f.end) {
		if (next_field(&s, p, end, &f) < 0)
			return WIRE_BAD;
		if ((f.num == 1 || f.num == 3) && f.type != WT_LEN)
			return wrong_type(&s, "request", &f);
		if (f.num == 4 || f.num == 5)
			return fail(&s, WIRE_V2,
				    "Remote Write 2.0 body (field %u); this endpoint takes 1.0 only",
				    f.num);
		if (f.num == 1) {
			s.what = "series";
			s.index = s.n.series++;
			if ((rc = scan_series(&s, f.data, f.end)) < 0)
				return rc;
			s.what = NULL;
			continue;
		}
		if (f.num == 3) {
			s.what = "metadata";
			s.index = s.n.metadata++;
			if (scan_msg(&s, metadata_kinds, sizeof(metadata_kinds),
				     "metadata", f.data, f.end) < 0)
				return WIRE_BAD;
			s.what = NULL;
		}
		if (s.rewrite &&
		    buf_append(out, f.start, (size_t)(f.end - f.start)) < 0)
			return fail(&s, WIRE_TOO_LARGE,
				    "decoded request over the size limit");
	}
	if (out != NULL && !s.rewrite && buf_append(out, in, len) < 0)
		return fail(&s, WIRE_TOO_LARGE,
			    "decoded request over the size limit");
	if (c != NULL) {
		c->series += s.n.series;
		c->samples += s.n.samples;
		c->histograms += s.n.histograms;
		c->exemplars += s.n.exemplars;
		c->metadata += s.n.metadata;
	}
	return WIRE_OK;
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
}
