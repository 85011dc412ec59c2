/*
 * wire_series.c - the labels of a scanned series (wire.c) put in order:
 * sorted when they came out of order, and passed through the relabel
 * hook, what it leaves checked as sent labels are.
 */
#include "wire_int.h"
#include "err.h"
#include "relabel.h"
#include "relabel_cache.h"

#include <stdlib.h>
#include <string.h>


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
int wire_series_sort(struct scan *s, struct series *r)
{
	char q[LABELS_QUOTE_SIZE];

	labels_sort(r->l, r->n);
	for (size_t i = 1; i < r->n; i++)
		if (name_cmp(r->l[i].name, r->l[i].nlen, r->l[i - 1].name,
			     r->l[i - 1].nlen) == 0)
			return wire_fail(s, WIRE_BAD, "duplicate label name \"%s\"",
					 labels_quote(q, r->l[i].name, r->l[i].nlen));
	s->n.sorted++;
	if (s->rewrite || s->out == NULL)
		return 0;
	if (buf_append(s->out, s->base, (size_t)(s->field - s->base)) < 0)
		return wire_fail(s, WIRE_TOO_LARGE,
				 "decoded request over the size limit");
	s->rewrite = 1;
	return 0;
}

/* The thread's labels handed to the relabel hook, kept between calls
 * until wire_scratch_free. */
static __thread struct relabel_label *relabel_buf;
static __thread struct label *relabel_out;   /* the labels it leaves */
static __thread size_t relabel_buf_cap;
/* The final labels of a series in canonical encoding, into the cache. */
static __thread uint8_t *relabel_enc;
static __thread size_t relabel_enc_cap;

/* Why the rules left a series invalid, besides label_check's L_ values. */
enum { R_TOO_MANY = 100, R_NO_NAME };

/* Keeps the reason of the first series of the request the rules left
 * invalid: label_check's rc for label l, or R_TOO_MANY, R_NO_NAME.
 * Returns WIRE_REFUSED. */
static int refused(struct scan *s, const struct label *l,
		   const struct label *prev, int rc)
	__attribute__((cold, noinline));
static int refused(struct scan *s, const struct label *l,
		   const struct label *prev, int rc)
{
	s->what = "relabeled series";
	if (s->n.invalid_series > 0)
		;       /* the first one's reason is kept */
	else if (rc == R_TOO_MANY)
		wire_fail(s, WIRE_BAD, "more than %zu labels after relabeling",
			  s->o->max_labels_per_series);
	else if (rc == R_NO_NAME)
		wire_fail(s, WIRE_BAD, "empty metric name: the rules removed "
			  "__name__");
	else
		wire_label_error(s, l, prev, rc);
	s->what = "series";
	return WIRE_REFUSED;
}

/* Whether ls[0..n) holds a label named __name__. */
static int has_metric_name(const struct label *ls, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (ls[i].nlen == 8 && memcmp(ls[i].name, "__name__", 8) == 0)
			return 1;
	return 0;
}

/* Makes room for room labels in relabel_buf and relabel_out. Returns 0,
 * or WIRE_NOMEM with the reason. */
static int labels_room(struct scan *s, size_t room)
{
	if (room > relabel_buf_cap) {
		struct relabel_label *b = realloc(relabel_buf, room * sizeof(*b));
		struct label *o = b ? realloc(relabel_out, room * sizeof(*o)) : NULL;
		if (b != NULL)
			relabel_buf = b;
		if (o == NULL)
			return wire_fail(s, WIRE_NOMEM, "out of memory for labels");
		relabel_out = o;
		relabel_buf_cap = room;
	}
	return 0;
}

/*
 * Runs the relabel hook over series r (its label array has room for *cap)
 * and checks what it leaves as sent labels are checked. Returns as
 * wire_series_relabel.
 */
static int relabel_run(struct scan *s, struct series *r, size_t *cap)
{
	size_t max = s->o->max_labels_per_series, room, n = r->n, i, j = 0, norig;
	size_t prev_sent = SIZE_MAX;   /* prev is orig[prev_sent] */
	const struct label *orig;     /* the labels as sent */
	struct label *prev = NULL;
	int rc, d, named = 0;

	room = max ? max + 1 : 2 * n + 16;
	room = room > n ? room : n;
	if ((rc = labels_room(s, room)) < 0)
		return rc;
	orig = r->l;
	for (i = 0; i < n; i++)
		relabel_buf[i] = (struct relabel_label){ r->l[i].name,
			r->l[i].nlen, r->l[i].value, r->l[i].vlen };
	rc = s->o->relabel(s->o->relabel_arg, relabel_buf, &n, room);
	if (rc == ERR_NOMEM)
		return wire_fail(s, WIRE_NOMEM, "out of memory for relabeling");
	if (rc == ERR_FULL || (rc == 0 && max && n > max))
		return refused(s, NULL, NULL, R_TOO_MANY);
	if (rc < 0)
		return wire_fail(s, WIRE_BAD, "relabeling failed: %s", err_str(rc));
	if (rc == 1 || n == 0)
		return 1;
	/* The result goes to relabel_out (room >= n), which r then holds;
	 * the labels as sent stay where they are, in orig. */
	r->l = relabel_out;
	*cap = relabel_buf_cap;
	norig = r->n;
	r->llen = 0;
	for (r->n = 0; r->n < n; prev = &r->l[r->n++]) {
		const struct relabel_label *b = &relabel_buf[r->n];
		const struct label *o;
		struct label *l = &r->l[r->n];

		/* A label as sent (the same bytes) keeps its encoding and its
		 * checks; only its place is checked again (not after the one
		 * sent before it: those were in order). */
		while (j < norig && orig[j].name != b->name &&
		       name_cmp(orig[j].name, orig[j].nlen, b->name,
				b->nlen) < 0)
			j++;
		o = j < norig ? &orig[j] : NULL;
		if (o != NULL && o->name == b->name && o->nlen == b->nlen &&
		    o->value == b->value && o->vlen == b->vlen) {
			*l = *o;
			if (prev != NULL && prev_sent != j - 1 &&
			    (d = name_cmp(l->name, l->nlen, prev->name,
					  prev->nlen)) <= 0)
				return refused(s, l, prev, d == 0 ?
					       L_DUPLICATE : L_UNSORTED);
			prev_sent = j++;
		} else {
			*l = (struct label){ .name = b->name, .nlen = b->nlen,
				.value = b->value, .vlen = b->vlen };
			l->size = label_size(l->nlen, l->vlen);
			if ((rc = label_check(s->o, l, prev)) != L_OK)
				return refused(s, l, prev, rc);
			prev_sent = SIZE_MAX;
		}
		named |= l->nlen == 8 && l->name[0] == '_' &&
			 memcmp(l->name, "__name__", 8) == 0;
		r->llen += l->size;
	}
	if (!named && has_metric_name(orig, norig))
		return refused(s, NULL, NULL, R_NO_NAME);
	return 0;
}

/* The labels of series r as sent, the cache's key: their bytes, when
 * they came sorted, each in canonical encoding, side by side (as
 * Prometheus sends them); NULL otherwise. */
static const uint8_t *cache_key(const struct series *r, size_t *klen)
{
	const uint8_t *end;

	if (r->unsorted || r->n == 0 || r->l[0].enc == NULL)
		return NULL;
	end = r->l[0].enc + r->l[0].size;
	for (size_t i = 1; i < r->n; i++) {
		if (r->l[i].enc != end)
			return NULL;
		end += r->l[i].size;
	}
	*klen = (size_t)(end - r->l[0].enc);
	return r->l[0].enc;
}

/* Reads one varint of the cached labels at *p (< end). */
static inline int cached_varint(const uint8_t **p, const uint8_t *end,
				uint64_t *v)
{
	return *p < end && varint_get(p, end, 5, v) == F_OK ? 0 : -1;
}

/* Series r takes the final labels the cache gave, p[0..len) (canonical
 * encoding, as cache_remember wrote them). Returns 0, 1 when the entry
 * cannot be read (then the rules decide: the client is not to blame), or
 * WIRE_NOMEM with the reason. */
static int cache_labels(struct scan *s, struct series *r, size_t *cap,
			const uint8_t *p, size_t len)
{
	const uint8_t *end = p + len, *q, *f;
	uint64_t body, nlen, vlen;
	size_t n = 0;
	int rc;

	/* a label takes 8 bytes at least (names and values are not empty) */
	if ((rc = labels_room(s, len / 8 + 1)) < 0)
		return rc;
	for (; p < end; p = f, n++) {
		struct label *l = &relabel_out[n];

		if (end - p >= 6 && p[1] < 0x80 && p[3] < 0x80 &&
		    (size_t)p[1] + 2 <= (size_t)(end - p)) {
			/* every length in one byte, as nearly always */
			l->name = p + 4;
			l->nlen = p[3];
			l->value = p + 6 + p[3];
			l->vlen = p[5 + p[3]];
			f = p + 2 + p[1];
		} else {
			q = p + 1;
			if (cached_varint(&q, end, &body) < 0 ||
			    body > (uint64_t)(end - q) ||
			    (f = q + body, *q++ != 0x0a) ||
			    cached_varint(&q, f, &nlen) < 0 ||
			    nlen > (uint64_t)(f - q) ||
			    (l->name = q, q += nlen, q >= f) || *q++ != 0x12 ||
			    cached_varint(&q, f, &vlen) < 0 ||
			    vlen != (uint64_t)(f - q))
				return 1;
			l->nlen = (size_t)nlen;
			l->value = q;
			l->vlen = (size_t)vlen;
		}
		l->enc = p;
		l->size = (size_t)(f - p);
		if (n + 1 == relabel_buf_cap && f < end)
			return 1;
	}
	r->l = relabel_out;
	r->n = n;
	r->llen = len;
	*cap = relabel_buf_cap;
	return 0;
}

/* Remembers what the rules made of the series whose labels as sent are
 * key[0..klen) (hash h): dropped (rc 1), or r's final labels (rc 0),
 * written in canonical encoding. */
static void cache_remember(struct scan *s, const struct series *r, int rc,
			   const uint8_t *key, size_t klen, uint64_t h)
{
	uint8_t *d;

	if (rc == 0 && r->llen > relabel_enc_cap) {
		if ((d = realloc(relabel_enc, r->llen)) == NULL)
			return;
		relabel_enc = d;
		relabel_enc_cap = r->llen;
	}
	d = relabel_enc;
	for (size_t i = 0; rc == 0 && i < r->n; i++) {
		const struct label *l = &r->l[i];

		if (l->enc != NULL)
			d = (uint8_t *)memcpy(d, l->enc, l->size) + l->size;
		else
			d = wire_put_label(d, l->name, l->nlen, l->value, l->vlen);
	}
	relabel_cache_put(s->o->relabel_cache, s->o->relabel_scope, h, key,
			  klen, rc == 1, relabel_enc, rc == 0 ? r->llen : 0);
}

/*
 * Runs the relabel hook over series r (its label array has room for *cap)
 * and checks what it leaves as sent labels are checked; or takes what the
 * cache (wire_opts.relabel_cache) remembers of the same labels. Returns 0
 * keep, 1 dropped, WIRE_REFUSED when the rules left the series invalid
 * (the first such series' reason in s->why), or WIRE_BAD / WIRE_TOO_LARGE /
 * WIRE_NOMEM with the reason (the request is refused).
 */
int wire_series_relabel(struct scan *s, struct series *r, size_t *cap)
{
	const uint8_t *key = NULL, *value;
	size_t klen = 0, len = 0;
	uint64_t h = 0;
	int dropped = 0, rc;

	if (s->o->relabel_cache != NULL && (key = cache_key(r, &klen)) != NULL) {
		h = wire_ahead_hash(s, key, klen);
		/* the labels stay in the cache: nothing is put into it before
		 * this series is written out */
		if (relabel_cache_get(s->o->relabel_cache, s->o->relabel_scope,
				      h, key, klen, &dropped, &value, &len) == 1) {
			if (dropped)
				return 1;
			if ((rc = cache_labels(s, r, cap, value, len)) != 1)
				return rc;
			/* unreadable: the rules run, and their result replaces it */
		}
	}
	rc = relabel_run(s, r, cap);
	if (key != NULL && (rc == 0 || rc == 1))
		cache_remember(s, r, rc, key, klen, h);
	return rc;
}

void wire_series_scratch_free(void)
{
	free(relabel_buf);
	relabel_buf = NULL;
	free(relabel_out);
	relabel_out = NULL;
	relabel_buf_cap = 0;
	free(relabel_enc);
	relabel_enc = NULL;
	relabel_enc_cap = 0;
}
