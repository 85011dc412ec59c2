/*
 * usage_export.c - the usage records as series through the relay's own
 * buffer (see usage_export.h).
 *
 * One thread. It owns the per-tenant totals (struct usage_totals: base,
 * the carried record and the hours that can no longer change, read once;
 * sum: base plus the recent hours, read each time), builds the batch,
 * hands it to the writer and waits for its commit.
 */
#include "usage_export.h"

#include <pthread.h>
#include <snappy-c.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "batch.h"
#include "clock.h"
#include "err.h"
#include "ingest.h"
#include "log.h"
#include "metrics.h"
#include "reload.h"
#include "store.h"
#include "writer.h"

#define INSTANCE_MAX 256

struct tenant_total {
	char id[TENANT_ID_MAX + 1];
	size_t idlen;
	struct usage_rec base;   /* its carried record, hours before base_to */
	struct usage_rec sum;    /* after a walk: base + the later hours */
	uint64_t carried_to;     /* its carried record's, as counted in base */
	uint64_t walk_carried_to; /* scratch of a walk */
	int fresh;               /* made by the walk going on */
};

struct usage_totals {
	struct store *st;        /* ref */
	struct tenant_total *t;  /* owned, in key order */
	size_t n, cap;
	uint64_t base_to;        /* hours before it are in base */
	uint64_t closed;         /* a walk's: hours before it go into base */
};

struct usage_export {
	struct writer *w;        /* ref */
	uint64_t interval_ms;
	uint64_t max_request_size;
	char instance[INSTANCE_MAX + 1];
	char tenant[TENANT_ID_MAX + 1];  /* queue of the batch; "" none */
	size_t tlen;
	struct usage_totals *totals;  /* owned */
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int stop;                /* under lock */
	int committed;           /* under lock: the batch's done() ran */
	int paused;              /* the export thread's: the url in force is
				  * per tenant and there is no export_tenant */
};

/* ---- encoding ---- */

static size_t label_len(size_t nlen, size_t vlen)
{
	return 1 + varint_size(nlen) + nlen + 1 + varint_size(vlen) + vlen;
}

static int put_label(struct buf *out, const char *name, const char *value,
		     size_t vlen)
{
	size_t nlen = strlen(name);
	uint8_t tag = 0x0a;

	if (buf_append(out, &tag, 1) < 0 ||
	    buf_put_varint(out, label_len(nlen, vlen)) < 0 ||
	    buf_append(out, &tag, 1) < 0 || buf_put_varint(out, nlen) < 0 ||
	    buf_append(out, name, nlen) < 0)
		return -1;
	tag = 0x12;
	if (buf_append(out, &tag, 1) < 0 || buf_put_varint(out, vlen) < 0 ||
	    buf_append(out, value, vlen) < 0)
		return -1;
	return 0;
}

int usage_export_series(struct buf *out, const char *name, const char *reason,
			const char *relay, const char *tenant, size_t tlen,
			double value, int64_t ts_ms)
{
	size_t nlen = strlen(name), rlen = strlen(relay), body, sample;
	uint8_t tag;
	uint64_t bits;

	/* Labels in order: __name__, reason, relay, tenant. */
	body = 1 + varint_size(label_len(8, nlen)) + label_len(8, nlen);
	if (reason != NULL)
		body += 1 + varint_size(label_len(6, strlen(reason))) +
			label_len(6, strlen(reason));
	body += 1 + varint_size(label_len(5, rlen)) + label_len(5, rlen);
	body += 1 + varint_size(label_len(6, tlen)) + label_len(6, tlen);
	sample = 1 + 8 + 1 + varint_size((uint64_t)ts_ms);
	body += 1 + varint_size(sample) + sample;
	tag = 0x0a;
	if (buf_append(out, &tag, 1) < 0 || buf_put_varint(out, body) < 0 ||
	    put_label(out, "__name__", name, nlen) < 0 ||
	    (reason != NULL &&
	     put_label(out, "reason", reason, strlen(reason)) < 0) ||
	    put_label(out, "relay", relay, rlen) < 0 ||
	    put_label(out, "tenant", tenant, tlen) < 0)
		return -1;
	tag = 0x12;
	if (buf_append(out, &tag, 1) < 0 || buf_put_varint(out, sample) < 0)
		return -1;
	tag = 0x09;
	memcpy(&bits, &value, sizeof(bits));
	if (buf_append(out, &tag, 1) < 0 || buf_append(out, &bits, 8) < 0)
		return -1;
	tag = 0x10;
	if (buf_append(out, &tag, 1) < 0 ||
	    buf_put_varint(out, (uint64_t)ts_ms) < 0)
		return -1;
	return 0;
}

int usage_export_tenant(struct buf *out, const char *relay, const char *tenant,
			size_t tlen, const struct usage_rec *sum, int64_t ts_ms,
			uint64_t *nseries)
{
	static const struct {
		const char *name;
		size_t offset;
	} cols[] = {
		{"relay_usage_requests_total", offsetof(struct usage_rec, requests)},
		{"relay_usage_series_total", offsetof(struct usage_rec, series)},
		{"relay_usage_samples_total", offsetof(struct usage_rec, samples)},
		{"relay_usage_histogram_samples_total",
		 offsetof(struct usage_rec, histograms)},
		{"relay_usage_exemplars_total", offsetof(struct usage_rec, exemplars)},
		{"relay_usage_metadata_total", offsetof(struct usage_rec, metadata)},
		{"relay_usage_bytes_compressed_total",
		 offsetof(struct usage_rec, bytes_compressed)},
		{"relay_usage_bytes_decoded_total",
		 offsetof(struct usage_rec, bytes_decoded)},
		{"relay_usage_samples_delivered_total",
		 offsetof(struct usage_rec, samples_delivered)},
		{"relay_usage_samples_deduplicated_total",
		 offsetof(struct usage_rec, samples_deduplicated)},
	};
	static const char *const drops[USAGE_DROPPED_SLOTS] = {
		"full", "age", NULL, "purged"};
	uint64_t v;

	for (size_t i = 0; i < sizeof(cols) / sizeof(cols[0]); i++) {
		memcpy(&v, (const char *)sum + cols[i].offset, sizeof(v));
		if (usage_export_series(out, cols[i].name, NULL, relay, tenant,
					tlen, (double)v, ts_ms) < 0)
			return -1;
		(*nseries)++;
	}
	for (int r = 0; r < REFUSE_NREASONS; r++) {
		const char *why = refuse_reason_name((enum refuse_reason)r);
		if (sum->requests_refused[r] > 0) {
			if (usage_export_series(out, "relay_usage_requests_refused_total",
						why, relay, tenant, tlen,
						(double)sum->requests_refused[r],
						ts_ms) < 0)
				return -1;
			(*nseries)++;
		}
		if (sum->samples_refused[r] > 0) {
			if (usage_export_series(out, "relay_usage_samples_refused_total",
						why, relay, tenant, tlen,
						(double)sum->samples_refused[r],
						ts_ms) < 0)
				return -1;
			(*nseries)++;
		}
	}
	for (int d = 0; d < USAGE_DROPPED_SLOTS; d++) {
		if (drops[d] == NULL || sum->samples_dropped[d] == 0)
			continue;
		if (usage_export_series(out, "relay_usage_samples_dropped_total",
					drops[d], relay, tenant, tlen,
					(double)sum->samples_dropped[d], ts_ms) < 0)
			return -1;
		(*nseries)++;
	}
	/* samples_dropped_by_rule: dropped too, by the tenant's own rules. */
	if (sum->samples_dropped_by_rule > 0) {
		if (usage_export_series(out, "relay_usage_samples_dropped_total",
					"rule", relay, tenant, tlen,
					(double)sum->samples_dropped_by_rule,
					ts_ms) < 0)
			return -1;
		(*nseries)++;
	}
	return 0;
}

/* ---- the sums ---- */

/* The tenant's slot (made, in key order, when missing); NULL when memory
 * is short. */
static struct tenant_total *total_get(struct usage_totals *tt, const char *id,
				      size_t idlen)
{
	size_t lo = 0, hi = tt->n;
	struct tenant_total *t;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		size_t m = tt->t[mid].idlen < idlen ? tt->t[mid].idlen : idlen;
		int c = memcmp(tt->t[mid].id, id, m);
		if (c == 0)
			c = tt->t[mid].idlen < idlen ? -1 :
			    tt->t[mid].idlen > idlen ? 1 : 0;
		if (c == 0)
			return &tt->t[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (tt->n == tt->cap) {
		size_t cap = tt->cap ? tt->cap * 2 : 16;
		if ((t = realloc(tt->t, cap * sizeof(*t))) == NULL)
			return NULL;
		tt->t = t;
		tt->cap = cap;
	}
	memmove(&tt->t[lo + 1], &tt->t[lo], (tt->n - lo) * sizeof(*t));
	tt->n++;
	t = &tt->t[lo];
	memset(t, 0, sizeof(*t));
	memcpy(t->id, id, idlen);
	t->idlen = idlen;
	t->fresh = 1;
	return t;
}

/* store_usage_range_carried: adds a record to its tenant's base (a
 * closed hour) or sum (a later one). A carried record counts only for a
 * tenant first met in this walk: for the others, what it holds was in
 * base when the cleanup took it (walk() checks that). */
static int add_record(void *arg, const char *tenant, size_t tlen,
		      uint64_t hour, const void *val, size_t len)
{
	struct usage_totals *tt = arg;
	struct tenant_total *t;
	struct usage_rec rec;

	if (tlen == 0 || tlen > TENANT_ID_MAX)
		return 0;
	if (usage_rec_read(val, len, &rec) != 0)
		return 0;        /* a damaged record: not counted */
	if ((t = total_get(tt, tenant, tlen)) == NULL)
		return ERR_NOMEM;
	if (hour == STORE_USAGE_CARRIED) {
		t->walk_carried_to = rec.carried_to;
		if (t->fresh)
			usage_add(&t->base, &rec);
	} else if (hour < tt->closed) {
		usage_add(&t->base, &rec);
	} else {
		usage_add(&t->sum, &rec);
	}
	return 0;
}

/* Forgets every sum: the next walk reads every record. */
static void totals_reset(struct usage_totals *tt)
{
	tt->n = 0;
	tt->base_to = 0;
}

/*
 * One walk, in one read transaction, over the hours from base_to on and
 * the carried records: hours before closed go into base for good, the
 * others into sum, which then gets base added. Returns 0; 1 when a known
 * tenant's carried record took hours from base_to on (deleted, so in
 * neither base nor this walk: the sums must be read anew, totals_reset);
 * or an ERR_* code (base may hold part of the walk: totals_reset).
 */
static int walk(struct usage_totals *tt, uint64_t closed)
{
	int rc, stale = 0;

	for (size_t i = 0; i < tt->n; i++) {
		memset(&tt->t[i].sum, 0, sizeof(tt->t[i].sum));
		tt->t[i].walk_carried_to = tt->t[i].carried_to;
	}
	tt->closed = closed > tt->base_to ? closed : tt->base_to;
	rc = store_usage_range_carried(tt->st, tt->base_to, UINT64_MAX,
				       add_record, tt);
	if (rc != 0)
		return rc;
	for (size_t i = 0; i < tt->n; i++) {
		struct tenant_total *t = &tt->t[i];
		if (!t->fresh && t->walk_carried_to > t->carried_to &&
		    t->walk_carried_to > tt->base_to)
			stale = 1;
		t->carried_to = t->walk_carried_to;
		t->fresh = 0;
		usage_add(&t->sum, &t->base);
	}
	tt->base_to = tt->closed;
	return stale;
}

struct usage_totals *usage_totals_new(struct store *st)
{
	struct usage_totals *tt = calloc(1, sizeof(*tt));

	if (tt != NULL)
		tt->st = st;
	return tt;
}

int usage_totals_refresh(struct usage_totals *tt, uint64_t now_ms)
{
	uint64_t hour = usage_hour(now_ms);
	uint64_t closed = hour >= 3600 ? hour - 3600 : 0;
	int rc = walk(tt, closed);

	if (rc == 1) {
		totals_reset(tt);
		rc = walk(tt, closed);   /* every tenant fresh: not 1 */
	}
	if (rc != 0)
		totals_reset(tt);
	return rc < 0 ? rc : 0;
}

size_t usage_totals_count(const struct usage_totals *tt)
{
	return tt->n;
}

const struct usage_rec *usage_totals_at(const struct usage_totals *tt,
					size_t i, const char **id,
					size_t *idlen)
{
	*id = tt->t[i].id;
	*idlen = tt->t[i].idlen;
	return &tt->t[i].sum;
}

void usage_totals_free(struct usage_totals *tt)
{
	if (tt == NULL)
		return;
	free(tt->t);
	free(tt);
}

/* ---- the batch ---- */

/*
 * Adds raw (one request) to b as an accepted request's body is added: each
 * series in its delivery lane (lanes.h), through ingest_body, with no
 * tenant label set (each series names the tenant it bills). Returns 0 or
 * -1 (memory).
 */
static int add_chunk(struct batch *b, const struct buf *raw)
{
	size_t cap = snappy_max_compressed_length(raw->len), n = cap;
	const struct config *cfg;
	struct ingest_req r;
	struct wire_counts c;
	struct batch tb;
	struct chunk *ch;
	struct buf body;
	uint64_t decoded;
	char why[256];
	int status;

	buf_init(&body, cap);
	if (buf_reserve(&body, cap) < 0 ||
	    snappy_compress((const char *)raw->p, raw->len, (char *)body.p,
			    &n) != SNAPPY_OK) {
		buf_free(&body);
		return -1;
	}
	body.len = n;
	memset(&r, 0, sizeof(r));
	r.tenant = "";
	cfg = config_hold();
	status = ingest_body(cfg, &r, &body, &tb, &c, &decoded, why,
			     sizeof(why));
	config_release(cfg);
	buf_free(&body);
	if (status != 0) {
		log_msg(LOG_ERROR, "usage export: the series do not scan",
			"status=%d reason=\"%s\"", status, why);
		return -1;
	}
	ch = realloc(b->chunks, (b->nchunks + tb.nchunks + 1) * sizeof(*ch));
	if (ch == NULL) {
		batch_release(&tb);
		return -1;
	}
	b->chunks = ch;
	memcpy(b->chunks + b->nchunks, tb.chunks, tb.nchunks * sizeof(*ch));
	b->nchunks += tb.nchunks;
	b->value_bytes += tb.value_bytes;
	free(tb.chunks);        /* the blocks are b's now */
	return 0;
}

/* Builds the batch of every tenant's totals. Returns 0, 1 when there is
 * nothing to export, or -1 (memory). */
static int build(struct usage_export *ux, struct batch *b, int64_t ts_ms)
{
	size_t n = usage_totals_count(ux->totals), idlen;
	uint64_t series = 0;
	struct buf raw;
	const char *id;
	int rc = 0;

	buf_init(&raw, ux->max_request_size + (1u << 20));
	for (size_t i = 0; i < n && rc == 0; i++) {
		const struct usage_rec *sum = usage_totals_at(ux->totals, i,
							      &id, &idlen);
		if (usage_export_tenant(&raw, ux->instance, id, idlen, sum,
					ts_ms, &series) < 0)
			rc = -1;
		if (rc == 0 && (raw.len >= ux->max_request_size / 2 ||
				i + 1 == n)) {
			if (add_chunk(b, &raw) < 0)
				rc = -1;
			buf_reset(&raw);
		}
	}
	buf_free(&raw);
	if (rc < 0) {
		batch_release(b);
		return -1;
	}
	return b->nchunks == 0 ? 1 : 0;
}

/* Writer thread: the batch is final. */
static void batch_done(struct batch *b, void *arg)
{
	struct usage_export *ux = arg;

	(void)b;
	pthread_mutex_lock(&ux->lock);
	ux->committed = 1;
	pthread_cond_broadcast(&ux->cond);
	pthread_mutex_unlock(&ux->lock);
}

/* Whether url sends each tenant somewhere of its own. */
static int url_per_tenant(const char *url)
{
	return strstr(url, "{tenant}") != NULL ||
	       strstr(url, "{account_id}") != NULL ||
	       strstr(url, "{project_id}") != NULL;
}

#define PAUSED_REASON "reason=\"[upstream] url is per tenant: set [usage] " \
	"export_tenant (at a restart) or a plain url\""

/* Whether url leaves the usage series without a destination: per
 * tenant, and no export_tenant. */
static int no_destination(const struct usage_export *ux, const char *url)
{
	return ux->tlen == 0 && url_per_tenant(url);
}

/*
 * no_destination for the url in force (a reload may change it); logs
 * when that starts and ends.
 */
static int export_paused(struct usage_export *ux, const char *url)
{
	int paused = no_destination(ux, url);

	if (paused && !ux->paused)
		log_msg(LOG_WARN, "usage export paused", PAUSED_REASON);
	else if (!paused && ux->paused)
		log_msg(LOG_INFO, "usage export resumed", "reason=\"[upstream] "
			"url is no longer per tenant\"");
	ux->paused = paused;
	return paused;
}

/* One export: sums, batch, commit. */
static void export_once(struct usage_export *ux)
{
	uint64_t now = clock_wall_ms();
	const struct config *cfg;
	const struct config_tenant *ct;
	struct batch b;
	int rc;

	cfg = config_hold();
	rc = export_paused(ux, cfg->url);
	config_release(cfg);
	if (rc)
		return;
	if ((rc = usage_totals_refresh(ux->totals, now)) != 0) {
		metric_add(&metrics.usage_export_failures, 1);
		log_msg(LOG_WARN, "usage export skipped", "reason=\"%s\"",
			err_str(rc));
		return;
	}
	memset(&b, 0, sizeof(b));
	if ((rc = build(ux, &b, (int64_t)now)) != 0) {
		if (rc < 0) {
			metric_add(&metrics.usage_export_failures, 1);
			log_msg(LOG_WARN, "usage export skipped",
				"reason=\"out of memory\"");
		}
		return;
	}
	memcpy(b.tenant, ux->tenant, ux->tlen);
	b.tlen = ux->tlen;
	b.unbilled = 1;
	cfg = config_hold();
	ct = ux->tlen > 0 ? config_tenant_find(cfg, ux->tenant, ux->tlen) : NULL;
	snprintf(b.dest.account_id, sizeof(b.dest.account_id), "%s",
		 ct && ct->account_id ? ct->account_id : "");
	snprintf(b.dest.project_id, sizeof(b.dest.project_id), "%s",
		 ct && ct->project_id ? ct->project_id : "");
	config_release(cfg);
	b.done = batch_done;
	b.arg = ux;
	pthread_mutex_lock(&ux->lock);
	ux->committed = 0;
	pthread_mutex_unlock(&ux->lock);
	writer_submit(ux->w, &b);
	pthread_mutex_lock(&ux->lock);
	while (!ux->committed)
		pthread_cond_wait(&ux->cond, &ux->lock);
	pthread_mutex_unlock(&ux->lock);
	if (b.status != BATCH_STORED) {
		metric_add(&metrics.usage_export_failures, 1);
		log_msg(LOG_WARN, "usage export not stored", "reason=%s "
			"(the next export carries the same totals)",
			refuse_reason_name(b.reason));
	} else {
		metric_add(&metrics.usage_exports, 1);
		log_msg(LOG_DEBUG, "usage exported", "tenants=%zu chunks=%zu",
			usage_totals_count(ux->totals), b.nchunks);
	}
	batch_release(&b);
}

static void *export_thread(void *arg)
{
	struct usage_export *ux = arg;
	struct timespec until;

	for (;;) {
		pthread_mutex_lock(&ux->lock);
		until = clock_deadline(ux->interval_ms * 1000);
		while (!ux->stop &&
		       pthread_cond_timedwait(&ux->cond, &ux->lock, &until) == 0)
			;
		if (ux->stop) {
			pthread_mutex_unlock(&ux->lock);
			break;
		}
		pthread_mutex_unlock(&ux->lock);
		export_once(ux);
	}
	return NULL;
}

struct usage_export *usage_export_start(const struct config *cfg,
					struct store *st, struct writer *w)
{
	struct usage_export *ux;
	int paused;

	if (!cfg->usage_export)
		return NULL;
	if ((ux = calloc(1, sizeof(*ux))) == NULL)
		return NULL;
	if ((ux->totals = usage_totals_new(st)) == NULL) {
		free(ux);
		return NULL;
	}
	ux->w = w;
	ux->interval_ms = cfg->usage_export_interval_ms;
	ux->max_request_size = cfg->max_request_size;
	if (cfg->usage_instance != NULL)
		snprintf(ux->instance, sizeof(ux->instance), "%s",
			 cfg->usage_instance);
	else if (gethostname(ux->instance, sizeof(ux->instance) - 1) != 0 ||
		 ux->instance[0] == '\0')
		snprintf(ux->instance, sizeof(ux->instance), "relay");
	if (cfg->usage_export_tenant != NULL) {
		ux->tlen = strlen(cfg->usage_export_tenant);
		memcpy(ux->tenant, cfg->usage_export_tenant, ux->tlen);
	}
	/* Judged at start too; said after the line below. */
	paused = ux->paused = no_destination(ux, cfg->url);
	pthread_mutex_init(&ux->lock, NULL);
	if (clock_cond_init(&ux->cond) != 0 ||
	    pthread_create(&ux->thread, NULL, export_thread, ux) != 0) {
		log_msg(LOG_ERROR, "usage export off", "reason=\"cannot start "
			"its thread\"");
		pthread_mutex_destroy(&ux->lock);
		usage_totals_free(ux->totals);
		free(ux);
		return NULL;
	}
	log_msg(LOG_INFO, "usage export on", "interval_ms=%llu relay=\"%s\" "
		"export_tenant=\"%s\"", (unsigned long long)ux->interval_ms,
		ux->instance, ux->tenant);
	if (paused)
		log_msg(LOG_WARN, "usage export paused", PAUSED_REASON);
	return ux;
}

void usage_export_stop(struct usage_export *ux)
{
	if (ux == NULL)
		return;
	pthread_mutex_lock(&ux->lock);
	ux->stop = 1;
	pthread_cond_broadcast(&ux->cond);
	pthread_mutex_unlock(&ux->lock);
	pthread_join(ux->thread, NULL);
	pthread_cond_destroy(&ux->cond);
	pthread_mutex_destroy(&ux->lock);
	usage_totals_free(ux->totals);
	free(ux);
}
