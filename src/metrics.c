/*
 * metrics.c - counters and their text exposition (see metrics.h).
 */
#include "metrics.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "ha.h"
#include "queue.h"
#include "tenant_rows.h"
#include "tenant_stats.h"
#include "version.h"


struct metrics metrics;

/* Upper bounds of the latency buckets, in microseconds. */
static const uint64_t lat_bounds_us[METRICS_LAT_BUCKETS] = {
	250, 500, 1000, 2000, 4000, 8000, 16000, 32000, 64000, 128000,
	256000, 1000000, 4000000, 16000000,
};

static const char *const reason_names[REFUSE_NREASONS] = {
	"bad_request", "unauthorized", "method", "too_large", "unsupported",
	"rate_limited", "tenant_buffer_full", "buffer_full", "overloaded",
	"storage_error", "shutting_down", "too_many_tenants", "series_limit",
	"relabel_invalid",
};

const char *refuse_reason_name(enum refuse_reason r)
{
	return r < REFUSE_NREASONS ? reason_names[r] : "unknown";
}

void latency_observe(struct latency *l, uint64_t us)
{
	for (int i = 0; i < METRICS_LAT_BUCKETS; i++) {
		if (us <= lat_bounds_us[i]) {
			metric_add(&l->buckets[i], 1);
			break;
		}
	}
	metric_add(&l->count, 1);
	metric_add(&l->sum_us, us);
}

void metrics_count_request(unsigned status)
{
	if (status < 600)
		metric_add(&metrics.requests[status], 1);
}

static int counter(struct buf *out, const char *name, const char *help,
		   _Atomic uint64_t *c)
{
	return buf_printf(out, "# HELP %s %s\n# TYPE %s counter\n%s %" PRIu64 "\n",
			  name, help, name, name, metric_get(c));
}

static int gauge(struct buf *out, const char *name, const char *help,
		 double v)
{
	return buf_printf(out, "# HELP %s %s\n# TYPE %s gauge\n%s %.17g\n",
			  name, help, name, name, v);
}

static int by_code(struct buf *out, const char *name, const char *help,
		   _Atomic uint64_t *codes, const char *zero_label)
{
	int rc = buf_printf(out, "# HELP %s %s\n# TYPE %s counter\n", name, help,
			    name);

	for (int i = 0; i < 600 && rc == 0; i++) {
		uint64_t v = metric_get(&codes[i]);
		if (v == 0)
			continue;
		if (i == 0)
			rc = buf_printf(out, "%s{code=\"%s\"} %" PRIu64 "\n", name,
					zero_label, v);
		else
			rc = buf_printf(out, "%s{code=\"%d\"} %" PRIu64 "\n", name,
					i, v);
	}
	return rc;
}

static int histogram(struct buf *out, const char *name, const char *help,
		     struct latency *l)
{
	uint64_t cum = 0;
	int rc = buf_printf(out, "# HELP %s %s\n# TYPE %s histogram\n", name, help,
			    name);

	for (int i = 0; i < METRICS_LAT_BUCKETS && rc == 0; i++) {
		cum += metric_get(&l->buckets[i]);
		rc = buf_printf(out, "%s_bucket{le=\"%g\"} %" PRIu64 "\n", name,
				(double)lat_bounds_us[i] / 1e6, cum);
	}
	if (rc == 0)
		rc = buf_printf(out, "%s_bucket{le=\"+Inf\"} %" PRIu64 "\n"
				"%s_sum %.6f\n%s_count %" PRIu64 "\n", name,
				metric_get(&l->count), name,
				(double)metric_get(&l->sum_us) / 1e6, name,
				metric_get(&l->count));
	return rc;
}

static int refused(struct buf *out)
{
	int rc = buf_printf(out,
		"# HELP relay_requests_refused_total Requests refused, by reason.\n"
		"# TYPE relay_requests_refused_total counter\n");

	for (int i = 0; i < REFUSE_NREASONS && rc == 0; i++)
		rc = buf_printf(out, "relay_requests_refused_total{reason=\"%s\"} %"
				PRIu64 "\n", reason_names[i],
				metric_get(&metrics.refused[i]));
	if (rc == 0)
		rc = buf_printf(out,
			"# HELP relay_samples_refused_total Samples in refused requests "
			"that were decoded, by reason.\n"
			"# TYPE relay_samples_refused_total counter\n");
	for (int i = 0; i < REFUSE_NREASONS && rc == 0; i++)
		rc = buf_printf(out, "relay_samples_refused_total{reason=\"%s\"} %"
				PRIu64 "\n", reason_names[i],
				metric_get(&metrics.samples_refused[i]));
	return rc;
}

/* The per-tenant series: name, help, type and which number they show. */
static const struct {
	const char *name, *help, *type;
} tenant_series[] = {
	{"relay_tenant_requests_total", "Write requests made durable, by tenant.", "counter"},
	{"relay_tenant_samples_received_total", "Samples made durable, by tenant.", "counter"},
	{"relay_tenant_series_received_total", "Series made durable, by tenant.", "counter"},
	{"relay_tenant_bytes_received_total", "Compressed bytes made durable, by tenant.", "counter"},
	{"relay_tenant_duplicate_requests_total", "Resent requests not stored again, by tenant.", "counter"},
	{"relay_tenant_requests_refused_total", "Requests refused, by tenant and reason.", "counter"},
	{"relay_tenant_samples_refused_total", "Decoded samples in refused requests, by tenant.", "counter"},
	{"relay_tenant_samples_forwarded_total", "Samples the upstream acknowledged, by tenant.", "counter"},
	{"relay_tenant_buffer_samples", "Samples waiting in the buffer, by tenant.", "gauge"},
	{"relay_tenant_buffer_bytes", "Bytes of the buffer's entries, by tenant.", "gauge"},
	{"relay_tenant_buffer_oldest_age_seconds", "Age of the tenant's oldest entry (0 if none).", "gauge"},
	{"relay_ha_deduplicated_samples_total", "Samples from HA replicas not elected, answered 2xx and not stored, by tenant.", "counter"},
	{"relay_ha_deduplicated_requests_total", "Requests from HA replicas not elected, by tenant.", "counter"},
	{"relay_tenant_samples_dropped_by_rule_total", "Samples of series relabel rules dropped in stored requests, by tenant.", "counter"},
};

static int render_row(struct buf *out, int field, const struct tenant_row *t)
{
	const struct tenant_counters *c = &t->c;
	const char *name = tenant_series[field].name;
	uint64_t v = 0;
	int rc = 0;

	switch (field) {
	case 0: v = c->requests; break;
	case 1: v = c->samples; break;
	case 2: v = c->series; break;
	case 3: v = c->bytes; break;
	case 4: v = c->duplicates; break;
	case 5:
		for (int i = 0; i < REFUSE_NREASONS; i++) {
			if (c->refused[i] == 0)
				continue;
			rc |= buf_printf(out, "%s{tenant=\"%.*s\",reason=\"%s\"} %"
					 PRIu64 "\n", name, (int)t->idlen, t->id,
					 reason_names[i], c->refused[i]);
		}
		return rc;
	case 6: v = c->samples_refused; break;
	case 7: v = c->samples_forwarded; break;
	case 8: v = t->samples; break;
	case 9: v = t->bytes; break;
	case 10:
		v = t->entries && t->oldest_ms ?
		    clock_age_ms(t->oldest_ms) / 1000 : 0;
		break;
	case 11: v = c->ha_samples_deduplicated; break;
	case 12: v = c->ha_requests_deduplicated; break;
	case 13: v = c->samples_dropped_by_rule; break;
	}
	return buf_printf(out, "%s{tenant=\"%.*s\"} %" PRIu64 "\n", name,
			  (int)t->idlen, t->id, v);
}

static int render_tenants(struct buf *out, struct queue *q)
{
	struct tenant_rows rs;
	size_t n = sizeof(tenant_series) / sizeof(tenant_series[0]);
	int rc;

	tenant_rows_init(&rs, sizeof(struct tenant_row));
	rc = tenant_rows_collect(&rs, q);
	for (size_t i = 0; i < n && rc == 0; i++) {
		rc |= buf_printf(out, "# HELP %s %s\n# TYPE %s %s\n",
				 tenant_series[i].name, tenant_series[i].help,
				 tenant_series[i].name, tenant_series[i].type);
		for (size_t j = 0; j < rs.n; j++)
			rc |= render_row(out, (int)i, tenant_rows_at(&rs, j));
	}
	tenant_rows_free(&rs);
	return rc ? -1 : 0;
}

/* Appends s[0..n) as a label value of the text format (\\, \" and \n
 * escaped). */
static int label_value(struct buf *out, const char *s, size_t n)
{
	int rc = 0;

	for (size_t i = 0; i < n && rc == 0; i++) {
		if (s[i] == '\\' || s[i] == '"')
			rc = buf_printf(out, "\\%c", s[i]);
		else if (s[i] == '\n')
			rc = buf_printf(out, "\\n");
		else
			rc = buf_append(out, &s[i], 1);
	}
	return rc;
}

struct ha_rows {
	struct buf *out;
	int changes;             /* 0: relay_ha_elected_replica; 1: changes */
	int rc;
};

static void ha_row(void *arg, const struct ha_key *k, uint64_t changes)
{
	struct ha_rows *hr = arg;
	struct buf *out = hr->out;

	hr->rc |= buf_printf(out, "%s{tenant=\"", hr->changes ?
			     "relay_ha_leader_changes_total" :
			     "relay_ha_elected_replica");
	hr->rc |= label_value(out, k->tenant, k->tlen);
	hr->rc |= buf_printf(out, "\",cluster=\"");
	hr->rc |= label_value(out, k->cluster, k->clen);
	if (hr->changes) {
		hr->rc |= buf_printf(out, "\"} %" PRIu64 "\n", changes);
		return;
	}
	hr->rc |= buf_printf(out, "\",replica=\"");
	hr->rc |= label_value(out, k->replica, k->rlen);
	hr->rc |= buf_printf(out, "\"} 1\n");
}

/* The HA elections (ha.h): one series per tenant and cluster. */
static int render_ha(struct buf *out)
{
	struct ha_rows hr = {out, 0, 0};

	hr.rc |= buf_printf(out, "# HELP relay_ha_elected_replica The HA replica "
			    "whose requests are stored, by tenant and cluster.\n"
			    "# TYPE relay_ha_elected_replica gauge\n");
	ha_each_elected(ha_row, &hr);
	hr.changes = 1;
	hr.rc |= buf_printf(out, "# HELP relay_ha_leader_changes_total Times a "
			    "replica was elected (the first time, and each "
			    "fail-over), by tenant and cluster.\n"
			    "# TYPE relay_ha_leader_changes_total counter\n");
	ha_each_elected(ha_row, &hr);
	return hr.rc ? -1 : 0;
}

int metrics_render(struct buf *out, struct queue *q)
{
	struct metrics *m = &metrics;
	struct queue_totals t;
	double age = 0;
	int rc = 0;

	rc |= buf_printf(out, "# HELP relay_build_info Version of the relay.\n"
			 "# TYPE relay_build_info gauge\n"
			 "relay_build_info{version=\"%s\"} 1\n", RELAY_VERSION);
	rc |= gauge(out, "relay_start_time_seconds", "Unix time the relay started.",
		    (double)metric_get(&m->start_time_s));
	rc |= gauge(out, "relay_config_last_reload_successful",
		    "Whether the last reload of relay.conf took (0: it failed, "
		    "the configuration before it stays).",
		    metric_get(&m->reload_failed) ? 0.0 : 1.0);
	rc |= gauge(out, "relay_config_last_reload_success_timestamp_seconds",
		    "Unix time of the last reload that took (the start until "
		    "then).", (double)(metric_get(&m->reload_success_s) ?
				       metric_get(&m->reload_success_s) :
				       metric_get(&m->start_time_s)));
	rc |= by_code(out, "relay_requests_total",
		      "Write requests answered, by HTTP status.", m->requests, "0");
	rc |= refused(out);
	rc |= counter(out, "relay_series_received_total",
		      "Series in requests made durable.", &m->series_received);
	rc |= counter(out, "relay_series_sorted_total",
		      "Series made durable whose labels came out of order "
		      "(sorted by the relay).", &m->series_sorted);
	rc |= counter(out, "relay_samples_received_total",
		      "Samples in requests made durable.", &m->samples_received);
	rc |= counter(out, "relay_series_dropped_by_rule_total",
		      "Series relabel rules dropped from requests made durable.",
		      &m->series_dropped_by_rule);
	rc |= counter(out, "relay_samples_dropped_by_rule_total",
		      "Samples and histograms of the series relabel rules dropped "
		      "from requests made durable.", &m->samples_dropped_by_rule);
	rc |= counter(out, "relay_relabel_cache_hits_total",
		      "Series whose relabel result came from relabel_cache.",
		      &m->relabel_cache_hits);
	rc |= counter(out, "relay_relabel_cache_misses_total",
		      "Series looked up in relabel_cache and not found.",
		      &m->relabel_cache_misses);
	rc |= counter(out, "relay_relabel_regex_limits_total",
		      "Regex matches of relabel rules that PCRE2's limits "
		      "stopped; each taken as no match.",
		      &m->relabel_regex_limits);
	rc |= gauge(out, "relay_relabel_cache_bytes",
		    "Bytes the server threads' relabel caches hold, as counted "
		    "against relabel_cache.",
		    (double)metric_get(&m->relabel_cache_bytes));
	rc |= counter(out, "relay_histograms_received_total",
		      "Native histogram samples in requests made durable.",
		      &m->histograms_received);
	rc |= counter(out, "relay_exemplars_received_total",
		      "Exemplars in requests made durable.", &m->exemplars_received);
	rc |= counter(out, "relay_metadata_received_total",
		      "Metadata entries in requests made durable.",
		      &m->metadata_received);
	rc |= counter(out, "relay_bytes_received_total",
		      "Compressed body bytes of requests made durable.",
		      &m->bytes_received);
	rc |= counter(out, "relay_decoded_bytes_received_total",
		      "Decoded bytes of requests made durable.", &m->bytes_decoded);
	rc |= counter(out, "relay_duplicate_requests_total",
		      "Resent requests acknowledged but not stored again.",
		      &m->duplicates);
	rc |= counter(out, "relay_write_client_gone_total",
		      "Write requests whose client closed the connection before "
		      "the answer; stored or refused all the same, and counted "
		      "so.", &m->write_client_gone);
	rc |= counter(out, "relay_usage_exports_total",
		      "Batches of usage series (usage_export.h) stored.",
		      &m->usage_exports);
	rc |= counter(out, "relay_usage_export_failures_total",
		      "Usage exports not stored (the next one carries the same "
		      "totals).", &m->usage_export_failures);
	rc |= counter(out, "relay_answers_cut_total",
		      "Streamed answers (usage reports, set-aside listings) "
		      "cut short by a storage error.", &m->answers_cut);
	if (q != NULL) {
		queue_totals(q, &t);
		if (t.oldest_ms != 0)
			age = (double)clock_age_ms(t.oldest_ms) / 1000;
		rc |= gauge(out, "relay_buffer_entries", "Entries in the buffer.",
			    (double)t.entries);
		rc |= gauge(out, "relay_buffer_bytes",
			    "Bytes of the entries in the buffer.", (double)t.bytes);
		rc |= gauge(out, "relay_buffer_samples",
			    "Samples waiting in the buffer.", (double)t.samples);
		rc |= gauge(out, "relay_buffer_oldest_age_seconds",
			    "Age of the oldest entry in the buffer (0 if empty).", age);
		rc |= gauge(out, "relay_upstream_tenants_backing_off",
			    "Tenants whose delivery is waiting to retry: in "
			    "backoff, or for their upstream's next probe.",
			    (double)t.tenants_waiting);
		rc |= render_tenants(out, q);
	}
	rc |= counter(out, "relay_samples_forwarded_total",
		      "Samples the upstream acknowledged.", &m->samples_forwarded);
	rc |= counter(out, "relay_samples_forwarded_kept_destination_total",
		      "Samples delivered under the account and project ids they "
		      "were accepted with, which a reload has since changed or "
		      "removed.", &m->samples_forwarded_kept_dest);
	rc |= counter(out, "relay_series_forwarded_total",
		      "Series the upstream acknowledged.", &m->series_forwarded);
	rc |= counter(out, "relay_bytes_forwarded_total",
		      "Compressed bytes the upstream acknowledged.",
		      &m->bytes_forwarded);
	rc |= by_code(out, "relay_upstream_requests_total",
		      "Requests to the upstream, by HTTP status (error: no answer).",
		      m->upstream_requests, "error");
	rc |= by_code(out, "relay_upstream_misconfigured_total",
		      "Upstream answers that say the URL or credentials are "
		      "wrong (3xx, 401, 403, 404, ...), by HTTP status; the "
		      "data is kept and retried.",
		      m->upstream_misconfigured, "error");
	rc |= counter(out, "relay_upstream_retries_total",
		      "Upstream requests that failed and will be retried.",
		      &m->upstream_retries);
	rc |= gauge(out, "relay_upstream_up",
		    "1 while every upstream answers; 0 while one is down and "
		    "probed with one request at a time.",
		    metric_get(&m->upstreams_down) ? 0.0 : 1.0);
	rc |= counter(out, "relay_upstream_probes_total",
		      "Requests sent as the one probe of an upstream that is down.",
		      &m->upstream_probes);
	rc |= counter(out, "relay_upstream_outages_total",
		      "Times an upstream went down (5xx, 429, 408 or no answer).",
		      &m->upstream_outages);
	rc |= counter(out, "relay_batches_set_aside_total",
		      "Entries the upstream refused for good, or that could "
		      "not be read to be sent, kept apart.",
		      &m->batches_set_aside);
	rc |= counter(out, "relay_batches_malformed_total",
		      "Entries set aside unsent: their stored block is "
		      "missing or malformed.", &m->batches_malformed);
	rc |= counter(out, "relay_samples_set_aside_total",
		      "Samples in entries set aside.", &m->samples_set_aside);
	rc |= counter(out, "relay_commits_total",
		      "LMDB transactions committed and synced.", &m->commits);
	rc |= counter(out, "relay_commit_requests_total",
		      "Write requests made durable by those commits.",
		      &m->commit_batches);
	rc |= counter(out, "relay_commit_errors_total",
		      "LMDB transactions that failed.", &m->commit_errors);
	rc |= histogram(out, "relay_commit_duration_seconds",
			"Time of one LMDB commit including the sync.",
			&m->commit_latency);
	rc |= histogram(out, "relay_upstream_request_duration_seconds",
			"Time of one upstream request.", &m->upstream_latency);
	rc |= gauge(out, "relay_storage_used_bytes",
		    "Bytes of LMDB pages in use (what max_size limits).",
		    (double)metric_get(&m->storage_used_bytes));
	rc |= buf_printf(out, "# HELP relay_samples_dropped_total Samples dropped "
			 "from the buffer, by reason.\n"
			 "# TYPE relay_samples_dropped_total counter\n"
			 "relay_samples_dropped_total{reason=\"full\"} %" PRIu64 "\n"
			 "relay_samples_dropped_total{reason=\"age\"} %" PRIu64 "\n",
			 metric_get(&m->samples_dropped_full),
			 metric_get(&m->samples_dropped_age));
	rc |= gauge(out, "relay_inflight_decoded_bytes",
		    "Decoded bytes of requests being handled.",
		    (double)metric_get(&m->inflight_bytes));
	rc |= gauge(out, "relay_inflight_body_bytes",
		    "Bytes held for request bodies being received.",
		    (double)metric_get(&m->inflight_body_bytes));
	rc |= gauge(out, "relay_upstream_requests_in_flight",
		    "Upstream requests being sent or waiting for their answer.",
		    (double)metric_get(&m->upstream_inflight));
	rc |= gauge(out, "relay_connections_open",
		    "Client connections the relay holds.",
		    (double)metric_get(&m->connections_open));
	rc |= buf_printf(out, "# HELP relay_connections_closed_total Client "
			 "connections the relay closed itself, by reason.\n"
			 "# TYPE relay_connections_closed_total counter\n"
			 "relay_connections_closed_total{reason=\"header_timeout\"} %" PRIu64 "\n"
			 "relay_connections_closed_total{reason=\"slow_body\"} %" PRIu64 "\n"
			 "relay_connections_closed_total{reason=\"per_ip\"} %" PRIu64 "\n",
			 metric_get(&m->conn_closed[CONN_CLOSE_HEADER_TIMEOUT]),
			 metric_get(&m->conn_closed[CONN_CLOSE_SLOW_BODY]),
			 metric_get(&m->conn_closed[CONN_CLOSE_PER_IP]));
	rc |= render_ha(out);
	return rc ? -1 : 0;
}
