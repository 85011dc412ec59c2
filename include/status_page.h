/*
 * status_page.h - the page at GET /: server-rendered HTML, no script,
 * nothing loaded from elsewhere.
 *
 * For anyone: the version and uptime; the upstream (delivering, backing
 * off or up to date; its last success and last error since start, the
 * error as its HTTP status and class only); the buffer (entries, bytes,
 * samples, oldest age, fill of [storage] max_size).
 *
 * With the admin token (http.c checks it: Bearer, or HTTP Basic with user
 * admin and the token as password): the last error's text too (it may
 * name URLs and hosts or quote a response body), and a table of tenants (samples/s over
 * the time since an earlier view of the page at least 10 s before, or
 * since start; bytes and share of the buffer; requests refused in the
 * current and the previous UTC hour, from the usage records; entries set
 * aside in the last hour) and an inline SVG chart of the samples each
 * tenant had accepted per UTC hour over the last 24 hours, from the usage
 * records. Every tenant id and upstream text is HTML-escaped.
 */
#ifndef RELAY_STATUS_PAGE_H
#define RELAY_STATUS_PAGE_H

#include "buf.h"
#include "config.h"

struct store;
struct queue;

/* Most tenants in the table; the chart draws the 8 with the most samples
 * and the rest as one line. */
#define STATUS_PAGE_TENANTS 200

/* Appends the page to out; admin: with the tenant part. Returns 0 or an
 * ERR_* code (ERR_NOMEM: out's bound). */
int status_page_render(struct buf *out, const struct config *cfg,
		       struct store *st, struct queue *q, int admin);

/* Appends s[0..n) to out with & < > " ' escaped. Returns 0 or -1. */
int status_page_escape(struct buf *out, const char *s, size_t n);

#endif
