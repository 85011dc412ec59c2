/*
 * usage.h - per-tenant, per-UTC-hour usage records to bill on.
 *
 * The writer adds to them in the same LMDB transaction that stores (or
 * delivers, or drops) the data they count, so after any crash they equal
 * exactly what was acknowledged. Format version 5 (USAGE_FORMAT, also in
 * the store's meta and checked when it is opened: store.h), in the store's
 * environment:
 *
 *   usage      key: tenant id, 0x00, u64 big-endian hour (Unix seconds,
 *              a multiple of 3600); value: struct usage_rec
 *              key: tenant id, 0x00, u64 all ones (STORE_USAGE_CARRIED,
 *              never an hour): the tenant's carried record (below), a
 *              struct usage_rec too
 *   usage_hll  same key; value: the HyperLogLog sketch of the series
 *              seen in that hour, sparse (1 + 3 bytes per register set,
 *              version byte 1) or dense (exactly USAGE_HLL_M one-byte
 *              registers, the only form earlier relays wrote): see hll.h.
 *              Kept while the hour can still change (the current and the
 *              previous hour); the record's active_series holds the
 *              estimate.
 *
 * A record (struct usage_rec, host byte order, all u64 after the first two
 * u32) starts with its version:
 *
 *   | version | reserved | requests ... samples_delivered |
 *   | samples_refused[16] | samples_dropped[4] |
 *   | requests_refused[16] |            <- version 2 on
 *   | samples_deduplicated |            <- version 3 on
 *   | samples_dropped_by_rule |         <- version 4 on
 *   | carried_to |                      <- version 5 on
 *
 * Version 1 records end before requests_refused (248 bytes), version 2
 * ones before samples_deduplicated (376 bytes), version 3 ones before
 * samples_dropped_by_rule (384 bytes), version 4 ones before carried_to
 * (392 bytes); they are read with zeros in what they lack
 * (usage_rec_read) and written back as the current version the next time
 * the hour changes. A record longer than struct usage_rec (a newer
 * version) is read up to what this version knows. Fields are only ever
 * added at the end: bump USAGE_FORMAT when one is.
 *
 * The carried record (format 4 on). When the writer's cleanup deletes a
 * tenant's records older than [storage] usage_retention (usage_cleanup),
 * it adds their counters into the tenant's carried record in the same
 * transaction, and sets its carried_to to the cutoff: every hour of the
 * tenant before carried_to that was ever recorded is in it, and no record
 * is kept for those hours (but one a wall clock stepped back by more than
 * the retention writes afterwards, carried at the next cleanup). So the
 * carried record plus the records kept is everything the tenant was ever
 * counted, whatever was deleted: what the exported counters are
 * (usage_export.h), which must never go down. Its active_series is 0 (an
 * estimate per hour is no counter); carried_to is 0 in an hour's record.
 * Nothing but the export reads it: the reports, the status page and
 * every walk over hours skip it (store.h). A directory of an earlier
 * format has no carried record: nothing was carried, zero.
 *
 * Refusals: requests_refused[r] counts the tenant's requests refused for
 * enum refuse_reason r (metrics.h, whose values are fixed for this);
 * samples_refused[r] the samples in them as far as the body was decoded:
 * whole series before the first malformed one when decoding failed, none
 * when the request was refused before its body was decoded (too large,
 * shutting down, overloaded), all of them when it was refused after (a
 * limit, the buffer, storage). Requests without a tenant (refused before
 * their tenant was known, or with no tenancy) are not in usage records.
 *
 * samples_deduplicated: samples of requests from an HA replica that was
 * not elected (ha.h), answered 2xx and not stored: not billed samples
 * (samples counts only what was stored).
 *
 * samples_dropped_by_rule: samples (and histograms) of series a relabel
 * rule dropped (relabel.h) from requests that were stored: not stored,
 * not billed (series, samples and active_series count what was stored).
 *
 * Active series are a HyperLogLog estimate with 2^14 registers (hll.h):
 * no bias, a standard error of 0.81%.
 */
#ifndef RELAY_USAGE_H
#define RELAY_USAGE_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "config.h"
#include "hll.h"
#include "store.h"

#define USAGE_FORMAT 5
#define USAGE_REC_V1_SIZE 248  /* bytes of a version 1 record */
#define USAGE_REC_V2_SIZE 376  /* bytes of a version 2 record */
#define USAGE_REC_V3_SIZE 384  /* bytes of a version 3 record */
#define USAGE_REC_V4_SIZE 392  /* bytes of a version 4 record */
#define USAGE_HLL_P HLL_P
#define USAGE_HLL_M HLL_M
#define USAGE_REFUSED_SLOTS 16
#define USAGE_DROPPED_SLOTS 4

enum usage_drop {
	DROP_FULL,       /* when_full = drop_oldest */
	DROP_AGE,        /* older than max_age */
	DROP_UNUSED,     /* reserved (format 1 slot, always 0) */
	DROP_PURGED      /* set-aside entries deleted: by an operator, or
			  * past setaside_max_size or setaside_max_age */
};

struct usage_rec {
	uint32_t version;
	uint32_t reserved;
	uint64_t requests;
	uint64_t series;
	uint64_t samples;
	uint64_t histograms;
	uint64_t exemplars;
	uint64_t metadata;
	uint64_t bytes_compressed;
	uint64_t bytes_decoded;
	uint64_t active_series;     /* estimate; see above */
	uint64_t samples_delivered;
	uint64_t samples_refused[USAGE_REFUSED_SLOTS]; /* enum refuse_reason */
	uint64_t samples_dropped[USAGE_DROPPED_SLOTS]; /* enum usage_drop */
	uint64_t requests_refused[USAGE_REFUSED_SLOTS]; /* version 2 on */
	uint64_t samples_deduplicated; /* version 3 on: HA replica not elected */
	uint64_t samples_dropped_by_rule; /* version 4 on: relabel rules */
	uint64_t carried_to;  /* version 5 on: a carried record's cutoff
			       * (Unix seconds); 0 in an hour's record */
};

/* Reads a stored record of any version (len bytes at p) into out, with
 * zeros in the fields its version did not have. Returns 0, or ERR_CORRUPT
 * when it is shorter than a version 1 record. */
int usage_rec_read(const void *p, size_t len, struct usage_rec *out);

/* Adds every counter of src to dst (not active_series, not carried_to). */
void usage_add(struct usage_rec *dst, const struct usage_rec *src);

/* Hour (Unix seconds) that contains time ms. */
static inline uint64_t usage_hour(uint64_t ms)
{
	return ms / 1000 / 3600 * 3600;
}

/* A series hash as a register update (see hll.h). */
static inline uint32_t usage_hll_code(uint64_t hash)
{
	return hll_code(hash);
}

/* Applies a register update to regs (USAGE_HLL_M bytes). */
static inline void usage_hll_apply(uint8_t *regs, uint32_t code)
{
	hll_dense_apply(regs, code);
}

/* Estimated distinct series from the registers. */
static inline uint64_t usage_hll_estimate(const uint8_t *regs)
{
	return hll_dense_estimate(regs);
}

/* Usage to add in one transaction, per tenant and hour. */
struct usage_delta {
	char tenant[TENANT_ID_MAX + 1];
	size_t tlen;
	uint64_t hour;
	struct usage_rec add;
	struct hll sketch;       /* owned: loaded when first needed */
	int has_sketch;          /* sketch loaded */
};

struct usage_round {
	struct usage_delta *d;   /* owned */
	size_t n, cap;
};

/* The record to add to for (tenant, hour); NULL when out of memory. */
struct usage_rec *usage_round_get(struct usage_round *r, const char *tenant,
				  size_t tlen, uint64_t hour);

/* Adds series (usage_hll_code()s) to the (tenant, hour) sketch, loading it
 * from the store first. Returns 0 or an ERR_* code. */
int usage_round_series(struct usage_round *r, struct store_txn *txn,
		       const char *tenant, size_t tlen, uint64_t hour,
		       const uint32_t *codes, size_t n);

/*
 * A round's accounting, called by the writer for what its transaction
 * does, in the hour of now: a stored request (its counters, and its series
 * in the sketch), a refused one (reason: enum refuse_reason), samples
 * delivered upstream, samples dropped. Each returns 0 or an ERR_* code.
 */
int usage_count_stored(struct usage_round *r, struct store_txn *txn,
		       const char *tenant, size_t tlen, uint64_t now,
		       const struct usage_rec *add, const uint32_t *hll,
		       size_t nhll);
int usage_count_refused(struct usage_round *r, const char *tenant,
			size_t tlen, uint64_t now, int reason, uint64_t samples);
int usage_count_delivered(struct usage_round *r, const char *tenant,
			  size_t tlen, uint64_t now, uint64_t samples);
int usage_count_dropped(struct usage_round *r, const char *tenant,
			size_t tlen, uint64_t now, enum usage_drop why,
			uint64_t samples);
int usage_count_deduplicated(struct usage_round *r, const char *tenant,
			     size_t tlen, uint64_t now, uint64_t samples);

/* Adds the round to the records (and sketches) in the transaction.
 * Returns 0 or an ERR_* code. */
int usage_round_flush(struct usage_round *r, struct store_txn *txn);

void usage_round_clear(struct usage_round *r);
void usage_round_free(struct usage_round *r);

/* Deletes sketches of hours that can no longer change and records older
 * than retention_ms, whose counters it adds into their tenants' carried
 * records (above) in the same transaction. Returns 0 or an ERR_* code. */
int usage_cleanup(struct store_txn *txn, uint64_t now, uint64_t retention_ms);

/* Which rows a query wants. */
struct usage_filter {
	const char *tenant;  /* NULL: all */
	uint64_t from_s;     /* hours >= from (0: no bound) */
	uint64_t to_s;       /* hours < to (0: no bound) */
	uint64_t limit;      /* at most this many rows (0: all of them) */
	const char *after;   /* a page's cursor: rows after it (NULL: from
			      * the first) */
};

/* Parses a time for from/to: Unix seconds or RFC 3339 UTC
 * ("2026-11-24T19:00:00Z", or just the date). Returns 0 or -1. */
int usage_parse_time(const char *s, uint64_t *out_s);

/*
 * Reports (usage_report.c): the usage records matching a filter, one row
 * per tenant and hour in key order, as JSON ({"usage":[...]}) or as CSV
 * with a header line. A report is made part by part, each part from one
 * page of records read in a short read transaction of its own, so that
 * neither memory nor the time a read transaction is held grows with the
 * range.
 *
 * Paging: with a limit, a report holds the rows up to the limit-th row
 * found when it is opened (its end key; a row first recorded inside that
 * range while the report is read is in it too); when more
 * follow, the cursor for the next page (the key of this page's last row, as
 * "TENANT:HOUR" with HOUR in Unix seconds) is known as soon as the report
 * is open (usage_report_next_cursor) and the JSON ends with
 * ,"next":"CURSOR"}. A filter with after = CURSOR gives the rows after
 * it: every row exactly once across the pages, whatever is written
 * meanwhile (a record added behind a page's cursor shows up in no page).
 * Without a limit the report is every matching row.
 */
struct usage_report;

/* A cursor's text form and back. Format: 0 or -1 (outlen too small);
 * parse: 0, or -1 if s is not one. */
int usage_cursor_format(const struct store_pos *p, char *out,
			size_t outlen);
int usage_cursor_parse(const char *s, struct store_pos *p);

/* Opens a report (the caller frees it with usage_report_free); it reads
 * the store once: with a limit, the page's end and whether more follows.
 * Returns 0, ERR_FAIL (f->after is not a cursor), ERR_NOMEM, or the
 * store's ERR_* code. */
int usage_report_open(struct usage_report **out, struct store *st,
		      const struct usage_filter *f, int csv);

/* Appends the report's next part to out (the head, the rows of one page
 * of records, possibly none, or the end). Returns 1 after a part, 0 when
 * the report is complete (nothing appended), or an ERR_* code (ERR_NOMEM:
 * out's bound). */
int usage_report_next(struct usage_report *r, struct buf *out);

/* Writes the next page's cursor into out: 1 when there is one, 0 when
 * this page is the last, or ERR_FAIL (outlen too small). */
int usage_report_next_cursor(const struct usage_report *r, char *out,
			     size_t outlen);

void usage_report_free(struct usage_report *r);

/* Reads a query's filter through get (a query argument's value, or NULL):
 * tenant, from, to, format (json or csv: *csv), limit, after. The filter
 * refers to get's strings. Returns 0, or -1 with the reason in *why
 * (static text, one line ending in a newline). */
int usage_query_parse(struct usage_filter *f, int *csv,
		      const char *(*get)(void *arg, const char *name),
		      void *arg, const char **why);

/* The whole report appended to out (usage_report_next until it is
 * complete). Returns 0 or an ERR_* code (ERR_NOMEM: out's bound). */
int usage_format(struct store *st, const struct usage_filter *f, int csv,
		 struct buf *out);

/* The CLI: `relay usage -c FILE [--tenant T] [--from X] [--to Y] [--csv]`.
 * Reads the data directory directly (also while a relay runs). Returns
 * the exit code. */
int usage_main(int argc, char **argv);

#endif
