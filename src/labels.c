/*
 * labels.c - the out-of-line part of the label rules (see labels.h): the
 * name character table, UTF-8 validation for values with non-ASCII bytes,
 * and quoting a name or value for an error reason. The checks that run on
 * every label are static inline in labels.h.
 */
#include "labels.h"

#include <string.h>

const uint8_t labels_name_class[256] = {
	[0x30] = 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 12,
	[0x41] = 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15,
	15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, [0x5f] = 15,
	[0x61] = 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15,
	15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15
};

/* Whether p[0..n) is valid UTF-8, one code point at a time: each lead byte
 * fixes the length and the range of the first continuation byte (which
 * rules out overlong forms, surrogates and anything past U+10FFFF).
 * Returns 1 or 0. */
int labels_utf8_valid_slow(const uint8_t *p, size_t n)
{
	size_t i = 0, k, len;
	uint8_t c, lo, hi;

	while (i < n) {
		if ((c = p[i]) < 0x80) {
			i++;
			continue;
		}
		lo = 0x80;
		hi = 0xbf;
		if (c >= 0xc2 && c <= 0xdf) {
			len = 2;
		} else if (c >= 0xe0 && c <= 0xef) {
			len = 3;
			lo = c == 0xe0 ? 0xa0 : lo;
			hi = c == 0xed ? 0x9f : hi;
		} else if (c >= 0xf0 && c <= 0xf4) {
			len = 4;
			lo = c == 0xf0 ? 0x90 : lo;
			hi = c == 0xf4 ? 0x8f : hi;
		} else {
			return 0;
		}
		if (n - i < len || p[i + 1] < lo || p[i + 1] > hi)
			return 0;
		for (k = 2; k < len; k++)
			if ((p[i + k] & 0xc0) != 0x80)
				return 0;
		i += len;
	}
	return 1;
}

/* Copies p[0..n) into dst as printable ASCII ('?' for anything else), cut
 * to LABELS_QUOTE_MAX bytes with "...". Returns dst. */
const char *labels_quote(char dst[LABELS_QUOTE_SIZE], const uint8_t *p,
			 size_t n)
{
	size_t i, m = n > LABELS_QUOTE_MAX ? LABELS_QUOTE_MAX : n;

	for (i = 0; i < m; i++)
		dst[i] = p[i] >= 0x20 && p[i] < 0x7f && p[i] != '"' &&
				 p[i] != '\\' ? (char)p[i] : '?';
	if (m < n) {
		memcpy(dst + m, "...", 3);
		m += 3;
	}
	dst[m] = '\0';
	return dst;
}
