/*
 * usage_export.h - the usage records as series, written into the relay's
 * own upstream through its own buffer.
 *
 * Every [usage] export_interval a thread of this module sums each tenant's
 * usage records (usage.h) and hands the writer one remote-write batch, as
 * if a client had sent it: it is committed to the buffer and delivered
 * with the rest, so it survives an upstream outage and a crash. Series,
 * one sample each, at the time of the export:
 *
 *   relay_usage_<column>_total{relay="<instance>",tenant="<id>"}
 *       for each counter column of `relay usage`: requests, series,
 *       samples, histogram_samples, exemplars, metadata, bytes_compressed,
 *       bytes_decoded, samples_delivered, samples_deduplicated
 *   relay_usage_requests_refused_total{reason=...,relay=...,tenant=...}
 *   relay_usage_samples_refused_total{reason=...,relay=...,tenant=...}
 *       one series per refusal reason the tenant has a non-zero count of
 *       (reason names as in relay_requests_refused_total)
 *   relay_usage_samples_dropped_total{reason="full"|"age"|"purged",...}
 *       likewise
 *
 * The value is the sum of the column over the tenant's carried record
 * and its usage records (usage.h): everything counted since the tenant's
 * first record, also what was deleted past [storage] usage_retention
 * (the cleanup moves it into the carried record in the transaction that
 * deletes it). So it is a monotonic counter across retention and
 * restarts: a resent sample changes nothing, a restart starts from the
 * value it stopped at, and increase() over a range equals the records of
 * that range. Hours that can no longer change (before the previous one)
 * and the carried record are summed once and kept in memory; each export
 * reads only the current and the previous hour and the carried record of
 * each tenant, in one read transaction (two seeks per tenant). When the
 * cleanup carries records, the total does not change: they were in the
 * memory sum already, and carried_to (usage.h) says so; when it carried
 * an hour that was not (an export late by about usage_retention), the
 * sums are read anew. Active series are an estimate per hour, not a
 * counter, and are not exported.
 *
 * The batch goes to the queue of [usage] export_tenant (its destination:
 * its account and project ids at the time of the export), or with no
 * tenant when that is empty; with {tenant}, {account_id} or {project_id}
 * in [upstream] url and no export_tenant the export stays off (logged),
 * since there would be no destination. The series' tenant label names the
 * billed tenant and is not rewritten (the batch does not pass the tenant
 * stamping), and the batch is not billed: no usage record and no
 * relay_tenant_* counter counts it (the export tenant's samples_delivered,
 * which counts what the upstream took from its queue, does include it).
 * Tenants without an id (requests of a relay without tenancy) are not
 * exported.
 */
#ifndef RELAY_USAGE_EXPORT_H
#define RELAY_USAGE_EXPORT_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "config.h"
#include "usage.h"

struct store;
struct writer;
struct usage_export;

/* Starts the export thread when cfg says so ([usage] export, an upstream
 * destination it can use). Returns it, or NULL when the export is off or
 * could not start (logged either way). */
struct usage_export *usage_export_start(const struct config *cfg,
					struct store *st, struct writer *w);

/* Stops the thread (after the export in progress, if any) and frees ux;
 * NULL is a no-op. */
void usage_export_stop(struct usage_export *ux);

/*
 * The totals an export writes, kept between exports (the export thread
 * owns one; a test makes its own to see what an export would write).
 */
struct usage_totals;

/* An empty set of totals of st's records (the first refresh reads them
 * all); NULL when memory is short. */
struct usage_totals *usage_totals_new(struct store *st);

/* Brings the totals up to the store, with now_ms (wall clock) saying
 * which hours are closed. Returns 0, or an ERR_* code (the next refresh
 * then reads every record anew). */
int usage_totals_refresh(struct usage_totals *tt, uint64_t now_ms);

/* The tenants after a refresh, in key order: their number, and the
 * total of the i-th (ref, valid until the next refresh) with its id. */
size_t usage_totals_count(const struct usage_totals *tt);
const struct usage_rec *usage_totals_at(const struct usage_totals *tt,
					size_t i, const char **id,
					size_t *idlen);

/* Frees tt; NULL is a no-op. */
void usage_totals_free(struct usage_totals *tt);

/*
 * Appends one TimeSeries (as a WriteRequest's field 1) to out: name, the
 * labels reason (when not NULL), relay and tenant, and one sample.
 * Returns 0 or -1 (out's bound).
 */
int usage_export_series(struct buf *out, const char *name, const char *reason,
			const char *relay, const char *tenant, size_t tlen,
			double value, int64_t ts_ms);

/*
 * Appends the series of one tenant's totals (as listed above) to out and
 * adds how many series it wrote to *nseries. Returns 0 or -1.
 */
int usage_export_tenant(struct buf *out, const char *relay, const char *tenant,
			size_t tlen, const struct usage_rec *sum, int64_t ts_ms,
			uint64_t *nseries);

#endif
