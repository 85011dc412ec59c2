/*
 * usage_report.c - reports on the usage records (see usage.h): JSON or
 * CSV, made page by page so that neither the memory they take nor the
 * read transactions they hold grow with the range asked for; the paging
 * cursor; and the `relay usage` CLI.
 */
#include "usage.h"

#include <getopt.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "err.h"
#include "metrics.h"
#include "store.h"
#include "tenant.h"

/* Records one read transaction visits: a page of a report. */
#define USAGE_PAGE_RECORDS 256

/* One column of a report: a name and where its value is. */
struct column {
	char name[48];
	size_t offset;
};

static size_t build_columns(struct column *cols, size_t max)
{
	static const struct {
		const char *name;
		size_t offset;
	} fixed[] = {
		{"requests", offsetof(struct usage_rec, requests)},
		{"series", offsetof(struct usage_rec, series)},
		{"samples", offsetof(struct usage_rec, samples)},
		{"histogram_samples", offsetof(struct usage_rec, histograms)},
		{"exemplars", offsetof(struct usage_rec, exemplars)},
		{"metadata", offsetof(struct usage_rec, metadata)},
		{"bytes_compressed", offsetof(struct usage_rec, bytes_compressed)},
		{"bytes_decoded", offsetof(struct usage_rec, bytes_decoded)},
		{"active_series", offsetof(struct usage_rec, active_series)},
		{"samples_delivered", offsetof(struct usage_rec, samples_delivered)},
	};
	static const char *const drops[USAGE_DROPPED_SLOTS] = {
		"full", "age", NULL, "purged"};
	size_t n = 0;

	for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]) && n < max; i++, n++) {
		snprintf(cols[n].name, sizeof(cols[n].name), "%s", fixed[i].name);
		cols[n].offset = fixed[i].offset;
	}
	for (int i = 0; i < REFUSE_NREASONS && n < max; i++, n++) {
		snprintf(cols[n].name, sizeof(cols[n].name), "samples_refused_%s",
			 refuse_reason_name((enum refuse_reason)i));
		cols[n].offset = offsetof(struct usage_rec, samples_refused) +
				 (size_t)i * sizeof(uint64_t);
	}
	for (int i = 0; i < USAGE_DROPPED_SLOTS && n < max; i++) {
		if (drops[i] == NULL)
			continue;
		snprintf(cols[n].name, sizeof(cols[n].name), "samples_dropped_%s",
			 drops[i]);
		cols[n].offset = offsetof(struct usage_rec, samples_dropped) +
				 (size_t)i * sizeof(uint64_t);
		n++;
	}
	/* Version 2's columns come last, so that a reader of the older CSV
	 * by position still finds its columns where they were; version 3's
	 * after them. */
	for (int i = 0; i < REFUSE_NREASONS && n < max; i++, n++) {
		snprintf(cols[n].name, sizeof(cols[n].name), "requests_refused_%s",
			 refuse_reason_name((enum refuse_reason)i));
		cols[n].offset = offsetof(struct usage_rec, requests_refused) +
				 (size_t)i * sizeof(uint64_t);
	}
	if (n < max) {
		snprintf(cols[n].name, sizeof(cols[n].name), "samples_deduplicated");
		cols[n].offset = offsetof(struct usage_rec, samples_deduplicated);
		n++;
	}
	if (n < max) {   /* version 4 */
		snprintf(cols[n].name, sizeof(cols[n].name),
			 "samples_dropped_by_rule");
		cols[n].offset = offsetof(struct usage_rec,
					  samples_dropped_by_rule);
		n++;
	}
	return n;
}

static uint64_t column_value(const struct usage_rec *r, const struct column *c)
{
	uint64_t v;

	memcpy(&v, (const char *)r + c->offset, sizeof(v));
	return v;
}

#define USAGE_COLUMNS_MAX 48

enum report_state { REPORT_HEAD, REPORT_ROWS, REPORT_TAIL, REPORT_DONE };

struct usage_report {
	struct store *st;                /* ref */
	char tenant[TENANT_ID_MAX + 1];
	size_t tlen;
	int any_tenant;
	uint64_t from_s, to_s;
	int csv;
	struct column cols[USAGE_COLUMNS_MAX];
	size_t ncols;
	enum report_state state;
	int first;                       /* no row written yet */
	struct store_pos pos;      /* after the last record read */
	struct store_pos end;      /* the page's last row (has_end) */
	int has_end, has_more;           /* limit: rows follow end */
	uint64_t counted;                /* rows counted by the pre-pass */
	uint64_t limit;
	int stop;                        /* passed end */
	struct buf *out;                 /* ref, during usage_report_next */
};

/* Whether a record goes into the report. */
static int row_wanted(const struct usage_report *r, uint64_t h, size_t len)
{
	if ((r->from_s && h < r->from_s) || (r->to_s && h >= r->to_s))
		return 0;
	return len >= USAGE_REC_V1_SIZE;
}

/* Key order of two positions, as the store orders their keys. */
static int pos_cmp(const char *t, size_t tlen, uint64_t h,
		   const struct store_pos *p)
{
	int c = memcmp(t, p->tenant, tlen < p->tlen ? tlen : p->tlen);

	if (c != 0)
		return c;
	if (tlen != p->tlen)
		return tlen < p->tlen ? -1 : 1;
	return h < p->hour ? -1 : h > p->hour;
}

int usage_cursor_format(const struct store_pos *p, char *out,
			size_t outlen)
{
	int n = snprintf(out, outlen, "%.*s:%" PRIu64, (int)p->tlen, p->tenant,
			 p->hour);

	return n < 0 || (size_t)n >= outlen ? -1 : 0;
}

int usage_cursor_parse(const char *s, struct store_pos *p)
{
	const char *colon = strrchr(s, ':');
	char *end;

	if (colon == NULL || (size_t)(colon - s) > TENANT_ID_MAX ||
	    colon[1] < '0' || colon[1] > '9')
		return -1;
	memset(p, 0, sizeof(*p));
	p->hour = strtoull(colon + 1, &end, 10);
	if (*end != '\0')
		return -1;
	p->tlen = (size_t)(colon - s);
	memcpy(p->tenant, s, p->tlen);
	if (memchr(p->tenant, '\0', p->tlen) != NULL)
		return -1;
	p->started = 1;
	return 0;
}

/* Pre-pass of a report with a limit: finds its last row and whether
 * another follows. */
static int count_row(void *arg, const char *tenant, size_t tlen, uint64_t h,
		     const void *val, size_t len)
{
	struct usage_report *r = arg;

	(void)val;
	if (!row_wanted(r, h, len))
		return 0;
	if (r->counted == r->limit) {
		r->has_more = 1;
		return 1;
	}
	if (++r->counted == r->limit) {
		memcpy(r->end.tenant, tenant, tlen);
		r->end.tlen = tlen;
		r->end.hour = h;
		r->end.started = 1;
		r->has_end = 1;
	}
	return 0;
}

/* Walks the records after r->pos with fn, page by page, until fn stops
 * (r->stop or has_more) or the end. Returns 0 or an ERR_* code. */
static int walk_all(struct usage_report *r, struct store_pos *pos,
		    int (*fn)(void *, const char *, size_t, uint64_t,
			      const void *, size_t))
{
	const char *t = r->any_tenant ? NULL : r->tenant;
	int rc;

	do {
		rc = store_usage_page(r->st, t, r->tlen, r->from_s, pos,
				      USAGE_PAGE_RECORDS, fn, r);
	} while (rc == 1 && !r->has_more);
	return rc < 0 ? rc : 0;
}

int usage_report_open(struct usage_report **out, struct store *st,
		      const struct usage_filter *f, int csv)
{
	struct usage_report *r;
	struct store_pos probe;
	int rc;

	*out = NULL;
	if ((r = calloc(1, sizeof(*r))) == NULL)
		return ERR_NOMEM;
	r->st = st;
	r->any_tenant = f->tenant == NULL;
	if (f->tenant != NULL) {
		r->tlen = strlen(f->tenant);
		if (r->tlen > TENANT_ID_MAX)
			r->tlen = TENANT_ID_MAX;
		memcpy(r->tenant, f->tenant, r->tlen);
	}
	r->from_s = f->from_s;
	r->to_s = f->to_s;
	r->csv = csv;
	r->ncols = build_columns(r->cols, USAGE_COLUMNS_MAX);
	r->first = 1;
	r->limit = f->limit;
	if (f->after != NULL && usage_cursor_parse(f->after, &r->pos) < 0) {
		free(r);
		return ERR_FAIL;
	}
	/* Reads once now, so that a store that cannot be read is known
	 * before anything is answered. */
	probe = r->pos;
	if (r->limit > 0)
		rc = walk_all(r, &probe, count_row);
	else
		rc = store_usage_page(st, NULL, 0, 0, &probe, 0, NULL, NULL);
	if (rc < 0) {
		free(r);
		return rc;
	}
	*out = r;
	return 0;
}

int usage_report_next_cursor(const struct usage_report *r, char *out,
			     size_t outlen)
{
	if (!r->has_more)
		return 0;
	return usage_cursor_format(&r->end, out, outlen) == 0 ? 1 : ERR_FAIL;
}

/* Formats one record of the page being read. */
static int report_row(void *arg, const char *tenant, size_t tlen,
		      uint64_t h, const void *val, size_t len)
{
	struct usage_report *p = arg;
	struct buf *out = p->out;
	struct usage_rec rec;
	char hour[32];
	struct tm tm;
	time_t t;
	int err = 0;

	if (p->has_end && pos_cmp(tenant, tlen, h, &p->end) > 0) {
		p->stop = 1;
		return 1;
	}
	if (!row_wanted(p, h, len) || usage_rec_read(val, len, &rec) < 0)
		return 0;
	t = (time_t)h;
	gmtime_r(&t, &tm);
	strftime(hour, sizeof(hour), "%Y-%m-%dT%H:%M:%SZ", &tm);
	if (p->csv) {
		err |= buf_printf(out, "%.*s,%s", (int)tlen, tenant, hour);
		for (size_t i = 0; i < p->ncols; i++)
			err |= buf_printf(out, ",%" PRIu64,
					  column_value(&rec, &p->cols[i]));
		err |= buf_printf(out, "\n");
	} else {
		err |= buf_printf(out, "%s{\"tenant\":\"%.*s\",\"hour\":\"%s\"",
				  p->first ? "" : ",", (int)tlen, tenant, hour);
		for (size_t i = 0; i < p->ncols; i++)
			err |= buf_printf(out, ",\"%s\":%" PRIu64, p->cols[i].name,
					  column_value(&rec, &p->cols[i]));
		err |= buf_printf(out, "}");
	}
	p->first = 0;
	return err ? ERR_NOMEM : 0;
}

/* The report's first part: the CSV header line, or the JSON opening. */
static int report_head(struct usage_report *r, struct buf *out)
{
	int err = 0;

	if (!r->csv)
		return buf_printf(out, "{\"usage\":[") ? ERR_NOMEM : 0;
	err |= buf_printf(out, "tenant,hour");
	for (size_t i = 0; i < r->ncols; i++)
		err |= buf_printf(out, ",%s", r->cols[i].name);
	err |= buf_printf(out, "\n");
	return err ? ERR_NOMEM : 0;
}

/* The report's last part: JSON's closing, with the cursor of the next
 * page when there is one. */
static int report_tail(struct usage_report *r, struct buf *out)
{
	char next[TENANT_ID_MAX + 32];
	int rc;

	if (r->csv)
		return 0;
	if ((rc = usage_report_next_cursor(r, next, sizeof(next))) < 0)
		return rc;
	if (rc == 1)
		rc = buf_printf(out, "],\"next\":\"%s\"}\n", next);
	else
		rc = buf_printf(out, "]}\n");
	return rc ? ERR_NOMEM : 0;
}

int usage_report_next(struct usage_report *r, struct buf *out)
{
	const char *t = r->any_tenant ? NULL : r->tenant;
	int rc = 0;

	switch (r->state) {
	case REPORT_HEAD:
		rc = report_head(r, out);
		r->state = REPORT_ROWS;
		break;
	case REPORT_ROWS:
		r->out = out;
		rc = store_usage_page(r->st, t, r->tlen, r->from_s, &r->pos,
				      USAGE_PAGE_RECORDS, report_row, r);
		r->out = NULL;
		if (rc == 0 || (rc == 1 && r->stop))
			r->state = REPORT_TAIL;
		break;
	case REPORT_TAIL:
		rc = report_tail(r, out);
		r->state = REPORT_DONE;
		break;
	case REPORT_DONE:
		return 0;
	}
	return rc < 0 ? rc : 1;
}

void usage_report_free(struct usage_report *r)
{
	free(r);
}

int usage_format(struct store *st, const struct usage_filter *f, int csv,
		 struct buf *out)
{
	struct usage_report *r;
	int rc;

	if ((rc = usage_report_open(&r, st, f, csv)) < 0)
		return rc;
	while ((rc = usage_report_next(r, out)) == 1)
		;
	usage_report_free(r);
	return rc;
}

static void usage_cli_help(FILE *out)
{
	fprintf(out, "usage: relay usage -c FILE [--tenant T] [--from TIME] "
		"[--to TIME] [--csv] [--limit N [--after CURSOR]]\n"
		"TIME is Unix seconds or RFC 3339 UTC (2026-11-01 or "
		"2026-11-01T00:00:00Z); rows are per tenant and UTC hour, from "
		"inclusive, to exclusive. With --limit, at most N rows; when more "
		"follow, \"next: CURSOR\" goes to stderr (and into the JSON) for "
		"--after.\n");
}

/* Writes the report to stdout part by part. Returns 0 or an ERR_* code
 * (ERR_IO: stdout). */
static int usage_cli_write(struct store *st, const struct usage_filter *f,
			   int csv)
{
	struct usage_report *r;
	char next[TENANT_ID_MAX + 32];
	struct buf out;
	int rc;

	if ((rc = usage_report_open(&r, st, f, csv)) < 0)
		return rc;
	buf_init(&out, (size_t)64 << 20);
	while ((rc = usage_report_next(r, &out)) == 1) {
		if (out.len > 0 && fwrite(out.p, 1, out.len, stdout) != out.len) {
			rc = ERR_IO;
			break;
		}
		buf_reset(&out);
	}
	if (rc == 0 && fflush(stdout) != 0)
		rc = ERR_IO;
	if (rc == 0 && usage_report_next_cursor(r, next, sizeof(next)) == 1)
		fprintf(stderr, "next: %s\n", next);
	buf_free(&out);
	usage_report_free(r);
	return rc;
}

int usage_main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"tenant", required_argument, NULL, 't'},
		{"from", required_argument, NULL, 'f'},
		{"to", required_argument, NULL, 'T'},
		{"csv", no_argument, NULL, 'C'},
		{"limit", required_argument, NULL, 'l'},
		{"after", required_argument, NULL, 'a'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	struct usage_filter f = {0};
	struct store_pos pos;
	const char *file = NULL;
	struct config cfg;
	struct store *st;
	char err[1024], *end;
	int opt, csv = 0, rc = 1;

	optind = 1;
	while ((opt = getopt_long(argc, argv, "c:h", longopts, NULL)) != -1) {
		switch (opt) {
		case 'c': file = optarg; break;
		case 't':
			if (!tenant_valid_id(optarg, strlen(optarg))) {
				fprintf(stderr, "relay usage: bad tenant %s: a "
					"tenant id ([A-Za-z0-9._-], at most 64 "
					"characters)\n", optarg);
				return 2;
			}
			f.tenant = optarg;
			break;
		case 'f':
		case 'T':
			if (usage_parse_time(optarg, opt == 'f' ? &f.from_s : &f.to_s) < 0) {
				fprintf(stderr, "relay usage: bad time %s\n", optarg);
				return 2;
			}
			break;
		case 'C': csv = 1; break;
		case 'l':
			f.limit = strtoull(optarg, &end, 10);
			if (*optarg < '0' || *optarg > '9' || *end != '\0' ||
			    f.limit == 0) {
				fprintf(stderr, "relay usage: bad limit %s\n", optarg);
				return 2;
			}
			break;
		case 'a':
			if (usage_cursor_parse(optarg, &pos) < 0) {
				fprintf(stderr, "relay usage: bad cursor %s\n", optarg);
				return 2;
			}
			f.after = optarg;
			break;
		case 'h': usage_cli_help(stdout); return 0;
		default: usage_cli_help(stderr); return 2;
		}
	}
	if (file == NULL || optind != argc) {
		usage_cli_help(stderr);
		return 2;
	}
	if (config_load_storage(&cfg, file, err, sizeof(err)) < 0) {
		fprintf(stderr, "%s\n", err);
		config_free(&cfg);
		return 1;
	}
	if ((st = store_open_readonly(cfg.path, err, sizeof(err))) == NULL) {
		fprintf(stderr, "relay usage: %s\n", err);
		config_free(&cfg);
		return 1;
	}
	if ((rc = usage_cli_write(st, &f, csv)) != 0) {
		fprintf(stderr, "relay usage: cannot read %s: %s\n", cfg.path,
			err_str(rc));
		rc = 1;
	}
	store_close(st);
	config_free(&cfg);
	return rc;
}

int usage_query_parse(struct usage_filter *f, int *csv,
		      const char *(*get)(void *arg, const char *name),
		      void *arg, const char **why)
{
	struct store_pos pos;
	const char *v;
	char *end;

	memset(f, 0, sizeof(*f));
	*csv = 0;
	v = get(arg, "tenant");
	f->tenant = v && *v ? v : NULL;
	/* Not cut to fit: a longer one would name another tenant. */
	if (f->tenant != NULL && !tenant_valid_id(f->tenant, strlen(f->tenant)))
		return *why = "bad tenant: a tenant id ([A-Za-z0-9._-], at most "
			      "64 characters)\n", -1;
	v = get(arg, "from");
	if (v && *v && usage_parse_time(v, &f->from_s) < 0)
		return *why = "bad from: use Unix seconds or RFC 3339\n", -1;
	v = get(arg, "to");
	if (v && *v && usage_parse_time(v, &f->to_s) < 0)
		return *why = "bad to: use Unix seconds or RFC 3339\n", -1;
	v = get(arg, "format");
	if (v && *v) {
		if (strcmp(v, "csv") == 0)
			*csv = 1;
		else if (strcmp(v, "json") != 0)
			return *why = "bad format: json or csv\n", -1;
	}
	v = get(arg, "limit");
	if (v && *v) {
		f->limit = strtoull(v, &end, 10);
		if (*v < '0' || *v > '9' || *end != '\0' || f->limit == 0)
			return *why = "bad limit: a number of rows, 1 or more\n", -1;
	}
	v = get(arg, "after");
	if (v && *v) {
		if (usage_cursor_parse(v, &pos) < 0)
			return *why = "bad after: use the next value of the "
				      "previous page\n", -1;
		f->after = v;
	}
	return 0;
}
