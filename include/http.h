/*
 * http.h - the HTTP API on libmicrohttpd: transport only. Whether a write
 * is taken is admission.h's to say; what it becomes, ingest.h's.
 *
 * Every route served (http.c: routes[]; GET also answers HEAD):
 *
 *   POST /api/v1/write            Remote Write 1.0 (snappy protobuf); 204
 *                                 once durable (or a resend already
 *                                 stored); refusals as admission.h says,
 *                                 a text line, Retry-After on 429/503;
 *                                 another method: 405, counted as refused
 *   GET  /                        status page (status_page.h): HTML;
 *                                 its tenant part with the admin token
 *                                 as Bearer or HTTP Basic (user admin);
 *                                 ?admin without it: 401 with
 *                                 WWW-Authenticate: Basic realm="relay"
 *   GET  /metrics                 the relay's own metrics (metrics.h)
 *   GET  /-/healthy               200 while the process serves
 *   GET  /-/ready                 200 once storage is open, 503 while
 *                                 stopping
 *   POST /-/reload         admin  reads the file again: 200, or 400 and
 *                                 why (the running config is kept)
 *   GET  /api/v1/usage     admin  usage records (usage.h), streamed:
 *                                 ?tenant= &from= &to= (Unix seconds or
 *                                 RFC 3339) &format=json|csv; pages with
 *                                 &limit= &after= (JSON "next" and header
 *                                 X-Usage-Next name the next page)
 *   GET  /api/v1/setaside  admin  entries the upstream refused for good,
 *                                 JSON, streamed; ?tenant= &seq= (any
 *                                 method lists)
 *   POST /api/v1/setaside/replay
 *                          admin  queues the matching entries again: 202
 *   POST /api/v1/setaside/purge
 *                          admin  deletes the matching entries: 202
 *
 * admin: Authorization: Bearer [server] admin_token, else 401 (403 while
 * no admin_token is set); checked after the method. A known path with
 * another method: 405 with Allow; an unknown path: 404 (405 under /-/).
 * With [server] tls_client_ca, a request without a trusted client
 * certificate gets 403 on any route.
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
struct series_limit;
struct http;

struct http_deps {
	const struct config *cfg; /* ref */
	struct store *st;         /* ref */
	struct queue *q;          /* ref */
	struct writer *w;         /* ref */
	struct series_limit *sl;  /* ref: [tenant] max_series; NULL: none */
};

/* Binds [server] listen and starts serving. Returns NULL with a reason in
 * err on failure. */
struct http *http_start(const struct http_deps *deps, char *err, size_t errlen);

/* From now on /-/ready and new writes get 503 (the relay is stopping);
 * everything else is served as before. */
void http_refuse_new(struct http *h);

/* Stops accepting, answers the requests in flight (waiting for their
 * commits, which the writer always ends; a wait past wait_ms is logged),
 * then closes every connection and frees h. */
void http_stop(struct http *h, unsigned wait_ms);

#endif
