/*
 * test_upstream_conn.c - reading an upstream's answer (its head and the
 * size lines of a chunked body) and which URLs upstream_conn carries.
 * The requests themselves go to real servers in the integration tests
 * (VictoriaMetrics, Prometheus, nginx: t_upstream_answers and the rest).
 */
#include "upstream_conn.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "unit.h"

/* Parses head (a C string) into *a; the other results into the rest. */
static int head(const char *text, struct upstream_answer *a, int64_t *len,
		int *chunked, int *keep)
{
	static char reason[64];

	memset(a, 0, sizeof(*a));
	a->reason = reason;
	a->reason_max = sizeof(reason);
	return upstream_conn_head(text, strlen(text), a, len, chunked, keep);
}

static void test_head_victoriametrics(void)
{
	struct upstream_answer a;
	int64_t len;
	int chunked, keep;

	CHECK_EQ_INT(head("HTTP/1.1 204 No Content\r\n"
			  "Vary: Accept-Encoding\r\n"
			  "X-Server-Hostname: vm\r\n"
			  "Date: Sun, 06 Dec 2026 23:51:54 GMT\r\n\r\n",
			  &a, &len, &chunked, &keep), 0);
	CHECK_EQ_INT(a.status, 204);
	CHECK_STR(a.status_text, "No Content");
	CHECK_EQ_INT(len, 0);
	CHECK_EQ_INT(chunked, 0);
	CHECK_EQ_INT(keep, 1);
}

static void test_head_fields(void)
{
	struct upstream_answer a;
	int64_t len;
	int chunked, keep;

	CHECK_EQ_INT(head("HTTP/1.1 503 Service Unavailable\r\n"
			  "retry-after:   7 \r\n"
			  "LOCATION: http://elsewhere/api/v1/write\r\n"
			  "Content-Length: 12\r\n"
			  "Connection: close\r\n\r\n",
			  &a, &len, &chunked, &keep), 0);
	CHECK_EQ_INT(a.status, 503);
	CHECK_STR(a.status_text, "Service Unavailable");
	CHECK_STR(a.retry_after, "7");
	CHECK_STR(a.location, "http://elsewhere/api/v1/write");
	CHECK_EQ_INT(len, 12);
	CHECK_EQ_INT(keep, 0);
	/* Lines ended by LF alone, no reason phrase. */
	CHECK_EQ_INT(head("HTTP/1.1 400\nContent-Length: 3\n\n", &a, &len,
			  &chunked, &keep), 0);
	CHECK_EQ_INT(a.status, 400);
	CHECK_STR(a.status_text, "");
	CHECK_EQ_INT(len, 3);
	CHECK_EQ_INT(keep, 1);
}

/* Chunked wins over a Content-Length; a body without either ends with the
 * connection, which then serves no more; HTTP/1.0 keeps nothing. */
static void test_head_framing(void)
{
	struct upstream_answer a;
	int64_t len;
	int chunked, keep;

	CHECK_EQ_INT(head("HTTP/1.1 429 Too Many Requests\r\n"
			  "Content-Length: 5\r\n"
			  "Transfer-Encoding: chunked\r\n\r\n",
			  &a, &len, &chunked, &keep), 0);
	CHECK_EQ_INT(chunked, 1);
	CHECK_EQ_INT(len, -1);
	CHECK_EQ_INT(keep, 1);
	CHECK_EQ_INT(head("HTTP/1.1 500 Internal Server Error\r\n\r\n", &a,
			  &len, &chunked, &keep), 0);
	CHECK_EQ_INT(len, -1);
	CHECK_EQ_INT(chunked, 0);
	CHECK_EQ_INT(keep, 0);
	CHECK_EQ_INT(head("HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n", &a,
			  &len, &chunked, &keep), 0);
	CHECK_EQ_INT(len, 0);
	CHECK_EQ_INT(keep, 0);
	/* 1xx, 204 and 304 have no body whatever they say. */
	CHECK_EQ_INT(head("HTTP/1.1 100 Continue\r\n\r\n", &a, &len, &chunked,
			  &keep), 0);
	CHECK_EQ_INT(a.status, 100);
	CHECK_EQ_INT(len, 0);
	CHECK_EQ_INT(keep, 1);
	CHECK_EQ_INT(head("HTTP/1.1 304 Not Modified\r\n"
			  "Transfer-Encoding: chunked\r\n\r\n", &a, &len,
			  &chunked, &keep), 0);
	CHECK_EQ_INT(len, 0);
	CHECK_EQ_INT(chunked, 0);
}

static void test_head_malformed(void)
{
	static const char *const bad[] = {
		"HTTP/2 200 OK\r\n\r\n",
		"HTTP/1.1 20 OK\r\n\r\n",
		"HTTP/1.1 2000 OK\r\n\r\n",
		"HTTP/1.1 600 Nope\r\n\r\n",
		"http/1.1 200 OK\r\n\r\n",
		"SSH-2.0-OpenSSH_9.2\r\n\r\n",
		"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
		"HTTP/1.1 200 OK\r\nContent-Length: 12x\r\n\r\n",
		"HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999\r\n\r\n",
		"HTTP/1.1 200 OK\r\nContent-Length:\r\n\r\n",
		"HTTP/1.1 200 OK\r\nno end of line",
	};
	struct upstream_answer a;
	int64_t len;
	int chunked, keep;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		CHECK_EQ_INT(head(bad[i], &a, &len, &chunked, &keep), -1);
}

static void test_chunk_lines(void)
{
	uint64_t size = 99;
	size_t used = 99;

	CHECK_EQ_INT(upstream_conn_chunk_line("1a\r\nxx", 6, &size, &used), 1);
	CHECK_EQ_INT(size, 26);
	CHECK_EQ_INT(used, 4);
	CHECK_EQ_INT(upstream_conn_chunk_line("0\r\n\r\n", 5, &size, &used), 1);
	CHECK_EQ_INT(size, 0);
	CHECK_EQ_INT(used, 3);
	CHECK_EQ_INT(upstream_conn_chunk_line("FfF;name=v\r\n", 12, &size,
					      &used), 1);
	CHECK_EQ_INT(size, 0xfff);
	CHECK_EQ_INT(used, 12);
	CHECK_EQ_INT(upstream_conn_chunk_line("10\n", 3, &size, &used), 1);
	CHECK_EQ_INT(size, 16);
	/* Not complete yet. */
	CHECK_EQ_INT(upstream_conn_chunk_line("1a", 2, &size, &used), 0);
	CHECK_EQ_INT(upstream_conn_chunk_line("", 0, &size, &used), 0);
	/* Malformed: no digit, a stray character, more than 60 bits. */
	CHECK_EQ_INT(upstream_conn_chunk_line("\r\n", 2, &size, &used), -1);
	CHECK_EQ_INT(upstream_conn_chunk_line("g\r\n", 3, &size, &used), -1);
	CHECK_EQ_INT(upstream_conn_chunk_line("1x\r\n", 4, &size, &used), -1);
	CHECK_EQ_INT(upstream_conn_chunk_line("10000000000000000\r\n", 19,
					      &size, &used), -1);
}

/* http:// without user or proxy goes through upstream_conn; anything else
 * through curl. */
static void test_usable(void)
{
	unsetenv("http_proxy");
	unsetenv("all_proxy");
	unsetenv("ALL_PROXY");
	CHECK_EQ_INT(upstream_conn_usable("http://127.0.0.1:8428/api/v1/write"), 1);
	CHECK_EQ_INT(upstream_conn_usable("HTTP://vm:8480/insert/0:0/prometheus/api/v1/write?extra_label=a=b"), 1);
	CHECK_EQ_INT(upstream_conn_usable("http://[::1]:8428/api/v1/write"), 1);
	CHECK_EQ_INT(upstream_conn_usable("https://vm:8428/api/v1/write"), 0);
	CHECK_EQ_INT(upstream_conn_usable("http://user:pw@vm:8428/api/v1/write"), 0);
	CHECK_EQ_INT(upstream_conn_usable("vm:8428/api/v1/write"), 0);
	setenv("http_proxy", "http://proxy:3128", 1);
	CHECK_EQ_INT(upstream_conn_usable("http://127.0.0.1:8428/api/v1/write"), 0);
	unsetenv("http_proxy");
	setenv("ALL_PROXY", "socks5://proxy:1080", 1);
	CHECK_EQ_INT(upstream_conn_usable("http://127.0.0.1:8428/api/v1/write"), 0);
	unsetenv("ALL_PROXY");
	CHECK_EQ_INT(upstream_conn_usable("http://127.0.0.1:8428/api/v1/write"), 1);
}

int main(void)
{
	RUN(test_head_victoriametrics);
	RUN(test_head_fields);
	RUN(test_head_framing);
	RUN(test_head_malformed);
	RUN(test_chunk_lines);
	RUN(test_usable);
	return unit_done();
}
