/*
 * answer_check.h - what the answer fuzz target checks on one input, shared
 * with tests/unit/test_fuzz_regress.c, which replays the seeds and the
 * inputs kept under tests/fuzz/regress/answer/.
 *
 * The input, in a buffer of exactly its size (so that ASan sees any read
 * past it), goes to the two parsers of an upstream's answer
 * (upstream_conn.h): as a head to upstream_conn_head, and as the start of
 * a chunked body to upstream_conn_chunk_line. A head taken must give a
 * status of 100..599, text fields that end within their arrays, a body
 * length of -1 or more that agrees with the framing (no body for 1xx, 204
 * and 304; chunked means no length; a body that ends with the connection
 * means the connection is not kept), and the same result a second time.
 * A chunk-size line taken must end at a line feed within the input; one
 * found incomplete has none in it.
 *
 * answer_check() returns NULL, or a one-line description of what is wrong.
 */
#ifndef RELAY_ANSWER_CHECK_H
#define RELAY_ANSWER_CHECK_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "upstream_conn.h"

static char ac_msg[256];

static int ac_ended(const char *s, size_t n)
{
	return memchr(s, '\0', n) != NULL;
}

static const char *answer_check(const uint8_t *data, size_t size)
{
	char *in = malloc(size ? size : 1), reason[8];
	struct upstream_answer a, b;
	int64_t len, len2;
	int chunked, keep, chunked2, keep2, rc, rc2;
	uint64_t csize = 0;
	size_t used = 0;
	const char *e = NULL;

	if (in == NULL)
		return NULL;
	memcpy(in, data, size);
	memset(&a, 0, sizeof(a));
	a.reason = reason;
	a.reason_max = sizeof(reason);
	b = a;
	rc = upstream_conn_head(in, size, &a, &len, &chunked, &keep);
	rc2 = upstream_conn_head(in, size, &b, &len2, &chunked2, &keep2);
	if (rc != 0 && rc != -1)
		e = "upstream_conn_head returned neither 0 nor -1";
	else if (rc != rc2)
		e = "upstream_conn_head gave another result the second time";
	else if (rc == 0 && (a.status < 100 || a.status > 599))
		e = "a head taken with a status outside 100..599";
	else if (rc == 0 && (!ac_ended(a.status_text, sizeof(a.status_text)) ||
			     !ac_ended(a.retry_after, sizeof(a.retry_after)) ||
			     !ac_ended(a.location, sizeof(a.location))))
		e = "a text field of the answer not ended within its array";
	else if (rc == 0 && (len < -1 || keep < 0 || keep > 1 ||
			     chunked < 0 || chunked > 1))
		e = "a body length below -1, or a flag neither 0 nor 1";
	else if (rc == 0 && chunked && len != -1)
		e = "a chunked body with a length";
	else if (rc == 0 && (a.status < 200 || a.status == 204 ||
			     a.status == 304) && (len != 0 || chunked))
		e = "a body for a status that has none";
	else if (rc == 0 && len == -1 && !chunked && keep)
		e = "a body that ends with the connection, and the connection kept";
	else if (rc == 0 && (a.status != b.status || len != len2 ||
			     chunked != chunked2 || keep != keep2 ||
			     strcmp(a.status_text, b.status_text) != 0 ||
			     strcmp(a.retry_after, b.retry_after) != 0 ||
			     strcmp(a.location, b.location) != 0))
		e = "upstream_conn_head gave another answer the second time";
	if (e == NULL) {
		rc = upstream_conn_chunk_line(in, size, &csize, &used);
		if (rc == 1 && (used == 0 || used > size || in[used - 1] != '\n'))
			e = "a chunk-size line taken that does not end at a line feed";
		else if (rc == 0 && memchr(in, '\n', size) != NULL)
			e = "a chunk-size line found incomplete that has its line feed";
		else if (rc < -1 || rc > 1)
			e = "upstream_conn_chunk_line returned neither -1, 0 nor 1";
	}
	free(in);
	if (e != NULL) {
		snprintf(ac_msg, sizeof(ac_msg), "%s", e);
		return ac_msg;
	}
	return NULL;
}

#endif
