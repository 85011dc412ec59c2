/*
 * test_hll.c - the HyperLogLog sketch of active series: register updates,
 * the estimate from 1 to 10 million series (a sweep, and no bias where
 * estimators change regime), the sparse form and its switch to dense,
 * stored values (sizes, merging either form, refusing bad ones).
 */
#include "err.h"
#include "hll.h"
#include "unit.h"

#include <inttypes.h>
#include <math.h>
#include <stdint.h>

static uint64_t splitmix64(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* Relative error of est against n. */
static double rel_err(uint64_t est, uint64_t n)
{
	return ((double)est - (double)n) / (double)n;
}

static void test_code_range(void)
{
	uint64_t seed = 42;

	for (int i = 0; i < 100000; i++) {
		uint32_t c = hll_code(splitmix64(&seed));

		CHECK((c >> 8) < HLL_M);
		CHECK((c & 0xff) >= 1 && (c & 0xff) <= HLL_RANK_MAX);
	}
	CHECK_EQ_INT(hll_code(12345), hll_code(12345));
	CHECK((hll_code(0) & 0xff) >= 1);
	CHECK((hll_code(UINT64_MAX) >> 8) < HLL_M);
}

static void test_dense_empty(void)
{
	uint8_t *regs = calloc(HLL_M, 1);

	CHECK(regs != NULL);
	CHECK_EQ_INT(hll_dense_estimate(regs), 0);
	free(regs);
}

/* The same series added twice change nothing. */
static void test_dense_duplicates(void)
{
	uint8_t *regs = calloc(HLL_M, 1), *copy = malloc(HLL_M);
	uint64_t est;

	CHECK(regs != NULL && copy != NULL);
	for (uint64_t i = 0; i < 50000; i++)
		hll_dense_apply(regs, hll_code(i));
	est = hll_dense_estimate(regs);
	memcpy(copy, regs, HLL_M);
	for (uint64_t i = 0; i < 50000; i++)
		hll_dense_apply(regs, hll_code(i));
	CHECK(memcmp(copy, regs, HLL_M) == 0);
	CHECK_EQ_INT(hll_dense_estimate(regs), est);
	CHECK(fabs(rel_err(est, 50000)) <= 0.02);
	free(regs);
	free(copy);
}

/* The points of the sweep, ascending: every n up to 1000, every 100 from
 * 30,000 to 60,000 (where a HyperLogLog estimator changes regime), and
 * steps of 2% up to 10 million. Returns how many (at most max). */
static size_t sweep_points(uint64_t *pts, size_t max)
{
	size_t n = 0;
	double g = 1000;

	for (uint64_t i = 1; i <= 1000 && n < max; i++)
		pts[n++] = i;
	while (n < max) {
		uint64_t next = (uint64_t)(g * 1.02);

		for (uint64_t f = (pts[n - 1] / 100 + 1) * 100;
		     f >= 30000 && f <= 60000 && f < next && n < max; f += 100)
			pts[n++] = f;
		if (next > 10000000 || n == max)
			break;
		if (next > pts[n - 1])
			pts[n++] = next;
		g *= 1.02;
	}
	return n;
}

/* Whether est is within 2% of n; below 50 series that is less than one,
 * and the estimate, rounded, may be one off. */
static int within_2pct(uint64_t est, uint64_t n)
{
	double err = fabs((double)est - (double)n);

	return err <= (n < 50 ? 1.0 : 0.02 * (double)n);
}

/* Adds the series hashes of a counter 0, 1, 2, ... to a sketch (sparse,
 * then dense), checking the estimate at every point of the sweep. */
static int sweep(double *worst, uint64_t *worst_n, size_t *bad)
{
	static uint64_t pts[4000];
	static uint32_t codes[1 << 16];
	size_t npts = sweep_points(pts, 4000), p = 0;
	struct hll h = {0};
	uint64_t i = 0;

	*worst = 0;
	*bad = 0;
	for (; p < npts; p++) {
		while (i < pts[p]) {
			size_t k = 0;

			for (; i < pts[p] && k < sizeof(codes) / sizeof(codes[0]); i++)
				codes[k++] = hll_code(i);
			if (hll_add(&h, codes, k) != 0)
				return -1;
		}
		uint64_t est = hll_estimate(&h);
		double e = rel_err(est, pts[p]);

		if (!within_2pct(est, pts[p]))
			(*bad)++;
		if (pts[p] >= 50 && fabs(e) > fabs(*worst)) {
			*worst = e;
			*worst_n = pts[p];
		}
	}
	printf("# sweep: %zu points 1..%" PRIu64 ", %zu off by more than "
	       "2%%, worst %+.3f%% at %" PRIu64 "\n", npts, pts[npts - 1], *bad,
	       100 * *worst, *worst_n);
	hll_free(&h);
	return 0;
}

static void test_sweep(void)
{
	double worst;
	uint64_t at = 0;
	size_t bad;

	CHECK(sweep(&worst, &at, &bad) == 0);
	CHECK_EQ_INT(bad, 0);
}

/* No bias where estimators change regime: the mean error over 16
 * independent sketches (random hashes) at each n is within 0.5%; the
 * error of one sketch has a standard deviation of about 0.8%. */
static void test_bias_regime_change(void)
{
	static const uint64_t ns[] = {20000, 30000, 35000, 40000, 41000,
				      45000, 50000, 60000, 80000};
	uint8_t *regs = malloc(HLL_M);
	uint64_t seed = 0xb1a5;
	int unbiased = 1;

	CHECK(regs != NULL);
	for (size_t k = 0; k < sizeof(ns) / sizeof(ns[0]); k++) {
		double sum = 0;

		for (int t = 0; t < 16; t++) {
			memset(regs, 0, HLL_M);
			for (uint64_t i = 0; i < ns[k]; i++)
				hll_dense_apply(regs, hll_code(splitmix64(&seed)));
			sum += rel_err(hll_dense_estimate(regs), ns[k]);
		}
		printf("# n=%" PRIu64 " mean error of 16 sketches %+.3f%%\n",
		       ns[k], 100 * sum / 16);
		unbiased &= fabs(sum / 16) <= 0.005;
	}
	free(regs);
	CHECK(unbiased);
}

/* --- sparse and dense ------------------------------------------------------ */

/* Fills codes with n hashes from seed (some repeated: every 7th is the
 * one before it again). */
static void make_codes(uint32_t *codes, size_t n, uint64_t seed)
{
	uint64_t prev = 0;

	for (size_t i = 0; i < n; i++) {
		uint64_t x = i % 7 == 6 ? prev : splitmix64(&seed);

		codes[i] = hll_code(x);
		prev = x;
	}
}

/* h's registers equal those of codes applied to a dense array. */
static int same_as_dense(const struct hll *h, const uint32_t *codes, size_t n)
{
	uint8_t *want = calloc(1, HLL_M), *got = malloc(HLL_M);
	int same;

	if (want == NULL || got == NULL) {
		free(want);
		free(got);
		return 0;
	}
	for (size_t i = 0; i < n; i++)
		hll_dense_apply(want, codes[i]);
	hll_registers(h, got);
	same = memcmp(want, got, HLL_M) == 0 &&
	       hll_estimate(h) == hll_dense_estimate(want);
	free(want);
	free(got);
	return same;
}

/* Added in batches of any size, the sketch stays sparse while that is
 * smaller, and holds exactly the registers of the dense array. */
static void test_sparse_then_dense(void)
{
	static const size_t ns[] = {0, 1, 2, 100, 1000, 5000, 6000, 20000, 200000};
	static uint32_t codes[200000];

	for (size_t t = 0; t < sizeof(ns) / sizeof(ns[0]); t++) {
		struct hll h = {0};
		size_t n = ns[t], batch = 1 + t * 37;

		make_codes(codes, n, 100 + t);
		for (size_t i = 0; i < n; i += batch)
			CHECK(hll_add(&h, codes + i, n - i < batch ? n - i : batch) == 0);
		CHECK(same_as_dense(&h, codes, n));
		/* Sparse while the list is smaller than the registers. */
		if (hll_is_dense(&h))
			CHECK_EQ_INT(hll_encoded_size(&h), HLL_M);
		else
			CHECK(h.n <= HLL_SPARSE_MAX && hll_encoded_size(&h) < HLL_M);
		printf("# %zu codes: %s, %zu bytes\n", n,
		       hll_is_dense(&h) ? "dense" : "sparse", hll_encoded_size(&h));
		hll_free(&h);
	}
}

/* A stored value's size for 1 and 100 series, and sparse up to the most
 * entries that are smaller than the registers. */
static void test_encoded_sizes(void)
{
	struct hll h = {0};
	uint32_t code;
	uint64_t i = 0;

	code = hll_code(i++);
	CHECK(hll_add(&h, &code, 1) == 0);
	CHECK_EQ_INT(hll_encoded_size(&h), 4);
	while (h.n < 100) {
		code = hll_code(i++);
		CHECK(hll_add(&h, &code, 1) == 0);
	}
	CHECK_EQ_INT(hll_encoded_size(&h), 301);
	while (!hll_is_dense(&h)) {
		CHECK(h.n <= HLL_SPARSE_MAX);
		CHECK(hll_encoded_size(&h) < HLL_M);
		code = hll_code(i++);
		CHECK(hll_add(&h, &code, 1) == 0);
	}
	CHECK_EQ_INT(hll_encoded_size(&h), HLL_M);
	hll_free(&h);
}

/* Encodes a sketch of codes[0..n) (sparse or dense as it comes out). */
static uint8_t *encode_codes(const uint32_t *codes, size_t n, size_t *len)
{
	struct hll h = {0};
	uint8_t *out = NULL;

	if (hll_add(&h, codes, n) == 0 &&
	    (out = malloc(hll_encoded_size(&h))) != NULL) {
		*len = hll_encoded_size(&h);
		hll_encode(&h, out);
	}
	hll_free(&h);
	return out;
}

/* Merging stored values, sparse or dense, in either order, gives exactly
 * the registers of all their series applied to one dense array. */
static void test_merge_values(void)
{
	/* a, b sizes: sparse+sparse (stays sparse), sparse+sparse (union
	 * passes HLL_SPARSE_MAX), sparse+dense, dense+dense. */
	static const size_t pairs[][2] = {
		{300, 500}, {4000, 4000}, {200, 60000}, {30000, 50000}};
	static uint32_t codes[110000];

	for (size_t t = 0; t < sizeof(pairs) / sizeof(pairs[0]); t++) {
		size_t na = pairs[t][0], nb = pairs[t][1], la = 0, lb = 0;
		uint8_t *a, *b;

		make_codes(codes, na + nb, 900 + t);
		/* b repeats the last 100 series of a. */
		memcpy(codes + na, codes + na - 100, 100 * sizeof(codes[0]));
		a = encode_codes(codes, na, &la);
		b = encode_codes(codes + na, nb, &lb);
		CHECK(a != NULL && b != NULL);
		for (int order = 0; order < 2; order++) {
			struct hll h = {0};

			CHECK(hll_merge_value(&h, order ? b : a, order ? lb : la) == 0);
			CHECK(hll_merge_value(&h, order ? a : b, order ? la : lb) == 0);
			CHECK(same_as_dense(&h, codes, na + nb));
			hll_free(&h);
		}
		printf("# merge of values of %zu and %zu bytes: ok\n", la, lb);
		free(a);
		free(b);
	}
}

/* Values that are neither form are refused and leave the sketch alone. */
static void test_bad_values(void)
{
	static const struct {
		uint8_t v[7];
		size_t len;
	} bad[] = {
		{{0}, 0},                                   /* empty */
		{{2, 0, 1, 1}, 4},                          /* unknown version */
		{{1, 0, 1}, 3},                             /* not 1 + 3n */
		{{1, 0, 1, 0}, 4},                          /* rank 0 */
		{{1, 0, 1, HLL_RANK_MAX + 1}, 4},           /* rank too high */
		{{1, 0x40, 0, 1}, 4},                       /* index past HLL_M */
		{{1, 0, 2, 1, 0, 1, 1}, 7},                 /* not ascending */
	};
	uint32_t codes[3] = {hll_code(1), hll_code(2), hll_code(3)};
	struct hll h = {0};
	uint8_t *dense = calloc(1, HLL_M);

	CHECK(dense != NULL);
	CHECK(hll_add(&h, codes, 3) == 0);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		CHECK_EQ_INT(hll_merge_value(&h, bad[i].v, bad[i].len), ERR_CORRUPT);
		CHECK(same_as_dense(&h, codes, 3));
	}
	dense[5] = HLL_RANK_MAX + 1;
	CHECK_EQ_INT(hll_merge_value(&h, dense, HLL_M), ERR_CORRUPT);
	CHECK(!hll_is_dense(&h) && same_as_dense(&h, codes, 3));
	/* The empty sparse value is one byte. */
	CHECK_EQ_INT(hll_merge_value(&h, (const uint8_t[]){1}, 1), 0);
	CHECK(same_as_dense(&h, codes, 3));
	hll_free(&h);
	free(dense);
}

int main(void)
{
	RUN(test_code_range);
	RUN(test_dense_empty);
	RUN(test_dense_duplicates);
	RUN(test_sweep);
	RUN(test_bias_regime_change);
	RUN(test_sparse_then_dense);
	RUN(test_encoded_sizes);
	RUN(test_merge_values);
	RUN(test_bad_values);
	return unit_done();
}
