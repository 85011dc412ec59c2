/*
 * usage.c - usage records and active-series sketches (see usage.h); the
 * reports on them are in usage_report.c.
 */
#include "usage.h"

#include <errno.h>
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
_Static_assert(offsetof(struct usage_rec, samples_dropped_by_rule) ==
	       USAGE_REC_V3_SIZE,
	       "version 3 records end where samples_dropped_by_rule starts");
_Static_assert(offsetof(struct usage_rec, carried_to) == USAGE_REC_V4_SIZE,
	       "version 4 records end where carried_to starts");

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
	dst->samples_dropped_by_rule += src->samples_dropped_by_rule;
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
	struct usage_rec *d;

	if (tlen == 0)    /* no tenant: not in usage records (usage.h) */
		return 0;
	d = usage_round_get(r, tenant, tlen, usage_hour(now));
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
	struct usage_rec *d;

	if (tlen == 0)    /* no tenant: not in usage records (usage.h) */
		return 0;
	d = usage_round_get(r, tenant, tlen, usage_hour(now));
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
	struct usage_rec *d;

	if (tlen == 0)    /* no tenant: not in usage records (usage.h) */
		return 0;
	d = usage_round_get(r, tenant, tlen, usage_hour(now));
	if (d == NULL)
		return ERR_NOMEM;
	d->samples_delivered += samples;
	return 0;
}

int usage_count_dropped(struct usage_round *r, const char *tenant,
			size_t tlen, uint64_t now, enum usage_drop why,
			uint64_t samples)
{
	struct usage_rec *d;

	if (tlen == 0)    /* no tenant: not in usage records (usage.h) */
		return 0;
	d = usage_round_get(r, tenant, tlen, usage_hour(now));
	if (d == NULL)
		return ERR_NOMEM;
	d->samples_dropped[why] += samples;
	return 0;
}

int usage_count_deduplicated(struct usage_round *r, const char *tenant,
			     size_t tlen, uint64_t now, uint64_t samples)
{
	struct usage_rec *d;

	if (tlen == 0)    /* no tenant: not in usage records (usage.h) */
		return 0;
	d = usage_round_get(r, tenant, tlen, usage_hour(now));
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

/* store_usage_cleanup: a record about to be deleted is added to its
 * tenant's carried record, gathered in the round arg. A record that is
 * not one (too short), or of no tenant, is deleted uncounted, as the
 * export never counted it. */
static int carry(void *arg, const char *tenant, size_t tlen, uint64_t hour,
		 const void *val, size_t len)
{
	struct usage_rec rec, *d;

	(void)hour;
	if (tlen == 0 || tlen > TENANT_ID_MAX ||
	    usage_rec_read(val, len, &rec) != 0)
		return 0;
	d = usage_round_get(arg, tenant, tlen, STORE_USAGE_CARRIED);
	if (d == NULL)
		return ERR_NOMEM;
	usage_add(d, &rec);
	return 0;
}

/* Adds the round's sums to the tenants' carried records, whose carried_to
 * becomes at least cutoff_s. Returns 0 or an ERR_* code. */
static int carry_flush(struct usage_round *r, struct store_txn *txn,
		       uint64_t cutoff_s)
{
	struct usage_rec rec;
	const void *val;
	size_t len;
	int rc;

	for (size_t i = 0; i < r->n; i++) {
		struct usage_delta *d = &r->d[i];
		rc = store_usage_get(txn, 0, d->tenant, d->tlen,
				     STORE_USAGE_CARRIED, &val, &len);
		if (rc < 0)
			return rc;
		if (rc == 0 || usage_rec_read(val, len, &rec) != 0)
			memset(&rec, 0, sizeof(rec));
		usage_add(&rec, &d->add);
		rec.active_series = 0;
		if (rec.carried_to < cutoff_s)
			rec.carried_to = cutoff_s;
		if ((rc = store_usage_put(txn, 0, d->tenant, d->tlen,
					  STORE_USAGE_CARRIED, &rec,
					  sizeof(rec))) != 0)
			return rc;
	}
	return 0;
}

int usage_cleanup(struct store_txn *txn, uint64_t now, uint64_t retention_ms)
{
	uint64_t hour = usage_hour(now);
	uint64_t cutoff = retention_ms / 1000 < now / 1000 ?
			  now / 1000 - retention_ms / 1000 : 0;
	struct usage_round carried = {0};
	int rc;

	/* The previous hour may still get late commits; older ones not. */
	rc = store_usage_cleanup(txn, hour - 3600, cutoff, carry, &carried);
	if (rc == 0)
		rc = carry_flush(&carried, txn, cutoff);
	usage_round_free(&carried);
	return rc;
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
