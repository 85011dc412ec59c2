/*
 * test_dedup.c - the dedup records and their index in memory: seen within
 * the window and not after, expiry, an undone round, rebuilding from the
 * store, digests that share their first 8 bytes, growing and shrinking,
 * under 3 bytes per request in the window, found across many runs,
 * and the digest-keyed database of earlier versions being emptied.
 *
 * Each test works on its own store in a directory under /tmp.
 */
#include "dedup.h"

#include <errno.h>
#include <malloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "err.h"
#include "store.h"
#include "tmpstore.h"
#include "unit.h"

#define MIB (1024ull * 1024)
#define WINDOW 600000ull
#define T0 1700000000000ull

static char dir[64], path[96];
static struct store *st;
static int st_open;
static struct dedup *dd;

static int setup(void)
{
	if (tmpstore_open(dir, sizeof(dir), path, sizeof(path), "dedup", &st,
			  64 * MIB) < 0)
		return -1;
	st_open = 1;
	return 0;
}

static void cleanup(void)
{
	dedup_free(dd);
	dd = NULL;
	if (st_open)
		store_close(st);
	st_open = 0;
	tmpdir_remove(dir);
	dir[0] = '\0';
}

/* A digest made from n; the first 8 bytes come from prefix. */
static void digest(uint8_t d[32], uint64_t prefix, uint64_t n)
{
	memcpy(d, &prefix, 8);
	for (int i = 8; i < 32; i++)
		d[i] = (uint8_t)(n >> (8 * (i % 8)) ^ (uint64_t)i * 0x9d);
}

/* (Re)builds dd from the store at now. */
static int open_index(uint64_t now)
{
	struct store_txn *txn;
	int rc;

	dedup_free(dd);
	dd = NULL;
	if (store_txn_begin(st, &txn) != 0)
		return -1;
	if ((dd = dedup_open(txn, now, WINDOW, &rc)) == NULL) {
		store_txn_abort(txn);
		return -1;
	}
	return store_txn_commit(txn) == 0 ? 0 : -1;
}

/* Remembers the digests in one committed (or aborted) transaction. */
static int remember(const uint8_t (*d)[32], size_t n, uint64_t now, int commit)
{
	struct store_txn *txn;
	int rc = 0;

	if (store_txn_begin(st, &txn) != 0)
		return -1;
	for (size_t i = 0; i < n && rc == 0; i++)
		rc = dedup_remember(dd, txn, d[i], now);
	if (rc != 0 || !commit) {
		store_txn_abort(txn);
		dedup_round_end(dd, 0);
		return rc != 0 ? -1 : 0;
	}
	rc = store_txn_commit(txn);
	dedup_round_end(dd, rc == 0);
	return rc == 0 ? 0 : -1;
}

static int seen(const uint8_t d[32], uint64_t now)
{
	struct store_txn *txn;
	int rc;

	if (store_txn_begin(st, &txn) != 0)
		return -1;
	rc = dedup_seen(dd, txn, d, now, WINDOW);
	store_txn_abort(txn);
	return rc;
}

static int expire(uint64_t now)
{
	struct store_txn *txn;

	if (store_txn_begin(st, &txn) != 0)
		return -1;
	if (dedup_expire(dd, txn, now, WINDOW) != 0) {
		store_txn_abort(txn);
		return -1;
	}
	return store_txn_commit(txn) == 0 ? 0 : -1;
}

static size_t records(void)
{
	MDB_txn *txn;
	MDB_stat ms;

	if (mdb_txn_begin(st->env, NULL, MDB_RDONLY, &txn) != 0)
		return SIZE_MAX;
	mdb_stat(txn, st->dedup_time, &ms);
	mdb_txn_abort(txn);
	return ms.ms_entries;
}

static void test_seen_within_window(void)
{
	uint8_t d[2][32];

	CHECK(setup() == 0 && open_index(T0) == 0);
	digest(d[0], 11, 1);
	digest(d[1], 12, 2);
	CHECK_EQ_INT(seen(d[0], T0), 0);
	CHECK(remember(d, 1, T0, 1) == 0);
	CHECK_EQ_INT(seen(d[0], T0), 1);
	CHECK_EQ_INT(seen(d[0], T0 + WINDOW - 1), 1);
	CHECK_EQ_INT(seen(d[0], T0 + WINDOW), 0);
	CHECK_EQ_INT(seen(d[1], T0), 0);
	CHECK_EQ_INT(records(), 1);
}

static void test_same_round_sees_own_records(void)
{
	uint8_t d[32];
	struct store_txn *txn;

	CHECK(setup() == 0 && open_index(T0) == 0);
	digest(d, 21, 1);
	CHECK(store_txn_begin(st, &txn) == 0);
	CHECK_EQ_INT(dedup_seen(dd, txn, d, T0, WINDOW), 0);
	CHECK_EQ_INT(dedup_remember(dd, txn, d, T0), 0);
	CHECK_EQ_INT(dedup_seen(dd, txn, d, T0, WINDOW), 1);
	CHECK(store_txn_commit(txn) == 0);
	dedup_round_end(dd, 1);
	CHECK_EQ_INT(seen(d, T0 + 1), 1);
}

static void test_aborted_round_forgotten(void)
{
	uint8_t d[3][32];

	CHECK(setup() == 0 && open_index(T0) == 0);
	for (int i = 0; i < 3; i++)
		digest(d[i], 31 + (uint64_t)i, (uint64_t)i);
	CHECK(remember(d, 1, T0, 1) == 0);
	CHECK(remember(d + 1, 2, T0 + 1, 0) == 0);
	CHECK_EQ_INT(dedup_count(dd), 1);
	CHECK_EQ_INT(seen(d[0], T0 + 2), 1);
	CHECK_EQ_INT(seen(d[1], T0 + 2), 0);
	CHECK_EQ_INT(seen(d[2], T0 + 2), 0);
	CHECK_EQ_INT(records(), 1);
}

static void test_rebuilt_from_store(void)
{
	uint8_t d[3][32];

	CHECK(setup() == 0 && open_index(T0) == 0);
	for (int i = 0; i < 3; i++)
		digest(d[i], 41 + (uint64_t)i, (uint64_t)i);
	CHECK(remember(d, 1, T0, 1) == 0);
	CHECK(remember(d + 1, 2, T0 + 1000, 1) == 0);
	/* A new index, as after a restart, just after d[0] expired. */
	CHECK(open_index(T0 + WINDOW) == 0);
	CHECK_EQ_INT(dedup_count(dd), 2);
	CHECK_EQ_INT(seen(d[0], T0 + WINDOW), 0);
	CHECK_EQ_INT(seen(d[1], T0 + WINDOW), 1);
	CHECK_EQ_INT(seen(d[2], T0 + WINDOW), 1);
	CHECK(expire(T0 + WINDOW) == 0);
	CHECK_EQ_INT(records(), 2);
}

static void test_shared_prefix(void)
{
	uint8_t a[1][32], b[1][32];

	CHECK(setup() == 0 && open_index(T0) == 0);
	/* Same first 8 bytes, different digests: only the stored one is a
	 * resend. */
	digest(a[0], 51, 1);
	digest(b[0], 51, 2);
	CHECK(memcmp(a[0], b[0], 32) != 0);
	CHECK(remember(a, 1, T0, 1) == 0);
	CHECK_EQ_INT(seen(b[0], T0), 0);
	CHECK(remember(b, 1, T0 + 5, 1) == 0);
	CHECK_EQ_INT(seen(a[0], T0 + 6), 1);
	CHECK_EQ_INT(seen(b[0], T0 + 6), 1);
	/* Expiring a leaves b found. */
	CHECK(expire(T0 + WINDOW) == 0);
	CHECK_EQ_INT(records(), 1);
	CHECK_EQ_INT(seen(a[0], T0 + WINDOW), 0);
	CHECK_EQ_INT(seen(b[0], T0 + WINDOW), 1);
	/* A prefix of zeros is kept too. */
	digest(a[0], 0, 3);
	CHECK(remember(a, 1, T0 + 10, 1) == 0);
	CHECK_EQ_INT(seen(a[0], T0 + 11), 1);
}

static void test_resent_after_window_stored_again(void)
{
	uint8_t d[1][32];

	CHECK(setup() == 0 && open_index(T0) == 0);
	digest(d[0], 61, 1);
	CHECK(remember(d, 1, T0, 1) == 0);
	/* Past the window but before expiry ran: not a resend any more, and
	 * the new record outlives the removal of the old one. */
	CHECK_EQ_INT(seen(d[0], T0 + WINDOW), 0);
	CHECK(remember(d, 1, T0 + WINDOW, 1) == 0);
	CHECK(expire(T0 + WINDOW) == 0);
	CHECK_EQ_INT(records(), 1);
	CHECK_EQ_INT(seen(d[0], T0 + WINDOW + 1), 1);
}

static void test_many_grow_expire_shrink(void)
{
	enum { N = 20000 };
	static uint8_t d[N][32];
	const uint64_t later = T0 + WINDOW / 8; /* a slice after T0 */
	int found = 0;

	CHECK(setup() == 0 && open_index(T0) == 0);
	for (uint64_t i = 0; i < N; i++)
		digest(d[i], i * 0x9e3779b97f4a7c15ull, i);
	/* In 100 rounds one millisecond apart, the second 50 a slice after
	 * the first: the first 50 are a run (or runs) of their own. */
	for (int r = 0; r < 100; r++)
		CHECK(remember(d + r * (N / 100), N / 100,
			       (r < 50 ? T0 : later) + (uint64_t)r, 1) == 0);
	CHECK_EQ_INT(dedup_count(dd), N);
	for (int i = 0; i < N; i++)
		found += seen(d[i], later + 100) == 1;
	CHECK_EQ_INT(found, N);
	/* The first 50 rounds expire, a bounded number per call, and leave
	 * the index with the newest digest of their run. */
	for (int i = 0; i < 10; i++)
		CHECK(expire(T0 + 49 + WINDOW) == 0);
	CHECK_EQ_INT(records(), N / 2);
	CHECK_EQ_INT(dedup_count(dd), N / 2);
	found = 0;
	for (int i = 0; i < N; i++)
		found += seen(d[i], T0 + 49 + WINDOW) == 1;
	CHECK_EQ_INT(found, N / 2);
	for (int i = N / 2; i < N; i++)
		CHECK_EQ_INT(seen(d[i], T0 + 49 + WINDOW), 1);
	/* All gone: the index is back to its smallest. */
	for (int i = 0; i < 20; i++)
		CHECK(expire(later + 200 + WINDOW) == 0);
	CHECK_EQ_INT(dedup_count(dd), 0);
	CHECK(dedup_bytes(dd) < 16 * 1024);
	CHECK_EQ_INT(records(), 0);
	CHECK_EQ_INT(seen(d[N - 1], later + 200 + WINDOW), 0);
}

/* Looks up n digests in one transaction; returns how many were seen. */
static int seen_many(const uint8_t (*d)[32], size_t n, uint64_t now)
{
	struct store_txn *txn;
	int found = 0;

	if (store_txn_begin(st, &txn) != 0)
		return -1;
	for (size_t i = 0; i < n; i++)
		found += dedup_seen(dd, txn, d[i], now, WINDOW) == 1;
	store_txn_abort(txn);
	return found;
}

/* 50,000 requests stored within a minute, as a backlog buffered at full
 * speed: the index holds them in under 3 bytes each (2.5 and its runs'
 * tables; an open-addressing table of 8-byte slots took 10 to 20, the
 * first sorted runs of 3-byte entries 3.4), before and after a rebuild from
 * the store, and with little of malloc's heap; every one is found across
 * its runs, and digests that share the first 8 bytes of a stored one, or
 * none, are not. */
static void test_bytes_per_request(void)
{
	enum { N = 50000, ROUND = 200 };
	static uint8_t d[N][32], other[N][32];
	struct store_txn *txn;
	struct mallinfo2 before, after;
	int rc;

	CHECK(setup() == 0 && open_index(T0) == 0);
	for (uint64_t i = 0; i < N; i++) {
		digest(d[i], i * 0x9e3779b97f4a7c15ull, i);
		/* one in 100: the first 8 bytes of a stored digest (each
		 * costs a read of its run's records); else random */
		digest(other[i], i % 100 == 0 ? i * 0x9e3779b97f4a7c15ull :
			       (i + N) * 0xbf58476d1ce4e5b9ull, i + N);
	}
	for (int r = 0; r < N / ROUND; r++)
		CHECK(remember(d + r * ROUND, ROUND, T0 + ROUND * (uint64_t)r,
			       1) == 0);
	CHECK_EQ_INT(dedup_count(dd), N);
	CHECK(dedup_bytes(dd) < 3 * N);
	CHECK_EQ_INT(seen_many(d, N, T0 + 60000), N);
	CHECK_EQ_INT(seen_many(other, N, T0 + 60000), 0);
	dedup_free(dd);
	dd = NULL;
	CHECK(store_txn_begin(st, &txn) == 0);
	before = mallinfo2();
	dd = dedup_open(txn, T0 + 60000, WINDOW, &rc);
	after = mallinfo2();
	CHECK(store_txn_commit(txn) == 0);
	CHECK(dd != NULL);
	CHECK_EQ_INT(dedup_count(dd), N);
	CHECK(dedup_bytes(dd) < 3 * N);
	/* the runs are mappings of their own; the open run's keys (4 KiB)
	 * and the list of runs are malloc's */
	CHECK(after.uordblks < before.uordblks + 8192);
	CHECK_EQ_INT(seen_many(d, N, T0 + 60000), N);
	CHECK_EQ_INT(seen_many(other, N, T0 + 60000), 0);
	/* (one a ms:) resends still found when the older half is out of the
	 * window */
	CHECK_EQ_INT(seen_many(d + N / 2, N / 2, T0 + N / 2 - 1 + WINDOW),
		     N / 2);
	CHECK_EQ_INT(seen_many(d, N / 2, T0 + N / 2 - 1 + WINDOW), 0);
}

/* Times on both sides of a carry out of their low 28 bits (which an
 * earlier index kept alone), and a clock set back a little, still find
 * their records, and expiry still takes them out of the index. */
static void test_time_bits_wrap(void)
{
	const uint64_t wrap = ((T0 >> 28) + 1) << 28;
	uint8_t d[2][32];

	CHECK(setup() == 0 && open_index(wrap - 10) == 0);
	digest(d[0], 0x1111111111111111ull, 1);
	digest(d[1], 0x2222222222222222ull, 2);
	CHECK(remember(&d[0], 1, wrap - 5, 1) == 0);
	CHECK(remember(&d[1], 1, wrap + 3, 1) == 0);
	CHECK_EQ_INT(seen(d[0], wrap + 100), 1);
	CHECK_EQ_INT(seen(d[0], wrap - 5 + WINDOW - 1), 1);
	CHECK_EQ_INT(seen(d[0], wrap - 5 + WINDOW), 0);
	CHECK_EQ_INT(seen(d[1], wrap - 1000), 1);
	CHECK_EQ_INT(seen(d[1], wrap + 3 + WINDOW - 1), 1);
	CHECK(open_index(wrap + 50) == 0);
	CHECK_EQ_INT(dedup_count(dd), 2);
	CHECK_EQ_INT(seen(d[0], wrap + 50), 1);
	CHECK_EQ_INT(seen(d[1], wrap + 50), 1);
	CHECK(expire(wrap - 5 + WINDOW) == 0);
	CHECK_EQ_INT(records(), 1);
	CHECK_EQ_INT(seen(d[0], wrap - 5 + WINDOW), 0);
	CHECK_EQ_INT(seen(d[1], wrap - 5 + WINDOW), 1);
	CHECK(expire(wrap + 3 + WINDOW) == 0);
	CHECK_EQ_INT(dedup_count(dd), 0);
	CHECK_EQ_INT(records(), 0);
}

/* The wall clock set back 100 s (more than a slice, 75 s here), and
 * records from the future loaded at start: no chunk's time range spans
 * the step (it would cover every record stored in between, each one read
 * to confirm a match in that chunk), and every digest is still found. */
static void test_clock_step_back(void)
{
	enum { N = 40 };
	static uint8_t d[N][32];
	const uint64_t slice = WINDOW / 8, ahead = T0 + 100000;

	CHECK(setup() == 0 && open_index(T0) == 0);
	for (uint64_t i = 0; i < N; i++)
		digest(d[i], i * 0x9e3779b97f4a7c15ull + 5, i);
	for (int r = 0; r < 10; r++)
		CHECK(remember(d + r, 1, ahead + (uint64_t)r, 1) == 0);
	for (int r = 10; r < 20; r++)
		CHECK(remember(d + r, 1, T0 + (uint64_t)r, 1) == 0);
	CHECK(dedup_widest_ms(dd) < slice);
	CHECK_EQ_INT(seen_many(d, 20, T0 + 30), 20);
	CHECK_EQ_INT(seen_many(d + 20, N - 20, T0 + 30), 0);
	/* A restart before the clock catches up: the records from ahead
	 * are loaded after the others (in a chunk of their own), and those
	 * stored next go before them again. */
	CHECK(open_index(T0 + 40) == 0);
	CHECK(dedup_widest_ms(dd) < slice);
	for (int r = 20; r < 30; r++)
		CHECK(remember(d + r, 1, T0 + 20 + (uint64_t)r, 1) == 0);
	CHECK(dedup_widest_ms(dd) < slice);
	CHECK_EQ_INT(seen_many(d, 30, T0 + 60), 30);
	CHECK_EQ_INT(seen_many(d + 30, N - 30, T0 + 60), 0);
}

/* An aborted round leaves the open run exactly as it was: the same keys
 * in the same order and the same time range (a later round's time and
 * keys among the committed ones, one of them equal to a committed key,
 * all taken out again); and a round that began by closing the open run
 * (the clock set back) leaves every committed digest found. */
static void test_aborted_round_restores_open_run(void)
{
	enum { N = 300 };
	static uint8_t d[N][32];
	static uint32_t keys[N];
	const uint32_t *now_keys;
	uint64_t lo, hi, lo2, hi2;
	size_t n, n2, count;

	CHECK(setup() == 0 && open_index(T0) == 0);
	for (uint64_t i = 0; i < N; i++)
		digest(d[i], i * 0x9e3779b97f4a7c15ull + 3, i);
	/* the same first 4 bytes as d[0], another digest */
	digest(d[N - 1], 3, N - 1);
	CHECK(remember(d, 100, T0 + 10, 1) == 0);
	CHECK(remember(d + 100, 50, T0 + 20, 1) == 0);
	n = dedup_open_view(dd, &now_keys, &lo, &hi);
	CHECK_EQ_INT(n, 150);
	memcpy(keys, now_keys, n * sizeof(*keys));
	count = dedup_count(dd);
	CHECK(remember(d + 150, N - 150, T0 + 30, 0) == 0);
	n2 = dedup_open_view(dd, &now_keys, &lo2, &hi2);
	CHECK_EQ_INT(n2, n);
	CHECK(memcmp(now_keys, keys, n * sizeof(*keys)) == 0);
	CHECK(lo2 == T0 + 10 && hi2 == T0 + 20);
	CHECK_EQ_INT(dedup_count(dd), count);
	CHECK_EQ_INT(seen_many(d, 150, T0 + 40), 150);
	CHECK_EQ_INT(seen_many(d + 150, N - 150, T0 + 40), 0);
	/* Set back 100 s: the open run closes as the round begins, and
	 * stays closed when the round is undone. */
	CHECK(remember(d + 150, 10, T0 - 100000, 0) == 0);
	CHECK_EQ_INT(dedup_open_view(dd, &now_keys, &lo2, &hi2), 0);
	CHECK_EQ_INT(dedup_count(dd), count);
	CHECK_EQ_INT(seen_many(d, 150, T0 + 40), 150);
	CHECK_EQ_INT(seen_many(d + 150, N - 150, T0 + 40), 0);
	CHECK_EQ_INT(records(), 150);
}

/* A run holds 16 chunks (the chunk in 4 bits) and 16,384 digests: rounds
 * of 1,024 fill it to both limits at once, rounds of 1,100 reach the
 * digests' limit first, small chunks the chunks' limit; the next chunk
 * starts a run. Every digest is
 * found in its chunk, others are not. */
static void test_sixteen_chunks(void)
{
	enum { N = 17 * 1100 };
	static uint8_t d[N][32], other[N][32];
	static const size_t rounds[] = {1024, 1100};

	for (size_t k = 0; k < 2; k++) {
		size_t per = rounds[k], total = 17 * per;
		CHECK(setup() == 0 && open_index(T0) == 0);
		for (uint64_t i = 0; i < total; i++) {
			digest(d[i], (i + 7 * k) * 0x9e3779b97f4a7c15ull, i);
			digest(other[i], (i + N) * 0xbf58476d1ce4e5b9ull, i);
		}
		for (size_t r = 0; r < 17; r++)
			CHECK(remember(d + r * per, per, T0 + r, 1) == 0);
		CHECK_EQ_INT(dedup_count(dd), total);
		CHECK_EQ_INT(seen_many(d, total, T0 + 20), (int)total);
		CHECK_EQ_INT(seen_many(other, total, T0 + 20), 0);
		CHECK(open_index(T0 + 20) == 0);
		CHECK_EQ_INT(dedup_count(dd), total);
		CHECK_EQ_INT(seen_many(d, total, T0 + 20), (int)total);
		CHECK_EQ_INT(seen_many(other, total, T0 + 20), 0);
		cleanup();
	}
	/* Small chunks: after one of 1,024, rounds of 10 each a millisecond
	 * before the last close the open run (the clock set back), and fit
	 * in the run until it has 16 chunks. */
	CHECK(setup() == 0 && open_index(T0) == 0);
	for (uint64_t i = 0; i < 1024 + 200; i++)
		digest(d[i], (i + 3) * 0x9e3779b97f4a7c15ull, i);
	CHECK(remember(d, 1024, T0, 1) == 0);
	for (size_t r = 0; r < 20; r++)
		CHECK(remember(d + 1024 + 10 * r, 10, T0 + 1000 - r, 1) == 0);
	CHECK_EQ_INT(seen_many(d, 1224, T0 + 1000), 1224);
	CHECK_EQ_INT(seen_many(other, 1224, T0 + 1000), 0);
}

/* A store error while a digest is looked up is an error (negative), not
 * "not a duplicate": LMDB's own codes are negative already, and were once
 * negated into positive values that read as 0/1-like successes. */
static void test_seen_error_is_negative(void)
{
	uint8_t d[32];
	struct store_txn *txn;
	MDB_txn *child;
	int rc;

	digest(d, 7, 7);
	CHECK(setup() == 0);
	CHECK(open_index(T0) == 0);
	CHECK(remember(&d, 1, T0, 1) == 0);
	CHECK(store_txn_begin(st, &txn) == 0);
	/* A child transaction open blocks its parent: LMDB answers any read
	 * of the parent with MDB_BAD_TXN, one of its own negative codes. */
	CHECK(mdb_txn_begin(st->env, txn->txn, 0, &child) == 0);
	rc = dedup_seen(dd, txn, d, T0 + 1, WINDOW);
	mdb_txn_abort(child);
	store_txn_abort(txn);
	CHECK(rc < 0);
	CHECK_EQ_INT(rc, ERR_CORRUPT);
}

int main(void)
{
#define RUN_DEDUP(fn)                                                         \
	do {                                                                  \
		RUN(fn);                                                      \
		cleanup();                                                    \
	} while (0)
	RUN_DEDUP(test_seen_within_window);
	RUN_DEDUP(test_same_round_sees_own_records);
	RUN_DEDUP(test_aborted_round_forgotten);
	RUN_DEDUP(test_rebuilt_from_store);
	RUN_DEDUP(test_shared_prefix);
	RUN_DEDUP(test_resent_after_window_stored_again);
	RUN_DEDUP(test_many_grow_expire_shrink);
	RUN_DEDUP(test_bytes_per_request);
	RUN_DEDUP(test_time_bits_wrap);
	RUN_DEDUP(test_seen_error_is_negative);
	RUN_DEDUP(test_clock_step_back);
	RUN_DEDUP(test_aborted_round_restores_open_run);
	RUN_DEDUP(test_sixteen_chunks);
	return unit_done();
}
