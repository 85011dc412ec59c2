/*
 * hll.h - HyperLogLog sketches of distinct series.
 *
 * A sketch has HLL_M = 2^14 one-byte registers; a 64-bit series hash picks
 * a register with its top 14 bits and sets it to at least the rank of the
 * rest (leading zeros + 1, at most HLL_RANK_MAX). The estimate of the
 * number of distinct hashes added has a standard error of about 0.81%,
 * without bias from 1 to billions (see hll_estimate_histogram).
 *
 * struct hll starts sparse, as HyperLogLog++ does: a sorted list of the
 * registers that are not 0, one (index, rank) each. Once that list would
 * take as much room as the registers themselves it becomes the dense
 * array of HLL_M bytes. Both give the same estimate for the same series.
 *
 * Stored value (hll_encode, hll_merge_value), self-describing by length:
 *
 *   dense   exactly HLL_M (16384) bytes: register i is byte i. (The only
 *           form of the first format; such values still read.)
 *
 *   sparse  any other length, 1 + 3n bytes, n <= HLL_SPARSE_MAX:
 *   +------------+------------------+-----+------------------+
 *   | version u8 | entry 0 (3 bytes)| ... | entry n-1        |
 *   |  (1)       | idx << 8 | rank, |     |                  |
 *   |            | 24-bit big-endian|     |                  |
 *   +------------+------------------+-----+------------------+
 *           entries strictly ascending by index, rank 1..HLL_RANK_MAX;
 *           registers not listed are 0. An empty sketch is the one byte
 *           of the version.
 *
 * Changing the sparse layout: use a new version byte and keep reading
 * version 1; the dense length must never be a valid sparse length.
 */
#ifndef RELAY_HLL_H
#define RELAY_HLL_H

#include <stddef.h>
#include <stdint.h>

#define HLL_P 14
#define HLL_M (1u << HLL_P)
#define HLL_Q (64 - HLL_P)          /* hash bits that make the rank */
#define HLL_RANK_MAX (HLL_Q + 1)
#define HLL_SPARSE_VERSION 1
/* Most entries a sparse sketch keeps: 1 + 3n stays below HLL_M. */
#define HLL_SPARSE_MAX ((HLL_M - 2) / 3)

/* A sketch. Zeroed (= {0}) it is empty and sparse. */
struct hll {
	uint8_t *regs;      /* owned: HLL_M registers once dense, else NULL */
	uint32_t *sparse;   /* owned: codes, ascending, one per index */
	size_t n;           /* entries of sparse */
};

/* A series hash as a register update: index << 8 | rank. */
uint32_t hll_code(uint64_t hash);

/* Applies a register update to regs (HLL_M bytes). */
static inline void hll_dense_apply(uint8_t *regs, uint32_t code)
{
	uint32_t idx = code >> 8;
	uint8_t rank = (uint8_t)(code & 0xff);

	if (regs[idx] < rank)
		regs[idx] = rank;
}

/* Estimated distinct hashes from the registers (HLL_M bytes). */
uint64_t hll_dense_estimate(const uint8_t *regs);

/* The estimate from a histogram of the registers: count[r] registers hold
 * rank r (count[0]: empty ones), the counts summing to HLL_M. Ertl's
 * improved estimator (2017): unbiased over the whole range, with no
 * switch between linear counting and the raw estimate. */
uint64_t hll_estimate_histogram(const uint32_t count[HLL_RANK_MAX + 1]);

/* Adds register updates (hll_code()s) to h. Returns 0, or ERR_NOMEM with
 * h as it was. */
int hll_add(struct hll *h, const uint32_t *codes, size_t n);

/* Merges a stored value (either form) into h. Returns 0, ERR_CORRUPT if
 * it is not a valid value, or ERR_NOMEM; on failure h is as it was. */
int hll_merge_value(struct hll *h, const void *value, size_t len);

/* Bytes hll_encode writes for h: HLL_M when dense, else 1 + 3n. */
size_t hll_encoded_size(const struct hll *h);

/* Writes h's stored value (hll_encoded_size(h) bytes) to out. */
void hll_encode(const struct hll *h, uint8_t *out);

/* Fills regs (HLL_M bytes) with h's registers, whatever its form. */
void hll_registers(const struct hll *h, uint8_t *regs);

/* Whether h is dense. */
static inline int hll_is_dense(const struct hll *h)
{
	return h->regs != NULL;
}

/* Estimated distinct series added to h. */
uint64_t hll_estimate(const struct hll *h);

/* Frees what h owns and leaves it empty. */
void hll_free(struct hll *h);

#endif
