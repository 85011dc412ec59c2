/*
 * test_relabel_cache.c - the cache of relabel results: a hit needs the
 * same scope and the same key bytes (the hash only picks the bucket), a
 * drop and a keep come back as they were put, and the bytes held never
 * pass the bound however many entries come. (What it gives the scanner is
 * test_wire.c's test_relabel_cache.)
 */
#include "err.h"
#include "relabel_cache.h"
#include "unit.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Same hash, other key or scope: a miss; the same: a hit, its value. */
static void test_exact(void)
{
	struct relabel_cache *c = relabel_cache_new(1 << 20);
	const uint8_t *k = (const uint8_t *)"labels-a", *k2 = (const uint8_t *)"labels-b";
	const uint8_t *val = NULL;
	size_t len = 0;
	int dropped = -1, a, b;

	CHECK(c != NULL);
	relabel_cache_put(c, &a, 7, k, 8, 0, (const uint8_t *)"result", 6);
	CHECK_EQ_INT(relabel_cache_get(c, &a, 7, k2, 8, &dropped, &val, &len), 0);
	CHECK_EQ_INT(relabel_cache_get(c, &b, 7, k, 8, &dropped, &val, &len), 0);
	CHECK_EQ_INT(relabel_cache_get(c, &a, 7, k, 7, &dropped, &val, &len), 0);
	CHECK_EQ_INT(relabel_cache_get(c, &a, 7, k, 8, &dropped, &val, &len), 1);
	CHECK_EQ_INT(dropped, 0);
	CHECK(len == 6 && memcmp(val, "result", 6) == 0);
	/* the other key, same hash: its own entry, a drop */
	relabel_cache_put(c, &a, 7, k2, 8, 1, NULL, 0);
	CHECK_EQ_INT(relabel_cache_get(c, &a, 7, k2, 8, &dropped, &val, &len), 1);
	CHECK_EQ_INT(dropped, 1);
	CHECK_EQ_INT(len, 0);
	/* put again: replaced, not doubled */
	relabel_cache_put(c, &a, 7, k, 8, 0, (const uint8_t *)"other", 5);
	CHECK_EQ_INT(relabel_cache_get(c, &a, 7, k, 8, &dropped, &val, &len), 1);
	CHECK(len == 5 && memcmp(val, "other", 5) == 0);
	CHECK_EQ_INT(relabel_cache_hash(&a, k, 8), relabel_cache_hash(&a, k, 8));
	CHECK(relabel_cache_hash(&a, k, 8) != relabel_cache_hash(&b, k, 8));
	relabel_cache_free(c);
}

/* 20000 entries of about 300 bytes into 256 KiB: the bytes held stay under
 * it, the last ones put are found, the bucket array grows meanwhile. */
static void test_bound(void)
{
	const size_t max = 256 * 1024;
	struct relabel_cache *c = relabel_cache_new(max);
	struct relabel_cache_stats st;
	uint8_t key[120], v[180];
	const uint8_t *val;
	size_t len = 0, i, found = 0;
	int dropped;

	CHECK(c != NULL);
	memset(key, 'k', sizeof(key));
	memset(v, 'v', sizeof(v));
	for (i = 0; i < 20000; i++) {
		memcpy(key, &i, sizeof(i));
		relabel_cache_put(c, NULL, relabel_cache_hash(NULL, key, sizeof(key)),
				  key, sizeof(key), 0, v, sizeof(v));
		relabel_cache_stats(c, &st);
		if (st.bytes > max)
			break;
	}
	CHECK_EQ_INT(i, 20000);
	CHECK(st.entries > 400 && st.entries < 1000);
	for (i = 20000 - 100; i < 20000; i++) {
		memcpy(key, &i, sizeof(i));
		found += relabel_cache_get(c, NULL,
					   relabel_cache_hash(NULL, key, sizeof(key)),
					   key, sizeof(key), &dropped, &val,
					   &len) == 1;
	}
	CHECK(found >= 50);
	relabel_cache_free(c);
}

int main(void)
{
	RUN(test_exact);
	RUN(test_bound);
	return unit_done();
}
