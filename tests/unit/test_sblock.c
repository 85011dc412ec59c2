/*
 * test_sblock.c - merging snappy blocks by concatenating their elements:
 * the merged block must decode, with the snappy library itself, to the
 * concatenation of the parts, and merged request bodies must decode, with
 * protobuf-c, to the union of the requests' series. The same block read
 * piecewise from the parts where they lie (sblock_stream, what the
 * forwarder streams to the upstream) must be the same bytes.
 *
 * Fixtures are read from $RELAY_FIXTURES, or tests/fixtures when unset
 * (run from the top of the tree).
 */
#include "sblock.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <snappy-c.h>

#include "buf.h"
#include "remote.pb-c.h"
#include "testlib.h"
#include "unit.h"

#define OUT_MAX (256u << 20)

static uint32_t rnd_state = 88172645u;

static uint32_t rnd_next(void)
{
	rnd_state ^= rnd_state << 13;
	rnd_state ^= rnd_state >> 17;
	rnd_state ^= rnd_state << 5;
	return rnd_state;
}

/*
 * Fills p[0..n) with data snappy finds both literals and copies in: random
 * bytes, runs of one byte, and repeats of earlier stretches (near and far).
 */
static void fill_data(uint8_t *p, size_t n)
{
	size_t i = 0;

	while (i < n) {
		size_t run = 1 + rnd_next() % 300;
		unsigned kind = rnd_next() % 4;

		if (run > n - i)
			run = n - i;
		if (kind == 0 || i < 16) {
			for (size_t k = 0; k < run; k++)
				p[i + k] = (uint8_t)rnd_next();
		} else if (kind == 1) {
			memset(p + i, (int)(rnd_next() & 0xff), run);
		} else {
			size_t back = 1 + rnd_next() % (kind == 2 ? 16 : i);
			for (size_t k = 0; k < run; k++)
				p[i + k] = p[i + k - back];
		}
		i += run;
	}
}

/*
 * Checks that a stream over the n whole blocks parts[] (preambles stripped
 * from copies with sblock_strip) gives what sblock_concat makes of them,
 * read in pieces of any size and after rewinds. Returns NULL or what is
 * wrong.
 */
static const char *stream_check(const struct sblock_part *parts, size_t n)
{
	struct sblock_part *elements = calloc(n ? n : 1, sizeof(*elements));
	struct sblock_stream s;
	const char *e = NULL;
	uint64_t raw = 0;
	struct buf want;
	int64_t r;

	buf_init(&want, OUT_MAX);
	if (elements == NULL) {
		e = "out of memory";
		goto out;
	}
	r = sblock_concat(&want, parts, n);
	for (size_t i = 0; i < n && e == NULL; i++) {
		elements[i] = parts[i];
		if (sblock_strip(&elements[i], &raw) < 0)
			e = err("sblock_strip refused block %zu", i);
	}
	if (e == NULL && (r < 0 || (uint64_t)r != raw))
		e = "sblock_strip and sblock_concat disagree on the total";
	else if (e == NULL && sblock_stream_init(&s, elements, n, raw) < 0)
		e = "sblock_stream_init refused the parts";
	else if (e == NULL)
		e = stream_is(&s, want.p, want.len);
out:
	free(elements);
	buf_free(&want);
	return e;
}

/*
 * Compresses each of n raw inputs, merges the blocks and checks the result
 * against the concatenation of the inputs, and the stream over the blocks
 * against the merged block (stream_check). Returns NULL or what is wrong
 * (a static string).
 */
static const char *merge_check(uint8_t *const *raws, const size_t *lens,
			       size_t n)
{
	struct sblock_part *parts = calloc(n ? n : 1, sizeof(*parts));
	uint8_t **blocks = calloc(n ? n : 1, sizeof(*blocks));
	uint8_t *want = NULL, *got = NULL;
	size_t total = 0, elements = 0, got_len = 0, off = 0;
	const char *e = NULL;
	struct buf out;
	uint32_t raw;
	int64_t r;

	buf_init(&out, OUT_MAX);
	if (parts == NULL || blocks == NULL) {
		e = "out of memory";
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		size_t zlen, pre;

		if ((blocks[i] = compress(raws[i], lens[i], &zlen)) == NULL) {
			e = "snappy_compress failed";
			goto out;
		}
		parts[i].p = blocks[i];
		parts[i].len = zlen;
		pre = sblock_preamble(blocks[i], zlen, &raw);
		if (pre == 0 || raw != lens[i]) {
			e = "preamble of a snappy block misread";
			goto out;
		}
		total += lens[i];
		elements += zlen - pre;
	}
	r = sblock_concat(&out, parts, n);
	if (r < 0 || (uint64_t)r != total) {
		e = "sblock_concat did not return the decoded total";
		goto out;
	}
	if (out.len != sblock_concat_size(total, elements)) {
		e = "merged block size differs from sblock_concat_size";
		goto out;
	}
	if ((got = uncompress(out.p, out.len, &got_len)) == NULL) {
		e = "snappy rejects the merged block";
		goto out;
	}
	if (got_len != total) {
		e = "merged block decodes to the wrong length";
		goto out;
	}
	if ((want = malloc(total ? total : 1)) == NULL) {
		e = "out of memory";
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		memcpy(want + off, raws[i], lens[i]);
		off += lens[i];
	}
	if (memcmp(want, got, total) != 0)
		e = "merged block decodes to other bytes than the concatenation";
	else
		e = stream_check(parts, n);
out:
	for (size_t i = 0; blocks != NULL && i < n; i++)
		free(blocks[i]);
	free(blocks);
	free(parts);
	free(want);
	free(got);
	buf_free(&out);
	return e;
}

/* Runs merge_check on n random inputs of sizes in [0, maxlen]. */
static const char *merge_random(size_t n, size_t maxlen)
{
	uint8_t **raws = calloc(n, sizeof(*raws));
	size_t *lens = calloc(n, sizeof(*lens));
	const char *e = NULL;

	if (raws == NULL || lens == NULL) {
		e = "out of memory";
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		lens[i] = rnd_next() % (maxlen + 1);
		if ((raws[i] = malloc(lens[i] + 1)) == NULL) {
			e = "out of memory";
			goto out;
		}
		fill_data(raws[i], lens[i]);
	}
	e = merge_check(raws, lens, n);
out:
	for (size_t i = 0; raws != NULL && i < n; i++)
		free(raws[i]);
	free(raws);
	free(lens);
	return e;
}

static void test_preamble(void)
{
	static const uint8_t one[] = { 0x00 }, b127[] = { 0x7f },
		b128[] = { 0x80, 0x01 }, b3[] = { 0xff, 0xff, 0x7f },
		max32[] = { 0xff, 0xff, 0xff, 0xff, 0x0f, 0x42 },
		five[] = { 0x80, 0x80, 0x80, 0x80, 0x01 },
		zero_padded[] = { 0x80, 0x00 };
	uint32_t raw = 12345;

	CHECK_EQ_INT(sblock_preamble(one, 1, &raw), 1);
	CHECK_EQ_INT(raw, 0);
	CHECK_EQ_INT(sblock_preamble(b127, 1, &raw), 1);
	CHECK_EQ_INT(raw, 127);
	CHECK_EQ_INT(sblock_preamble(b128, 2, &raw), 2);
	CHECK_EQ_INT(raw, 128);
	CHECK_EQ_INT(sblock_preamble(b3, 3, &raw), 3);
	CHECK_EQ_INT(raw, 2097151);
	/* Five bytes, the largest 32-bit value; the byte after is data. */
	CHECK_EQ_INT(sblock_preamble(max32, sizeof(max32), &raw), 5);
	CHECK_EQ_INT(raw, 0xffffffffu);
	CHECK_EQ_INT(sblock_preamble(five, 5, &raw), 5);
	CHECK_EQ_INT(raw, 1u << 28);
	CHECK_EQ_INT(sblock_preamble(zero_padded, 2, &raw), 2);
	CHECK_EQ_INT(raw, 0);
}

static void test_preamble_malformed(void)
{
	static const uint8_t cont[] = { 0x80 },
		over32[] = { 0xff, 0xff, 0xff, 0xff, 0x1f },
		over32b[] = { 0x80, 0x80, 0x80, 0x80, 0x10 },
		six[] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0x01 },
		six_zero[] = { 0x80, 0x80, 0x80, 0x80, 0x80, 0x00 },
		two[] = { 0x80, 0x01 };
	uint32_t raw = 777;

	/* Empty and truncated. */
	CHECK_EQ_INT(sblock_preamble(cont, 0, &raw), 0);
	CHECK_EQ_INT(sblock_preamble(cont, 1, &raw), 0);
	CHECK_EQ_INT(sblock_preamble(two, 1, &raw), 0);
	CHECK_EQ_INT(sblock_preamble(six, 4, &raw), 0);
	/* More than 32 bits. */
	CHECK_EQ_INT(sblock_preamble(over32, 5, &raw), 0);
	CHECK_EQ_INT(sblock_preamble(over32b, 5, &raw), 0);
	/* A sixth byte is never read, even when the value would fit. */
	CHECK_EQ_INT(sblock_preamble(six, 6, &raw), 0);
	CHECK_EQ_INT(sblock_preamble(six_zero, 6, &raw), 0);
	/* *raw untouched on failure. */
	CHECK_EQ_INT(raw, 777);
}

/* Snappy agrees with sblock_preamble on blocks it wrote. */
static void test_preamble_matches_snappy(void)
{
	static const size_t sizes[] = { 0, 1, 127, 128, 16383, 16384, 70000,
					2097152 };
	uint8_t *raw = malloc(2097152);

	CHECK(raw != NULL);
	fill_data(raw, 2097152);
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		size_t zlen, n = 0;
		uint32_t got = 0;
		uint8_t *z = compress(raw, sizes[i], &zlen);
		size_t pre;

		if (z == NULL) {
			free(raw);
			CHECK(z != NULL);
		}
		pre = sblock_preamble(z, zlen, &got);
		snappy_uncompressed_length((const char *)z, zlen, &n);
		free(z);
		if (pre != varint_size(sizes[i]) || got != sizes[i] || n != got) {
			free(raw);
			CHECK(pre == varint_size(sizes[i]));
			CHECK(got == sizes[i] && n == got);
		}
	}
	free(raw);
}

static void test_merge_one(void)
{
	uint8_t *raw = malloc(100000);
	size_t len = 100000;

	CHECK(raw != NULL);
	fill_data(raw, len);
	const char *e = merge_check(&raw, &len, 1);
	free(raw);
	CHECK_NOERR(e);
}

/* One part: the merged block is the part itself, byte for byte. */
static void test_merge_one_is_identity(void)
{
	uint8_t raw[5000], *z;
	struct sblock_part part;
	struct buf out;
	size_t zlen;
	int same;

	fill_data(raw, sizeof(raw));
	z = compress(raw, sizeof(raw), &zlen);
	CHECK(z != NULL);
	part.p = z;
	part.len = zlen;
	buf_init(&out, OUT_MAX);
	same = sblock_concat(&out, &part, 1) == (int64_t)sizeof(raw) &&
	       out.len == zlen && memcmp(out.p, z, zlen) == 0;
	buf_free(&out);
	free(z);
	CHECK(same);
}

static void test_merge_two(void)
{
	uint8_t a[3000], b[40000], *raws[2] = { a, b };
	size_t lens[2] = { sizeof(a), sizeof(b) };

	fill_data(a, sizeof(a));
	fill_data(b, sizeof(b));
	CHECK_NOERR(merge_check(raws, lens, 2));
	/* The second block repeats the first: copies in it must still refer
	 * to its own bytes only. */
	memcpy(b, a, sizeof(a));
	memcpy(b + sizeof(a), a, sizeof(a));
	lens[1] = 2 * sizeof(a);
	CHECK_NOERR(merge_check(raws, lens, 2));
}

/* Empty parts (a one-byte block "\0") contribute nothing. */
static void test_merge_empty_parts(void)
{
	uint8_t a[10], b[1], c[200], *raws[5] = { a, b, c, a, b };
	size_t lens[5] = { 0, 0, sizeof(c), 0, 0 };

	fill_data(c, sizeof(c));
	CHECK_NOERR(merge_check(raws, lens, 5));
	CHECK_NOERR(merge_check(raws, lens, 2));
}

/* No parts: a block that decodes to nothing. */
static void test_merge_none(void)
{
	struct buf out;
	size_t n = 99;
	int ok;

	buf_init(&out, 16);
	ok = sblock_concat(&out, NULL, 0) == 0 && out.len == 1 &&
	     snappy_uncompressed_length((const char *)out.p, out.len, &n) ==
		     SNAPPY_OK && n == 0 &&
	     snappy_validate_compressed_buffer((const char *)out.p, out.len) ==
		     SNAPPY_OK;
	buf_free(&out);
	CHECK(ok);
}

static void test_merge_many_small(void)
{
	CHECK_NOERR(merge_random(300, 400));
}

/* Parts larger than snappy's 64 KiB fragments, and many of them. */
static void test_merge_many_large(void)
{
	CHECK_NOERR(merge_random(40, 200000));
	CHECK_NOERR(merge_random(7, 1000000));
}

/* A merged block merges again like any other. */
static void test_merge_nested(void)
{
	uint8_t raw[3][30000], *z[3] = { NULL, NULL, NULL }, *dec = NULL;
	struct sblock_part parts[3];
	struct buf ab, abc;
	size_t zlen[3], n = 0;
	int ok = 0;

	buf_init(&ab, OUT_MAX);
	buf_init(&abc, OUT_MAX);
	for (int i = 0; i < 3; i++) {
		fill_data(raw[i], sizeof(raw[i]));
		if ((z[i] = compress(raw[i], sizeof(raw[i]), &zlen[i])) == NULL)
			goto out;
		parts[i].p = z[i];
		parts[i].len = zlen[i];
	}
	if (sblock_concat(&ab, parts, 2) != 60000)
		goto out;
	parts[0].p = ab.p;
	parts[0].len = ab.len;
	parts[1] = parts[2];
	if (sblock_concat(&abc, parts, 2) != 90000 ||
	    (dec = uncompress(abc.p, abc.len, &n)) == NULL || n != 90000)
		goto out;
	ok = memcmp(dec, raw[0], 30000) == 0 &&
	     memcmp(dec + 30000, raw[1], 30000) == 0 &&
	     memcmp(dec + 60000, raw[2], 30000) == 0;
out:
	for (int i = 0; i < 3; i++)
		free(z[i]);
	free(dec);
	buf_free(&ab);
	buf_free(&abc);
	CHECK(ok);
}

/* Real request bodies, decoded and compressed again. */
static void test_merge_real_data(void)
{
	static const char *const names[] = { "req00000.bin", "req00014.bin",
					     "req00046.bin", "req00003.bin" };
	uint8_t *raws[4] = { NULL, NULL, NULL, NULL };
	size_t lens[4];
	const char *e = NULL;

	for (int i = 0; i < 4 && e == NULL; i++) {
		size_t zlen;
		uint8_t *z = fixture(names[i], &zlen);

		if (z == NULL ||
		    (raws[i] = uncompress(z, zlen, &lens[i])) == NULL)
			e = "cannot read a fixture";
		free(z);
	}
	if (e == NULL)
		e = merge_check(raws, lens, 4);
	for (int i = 0; i < 4; i++)
		free(raws[i]);
	CHECK_NOERR(e);
}

static void test_merge_malformed_part(void)
{
	static const uint8_t trunc[] = { 0x80 },
		over32[] = { 0xff, 0xff, 0xff, 0xff, 0x1f, 0x00 };
	uint8_t raw[1000], *z;
	struct sblock_part parts[3];
	struct buf out;
	size_t zlen;
	int64_t r1, r2, r3;

	fill_data(raw, sizeof(raw));
	z = compress(raw, sizeof(raw), &zlen);
	CHECK(z != NULL);
	buf_init(&out, OUT_MAX);
	parts[0].p = z;
	parts[0].len = zlen;
	parts[2] = parts[0];
	parts[1].p = trunc;
	parts[1].len = sizeof(trunc);
	r1 = sblock_concat(&out, parts, 3);
	parts[1].p = over32;
	parts[1].len = sizeof(over32);
	r2 = sblock_concat(&out, parts, 3);
	parts[1].p = z;
	parts[1].len = 0;
	r3 = sblock_concat(&out, parts, 3);
	buf_free(&out);
	free(z);
	CHECK_EQ_INT(r1, -1);
	CHECK_EQ_INT(r2, -1);
	CHECK_EQ_INT(r3, -1);
}

/* Parts whose stated lengths sum past what a varint32 preamble holds. */
static void test_merge_total_too_large(void)
{
	static const uint8_t big[] = { 0xff, 0xff, 0xff, 0xff, 0x0f, 0x00 },
		one[] = { 0x01, 0x00, 'x' },
		half[] = { 0x80, 0x80, 0x80, 0x80, 0x08, 0x00 };
	struct sblock_part parts[2];
	struct buf out;
	int64_t r1, r2, r3;

	buf_init(&out, OUT_MAX);
	parts[0].p = big;
	parts[0].len = sizeof(big);
	parts[1].p = one;
	parts[1].len = sizeof(one);
	r1 = sblock_concat(&out, parts, 2);
	parts[0].p = half;
	parts[0].len = sizeof(half);
	parts[1] = parts[0];
	r2 = sblock_concat(&out, parts, 2);   /* 2^31 + 2^31 */
	/* Exactly the largest: accepted (nothing is decoded here). */
	parts[0].p = big;
	parts[0].len = sizeof(big);
	parts[1].p = (const uint8_t *)"\x00";
	parts[1].len = 1;
	r3 = sblock_concat(&out, parts, 2);
	buf_free(&out);
	CHECK_EQ_INT(r1, -1);
	CHECK_EQ_INT(r2, -1);
	CHECK_EQ_INT(r3, 0xffffffffll);
}

/* out's bound: one byte short fails, exactly enough succeeds. */
static void test_merge_out_bound(void)
{
	uint8_t a[20000], b[20000], *za, *zb;
	struct sblock_part parts[2];
	struct buf out;
	size_t la, lb, need;
	uint32_t raw;
	int64_t short_r, exact_r, prefix_r;

	fill_data(a, sizeof(a));
	fill_data(b, sizeof(b));
	za = compress(a, sizeof(a), &la);
	zb = compress(b, sizeof(b), &lb);
	if (za == NULL || zb == NULL) {
		free(za);
		free(zb);
		CHECK(za != NULL && zb != NULL);
	}
	parts[0].p = za;
	parts[0].len = la;
	parts[1].p = zb;
	parts[1].len = lb;
	need = sblock_concat_size(sizeof(a) + sizeof(b),
				  la - sblock_preamble(za, la, &raw) +
					  lb - sblock_preamble(zb, lb, &raw));
	buf_init(&out, need - 1);
	short_r = sblock_concat(&out, parts, 2);
	buf_free(&out);
	buf_init(&out, need);
	exact_r = sblock_concat(&out, parts, 2);
	buf_free(&out);
	/* A buffer that already holds bytes has less room left. */
	buf_init(&out, need + 2);
	buf_append(&out, "xyz", 3);
	prefix_r = sblock_concat(&out, parts, 2);
	buf_free(&out);
	free(za);
	free(zb);
	CHECK_EQ_INT(short_r, -1);
	CHECK_EQ_INT(exact_r, 40000);
	CHECK_EQ_INT(prefix_r, -1);
}

/* Appends to what out holds already, leaving it alone. */
static void test_merge_appends(void)
{
	uint8_t raw[500], *z, *dec = NULL;
	struct sblock_part part;
	struct buf out;
	size_t zlen, n = 0;
	int ok;

	fill_data(raw, sizeof(raw));
	z = compress(raw, sizeof(raw), &zlen);
	CHECK(z != NULL);
	part.p = z;
	part.len = zlen;
	buf_init(&out, OUT_MAX);
	buf_append(&out, "HDR", 3);
	ok = sblock_concat(&out, &part, 1) == 500 &&
	     memcmp(out.p, "HDR", 3) == 0 &&
	     (dec = uncompress(out.p + 3, out.len - 3, &n)) != NULL &&
	     n == 500 && memcmp(dec, raw, 500) == 0;
	free(dec);
	free(z);
	buf_free(&out);
	CHECK(ok);
}

/*
 * Merges the compressed bodies of two fixtures and checks, with protobuf-c,
 * that the result holds a's series then b's, and a's metadata then b's.
 */
static const char *merge_fixtures(const char *na, const char *nb)
{
	Prometheus__WriteRequest *a = NULL, *b = NULL, *m = NULL;
	uint8_t *za = NULL, *zb = NULL, *ra = NULL, *rb = NULL, *rm = NULL;
	size_t la = 0, lb = 0, lra = 0, lrb = 0, lrm = 0;
	struct sblock_part parts[2];
	const char *e = NULL;
	struct buf out;

	buf_init(&out, OUT_MAX);
	if ((za = fixture(na, &la)) == NULL || (zb = fixture(nb, &lb)) == NULL) {
		e = "cannot read a fixture";
		goto out;
	}
	parts[0].p = za;
	parts[0].len = la;
	parts[1].p = zb;
	parts[1].len = lb;
	if ((ra = uncompress(za, la, &lra)) == NULL ||
	    (rb = uncompress(zb, lb, &lrb)) == NULL) {
		e = "cannot decode a fixture";
		goto out;
	}
	if (sblock_concat(&out, parts, 2) != (int64_t)(lra + lrb)) {
		e = "sblock_concat failed";
		goto out;
	}
	if ((rm = uncompress(out.p, out.len, &lrm)) == NULL) {
		e = "snappy rejects the merged body";
		goto out;
	}
	a = prometheus__write_request__unpack(NULL, lra, ra);
	b = prometheus__write_request__unpack(NULL, lrb, rb);
	m = prometheus__write_request__unpack(NULL, lrm, rm);
	if (a == NULL || b == NULL || m == NULL) {
		e = "protobuf-c cannot unpack a request";
		goto out;
	}
	if (m->n_timeseries != a->n_timeseries + b->n_timeseries ||
	    m->n_metadata != a->n_metadata + b->n_metadata) {
		e = "merged request has other series or metadata counts";
		goto out;
	}
	for (size_t i = 0; i < m->n_timeseries && e == NULL; i++) {
		const Prometheus__TimeSeries *want = i < a->n_timeseries ?
			a->timeseries[i] : b->timeseries[i - a->n_timeseries];
		if (!message_equal(want, m->timeseries[i]))
			e = "a merged series differs from its source";
	}
	for (size_t i = 0; i < m->n_metadata && e == NULL; i++) {
		const Prometheus__MetricMetadata *want = i < a->n_metadata ?
			a->metadata[i] : b->metadata[i - a->n_metadata];
		if (!message_equal(want, m->metadata[i]))
			e = "merged metadata differs from its source";
	}
out:
	if (a != NULL)
		prometheus__write_request__free_unpacked(a, NULL);
	if (b != NULL)
		prometheus__write_request__free_unpacked(b, NULL);
	if (m != NULL)
		prometheus__write_request__free_unpacked(m, NULL);
	free(za);
	free(zb);
	free(ra);
	free(rb);
	free(rm);
	buf_free(&out);
	return e;
}

static void test_merge_fixture_bodies(void)
{
	CHECK_NOERR(merge_fixtures("req00000.bin", "req00001.bin"));
	CHECK_NOERR(merge_fixtures("req00044.bin", "req00046.bin"));
	/* Series and metadata-only requests. */
	CHECK_NOERR(merge_fixtures("req00002.bin", "req00014.bin"));
	CHECK_NOERR(merge_fixtures("req00014.bin", "req00003.bin"));
	/* A request with itself: every series twice. */
	CHECK_NOERR(merge_fixtures("req00004.bin", "req00004.bin"));
}

/* No parts: a stream of the one-byte block that decodes to nothing. */
static void test_stream_none(void)
{
	static const uint8_t empty[] = { 0x00 };
	struct sblock_stream s;

	CHECK(sblock_stream_init(&s, NULL, 0, 0) == 0);
	CHECK_NOERR(stream_is(&s, empty, sizeof(empty)));
	CHECK_NOERR(stream_check(NULL, 0));
}

/* Totals that take preambles of 1 to 5 bytes (stated lengths only: the
 * stream decodes nothing), and parts with no elements between others. */
static void test_stream_preamble_sizes(void)
{
	static const uint8_t b1[] = { 0x7f, 'a', 'b', 'c' },
		b2[] = { 0x80, 0x01, 'd' },
		b3[] = { 0xff, 0xff, 0x7f, 'e', 'f' },
		b4[] = { 0x80, 0x80, 0x80, 0x7f },
		b5[] = { 0xff, 0xff, 0xff, 0xff, 0x0e, 'g', 'h', 'i', 'j' },
		none[] = { 0x00 };
	const struct sblock_part parts[] = {
		{ b1, sizeof(b1) }, { none, sizeof(none) }, { b2, sizeof(b2) },
		{ b3, sizeof(b3) }, { none, sizeof(none) }, { b4, sizeof(b4) },
		{ b5, sizeof(b5) }, { none, sizeof(none) },
	};

	CHECK_NOERR(stream_check(parts, 1));      /* 1 byte */
	CHECK_NOERR(stream_check(parts, 3));      /* 0x7f + 0x80: 2 bytes */
	CHECK_NOERR(stream_check(parts, 4));      /* 3 bytes */
	CHECK_NOERR(stream_check(parts + 5, 1));  /* 4 bytes */
	CHECK_NOERR(stream_check(parts + 6, 2));  /* 5 bytes */
	CHECK_NOERR(stream_check(parts + 1, 1));  /* nothing but a preamble */
}

/* A malformed preamble is refused and the part left as it was. */
static void test_strip_malformed(void)
{
	static const uint8_t trunc[] = { 0x80 },
		over32[] = { 0xff, 0xff, 0xff, 0xff, 0x1f, 0x00 };
	const struct sblock_part bad[] = {
		{ trunc, sizeof(trunc) }, { over32, sizeof(over32) },
		{ over32, 0 },
	};
	uint64_t raw = 5;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct sblock_part p = bad[i];

		CHECK_EQ_INT(sblock_strip(&p, &raw), -1);
		CHECK(p.p == bad[i].p && p.len == bad[i].len);
		CHECK_EQ_INT(raw, 5);
	}
}

/* A total past what a varint32 preamble holds is refused, as
 * sblock_concat refuses it. */
static void test_stream_total_too_large(void)
{
	struct sblock_stream s;

	CHECK_EQ_INT(sblock_stream_init(&s, NULL, 0, SBLOCK_MAX_RAW + 1ull), -1);
	CHECK_EQ_INT(sblock_stream_init(&s, NULL, 0, SBLOCK_MAX_RAW), 0);
	CHECK_EQ_INT(s.len, 5);
}

int main(void)
{
	RUN(test_preamble);
	RUN(test_preamble_malformed);
	RUN(test_preamble_matches_snappy);
	RUN(test_merge_one);
	RUN(test_merge_one_is_identity);
	RUN(test_merge_two);
	RUN(test_merge_empty_parts);
	RUN(test_merge_none);
	RUN(test_merge_many_small);
	RUN(test_merge_many_large);
	RUN(test_merge_nested);
	RUN(test_merge_real_data);
	RUN(test_merge_malformed_part);
	RUN(test_merge_total_too_large);
	RUN(test_merge_out_bound);
	RUN(test_merge_appends);
	RUN(test_merge_fixture_bodies);
	RUN(test_stream_none);
	RUN(test_stream_preamble_sizes);
	RUN(test_strip_malformed);
	RUN(test_stream_total_too_large);
	return unit_done();
}
