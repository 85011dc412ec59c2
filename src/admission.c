/*
 * admission.c - the stages that decide whether a write request is taken
 * (see admission.h), the table of refusals, and their one count.
 */
#include "admission.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "clock.h"
#include "ingest.h"
#include "log.h"
#include "wire.h"
#include "queue.h"
#include "inflight.h"
#include "tenant_stats.h"
#include "writer.h"

#define RETRY_AFTER_S 5
#define LOG_EVERY_MS 10000

/*
 * Each reason's answer. status 0: a tenant's limit, answered with its
 * [tenant] limit_status (429 unless it says 503). text: the answer when
 * the stage has nothing more precise to say. Every 429 and 503 carries
 * Retry-After: RETRY_AFTER_S, as senders back off on it.
 */
static const struct refusal {
	unsigned status;
	const char *text;
} refusals[REFUSE_NREASONS] = {
	[REFUSE_BAD_REQUEST]   = {400, "bad request"},
	[REFUSE_UNAUTHORIZED]  = {401, "unauthorized"},
	[REFUSE_METHOD]        = {405, "method not allowed; use POST"},
	[REFUSE_TOO_LARGE]     = {413, "request too large"},
	[REFUSE_UNSUPPORTED]   = {415, "unsupported media type; want "
				       "application/x-protobuf"},
	[REFUSE_RATE_LIMITED]  = {0, "tenant over its rate; retry later"},
	[REFUSE_TENANT_FULL]   = {0, "tenant's share of the buffer is full; "
				     "retry later"},
	[REFUSE_BUFFER_FULL]   = {503, "buffer full; retry later"},
	[REFUSE_OVERLOADED]    = {503, "too many bytes in flight; "
				       "retry later"},
	[REFUSE_STORAGE]       = {503, "storage error; retry later"},
	[REFUSE_SHUTTING_DOWN] = {503, "shutting down"},
	[REFUSE_TOO_MANY_TENANTS] = {429, "too many tenants"},
	[REFUSE_SERIES_LIMIT]  = {400, "series limit reached"},
	[REFUSE_RELABEL_INVALID] = {400, "relabel rules left series invalid"},
};

/* HA-pair deduplication: notes the series' cluster and replica. */
static int ha_check(struct admission_req *r, const uint8_t *series, size_t len)
{
	ha_req_series(&r->ha, &r->ha_set, series, len);
	return 0;
}

static int ha_on(const struct admission_req *r)
{
	return r->ha_set.cluster_label != NULL;
}

/*
 * Per-series policies, run in this order over each series of a decoded
 * request as sent (see admission.h). on says whether the policy is on for
 * the request; check returns 0 to keep going, or refuses with
 * admission_refuse() and returns 1. Relabel rules and series limits go
 * here too.
 */
static const struct series_policy {
	const char *name;
	int (*on)(const struct admission_req *r);
	int (*check)(struct admission_req *r, const uint8_t *series, size_t len);
} series_policies[] = {
	{"ha", ha_on, ha_check},
	{NULL, NULL, NULL},
};

unsigned admission_status(enum refuse_reason reason,
			  const struct config_tenant *tc)
{
	if ((unsigned)reason >= REFUSE_NREASONS)
		return 500;
	if (refusals[reason].status != 0)
		return refusals[reason].status;
	return tc && tc->limit_status == 503 ? 503 : 429;
}

const char *admission_text(enum refuse_reason reason)
{
	return (unsigned)reason < REFUSE_NREASONS ? refusals[reason].text :
	       "refused";
}

int admission_refuse(struct admission_req *r, enum refuse_reason reason,
		     const char *fmt, ...)
{
	struct admission_verdict *v = &r->v;
	va_list ap;

	v->refused = 1;
	v->reason = reason;
	v->status = admission_status(reason, r->ident.conf);
	v->retry_after_s = v->status == 503 || v->status == 429 ?
			   RETRY_AFTER_S : 0;
	if (fmt == NULL) {
		snprintf(v->text, sizeof(v->text), "%s", admission_text(reason));
		return 1;
	}
	va_start(ap, fmt);
	vsnprintf(v->text, sizeof(v->text), fmt, ap);
	va_end(ap);
	return 1;
}

void admission_init(struct admission *a, struct queue *q, struct writer *w)
{
	memset(a, 0, sizeof(*a));
	a->q = q;
	a->w = w;
	ratelimit_init(&a->rl);
}

void admission_destroy(struct admission *a)
{
	ratelimit_destroy(&a->rl);
}

void admission_stop(struct admission *a)
{
	atomic_store(&a->stopping, 1);
}

int admission_stopping(struct admission *a)
{
	return atomic_load(&a->stopping);
}

/* Content-Type of a write: Remote Write 1.0 protobuf, proto= absent or
 * prometheus.WriteRequest. Returns 0 or refuses. */
static int check_content_type(struct admission_req *r, const char *ct)
{
	const char *p, *semi;
	size_t n;

	if (ct == NULL)
		return admission_refuse(r, REFUSE_UNSUPPORTED, "missing Content-Type; "
					"want application/x-protobuf");
	while (*ct == ' ')
		ct++;
	semi = strchr(ct, ';');
	n = semi ? (size_t)(semi - ct) : strlen(ct);
	while (n > 0 && ct[n - 1] == ' ')
		n--;
	if (n != 22 || strncasecmp(ct, "application/x-protobuf", 22) != 0)
		return admission_refuse(r, REFUSE_UNSUPPORTED, "unsupported "
					"Content-Type %.64s; want "
					"application/x-protobuf", ct);
	for (p = semi; p != NULL; p = strchr(p + 1, ';')) {
		const char *v = p + 1;
		while (*v == ' ')
			v++;
		if (strncasecmp(v, "proto=", 6) != 0)
			continue;
		v += 6;
		n = strcspn(v, "; ");
		if ((n == 22 || n == 23) &&
		    strncmp(v, "prometheus.WriteRequest", n) == 0)
			continue;
		return admission_refuse(r, REFUSE_UNSUPPORTED, "unsupported proto=%.*s; "
					"this endpoint takes Remote Write 1.0 "
					"(prometheus.WriteRequest)",
					(int)(n > 64 ? 64 : n), v);
	}
	return 0;
}

int admission_headers(struct admission *a, struct admission_req *r,
		      const struct admission_headers *h)
{
	const struct config *cfg = r->cfg;
	const char *enc = h->content_encoding;
	char why[256];
	int status;

	(void)a;
	if (h->method == NULL || strcmp(h->method, "POST") != 0)
		return admission_refuse(r, REFUSE_METHOD, NULL);
	if (check_content_type(r, h->content_type) != 0)
		return 1;
	if (enc != NULL && strcasecmp(enc, "snappy") != 0)
		return admission_refuse(r, REFUSE_UNSUPPORTED, "unsupported "
					"Content-Encoding %.32s; want snappy", enc);
	if (h->content_length != NULL &&
	    strtoull(h->content_length, NULL, 10) > cfg->max_body_size)
		return admission_refuse(r, REFUSE_TOO_LARGE, "body over the limit "
					"of %llu bytes",
					(unsigned long long)cfg->max_body_size);
	status = tenant_resolve(cfg, h->authorization, h->tenant, &r->ident, why,
				sizeof(why));
	if (status != 0) {
		r->ident.idlen = 0;
		r->ident.conf = NULL;
		return admission_refuse(r, status == 429 ? REFUSE_TOO_MANY_TENANTS :
					status == 503 ? REFUSE_OVERLOADED :
					REFUSE_UNAUTHORIZED, "%s", why);
	}
	return 0;
}

int admission_body(struct admission *a, struct admission_req *r,
		   const uint8_t *body, size_t len, int too_large)
{
	const struct config *cfg = r->cfg;
	char why[256];
	int status;

	if (too_large)
		return admission_refuse(r, REFUSE_TOO_LARGE, "body over the limit "
					"of %llu bytes",
					(unsigned long long)cfg->max_body_size);
	if (admission_stopping(a))
		return admission_refuse(r, REFUSE_SHUTTING_DOWN, NULL);
	r->body_len = len;
	status = ingest_check_length(cfg, body, len, &r->decoded, why, sizeof(why));
	if (status != 0)
		return admission_refuse(r, status == 413 ? REFUSE_TOO_LARGE :
					REFUSE_BAD_REQUEST, "%s", why);
	if (inflight_decoded_charge(&r->inflight, r->decoded, r->body_held,
				    cfg->max_inflight_bytes) < 0)
		return admission_refuse(r, REFUSE_OVERLOADED, NULL);
	return 0;
}

void admission_release(struct admission_req *r)
{
	inflight_decoded_release(&r->inflight);
}

int admission_body_bytes(struct admission_req *r, uint64_t want)
{
	if (inflight_body_charge(&r->body_held, want,
				 r->cfg->max_inflight_bytes) < 0)
		return admission_refuse(r, REFUSE_OVERLOADED, NULL);
	return 0;
}

void admission_body_release(struct admission_req *r)
{
	inflight_body_release(&r->body_held);
}

int admission_has_series_policies(struct admission_req *r)
{
	int any = 0;

	ha_settings(r->cfg, r->ident.conf, &r->ha_set);
	memset(&r->ha, 0, sizeof(r->ha));
	for (const struct series_policy *sp = series_policies; sp->check != NULL;
	     sp++)
		any |= sp->on(r);
	return any;
}

int admission_series_pass(struct admission_req *r, const uint8_t *raw,
			  size_t len, const char **drop_label)
{
	const uint8_t *p = raw, *end = raw + len, *next;
	uint64_t key, n;

	/* Top-level fields; each TimeSeries (field 1, length-delimited) goes
	 * through the policies on for the request. The decoder checks the
	 * rest afterwards (a malformed request ends the pass). */
	for (size_t off = 0; off < len; off = (size_t)(next - raw)) {
		size_t at = wire_next_field(raw, len, off);
		if (at == 0)
			break;
		next = raw + at;
		p = raw + off;
		if (wire_varint(&p, end, &key) < 0 || key != 0x0a ||
		    wire_varint(&p, end, &n) < 0)
			continue;
		for (const struct series_policy *sp = series_policies;
		     sp->check != NULL; sp++) {
			if (sp->on(r) && sp->check(r, p, (size_t)n) != 0)
				return 1;
		}
	}
	if (ha_on(r) && r->ha.kind == HA_PAIR)
		*drop_label = r->ha_set.replica_label;
	return 0;
}

int admission_decoded(struct admission_req *r, int status, const char *why)
{
	enum refuse_reason reason;

	if (status == 0)
		return 0;
	reason = status == 413 ? REFUSE_TOO_LARGE :
		 status == 415 ? REFUSE_UNSUPPORTED :
		 status == 503 ? REFUSE_OVERLOADED : REFUSE_BAD_REQUEST;
	return admission_refuse(r, reason, "%s", why);
}

int admission_tenant(struct admission *a, struct admission_req *r,
		     uint64_t value_bytes)
{
	const struct config *cfg = r->cfg;
	const struct config_tenant *tc = r->ident.conf;
	int rc;

	if (value_bytes > cfg->max_size)
		return admission_refuse(r, REFUSE_TOO_LARGE, "request of %llu bytes "
					"larger than the whole buffer ([storage] "
					"max_size %llu bytes)",
					(unsigned long long)value_bytes,
					(unsigned long long)cfg->max_size);
	if (cfg->when_full == WHEN_FULL_REJECT &&
	    atomic_load(&metrics.storage_used_bytes) + value_bytes > cfg->max_size)
		return admission_refuse(r, REFUSE_BUFFER_FULL, NULL);
	if (tc && tc->max_buffer_bytes &&
	    queue_tenant_bytes(a->q, r->ident.id, r->ident.idlen) + value_bytes >
	    tc->max_buffer_bytes)
		return admission_refuse(r, REFUSE_TENANT_FULL, NULL);
	if (tc && tc->max_samples_per_second > 0) {
		rc = ratelimit_take(&a->rl, r->ident.id, r->ident.idlen,
				    tc->max_samples_per_second,
				    r->counts.samples + r->counts.histograms,
				    clock_mono_ms());
		if (rc == 1)
			return admission_refuse(r, REFUSE_RATE_LIMITED, "tenant over "
						"its rate of %g samples/s; retry "
						"later", tc->max_samples_per_second);
		if (rc == 0)
			r->rate_taken = r->counts.samples + r->counts.histograms;
	}
	return 0;
}

int admission_commit(struct admission_req *r, enum refuse_reason reason)
{
	return admission_refuse(r, reason, NULL);
}

void admission_rate_give_back(struct admission *a, struct admission_req *r)
{
	const struct config_tenant *tc = r->ident.conf;

	if (r->rate_taken == 0 || tc == NULL)
		return;
	ratelimit_give_back(&a->rl, r->ident.id, r->ident.idlen,
			    tc->max_samples_per_second, r->rate_taken);
	r->rate_taken = 0;
}

/*
 * The refusal log: one line per (tenant, reason) every LOG_EVERY_MS at
 * most, with how many there were since the previous line. A refusal
 * without a tenant is keyed by what the request claimed (tenant.h), so a
 * sender whose token was rotated shows up on its own. Slots are found by
 * hashing; a slot idle for the period may be taken over (its pending count
 * is logged then). When LOG_PROBE slots in a row are busy, the refusal is
 * counted in its reason's overflow slot (tenant="*"), so the log stays
 * bounded whatever the senders.
 */
#define LOG_SLOTS 1024
#define LOG_PROBE 8

struct log_slot {
	char who[TENANT_ID_MAX + 1];  /* tenant id, or "?" and the claim */
	size_t wlen;
	int used;
	enum refuse_reason reason;
	unsigned status;
	uint64_t last_ms;          /* last line; 0: none yet */
	uint64_t unlogged;         /* refusals since then */
};

static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static struct log_slot log_slots[LOG_SLOTS];
static struct log_slot log_overflow[REFUSE_NREASONS];

static uint64_t slot_hash(const char *t, size_t n, enum refuse_reason reason)
{
	uint64_t h = 1469598103934665603ull ^ (uint64_t)reason;

	for (size_t i = 0; i < n; i++)
		h = (h ^ (uint8_t)t[i]) * 1099511628211ull;
	return h;
}

/* The slot of (who, reason); log_lock held. When an idle slot is taken
 * over with refusals not logged yet, *evicted gets a copy of it. */
static struct log_slot *log_slot(const char *who, size_t n,
				 enum refuse_reason reason, uint64_t now,
				 struct log_slot *evicted)
{
	uint64_t h = slot_hash(who, n, reason);
	struct log_slot *s;

	for (unsigned i = 0; i < LOG_PROBE; i++) {
		s = &log_slots[(h + i) % LOG_SLOTS];
		if (s->used && s->reason == reason && s->wlen == n &&
		    memcmp(s->who, who, n) == 0)
			return s;
	}
	for (unsigned i = 0; i < LOG_PROBE; i++) {
		s = &log_slots[(h + i) % LOG_SLOTS];
		if (s->used && now - s->last_ms < LOG_EVERY_MS)
			continue;
		if (s->used && s->unlogged > 0)
			*evicted = *s;
		memset(s, 0, sizeof(*s));
		memcpy(s->who, who, n);
		s->wlen = n;
		s->reason = reason;
		s->used = 1;
		return s;
	}
	s = &log_overflow[reason];
	s->who[0] = '*';
	s->wlen = 1;
	s->reason = reason;
	return s;
}

static void log_line(const struct log_slot *s, uint64_t count, const char *text)
{
	char quoted[160];
	int claim = s->wlen > 0 && s->who[0] == '?';

	log_quote(text, strlen(text), quoted, sizeof(quoted));
	log_msg(s->status >= 500 ? LOG_WARN : LOG_INFO, "writes refused",
		"status=%u reason=%s %s=\"%.*s\" count=%llu text=%s", s->status,
		refuse_reason_name(s->reason), claim ? "claim" : "tenant",
		(int)(claim ? s->wlen - 1 : s->wlen), claim ? s->who + 1 : s->who,
		(unsigned long long)count, quoted);
}

static void log_refusal(const struct admission_req *r)
{
	const struct admission_verdict *v = &r->v;
	struct log_slot evicted = {0}, line;
	uint64_t now = clock_mono_ms(), n = 0;
	char who[TENANT_ID_MAX + 2];
	size_t wlen;

	if (r->ident.idlen > 0) {
		wlen = r->ident.idlen;
		memcpy(who, r->ident.id, wlen);
	} else {
		wlen = (size_t)snprintf(who, sizeof(who), "?%s", r->ident.claim);
		if (wlen > TENANT_ID_MAX)
			wlen = TENANT_ID_MAX;
	}
	pthread_mutex_lock(&log_lock);
	struct log_slot *s = log_slot(who, wlen, v->reason, now, &evicted);
	s->unlogged++;
	s->status = v->status;
	if (s->last_ms == 0 || now - s->last_ms >= LOG_EVERY_MS) {
		n = s->unlogged;
		s->unlogged = 0;
		s->last_ms = now ? now : 1;
		line = *s;
	}
	pthread_mutex_unlock(&log_lock);
	if (evicted.unlogged > 0)
		log_line(&evicted, evicted.unlogged, "(earlier refusals)");
	if (n > 0)
		log_line(&line, n, v->text);
}

/* Counts one refusal for reason with its samples: /metrics, the tenant's
 * counters and usage record. */
static void count_reason(struct admission *a, const struct admission_req *r,
			 enum refuse_reason reason, uint64_t samples)
{
	metric_add(&metrics.refused[reason], 1);
	metric_add(&metrics.samples_refused[reason], samples);
	if (r->ident.idlen > 0) {
		tenant_stats_refused(r->ident.id, r->ident.idlen, reason, samples);
		if (a->w != NULL)
			writer_refused(a->w, r->ident.id, r->ident.idlen,
				       (int)reason, samples);
	}
}

void admission_count(struct admission *a, const struct admission_req *r)
{
	const struct admission_verdict *v = &r->v;
	const struct wire_counts *c = &r->counts;

	if (!v->refused || (unsigned)v->reason >= REFUSE_NREASONS)
		return;
	metrics_count_request(v->status);
	if (v->reason == REFUSE_SERIES_LIMIT ||
	    v->reason == REFUSE_RELABEL_INVALID) {
		/* Some series of a request that is stored: only theirs are
		 * refused, each kind under its reason (a request with both
		 * counts as refused under both). */
		if (v->reason == REFUSE_SERIES_LIMIT || c->refused_series > 0)
			count_reason(a, r, REFUSE_SERIES_LIMIT,
				     c->refused_samples);
		if (v->reason == REFUSE_RELABEL_INVALID || c->invalid_series > 0)
			count_reason(a, r, REFUSE_RELABEL_INVALID,
				     c->invalid_samples);
	} else {
		/* The whole request: the series left out too. */
		count_reason(a, r, v->reason, c->samples + c->histograms +
			     c->refused_samples + c->invalid_samples);
	}
	log_refusal(r);
}
