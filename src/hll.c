/*
 * hll.c - HyperLogLog sketches (see hll.h).
 */
#include "hll.h"

#include <math.h>

uint32_t hll_code(uint64_t hash)
{
	/* Mix all input bits into the top ones that pick the register. */
	hash ^= hash >> 33;
	hash *= 0xff51afd7ed558ccdull;
	hash ^= hash >> 33;
	hash *= 0xc4ceb9fe1a85ec53ull;
	hash ^= hash >> 33;

	uint32_t idx = (uint32_t)(hash >> (64 - HLL_P));
	uint64_t rest = hash << HLL_P | (1ull << (HLL_P - 1));
	uint32_t rank = (uint32_t)__builtin_clzll(rest) + 1;

	return idx << 8 | rank;
}

/* sigma(x) = x + sum_k x^(2^k) 2^(k-1), Ertl 2017 (the share of zero
 * registers' contribution). */
static double hll_sigma(double x)
{
	double y = 1, z = x, zprev;

	if (x == 1.0)
		return INFINITY;
	do {
		x *= x;
		zprev = z;
		z += x * y;
		y += y;
	} while (z != zprev);
	return z;
}

/* tau(x) = (1 - x - sum_k (1 - x^(2^-k))^2 2^-k) / 3, Ertl 2017 (the
 * correction for registers at the highest rank). */
static double hll_tau(double x)
{
	double y = 1, z = 1 - x, zprev;

	if (x == 0.0 || x == 1.0)
		return 0;
	do {
		x = sqrt(x);
		zprev = z;
		y *= 0.5;
		z -= (1 - x) * (1 - x) * y;
	} while (z != zprev);
	return z / 3;
}

uint64_t hll_estimate_histogram(const uint32_t count[HLL_RANK_MAX + 1])
{
	double m = HLL_M, z;

	/* Ertl, "New cardinality estimation algorithms for HyperLogLog
	 * sketches" (2017), the improved raw estimator: one formula from
	 * empty to 2^64, without the bias of the raw estimate near the
	 * switch to linear counting. */
	z = m * hll_tau((m - count[HLL_RANK_MAX]) / m);
	for (int k = HLL_Q; k >= 1; k--) {
		z += count[k];
		z *= 0.5;
	}
	z += m * hll_sigma(count[0] / m);
	return (uint64_t)llround(m * m / (2 * log(2)) / z);
}

uint64_t hll_dense_estimate(const uint8_t *regs)
{
	uint32_t count[HLL_RANK_MAX + 1] = {0};

	for (unsigned i = 0; i < HLL_M; i++)
		count[regs[i] <= HLL_RANK_MAX ? regs[i] : HLL_RANK_MAX]++;
	return hll_estimate_histogram(count);
}
