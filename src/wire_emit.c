/*
 * wire_emit.c - a scanned series written out (wire.c): its final labels
 * (the tenant label set, the sender's one kept as exported_<name>, a
 * dropped label left out) followed by its other fields, into the output or
 * into its delivery lane; its hash (for admit and on_series) and its lane
 * key. The encoding is drawn in wire.c's file comment.
 */
#include "wire_int.h"
#include "lanes.h"
#include "hash_mix.h"

#include <stdlib.h>
#include <string.h>

/* Per-thread scratch for the final labels of a series too long for the
 * stack, kept between calls until wire_scratch_free. */
static __thread uint8_t *scratch_bytes;
static __thread size_t scratch_bytes_cap;

/* Writes the canonical encoding of one label at d; returns the end. */
uint8_t *wire_put_label(uint8_t *d, const uint8_t *name, size_t nlen,
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
			d = wire_put_label(d, s->exname, s->exnlen, l[r->at].value,
					   l[r->at].vlen);
		if (i == r->at) {
			if (s->tenclen > 0)
				d = (uint8_t *)memcpy(d, s->tenc, s->tenclen) +
				    s->tenclen;
			else
				d = wire_put_label(d, s->tname, s->tnlen, s->tvalue,
						   s->tvlen);
		}
		if (i == r->ex && !r->ex_first)
			d = wire_put_label(d, s->exname, s->exnlen, l[r->at].value,
					   l[r->at].vlen);
		if (i == r->at && r->replace)
			continue;
		if (i == r->n)
			break;
		if (i == r->drop)
			continue;
		if (l[i].enc == NULL) {
			d = wire_put_label(d, l[i].name, l[i].nlen, l[i].value,
					   l[i].vlen);
			continue;
		}
		if (run == NULL)
			run = l[i].enc;
		run_end = l[i].enc + l[i].size;
	}
	return d;
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
		h = hash_mix(hash_load64(p) ^ k1, hash_load64(p + 8) ^ h);
	if (n > 8) {
		a = hash_load64(p);
		b = hash_load64(p + n - 8);
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
	/* Histogram samples count as samples here, as for a series relabel
	 * rules drop or leave invalid (wire.c). */
	uint64_t samples = s->n.samples - s->before.samples +
			   s->n.histograms - s->before.histograms;

	s->n.series--;
	s->n.samples = s->before.samples;
	s->n.histograms = s->before.histograms;
	s->n.exemplars = s->before.exemplars;
	s->n.refused_series++;
	s->n.refused_samples += samples;
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
int wire_series_emit(struct scan *s, const struct series *r,
		     const uint8_t *p, const uint8_t *end)
{
	size_t body = r->llen + r->other, total = 1 + varint_size(body) + body;
	uint8_t tmp[WIRE_STACK_BYTES], *d = tmp, *labels = NULL;
	struct buf *out = s->out;
	struct field f;
	uint64_t h = 0;
	int direct = 1;   /* labels written straight into out */
	int keyed = 0;    /* s->lane set from lane_key */

	/* The lane, from the instance (or name) label alone when it has one:
	 * then the labels go straight into the lane's output, or (only the
	 * lane asked for, lane_runs) need not be written at all. */
	if ((s->lanes != NULL || s->o->lane_runs != NULL) && lane_key(s, r, &h)) {
		s->lane = lanes_of(h);
		if (s->lanes != NULL)
			out = &s->lanes[s->lane];
		else if (s->o->admit == NULL && s->o->on_series == NULL)
			return 0;
		keyed = 1;
	}
	if (!s->rewrite || (s->lanes != NULL && !keyed)) {
		/* The final labels first, for their hash (and lane). */
		if (r->llen > sizeof(tmp) && r->llen > scratch_bytes_cap) {
			if ((d = realloc(scratch_bytes, r->llen)) == NULL)
				return wire_fail(s, WIRE_TOO_LARGE,
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
		if (!keyed)
			s->lane = lanes_of(h);
		if (!s->rewrite)
			return 0;
		out = &s->lanes[s->lane];
		labels = d;
		direct = 0;
	}
	/* lane_out[0].max bounds the lanes' sum, as out->max bounds out. */
	if ((s->lanes != NULL &&
	     (s->lane_bytes += total) > s->lanes[0].max) ||
	    (out->cap - out->len < total && buf_reserve(out, total) < 0)) {
		s->what = NULL;
		return wire_fail(s, WIRE_TOO_LARGE,
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
int wire_exported_name(struct scan *s, struct series *r)
{
	static const char prefix[] = "exported_";
	size_t k = sizeof(prefix) - 1, i;

	if (k + s->tnlen > sizeof(s->exname))   /* a long [tenancy] label */
		return wire_fail(s, WIRE_BAD, "the sender's tenant label cannot be "
				 "kept: exported_ name too long");
	memcpy(s->exname + k, s->tname, s->tnlen);
	memcpy(s->exname, prefix, k);
	s->exnlen = k + s->tnlen;
	for (i = 0; i < r->n; i++) {
		if (name_cmp(r->l[i].name, r->l[i].nlen, s->exname,
			     s->exnlen) != 0)
			continue;
		if (s->exnlen + k > sizeof(s->exname))
			return wire_fail(s, WIRE_BAD, "too many exported_ labels");
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

void wire_emit_scratch_free(void)
{
	free(scratch_bytes);
	scratch_bytes = NULL;
	scratch_bytes_cap = 0;
}
