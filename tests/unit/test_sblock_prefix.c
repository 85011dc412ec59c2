/*
 * test_sblock_prefix.c - the start of a snappy block as a block of its
 * own: for cuts anywhere (inside a literal, inside a copy, on an element's
 * end, the whole block) the prefix must decode, with the snappy library
 * itself, to the first bytes of the whole, take no more bytes than the
 * whole (but a re-encoded last element), and malformed blocks or cuts past
 * the end are refused.
 */
#include "sblock_prefix.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <snappy-c.h>

#include "buf.h"
#include "unit.h"

#define OUT_MAX (64u << 20)

static uint32_t rnd_state = 2463534242u;

static uint32_t rnd_next(void)
{
	rnd_state ^= rnd_state << 13;
	rnd_state ^= rnd_state >> 17;
	rnd_state ^= rnd_state << 5;
	return rnd_state;
}

/* Fills p[0..n) with literals (long ones too), runs of one byte
 * (overlapping copies) and repeats of earlier stretches, near and far. */
static void fill_data(uint8_t *p, size_t n)
{
	size_t i = 0;

	while (i < n) {
		size_t run = 1 + rnd_next() % (rnd_next() % 8 == 0 ? 3000 : 300);
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

/* Checks the prefix of z[0..zlen) (which decodes to raw) at cut. Returns
 * NULL or what is wrong. */
static const char *prefix_check(const uint8_t *z, size_t zlen,
				const uint8_t *raw, size_t cut)
{
	const char *e = NULL;
	struct buf out;
	uint8_t *got = NULL;
	size_t glen;

	buf_init(&out, OUT_MAX);
	if (sblock_prefix(z, zlen, cut, &out) != 0)
		e = "sblock_prefix failed";
	else if (out.len > zlen + 8)
		e = "the prefix is larger than the whole";
	else if (snappy_validate_compressed_buffer((const char *)out.p, out.len) !=
		 SNAPPY_OK ||
		 snappy_uncompressed_length((const char *)out.p, out.len, &glen) !=
		 SNAPPY_OK || glen != cut)
		e = "the prefix is not valid snappy of cut bytes";
	else if ((got = malloc(glen)) == NULL ||
		 snappy_uncompress((const char *)out.p, out.len, (char *)got,
				   &glen) != SNAPPY_OK ||
		 memcmp(got, raw, cut) != 0)
		e = "the prefix decodes to other bytes";
	free(got);
	buf_free(&out);
	return e;
}

/* Random data, cuts at random places and at every byte of a short
 * stretch (so inside and at the end of literals and copies). */
static void test_prefix_random(void)
{
	for (int round = 0; round < 100; round++) {
		size_t n = 1 + rnd_next() % (round < 50 ? 5000 : 300000), zlen;
		uint8_t *raw = malloc(n), *z = malloc(snappy_max_compressed_length(n));
		const char *e = NULL;
		size_t cut = 0;

		fill_data(raw, n);
		zlen = snappy_max_compressed_length(n);
		if (snappy_compress((const char *)raw, n, (char *)z, &zlen) !=
		    SNAPPY_OK)
			e = "snappy_compress failed";
		for (int i = 0; i < 20 && e == NULL; i++) {
			cut = i == 0 ? n : 1 + rnd_next() % n;
			e = prefix_check(z, zlen, raw, cut);
		}
		for (cut = 1; cut <= n && cut <= 300 && e == NULL; cut++)
			e = prefix_check(z, zlen, raw, cut);
		free(raw);
		free(z);
		if (e != NULL) {
			snprintf(unit_msg, sizeof(unit_msg), "round %d cut %zu: %s",
				 round, cut, e);
			unit_cur_failed = 1;
			return;
		}
	}
}

/* A cut past the end, a cut of 0, a truncated block, a copy that reaches
 * before the start: refused. */
static void test_prefix_refused(void)
{
	/* preamble 4, literal "a", copy of 3 from 5 back (only 1 decoded) */
	static const uint8_t bad_copy[] = { 4, 0x00, 'a', 0x02 | (2 << 2), 5, 0 };
	uint8_t raw[4000], z[5000];
	size_t zlen = sizeof(z);
	struct buf out;
	int rc[4];

	fill_data(raw, sizeof(raw));
	CHECK(snappy_compress((const char *)raw, sizeof(raw), (char *)z, &zlen) ==
	      SNAPPY_OK);
	buf_init(&out, OUT_MAX);
	rc[0] = sblock_prefix(z, zlen, sizeof(raw) + 1, &out);
	rc[1] = sblock_prefix(z, zlen, 0, &out);
	rc[2] = sblock_prefix(z, zlen / 2, sizeof(raw), &out);
	rc[3] = sblock_prefix(bad_copy, sizeof(bad_copy), 4, &out);
	buf_free(&out);
	CHECK_EQ_INT(rc[0], -1);
	CHECK_EQ_INT(rc[1], -1);
	CHECK_EQ_INT(rc[2], -1);
	CHECK_EQ_INT(rc[3], -1);
}

int main(void)
{
	RUN(test_prefix_random);
	RUN(test_prefix_refused);
	return unit_done();
}
