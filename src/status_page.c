/*
 * status_page.c - the HTML status page at GET / (see status_page.h).
 *
 * Everything is read fresh for each view: the queue and the counters in
 * memory, the usage records and set-aside entries in short read
 * transactions. The only state kept between views is the snapshot of each
 * tenant's sample counter that the samples/s column is measured against.
 */
#include "status_page.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "err.h"
#include "metrics.h"
#include "queue.h"
#include "store.h"
#include "tenant_rows.h"
#include "tenant_stats.h"
#include "upstream_status.h"
#include "usage.h"
#include "version.h"

#define HOURS 24
#define CHART_LINES 8
#define SNAPSHOT_MIN_MS 10000   /* a rate is measured over 10 s at least */
#define SETASIDE_WALK_MAX 100000

/* A tenant's row: the counters and buffer columns (t.c.samples, stored
 * since start; t.bytes, in the buffer), then the page's own. */
struct row {
	struct tenant_row t;
	double rate;             /* samples/s */
	uint64_t refused;        /* requests, current and previous hour */
	uint64_t set_aside;      /* entries set aside in the last hour */
	uint64_t hour[HOURS];    /* samples accepted per hour, oldest first */
	uint64_t total;          /* of hour[] */
};

struct rows {
	struct tenant_rows t;    /* of struct row */
	uint64_t first_hour;     /* hour[0]'s */
	uint64_t now_ms;
};

/* The counters of the previous view, for samples/s. */
struct snap {
	char id[TENANT_ID_MAX + 1];
	size_t idlen;
	uint64_t samples;
};
static pthread_mutex_t snap_lock = PTHREAD_MUTEX_INITIALIZER;
static struct snap *snaps;
static size_t nsnaps;
static uint64_t snap_mono_ms;

int status_page_escape(struct buf *out, const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		const char *e = NULL;
		switch (s[i]) {
		case '&': e = "&amp;"; break;
		case '<': e = "&lt;"; break;
		case '>': e = "&gt;"; break;
		case '"': e = "&quot;"; break;
		case '\'': e = "&#39;"; break;
		default: break;
		}
		if (e != NULL ? buf_append(out, e, strlen(e)) :
				buf_append(out, &s[i], 1))
			return -1;
	}
	return 0;
}

static struct row *row_at(const struct rows *rs, size_t i)
{
	return (struct row *)(void *)tenant_rows_at(&rs->t, i);
}

static struct row *row_get(struct rows *rs, const char *id, size_t idlen)
{
	return (struct row *)(void *)tenant_rows_get(&rs->t, id, idlen);
}

static int add_usage(void *arg, const char *tenant, size_t tlen, uint64_t hour,
		     const void *val, size_t len)
{
	struct rows *rs = arg;
	struct usage_rec rec;
	struct row *r;
	uint64_t i = (hour - rs->first_hour) / 3600;

	if (i >= HOURS || usage_rec_read(val, len, &rec) != 0 ||
	    (r = row_get(rs, tenant, tlen)) == NULL)
		return rs->t.nomem ? ERR_NOMEM : 0;
	r->hour[i] += rec.samples;
	r->total += rec.samples;
	if (i >= HOURS - 2)
		for (int k = 0; k < REFUSE_NREASONS; k++)
			r->refused += rec.requests_refused[k];
	return 0;
}

static int add_setaside(void *arg, const struct setaside_item *it)
{
	struct rows *rs = arg;
	struct row *r;

	if (it->set_aside_ms + 3600 * 1000 < rs->now_ms)
		return 0;
	if ((r = row_get(rs, it->tenant, it->tlen)) != NULL)
		r->set_aside++;
	return rs->t.nomem ? ERR_NOMEM : 0;
}

/* Fills the samples/s column against the previous snapshot, and takes a
 * new one when that is old enough. Returns the window in ms. */
static uint64_t measure_rates(struct rows *rs)
{
	uint64_t now = clock_mono_ms(), since, start_ms;
	struct snap *s;

	pthread_mutex_lock(&snap_lock);
	start_ms = metric_get(&metrics.start_time_s) * 1000;
	since = snaps != NULL ? now - snap_mono_ms :
		(rs->now_ms > start_ms ? rs->now_ms - start_ms : 0);
	for (size_t i = 0; i < rs->t.n; i++) {
		struct row *r = row_at(rs, i);
		uint64_t before = 0, samples = r->t.c.samples;
		for (size_t j = 0; snaps != NULL && j < nsnaps; j++)
			if (snaps[j].idlen == r->t.idlen &&
			    memcmp(snaps[j].id, r->t.id, snaps[j].idlen) == 0)
				before = snaps[j].samples;
		r->rate = since > 0 && samples >= before ?
			(double)(samples - before) * 1000.0 / (double)since : 0.0;
	}
	if ((snaps == NULL || now - snap_mono_ms >= SNAPSHOT_MIN_MS) &&
	    (s = calloc(rs->t.n + 1, sizeof(*s))) != NULL) {
		for (size_t i = 0; i < rs->t.n; i++) {
			const struct row *r = row_at(rs, i);
			memcpy(s[i].id, r->t.id, r->t.idlen);
			s[i].idlen = r->t.idlen;
			s[i].samples = r->t.c.samples;
		}
		free(snaps);
		snaps = s;
		nsnaps = rs->t.n;
		snap_mono_ms = now;
	}
	pthread_mutex_unlock(&snap_lock);
	return since;
}

static int by_total(const void *a, const void *b)
{
	const struct row *x = a, *y = b;
	int c;

	if (x->total != y->total)
		return x->total < y->total ? 1 : -1;
	if ((c = memcmp(x->t.id, y->t.id, x->t.idlen < y->t.idlen ?
			x->t.idlen : y->t.idlen)) != 0)
		return c;
	return x->t.idlen < y->t.idlen ? -1 : x->t.idlen > y->t.idlen;
}

/* "2026-12-06T10:00:00Z" */
static void fmt_time(char *out, size_t len, uint64_t ms)
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(out, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* "3d 4h", "2h 5m", "7m 3s", "12s" */
static void fmt_age(char *out, size_t len, uint64_t s)
{
	if (s >= 86400)
		snprintf(out, len, "%" PRIu64 "d %" PRIu64 "h", s / 86400, s % 86400 / 3600);
	else if (s >= 3600)
		snprintf(out, len, "%" PRIu64 "h %" PRIu64 "m", s / 3600, s % 3600 / 60);
	else if (s >= 60)
		snprintf(out, len, "%" PRIu64 "m %" PRIu64 "s", s / 60, s % 60);
	else
		snprintf(out, len, "%" PRIu64 "s", s);
}

static int put_when(struct buf *out, uint64_t ms, uint64_t now_ms)
{
	char t[32], age[32];

	if (ms == 0)
		return buf_printf(out, "never since start");
	fmt_time(t, sizeof(t), ms);
	fmt_age(age, sizeof(age), now_ms > ms ? (now_ms - ms) / 1000 : 0);
	return buf_printf(out, "%s (%s ago)", t, age);
}

/* The kind of a failed answer, all the page shows of it without the
 * admin token: the reason may name URLs, hosts or hold a response body. */
static const char *error_class(long status)
{
	if (status == 0)
		return "no answer";
	if (status == 429)
		return "rate limited";
	if (status >= 400 && status < 500)
		return "refused";
	if (status >= 500 && status < 600)
		return "server error";
	return "unexpected answer";
}

static int render_head(struct buf *out, const struct config *cfg,
		       struct queue *q, uint64_t now_ms, int admin)
{
	struct upstream_status us;
	struct queue_totals tot;
	uint64_t start_s = metric_get(&metrics.start_time_s);
	uint64_t used = metric_get(&metrics.storage_used_bytes);
	char up[32], t[32], age[32];
	int rc = 0;

	upstream_status_get(&us);
	queue_totals(q, &tot);
	fmt_age(up, sizeof(up), now_ms / 1000 > start_s ? now_ms / 1000 - start_s : 0);
	fmt_time(t, sizeof(t), start_s * 1000);
	rc |= buf_printf(out,
		"<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\">"
		"<title>relay</title><style>"
		"body{font:14px sans-serif;margin:2em;color:#222}"
		"table{border-collapse:collapse;margin:.5em 0 1.5em}"
		"th,td{padding:.25em .8em;border-bottom:1px solid #ddd;text-align:left}"
		"td.n{text-align:right;font-variant-numeric:tabular-nums}"
		".bad{color:#b00}.ok{color:#070}"
		"</style></head><body>\n"
		"<h1>relay %s</h1>\n<p>Up <b>%s</b>, since %s.</p>\n",
		RELAY_VERSION, up, t);
	rc |= buf_printf(out, "<h2>Upstream</h2>\n<table>\n<tr><th>state</th><td>");
	if (tot.tenants_waiting > 0)
		rc |= buf_printf(out, "<span class=\"bad\">backing off</span> "
				 "(%u tenants waiting to retry%s)", tot.tenants_waiting,
				 metric_get(&metrics.upstreams_down) > 0 ?
				 "; upstream down, probed" : "");
	else if (tot.entries > 0)
		rc |= buf_printf(out, "<span class=\"ok\">delivering</span>");
	else
		rc |= buf_printf(out, "<span class=\"ok\">up to date</span> "
				 "(nothing buffered)");
	rc |= buf_printf(out, "</td></tr>\n<tr><th>last success</th><td>");
	rc |= put_when(out, us.last_ok_ms, now_ms);
	rc |= buf_printf(out, "</td></tr>\n<tr><th>last error</th><td>");
	rc |= put_when(out, us.last_error_ms, now_ms);
	if (us.last_error_ms != 0) {
		if (us.last_error_status != 0)
			rc |= buf_printf(out, ": status %ld (%s)",
					 us.last_error_status,
					 error_class(us.last_error_status));
		else
			rc |= buf_printf(out, ": %s", error_class(0));
		/* The text only to admin: it may name URLs and hosts. */
		if (admin && us.last_error[0] != '\0') {
			rc |= buf_printf(out, ", <code>");
			rc |= status_page_escape(out, us.last_error,
						 strlen(us.last_error));
			rc |= buf_printf(out, "</code>");
		}
	}
	fmt_age(age, sizeof(age), tot.oldest_ms ? clock_age_ms(tot.oldest_ms) / 1000 : 0);
	rc |= buf_printf(out, "</td></tr>\n</table>\n<h2>Buffer</h2>\n<table>\n"
		"<tr><th>entries</th><td class=\"n\">%" PRIu64 "</td></tr>\n"
		"<tr><th>bytes</th><td class=\"n\">%" PRIu64 "</td></tr>\n"
		"<tr><th>samples</th><td class=\"n\">%" PRIu64 "</td></tr>\n"
		"<tr><th>oldest entry</th><td class=\"n\">%s</td></tr>\n"
		"<tr><th>fill of max_size</th><td class=\"n\">%.1f%% "
		"(%" PRIu64 " of %" PRIu64 " bytes)</td></tr>\n</table>\n",
		tot.entries, tot.bytes, tot.samples, tot.oldest_ms ? age : "-",
		cfg->max_size ? 100.0 * (double)used / (double)cfg->max_size : 0.0,
		used, cfg->max_size);
	return rc ? ERR_NOMEM : 0;
}

static const char *const palette[CHART_LINES + 1] = {
	"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b",
	"#e377c2", "#17becf", "#7f7f7f"};

/* One polyline of 24 points. */
static int chart_line(struct buf *out, const uint64_t *v, uint64_t max,
		      const char *color)
{
	int rc = buf_printf(out, "<polyline fill=\"none\" stroke=\"%s\" "
			    "stroke-width=\"2\" points=\"", color);

	for (int i = 0; i < HOURS; i++)
		rc |= buf_printf(out, "%s%d,%.1f", i ? " " : "", 40 + i * 28,
				 180.0 - 160.0 * (double)v[i] / (double)max);
	return rc | buf_printf(out, "\"/>\n");
}

static int render_chart(struct buf *out, const struct rows *rs)
{
	uint64_t max = 1, rest[HOURS] = {0};
	size_t n = rs->t.n, lines = n < CHART_LINES ? n : CHART_LINES;
	char t[32];
	int rc = 0;

	for (size_t i = 0; i < n; i++)
		for (int h = 0; h < HOURS; h++) {
			const uint64_t *hour = row_at(rs, i)->hour;
			if (i >= CHART_LINES)
				rest[h] += hour[h];
			if (hour[h] > max)
				max = hour[h];
		}
	for (int h = 0; h < HOURS; h++)
		if (rest[h] > max)
			max = rest[h];
	fmt_time(t, sizeof(t), rs->first_hour * 1000);
	rc |= buf_printf(out, "<h2>Accepted samples per hour, last 24 hours</h2>\n"
		"<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"720\" "
		"height=\"200\" role=\"img\" aria-label=\"samples per hour\">\n"
		"<rect x=\"40\" y=\"20\" width=\"644\" height=\"160\" fill=\"#fafafa\" "
		"stroke=\"#ccc\"/>\n<text x=\"2\" y=\"24\" font-size=\"11\">%" PRIu64
		"</text>\n<text x=\"2\" y=\"184\" font-size=\"11\">0</text>\n"
		"<text x=\"40\" y=\"196\" font-size=\"11\">%s</text>\n"
		"<text x=\"684\" y=\"196\" font-size=\"11\" text-anchor=\"end\">"
		"this hour</text>\n", max, t);
	for (size_t i = 0; i < lines; i++)
		rc |= chart_line(out, row_at(rs, i)->hour, max, palette[i]);
	if (n > CHART_LINES)
		rc |= chart_line(out, rest, max, palette[CHART_LINES]);
	rc |= buf_printf(out, "</svg>\n<p>");
	for (size_t i = 0; i < lines; i++) {
		rc |= buf_printf(out, "<span style=\"color:%s\">&#9632;</span> ",
				 palette[i]);
		rc |= status_page_escape(out, row_at(rs, i)->t.id,
					 row_at(rs, i)->t.idlen);
		rc |= buf_printf(out, " &nbsp; ");
	}
	if (n > CHART_LINES)
		rc |= buf_printf(out, "<span style=\"color:%s\">&#9632;</span> "
				 "%zu others", palette[CHART_LINES],
				 n - CHART_LINES);
	rc |= buf_printf(out, "</p>\n");
	return rc ? ERR_NOMEM : 0;
}

static int render_tenants(struct buf *out, struct store *st, struct queue *q,
			  uint64_t now_ms)
{
	struct rows rs;
	struct setaside_filter f = {0};
	struct store_pos pos = {0};
	uint64_t hour = usage_hour(now_ms), buffered = 0, window;
	unsigned walked = 0;
	char prev[32];
	int rc = 0, more;

	rs.first_hour = hour - (HOURS - 1) * 3600;
	rs.now_ms = now_ms;
	tenant_rows_init(&rs.t, sizeof(struct row));
	if ((rc = tenant_rows_collect(&rs.t, q)) != 0)
		goto out;
	if ((rc = store_usage_range(st, rs.first_hour, UINT64_MAX, add_usage,
				    &rs)) != 0)
		goto out;
	f.any_tenant = 1;
	do {
		more = store_setaside_page(st, &f, &pos, 1000, add_setaside, &rs);
		walked += 1000;
	} while (more == 1 && walked < SETASIDE_WALK_MAX);
	if (more < 0) {
		rc = more;
		goto out;
	}
	if (rs.t.nomem) {
		rc = ERR_NOMEM;
		goto out;
	}
	window = measure_rates(&rs);
	if (rs.t.n > 1)        /* r is NULL when there is none */
		qsort(rs.t.r, rs.t.n, rs.t.size, by_total);
	for (size_t i = 0; i < rs.t.n; i++)
		buffered += row_at(&rs, i)->t.bytes;
	fmt_time(prev, sizeof(prev), (hour - 3600) * 1000);
	rc |= buf_printf(out, "<h2>Tenants</h2>\n<table>\n<tr><th>tenant</th>"
		"<th>samples/s<br><small>last %" PRIu64 " s</small></th>"
		"<th>samples, 24 h</th><th>buffered bytes</th><th>buffer share</th>"
		"<th>requests refused<br><small>since %s</small></th>"
		"<th>set aside<br><small>last hour</small></th></tr>\n",
		window / 1000, prev);
	for (size_t i = 0; i < rs.t.n && i < STATUS_PAGE_TENANTS; i++) {
		const struct row *r = row_at(&rs, i);
		rc |= buf_printf(out, "<tr><td>");
		rc |= status_page_escape(out, r->t.id, r->t.idlen);
		rc |= buf_printf(out, "</td><td class=\"n\">%.1f</td>"
			"<td class=\"n\">%" PRIu64 "</td><td class=\"n\">%" PRIu64
			"</td><td class=\"n\">%.1f%%</td><td class=\"n\">%" PRIu64
			"</td><td class=\"n\">%" PRIu64 "%s</td></tr>\n", r->rate,
			r->total, r->t.bytes,
			buffered ? 100.0 * (double)r->t.bytes / (double)buffered : 0.0,
			r->refused, r->set_aside,
			walked >= SETASIDE_WALK_MAX ? "+" : "");
	}
	rc |= buf_printf(out, "</table>\n");
	if (rs.t.n > STATUS_PAGE_TENANTS)
		rc |= buf_printf(out, "<p>and %zu more tenants (the %d with the "
				 "most samples are shown).</p>\n",
				 rs.t.n - STATUS_PAGE_TENANTS, STATUS_PAGE_TENANTS);
	if (rc == 0)
		rc = render_chart(out, &rs);
	else
		rc = ERR_NOMEM;
out:
	tenant_rows_free(&rs.t);
	return rc;
}

int status_page_render(struct buf *out, const struct config *cfg,
		       struct store *st, struct queue *q, int admin)
{
	uint64_t now_ms = clock_wall_ms();
	int rc;

	if ((rc = render_head(out, cfg, q, now_ms, admin)) != 0)
		return rc;
	if (admin)
		rc = render_tenants(out, st, q, now_ms);
	else if (buf_printf(out, "<p>Tenants: <a href=\"/?admin\">sign in "
			    "with the admin token</a> (user <code>admin</code>)."
			    "</p>\n") < 0)
		rc = ERR_NOMEM;
	if (rc != 0)
		return rc;
	return buf_printf(out, "</body></html>\n") < 0 ? ERR_NOMEM : 0;
}
