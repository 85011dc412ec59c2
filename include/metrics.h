/*
 * metrics.h - the relay's own counters, rendered in the Prometheus text
 * format at GET /metrics. All names start with relay_.
 *
 * Counters are process-wide atomics (relaxed: each is exact on its own, a
 * scrape is not a snapshot across them). Gauges of what is buffered come
 * from the queue at render time.
 */
#ifndef RELAY_METRICS_H
#define RELAY_METRICS_H

#include <stdatomic.h>
#include <stdint.h>

#include "buf.h"

struct queue;

/*
 * Why a request was refused; index of relay_requests_refused_total and of
 * the refusal columns in usage records.
 *
 * ON DISK: these values are stored in usage records (usage.h). Each keeps
 * its number for ever: add new reasons at the end, never renumber or
 * reuse one, and bump USAGE_FORMAT if a value's meaning changes.
 */
enum refuse_reason {
	REFUSE_BAD_REQUEST = 0,   /* 400: corrupt snappy, bad protobuf, bad labels */
	REFUSE_UNAUTHORIZED = 1,  /* 401 */
	REFUSE_METHOD = 2,        /* 405 */
	REFUSE_TOO_LARGE = 3,     /* 413 */
	REFUSE_UNSUPPORTED = 4,   /* 415: content type, encoding, Remote Write 2.0 */
	REFUSE_RATE_LIMITED = 5,  /* 429/503: tenant over its rate */
	REFUSE_TENANT_FULL = 6,   /* 429/503: tenant over its share of the buffer */
	REFUSE_BUFFER_FULL = 7,   /* 503: buffer at max_size */
	REFUSE_OVERLOADED = 8,    /* 503: decoded bytes in flight at the limit */
	REFUSE_STORAGE = 9,       /* 503: LMDB commit failed */
	REFUSE_SHUTTING_DOWN = 10,/* 503 */
	REFUSE_TOO_MANY_TENANTS = 11, /* 429: a new header tenant past
				       * [tenancy] max_tenants */
	REFUSE_SERIES_LIMIT = 12, /* 400: new series of a tenant at its
				   * [tenant] max_series (the rest of the
				   * request is stored) */
	REFUSE_RELABEL_INVALID = 13, /* 400: series a relabel rule left
				      * invalid (the rest of the request
				      * is stored) */
	REFUSE_NREASONS           /* not stored: the count of the above */
};

/* Why the relay closed a client connection itself (conn_guard.c). */
enum conn_close_reason {
	CONN_CLOSE_HEADER_TIMEOUT, /* headers not complete within header_timeout */
	CONN_CLOSE_SLOW_BODY,      /* body under body_min_rate for body_timeout */
	CONN_CLOSE_PER_IP,         /* over max_connections_per_ip */
	CONN_CLOSE_NREASONS
};

#define METRICS_LAT_BUCKETS 14

struct latency {
	_Atomic uint64_t buckets[METRICS_LAT_BUCKETS]; /* cumulative at render */
	_Atomic uint64_t count;
	_Atomic uint64_t sum_us;
};

struct metrics {
	_Atomic uint64_t requests[600];          /* by HTTP status we answered */
	_Atomic uint64_t refused[REFUSE_NREASONS];
	_Atomic uint64_t samples_refused[REFUSE_NREASONS];
	_Atomic uint64_t series_received;
	_Atomic uint64_t series_sorted;          /* stored with labels sorted */
	_Atomic uint64_t samples_received;
	_Atomic uint64_t histograms_received;
	_Atomic uint64_t exemplars_received;
	_Atomic uint64_t metadata_received;
	_Atomic uint64_t series_dropped_by_rule;  /* relabel rules, in stored requests */
	_Atomic uint64_t samples_dropped_by_rule;
	_Atomic uint64_t relabel_cache_hits;      /* series whose rule result */
	_Atomic uint64_t relabel_cache_misses;    /* came from / was not in the cache */
	_Atomic uint64_t relabel_cache_bytes;     /* counted against relabel_cache */
	_Atomic uint64_t relabel_regex_limits;    /* matches stopped by PCRE2's
						   * limits (as no match) */
	_Atomic uint64_t bytes_received;         /* compressed bodies accepted */
	_Atomic uint64_t bytes_decoded;          /* decoded bodies accepted */
	_Atomic uint64_t duplicates;             /* resent batches not stored again */
	_Atomic uint64_t write_client_gone;      /* writes whose client left
						  * before the answer */
	_Atomic uint64_t usage_exports;          /* usage series batches stored */
	_Atomic uint64_t usage_export_failures;  /* exports not stored */
	_Atomic uint64_t answers_cut;            /* streamed answers a storage
						  * error cut short */
	_Atomic uint64_t samples_forwarded;
	/* delivered under ids the configuration has changed or removed since */
	_Atomic uint64_t samples_forwarded_kept_dest;
	_Atomic uint64_t series_forwarded;
	_Atomic uint64_t bytes_forwarded;        /* compressed bytes sent and 2xx'd */
	_Atomic uint64_t upstream_requests[600]; /* by status; 0 = network error */
	_Atomic uint64_t upstream_retries;
	_Atomic uint64_t upstreams_down;         /* gates probing (upstream_gate.h) */
	_Atomic uint64_t upstream_probes;        /* probes let through */
	_Atomic uint64_t upstream_outages;       /* gates that went down */
	_Atomic uint64_t upstream_misconfigured[600]; /* by status: URL/credentials wrong */
	_Atomic uint64_t batches_set_aside;
	_Atomic uint64_t samples_set_aside;
	_Atomic uint64_t batches_malformed; /* set aside unsent: unreadable */
	_Atomic uint64_t samples_dropped_full;   /* when_full = drop_oldest */
	_Atomic uint64_t samples_dropped_age;    /* older than max_age */
	_Atomic uint64_t commits;
	_Atomic uint64_t commit_batches;         /* requests made durable */
	_Atomic uint64_t commit_errors;
	struct latency commit_latency;           /* one LMDB commit incl. sync */
	struct latency upstream_latency;         /* one upstream request */
	_Atomic uint64_t upstream_inflight;      /* upstream requests being sent
						  * or waiting for their answer */
	_Atomic uint64_t inflight_bytes;         /* decoded bytes being handled */
	_Atomic uint64_t inflight_body_bytes;    /* bodies being received */
	_Atomic uint64_t connections_open;       /* client connections held */
	_Atomic uint64_t conn_closed[CONN_CLOSE_NREASONS];
	_Atomic uint64_t storage_used_bytes;     /* LMDB pages in use, last commit */
	_Atomic uint64_t start_time_s;
	/* The last reload (SIGHUP or POST /-/reload): failed (1) or not, and
	 * the Unix time of the last one that took (the start until then). */
	_Atomic uint64_t reload_failed;
	_Atomic uint64_t reload_success_s;
};

extern struct metrics metrics;

static inline void metric_add(_Atomic uint64_t *c, uint64_t n)
{
	atomic_fetch_add_explicit(c, n, memory_order_relaxed);
}

static inline uint64_t metric_get(_Atomic uint64_t *c)
{
	return atomic_load_explicit(c, memory_order_relaxed);
}

/* Records one observation of us microseconds. */
void latency_observe(struct latency *l, uint64_t us);

/* Counts one answered request with its status. */
void metrics_count_request(unsigned status);

/* Appends the whole exposition to out. q may be NULL (no buffer gauges). */
int metrics_render(struct buf *out, struct queue *q);

/* Name of a refuse_reason, as in the reason label. */
const char *refuse_reason_name(enum refuse_reason r);

#endif
