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

int main(void)
{
	RUN(test_code_range);
	RUN(test_dense_empty);
	RUN(test_dense_duplicates);
	return unit_done();
}
