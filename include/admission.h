/*
 * admission.h - whether a write request is taken, and if not, why: the one
 * place where a request's tenant, limits and policies are decided.
 *
 * The transport (http_write.c) reads the request and hands admission what it
 * learnt, stage by stage; each stage either lets the request go on or
 * gives ONE verdict: refuse, with one enum refuse_reason (metrics.h), the
 * HTTP status, a short text and an optional Retry-After. The stages, in
 * the order they run:
 *
 *   1. headers   admission_headers: method (405), Content-Type and
 *                Content-Encoding (415), Content-Length over
 *                max_body_size (413), then who the tenant is (tenant.h;
 *                401; 429 for a new tenant past [tenancy] max_tenants).
 *   2. body      admission_body: the body over max_body_size (413),
 *                shutting down (503), snappy's stated length (400, 413
 *                over max_decoded_size), decoded bytes in flight over
 *                max_inflight_bytes (503 overloaded).
 *   3. series    admission_series_pass: per-series policies, over the
 *                series of the decoded request as sent, before the tenant
 *                label is set (ingest.h calls it between decompressing and
 *                scanning). Then decoding itself: admission_decoded maps
 *                what the decoder refused (400, 413, 415; 503 when out of
 *                memory). The tenant's [tenant] max_series is decided in
 *                the decoder's own pass, series by series, as it writes
 *                the copy to store (wire_opts.admit, series_limit.h): the
 *                series it refuses are left out, the rest is stored, and
 *                the request is answered 400 with REFUSE_SERIES_LIMIT
 *                once stored (when every series was refused, at once),
 *                counting only the refused series' samples. Series that
 *                relabel rules leave invalid (wire_opts.relabel) are left
 *                out the same way, answered 400 with
 *                REFUSE_RELABEL_INVALID.
 *   4. tenant    admission_tenant: a request larger than the whole buffer
 *                ([storage] max_size: 413, it can never fit), the buffer
 *                full with when_full = reject (503), the tenant's share of
 *                the buffer ([tenant] max_buffer_bytes) and its rate
 *                ([tenant] max_samples_per_second), both answered with
 *                [tenant] limit_status (429 or 503).
 *   5. commit    admission_commit: what the writer refused at commit time
 *                (buffer full, tenant's share full, storage failed), as
 *                the writer reports it: an enum refuse_reason.
 *
 * Every refusal, whatever the stage, gets its status, text and Retry-After
 * from one table (admission.c: refusals[]), and is counted once, by
 * admission_count: relay_requests_refused_total{reason} and
 * relay_samples_refused_total{reason}, the tenant's relay_tenant_*_refused
 * series (tenant_stats.h), and the tenant's usage record (requests_refused
 * and samples_refused by reason, usage.h). It is logged at the default
 * level at most once per (tenant, reason) every 10 s, with the count of
 * those not logged.
 *
 * Samples refused are counted as far as the body was decoded: none when it
 * was refused before decoding (stages 1-2), the samples of the whole
 * series before the first bad one when decoding failed, all of them when
 * refused after decoding (stages 3-5).
 *
 * Adding a policy. A per-series one (relabel rules, HA-pair
 * deduplication) is a row of series_policies[] in
 * admission.c: a name and a function that sees each series (the bytes of
 * one prometheus.TimeSeries message, labels as sent) and returns 0 to
 * keep going or refuses with admission_refuse(). With no policy on for
 * the request, the pass is skipped and costs nothing. A policy may note
 * what it saw in the request's state: HA deduplication (ha.h) notes each
 * series' cluster and replica, and when the request is an HA one the pass
 * hands the replica label to the decoder, whose one rewrite (wire.h,
 * where the tenant label is set) removes it; whether the request is
 * stored is then the writer's decision at commit time, against the stored
 * election, so that two replicas racing cannot both win (a verdict from
 * here could not be exact). One that drops or rewrites single series (a
 * relabel rule) needs the pass to leave a copy: it gets an output buffer
 * like wire_scan's then. A policy of the whole request goes into the
 * stage whose inputs it needs, as a function called from that stage,
 * refusing through the same table (add a reason at the end of enum
 * refuse_reason and a row of refusals[] for a new kind of refusal).
 *
 * Nothing here allocates per request: the verdict and the request's state
 * live in the transport's request, the texts are formatted into it.
 */
#ifndef RELAY_ADMISSION_H
#define RELAY_ADMISSION_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "ha.h"
#include "metrics.h"
#include "ratelimit.h"
#include "tenant.h"
#include "wire.h"

struct queue;
struct writer;

#define ADMISSION_TEXT_MAX 512

/* A stage's answer, when it refuses. */
struct admission_verdict {
	int refused;               /* 0: accepted so far */
	enum refuse_reason reason;
	unsigned status;           /* HTTP status */
	unsigned retry_after_s;    /* 0: no Retry-After header */
	char text[ADMISSION_TEXT_MAX]; /* one line, no newline */
};

/* What is known about one write request; the transport owns it (one per
 * request, no allocation of its own) and fills the inputs. */
struct admission_req {
	const struct config *cfg;  /* ref: in force when it arrived */
	struct tenant_ident ident; /* set by admission_headers */
	uint64_t body_len;         /* compressed bytes received */
	uint64_t decoded;          /* snappy's stated length */
	uint64_t inflight;         /* decoded bytes counted in flight */
	uint64_t body_held;        /* body bytes counted in flight (inflight.h) */
	struct wire_counts counts; /* as far as decoded */
	struct ha_settings ha_set; /* set by admission_has_series_policies */
	struct ha_req ha;          /* the request's HA cluster and replica */
	uint64_t rate_taken;       /* tokens admission_tenant took (ratelimit.h) */
	struct admission_verdict v;
};

/* The headers stage 1 looks at (NULL when absent). */
struct admission_headers {
	const char *method;
	const char *content_type;
	const char *content_encoding;
	const char *content_length;
	const char *authorization;
	const char *tenant;        /* the [tenancy] trust_header's value */
};

struct admission {
	struct queue *q;           /* ref: what the buffer holds per tenant */
	struct writer *w;          /* ref: usage records; NULL in tests */
	struct ratelimit rl;       /* owned: the tenants' token buckets */
	_Atomic int stopping;
};

/* Sets a up; q and w are borrowed (w may be NULL: no usage records). */
void admission_init(struct admission *a, struct queue *q, struct writer *w);
void admission_destroy(struct admission *a);

/* From now on every write is refused 503 shutting down. */
void admission_stop(struct admission *a);
int admission_stopping(struct admission *a);

/*
 * The stages. Each returns 0 when the request may go on, or 1 when it is
 * refused (r->v holds the verdict; the caller answers it and calls
 * admission_count). They never fail otherwise.
 */
int admission_headers(struct admission *a, struct admission_req *r,
		      const struct admission_headers *h);
/* body: the compressed body (NULL when it went over max_body_size, or
 * empty). Reserves r->decoded bytes in flight until admission_release. */
int admission_body(struct admission *a, struct admission_req *r,
		   const uint8_t *body, size_t len, int too_large);
/* raw: the decoded request; calls each per-series policy. When the
 * request turns out to be an HA one (r->ha.kind HA_PAIR), *drop_label is
 * set to the replica label, for the decoder to remove. */
int admission_series_pass(struct admission_req *r, const uint8_t *raw,
			  size_t len, const char **drop_label);
/*
 * The body stage's memory bound, from the first byte: counts want bytes
 * of the request's body in flight (its Content-Length once the headers
 * are in, then what has arrived). Returns 0, or 1 refused: 503
 * overloaded when max_inflight_bytes has no room (inflight.h).
 */
int admission_body_bytes(struct admission_req *r, uint64_t want);

/* The body's bytes are freed (or handed to the writer): uncounts them. */
void admission_body_release(struct admission_req *r);

/* Sets up the request's per-series policies (its tenant's HA settings,
 * ha.h; call it once its tenant is known) and says whether any is on
 * (else skip the pass). */
int admission_has_series_policies(struct admission_req *r);
/* The decoder's answer: status 0, or the status and reason ingest_body
 * gave (ingest.h). */
int admission_decoded(struct admission_req *r, int status, const char *why);
/* value_bytes: what the request will take in the buffer. */
int admission_tenant(struct admission *a, struct admission_req *r,
		     uint64_t value_bytes);
/* The writer refused the request with reason at commit time. Returns 1. */
int admission_commit(struct admission_req *r, enum refuse_reason reason);
/* The request stored nothing after all (a resend, the HA replica not
 * elected, a refusal at commit): the rate tokens it took go back, so that
 * what is not stored does not use up the tenant's rate. */
void admission_rate_give_back(struct admission *a, struct admission_req *r);

/* Gives back the decoded bytes admission_body counted in flight. */
void admission_release(struct admission_req *r);

/*
 * Fills r->v to refuse with reason, status and Retry-After from the table;
 * the text is fmt formatted, or the table's text when fmt is NULL.
 * Returns 1 (what a refusing stage returns).
 */
int admission_refuse(struct admission_req *r, enum refuse_reason reason,
		     const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/*
 * Counts the refusal in r->v once: /metrics (the answered status, the
 * request and its decoded samples by reason), the tenant's counters and
 * usage record, and the rate-limited log line. Call it once per refused
 * request, whatever the stage.
 */
void admission_count(struct admission *a, const struct admission_req *r);

/* The table's status for reason (429 or 503 for a tenant limit, as
 * tc->limit_status says; tc may be NULL) and its text. */
unsigned admission_status(enum refuse_reason reason,
			  const struct config_tenant *tc);
const char *admission_text(enum refuse_reason reason);

#endif
