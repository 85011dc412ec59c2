/*
 * http.h - the HTTP API on libmicrohttpd.
 *
 *   POST /api/v1/write   Remote Write 1.0; 204 once durable
 *   GET  /metrics        the relay's own metrics
 *   GET  /-/healthy      200 while the process serves
 *   GET  /-/ready        200 once storage is open, 503 while stopping
 *
 * A pool of [server] threads runs the handlers. A write request is decoded
 * and validated on its thread, handed to the writer, and its connection is
 * suspended until the writer has committed it; so a handful of threads
 * serve hundreds of concurrent senders and share each fsync.
 */
#ifndef RELAY_HTTP_H
#define RELAY_HTTP_H

#include "config.h"

struct store;
struct queue;
struct writer;
struct http;

struct http_deps {
	const struct config *cfg; /* ref */
	struct store *st;         /* ref */
	struct queue *q;          /* ref */
	struct writer *w;         /* ref */
};

/* Binds [server] listen and starts serving. Returns NULL with a reason in
 * err on failure. */
struct http *http_start(const struct http_deps *deps, char *err, size_t errlen);

/* From now on /-/ready and new writes get 503 (the relay is stopping);
 * everything else is served as before. */
void http_refuse_new(struct http *h);

/* Stops accepting, answers the requests in flight (waiting up to
 * wait_ms for their commits), then closes every connection and frees h. */
void http_stop(struct http *h, unsigned wait_ms);

/* Content-Type check for a write request: 0 if it is Remote Write 1.0
 * protobuf, else 415 with a reason. */
int http_check_content_type(const char *ct, char *why, size_t whylen);

#endif
