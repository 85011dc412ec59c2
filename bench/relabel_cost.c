/*
 * relabel_cost.c - what relabel rules cost per series (CPU time of the
 * thread, so that other load on the machine does not count).
 *
 *   relabel_cost [SERIES [ROUNDS [RULES.yml]]]  (defaults 2000, 200, and
 *                                  the ten rules below, bench/relabel.yml's)
 *
 * Builds SERIES node-exporter-like series (one sample each, as Prometheus
 * sends them: __name__, cpu or device, instance, job, mode) and times,
 * per series:
 *   apply     relabel_apply with ten typical rules (below);
 *   scan      wire_scan of the whole request with the tenant label set,
 *             as ingest does: without rules, and with the ten rules
 *             through the relabel hook (relabel_pass.h).
 *   cached    the same scan with the cache of rule results
 *             (relabel_cache.h): every series found in it (the series
 *             of the request sent again), and none (a new cache per
 *             round: each series looked up, run through the rules and
 *             remembered). With the default 2000 series the cache sits
 *             in the CPU's caches; 50000 series, as many as a few dozen
 *             node_exporter targets, show it in memory.
 * The ratio scan-with-rules / scan-without is the cost that rules add to
 * the scanner's part of ingest (which also decompresses, stores and
 * forwards: the whole path's ratio is smaller).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "buf.h"
#include "relabel.h"
#include "relabel_cache.h"
#include "relabel_pass.h"
#include "wire.h"

/* The same ten rules as bench/relabel.yml (make bench, phase h). */
static const char rules_yaml[] =
	"- source_labels: [__name__]\n"
	"  regex: 'go_.*'\n"
	"  action: drop\n"
	"- source_labels: [__name__]\n"
	"  regex: 'node_scrape_collector_.*|node_textfile_.*'\n"
	"  action: drop\n"
	"- source_labels: [job]\n"
	"  regex: 'node|app|kubelet'\n"
	"  action: keep\n"
	"- regex: 'tmp_.*|pod_template_hash'\n"
	"  action: labeldrop\n"
	"- source_labels: [instance]\n"
	"  regex: '(.*):9100'\n"
	"  target_label: host\n"
	"- target_label: cluster\n"
	"  replacement: eu-1\n"
	"- regex: 'label_(.+)'\n"
	"  action: labelmap\n"
	"- source_labels: [job, instance]\n"
	"  separator: /\n"
	"  target_label: origin\n"
	"- source_labels: [__name__, fstype]\n"
	"  regex: 'node_filesystem_.*;(tmpfs|overlay)'\n"
	"  action: drop\n"
	"- source_labels: [instance]\n"
	"  target_label: shard\n"
	"  modulus: 8\n"
	"  action: hashmod\n";

static const char *const metrics[] = {
	"node_cpu_seconds_total", "node_network_receive_bytes_total",
	"node_disk_read_bytes_total", "node_memory_MemFree_bytes",
	"node_filesystem_avail_bytes", "node_load1"
};
static const char *const modes[] = { "idle", "user", "system", "iowait" };

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint8_t *put_varint(uint8_t *d, uint64_t v)
{
	while (v >= 0x80) {
		*d++ = (uint8_t)(v | 0x80);
		v >>= 7;
	}
	*d++ = (uint8_t)v;
	return d;
}

static uint8_t *put_label(uint8_t *d, const char *n, const char *v)
{
	size_t nl = strlen(n), vl = strlen(v);

	*d++ = 0x0a;
	d = put_varint(d, 4 + nl + vl + (nl > 127) + (vl > 127));
	*d++ = 0x0a;
	d = put_varint(d, nl);
	memcpy(d, n, nl);
	d += nl;
	*d++ = 0x12;
	d = put_varint(d, vl);
	memcpy(d, v, vl);
	return d + vl;
}

/* The labels of series i, sorted, as "name\0value\0" pairs in ls. */
static size_t series_labels(size_t i, char names[6][32], char values[6][64])
{
	size_t n = 0;

	snprintf(names[n], 32, "__name__");
	snprintf(values[n++], 64, "%s", metrics[i % 6]);
	snprintf(names[n], 32, "cpu");
	snprintf(values[n++], 64, "%zu", i / 6 % 8);
	snprintf(names[n], 32, "instance");
	snprintf(values[n++], 64, "10.0.%zu.%zu:9100", i / 48 % 256,
		 i / 12288 % 256);
	snprintf(names[n], 32, "job");
	snprintf(values[n++], 64, "node");
	snprintf(names[n], 32, "mode");
	snprintf(values[n++], 64, "%s", modes[i % 4]);
	return n;
}

/* A WriteRequest of nseries series, one sample each. */
static uint8_t *build_request(size_t nseries, size_t *len)
{
	uint8_t *req = malloc(nseries * 256), *d = req, ser[512], *s;
	char names[6][32], values[6][64];

	for (size_t i = 0; i < nseries; i++) {
		size_t n = series_labels(i, names, values);
		double v = (double)i;

		s = ser;
		for (size_t k = 0; k < n; k++)
			s = put_label(s, names[k], values[k]);
		*s++ = 0x12;
		*s++ = 11;
		*s++ = 0x09;
		memcpy(s, &v, 8);
		s += 8;
		*s++ = 0x10;
		*s++ = 1;
		*d++ = 0x0a;
		d = put_varint(d, (size_t)(s - ser));
		memcpy(d, ser, (size_t)(s - ser));
		d += s - ser;
	}
	*len = (size_t)(d - req);
	return req;
}

static double time_apply(const struct relabel_rules *r, size_t nseries,
			 size_t rounds, size_t *kept)
{
	char (*names)[6][32] = malloc(nseries * sizeof(*names));
	char (*values)[6][64] = malloc(nseries * sizeof(*values));
	struct relabel_label (*base)[6] = malloc(nseries * sizeof(*base)), ls[32];
	size_t *nl = malloc(nseries * sizeof(*nl));
	struct relabel_scratch s;
	double t0, t;

	for (size_t i = 0; i < nseries; i++) {
		nl[i] = series_labels(i, names[i], values[i]);
		for (size_t k = 0; k < nl[i]; k++)
			base[i][k] = (struct relabel_label){
				(const uint8_t *)names[i][k], strlen(names[i][k]),
				(const uint8_t *)values[i][k], strlen(values[i][k]) };
	}
	relabel_scratch_init(&s);
	*kept = 0;
	t0 = now_s();
	for (size_t round = 0; round < rounds; round++) {
		for (size_t i = 0; i < nseries; i++) {
			size_t n = nl[i];

			memcpy(ls, base[i], n * sizeof(*ls));
			relabel_scratch_reset(&s);
			if (relabel_apply(r, ls, &n, 32, &s) == 0)
				(*kept)++;
		}
	}
	t = now_s() - t0;
	relabel_scratch_free(&s);
	free(names);
	free(values);
	free(base);
	free(nl);
	return t;
}

/* wire_scan of req, rounds times; with rp's rules when rp is not NULL,
 * and then with a cache of their results when cache is 1 (warm: filled
 * by one scan before the clock starts) or 2 (cold: a new one each
 * round, every lookup a miss). */
static double time_scan(const uint8_t *req, size_t len, size_t rounds,
			struct relabel_pass *rp, int cache)
{
	struct wire_opts o = { .tenant_label = "tenant", .tenant_value = "acme",
			       .max_labels_per_series = 128,
			       .max_label_name_length = 256,
			       .max_label_value_length = 16384 };
	struct wire_counts c;
	struct buf out;
	char why[256];
	double t = 0, t0;

	if (rp != NULL) {
		o.relabel = relabel_pass_series;
		o.relabel_arg = rp;
	}
	if (cache)
		o.relabel_cache = relabel_cache_new((size_t)1 << 30);
	buf_init(&out, len * 4);
	for (size_t round = 0; round < rounds + (cache == 1); round++) {
		if (cache == 2 && round > 0) {
			relabel_cache_free(o.relabel_cache);
			o.relabel_cache = relabel_cache_new((size_t)1 << 30);
		}
		buf_reset(&out);
		memset(&c, 0, sizeof(c));
		t0 = now_s();
		if (wire_scan(req, len, &o, &c, &out, why, sizeof(why)) != WIRE_OK) {
			fprintf(stderr, "wire_scan: %s\n", why);
			exit(1);
		}
		if (cache != 1 || round > 0)
			t += now_s() - t0;
	}
	relabel_cache_free(o.relabel_cache);
	buf_free(&out);
	return t;
}

int main(int argc, char **argv)
{
	size_t nseries = argc > 1 ? strtoul(argv[1], NULL, 10) : 2000;
	size_t rounds = argc > 2 ? strtoul(argv[2], NULL, 10) : 200, kept, len;
	struct relabel_rules *r, *none;
	struct relabel_pass rp = {.rules = {0}};
	char err[256];
	uint8_t *req;
	double ta, t0a, ts, tr, tw, tc, per;

	r = argc > 3 ? relabel_load(argv[3], err, sizeof(err)) :
	    relabel_load_buf("rules.yml", rules_yaml, sizeof(rules_yaml) - 1,
			     err, sizeof(err));
	none = relabel_load_buf("none.yml", "", 0, err, sizeof(err));
	if (r == NULL || none == NULL) {
		fprintf(stderr, "%s\n", err);
		return 1;
	}
	per = (double)(nseries * rounds);
	t0a = time_apply(none, nseries, rounds, &kept);
	ta = time_apply(r, nseries, rounds, &kept);
	printf("relabel_apply, %zu rules: %.0f ns/series (kept %zu of %zu); "
	       "no rules: %.0f ns/series\n", relabel_count(r), ta / per * 1e9,
	       kept / rounds, nseries, t0a / per * 1e9);

	req = build_request(nseries, &len);
	rp.rules[0] = r;
	/* alternating runs, the best of three each */
	ts = tr = tw = tc = 1e9;
	for (int k = 0; k < 3; k++) {
		double a = time_scan(req, len, rounds, NULL, 0);
		double b = time_scan(req, len, rounds, &rp, 0);
		double w = time_scan(req, len, rounds, &rp, 1);
		double cl = time_scan(req, len, rounds, &rp, 2);
		ts = a < ts ? a : ts;
		tr = b < tr ? b : tr;
		tw = w < tw ? w : tw;
		tc = cl < tc ? cl : tc;
	}
	printf("wire_scan with the tenant label: %.0f ns/series without rules, "
	       "%.0f ns/series with %zu rules (x%.2f)\n", ts / per * 1e9,
	       tr / per * 1e9, relabel_count(r), tr / ts);
	printf("with the cache of rule results: %.0f ns/series when every "
	       "series is in it (x%.2f), %.0f ns/series when none is "
	       "(x%.2f)\n", tw / per * 1e9, tw / ts, tc / per * 1e9, tc / ts);
	relabel_pass_thread_cleanup();
	wire_scratch_free();
	free(req);
	relabel_free(r);
	relabel_free(none);
	return 0;
}
