/*
 * wire_int.h - what the scanner's files share (wire.c, wire_emit.c,
 * wire_series.c): the state of one wire_scan call, a series between its
 * scan and its output, and the small helpers called per field or label,
 * kept static inline here so that each file's loops inline them. Nothing
 * else includes it; the interface is wire.h.
 */
#ifndef RELAY_WIRE_INT_H
#define RELAY_WIRE_INT_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "buf.h"
#include "labels.h"
#include "wire.h"

#define WIRE_STACK_LABELS 64 /* labels per series before the heap scratch */
#define WIRE_STACK_BYTES 2048 /* label bytes hashed on the stack */

enum { WT_VARINT = 0, WT_FIXED64 = 1, WT_LEN = 2, WT_FIXED32 = 5 };

/* Outcomes of field_parse. */
enum { F_OK, F_TRUNC_VARINT, F_TRUNC_FIXED, F_LONG_VARINT, F_FIELD0,
       F_WIRETYPE, F_LENGTH };

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

/* What is wrong with a series label (label_check). */
enum { L_OK, L_EMPTY_NAME, L_NAME_LONG, L_NAME_BAD, L_DUPLICATE, L_UNSORTED,
       L_EMPTY_VALUE, L_VALUE_LONG, L_VALUE_UTF8, L_METRIC_BAD };

/* A series ahead of the one being scanned, its labels hashed for the
 * relabel cache (wire_series_ahead). */
struct wire_ahead {
	const uint8_t *field;          /* ref: its top-level field */
	const uint8_t *next;           /* ref: the field after it */
	const uint8_t *key;            /* ref: its labels as sent */
	size_t klen;
	uint64_t h;                    /* relabel_cache_hash of key */
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
	struct wire_ahead ahead[4];    /* with a relabel cache: the series
					* hashed ahead, the last at nahead - 1
					* (mod 4) */
	unsigned nahead;
};

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

/*
 * Checks label l of a series (prev is the one before it, or NULL): name,
 * order against prev, value, and the opts bounds. Returns an L_ value.
 * Always inlined: the scanner's loop passes the compiler's growth limits
 * otherwise, and a call per label shows in its time per series.
 */
static inline __attribute__((always_inline)) int
label_check(const struct wire_opts *o, const struct label *l,
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

/* wire.c */

/* Formats the reason into s->why, prefixed with the series or metadata
 * entry being scanned. Returns rc. */
int wire_fail(struct scan *s, int rc, const char *fmt, ...)
	__attribute__((format(printf, 3, 4), cold, noinline));
/* Writes the reason for label_check's rc. Returns WIRE_BAD. */
int wire_label_error(struct scan *s, const struct label *l,
		     const struct label *prev, int rc)
	__attribute__((cold, noinline));
/* Makes room for 2n labels in the thread's scratch and moves the n at l
 * there. Returns the scratch (which keeps owning it), or NULL when memory
 * is short. */
struct label *wire_scratch_grow(struct label *l, size_t n);

/* wire_emit.c: a series' output, its hash and its lane. */

/* Writes the canonical encoding of one label at d; returns the end. */
uint8_t *wire_put_label(uint8_t *d, const uint8_t *name, size_t nlen,
			const uint8_t *value, size_t vlen);
/* Hands series r (its fields at p[0..end)) on: in rewrite mode appends it
 * to s->out as wire.c's file comment shows; reports its hash when asked.
 * Returns 0, or WIRE_TOO_LARGE. */
int wire_series_emit(struct scan *s, const struct series *r,
		     const uint8_t *p, const uint8_t *end);
/* Keeps the sender's own tenant label renamed exported_<name>. Returns 0
 * or WIRE_BAD. */
int wire_exported_name(struct scan *s, struct series *r);
/* Frees wire_emit.c's per-thread scratch. */
void wire_emit_scratch_free(void);

/* Before series field p[..end) is scanned, with a relabel cache: asks
 * for the cache's entry of the next series and the bucket of the one
 * after (relabel_cache_prefetch), hashing its labels now. */
void wire_series_ahead(struct scan *s, const uint8_t *p, const uint8_t *end);
/* The relabel cache hash of key[0..klen): the one wire_series_ahead made
 * for it, or made now. */
uint64_t wire_ahead_hash(const struct scan *s, const uint8_t *key,
			 size_t klen);

/* wire_series.c: a series' labels sorted, or relabeled. */

/* Sorts the labels of series r, which came out of order. Returns 0,
 * WIRE_BAD or WIRE_TOO_LARGE. */
int wire_series_sort(struct scan *s, struct series *r)
	__attribute__((noinline));
/* wire_series_relabel: the rules left the series invalid. */
#define WIRE_REFUSED 2
/* Runs the relabel hook over series r. Returns 0 keep, 1 dropped,
 * WIRE_REFUSED, or WIRE_BAD / WIRE_TOO_LARGE / WIRE_NOMEM. */
int wire_series_relabel(struct scan *s, struct series *r, size_t *cap);
/* Frees wire_series.c's per-thread scratch. */
void wire_series_scratch_free(void);

#endif

