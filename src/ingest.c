/*
 * ingest.c - request body to batch (see ingest.h).
 */
#include "ingest.h"

#include <pthread.h>
#include <snappy-c.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lanes.h"
#include "sblock_prefix.h"
#include "store.h"

/* Per-thread scratch, reused between requests; freed when a large request
 * left it bigger than this. */
#define SCRATCH_KEEP (8u << 20)

struct scratch {
	struct buf decoded;
	struct buf lanes[LANES];  /* the request by lane: rewritten, or the
				   * runs of a lane of several gathered */
	struct lane_runs runs;    /* the request's runs by lane, when as sent */
};

static pthread_key_t scratch_key;
static pthread_once_t scratch_once = PTHREAD_ONCE_INIT;

/* Runs when a thread that used ingest_body exits. */
static void scratch_free(void *p)
{
	struct scratch *s = p;

	buf_free(&s->decoded);
	for (unsigned l = 0; l < LANES; l++)
		buf_free(&s->lanes[l]);
	free(s->runs.run);
	free(s);
	wire_scratch_free();
	relabel_pass_thread_cleanup();
}

static void scratch_key_init(void)
{
	pthread_key_create(&scratch_key, scratch_free);
}

/* This thread's scratch buffers; NULL when out of memory. */
static struct scratch *scratch_get(void)
{
	struct scratch *s;

	pthread_once(&scratch_once, scratch_key_init);
	s = pthread_getspecific(scratch_key);
	if (s == NULL && (s = calloc(1, sizeof(*s))) != NULL &&
	    pthread_setspecific(scratch_key, s) != 0) {
		free(s);
		s = NULL;
	}
	return s;
}

void ingest_thread_cleanup(void)
{
	struct scratch *s;

	pthread_once(&scratch_once, scratch_key_init);
	if ((s = pthread_getspecific(scratch_key)) != NULL) {
		scratch_free(s);
		pthread_setspecific(scratch_key, NULL);
	}
}

static void trim_scratch(struct buf *b)
{
	if (b->cap > SCRATCH_KEEP)
		buf_free(b);
	buf_reset(b);
}

int ingest_check_length(const struct config *cfg, const uint8_t *body,
			size_t len, uint64_t *decoded, char *why, size_t whylen)
{
	size_t n;

	if (snappy_uncompressed_length((const char *)body, len, &n) != SNAPPY_OK) {
		snprintf(why, whylen, "corrupt snappy block: bad length preamble");
		return 400;
	}
	*decoded = n;
	if (n > cfg->max_decoded_size) {
		snprintf(why, whylen, "decoded size %zu over the limit of %llu bytes",
			 n, (unsigned long long)cfg->max_decoded_size);
		return 413;
	}
	return 0;
}

static int add_chunk(struct batch *b, uint8_t *block, size_t len,
		     uint32_t raw_len, unsigned lane, const struct wire_counts *c)
{
	struct chunk *ch = realloc(b->chunks, (b->nchunks + 1) * sizeof(*ch));

	if (ch == NULL)
		return -1;
	b->chunks = ch;
	ch = &b->chunks[b->nchunks++];
	ch->block = block;
	ch->len = len;
	ch->raw_len = raw_len;
	ch->lane = lane;
	ch->counts = *c;
	b->value_bytes += len + sizeof(struct entry_hdr);
	return 0;
}

/* Compresses raw[0..len) into a new chunk of b in lane. Returns 0 or -1. */
static int compress_chunk(struct batch *b, const uint8_t *raw, size_t len,
			  unsigned lane, const struct wire_counts *c)
{
	size_t cap = snappy_max_compressed_length(len), n = cap;
	uint8_t *block = malloc(cap);

	if (block == NULL)
		return -1;
	if (snappy_compress((const char *)raw, len, (char *)block, &n) != SNAPPY_OK ||
	    add_chunk(b, block, n, (uint32_t)len, lane, c) < 0) {
		free(block);
		return -1;
	}
	return 0;
}

/* Cuts raw (of one lane) into chunks of whole top-level fields of at most
 * max bytes (a single larger field travels alone) and compresses each. */
static int split_chunks(const struct config *cfg, struct batch *b,
			const uint8_t *raw, size_t len, unsigned lane)
{
	size_t start = 0, off = 0, next;
	struct wire_counts c;
	char why[8];

	while (start < len) {
		off = start;
		while (off < len) {
			next = wire_next_field(raw, len, off);
			if (next == 0)
				return -1;
			if (next - start > cfg->max_request_size && off > start)
				break;
			off = next;
		}
		memset(&c, 0, sizeof(c));
		if (wire_scan(raw + start, off - start, &(struct wire_opts){0},
			      &c, NULL, why, sizeof(why)) != WIRE_OK ||
		    compress_chunk(b, raw + start, off - start, lane, &c) < 0)
			return -1;
		start = off;
	}
	return 0;
}

/* Counts the whole top-level fields of raw that are valid on their own, up
 * to the first that is not: what a refused request held as far as it
 * could be decoded. Only runs for refused requests. */
static void count_valid_prefix(const uint8_t *raw, size_t len,
			       const struct wire_opts *o, struct wire_counts *c)
{
	struct wire_opts opts = *o;
	size_t off = 0, next;
	char why[8];

	opts.tenant_label = NULL;
	opts.drop_label = NULL;
	opts.on_series = NULL;
	opts.admit = NULL;
	opts.lane_out = NULL;
	opts.lane_counts = NULL;
	opts.lane_runs = NULL;
	opts.relabel = NULL;
	memset(c, 0, sizeof(*c));
	while (off < len && (next = wire_next_field(raw, len, off)) != 0) {
		if (wire_scan(raw + off, next - off, &opts, c, NULL, why,
			      sizeof(why)) != WIRE_OK)
			break;
		off = next;
	}
}

/* Compresses each non-empty lane of sc->lanes (whose counts are lc) into
 * chunks of b. Returns 0 or -1. */
static int lanes_compress(const struct config *cfg, struct scratch *sc,
			  struct batch *b, const struct wire_counts *lc)
{
	int rc = 0;

	for (unsigned l = 0; l < LANES && rc == 0; l++) {
		const struct buf *lb = &sc->lanes[l];
		if (lb->len == 0)
			continue;
		if (lb->len <= cfg->max_request_size)
			rc = compress_chunk(b, lb->p, lb->len, l, &lc[l]);
		else
			rc = split_chunks(cfg, b, lb->p, lb->len, l);
	}
	return rc;
}

/* The first cut bytes of the request as a chunk of b in lane, made of the
 * body's own elements (sblock_prefix.h); tmp (empty) is the scratch it is
 * built in. Returns 0, or -1 (nothing added) when the body is not taken
 * or memory is short. */
static int prefix_chunk(struct batch *b, const struct buf *body,
			struct buf *tmp, size_t cut, unsigned lane,
			const struct wire_counts *c)
{
	uint8_t *block;
	int rc;

	rc = sblock_prefix(body->p, body->len, cut, tmp);
	if (rc == 0 && (block = malloc(tmp->len)) != NULL) {
		memcpy(block, tmp->p, tmp->len);
		if ((rc = add_chunk(b, block, tmp->len, (uint32_t)cut, lane, c)) < 0)
			free(block);
	} else {
		rc = -1;
	}
	buf_reset(tmp);
	return rc;
}

/* Puts b's chunks in ascending lane order (as a rewrite makes them),
 * keeping the order of each lane's own. */
static void chunks_by_lane(struct batch *b)
{
	for (size_t i = 1; i < b->nchunks; i++) {
		struct chunk ch = b->chunks[i];
		size_t j = i;

		for (; j > 0 && b->chunks[j - 1].lane > ch.lane; j--)
			b->chunks[j] = b->chunks[j - 1];
		b->chunks[j] = ch;
	}
}

/*
 * The request in sc->decoded, not rewritten, whose fields' lanes are in
 * sc->runs (counts in lc), into chunks of b: the body as it came when all
 * is in one lane, else one block per lane: the first run's lane, when it
 * is that run alone, as the start of the body; each other lane compressed
 * on its own, straight from the decoded request when it is one run of it,
 * else from its runs gathered; the chunks in ascending lane order. On
 * success a body that became a chunk is b's (body is left empty).
 * Returns 0 or -1.
 */
static int lanes_as_sent(const struct config *cfg, struct scratch *sc,
			 struct buf *body, struct batch *b,
			 const struct wire_counts *lc)
{
	const struct buf *raw = &sc->decoded;
	const struct lane_runs *lr = &sc->runs;
	size_t lane_len[LANES] = { 0 }, from[LANES], prev = 0;
	unsigned used = 0, runs[LANES] = { 0 }, l;
	int rc = 0;

	for (size_t i = 0; i < lr->n; i++) {
		l = lr->run[i].lane;
		from[l] = prev;
		lane_len[l] += lr->run[i].end - prev;
		used += lane_len[l] > 0 && runs[l]++ == 0;
		prev = lr->run[i].end;
	}
	for (l = 0; used == 1 && lane_len[l] == 0; l++)
		;
	if (used == 1 && lane_len[l] <= cfg->max_request_size) {
		if (add_chunk(b, body->p, body->len, (uint32_t)raw->len, l,
			      &lc[l]) < 0)
			return -1;
		buf_init(body, body->max);
		return 0;
	}
	prev = 0;
	for (size_t i = 0; i < lr->n && rc == 0; i++) {
		l = lr->run[i].lane;
		if (runs[l] > 1)
			rc = buf_append(&sc->lanes[l], raw->p + prev,
					lr->run[i].end - prev);
		prev = lr->run[i].end;
	}
	/* The first run's lane, when it is that run alone: the start of the
	 * body as it came (sblock_prefix.h), no compression. */
	l = lr->n > 0 ? lr->run[0].lane : 0;
	if (rc == 0 && runs[l] == 1 && lane_len[l] <= cfg->max_request_size &&
	    prefix_chunk(b, body, &sc->lanes[l], lane_len[l], l, &lc[l]) == 0)
		runs[l] = 0;
	for (l = 0; l < LANES && rc == 0; l++) {
		if (runs[l] != 1)
			continue;
		if (lane_len[l] <= cfg->max_request_size)
			rc = compress_chunk(b, raw->p + from[l], lane_len[l], l,
					    &lc[l]);
		else
			rc = split_chunks(cfg, b, raw->p + from[l], lane_len[l], l);
	}
	if (rc < 0 || lanes_compress(cfg, sc, b, lc) < 0)
		return -1;
	chunks_by_lane(b);
	return 0;
}

/* The label bounds: the tenant's where its section sets them, else
 * [limits]'. */
static void limits_set(struct wire_opts *o, const struct config *cfg,
		       const struct config_tenant *t)
{
	o->max_labels_per_series = (size_t)(t && t->max_labels_per_series ?
		t->max_labels_per_series : cfg->max_labels_per_series);
	o->max_label_name_length = (size_t)(t && t->max_label_name_length ?
		t->max_label_name_length : cfg->max_label_name_length);
	o->max_label_value_length = (size_t)(t && t->max_label_value_length ?
		t->max_label_value_length : cfg->max_label_value_length);
}

int ingest_body(const struct config *cfg, const struct ingest_req *r,
		struct buf *body, struct batch *b, struct wire_counts *counts,
		uint64_t *decoded, char *why, size_t whylen)
{
	struct scratch *sc = scratch_get();
	struct wire_counts lc[LANES];
	struct buf *raw;
	struct wire_opts opts;
	size_t n;
	int rc = 0, status = 0;

	memset(b, 0, sizeof(*b));
	memset(counts, 0, sizeof(*counts));
	if (sc == NULL) {
		snprintf(why, whylen, "out of memory");
		return 503;
	}
	raw = &sc->decoded;
	memcpy(b->tenant, r->tenant, r->tlen);
	b->tlen = r->tlen;
	if ((status = ingest_check_length(cfg, body->p, body->len, decoded, why,
					  whylen)) != 0)
		return status;
	raw->max = cfg->max_decoded_size;
	buf_reset(raw);
	if (buf_reserve(raw, *decoded ? *decoded : 1) < 0) {
		snprintf(why, whylen, "out of memory for %llu decoded bytes",
			 (unsigned long long)*decoded);
		return 503;
	}
	n = raw->cap;
	if (snappy_uncompress((const char *)body->p, body->len, (char *)raw->p,
			      &n) != SNAPPY_OK || n != *decoded) {
		snprintf(why, whylen, "corrupt snappy block");
		status = 400;
		goto out;
	}
	raw->len = n;

	memset(&opts, 0, sizeof(opts));
	opts.tenant_label = r->tenant_label;
	opts.tenant_value = r->tenant;
	limits_set(&opts, cfg, r->conf);
	opts.on_series = r->on_series;
	opts.admit = r->admit;
	opts.arg = r->arg;
	if (r->relabel != NULL) {
		opts.relabel = relabel_pass_series;
		opts.relabel_arg = (void *)r->relabel;
		opts.relabel_cache = r->relabel->cache;
		opts.relabel_scope = r->relabel->scope;
	}
	if (r->series_pass != NULL &&
	    (status = r->series_pass(r->pass_arg, raw->p, raw->len,
				     &opts.drop_label)) != 0) {
		if (whylen > 0)
			why[0] = '\0';
		count_valid_prefix(raw->p, raw->len, &opts, counts);
		goto out;
	}
	/* Every series into its lane (lanes.h): the sum of the lanes is
	 * bounded as one rewritten copy would be. */
	for (unsigned l = 0; l < LANES; l++) {
		sc->lanes[l].max = cfg->max_decoded_size + cfg->max_decoded_size / 2;
		buf_reset(&sc->lanes[l]);
	}
	memset(lc, 0, sizeof(lc));
	opts.lane_counts = lc;
	if (r->tenant_label == NULL && opts.drop_label == NULL &&
	    r->admit == NULL && opts.relabel == NULL) {
		/* Nothing to rewrite: only the lane of each field is asked
		 * for (no copy of the series is written), and each lane is
		 * taken from the request as it came. */
		sc->runs.n = 0;
		opts.lane_runs = &sc->runs;
		rc = wire_scan(raw->p, raw->len, &opts, counts, NULL, why, whylen);
		opts.lane_runs = NULL;
		if (rc == WIRE_OK && counts->sorted == 0) {
			rc = lanes_as_sent(cfg, sc, body, b, lc);
			goto chunks;
		}
		/* A series out of order is sorted in a rewrite; on_series
		 * has seen every series already. */
		memset(counts, 0, sizeof(*counts));
		memset(lc, 0, sizeof(lc));
		opts.on_series = NULL;
	}
	if (rc == WIRE_OK) {
		opts.lane_out = sc->lanes;
		rc = wire_scan(raw->p, raw->len, &opts, counts, NULL, why, whylen);
	}
	if (rc != WIRE_OK) {
		status = rc == WIRE_V2 ? 415 : rc == WIRE_TOO_LARGE ? 413 :
			 rc == WIRE_NOMEM ? 503 : 400;
		count_valid_prefix(raw->p, raw->len, &opts, counts);
		goto out;
	}
	rc = lanes_compress(cfg, sc, b, lc);
chunks:
	if (rc < 0) {
		batch_release(b);
		snprintf(why, whylen, "out of memory");
		status = 503;
	}
out:
	trim_scratch(raw);
	for (unsigned l = 0; l < LANES; l++)
		trim_scratch(&sc->lanes[l]);
	if (sc->runs.cap * sizeof(*sc->runs.run) > SCRATCH_KEEP) {
		free(sc->runs.run);
		memset(&sc->runs, 0, sizeof(sc->runs));
	}
	return status;
}
