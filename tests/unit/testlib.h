/*
 * testlib.h - what several unit tests share: reading the captured requests
 * under tests/fixtures, snappy blocks made and decoded with the snappy
 * library, and requests held against protobuf-c, the reference decoder
 * generated from proto/ (counts, packed bytes, series); merged blocks read
 * piecewise (sblock_stream) held against the block they must give.
 *
 * Like unit.h it is a header only: every function is static inline, so a
 * test binary compiles in the ones it uses and no Makefile rule is needed.
 *
 * Fixtures are read from $RELAY_FIXTURES, or tests/fixtures when unset
 * (run from the top of the tree).
 */
#ifndef RELAY_TESTLIB_H
#define RELAY_TESTLIB_H

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <snappy-c.h>

#include "remote.pb-c.h"
#include "sblock.h"
#include "unit.h"
#include "wire.h"

/* Fails the current test with the message a checker returned (NULL: no
 * failure). */
#define CHECK_NOERR(expr)                                                     \
	do {                                                                  \
		const char *check_e = (expr);                                 \
		if (check_e != NULL) {                                        \
			snprintf(unit_msg, sizeof(unit_msg), "%s:%d: %s",     \
				 __FILE__, __LINE__, check_e);                \
			unit_cur_failed = 1;                                  \
			return;                                               \
		}                                                             \
	} while (0)

/* ---- reasons ----------------------------------------------------------- */

/* Formats a reason a checker returns. Returns a static buffer (nobody
 * frees) that the next call overwrites: a caller that passes one reason
 * into the next copies it first. */
static inline const char *err(const char *fmt, ...)
	__attribute__((format(printf, 1, 2)));
static inline const char *err(const char *fmt, ...)
{
	static char buf[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	return buf;
}

/* ---- fixtures ---------------------------------------------------------- */

/* Returns the fixture directory: $RELAY_FIXTURES or tests/fixtures (not
 * to be freed). */
static inline const char *fixture_dir(void)
{
	const char *dir = getenv("RELAY_FIXTURES");

	return dir != NULL ? dir : "tests/fixtures";
}

/* Reads fixture name (a compressed body as Prometheus sent it). Returns a
 * malloc'd buffer (caller frees) and its length in *len, or NULL. */
static inline uint8_t *fixture(const char *name, size_t *len)
{
	char path[512];

	snprintf(path, sizeof(path), "%s/%s", fixture_dir(), name);
	return unit_read_file(path, len);
}

/* ---- snappy ------------------------------------------------------------ */

/* Compresses raw[0..len) into one snappy block. Returns a malloc'd block
 * (caller frees) and its length in *zlen, or NULL. */
static inline uint8_t *compress(const uint8_t *raw, size_t len, size_t *zlen)
{
	size_t cap = snappy_max_compressed_length(len);
	uint8_t *z = malloc(cap ? cap : 1);

	*zlen = cap;
	if (z != NULL && snappy_compress((const char *)raw, len, (char *)z,
					 zlen) != SNAPPY_OK) {
		free(z);
		z = NULL;
	}
	return z;
}

/* Decodes the snappy block z[0..zlen), which the snappy library must
 * validate first. Returns a malloc'd buffer (caller frees) and its length
 * in *len, or NULL. */
static inline uint8_t *uncompress(const uint8_t *z, size_t zlen, size_t *len)
{
	uint8_t *raw;

	if (snappy_validate_compressed_buffer((const char *)z, zlen) != SNAPPY_OK ||
	    snappy_uncompressed_length((const char *)z, zlen, len) != SNAPPY_OK)
		return NULL;
	if ((raw = malloc(*len ? *len : 1)) == NULL)
		return NULL;
	if (snappy_uncompress((const char *)z, zlen, (char *)raw, len) !=
	    SNAPPY_OK) {
		free(raw);
		return NULL;
	}
	return raw;
}

/* ---- streamed blocks --------------------------------------------------- */

/* Reads s in pieces of at most step bytes (as curl's read callback is fed)
 * into got, which has room for cap bytes; a piece shorter than step must
 * be the last. Returns NULL or what is wrong, with the bytes read in *len. */
static inline const char *stream_pieces(struct sblock_stream *s, size_t step,
					uint8_t *got, size_t cap, size_t *len)
{
	uint8_t more[1];
	size_t k;

	*len = 0;
	while (cap - *len >= step &&
	       (k = sblock_stream_read(s, got + *len, step)) > 0) {
		*len += k;
		if (k < step && sblock_stream_read(s, more, sizeof(more)) != 0)
			return err("a short read of %zu bytes in pieces of %zu "
				   "was not the last", k, step);
	}
	return NULL;
}

/*
 * Reads s from where it is as a sender does with sblock_stream_iov: up to
 * max_iov pieces where they lie, of which the first step bytes are taken
 * (a short sendmsg), then skipped. Returns NULL or what went wrong.
 */
static inline const char *stream_iov_pieces(struct sblock_stream *s,
					    int max_iov, size_t step,
					    uint8_t *got, size_t cap,
					    size_t *len)
{
	struct iovec iov[8];
	int k;

	*len = 0;
	while ((k = sblock_stream_iov(s, iov, max_iov)) > 0) {
		size_t take = 0;
		for (int i = 0; i < k && take < step; i++) {
			size_t n = iov[i].iov_len;
			if (n == 0)
				return "an empty piece";
			if (n > step - take)
				n = step - take;
			if (*len + n > cap)
				return "more bytes than the block has";
			memcpy(got + *len, iov[i].iov_base, n);
			*len += n;
			take += n;
		}
		sblock_stream_skip(s, take);
	}
	if (s->pos != s->len)
		return err("no pieces left at %llu of %llu bytes",
			   (unsigned long long)s->pos,
			   (unsigned long long)s->len);
	return NULL;
}

/*
 * Checks that s gives exactly want[0..len): read from where it is (its
 * start, unread) in pieces of 7 bytes, then after rewinds in pieces of 1
 * and 4096 bytes and all at once, and after a rewind from the middle of a
 * piece; and that it gives nothing more at its end. Then the same bytes
 * through sblock_stream_iov and sblock_stream_skip, with 1, 3 and 8 pieces
 * a time and 1, 5 and 5000 bytes taken of them. Returns NULL or what
 * differs.
 */
static inline const char *stream_is(struct sblock_stream *s,
				    const uint8_t *want, size_t len)
{
	static const size_t steps[] = { 7, 1, 4096 };
	size_t cap = len + 4096, got_len;
	uint8_t *got = malloc(cap);
	const char *e = NULL;

	if (got == NULL)
		return "out of memory";
	if (s->len != len)
		e = err("stream length %llu, want %zu",
			(unsigned long long)s->len, len);
	for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]) && e == NULL; i++) {
		if (i > 0)
			sblock_stream_rewind(s);
		if ((e = stream_pieces(s, steps[i], got, cap, &got_len)) == NULL &&
		    (got_len != len || memcmp(got, want, len) != 0))
			e = err("read in pieces of %zu: %zu bytes, not the %zu "
				"wanted byte for byte", steps[i], got_len, len);
	}
	if (e == NULL) {
		/* Halfway and 3 bytes into a piece of 7, then back. */
		sblock_stream_rewind(s);
		for (size_t k = 0; k < len / 2 + 3 && k < len; k += 7)
			sblock_stream_read(s, got, 7);
		sblock_stream_rewind(s);
		got_len = sblock_stream_read(s, got, cap);
		if (got_len != len || memcmp(got, want, len) != 0)
			e = "after a rewind from the middle: other bytes";
		else if (sblock_stream_read(s, got, cap) != 0 || s->pos != s->len)
			e = "bytes after the end";
	}
	for (int m = 1; m <= 8 && e == NULL; m = m == 1 ? 3 : m + 5) {
		static const size_t takes[] = { 1, 5, 5000 };
		for (size_t t = 0; t < 3 && e == NULL; t++) {
			sblock_stream_rewind(s);
			if ((e = stream_iov_pieces(s, m, takes[t], got, cap,
						   &got_len)) == NULL &&
			    (got_len != len || memcmp(got, want, len) != 0))
				e = err("through iovecs of %d pieces taking "
					"%zu: %zu bytes, not the %zu wanted",
					m, takes[t], got_len, len);
		}
	}
	free(got);
	return e;
}

/* ---- counts ------------------------------------------------------------ */

/* Fills *c with the counts protobuf-c finds in r (nothing allocated). */
static inline void ref_counts(const Prometheus__WriteRequest *r,
			      struct wire_counts *c)
{
	memset(c, 0, sizeof(*c));
	c->series = r->n_timeseries;
	c->metadata = r->n_metadata;
	for (size_t i = 0; i < r->n_timeseries; i++) {
		c->samples += r->timeseries[i]->n_samples;
		c->exemplars += r->timeseries[i]->n_exemplars;
		c->histograms += r->timeseries[i]->n_histograms;
	}
}

/* Returns 1 when a and b hold the same five counts, else 0. */
static inline int counts_equal(const struct wire_counts *a,
			       const struct wire_counts *b)
{
	return a->series == b->series && a->samples == b->samples &&
	       a->exemplars == b->exemplars &&
	       a->histograms == b->histograms && a->metadata == b->metadata;
}

/* Returns NULL when a and b hold the same counts, else both sets of counts
 * in err()'s buffer (nobody frees). */
static inline const char *counts_check(const struct wire_counts *a,
				       const struct wire_counts *b)
{
	if (counts_equal(a, b))
		return NULL;
	return err("counts differ: series %llu/%llu samples %llu/%llu "
		   "exemplars %llu/%llu histograms %llu/%llu "
		   "metadata %llu/%llu",
		   (unsigned long long)a->series,
		   (unsigned long long)b->series,
		   (unsigned long long)a->samples,
		   (unsigned long long)b->samples,
		   (unsigned long long)a->exemplars,
		   (unsigned long long)b->exemplars,
		   (unsigned long long)a->histograms,
		   (unsigned long long)b->histograms,
		   (unsigned long long)a->metadata,
		   (unsigned long long)b->metadata);
}

/* ---- protobuf-c messages ----------------------------------------------- */

/* Returns the bits of d, so that NaN payloads and -0.0 compare too. */
static inline uint64_t double_bits(double d)
{
	uint64_t u;

	memcpy(&u, &d, sizeof(u));
	return u;
}

/* Packs m with protobuf-c. Returns malloc'd bytes (caller frees) and their
 * length in *len, or NULL. */
static inline uint8_t *pack(const ProtobufCMessage *m, size_t *len)
{
	uint8_t *p;

	*len = protobuf_c_message_get_packed_size(m);
	p = malloc(*len + 1);
	if (p != NULL)
		protobuf_c_message_pack(m, p);
	return p;
}

/* Returns 1 when messages a and b pack to the same bytes, else 0 (also
 * when memory is short). */
static inline int message_equal(const void *a, const void *b)
{
	size_t na, nb;
	uint8_t *pa = pack(a, &na), *pb = pack(b, &nb);
	int eq = pa != NULL && pb != NULL && na == nb &&
		 memcmp(pa, pb, na) == 0;

	free(pa);
	free(pb);
	return eq;
}

/*
 * Checks that series out is series in with label tenant=value set: out's
 * labels sorted, the tenant label there exactly once with that value, the
 * other labels in's (a tenant label in in is the one replaced), and the
 * samples (value bits, timestamp and packed bytes), exemplars and
 * histograms in's. With tenant NULL, out must pack to in's bytes. Returns
 * NULL or what differs (a constant or err()'s buffer; nobody frees).
 */
/* Orders labels by name, as qsort wants. */
static inline int label_name_cmp(const void *a, const void *b)
{
	return strcmp((*(Prometheus__Label *const *)a)->name,
		      (*(Prometheus__Label *const *)b)->name);
}

static inline const char *series_equal(const Prometheus__TimeSeries *in,
				       const Prometheus__TimeSeries *out,
				       const char *tenant, const char *value)
{
	/* The model: in's labels, the one named tenant (if any) renamed
	 * exported_<tenant> (one more exported_ while the name is taken, as
	 * Prometheus does), tenant=value added, sorted. */
	static const char *names[20000], *values[20000];
	char exname[300];
	size_t i, j, n = 0;

	if (tenant == NULL)
		return message_equal(in, out) ? NULL : "series differs";
	if (in->n_labels + 2 > sizeof(names) / sizeof(names[0]))
		return "too many labels for the model";
	snprintf(exname, sizeof(exname), "exported_%s", tenant);
	for (i = 0; i < in->n_labels; i++)
		if (strcmp(in->labels[i]->name, exname) == 0) {
			char tmp[sizeof(exname)];
			if (strlen(exname) + 10 > sizeof(exname))
				return "exported_ name too long for the model";
			snprintf(tmp, sizeof(tmp), "exported_%s", exname);
			memcpy(exname, tmp, sizeof(exname));
			i = (size_t)-1;
		}
	for (i = 0; i < in->n_labels; i++) {
		int own = strcmp(in->labels[i]->name, tenant) == 0;
		names[n] = own ? exname : in->labels[i]->name;
		values[n++] = in->labels[i]->value;
	}
	names[n] = tenant;
	values[n++] = value;
	for (i = 1; i < n; i++)
		for (j = i; j > 0 && strcmp(names[j - 1], names[j]) > 0; j--) {
			const char *t = names[j]; names[j] = names[j - 1]; names[j - 1] = t;
			t = values[j]; values[j] = values[j - 1]; values[j - 1] = t;
		}
	if (out->n_labels != n)
		return err("%zu labels, the model has %zu", out->n_labels, n);
	for (i = 0; i < n; i++)
		if (strcmp(names[i], out->labels[i]->name) != 0 ||
		    strcmp(values[i], out->labels[i]->value) != 0)
			return err("label %zu is %s=%s, the model's %s=%s", i,
				   out->labels[i]->name, out->labels[i]->value,
				   names[i], values[i]);
	if (in->n_samples != out->n_samples ||
	    in->n_exemplars != out->n_exemplars ||
	    in->n_histograms != out->n_histograms)
		return "sample, exemplar or histogram counts differ";
	for (i = 0; i < in->n_samples; i++)
		if (double_bits(in->samples[i]->value) !=
			    double_bits(out->samples[i]->value) ||
		    in->samples[i]->timestamp != out->samples[i]->timestamp ||
		    !message_equal(in->samples[i], out->samples[i]))
			return err("sample %zu differs", i);
	for (i = 0; i < in->n_exemplars; i++)
		if (!message_equal(in->exemplars[i], out->exemplars[i]))
			return err("exemplar %zu differs", i);
	for (i = 0; i < in->n_histograms; i++)
		if (!message_equal(in->histograms[i], out->histograms[i]))
			return err("histogram %zu differs", i);
	return NULL;
}

#endif
