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

int usage_round_series(struct usage_round *r, MDB_txn *txn, MDB_dbi hll_dbi,
		       const char *tenant, size_t tlen, uint64_t hour,
		       const uint32_t *codes, size_t n)
{
	uint8_t key[STORE_KEY_MAX];
	struct usage_delta *d;
	MDB_val k, v;

	if (usage_round_get(r, tenant, tlen, hour) == NULL)
		return ENOMEM;
	for (d = r->d; d->hour != hour || d->tlen != tlen ||
	     memcmp(d->tenant, tenant, tlen) != 0; d++)
		;
	if (!d->has_sketch) {
		k.mv_size = store_key(key, tenant, tlen, hour);
		k.mv_data = key;
		/* A value that is not a sketch (ERR_CORRUPT) starts afresh. */
		if (mdb_get(txn, hll_dbi, &k, &v) == 0 &&
		    hll_merge_value(&d->sketch, v.mv_data, v.mv_size) == ERR_NOMEM)
			return ENOMEM;
		d->has_sketch = 1;
	}
	return hll_add(&d->sketch, codes, n) == 0 ? 0 : ENOMEM;
}

int usage_round_flush(struct usage_round *r, MDB_txn *txn, MDB_dbi dbi,
		      MDB_dbi hll_dbi)
{
	uint8_t key[STORE_KEY_MAX];
	struct usage_rec rec;
	MDB_val k, v;
	int rc;

	for (size_t i = 0; i < r->n; i++) {
		struct usage_delta *d = &r->d[i];
		k.mv_size = store_key(key, d->tenant, d->tlen, d->hour);
		k.mv_data = key;
		memset(&rec, 0, sizeof(rec));
		if (mdb_get(txn, dbi, &k, &v) == 0)
			usage_rec_read(v.mv_data, v.mv_size, &rec);
		usage_add(&rec, &d->add);
		if (d->has_sketch) {
			rec.active_series = hll_estimate(&d->sketch);
			v.mv_size = hll_encoded_size(&d->sketch);
			if ((rc = mdb_put(txn, hll_dbi, &k, &v, MDB_RESERVE)) != 0)
				return rc;
			hll_encode(&d->sketch, v.mv_data);
		}
		v.mv_size = sizeof(rec);
		v.mv_data = &rec;
		if ((rc = mdb_put(txn, dbi, &k, &v, 0)) != 0)
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

/* Deletes the records of db whose hour is before cutoff_s. */
static int delete_before(MDB_txn *txn, MDB_dbi db, uint64_t cutoff_s)
{
	const char *t;
	size_t tlen;
	uint64_t h;
	MDB_cursor *cur;
	MDB_val k, v;
	int rc;

	if ((rc = mdb_cursor_open(txn, db, &cur)) != 0)
		return rc;
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;) {
		if (store_key_parse(&k, &t, &tlen, &h) == 0 && h < cutoff_s) {
			if ((rc = mdb_cursor_del(cur, 0)) != 0)
				break;
			rc = mdb_cursor_get(cur, &k, &v, MDB_GET_CURRENT);
		} else {
			rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
		}
	}
	mdb_cursor_close(cur);
	return rc == MDB_NOTFOUND || rc == EINVAL ? 0 : rc;
}

int usage_cleanup(MDB_txn *txn, MDB_dbi dbi, MDB_dbi hll_dbi, uint64_t now,
		  uint64_t retention_ms)
{
	uint64_t hour = usage_hour(now);
	int rc;

	/* The previous hour may still get late commits; older ones not. */
	if ((rc = delete_before(txn, hll_dbi, hour - 3600)) != 0)
		return rc;
	if (retention_ms / 1000 < now / 1000)
		return delete_before(txn, dbi, now / 1000 - retention_ms / 1000);
	return 0;
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
	 * by position still finds its columns where they were. */
	for (int i = 0; i < REFUSE_NREASONS && n < max; i++, n++) {
		snprintf(cols[n].name, sizeof(cols[n].name), "requests_refused_%s",
			 refuse_reason_name((enum refuse_reason)i));
		cols[n].offset = offsetof(struct usage_rec, requests_refused) +
				 (size_t)i * sizeof(uint64_t);
	}
	return n;
}

static uint64_t column_value(const struct usage_rec *r, const struct column *c)
{
	uint64_t v;

	memcpy(&v, (const char *)r + c->offset, sizeof(v));
	return v;
}

int usage_format(MDB_txn *txn, MDB_dbi dbi, const struct usage_filter *f,
		 int csv, struct buf *out)
{
	struct column cols[48];
	size_t ncols = build_columns(cols, 48), tlen, flen = 0;
	uint8_t key[STORE_KEY_MAX];
	struct usage_rec rec;
	MDB_cursor *cur;
	MDB_val k, v;
	const char *tenant;
	char hour[32];
	uint64_t h;
	time_t t;
	struct tm tm;
	int rc, first = 1, err = 0;

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
	if (mdb_cursor_open(txn, dbi, &cur) != 0)
		return -1;
	if (f->tenant != NULL) {
		k.mv_size = store_key(key, f->tenant, flen, f->from_s);
		k.mv_data = key;
		rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
	} else {
		rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
	}
	for (; rc == 0 && !err; rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		if (store_key_parse(&k, &tenant, &tlen, &h) < 0 ||
		    usage_rec_read(v.mv_data, v.mv_size, &rec) < 0)
			continue;
		if (f->tenant != NULL &&
		    (tlen != flen || memcmp(tenant, f->tenant, flen) != 0))
			break;
		if ((f->from_s && h < f->from_s) || (f->to_s && h >= f->to_s))
			continue;
		t = (time_t)h;
		gmtime_r(&t, &tm);
		strftime(hour, sizeof(hour), "%Y-%m-%dT%H:%M:%SZ", &tm);
		if (csv) {
			err |= buf_printf(out, "%.*s,%s", (int)tlen, tenant, hour);
			for (size_t i = 0; i < ncols; i++)
				err |= buf_printf(out, ",%" PRIu64,
						  column_value(&rec, &cols[i]));
			err |= buf_printf(out, "\n");
		} else {
			err |= buf_printf(out, "%s{\"tenant\":\"%.*s\",\"hour\":\"%s\"",
					  first ? "" : ",", (int)tlen, tenant, hour);
			for (size_t i = 0; i < ncols; i++)
				err |= buf_printf(out, ",\"%s\":%" PRIu64, cols[i].name,
						  column_value(&rec, &cols[i]));
			err |= buf_printf(out, "}");
		}
		first = 0;
	}
	mdb_cursor_close(cur);
	if (!csv)
		err |= buf_printf(out, "]}\n");
	return err ? -1 : 0;
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
	MDB_env *env = NULL;
	MDB_txn *txn = NULL;
	MDB_dbi dbi;
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
	buf_init(&out, (size_t)1 << 32);
	if (mdb_env_create(&env) != 0 || mdb_env_set_maxdbs(env, 16) != 0 ||
	    mdb_env_set_maxreaders(env, 512) != 0 ||
	    (rc = mdb_env_open(env, cfg.path, MDB_RDONLY | MDB_NOTLS, 0600)) != 0) {
		fprintf(stderr, "relay usage: cannot open %s: %s\n", cfg.path,
			mdb_strerror(rc));
		rc = 1;
		goto out;
	}
	rc = 1;
	if (mdb_txn_begin(env, NULL, MDB_RDONLY, &txn) != 0)
		goto out;
	if (mdb_dbi_open(txn, "usage", 0, &dbi) != 0) {
		fprintf(stderr, "relay usage: no usage records in %s\n", cfg.path);
		goto out;
	}
	if (usage_format(txn, dbi, &f, csv, &out) == 0 &&
	    fwrite(out.p, 1, out.len, stdout) == out.len)
		rc = 0;
out:
	if (txn != NULL)
		mdb_txn_abort(txn);
	if (env != NULL)
		mdb_env_close(env);
	buf_free(&out);
	config_free(&cfg);
	return rc;
}
