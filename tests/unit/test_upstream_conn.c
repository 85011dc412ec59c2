/*
 * test_upstream_conn.c - reading an upstream's answer (its head and the
 * size lines of a chunked body), which URLs upstream_conn carries, and
 * whole requests against a peer that answers byte by byte as each test
 * scripts it: what the real servers of the integration tests
 * (VictoriaMetrics, Prometheus, nginx: t_upstream_answers and the rest)
 * do not do on demand, such as an answer cut in the middle of a chunk,
 * one byte at a time, a 100 Continue in the middle of the body, or a kept
 * connection closed as the next request goes out.
 */
#include "upstream_conn.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

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

/* ---- Whole requests against a scripted peer -------------------------- */

/* The body every request sends: BODY_LEN bytes of a pattern, big enough
 * to fill the socket's buffers so that the peer can answer mid-body. */
#define BODY_LEN (8u << 20)

static uint8_t body_byte(size_t i)
{
	return (uint8_t)(i * 7 + 3);
}

struct mem_body {
	uint8_t *p;
	size_t pos;
	int rewinds;
};

static int mem_pieces(void *arg, struct iovec *iov, int max)
{
	struct mem_body *b = arg;
	size_t left = BODY_LEN - b->pos, half = left / 2;
	int k = 0;

	/* Two pieces when it can, so that the iovecs' borders move. */
	if (left == 0 || max < 1)
		return 0;
	if (max >= 2 && half > 0) {
		iov[k].iov_base = b->p + b->pos;
		iov[k++].iov_len = half;
	}
	iov[k].iov_base = b->p + b->pos + (k ? half : 0);
	iov[k].iov_len = left - (k ? half : 0);
	return k + 1;
}

static void mem_advance(void *arg, size_t n)
{
	((struct mem_body *)arg)->pos += n;
}

static int mem_rewind(void *arg)
{
	struct mem_body *b = arg;

	b->pos = 0;
	b->rewinds++;
	return 0;
}

/* How the peer answers. */
enum peer_mode {
	PEER_CLOSE,        /* reads the request, closes without a word */
	PEER_ONE_BYTE,     /* 200, Content-Length 2, a byte a write */
	PEER_CHUNKED,      /* 429 chunked in two writes, then 204 */
	PEER_CHUNK_CUT,    /* a chunked answer cut in a chunk's data */
	PEER_UNTIL_CLOSE,  /* 500 whose body ends with the connection */
	PEER_CONTINUE,     /* 100 Continue after the head, 204 at the end */
	PEER_EARLY,        /* 413 after the head, before the body */
	PEER_REUSE_CLOSE,  /* 204; then the next request read and closed;
			    * 204 on the next connection */
	PEER_REUSE_INTERIM, /* 204; then 100 Continue mid-body and closed */
	PEER_REUSE_PARTIAL, /* 204; then the body read, "HTTP/1.1 5" and
			     * closed */
	PEER_BARE_LF       /* a head of bare LF line ends */
};

/* The port the peer listens on, as the requests' Host must say. */
static int peer_port;

struct peer {
	pid_t pid;
	int port;
	int conns_fd;      /* read end: one byte per connection accepted */
};

static int send_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t k = send(fd, p, n, MSG_NOSIGNAL);
		if (k <= 0)
			return -1;
		p += k;
		n -= (size_t)k;
	}
	return 0;
}

static int send_str(int fd, const char *s)
{
	return send_all(fd, s, strlen(s));
}

/* Reads a request's head; its Content-Length in *cl. 0, or -1 when the
 * connection ended first or the head is not what upstream_conn sends. */
static int read_head(int fd, size_t *cl)
{
	char host[64];

	char h[4096];
	size_t n = 0;

	while (n < 4 || memcmp(h + n - 4, "\r\n\r\n", 4) != 0) {
		if (n == sizeof(h) || recv(fd, h + n, 1, 0) != 1)
			return -1;
		n++;
	}
	h[n - 1] = '\0';
	snprintf(host, sizeof(host), "\r\nHost: 127.0.0.1:%d\r\n", peer_port);
	if (strncmp(h, "POST /api/v1/write HTTP/1.1\r\n", 29) != 0 ||
	    strstr(h, host) == NULL ||
	    strstr(h, "\r\nContent-Encoding: snappy\r\n") == NULL)
		return -1;
	const char *v = strcasestr(h, "\r\nContent-Length: ");
	*cl = v ? strtoul(v + 18, NULL, 10) : 0;
	return 0;
}

/* Reads a body of cl bytes and checks it is the pattern's. 0 or -1. */
static int read_body(int fd, size_t cl)
{
	static uint8_t b[65536];
	size_t at = 0;

	if (cl != BODY_LEN)
		return -1;
	while (at < cl) {
		size_t want = cl - at < sizeof(b) ? cl - at : sizeof(b);
		ssize_t k = recv(fd, b, want, 0);
		if (k <= 0)
			return -1;
		for (ssize_t i = 0; i < k; i++)
			if (b[i] != body_byte(at + (size_t)i))
				return -1;
		at += (size_t)k;
	}
	return 0;
}

static void pause_ms(long ms)
{
	struct timespec t = { ms / 1000, (ms % 1000) * 1000000L };

	nanosleep(&t, NULL);
}

/* One connection of the peer; its index is nth. Returns 0 when all went
 * as scripted, else -1 (the peer's exit status tells the test). */
static int peer_conn(int fd, enum peer_mode mode, int nth)
{
	size_t cl;
	int reqs = 0;

	for (;;) {
		if (read_head(fd, &cl) < 0)
			return reqs > 0 ? 0 : -1;
		reqs++;
		/* The pauses let the client fill the small receive buffer
		 * (peer_start): it is in the middle of the body then. */
		if (mode == PEER_CONTINUE) {
			if (send_str(fd, "HTTP/1.1 100 Continue\r\n\r\n") < 0)
				return -1;
			pause_ms(100);
			if (read_body(fd, cl) < 0)
				return -1;
			return send_str(fd, "HTTP/1.1 204 No Content\r\n\r\n");
		}
		if (mode == PEER_EARLY) {
			char b[65536];
			if (send_str(fd, "HTTP/1.1 413 Payload Too Large\r\n"
				     "Content-Length: 3\r\n\r\nbig") < 0)
				return -1;
			pause_ms(200);
			while (recv(fd, b, sizeof(b), 0) > 0)
				;
			return 0;
		}
		if (mode == PEER_REUSE_INTERIM && reqs == 2) {
			send_str(fd, "HTTP/1.1 100 Continue\r\n\r\n");
			pause_ms(100);
			return 0;   /* closed mid-body */
		}
		if (read_body(fd, cl) < 0)
			return -1;
		switch (mode) {
		case PEER_CLOSE:
			return 0;
		case PEER_ONE_BYTE: {
			const char *a = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nOK";
			for (; *a; a++) {
				if (send_all(fd, a, 1) < 0)
					return -1;
				pause_ms(2);
			}
			break;
		}
		case PEER_CHUNKED:
			if (reqs == 1) {
				if (send_str(fd, "HTTP/1.1 429 Too Many Requests\r\n"
					     "Transfer-Encoding: chunked\r\n\r\n"
					     "5\r\nslow \r\n4;x=y") < 0)
					return -1;
				pause_ms(20);
				if (send_str(fd, "\r\ndown\r\n0\r\nX-T: 1\r\n\r\n") < 0)
					return -1;
			} else if (send_str(fd, "HTTP/1.1 204 No Content\r\n\r\n") < 0) {
				return -1;
			}
			break;
		case PEER_CHUNK_CUT:
			send_str(fd, "HTTP/1.1 429 Too Many Requests\r\n"
				 "Transfer-Encoding: chunked\r\n\r\n9\r\nslow");
			return 0;
		case PEER_UNTIL_CLOSE:
			send_str(fd, "HTTP/1.1 500 Internal Server Error\r\n\r\nbro");
			pause_ms(20);
			send_str(fd, "ken\n");
			return 0;
		case PEER_REUSE_CLOSE:
			if (nth == 0 && reqs == 2)
				return 0;   /* closed without an answer */
			if (send_str(fd, "HTTP/1.1 204 No Content\r\n\r\n") < 0)
				return -1;
			break;
		case PEER_REUSE_INTERIM:
			if (send_str(fd, "HTTP/1.1 204 No Content\r\n\r\n") < 0)
				return -1;
			break;
		case PEER_REUSE_PARTIAL:
			if (reqs == 2) {
				send_str(fd, "HTTP/1.1 5");
				return 0;
			}
			if (send_str(fd, "HTTP/1.1 204 No Content\r\n\r\n") < 0)
				return -1;
			break;
		case PEER_BARE_LF:
			if (send_str(fd, "HTTP/1.1 204 No Content\nX-A: b\n\n") < 0)
				return -1;
			break;
		default:
			return -1;
		}
	}
}

/* Starts a peer answering as mode on a free loopback port. 0 or -1. */
static int peer_start(struct peer *p, enum peer_mode mode)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t alen = sizeof(a);
	int lfd, pipefd[2], fd, rcvbuf = 65536;

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	/* A small receive window (accepted sockets inherit it): a peer that
	 * pauses has the client wait in the middle of the body. */
	if ((lfd = socket(AF_INET, SOCK_STREAM, 0)) < 0 ||
	    setsockopt(lfd, SOL_SOCKET, SO_RCVBUF, &rcvbuf,
		       sizeof(rcvbuf)) < 0 ||
	    bind(lfd, (struct sockaddr *)&a, sizeof(a)) < 0 ||
	    listen(lfd, 8) < 0 ||
	    getsockname(lfd, (struct sockaddr *)&a, &alen) < 0 ||
	    pipe(pipefd) < 0)
		return -1;
	p->port = peer_port = ntohs(a.sin_port);
	if ((p->pid = fork()) < 0)
		return -1;
	if (p->pid == 0) {
		close(pipefd[0]);
		alarm(30);
		/* Per connection "c" when taken, then "o" (as scripted) or
		 * "x" before it is closed. */
		for (int n = 0; (fd = accept(lfd, NULL, NULL)) >= 0; n++) {
			if (write(pipefd[1], "c", 1) != 1 ||
			    write(pipefd[1], peer_conn(fd, mode, n) == 0 ?
				  "o" : "x", 1) != 1)
				_exit(3);
			close(fd);
		}
		_exit(1);
	}
	close(lfd);
	close(pipefd[1]);
	p->conns_fd = pipefd[0];
	return 0;
}

/* Stops the peer; returns how many connections it took, or -1 when its
 * script found something wrong on one (a head or a body not the one
 * sent). */
static int peer_stop(struct peer *p)
{
	char b[64];
	int n = 0, bad = 0;
	ssize_t k;

	kill(p->pid, SIGTERM);
	waitpid(p->pid, NULL, 0);
	while ((k = read(p->conns_fd, b, sizeof(b))) > 0)
		for (ssize_t i = 0; i < k; i++) {
			n += b[i] == 'c';
			bad |= b[i] == 'x';
		}
	close(p->conns_fd);
	return bad ? -1 : n;
}

static uint8_t *pattern;
static const char *const headers[] = {
	"Content-Encoding: snappy", "Content-Type: application/x-protobuf", NULL
};
static char reason[512];

/* Posts the pattern to the peer on c. */
static long post(struct upstream_conn *c, const struct peer *p,
		 struct mem_body *mb, struct upstream_answer *a)
{
	char url[64];
	struct upstream_body body = {
		.len = BODY_LEN, .pieces = mem_pieces, .advance = mem_advance,
		.rewind = mem_rewind, .arg = mb
	};
	struct upstream_req req = {
		.url = url, .headers = headers, .body = &body,
		.timeout_ms = 10000, .connect_timeout_ms = 5000,
	};

	snprintf(url, sizeof(url), "http://127.0.0.1:%d/api/v1/write", p->port);
	mb->p = pattern;
	mb->pos = 0;
	memset(a, 0, sizeof(*a));
	a->reason = reason;
	a->reason_max = sizeof(reason);
	return upstream_conn_post(c, &req, a);
}

/* One test's client and peer. */
static struct rig {
	struct upstream_conn c;
	struct upstream_answer a;
	struct mem_body mb;
	struct peer p;
} rig;

/* A new connection state and a peer answering as mode (a peer left by a
 * test that failed is stopped first). 0 or -1. */
static int rig_start(enum peer_mode mode)
{
	if (rig.p.pid > 0)
		peer_stop(&rig.p);
	upstream_conn_close(&rig.c);
	memset(&rig, 0, sizeof(rig));
	upstream_conn_init(&rig.c);
	return peer_start(&rig.p, mode);
}

static long rig_post(void)
{
	return post(&rig.c, &rig.p, &rig.mb, &rig.a);
}

/* Closes the connection and stops the peer; peer_stop's result. */
static int rig_stop(void)
{
	int n;

	upstream_conn_close(&rig.c);
	n = peer_stop(&rig.p);
	rig.p.pid = 0;
	return n;
}

/* The upstream closes after the request without answering: no answer,
 * said so, and no second try on a connection that was new. */
static void test_post_closed(void)
{
	CHECK(rig_start(PEER_CLOSE) == 0);
	CHECK_EQ_INT(rig_post(), 0);
	CHECK(strstr(rig.a.err, "closed the connection before answering") != NULL);
	CHECK_EQ_INT(rig.mb.rewinds, 0);
	CHECK_EQ_INT(rig.c.fd, -1);
	CHECK_EQ_INT(rig_stop(), 1);
}

/* An answer a byte at a time is read whole. */
static void test_post_one_byte(void)
{
	CHECK(rig_start(PEER_ONE_BYTE) == 0);
	CHECK_EQ_INT(rig_post(), 200);
	CHECK_STR(rig.a.reason, "OK");
	CHECK_STR(rig.a.status_text, "OK");
	CHECK_EQ_INT(rig_post(), 200);
	CHECK_EQ_INT(rig_stop(), 1);
}

/* A chunked answer (a chunk extension, a size line cut between writes,
 * a trailer) gives its reason, and the connection serves the next
 * request. */
static void test_post_chunked(void)
{
	CHECK(rig_start(PEER_CHUNKED) == 0);
	CHECK_EQ_INT(rig_post(), 429);
	CHECK_STR(rig.a.reason, "slow down");
	CHECK_STR(rig.a.status_text, "Too Many Requests");
	CHECK(rig.c.fd >= 0);
	CHECK_EQ_INT(rig_post(), 204);
	CHECK_EQ_INT(rig.c.served, 2);
	CHECK_EQ_INT(rig_stop(), 1);
}

/* A chunked answer cut in a chunk is no answer. */
static void test_post_chunk_cut(void)
{
	CHECK(rig_start(PEER_CHUNK_CUT) == 0);
	CHECK_EQ_INT(rig_post(), 0);
	CHECK(strstr(rig.a.err, "malformed or cut") != NULL);
	CHECK_EQ_INT(rig.c.fd, -1);
	CHECK_EQ_INT(rig_stop(), 1);
}

/* A body without length ends with the connection: read whole, and the
 * connection is not kept. */
static void test_post_until_close(void)
{
	CHECK(rig_start(PEER_UNTIL_CLOSE) == 0);
	CHECK_EQ_INT(rig_post(), 500);
	CHECK_STR(rig.a.reason, "broken\n");
	CHECK_EQ_INT(rig.c.fd, -1);
	CHECK_EQ_INT(rig_stop(), 1);
}

/* A 100 Continue while the body is going out is passed over: the body
 * is sent whole (the peer checks every byte) and the final answer read. */
static void test_post_continue(void)
{
	CHECK(rig_start(PEER_CONTINUE) == 0);
	CHECK_EQ_INT(rig_post(), 204);
	CHECK_EQ_INT(rig_stop(), 1);
}

/* A final answer before the body's end stops the sending; it is the
 * answer, and the connection is not kept. */
static void test_post_early(void)
{
	CHECK(rig_start(PEER_EARLY) == 0);
	CHECK_EQ_INT(rig_post(), 413);
	CHECK_STR(rig.a.reason, "big");
	CHECK(rig.mb.pos < BODY_LEN);
	CHECK_EQ_INT(rig.c.fd, -1);
	CHECK_EQ_INT(rig_stop(), 1);
}

/* A kept connection closed as the next request goes out: that request
 * is sent once more, from the body's start, on a new connection. */
static void test_post_reuse_closed(void)
{
	CHECK(rig_start(PEER_REUSE_CLOSE) == 0);
	CHECK_EQ_INT(rig_post(), 204);
	CHECK_EQ_INT(rig.mb.rewinds, 0);
	CHECK_EQ_INT(rig_post(), 204);
	CHECK_EQ_INT(rig.mb.rewinds, 1);
	CHECK_EQ_INT(rig_stop(), 2);
}

/* A kept connection that answered something (an interim answer while the
 * body went out, or the start of a status line) and then closed: the
 * upstream had the request, so it is not sent again. */
static void test_post_reuse_answered(void)
{
	static const enum peer_mode modes[] = {
		PEER_REUSE_INTERIM, PEER_REUSE_PARTIAL
	};

	for (size_t i = 0; i < 2; i++) {
		CHECK(rig_start(modes[i]) == 0);
		CHECK_EQ_INT(rig_post(), 204);
		CHECK_EQ_INT(rig_post(), 0);
		CHECK(strstr(rig.a.err, "closed the connection in its answer") != NULL);
		CHECK_EQ_INT(rig.mb.rewinds, 0);
		CHECK_EQ_INT(rig_stop(), 1);
	}
}

/* A connection idle past UPSTREAM_CONN_MAX_IDLE_MS is not used again:
 * the next request goes on a new one, sent once. */
static void test_post_idle_limit(void)
{
	CHECK(rig_start(PEER_BARE_LF) == 0);
	CHECK_EQ_INT(rig_post(), 204);
	CHECK_EQ_INT(rig_post(), 204);
	rig.c.idle_since_ms -= UPSTREAM_CONN_MAX_IDLE_MS + 1000;
	CHECK_EQ_INT(rig_post(), 204);
	CHECK_EQ_INT(rig.mb.rewinds, 0);
	CHECK_EQ_INT(rig_stop(), 2);
}

/* A head whose lines end in a bare LF. */
static void test_post_bare_lf(void)
{
	CHECK(rig_start(PEER_BARE_LF) == 0);
	CHECK_EQ_INT(rig_post(), 204);
	CHECK_STR(rig.a.status_text, "No Content");
	CHECK_EQ_INT(rig_post(), 204);
	CHECK_EQ_INT(rig_stop(), 1);
}

int main(void)
{
	/* A request that never ends fails the binary instead of hanging. */
	alarm(120);
	signal(SIGPIPE, SIG_IGN);
	if ((pattern = malloc(BODY_LEN)) == NULL)
		return 1;
	for (size_t i = 0; i < BODY_LEN; i++)
		pattern[i] = body_byte(i);
	unsetenv("http_proxy");
	unsetenv("all_proxy");
	unsetenv("ALL_PROXY");
	RUN(test_head_victoriametrics);
	RUN(test_head_fields);
	RUN(test_head_framing);
	RUN(test_head_malformed);
	RUN(test_chunk_lines);
	RUN(test_usable);
	RUN(test_post_closed);
	RUN(test_post_one_byte);
	RUN(test_post_chunked);
	RUN(test_post_chunk_cut);
	RUN(test_post_until_close);
	RUN(test_post_continue);
	RUN(test_post_early);
	RUN(test_post_reuse_closed);
	RUN(test_post_reuse_answered);
	RUN(test_post_idle_limit);
	RUN(test_post_bare_lf);
	free(pattern);
	return unit_done();
}
