/*
 * forward.h - delivery of the buffer to the upstream.
 *
 * [upstream] concurrency threads, each with its own keep-alive libcurl
 * handle. A thread claims one (tenant, lane) (queue_claim, lanes.h), takes
 * that lane's parts of the tenant's oldest entries up to max_request_size
 * decoded as one request body (merged without recompressing, and streamed
 * to libcurl from the LMDB map in a read transaction held for that
 * request: the body is never copied whole), sends it, and then (retry.h
 * classifies the answer):
 *   2xx            asks the writer to record the lane through them (an
 *                  entry goes once every lane with a part is through);
 *   5xx, 429, 408, a network error
 *                  the upstream is down: its gate lets one request at a
 *                  time probe it (capped exponential backoff with jitter,
 *                  or Retry-After held within min_backoff..max_backoff)
 *                  and the others wait until one succeeds
 *                  (upstream_gate.h); the tenant itself waits min_backoff;
 *   400, 409, 413, 422  the content is refused: sends a merged request's
 *                  entries' parts one by one, and sets aside the lane's
 *                  part refused alone, so a poison batch never blocks the
 *                  rest;
 *   anything else  (3xx, 401, 403, 404, 405, ...) the URL or credentials
 *                  are wrong: backs off like a 5xx, keeps the data,
 *                  counts relay_upstream_misconfigured_total{code} and
 *                  logs status, reason and Location once per 30 s per
 *                  tenant and status.
 * Each request goes under the account and project ids its entries were
 * accepted with (the store's destination records, store.h), whatever the
 * configuration says now; one sent under ids the configuration has since
 * changed or removed is counted in
 * relay_samples_forwarded_kept_destination_total and logged once per 30 s
 * per tenant.
 */
#ifndef RELAY_FORWARD_H
#define RELAY_FORWARD_H

#include <stddef.h>

#include "buf.h"
#include "config.h"

/* Bytes curl sends at a time, per request: its upload buffer
 * (CURLOPT_UPLOAD_BUFFERSIZE), which curl_mem.h keeps between requests. */
#define FORWARD_SEND_BUF 65536

struct store;
struct queue;
struct writer;
struct forwarder;

/* Starts the threads. Returns NULL on failure. */
struct forwarder *forwarder_start(const struct config *cfg, struct store *st,
				  struct queue *q, struct writer *w);

/*
 * Lets each thread finish its current request, but abandons those still
 * in flight at deadline_ms (clock_mono_ms; their entries stay buffered and
 * go again after a restart); joins the threads, frees f. queue_stop must
 * have been called first.
 */
void forwarder_stop(struct forwarder *f, uint64_t deadline_ms);

/*
 * Expands {tenant}, {account_id} and {project_id} in the upstream URL for
 * a tenant: with the ids of dest (the store's record of those the entries
 * were accepted under), or when dest is NULL (entries without a record)
 * with the tenant's ids in cfg; "0" for an id that is unset. Returns 0,
 * or -1 when out is too small.
 */
struct store_dest;
int forward_url(const struct config *cfg, const char *tenant, size_t tlen,
		const struct store_dest *dest, char *out, size_t outlen);

#endif
