/*
 * usagefill.c - writes usage records straight into a data directory
 * through the store's API, for tests of reports over many records:
 *
 *   usagefill DIR TENANTS HOURS LAST_HOUR
 *
 * Tenant i (0 <= i < TENANTS) is "tenant-NNNNN" (i, five digits); it gets
 * one record per hour for the HOURS hours ending with LAST_HOUR (Unix
 * seconds, a multiple of 3600), with requests = 1, samples = i + 1 and
 * series = the hour's index (0 for the oldest). No relay may hold DIR.
 * Exit status 0, or 1 with the reason on stderr.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "store.h"
#include "usage.h"

/* Records per write transaction. */
#define FILL_TXN_RECORDS 20000

int main(int argc, char **argv)
{
	struct usage_rec rec;
	struct store_txn *txn = NULL;
	struct store *st;
	uint64_t tenants, hours, last, n = 0;
	char why[512], tenant[32];
	int rc = 0;

	if (argc != 5) {
		fprintf(stderr, "usage: usagefill DIR TENANTS HOURS LAST_HOUR\n");
		return 1;
	}
	tenants = strtoull(argv[2], NULL, 10);
	hours = strtoull(argv[3], NULL, 10);
	last = strtoull(argv[4], NULL, 10) / 3600 * 3600;
	if (hours == 0 || hours * 3600 > last ||
	    (st = store_open(argv[1], (uint64_t)8 << 30, why, sizeof(why))) == NULL) {
		fprintf(stderr, "usagefill: %s\n", hours ? why : "bad HOURS");
		return 1;
	}
	memset(&rec, 0, sizeof(rec));
	rec.version = USAGE_FORMAT;
	rec.requests = 1;
	for (uint64_t i = 0; i < tenants && rc == 0; i++) {
		int tl = snprintf(tenant, sizeof(tenant), "tenant-%05" PRIu64, i);
		for (uint64_t j = 0; j < hours && rc == 0; j++) {
			if (txn == NULL && (rc = store_txn_begin(st, &txn)) != 0)
				break;
			rec.samples = i + 1;
			rec.series = j;
			rc = store_usage_put(txn, 0, tenant, (size_t)tl,
					     last - (hours - 1 - j) * 3600, &rec,
					     sizeof(rec));
			if (rc == 0 && ++n % FILL_TXN_RECORDS == 0) {
				rc = store_txn_commit(txn);
				txn = NULL;
			}
		}
	}
	if (txn != NULL)
		rc = rc == 0 ? store_txn_commit(txn) : (store_txn_abort(txn), rc);
	store_close(st);
	if (rc != 0) {
		fprintf(stderr, "usagefill: %s\n", err_str(rc));
		return 1;
	}
	printf("records=%" PRIu64 "\n", n);
	return 0;
}
