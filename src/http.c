/*
 * http.c - HTTP API and the write path's request life cycle (see http.h).
 *
 * A write request goes through these states on its connection:
 *   RECEIVING  body bytes are appended (bounded by max_body_size)
 *   WAITING    handed to the writer, connection suspended
 *   DONE       the writer finished; the next call answers
 */
#include "http.h"

#include <errno.h>
#include <gnutls/gnutls.h>
#include <microhttpd.h>
#include <netdb.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "ingest.h"
#include "log.h"
#include "metrics.h"
#include "queue.h"
#include "ratelimit.h"
#include "reload.h"
#include "setaside.h"
#include "store.h"
#include "tenant.h"
#include "tenant_stats.h"
#include "usage.h"
#include "writer.h"

#define RETRY_AFTER_S "5"

enum req_state { REQ_RECEIVING, REQ_WAITING, REQ_DONE };

struct request {
	struct http *h;                 /* ref */
	const struct config *cfg;       /* ref: in force when it arrived */
	struct MHD_Connection *conn;    /* ref */
	enum req_state state;
	struct buf body;
	int too_large;
	struct tenant_ident ident;
	struct buf hll;                 /* usage_hll_code() of each series */
	struct batch batch;
	struct wire_counts counts;
	uint64_t decoded;
	uint64_t body_len;              /* compressed bytes received */
	uint64_t inflight;              /* decoded bytes counted in flight */
};

struct http {
	struct http_deps d;
	struct MHD_Daemon *daemon;
	_Atomic int stopping;
	_Atomic long waiting;           /* requests handed to the writer */
	struct MHD_Response *stored;    /* owned: the 204 every stored write
					 * gets, made once */
	char *tls_cert, *tls_key, *tls_ca; /* owned: PEM text */
	struct ratelimit rl;
};

static enum MHD_Result respond(struct MHD_Connection *conn, unsigned status,
			       const char *text, const char *content_type)
{
	struct MHD_Response *resp;
	enum MHD_Result ret;
	size_t len = text ? strlen(text) : 0;

	resp = MHD_create_response_from_buffer(len, (void *)(text ? text : ""),
					       MHD_RESPMEM_MUST_COPY);
	if (resp == NULL)
		return MHD_NO;
	if (len > 0)
		MHD_add_response_header(resp, "Content-Type",
					content_type ? content_type :
					"text/plain; charset=utf-8");
	if (status == 503 || status == 429)
		MHD_add_response_header(resp, "Retry-After", RETRY_AFTER_S);
	if (status == 405)
		MHD_add_response_header(resp, "Allow", "POST");
	ret = MHD_queue_response(conn, status, resp);
	MHD_destroy_response(resp);
	return ret;
}

/*
 * Logs a 5xx refusal: a sender retries those, so while the buffer is full
 * each retry would add a line. One line per reason every ten seconds at
 * most, with how many there were; the metrics count every one.
 */
static void log_refusal(unsigned status, enum refuse_reason reason)
{
	static _Atomic uint64_t last_ms[REFUSE_NREASONS], unlogged[REFUSE_NREASONS];
	uint64_t now = clock_mono_ms(), last = atomic_load(&last_ms[reason]);
	uint64_t n = atomic_fetch_add(&unlogged[reason], 1) + 1;

	if (now - last < 10000 ||
	    !atomic_compare_exchange_strong(&last_ms[reason], &last, now))
		return;
	atomic_fetch_sub(&unlogged[reason], n);
	log_msg(LOG_WARN, "writes refused", "status=%u reason=%s count=%llu",
		status, refuse_reason_name(reason), (unsigned long long)n);
}

/* Answers a write request with an error, counting it. */
static enum MHD_Result refuse(struct MHD_Connection *conn, unsigned status,
			      enum refuse_reason reason, const char *why,
			      uint64_t samples)
{
	char line[600];

	metrics_count_request(status);
	metric_add(&metrics.refused[reason], 1);
	metric_add(&metrics.samples_refused[reason], samples);
	snprintf(line, sizeof(line), "%s\n", why);
	if (status >= 500)
		log_refusal(status, reason);
	else
		log_msg(LOG_DEBUG, "write refused", "status=%u reason=%s", status,
			refuse_reason_name(reason));
	return respond(conn, status, line, NULL);
}

/* Refuses a request whose tenant is known, counting it for the tenant. */
static enum MHD_Result refuse_req(struct request *r, unsigned status,
				  enum refuse_reason reason, const char *why)
{
	uint64_t samples = r->counts.samples;

	if (r->ident.idlen > 0) {
		tenant_stats_refused(r->ident.id, r->ident.idlen, reason,
				     samples);
		writer_refused(r->h->d.w, r->ident.id, r->ident.idlen, (int)reason,
			       samples);
	}
	return refuse(r->conn, status, reason, why, samples);
}

/* Status for a request over one of its tenant's limits. */
static unsigned limit_status(const struct request *r)
{
	return r->ident.conf && r->ident.conf->limit_status == 503 ? 503 : 429;
}

int http_check_content_type(const char *ct, char *why, size_t whylen)
{
	const char *p, *semi;
	size_t n;

	if (ct == NULL) {
		snprintf(why, whylen, "missing Content-Type; want application/x-protobuf");
		return 415;
	}
	while (*ct == ' ')
		ct++;
	semi = strchr(ct, ';');
	n = semi ? (size_t)(semi - ct) : strlen(ct);
	while (n > 0 && ct[n - 1] == ' ')
		n--;
	if (n != 22 || strncasecmp(ct, "application/x-protobuf", 22) != 0) {
		snprintf(why, whylen, "unsupported Content-Type %.64s; want "
			 "application/x-protobuf", ct);
		return 415;
	}
	for (p = semi; p != NULL; p = strchr(p + 1, ';')) {
		const char *v = p + 1;
		while (*v == ' ')
			v++;
		if (strncasecmp(v, "proto=", 6) != 0)
			continue;
		v += 6;
		n = strcspn(v, "; ");
		if (n == 22 && strncmp(v, "prometheus.WriteRequest", 22) == 0)
			continue;
		if (n == 23 && strncmp(v, "prometheus.WriteRequest", 23) == 0)
			continue;
		snprintf(why, whylen, "unsupported proto=%.*s; this endpoint takes "
			 "Remote Write 1.0 (prometheus.WriteRequest)", (int)(n > 64 ? 64 : n), v);
		return 415;
	}
	return 0;
}

static int check_encoding(const char *enc, char *why, size_t whylen)
{
	if (enc == NULL || strcasecmp(enc, "snappy") == 0)
		return 0;
	snprintf(why, whylen, "unsupported Content-Encoding %.32s; want snappy", enc);
	return 415;
}

/* Writer thread: the batch is final; wake the connection. */
static void batch_done(struct batch *b, void *arg)
{
	struct request *r = arg;

	(void)b;
	r->state = REQ_DONE;
	MHD_resume_connection(r->conn);
}

static void inflight_release(struct request *r)
{
	if (r->inflight > 0) {
		atomic_fetch_sub(&metrics.inflight_bytes, r->inflight);
		r->inflight = 0;
	}
}

static void collect_series(void *arg, uint64_t hash)
{
	struct request *r = arg;
	uint32_t code = usage_hll_code(hash);

	buf_append(&r->hll, &code, sizeof(code));
}

/* SHA-256 of tenant id, 0x00, body: the request's identity for dedup.
 * Returns 0 or -1 (then the request is not deduplicated). */
static int body_digest(const struct request *r, uint8_t out[32])
{
	return tenant_sha256_2(r->ident.id, r->ident.idlen + 1, r->body.p,
			       r->body.len, out);
}

/* The body is complete: decode, validate, and hand it to the writer. */
static enum MHD_Result write_complete(struct http *h, struct request *r)
{
	const struct config *cfg = r->cfg;
	const struct config_tenant *tc = r->ident.conf;
	struct ingest_req ir;
	struct batch *b = &r->batch;
	char why[512];
	uint64_t prev;
	int status;

	if (r->too_large) {
		snprintf(why, sizeof(why), "body over the limit of %llu bytes",
			 (unsigned long long)cfg->max_body_size);
		return refuse_req(r, 413, REFUSE_TOO_LARGE, why);
	}
	if (atomic_load(&h->stopping))
		return refuse_req(r, 503, REFUSE_SHUTTING_DOWN, "shutting down");
	r->body_len = r->body.len;
	status = ingest_check_length(cfg, r->body.p, r->body.len, &r->decoded, why,
				     sizeof(why));
	if (status != 0)
		return refuse_req(r, (unsigned)status, status == 413 ?
				  REFUSE_TOO_LARGE : REFUSE_BAD_REQUEST, why);
	prev = atomic_fetch_add(&metrics.inflight_bytes, r->decoded);
	r->inflight = r->decoded;
	if (prev + r->decoded > cfg->max_inflight_bytes && prev > 0) {
		inflight_release(r);
		return refuse_req(r, 503, REFUSE_OVERLOADED,
				  "too many decoded bytes in flight; retry later");
	}
	uint8_t digest[32];
	int has_digest = cfg->dedup_window_ms > 0 && body_digest(r, digest) == 0;
	memset(&ir, 0, sizeof(ir));
	ir.tenant = r->ident.id;
	ir.tlen = r->ident.idlen;
	ir.tenant_label = r->ident.idlen > 0 ? cfg->tenant_label : NULL;
	if (r->ident.idlen > 0) {
		buf_init(&r->hll, (cfg->max_decoded_size / 4 + 1) * sizeof(uint32_t));
		ir.on_series = collect_series;
		ir.arg = r;
	}
	status = ingest_body(cfg, &ir, &r->body, b, &r->counts, &r->decoded,
			     why, sizeof(why));
	inflight_release(r);
	if (status != 0) {
		enum refuse_reason reason = status == 413 ? REFUSE_TOO_LARGE :
			status == 415 ? REFUSE_UNSUPPORTED :
			status == 503 ? REFUSE_OVERLOADED : REFUSE_BAD_REQUEST;
		return refuse_req(r, (unsigned)status, reason, why);
	}
	/* Refusals that concern the tenant come after decoding, so that the
	 * refused samples are counted in its usage. */
	if (cfg->when_full == WHEN_FULL_REJECT &&
	    atomic_load(&metrics.storage_used_bytes) + b->value_bytes > cfg->max_size) {
		batch_release(b);
		return refuse_req(r, 503, REFUSE_BUFFER_FULL, "buffer full; retry later");
	}
	if (tc && tc->max_buffer_bytes &&
	    queue_tenant_bytes(h->d.q, r->ident.id, r->ident.idlen) + b->value_bytes >
	    tc->max_buffer_bytes) {
		batch_release(b);
		return refuse_req(r, limit_status(r), REFUSE_TENANT_FULL,
				  "tenant's share of the buffer is full; retry later");
	}
	if (tc && tc->max_samples_per_second > 0 &&
	    ratelimit_take(&h->rl, r->ident.id, r->ident.idlen,
			   tc->max_samples_per_second,
			   r->counts.samples + r->counts.histograms,
			   clock_mono_ms()) == 1) {
		batch_release(b);
		snprintf(why, sizeof(why), "tenant over its rate of %g samples/s; "
			 "retry later", tc->max_samples_per_second);
		return refuse_req(r, limit_status(r), REFUSE_RATE_LIMITED, why);
	}
	b->has_digest = has_digest;
	memcpy(b->digest, digest, sizeof(digest));
	b->tenant_max_bytes = tc ? tc->max_buffer_bytes : 0;
	b->usage.requests = 1;
	b->usage.series = r->counts.series;
	b->usage.samples = r->counts.samples;
	b->usage.histograms = r->counts.histograms;
	b->usage.exemplars = r->counts.exemplars;
	b->usage.metadata = r->counts.metadata;
	b->usage.bytes_compressed = r->body_len;
	b->usage.bytes_decoded = r->decoded;
	b->hll = (const uint32_t *)r->hll.p;
	b->nhll = r->hll.len / sizeof(uint32_t);
	buf_free(&r->body);
	b->done = batch_done;
	b->arg = r;
	r->state = REQ_WAITING;
	atomic_fetch_add(&h->waiting, 1);
	MHD_suspend_connection(r->conn);
	writer_submit(h->d.w, b);
	return MHD_YES;
}

/* The writer is done with the request: answer it. */
static enum MHD_Result write_answer(struct http *h, struct request *r)
{
	enum MHD_Result ret;

	atomic_fetch_sub(&h->waiting, 1);
	switch (r->batch.status) {
	case BATCH_DUPLICATE:
		metric_add(&metrics.duplicates, 1);
		metrics_count_request(204);
		ret = MHD_queue_response(r->conn, 204, h->stored);
		break;
	case BATCH_STORED:
		metric_add(&metrics.series_received, r->counts.series);
		metric_add(&metrics.samples_received, r->counts.samples);
		metric_add(&metrics.histograms_received, r->counts.histograms);
		metric_add(&metrics.exemplars_received, r->counts.exemplars);
		metric_add(&metrics.metadata_received, r->counts.metadata);
		metric_add(&metrics.bytes_decoded, r->decoded);
		metric_add(&metrics.bytes_received, r->body_len);
		metrics_count_request(204);
		ret = MHD_queue_response(r->conn, 204, h->stored);
		break;
	case BATCH_FULL:
		ret = refuse_req(r, 503, REFUSE_BUFFER_FULL,
				 "buffer full; retry later");
		break;
	case BATCH_TENANT_FULL:
		ret = refuse_req(r, limit_status(r), REFUSE_TENANT_FULL,
				 "tenant's share of the buffer is full; retry later");
		break;
	default:
		ret = refuse_req(r, 503, REFUSE_STORAGE,
				 "storage error; retry later");
		break;
	}
	batch_release(&r->batch);
	return ret;
}

static enum MHD_Result handle_write(struct http *h, struct MHD_Connection *conn,
				    const char *method, const char *upload,
				    size_t *upload_size, void **con_cls)
{
	const struct config *cfg = config_current();
	struct request *r = *con_cls;
	const char *v;
	char why[256];
	int status;

	if (r == NULL) {
		if (strcmp(method, "POST") != 0)
			return refuse(conn, 405, REFUSE_METHOD,
				      "method not allowed; use POST", 0);
		v = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Type");
		if ((status = http_check_content_type(v, why, sizeof(why))) != 0)
			return refuse(conn, (unsigned)status, REFUSE_UNSUPPORTED, why, 0);
		v = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Encoding");
		if ((status = check_encoding(v, why, sizeof(why))) != 0)
			return refuse(conn, (unsigned)status, REFUSE_UNSUPPORTED, why, 0);
		v = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Length");
		if (v != NULL && strtoull(v, NULL, 10) > cfg->max_body_size) {
			snprintf(why, sizeof(why), "body over the limit of %llu bytes",
				 (unsigned long long)cfg->max_body_size);
			return refuse(conn, 413, REFUSE_TOO_LARGE, why, 0);
		}
		r = calloc(1, sizeof(*r));
		if (r == NULL)
			return MHD_NO;
		status = tenant_resolve(cfg,
			MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Authorization"),
			MHD_lookup_connection_value(conn, MHD_HEADER_KIND, cfg->tenant_header),
			&r->ident, why, sizeof(why));
		if (status != 0) {
			free(r);
			return refuse(conn, (unsigned)status, REFUSE_UNAUTHORIZED, why, 0);
		}
		r->h = h;
		r->cfg = cfg;
		r->conn = conn;
		r->state = REQ_RECEIVING;
		buf_init(&r->body, cfg->max_body_size);
		if (v != NULL)
			buf_reserve(&r->body, strtoull(v, NULL, 10));
		*con_cls = r;
		return MHD_YES;
	}
	if (r->state == REQ_RECEIVING && *upload_size > 0) {
		if (!r->too_large && buf_append(&r->body, upload, *upload_size) < 0) {
			r->too_large = 1;
			buf_free(&r->body);
		}
		*upload_size = 0;
		return MHD_YES;
	}
	if (r->state == REQ_RECEIVING)
		return write_complete(h, r);
	if (r->state == REQ_DONE)
		return write_answer(h, r);
	return MHD_YES;
}

static enum MHD_Result handle_metrics(struct http *h, struct MHD_Connection *conn)
{
	struct MHD_Response *resp;
	enum MHD_Result ret;
	struct buf out;

	buf_init(&out, 64u << 20);
	if (metrics_render(&out, h->d.q) < 0) {
		buf_free(&out);
		return respond(conn, 500, "cannot render metrics\n", NULL);
	}
	resp = MHD_create_response_from_buffer(out.len, out.p ? out.p : (void *)"",
					       out.p ? MHD_RESPMEM_MUST_FREE :
					       MHD_RESPMEM_PERSISTENT);
	if (resp == NULL) {
		buf_free(&out);
		return MHD_NO;
	}
	MHD_add_response_header(resp, "Content-Type",
				"text/plain; version=0.0.4; charset=utf-8");
	ret = MHD_queue_response(conn, 200, resp);
	MHD_destroy_response(resp);
	return ret;
}

/* Whether the request carries [server] admin_token; answers it if not. */
static int admin_ok(struct MHD_Connection *conn, enum MHD_Result *ret)
{
	const char *auth = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
						       "Authorization");

	const struct config *cfg = config_current();

	if (cfg->admin_token == NULL) {
		*ret = respond(conn, 403, "admin endpoints are off: set [server] "
			       "admin_token\n", NULL);
		return 0;
	}
	if (auth == NULL || strncasecmp(auth, "Bearer ", 7) != 0 ||
	    !tenant_token_equal(auth + 7, cfg->admin_token)) {
		*ret = respond(conn, 401, "admin token required\n", NULL);
		return 0;
	}
	return 1;
}

static enum MHD_Result handle_usage(struct http *h, struct MHD_Connection *conn)
{
	struct usage_filter f = {0};
	struct MHD_Response *resp;
	enum MHD_Result ret;
	const char *v, *fmt;
	struct buf out;
	MDB_txn *txn;
	int csv = 0, rc;

	if (!admin_ok(conn, &ret))
		return ret;
	v = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "tenant");
	f.tenant = v && *v ? v : NULL;
	v = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "from");
	if (v && *v && usage_parse_time(v, &f.from_s) < 0)
		return respond(conn, 400, "bad from: use Unix seconds or RFC 3339\n", NULL);
	v = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "to");
	if (v && *v && usage_parse_time(v, &f.to_s) < 0)
		return respond(conn, 400, "bad to: use Unix seconds or RFC 3339\n", NULL);
	fmt = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "format");
	if (fmt && *fmt) {
		if (strcmp(fmt, "csv") == 0)
			csv = 1;
		else if (strcmp(fmt, "json") != 0)
			return respond(conn, 400, "bad format: json or csv\n", NULL);
	}
	if (mdb_txn_begin(h->d.st->env, NULL, MDB_RDONLY, &txn) != 0)
		return respond(conn, 503, "storage unavailable\n", NULL);
	buf_init(&out, (size_t)1 << 30);
	rc = usage_format(txn, h->d.st->usage, &f, csv, &out);
	mdb_txn_abort(txn);
	if (rc < 0 || out.p == NULL) {
		buf_free(&out);
		return respond(conn, 500, "cannot format usage\n", NULL);
	}
	resp = MHD_create_response_from_buffer(out.len, out.p, MHD_RESPMEM_MUST_FREE);
	if (resp == NULL) {
		buf_free(&out);
		return MHD_NO;
	}
	MHD_add_response_header(resp, "Content-Type", csv ? "text/csv; charset=utf-8" :
				"application/json");
	ret = MHD_queue_response(conn, 200, resp);
	MHD_destroy_response(resp);
	return ret;
}

/* POST /-/reload (admin): reads the file again. */
static enum MHD_Result handle_reload(struct MHD_Connection *conn)
{
	enum MHD_Result ret;
	char msg[1200], line[1210];

	if (!admin_ok(conn, &ret))
		return ret;
	if (reload_now(msg, sizeof(msg)) < 0) {
		snprintf(line, sizeof(line), "%s\n", msg);
		return respond(conn, 400, line, NULL);
	}
	snprintf(line, sizeof(line), "%s\n", msg);
	return respond(conn, 200, line, NULL);
}

/* GET /api/v1/setaside, POST /api/v1/setaside/replay|purge (admin). */
static enum MHD_Result handle_setaside(struct http *h, struct MHD_Connection *conn,
				       const char *url, const char *method)
{
	struct setaside_filter f;
	struct MHD_Response *resp;
	enum MHD_Result ret;
	struct buf out;
	MDB_txn *txn;
	const char *op = url + strlen("/api/v1/setaside");
	int rc;

	if (!admin_ok(conn, &ret))
		return ret;
	if (setaside_filter_parse(&f,
		MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "tenant"),
		MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "seq")) < 0)
		return respond(conn, 400, "bad tenant or seq\n", NULL);
	if (strcmp(op, "/replay") == 0 || strcmp(op, "/purge") == 0) {
		if (strcmp(method, "POST") != 0)
			return respond(conn, 405, "use POST\n", NULL);
		writer_setaside_op(h->d.w, &f, op[1] == 'r');
		return respond(conn, 202, op[1] == 'r' ? "replay queued\n" :
			       "purge queued\n", NULL);
	}
	if (op[0] != '\0')
		return respond(conn, 404, "not found\n", NULL);
	if (mdb_txn_begin(h->d.st->env, NULL, MDB_RDONLY, &txn) != 0)
		return respond(conn, 503, "storage unavailable\n", NULL);
	buf_init(&out, (size_t)1 << 30);
	rc = setaside_format(txn, h->d.st, &f, 1, &out);
	mdb_txn_abort(txn);
	if (rc < 0 || out.p == NULL) {
		buf_free(&out);
		return respond(conn, 500, "cannot list\n", NULL);
	}
	resp = MHD_create_response_from_buffer(out.len, out.p, MHD_RESPMEM_MUST_FREE);
	if (resp == NULL) {
		buf_free(&out);
		return MHD_NO;
	}
	MHD_add_response_header(resp, "Content-Type", "application/json");
	ret = MHD_queue_response(conn, 200, resp);
	MHD_destroy_response(resp);
	return ret;
}

/*
 * With [server] tls_client_ca, libmicrohttpd asks for a client certificate
 * but does not insist: check that one was shown and that it verifies
 * against that CA. Returns 1 if the request may go on.
 */
static int client_cert_ok(struct MHD_Connection *conn)
{
	const union MHD_ConnectionInfo *ci;
	unsigned status = 0, n = 0;
	gnutls_session_t sess;

	ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_GNUTLS_SESSION);
	if (ci == NULL || ci->tls_session == NULL)
		return 0;
	sess = (gnutls_session_t)ci->tls_session;
	if (gnutls_certificate_get_peers(sess, &n) == NULL || n == 0)
		return 0;
	if (gnutls_certificate_verify_peers2(sess, &status) != GNUTLS_E_SUCCESS)
		return 0;
	return status == 0;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn,
				  const char *url, const char *method,
				  const char *version, const char *upload,
				  size_t *upload_size, void **con_cls)
{
	struct http *h = cls;
	int get = strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0;

	(void)version;
	if (*con_cls == NULL && h->tls_ca != NULL && !client_cert_ok(conn)) {
		log_msg(LOG_WARN, "client certificate missing or not trusted",
			"url=%s", url);
		return respond(conn, 403, "client certificate required\n", NULL);
	}
	if (strcmp(url, "/api/v1/write") == 0)
		return handle_write(h, conn, method, upload, upload_size, con_cls);
	if (*upload_size > 0) {
		/* Other routes take no body: drop it. */
		*upload_size = 0;
		return MHD_YES;
	}
	if (*con_cls == NULL && strcmp(method, "POST") == 0) {
		/* Answer a POST once its (ignored) body is in. */
		*con_cls = h;
		return MHD_YES;
	}
	if (strncmp(url, "/api/v1/setaside", 16) == 0)
		return handle_setaside(h, conn, url, method);
	if (strcmp(url, "/-/reload") == 0 && strcmp(method, "POST") == 0)
		return handle_reload(conn);
	if (strcmp(url, "/metrics") == 0 && get)
		return handle_metrics(h, conn);
	if (strcmp(url, "/api/v1/usage") == 0 && get)
		return handle_usage(h, conn);
	if (strcmp(url, "/-/healthy") == 0 && get)
		return respond(conn, 200, "OK\n", NULL);
	if (strcmp(url, "/-/ready") == 0 && get) {
		if (atomic_load(&h->stopping))
			return respond(conn, 503, "shutting down\n", NULL);
		return respond(conn, 200, "OK\n", NULL);
	}
	if (strcmp(url, "/metrics") == 0 || strncmp(url, "/-/", 3) == 0 ||
	    strcmp(url, "/api/v1/usage") == 0)
		return respond(conn, 405, "method not allowed\n", NULL);
	return respond(conn, 404, "not found\n", NULL);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
			 enum MHD_RequestTerminationCode toe)
{
	struct request *r = *con_cls;

	(void)conn;
	(void)toe;
	if (r == NULL || (void *)r == cls)
		return;
	inflight_release(r);
	batch_release(&r->batch);
	buf_free(&r->body);
	buf_free(&r->hll);
	free(r);
	*con_cls = NULL;
}

static void on_mhd_log(void *cls, const char *fmt, va_list ap)
	__attribute__((format(printf, 2, 0)));

static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
	char line[512];
	size_t n;

	(void)cls;
	vsnprintf(line, sizeof(line), fmt, ap);
	n = strlen(line);
	while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == ' '))
		line[--n] = '\0';
	log_msg(LOG_WARN, "http server", "detail=\"%s\"", line);
}

static char *read_pem(const char *path, char *err, size_t errlen)
{
	FILE *f = fopen(path, "rb");
	struct buf b;
	char chunk[4096];
	size_t n;

	if (f == NULL) {
		snprintf(err, errlen, "cannot read %s: %s", path, strerror(errno));
		return NULL;
	}
	buf_init(&b, 1u << 20);
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
		if (buf_append(&b, chunk, n) < 0)
			break;
	}
	fclose(f);
	if (buf_append(&b, "", 1) < 0) {
		buf_free(&b);
		snprintf(err, errlen, "%s: too large", path);
		return NULL;
	}
	return (char *)b.p;
}

static int parse_listen(const char *listen, struct sockaddr_storage *ss,
			char *err, size_t errlen)
{
	struct addrinfo hints, *res;
	char host[256];
	const char *colon = strrchr(listen, ':');
	size_t n;
	int rc;

	if (colon == NULL) {
		snprintf(err, errlen, "listen %s: want host:port", listen);
		return -1;
	}
	n = (size_t)(colon - listen);
	if (n >= sizeof(host))
		n = sizeof(host) - 1;
	memcpy(host, listen, n);
	host[n] = '\0';
	if (n >= 2 && host[0] == '[' && host[n - 1] == ']') {
		memmove(host, host + 1, n - 2);
		host[n - 2] = '\0';
	}
	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	rc = getaddrinfo(host[0] ? host : NULL, colon + 1, &hints, &res);
	if (rc != 0) {
		snprintf(err, errlen, "listen %s: %s", listen, gai_strerror(rc));
		return -1;
	}
	memcpy(ss, res->ai_addr, res->ai_addrlen);
	freeaddrinfo(res);
	return 0;
}

struct http *http_start(const struct http_deps *deps, char *err, size_t errlen)
{
	const struct config *cfg = deps->cfg;
	struct sockaddr_storage ss;
	unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL |
			 MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG;
	struct MHD_OptionItem opts[16];
	struct http *h;
	int n = 0;

	if (parse_listen(cfg->listen, &ss, err, errlen) < 0)
		return NULL;
	if (ss.ss_family == AF_INET6)
		flags |= MHD_USE_IPv6;
	h = calloc(1, sizeof(*h));
	if (h == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	h->d = *deps;
	ratelimit_init(&h->rl);
	h->stored = MHD_create_response_from_buffer(0, (void *)"",
						    MHD_RESPMEM_PERSISTENT);
	if (h->stored == NULL) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	opts[n++] = (struct MHD_OptionItem){MHD_OPTION_EXTERNAL_LOGGER,
					    (intptr_t)on_mhd_log, h};
	if (cfg->tls_cert != NULL || cfg->tls_key != NULL) {
		if (cfg->tls_cert == NULL || cfg->tls_key == NULL) {
			snprintf(err, errlen, "tls_cert and tls_key go together");
			goto fail;
		}
		if ((h->tls_cert = read_pem(cfg->tls_cert, err, errlen)) == NULL ||
		    (h->tls_key = read_pem(cfg->tls_key, err, errlen)) == NULL)
			goto fail;
		flags |= MHD_USE_TLS;
		opts[n++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_CERT, 0, h->tls_cert};
		opts[n++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_KEY, 0, h->tls_key};
		if (cfg->tls_client_ca != NULL) {
			if ((h->tls_ca = read_pem(cfg->tls_client_ca, err, errlen)) == NULL)
				goto fail;
			opts[n++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_TRUST, 0, h->tls_ca};
		}
	}
	opts[n++] = (struct MHD_OptionItem){MHD_OPTION_SOCK_ADDR, 0, &ss};
	opts[n++] = (struct MHD_OptionItem){MHD_OPTION_THREAD_POOL_SIZE,
					    (intptr_t)cfg->threads, NULL};
	opts[n++] = (struct MHD_OptionItem){MHD_OPTION_CONNECTION_LIMIT,
					    (intptr_t)cfg->max_connections, NULL};
	opts[n++] = (struct MHD_OptionItem){MHD_OPTION_CONNECTION_TIMEOUT,
					    (intptr_t)((cfg->idle_timeout_ms + 999) / 1000), NULL};
	opts[n++] = (struct MHD_OptionItem){MHD_OPTION_NOTIFY_COMPLETED,
					    (intptr_t)on_completed, h};
	opts[n++] = (struct MHD_OptionItem){MHD_OPTION_LISTEN_BACKLOG_SIZE, 1024, NULL};
	opts[n++] = (struct MHD_OptionItem){MHD_OPTION_END, 0, NULL};
	h->daemon = MHD_start_daemon(flags, 0, NULL, NULL, on_request, h,
				     MHD_OPTION_ARRAY, opts, MHD_OPTION_END);
	if (h->daemon == NULL) {
		snprintf(err, errlen, "cannot listen on %s (in use, or not an "
			 "address of this host?)", cfg->listen);
		goto fail;
	}
	return h;
fail:
	if (h->stored != NULL)
		MHD_destroy_response(h->stored);
	free(h->tls_cert);
	free(h->tls_key);
	free(h->tls_ca);
	ratelimit_destroy(&h->rl);
	free(h);
	return NULL;
}

void http_stop(struct http *h, unsigned wait_ms)
{
	struct timespec ts = {0, 10 * 1000000};

	atomic_store(&h->stopping, 1);
	MHD_quiesce_daemon(h->daemon);
	for (unsigned waited = 0; atomic_load(&h->waiting) > 0 && waited < wait_ms;
	     waited += 10)
		nanosleep(&ts, NULL);
	/* Let resumed connections send their answers. */
	nanosleep(&(struct timespec){0, 50 * 1000000}, NULL);
	MHD_stop_daemon(h->daemon);
	MHD_destroy_response(h->stored);
	free(h->tls_cert);
	free(h->tls_key);
	free(h->tls_ca);
	ratelimit_destroy(&h->rl);
	free(h);
}
