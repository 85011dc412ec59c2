/*
 * labels.h - the rules a series' labels must follow, as Prometheus sets
 * them for Remote Write 1.0:
 *
 *   label name    [a-zA-Z_][a-zA-Z0-9_]*
 *   metric name   [a-zA-Z_:][a-zA-Z0-9_:]*   (the value of __name__)
 *   label value   valid UTF-8: no overlong forms, no surrogates, nothing
 *                 past U+10FFFF
 *
 * The scanner (wire.c) runs these on every label of every request, so the
 * checks take names eight bytes at a time and let ASCII values through
 * eight bytes at a time. They are static inline here, as a call per label
 * shows in the scanner's time per series; the rare paths (values with
 * non-ASCII bytes, quoting a name for an error reason) live in labels.c.
 * Label order, empty values and the length bounds are the caller's to
 * check.
 */
#ifndef RELAY_LABELS_H
#define RELAY_LABELS_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define LABELS_QUOTE_MAX 64 /* longest name or value quoted in a reason */
#define LABELS_QUOTE_SIZE (LABELS_QUOTE_MAX + 4) /* with "..." and NUL */

/* Name characters: 1 starts a label name, 2 continues one, 4 starts a
 * metric name, 8 continues one. */
extern const uint8_t labels_name_class[256];

/* Whether p[0..n), which holds some non-ASCII byte, is valid UTF-8: no
 * overlong forms, no surrogates, nothing past U+10FFFF. labels_utf8_valid
 * calls it; call that instead. */
int labels_utf8_valid_slow(const uint8_t *p, size_t n);

/* Copies p[0..n) into dst as printable ASCII ('?' for anything else,
 * quotes and backslashes included), cut to LABELS_QUOTE_MAX bytes with
 * "...", for a name or value in an error reason. Returns dst. */
const char *labels_quote(char dst[LABELS_QUOTE_SIZE], const uint8_t *p,
			 size_t n);

/* Whether p[0..n) is valid UTF-8; ASCII is taken eight bytes at a time. */
static inline int labels_utf8_valid(const uint8_t *p, size_t n)
{
	uint64_t acc = 0, w;
	size_t i;

	if (n >= 8) {
		for (i = 0; i + 8 < n; i += 8) {
			memcpy(&w, p + i, 8);
			acc |= w;
		}
		memcpy(&w, p + n - 8, 8);
		acc |= w;
	} else {
		for (i = 0; i < n; i++)
			acc |= p[i];
	}
	return (acc & 0x8080808080808080ull) == 0 ||
	       labels_utf8_valid_slow(p, n);
}

/* Per byte of w (all below 0x80): 0x80 where it lies in [lo, hi], else 0. */
static inline uint64_t labels_bytes_in(uint64_t w, unsigned lo, unsigned hi)
{
	const uint64_t ones = 0x0101010101010101ull;

	return (w + ones * (0x80 - lo)) & ~(w + ones * (0x7f - hi)) &
	       ones * 0x80;
}

/* Whether the 8 bytes at p are all name characters (metric: colon too). */
static inline int labels_name_word(const uint8_t *p, int metric)
{
	const uint64_t high = 0x8080808080808080ull;
	uint64_t w, ok;

	memcpy(&w, p, 8);
	ok = labels_bytes_in(w | 0x2020202020202020ull, 'a', 'z') |
	     labels_bytes_in(w, '0', '9') | labels_bytes_in(w, '_', '_') |
	     (metric ? labels_bytes_in(w, ':', ':') : 0);
	return (w & high) == 0 && ok == high;
}

/* Whether p[0..n) matches [a-zA-Z_][a-zA-Z0-9_]*, or with metric set
 * [a-zA-Z_:][a-zA-Z0-9_:]*. Eight bytes at a time past the first. Always
 * inlined: the scanner's one big function otherwise passes the compiler's
 * growth limits and calls it, which shows in its time per series. */
static inline __attribute__((always_inline)) int
labels_name_match(const uint8_t *p, size_t n, int metric)
{
	unsigned acc = 0xff;
	size_t i;

	if (n == 0 || !(labels_name_class[p[0]] & (metric ? 4 : 1)))
		return 0;
	if (n >= 8) {
		for (i = 0; i + 8 < n; i += 8)
			if (!labels_name_word(p + i, metric))
				return 0;
		return labels_name_word(p + n - 8, metric);
	}
	for (i = 1; i < n; i++)
		acc &= labels_name_class[p[i]];
	return (acc & (metric ? 8 : 2)) != 0;
}

/* Whether p[0..n) is a valid label name: [a-zA-Z_][a-zA-Z0-9_]*. */
static inline int labels_name_valid(const uint8_t *p, size_t n)
{
	return labels_name_match(p, n, 0);
}

/* Whether p[0..n) is a valid metric name: [a-zA-Z_:][a-zA-Z0-9_:]*. */
static inline int labels_metric_name_valid(const uint8_t *p, size_t n)
{
	return labels_name_match(p, n, 1);
}

#endif
