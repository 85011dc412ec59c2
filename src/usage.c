/*
 * usage.c - usage records, active-series sketches, and their reports
 * (see usage.h).
 */
#include "usage.h"

#include <errno.h>
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

_Static_assert(REFUSE_NREASONS <= USAGE_REFUSED_SLOTS, "refused slots");
_Static_assert(offsetof(struct usage_rec, requests_refused) == USAGE_REC_V1_SIZE,
	       "version 1 records end where requests_refused starts");
_Static_assert(offsetof(struct usage_rec, samples_deduplicated) ==
	       USAGE_REC_V2_SIZE,
	       "version 2 records end where samples_deduplicated starts");

int usage_rec_read(const void *p, size_t len, struct usage_rec *out)
{
	memset(out, 0, sizeof(*out));
	if (len < USAGE_REC_V1_SIZE)
		return ERR_CORRUPT;
	memcpy(out, p, len < sizeof(*out) ? len : sizeof(*out));
	return 0;
}

void usage_add(struct usage_rec *dst, const struct usage_rec *src)
{
	dst->version = USAGE_FORMAT;
	dst->requests += src->requests;
	dst->series += src->series;
	dst->samples += src->samples;
	dst->histograms += src->histograms;
	dst->exemplars += src->exemplars;
	dst->metadata += src->metadata;
	dst->bytes_compressed += src->bytes_compressed;
	dst->bytes_decoded += src->bytes_decoded;
	dst->samples_delivered += src->samples_delivered;
	for (int i = 0; i < USAGE_REFUSED_SLOTS; i++)
		dst->samples_refused[i] += src->samples_refused[i];
	for (int i = 0; i < USAGE_DROPPED_SLOTS; i++)
		dst->samples_dropped[i] += src->samples_dropped[i];
	for (int i = 0; i < USAGE_REFUSED_SLOTS; i++)
		dst->requests_refused[i] += src->requests_refused[i];
	dst->samples_deduplicated += src->samples_deduplicated;
}

struct usage_rec *usage_round_get(struct usage_round *r, const char *tenant,
				  size_t tlen, uint64_t hour)
{
	struct usage_delta *d;

	for (size_t i = 0; i < r->n; i++) {
		d = &r->d[i];
		if (d->hour == hour && d->tlen == tlen &&
		    memcmp(d->tenant, tenant, tlen) == 0)
			return &d->add;
	}
	if (tlen > TENANT_ID_MAX)
		return NULL;
	if (r->n == r->cap) {
		size_t cap = r->cap ? r->cap * 2 : 8;
		d = realloc(r->d, cap * sizeof(*d));
		if (d == NULL)
			return NULL;
		r->d = d;
		r->cap = cap;
	}
	d = &r->d[r->n++];
	memset(d, 0, sizeof(*d));
	memcpy(d->tenant, tenant, tlen);
	d->tlen = tlen;
	d->hour = hour;
	return &d->add;
}

int usage_round_series(struct usage_round *r, struct store_txn *txn,
		       const char *tenant, size_t tlen, uint64_t hour,
		       const uint32_t *codes, size_t n)
{
	struct usage_delta *d;
	const void *val;
	size_t len;
	int rc;

	if (usage_round_get(r, tenant, tlen, hour) == NULL)
		return ERR_NOMEM;
	for (d = r->d; d->hour != hour || d->tlen != tlen ||
	     memcmp(d->tenant, tenant, tlen) != 0; d++)
		;
	if (!d->has_sketch) {
		/* A value that is not a sketch (ERR_CORRUPT) starts afresh. */
		rc = store_usage_get(txn, 1, tenant, tlen, hour, &val, &len);
		if (rc < 0)
			return rc;
		if (rc == 1 && hll_merge_value(&d->sketch, val, len) == ERR_NOMEM)
			return ERR_NOMEM;
		d->has_sketch = 1;
	}
	return hll_add(&d->sketch, codes, n) == 0 ? 0 : ERR_NOMEM;
}

int usage_count_stored(struct usage_round *r, struct store_txn *txn,
		       const char *tenant, size_t tlen, uint64_t now,
		       const struct usage_rec *add, const uint32_t *hll,
		       size_t nhll)
{
	struct usage_rec *d = usage_round_get(r, tenant, tlen, usage_hour(now));

	if (d == NULL)
		return ERR_NOMEM;
	usage_add(d, add);
	if (nhll == 0)
		return 0;
	return usage_round_series(r, txn, tenant, tlen, usage_hour(now), hll, nhll);
}

int usage_count_refused(struct usage_round *r, const char *tenant,
			size_t tlen, uint64_t now, int reason, uint64_t samples)
{
	struct usage_rec *d = usage_round_get(r, tenant, tlen, usage_hour(now));

	if (d == NULL)
		return ERR_NOMEM;
	if (reason >= 0 && reason < USAGE_REFUSED_SLOTS) {
		d->samples_refused[reason] += samples;
		d->requests_refused[reason]++;
	}
	return 0;
}

int usage_count_delivered(struct usage_round *r, const char *tenant,
			  size_t tlen, uint64_t now, uint64_t samples)
{
	struct usage_rec *d = usage_round_get(r, tenant, tlen, usage_hour(now));

	if (d == NULL)
		return ERR_NOMEM;
	d->samples_delivered += samples;
	return 0;
}

int usage_count_dropped(struct usage_round *r, const char *tenant,
			size_t tlen, uint64_t now, enum usage_drop why,
			uint64_t samples)
{
	struct usage_rec *d = usage_round_get(r, tenant, tlen, usage_hour(now));

	if (d == NULL)
		return ERR_NOMEM;
	d->samples_dropped[why] += samples;
	return 0;
}

int usage_count_deduplicated(struct usage_round *r, const char *tenant,
			     size_t tlen, uint64_t now, uint64_t samples)
{
	struct usage_rec *d = usage_round_get(r, tenant, tlen, usage_hour(now));

	if (d == NULL)
		return ERR_NOMEM;
	d->samples_deduplicated += samples;
	return 0;
}

int usage_round_flush(struct usage_round *r, struct store_txn *txn)
{
	struct usage_rec rec;
	const void *val;
	size_t len;
	int rc;

	for (size_t i = 0; i < r->n; i++) {
		struct usage_delta *d = &r->d[i];
		memset(&rec, 0, sizeof(rec));
		rc = store_usage_get(txn, 0, d->tenant, d->tlen, d->hour, &val, &len);
		if (rc < 0)
			return rc;
		if (rc == 1)
			usage_rec_read(val, len, &rec);
		usage_add(&rec, &d->add);
		if (d->has_sketch) {
			void *out;
			rec.active_series = hll_estimate(&d->sketch);
			len = hll_encoded_size(&d->sketch);
			if ((rc = store_usage_reserve(txn, 1, d->tenant, d->tlen,
						      d->hour, len, &out)) != 0)
				return rc;
			hll_encode(&d->sketch, out);
		}
		if ((rc = store_usage_put(txn, 0, d->tenant, d->tlen, d->hour,
					  &rec, sizeof(rec))) != 0)
			return rc;
	}
	return 0;
}

void usage_round_clear(struct usage_round *r)
{
	for (size_t i = 0; i < r->n; i++)
		hll_free(&r->d[i].sketch);
	r->n = 0;
}

void usage_round_free(struct usage_round *r)
{
	usage_round_clear(r);
	free(r->d);
	r->d = NULL;
	r->cap = 0;
}

int usage_cleanup(struct store_txn *txn, uint64_t now, uint64_t retention_ms)
{
	uint64_t hour = usage_hour(now);

	/* The previous hour may still get late commits; older ones not. */
	return store_usage_cleanup(txn, hour - 3600,
				   retention_ms / 1000 < now / 1000 ?
				   now / 1000 - retention_ms / 1000 : 0);
}

int usage_parse_time(const char *s, uint64_t *out_s)
{
	struct tm tm;
	char *end;
	int n = 0;

	if (*s >= '0' && *s <= '9' && strchr(s, '-') == NULL) {
		unsigned long long v = strtoull(s, &end, 10);
		if (*end != '\0')
			return -1;
		*out_s = v;
		return 0;
	}
	memset(&tm, 0, sizeof(tm));
	if (sscanf(s, "%4d-%2d-%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &n) != 3)
		return -1;
	s += n;
	if (*s == 'T' || *s == ' ') {
		n = 0;
		if (sscanf(s + 1, "%2d:%2d:%2d%n", &tm.tm_hour, &tm.tm_min,
			   &tm.tm_sec, &n) != 3)
			return -1;
		s += 1 + n;
		if (*s == 'Z')
			s++;
	}
	if (*s != '\0' || tm.tm_mon < 1 || tm.tm_mon > 12 || tm.tm_mday < 1 ||
	    tm.tm_mday > 31 || tm.tm_hour > 23 || tm.tm_min > 59 || tm.tm_sec > 60)
		return -1;
	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	*out_s = (uint64_t)timegm(&tm);
	return 0;
}

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
	return n;
}

static uint64_t column_value(const struct usage_rec *r, const struct column *c)
{
	uint64_t v;

	memcpy(&v, (const char *)r + c->offset, sizeof(v));
	return v;
}

/* Formats the rows of the usage database. */
struct report {
	const struct usage_filter *f;
	const struct column *cols;
	size_t ncols;
	struct buf *out;
	int csv, first;
};

static int report_row(void *arg, const char *tenant, size_t tlen,
		      uint64_t h, const void *val, size_t len)
{
	struct report *p = arg;
	struct buf *out = p->out;
	struct usage_rec rec;
	char hour[32];
	struct tm tm;
	time_t t;
	int err = 0;

	if ((p->f->from_s && h < p->f->from_s) || (p->f->to_s && h >= p->f->to_s))
		return 0;
	if (usage_rec_read(val, len, &rec) < 0)
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

int usage_format(struct store *st, const struct usage_filter *f, int csv,
		 struct buf *out)
{
	struct column cols[48];
	size_t ncols = build_columns(cols, 48), flen = 0;
	struct report p = {f, cols, ncols, out, csv, 1};
	int err = 0, rc;

	if (f->tenant != NULL) {
		flen = strlen(f->tenant);
		if (flen > TENANT_ID_MAX)
			flen = TENANT_ID_MAX;
	}
	if (csv) {
		err |= buf_printf(out, "tenant,hour");
		for (size_t i = 0; i < ncols; i++)
			err |= buf_printf(out, ",%s", cols[i].name);
		err |= buf_printf(out, "\n");
	} else {
		err |= buf_printf(out, "{\"usage\":[");
	}
	if (err)
		return ERR_NOMEM;
	rc = store_usage_each(st, f->tenant, flen, f->from_s, report_row, &p);
	if (rc != 0)
		return rc;
	if (!csv && buf_printf(out, "]}\n") != 0)
		return ERR_NOMEM;
	return 0;
}

static void usage_cli_help(FILE *out)
{
	fprintf(out, "usage: relay usage -c FILE [--tenant T] [--from TIME] "
		"[--to TIME] [--csv]\n"
		"TIME is Unix seconds or RFC 3339 UTC (2026-11-01 or "
		"2026-11-01T00:00:00Z); rows are per tenant and UTC hour, from "
		"inclusive, to exclusive.\n");
}

int usage_main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"tenant", required_argument, NULL, 't'},
		{"from", required_argument, NULL, 'f'},
		{"to", required_argument, NULL, 'T'},
		{"csv", no_argument, NULL, 'C'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	struct usage_filter f = {0};
	const char *file = NULL;
	struct config cfg;
	struct buf out;
	struct store *st;
	char err[1024];
	int opt, csv = 0, rc = 1;

	optind = 1;
	while ((opt = getopt_long(argc, argv, "c:h", longopts, NULL)) != -1) {
		switch (opt) {
		case 'c': file = optarg; break;
		case 't': f.tenant = optarg; break;
		case 'f':
		case 'T':
			if (usage_parse_time(optarg, opt == 'f' ? &f.from_s : &f.to_s) < 0) {
				fprintf(stderr, "relay usage: bad time %s\n", optarg);
				return 2;
			}
			break;
		case 'C': csv = 1; break;
		case 'h': usage_cli_help(stdout); return 0;
		default: usage_cli_help(stderr); return 2;
		}
	}
	if (file == NULL || optind != argc) {
		usage_cli_help(stderr);
		return 2;
	}
	if (config_load(&cfg, file, err, sizeof(err)) < 0) {
		fprintf(stderr, "%s\n", err);
		config_free(&cfg);
		return 1;
	}
	if ((st = store_open_readonly(cfg.path, err, sizeof(err))) == NULL) {
		fprintf(stderr, "relay usage: %s\n", err);
		config_free(&cfg);
		return 1;
	}
	buf_init(&out, (size_t)1 << 32);
	if ((rc = usage_format(st, &f, csv, &out)) != 0)
		fprintf(stderr, "relay usage: cannot read %s: %s\n", cfg.path,
			err_str(rc));
	else if (fwrite(out.p, 1, out.len, stdout) == out.len)
		rc = 0;
	else
		rc = 1;
	store_close(st);
	buf_free(&out);
	config_free(&cfg);
	return rc;
}
