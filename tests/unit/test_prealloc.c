/*
 * test_prealloc.c - zeros ahead of the data file: they appear past LMDB's
 * end while the data grows, commits that land on them keep every value
 * intact, the margin stays within its bounds, and a stop cuts the file
 * back to the data, which then reads back after reopening.
 *
 * At rest the margin lies between half its target and the target: the
 * thread refills only once commits have used half of it.
 *
 * Each test works on its own store in a directory under /tmp.
 */
#include "prealloc.h"

#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "store.h"
#include "tmpstore.h"
#include "unit.h"

#define MIB (1024ull * 1024)
#define VALUE (60 * 1024)

static char dir[64], path[96], file[128];
static struct store *st;
static int st_open;
static struct prealloc *pa;

static int setup(void)
{
	if (tmpstore_open(dir, sizeof(dir), path, sizeof(path), "prealloc", &st,
			  256 * MIB) < 0)
		return -1;
	snprintf(file, sizeof(file), "%s/data.mdb", path);
	st_open = 1;
	return 0;
}

static void cleanup(void)
{
	prealloc_stop(pa);
	pa = NULL;
	if (st_open)
		store_close(st);
	st_open = 0;
	tmpdir_remove(dir);
	dir[0] = '\0';
}

static uint64_t lmdb_end(void)
{
	MDB_envinfo info;

	mdb_env_info(st->env, &info);
	return ((uint64_t)info.me_last_pgno + 1) * st->page_size;
}

static uint64_t file_size(void)
{
	struct stat sb;

	return stat(file, &sb) == 0 ? (uint64_t)sb.st_size : 0;
}

static void fill(uint8_t *v, unsigned i)
{
	for (size_t j = 0; j < VALUE; j++)
		v[j] = (uint8_t)(i * 31 + j * 7 + (j >> 9));
}

/* Values first..last-1, one commit each, under the writer's lock. */
static int put_values(unsigned first, unsigned last)
{
	static uint8_t v[VALUE];
	char key[16];
	MDB_txn *txn;
	MDB_val k, d;
	int rc = 0;

	for (unsigned i = first; i < last && rc == 0; i++) {
		fill(v, i);
		k.mv_size = (size_t)snprintf(key, sizeof(key), "v%06u", i);
		k.mv_data = key;
		d.mv_size = VALUE;
		d.mv_data = v;
		prealloc_lock(pa);
		if ((rc = mdb_txn_begin(st->env, NULL, 0, &txn)) == 0) {
			if ((rc = mdb_put(txn, st->meta, &k, &d, 0)) == 0)
				rc = mdb_txn_commit(txn);
			else
				mdb_txn_abort(txn);
		}
		prealloc_unlock(pa);
	}
	return rc;
}

/* Number of values 0..n-1 that read back as written. */
static unsigned values_intact(unsigned n)
{
	static uint8_t want[VALUE];
	unsigned good = 0;
	char key[16];
	MDB_txn *txn;
	MDB_val k, d;

	if (mdb_txn_begin(st->env, NULL, MDB_RDONLY, &txn) != 0)
		return 0;
	for (unsigned i = 0; i < n; i++) {
		fill(want, i);
		k.mv_size = (size_t)snprintf(key, sizeof(key), "v%06u", i);
		k.mv_data = key;
		if (mdb_get(txn, st->meta, &k, &d) == 0 && d.mv_size == VALUE &&
		    memcmp(d.mv_data, want, VALUE) == 0)
			good++;
	}
	mdb_txn_abort(txn);
	return good;
}

/* Polls until the margin reaches at least min bytes; gives up after 30 s. */
static uint64_t wait_margin(uint64_t min)
{
	struct timespec pause = {0, 10 * 1000 * 1000};
	uint64_t m = 0;

	for (int i = 0; i < 3000 && (m = prealloc_margin(pa)) < min; i++)
		nanosleep(&pause, NULL);
	return m;
}

/* Everything from off to the end of the file is zero. */
static int zeros_from(uint64_t off)
{
	static uint8_t chunk[65536];
	int fd = open(file, O_RDONLY | O_CLOEXEC);
	ssize_t n;
	int ok = fd >= 0;

	while (ok && (n = pread(fd, chunk, sizeof(chunk), (off_t)off)) > 0) {
		for (ssize_t i = 0; i < n; i++)
			if (chunk[i] != 0)
				ok = 0;
		off += (uint64_t)n;
	}
	if (fd >= 0)
		close(fd);
	return ok;
}

/* direct: O_DIRECT writes, or through the page cache. */
static void margin_ahead_of_data(int direct)
{
	uint64_t end, margin, size;
	char why[256];

	CHECK(setup() == 0);
	pa = prealloc_start(st, 4 * MIB, direct);
	CHECK(pa != NULL);
	/* About 18 MiB of values: a quarter of it is more than the cap. */
	CHECK(put_values(0, 300) == 0);
	margin = wait_margin(2 * MIB);
	end = lmdb_end();
	size = file_size();
	CHECK(margin >= 2 * MIB);
	CHECK(margin <= 4 * MIB);
	CHECK(size >= end + margin);
	CHECK(zeros_from(end));
	/* Commits now land on the zeros; all data stays as written. */
	CHECK(put_values(300, 400) == 0);
	CHECK(lmdb_end() > end);
	CHECK_EQ_INT(values_intact(400), 400);
	/* A stop gives the zeros back, and the store reopens whole. */
	prealloc_stop(pa);
	pa = NULL;
	end = lmdb_end();
	CHECK_EQ_INT(file_size(), end);
	store_close(st);
	st_open = 0;
	CHECK((st = store_open(path, 256 * MIB, why, sizeof(why))) != NULL);
	st_open = 1;
	CHECK_EQ_INT(values_intact(400), 400);
}

static void test_margin_ahead_of_data_direct(void)
{
	margin_ahead_of_data(1);
}

static void test_margin_ahead_of_data_cached(void)
{
	margin_ahead_of_data(0);
}

static void test_margin_is_a_quarter_of_small_data(void)
{
	uint64_t end, margin;

	CHECK(setup() == 0);
	pa = prealloc_start(st, 64 * MIB, 1);
	CHECK(pa != NULL);
	/* About 6 MiB of values: the target is a quarter, rounded down to
	 * whole MiB, so 1 MiB. */
	CHECK(put_values(0, 100) == 0);
	margin = wait_margin(MIB / 2);
	end = lmdb_end();
	CHECK(end > 6 * MIB && end < 8 * MIB);
	CHECK(margin >= MIB / 2);
	CHECK(margin <= MIB);
	CHECK(zeros_from(end));
	CHECK_EQ_INT(values_intact(100), 100);
}

static void test_off(void)
{
	uint64_t size;

	CHECK(setup() == 0);
	CHECK(prealloc_start(st, 0, 1) == NULL);
	/* The writer's calls take NULL. */
	CHECK(put_values(0, 100) == 0);
	size = file_size();
	CHECK_EQ_INT(size, lmdb_end());
	CHECK_EQ_INT(prealloc_margin(NULL), 0);
	prealloc_stop(NULL);
	CHECK_EQ_INT(values_intact(100), 100);
}

int main(void)
{
#define RUN_PRE(fn)                                                           \
	do {                                                                  \
		RUN(fn);                                                      \
		cleanup();                                                    \
	} while (0)
	RUN_PRE(test_margin_ahead_of_data_direct);
	RUN_PRE(test_margin_ahead_of_data_cached);
	RUN_PRE(test_margin_is_a_quarter_of_small_data);
	RUN_PRE(test_off);
	return unit_done();
}
