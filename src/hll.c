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

uint64_t hll_dense_estimate(const uint8_t *regs)
{
	double m = HLL_M, sum = 0, est;
	unsigned zeros = 0;

	for (unsigned i = 0; i < HLL_M; i++) {
		sum += ldexp(1.0, -(int)regs[i]);
		zeros += regs[i] == 0;
	}
	est = 0.7213 / (1 + 1.079 / m) * m * m / sum;
	if (est <= 2.5 * m && zeros > 0)
		est = m * log(m / zeros);
	return (uint64_t)(est + 0.5);
}
