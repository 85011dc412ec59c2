/*
 * series_mem.c - checks the memory that [tenant] max_series costs against
 * what relay.conf and the README state (series_limit.h:
 * SERIES_LIMIT_BYTES_MAX per tracked series, SERIES_LIMIT_TENANT_BYTES per
 * tenant).
 *
 *   series_mem TENANTS SERIES
 *
 * Fills the tables of TENANTS tenants, each with a limit of its share, with
 * SERIES distinct series in all (through series_limit_admit, in requests
 * of 1,000 series, as the relay would), then reads RssAnon from
 * /proc/self/status. Prints one line:
 *   tenants= series= rss_anon_before_kib= rss_anon_after_kib=
 *   bytes_per_series= table_bytes= bound_bytes= ok=
 * and exits 0 when the growth of RssAnon stays within the bound
 * (SERIES * SERIES_LIMIT_BYTES_MAX + TENANTS * SERIES_LIMIT_TENANT_BYTES),
 * 1 when it does not, 2 on a usage error. `make test` runs it scaled down
 * (t_series_mem); the full figure (1,000 tenants, 10 M series) is run by
 * hand: series_mem 1000 10000000.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "config.h"
#include "series_limit.h"

#define PER_REQUEST 1000

/* RssAnon of this process in KiB, or 0 when unreadable. */
static uint64_t rss_anon_kib(void)
{
	char line[256];
	uint64_t kib = 0;
	FILE *f = fopen("/proc/self/status", "r");

	if (f == NULL)
		return 0;
	while (fgets(line, sizeof(line), f) != NULL)
		if (sscanf(line, "RssAnon: %" SCNu64, &kib) == 1)
			break;
	fclose(f);
	return kib;
}

/* Distinct, well-spread series hashes (splitmix64). */
static uint64_t series_hash(uint64_t i)
{
	uint64_t x = i + 0x9e3779b97f4a7c15ull;

	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

int main(int argc, char **argv)
{
	struct config_tenant tc;
	struct series_limit *sl;
	struct series_req q;
	uint64_t tenants, total, before, after, next = 0, bound, grew;
	char id[32];

	if (argc != 3 || (tenants = strtoull(argv[1], NULL, 10)) == 0 ||
	    (total = strtoull(argv[2], NULL, 10)) == 0) {
		fprintf(stderr, "usage: series_mem TENANTS SERIES\n");
		return 2;
	}
	clock_start();
	memset(&tc, 0, sizeof(tc));
	memset(&q, 0, sizeof(q));
	tc.max_series_window_ms = 3600000;
	before = rss_anon_kib();
	if ((sl = series_limit_new()) == NULL)
		return 1;
	for (uint64_t t = 0; t < tenants; t++) {
		uint64_t share = total / tenants + (t < total % tenants);
		int len = snprintf(id, sizeof(id), "tenant-%05" PRIu64, t);

		tc.max_series = share ? share : 1;
		for (uint64_t done = 0; done < share; done += PER_REQUEST) {
			if (series_limit_begin(sl, &q, id, (size_t)len, &tc,
					       PER_REQUEST) != 0)
				return 1;
			for (uint64_t i = done; i < share && i < done + PER_REQUEST;
			     i++)
				series_limit_admit(&q, series_hash(next++));
		}
	}
	series_limit_end(&q);
	after = rss_anon_kib();
	bound = total * SERIES_LIMIT_BYTES_MAX +
		tenants * SERIES_LIMIT_TENANT_BYTES;
	grew = after > before ? (after - before) * 1024 : 0;
	printf("tenants=%" PRIu64 " series=%" PRIu64
	       " rss_anon_before_kib=%" PRIu64 " rss_anon_after_kib=%" PRIu64
	       " bytes_per_series=%.1f table_bytes=%" PRIu64
	       " bound_bytes=%" PRIu64 " ok=%d\n",
	       tenants, total, before, after, (double)grew / (double)total,
	       series_limit_bytes(sl), bound, grew <= bound);
	series_limit_free(sl);
	return grew <= bound ? 0 : 1;
}
