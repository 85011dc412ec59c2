/*
 * forward.h - delivery of the buffer to the upstream.
 *
 * [upstream] concurrency threads, each with its own keep-alive libcurl
 * handle. A thread claims one tenant (queue_claim), takes that tenant's
 * oldest entries up to max_request_size decoded as one request body
 * (merged without recompressing, and streamed to libcurl from the LMDB map
 * in a read transaction held for that request: the body is never copied
 * whole), sends it, and then: on 2xx asks the writer to delete them; on
 * 5xx, 429, 408 or a network error backs the tenant off (capped
 * exponential with jitter, or Retry-After); on any other status sends the
 * entries one by one, and sets aside the one that is refused alone, so a
 * poison batch never blocks the rest.
 */
#ifndef RELAY_FORWARD_H
#define RELAY_FORWARD_H

#include <stddef.h>

#include "buf.h"
#include "config.h"

struct store;
struct queue;
struct writer;
struct forwarder;

/* Starts the threads. Returns NULL on failure. */
struct forwarder *forwarder_start(const struct config *cfg, struct store *st,
				  struct queue *q, struct writer *w);

/* Lets each thread finish its current request, joins them, frees f.
 * queue_stop must have been called first. */
void forwarder_stop(struct forwarder *f);

/*
 * Expands {tenant}, {account_id} and {project_id} in the upstream URL for
 * a tenant (account and project "0" when the tenant has none). Returns 0,
 * or -1 when out is too small.
 */
int forward_url(const struct config *cfg, const char *tenant, size_t tlen,
		char *out, size_t outlen);

#endif
