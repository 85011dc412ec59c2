/*
 * ingest_cost.c - what ingest_body costs per request (CPU time of the
 * thread, so that other load on the machine does not count), and what it
 * stores per byte received.
 *
 *   ingest_cost FILE [ROUNDS [TENANT]]   (defaults 20 and none)
 *
 * FILE holds request bodies as `loadgen --dump` writes them. Each round
 * runs ingest_body on every body, as the relay does for a request that
 * has passed admission: without TENANT as phase a of `make bench` runs
 * (no tenant label: the bodies are stored as sent, cut by lane), with it
 * the tenant label set on every series (every series rewritten; the
 * usage hook that the relay also runs per series is left out). Prints
 * the least round's us per request and per sample, and the bytes of the
 * batches' snappy blocks per byte received (without entry headers and
 * lane tables).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "batch.h"
#include "buf.h"
#include "config.h"
#include "ingest.h"

struct body {
	uint8_t *p;
	size_t len;
};

static double thread_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Reads FILE's bodies into *out; returns how many, or exits. */
static size_t bodies_read(const char *path, struct body **out)
{
	FILE *f = fopen(path, "rb");
	struct body *v = NULL;
	size_t n = 0, cap = 0;
	uint8_t le[4];

	if (f == NULL) {
		perror(path);
		exit(1);
	}
	while (fread(le, 1, 4, f) == 4) {
		size_t len = (size_t)le[0] | (size_t)le[1] << 8 |
			     (size_t)le[2] << 16 | (size_t)le[3] << 24;

		if (n == cap) {
			cap = cap ? 2 * cap : 1024;
			if ((v = realloc(v, cap * sizeof(*v))) == NULL)
				exit(1);
		}
		if ((v[n].p = malloc(len ? len : 1)) == NULL ||
		    fread(v[n].p, 1, len, f) != len) {
			fprintf(stderr, "%s: truncated\n", path);
			exit(1);
		}
		v[n++].len = len;
	}
	fclose(f);
	*out = v;
	return n;
}

int main(int argc, char **argv)
{
	const char *tenant = argc > 3 ? argv[3] : NULL;
	struct ingest_req r = { "", 0, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL };
	long rounds = argc > 2 ? atol(argv[2]) : 20;
	double best = 0, t;
	uint64_t samples = 0, in = 0, stored = 0;
	struct config cfg;
	struct body *v;
	struct buf *bodies;
	struct batch *batches;
	size_t n;
	char why[256];

	if (argc < 2 || rounds < 1) {
		fprintf(stderr, "usage: ingest_cost FILE [ROUNDS [TENANT]]\n");
		return 2;
	}
	if (tenant != NULL) {
		r.tenant = tenant;
		r.tlen = strlen(tenant);
	}
	config_defaults(&cfg);
	if (tenant != NULL)
		r.tenant_label = cfg.tenant_label;
	n = bodies_read(argv[1], &v);
	if (n == 0 || (bodies = calloc(n, sizeof(*bodies))) == NULL ||
	    (batches = calloc(n, sizeof(*batches))) == NULL) {
		fprintf(stderr, "%s: no bodies\n", argv[1]);
		return 1;
	}
	for (long k = 0; k < rounds; k++) {
		/* Each round ingests copies (a body may become its batch's),
		 * made and freed outside the clock. */
		for (size_t i = 0; i < n; i++) {
			buf_init(&bodies[i], cfg.max_body_size);
			if (buf_append(&bodies[i], v[i].p, v[i].len) < 0) {
				fprintf(stderr, "body %zu: over max_body_size\n", i);
				return 1;
			}
		}
		t = thread_s();
		for (size_t i = 0; i < n; i++) {
			struct wire_counts counts;
			uint64_t decoded;

			why[0] = '\0';
			if (ingest_body(&cfg, &r, &bodies[i], &batches[i], &counts,
					&decoded, why, sizeof(why)) != 0) {
				fprintf(stderr, "body %zu: %s\n", i, why);
				return 1;
			}
			if (k == 0)
				samples += counts.samples;
		}
		t = thread_s() - t;
		if (k == 0 || t < best)
			best = t;
		for (size_t i = 0; i < n; i++) {
			if (k == 0) {
				in += v[i].len;
				for (size_t c = 0; c < batches[i].nchunks; c++)
					stored += batches[i].chunks[c].len;
			}
			batch_release(&batches[i]);
			buf_free(&bodies[i]);
		}
	}
	printf("bodies=%zu rounds=%ld tenant=%s us_per_request=%.2f "
	       "us_per_sample=%.4f stored_per_received=%.4f\n",
	       n, rounds, tenant ? tenant : "-", best * 1e6 / (double)n,
	       samples ? best * 1e6 / (double)samples : 0.0,
	       in ? (double)stored / (double)in : 0.0);
	return 0;
}
