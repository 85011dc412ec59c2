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
 * The value is the sum of the column over the tenant's usage records,
 * i.e. everything counted since its oldest record still kept ([storage]
 * usage_retention): a monotonic counter, so that a resent sample changes
 * nothing and increase() over a range equals the records of that range.
 * Hours that can no longer change (before the previous one) are summed
 * once and kept in memory; each export reads only the current and the
 * previous hour of each tenant (one seek per tenant). Within a run the
 * sum never shrinks: records deleted past usage_retention stay counted
 * until the next start, which then begins at the smaller sum (a counter
 * reset, which increase() takes as one). Active series are an estimate
 * per hour, not a counter, and are not exported.
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
