/*
 * store_check_cost.c - what the start-up check of the data file costs.
 *
 *   store_check_cost DIR ENTRIES BYTES   fills a new store in DIR with
 *                                        ENTRIES entries of about BYTES
 *                                        (snappy blocks of random bytes),
 *                                        then times store_check_data
 *   store_check_cost DIR                 times it on an existing store
 *
 * Each check is timed twice: with data.mdb dropped from the page cache
 * (posix_fadvise DONTNEED, as after a reboot) and warm.
 */
#include <fcntl.h>
#include <inttypes.h>
#include <snappy-c.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "store.h"
#include "store_check.h"

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int fill(const char *dir, uint64_t entries, size_t bytes)
{
	struct store *st;
	struct store_txn *txn = NULL;
	struct entry_hdr h;
	struct sblock_part part;
	char err[512], *raw, *block;
	size_t blen = snappy_max_compressed_length(bytes);
	uint64_t vb, seq;
	int rc = 0;

	raw = malloc(bytes);
	block = malloc(blen);
	if (raw == NULL || block == NULL)
		return -1;
	for (size_t i = 0; i < bytes; i++)
		raw[i] = (char)(rand() & 0xff);
	if (snappy_compress(raw, bytes, block, &blen) != SNAPPY_OK)
		return -1;
	st = store_open(dir, entries * (blen + 4096) * 2, err, sizeof(err));
	if (st == NULL) {
		fprintf(stderr, "%s\n", err);
		return -1;
	}
	part.p = (const uint8_t *)block;
	part.len = blen;
	for (uint64_t i = 0; i < entries && rc == 0; i++) {
		if (txn == NULL && (rc = store_txn_begin(st, &txn)) != 0)
			break;
		memset(&h, 0, sizeof(h));
		h.samples = 1;
		rc = store_put_entry(txn, "bench", 5, &h, &part, 1, &seq, &vb);
		if (rc == 0 && (i % 256 == 255 || i + 1 == entries)) {
			rc = store_txn_commit(txn);
			txn = NULL;
		}
	}
	if (txn != NULL)
		store_txn_abort(txn);
	store_close(st);
	free(raw);
	free(block);
	return rc == 0 ? 0 : -1;
}

static void evict(const char *dir)
{
	char p[4200];
	int fd;

	snprintf(p, sizeof(p), "%s/data.mdb", dir);
	if ((fd = open(p, O_RDONLY)) >= 0) {
		fdatasync(fd);
		posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
		close(fd);
	}
}

int main(int argc, char **argv)
{
	char err[1024], p[4200];
	struct stat sb;
	double t0, cold, warm;
	int rc;

	if (argc != 2 && argc != 4) {
		fprintf(stderr, "usage: store_check_cost DIR [ENTRIES BYTES]\n");
		return 2;
	}
	if (argc == 4 && fill(argv[1], strtoull(argv[2], NULL, 10),
			      strtoull(argv[3], NULL, 10)) < 0)
		return 1;
	snprintf(p, sizeof(p), "%s/data.mdb", argv[1]);
	if (stat(p, &sb) < 0)
		return 1;
	evict(argv[1]);
	t0 = now_s();
	rc = store_check_data(argv[1], err, sizeof(err));
	cold = now_s() - t0;
	t0 = now_s();
	rc |= store_check_data(argv[1], err, sizeof(err));
	warm = now_s() - t0;
	printf("data.mdb=%lld bytes check=%s cold_ms=%.1f warm_ms=%.1f\n",
	       (long long)sb.st_size, rc == 0 ? "ok" : err, cold * 1e3,
	       warm * 1e3);
	return rc == 0 ? 0 : 1;
}
