/*
 * hll.c - HyperLogLog sketches (see hll.h).
 */
#include "hll.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"

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

uint64_t hll_estimate(const struct hll *h)
{
	uint32_t count[HLL_RANK_MAX + 1] = {0};

	if (hll_is_dense(h))
		return hll_dense_estimate(h->regs);
	count[0] = HLL_M - (uint32_t)h->n;
	for (size_t i = 0; i < h->n; i++)
		count[h->sparse[i] & 0xff]++;
	return hll_estimate_histogram(count);
}

void hll_registers(const struct hll *h, uint8_t *regs)
{
	if (hll_is_dense(h)) {
		memcpy(regs, h->regs, HLL_M);
		return;
	}
	memset(regs, 0, HLL_M);
	for (size_t i = 0; i < h->n; i++)
		hll_dense_apply(regs, h->sparse[i]);
}

void hll_free(struct hll *h)
{
	free(h->regs);
	free(h->sparse);
	memset(h, 0, sizeof(*h));
}

/* Turns a sparse h dense. Returns 0 or ERR_NOMEM (h unchanged). */
static int make_dense(struct hll *h)
{
	uint8_t *regs;

	if (hll_is_dense(h))
		return 0;
	if ((regs = malloc(HLL_M)) == NULL)
		return ERR_NOMEM;
	hll_registers(h, regs);
	free(h->sparse);
	h->sparse = NULL;
	h->n = 0;
	h->regs = regs;
	return 0;
}

static int code_cmp(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

/*
 * Merges codes (sorted ascending; several may share an index) into h's
 * sparse list, keeping the highest rank per index, or makes h dense when
 * the list would pass HLL_SPARSE_MAX. Returns 0 or ERR_NOMEM (h unchanged).
 */
static int sparse_merge(struct hll *h, const uint32_t *codes, size_t n)
{
	uint32_t *out;
	size_t i = 0, j = 0, k = 0;

	if ((out = malloc((h->n + n) * sizeof(*out))) == NULL)
		return ERR_NOMEM;
	while (i < h->n || j < n) {
		uint32_t c;

		if (j == n || (i < h->n && h->sparse[i] < codes[j]))
			c = h->sparse[i++];
		else
			c = codes[j++];
		/* Ascending codes: a later one of the same index ranks higher. */
		if (k > 0 && out[k - 1] >> 8 == c >> 8)
			out[k - 1] = c;
		else
			out[k++] = c;
	}
	if (k > HLL_SPARSE_MAX) {
		uint8_t *regs = calloc(1, HLL_M);

		if (regs == NULL) {
			free(out);
			return ERR_NOMEM;
		}
		for (i = 0; i < k; i++)
			hll_dense_apply(regs, out[i]);
		free(out);
		free(h->sparse);
		h->sparse = NULL;
		h->n = 0;
		h->regs = regs;
		return 0;
	}
	free(h->sparse);
	h->sparse = out;
	h->n = k;
	return 0;
}

int hll_add(struct hll *h, const uint32_t *codes, size_t n)
{
	uint32_t *sorted;
	int rc;

	if (hll_is_dense(h)) {
		for (size_t i = 0; i < n; i++)
			hll_dense_apply(h->regs, codes[i]);
		return 0;
	}
	if (n == 0)
		return 0;
	if ((sorted = malloc(n * sizeof(*sorted))) == NULL)
		return ERR_NOMEM;
	memcpy(sorted, codes, n * sizeof(*sorted));
	qsort(sorted, n, sizeof(*sorted), code_cmp);
	rc = sparse_merge(h, sorted, n);
	free(sorted);
	return rc;
}

int hll_merge_value(struct hll *h, const void *value, size_t len)
{
	const uint8_t *p = value;
	uint32_t *codes;
	size_t n;
	int rc;

	if (len == HLL_M) {
		for (size_t i = 0; i < HLL_M; i++)
			if (p[i] > HLL_RANK_MAX)
				return ERR_CORRUPT;
		if ((rc = make_dense(h)) != 0)
			return rc;
		for (size_t i = 0; i < HLL_M; i++)
			hll_dense_apply(h->regs, (uint32_t)i << 8 | p[i]);
		return 0;
	}
	if (len < 1 || (len - 1) % 3 != 0 || p[0] != HLL_SPARSE_VERSION ||
	    (n = (len - 1) / 3) > HLL_SPARSE_MAX)
		return ERR_CORRUPT;
	if (n == 0)
		return 0;
	if ((codes = malloc(n * sizeof(*codes))) == NULL)
		return ERR_NOMEM;
	for (size_t i = 0; i < n; i++) {
		const uint8_t *e = p + 1 + 3 * i;
		uint32_t c = (uint32_t)e[0] << 16 | (uint32_t)e[1] << 8 | e[2];

		if ((c >> 8) >= HLL_M || (c & 0xff) < 1 || (c & 0xff) > HLL_RANK_MAX ||
		    (i > 0 && c >> 8 <= codes[i - 1] >> 8)) {
			free(codes);
			return ERR_CORRUPT;
		}
		codes[i] = c;
	}
	rc = hll_is_dense(h) ? hll_add(h, codes, n) : sparse_merge(h, codes, n);
	free(codes);
	return rc;
}

size_t hll_encoded_size(const struct hll *h)
{
	return hll_is_dense(h) ? HLL_M : 1 + 3 * h->n;
}

void hll_encode(const struct hll *h, uint8_t *out)
{
	if (hll_is_dense(h)) {
		memcpy(out, h->regs, HLL_M);
		return;
	}
	*out++ = HLL_SPARSE_VERSION;
	for (size_t i = 0; i < h->n; i++, out += 3) {
		out[0] = (uint8_t)(h->sparse[i] >> 16);
		out[1] = (uint8_t)(h->sparse[i] >> 8);
		out[2] = (uint8_t)h->sparse[i];
	}
}
