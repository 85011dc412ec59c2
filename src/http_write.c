/*
 * http_write.c - the write route (http_int.h): a Remote Write request's
 * body read, handed to ingest (decoding) and to admission (whether it is
 * taken), submitted to the writer, and answered.
 *
 * A write request goes through these states on its connection:
 *   RECEIVING  body bytes are appended (bounded by max_body_size)
 *   WAITING    handed to the writer, connection suspended
 *   DONE       the writer finished; the next call answers
 *   ANSWERED   the writer's verdict counted (and answered, unless the
 *              client had gone: then http_write_end counts it)
 */
#include "http_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admission.h"
#include "ingest.h"
#include "metrics.h"
#include "reload.h"
#include "series_limit.h"
#include "tenant.h"
#include "usage.h"
#include "writer.h"

enum req_state { REQ_RECEIVING, REQ_WAITING, REQ_DONE, REQ_ANSWERED };

struct request {
	struct http *h;                 /* ref */
	struct MHD_Connection *conn;    /* ref */
	enum req_state state;
	struct buf body;
	int too_large;
	int no_room;                    /* body refused: max_inflight_bytes */
	struct admission_req adm;       /* cfg, tenant, counts, verdict */
	struct buf hll;                 /* usage_hll_code() of each series */
	struct series_req series;       /* its tenant's max_series */
	char invalid_why[256];          /* the first series relabel rules
					 * left invalid: why (wire.h) */
	struct batch batch;
};

/* Answers a refused write with its verdict, counting it once. */
static enum MHD_Result refuse(struct http *h, struct MHD_Connection *conn,
			      const struct admission_req *ar)
{
	const struct admission_verdict *v = &ar->v;
	struct MHD_Response *resp;
	enum MHD_Result ret;
	char line[ADMISSION_TEXT_MAX + 2], secs[16];
	int n;

	admission_count(&h->adm, ar);
	n = snprintf(line, sizeof(line), "%s\n", v->text);
	resp = MHD_create_response_from_buffer((size_t)n, line,
					       MHD_RESPMEM_MUST_COPY);
	if (resp == NULL)
		return MHD_NO;
	MHD_add_response_header(resp, "Content-Type", "text/plain; charset=utf-8");
	if (v->retry_after_s > 0) {
		snprintf(secs, sizeof(secs), "%u", v->retry_after_s);
		MHD_add_response_header(resp, "Retry-After", secs);
	}
	if (v->status == 405)
		MHD_add_response_header(resp, "Allow", "POST");
	ret = MHD_queue_response(conn, v->status, resp);
	MHD_destroy_response(resp);
	return ret;
}

/* Writer thread: the batch is final; wake the connection. */
static void batch_done(struct batch *b, void *arg)
{
	struct request *r = arg;

	(void)b;
	r->state = REQ_DONE;
	MHD_resume_connection(r->conn);
}

static void collect_series(void *arg, uint64_t hash)
{
	struct request *r = arg;
	uint32_t code = usage_hll_code(hash);

	buf_append(&r->hll, &code, sizeof(code));
}

/* The scanner's per-series question: may this series be taken under the
 * tenant's max_series? */
static int admit_series(void *arg, uint64_t hash)
{
	struct request *r = arg;

	return series_limit_admit(&r->series, hash);
}

/* Refuses, with 400 and the reason, the series that the tenant's
 * max_series or the relabel rules left out (the rest of the request is
 * stored, or nothing when every series was). Returns 1. */
static int refuse_series(struct request *r)
{
	const struct admission_req *ar = &r->adm;
	const struct wire_counts *c = &ar->counts;
	char limit[ADMISSION_TEXT_MAX] = "", rules[ADMISSION_TEXT_MAX] = "";

	if (c->refused_series > 0)
		snprintf(limit, sizeof(limit), "series limit reached: tenant "
			 "%s has its max_series of %llu series seen within "
			 "%llus; %llu new series refused (%llu samples)",
			 ar->ident.id, (unsigned long long)r->series.max,
			 (unsigned long long)(r->series.window_ms / 1000),
			 (unsigned long long)c->refused_series,
			 (unsigned long long)c->refused_samples);
	if (c->invalid_series > 0)
		snprintf(rules, sizeof(rules), "relabel rules left series "
			 "invalid (%s); %llu series refused (%llu samples)",
			 r->invalid_why, (unsigned long long)c->invalid_series,
			 (unsigned long long)c->invalid_samples);
	return admission_refuse(&r->adm, c->refused_series > 0 ?
				REFUSE_SERIES_LIMIT : REFUSE_RELABEL_INVALID,
				"%s%s%s, %llu series taken", limit,
				limit[0] && rules[0] ? "; " : "", rules,
				(unsigned long long)c->series);
}

/* ingest's hook for admission's per-series policies. */
static int series_pass(void *arg, const uint8_t *raw, size_t len,
		       const char **drop_label)
{
	struct request *r = arg;

	return admission_series_pass(&r->adm, raw, len, drop_label) ?
	       (int)r->adm.v.status : 0;
}

/* SHA-256 of tenant id, 0x00, body: the request's identity for dedup.
 * Returns 0 or -1 (then the request is not deduplicated). */
static int body_digest(const struct request *r, uint8_t out[32])
{
	return tenant_sha256_2(r->adm.ident.id, r->adm.ident.idlen + 1, r->body.p,
			       r->body.len, out);
}

/* Fills what the batch adds to the tenant's usage. */
static void batch_usage(struct request *r)
{
	struct batch *b = &r->batch;
	const struct admission_req *ar = &r->adm;
	const struct config_tenant *ct = ar->ident.conf;

	b->tenant_max_bytes = ct ? ct->max_buffer_bytes : 0;
	/* Decided now, with the configuration that accepted it. */
	snprintf(b->dest.account_id, sizeof(b->dest.account_id), "%s",
		 ct && ct->account_id ? ct->account_id : "");
	snprintf(b->dest.project_id, sizeof(b->dest.project_id), "%s",
		 ct && ct->project_id ? ct->project_id : "");
	b->usage.requests = 1;
	b->usage.series = ar->counts.series;
	b->usage.samples = ar->counts.samples;
	b->usage.histograms = ar->counts.histograms;
	b->usage.exemplars = ar->counts.exemplars;
	b->usage.metadata = ar->counts.metadata;
	b->usage.samples_dropped_by_rule = ar->counts.samples_dropped;
	b->usage.bytes_compressed = ar->body_len;
	b->usage.bytes_decoded = ar->decoded;
	b->hll = (const uint32_t *)r->hll.p;
	b->nhll = r->hll.len / sizeof(uint32_t);
	b->series = (const uint64_t *)r->series.notes.p;
	b->nseries = r->series.notes.len / sizeof(uint64_t);
	b->series_seen_ms = r->series.now_ms;
	b->series_window_ms = r->series.window_ms;
	memset(&b->ha, 0, sizeof(b->ha));
	if (ar->ha_set.cluster_label != NULL && ar->ha.kind == HA_PAIR) {
		b->ha.on = 1;
		memcpy(b->ha.cluster, ar->ha.cluster, ar->ha.clen);
		b->ha.clen = ar->ha.clen;
		memcpy(b->ha.replica, ar->ha.replica, ar->ha.rlen);
		b->ha.rlen = ar->ha.rlen;
		b->ha.failover_ms = ar->ha_set.failover_ms;
		b->ha.left_out = ar->counts.refused_samples +
				 ar->counts.invalid_samples;
	}
}

/* The body is complete: admit, decode, admit, hand it to the writer. */
static enum MHD_Result write_complete(struct http *h, struct request *r)
{
	struct admission_req *ar = &r->adm;
	const struct config *cfg = ar->cfg;
	struct ingest_req ir;
	struct relabel_pass rp;
	struct batch *b = &r->batch;
	uint8_t digest[32];
	char why[ADMISSION_TEXT_MAX];
	int status, has_digest;

	if (r->no_room)
		admission_refuse(ar, REFUSE_OVERLOADED, NULL);
	if (r->no_room ||
	    admission_body(&h->adm, ar, r->body.p, r->body.len, r->too_large))
		return refuse(h, r->conn, ar);
	has_digest = cfg->dedup_window_ms > 0 && body_digest(r, digest) == 0;
	memset(&ir, 0, sizeof(ir));
	ir.tenant = ar->ident.id;
	ir.tlen = ar->ident.idlen;
	ir.tenant_label = ar->ident.idlen > 0 ? cfg->tenant_label : NULL;
	ir.conf = ar->ident.conf;
	if (ar->ident.idlen > 0) {
		buf_init(&r->hll, (cfg->max_decoded_size / 4 + 1) * sizeof(uint32_t));
		ir.on_series = collect_series;
		ir.arg = r;
	}
	if (relabel_pass_init(&rp, cfg, ar->ident.conf))
		ir.relabel = &rp;
	if (admission_has_series_policies(ar)) {
		ir.series_pass = series_pass;
		ir.pass_arg = r;
	}
	if (series_limit_begin(h->d.sl, &r->series, ar->ident.id,
			       ar->ident.idlen, ar->ident.conf,
			       cfg->max_decoded_size / 4 + 1) != 0) {
		admission_release(ar);
		admission_refuse(ar, REFUSE_OVERLOADED, NULL);
		return refuse(h, r->conn, ar);
	}
	if (r->series.t != NULL) {
		ir.admit = admit_series;
		ir.arg = r;
	}
	status = ingest_body(cfg, &ir, &r->body, b, &ar->counts, &ar->decoded,
			     why, sizeof(why));
	if (ir.relabel != NULL)
		relabel_pass_done(&rp);
	admission_release(ar);
	if (status != 0) {
		series_limit_rollback(&r->series);
		if (!ar->v.refused)
			admission_decoded(ar, status, why);
		return refuse(h, r->conn, ar);
	}
	if (ar->counts.invalid_series > 0)
		snprintf(r->invalid_why, sizeof(r->invalid_why), "%.*s",
			 (int)sizeof(r->invalid_why) - 1, why);
	if (ar->counts.series == 0 && (ar->counts.refused_series > 0 ||
				       ar->counts.invalid_series > 0)) {
		/* Every series refused: nothing is stored. */
		batch_release(b);
		refuse_series(r);
		return refuse(h, r->conn, ar);
	}
	if (admission_tenant(&h->adm, ar, b->value_bytes)) {
		series_limit_rollback(&r->series);
		batch_release(b);
		return refuse(h, r->conn, ar);
	}
	/* A request stored in part (series over max_series or left invalid
	 * by relabel rules left out) is not remembered: sent again it must
	 * not pass as a duplicate with a 2xx while its refused series were
	 * never stored. */
	b->has_digest = has_digest && ar->counts.refused_series == 0 &&
			ar->counts.invalid_series == 0;
	memcpy(b->digest, digest, sizeof(digest));
	batch_usage(r);
	buf_free(&r->body);
	admission_body_release(ar);
	b->done = batch_done;
	b->arg = r;
	r->state = REQ_WAITING;
	atomic_fetch_add(&h->waiting, 1);
	MHD_suspend_connection(r->conn);
	writer_submit(h->d.w, b);
	return MHD_YES;
}

/* 204, counted; sent when answer is set. */
static enum MHD_Result answer_stored(struct http *h, struct request *r,
				     int answer)
{
	metrics_count_request(204);
	return answer ? MHD_queue_response(r->conn, 204, h->stored) : MHD_YES;
}

/* The refusal in r->adm, counted; sent when answer is set. */
static enum MHD_Result answer_refused(struct http *h, struct request *r,
				      int answer)
{
	if (answer)
		return refuse(h, r->conn, &r->adm);
	admission_count(&h->adm, &r->adm);
	return MHD_YES;
}

/* The writer is done with the request: counts what it did and answers
 * it; answer 0: the client went away before the answer (the connection
 * was closed on its resumption), so it is only counted, as it would
 * have been answered. */
static enum MHD_Result write_answer(struct http *h, struct request *r,
				    int answer)
{
	const struct admission_req *ar = &r->adm;
	enum MHD_Result ret;

	atomic_fetch_sub(&h->waiting, 1);
	r->state = REQ_ANSWERED;
	if (!answer)
		metric_add(&metrics.write_client_gone, 1);
	switch (r->batch.status) {
	case BATCH_DUPLICATE:
		/* Not stored now: what its series took or refreshed in the
		 * tenant's max_series table goes back (the first copy's
		 * series are the table's already). */
		series_limit_rollback(&r->series);
		admission_rate_give_back(&h->adm, &r->adm);
		metric_add(&metrics.duplicates, 1);
		ret = answer_stored(h, r, answer);
		break;
	case BATCH_HA_DEDUPLICATED:  /* counted by the writer */
		/* The other replica's: nothing of it stored, so its series
		 * take no room under max_series and leave the elected
		 * replica's to note them. */
		series_limit_rollback(&r->series);
		admission_rate_give_back(&h->adm, &r->adm);
		ret = answer_stored(h, r, answer);
		break;
	case BATCH_STORED:
		metric_add(&metrics.series_received, ar->counts.series);
		metric_add(&metrics.series_sorted, ar->counts.sorted);
		metric_add(&metrics.samples_received, ar->counts.samples);
		metric_add(&metrics.histograms_received, ar->counts.histograms);
		metric_add(&metrics.exemplars_received, ar->counts.exemplars);
		metric_add(&metrics.metadata_received, ar->counts.metadata);
		metric_add(&metrics.series_dropped_by_rule,
			   ar->counts.series_dropped);
		metric_add(&metrics.samples_dropped_by_rule,
			   ar->counts.samples_dropped);
		metric_add(&metrics.bytes_decoded, ar->decoded);
		metric_add(&metrics.bytes_received, ar->body_len);
		if (ar->counts.refused_series > 0 ||
		    ar->counts.invalid_series > 0) {
			/* Stored, but for the series over max_series or
			 * left invalid by relabel rules. */
			refuse_series(r);
			ret = answer_refused(h, r, answer);
			break;
		}
		ret = answer_stored(h, r, answer);
		break;
	default: /* BATCH_REFUSED: the writer's reason */
		series_limit_rollback(&r->series);
		admission_rate_give_back(&h->adm, &r->adm);
		admission_commit(&r->adm, r->batch.reason);
		ret = answer_refused(h, r, answer);
		break;
	}
	batch_release(&r->batch);
	return ret;
}

enum MHD_Result http_write_handle(struct http *h, struct MHD_Connection *conn,
				  const char *method, const char *upload,
				  size_t *upload_size, void **con_cls)
{
	struct request *r = *con_cls;
	struct admission_headers hd;
	const struct config *cfg;

	if (r == NULL) {
		if ((r = calloc(1, sizeof(*r))) == NULL)
			return MHD_NO;
		cfg = config_hold(); /* released in on_completed */
		r->adm.cfg = cfg;
		hd.method = method;
		hd.content_type = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
							      "Content-Type");
		hd.content_encoding = MHD_lookup_connection_value(conn,
					MHD_HEADER_KIND, "Content-Encoding");
		hd.content_length = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
								"Content-Length");
		hd.authorization = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
							       "Authorization");
		hd.tenant = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
							cfg->tenant_header);
		if (admission_headers(&h->adm, &r->adm, &hd) ||
		    admission_body_bytes(&r->adm, hd.content_length ?
					 strtoull(hd.content_length, NULL, 10) : 0)) {
			enum MHD_Result ret = refuse(h, conn, &r->adm);
			admission_body_release(&r->adm);
			config_release(cfg);
			free(r);
			return ret;
		}
		r->h = h;
		r->conn = conn;
		r->state = REQ_RECEIVING;
		buf_init(&r->body, cfg->max_body_size);
		if (hd.content_length != NULL)
			buf_reserve(&r->body, strtoull(hd.content_length, NULL, 10));
		*con_cls = r;
		return MHD_YES;
	}
	if (r->state == REQ_RECEIVING && *upload_size > 0) {
		if (!r->too_large && !r->no_room &&
		    admission_body_bytes(&r->adm, r->body.len + *upload_size))
			r->no_room = 1;
		if (!r->too_large && !r->no_room &&
		    buf_append(&r->body, upload, *upload_size) < 0)
			r->too_large = 1;
		if (r->too_large || r->no_room) {
			buf_free(&r->body);
			admission_body_release(&r->adm);
		}
		*upload_size = 0;
		return MHD_YES;
	}
	if (r->state == REQ_RECEIVING)
		return write_complete(h, r);
	if (r->state == REQ_DONE)
		return write_answer(h, r, 1);
	return MHD_YES;
}

void http_write_end(void *req)
{
	struct request *r = req;

	/* Resumed, but its client had closed the connection: libmicrohttpd
	 * ends it without calling the handler again. The writer's verdict
	 * still counts, and http_stop waits for no answer to come. */
	if (r->state == REQ_DONE)
		write_answer(r->h, r, 0);

	admission_release(&r->adm);
	admission_body_release(&r->adm);
	config_release(r->adm.cfg);
	batch_release(&r->batch);
	buf_free(&r->body);
	buf_free(&r->hll);
	series_limit_end(&r->series);
	free(r);
}
