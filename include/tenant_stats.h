/*
 * tenant_stats.h - per-tenant counters since start, for the relay_tenant_*
 * series of /metrics.
 *
 * Process-wide like the counters of metrics.h: the HTTP threads count
 * refusals (through admission.h), the writer counts what it made durable,
 * the forwarders what the upstream took. One mutex; each call is short.
 * A tenant shows up on its first count; the tenant's buffer gauges come
 * from the queue (queue.h), which owns what the buffer holds.
 */
#ifndef RELAY_TENANT_STATS_H
#define RELAY_TENANT_STATS_H

#include <stddef.h>
#include <stdint.h>

#include "metrics.h"

struct usage_rec;

struct tenant_counters {
	uint64_t requests;          /* stored */
	uint64_t samples;           /* stored */
	uint64_t series;
	uint64_t bytes;             /* compressed, stored */
	uint64_t duplicates;        /* resends not stored again */
	uint64_t refused[REFUSE_NREASONS]; /* requests refused, by reason */
	uint64_t samples_refused;   /* decoded samples in refused requests */
	uint64_t samples_forwarded;
	uint64_t ha_requests_deduplicated; /* from an HA replica not elected */
	uint64_t ha_samples_deduplicated;
	uint64_t samples_dropped_by_rule; /* in series relabel rules dropped */
};

/* Counts a stored request (u) or a duplicate one (u NULL, dup 1). */
void tenant_stats_received(const char *id, size_t idlen,
			   const struct usage_rec *u, int dup);

/* Counts a refused request and its decoded samples. */
void tenant_stats_refused(const char *id, size_t idlen,
			  enum refuse_reason reason, uint64_t samples);

/* Counts a request of an HA replica not elected, and its samples. */
void tenant_stats_ha_deduplicated(const char *id, size_t idlen,
				  uint64_t samples);

/* Counts samples the upstream took. */
void tenant_stats_forwarded(const char *id, size_t idlen, uint64_t samples);

/* Copies the tenant's counters into out; returns 0, or ERR_NOTFOUND when
 * nothing was counted for it (out is zeroed). */
int tenant_stats_get(const char *id, size_t idlen, struct tenant_counters *out);

/* Calls fn for each tenant with the lock held (fn must not call
 * tenant_stats_*). */
void tenant_stats_each(void (*fn)(const char *id, size_t idlen,
				  const struct tenant_counters *c, void *arg),
		       void *arg);

/* Forgets every tenant (at exit, and between tests). */
void tenant_stats_reset(void);

#endif
