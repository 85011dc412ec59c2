/*
 * test_hll.c - the HyperLogLog sketch of active series: register updates,
 * the estimate from empty to many series, duplicates, and merging.
 */
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

/* Adds the series hashes of a counter 0, 1, 2, ..., checking the estimate
 * at every point of the sweep. */
static int sweep(double *worst, uint64_t *worst_n, size_t *bad)
{
	static uint64_t pts[4000];
	size_t npts = sweep_points(pts, 4000), p = 0;
	uint8_t *regs = calloc(HLL_M, 1);
	uint64_t i = 0;

	if (regs == NULL)
		return -1;
	*worst = 0;
	*bad = 0;
	for (; p < npts; p++) {
		for (; i < pts[p]; i++)
			hll_dense_apply(regs, hll_code(i));
		uint64_t est = hll_dense_estimate(regs);
		double e = rel_err(est, pts[p]);

		if (!within_2pct(est, pts[p]))
			(*bad)++;
		if (pts[p] >= 50 && fabs(e) > fabs(*worst)) {
			*worst = e;
			*worst_n = pts[p];
		}
	}
	printf("# sweep: %zu points 1..%" PRIu64 ", %zu off by more than "
	       "2%%, worst %+.3f%% at %" PRIu64 "\n", npts, pts[npts - 1], *bad, 100 * *worst, *worst_n);
	free(regs);
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

int main(void)
{
	RUN(test_code_range);
	RUN(test_dense_empty);
	RUN(test_dense_duplicates);
	RUN(test_sweep);
	RUN(test_bias_regime_change);
	return unit_done();
}
