/*
 * http_stream.h - an answer streamed as it is made, for answers whose size
 * grows with the data (usage reports, set-aside listings): the body is
 * asked of a source part by part while libmicrohttpd sends it, so the
 * relay holds one part at a time, never the whole answer.
 *
 * A source's next() appends the answer's next part to out (it may append
 * nothing) and returns 1 while more may follow, 0 when the answer is
 * complete, or an ERR_* code: then the connection is closed where the
 * answer stands (the status line and headers are gone already), and the
 * client sees a cut answer (a chunked body without its last chunk),
 * logged and counted in relay_answers_cut_total. A
 * source that can fail before anything is sent checks that before the
 * answer is queued (usage_report_open reads the store once).
 *
 * Threads: next() runs on the libmicrohttpd thread that sends the answer,
 * one call at a time; done() once, when the answer ends whichever way
 * (sent, client gone, relay stopping).
 */
#ifndef RELAY_HTTP_STREAM_H
#define RELAY_HTTP_STREAM_H

#include <microhttpd.h>

#include "buf.h"

struct http_stream_src {
	int (*next)(void *arg, struct buf *out);
	void (*done)(void *arg);
	void *arg;               /* owned by the stream once it is made */
	const char *what;        /* names the answer in a log line */
};

/* Bytes of one part, at most; a part larger than this fails the answer
 * (ERR_NOMEM). */
#define HTTP_STREAM_PART_MAX ((size_t)16 << 20)

/*
 * A response of unknown length whose body is src's parts. Returns the
 * response (the caller queues and destroys it, as any other), or NULL:
 * then src->done has been called already.
 */
struct MHD_Response *http_stream_response(const struct http_stream_src *src);

#endif
