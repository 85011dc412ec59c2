/*
 * http_stream.c - an answer streamed from a source, part by part (see
 * http_stream.h).
 */
#include "http_stream.h"

#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "log.h"
#include "metrics.h"

/* What libmicrohttpd asks for at most per call. */
#define STREAM_BLOCK (64 * 1024)

struct stream {
	struct http_stream_src src;
	struct buf part;         /* the part being sent */
	size_t off;              /* bytes of part sent */
	int complete;            /* src said the answer is complete */
};

static ssize_t stream_read(void *cls, uint64_t at, char *dst, size_t max)
{
	struct stream *s = cls;
	size_t n;
	int rc;

	(void)at;
	while (s->off == s->part.len) {
		if (s->complete)
			return MHD_CONTENT_READER_END_OF_STREAM;
		buf_reset(&s->part);
		s->off = 0;
		rc = s->src.next(s->src.arg, &s->part);
		if (rc < 0) {
			metric_add(&metrics.answers_cut, 1);
			log_msg(LOG_WARN, "answer cut short", "what=%s error=\"%s\"",
				s->src.what, err_str(rc));
			return MHD_CONTENT_READER_END_WITH_ERROR;
		}
		if (rc == 0)
			s->complete = 1;
	}
	n = s->part.len - s->off;
	if (n > max)
		n = max;
	memcpy(dst, s->part.p + s->off, n);
	s->off += n;
	return (ssize_t)n;
}

static void stream_free(void *cls)
{
	struct stream *s = cls;

	s->src.done(s->src.arg);
	buf_free(&s->part);
	free(s);
}

struct MHD_Response *http_stream_response(const struct http_stream_src *src)
{
	struct MHD_Response *resp;
	struct stream *s = calloc(1, sizeof(*s));

	if (s == NULL) {
		src->done(src->arg);
		return NULL;
	}
	s->src = *src;
	buf_init(&s->part, HTTP_STREAM_PART_MAX);
	resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, STREAM_BLOCK,
						 stream_read, s, stream_free);
	if (resp == NULL)
		stream_free(s);
	return resp;
}
