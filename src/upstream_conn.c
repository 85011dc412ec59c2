/*
 * upstream_conn.c - a request to a plain-HTTP upstream written from where
 * its body lies (see upstream_conn.h).
 */
#include "upstream_conn.h"

#include <curl/curl.h>
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "clock.h"

/* Longest wait between two looks at the request's deadline and at
 * abandon_at_ms. */
#define WAIT_SLICE_MS 500

/* How a wait or a transfer ended, besides done. All negative: fill()
 * returns them or a count of bytes read. */
enum io_end {
	IO_OK = 0,
	IO_ERR = -1,       /* a socket error (errno in sys_err) */
	IO_TIMEOUT = -2,   /* the request's time is over */
	IO_ABANDON = -3,   /* the relay is stopping */
	IO_BAD = -4,       /* the answer is malformed or cut short */
	IO_CLOSED = -5,    /* the upstream closed the connection; or, from
			    * send_request, an answer came before the end
			    * of the body */
	IO_LONG = -6       /* a body too long to read: left unread */
};

void upstream_conn_init(struct upstream_conn *c)
{
	c->curl = NULL;
	c->fd = -1;
	c->origin[0] = '\0';
	c->served = 0;
	c->idle_since_ms = 0;
	c->sys_err = 0;
	c->heard = 0;
	c->in_len = 0;
}

void upstream_conn_close(struct upstream_conn *c)
{
	if (c->curl != NULL)
		curl_easy_cleanup(c->curl);
	upstream_conn_init(c);
}

/* The request's target (path and query), Host value and origin of url;
 * 0, or -1 when url is not an http:// URL curl can parse. */
static int url_parts(const char *url, char *target, size_t tlen, char *host,
		     size_t hlen, char *origin, size_t olen, int *has_user)
{
	CURLU *u = curl_url();
	char *scheme = NULL, *h = NULL, *port = NULL, *dport = NULL;
	char *path = NULL, *query = NULL, *user = NULL;
	int rc = -1, n1, n2, n3;

	if (u == NULL)
		return -1;
	if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
	    strcasecmp(scheme, "http") != 0 ||
	    curl_url_get(u, CURLUPART_HOST, &h, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_PORT, &dport, CURLU_DEFAULT_PORT) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_PATH, &path, 0) != CURLUE_OK)
		goto out;
	curl_url_get(u, CURLUPART_PORT, &port, 0);
	curl_url_get(u, CURLUPART_QUERY, &query, 0);
	*has_user = curl_url_get(u, CURLUPART_USER, &user, 0) == CURLUE_OK;
	n1 = snprintf(target, tlen, "%s%s%s", path, query ? "?" : "",
		      query ? query : "");
	n2 = snprintf(host, hlen, "%s%s%s", h, port ? ":" : "", port ? port : "");
	n3 = snprintf(origin, olen, "http://%s:%s", h, dport);
	if (n1 > 0 && (size_t)n1 < tlen && n2 > 0 && (size_t)n2 < hlen &&
	    n3 > 0 && (size_t)n3 < olen)
		rc = 0;
out:
	curl_free(scheme);
	curl_free(h);
	curl_free(port);
	curl_free(dport);
	curl_free(path);
	curl_free(query);
	curl_free(user);
	curl_url_cleanup(u);
	return rc;
}

int upstream_conn_usable(const char *url)
{
	static const char *const proxy_vars[] = {
		"http_proxy", "all_proxy", "ALL_PROXY"
	};
	char target[2048], host[512], origin[512];
	int has_user = 0;

	for (size_t i = 0; i < sizeof(proxy_vars) / sizeof(proxy_vars[0]); i++) {
		const char *v = getenv(proxy_vars[i]);
		if (v != NULL && v[0] != '\0')
			return 0;
	}
	if (strncasecmp(url, "http://", 7) != 0 ||
	    url_parts(url, target, sizeof(target), host, sizeof(host), origin,
		      sizeof(origin), &has_user) < 0)
		return 0;
	return !has_user;
}

/* Whether the request is to end now: IO_ABANDON, IO_TIMEOUT or IO_OK. */
static int due(const struct upstream_req *r, uint64_t deadline)
{
	uint64_t now = clock_mono_ms(), at = 0;

	if (r->abandon_at_ms != NULL)
		at = atomic_load(r->abandon_at_ms);
	if (at != 0 && now >= at)
		return IO_ABANDON;
	return now >= deadline ? IO_TIMEOUT : IO_OK;
}

/* Waits until fd has one of events (its revents then), or the request
 * ends (a negative io_end). */
static int wait_fd(int fd, short events, const struct upstream_req *r,
		   uint64_t deadline)
{
	struct pollfd p = { .fd = fd, .events = events };
	uint64_t now;
	int rc, left;

	for (;;) {
		if ((rc = due(r, deadline)) != IO_OK)
			return rc;
		now = clock_mono_ms();
		left = now >= deadline ? 0 : deadline - now > WAIT_SLICE_MS ?
			WAIT_SLICE_MS : (int)(deadline - now);
		rc = poll(&p, 1, left);
		if (rc > 0)
			return p.revents;
		if (rc < 0 && errno != EINTR)
			return IO_ERR;
	}
}

/* curl's progress callback while it connects: stops at abandon_at_ms. */
static int on_connect_progress(void *arg, curl_off_t dltotal, curl_off_t dlnow,
			       curl_off_t ultotal, curl_off_t ulnow)
{
	_Atomic uint64_t *abandon = arg;
	uint64_t at = abandon ? atomic_load(abandon) : 0;

	(void)dltotal;
	(void)dlnow;
	(void)ultotal;
	(void)ulnow;
	return at != 0 && clock_mono_ms() >= at;
}

/* Connects c to url's origin with curl. Returns 0, or -1 with a->err. */
static int conn_open(struct upstream_conn *c, const struct upstream_req *r,
		     const char *origin, uint64_t deadline,
		     struct upstream_answer *a)
{
	char errbuf[CURL_ERROR_SIZE] = "";
	uint64_t now = clock_mono_ms(), left;
	curl_socket_t fd = CURL_SOCKET_BAD;
	CURLcode rc;
	CURL *h;

	upstream_conn_close(c);
	if ((h = curl_easy_init()) == NULL) {
		snprintf(a->err, sizeof(a->err), "out of memory");
		return -1;
	}
	left = deadline > now ? deadline - now : 1;
	curl_easy_setopt(h, CURLOPT_URL, r->url);
	curl_easy_setopt(h, CURLOPT_CONNECT_ONLY, 1L);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)left);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS,
			 (long)(r->connect_timeout_ms < left ?
				r->connect_timeout_ms : left));
	curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_connect_progress);
	curl_easy_setopt(h, CURLOPT_XFERINFODATA, r->abandon_at_ms);
	curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
	rc = curl_easy_perform(h);
	if (rc == CURLE_OK)
		rc = curl_easy_getinfo(h, CURLINFO_ACTIVESOCKET, &fd);
	if (rc == CURLE_ABORTED_BY_CALLBACK) {
		snprintf(a->err, sizeof(a->err),
			 "abandoned: the relay is stopping");
		curl_easy_cleanup(h);
		return -1;
	}
	if (rc != CURLE_OK || fd == CURL_SOCKET_BAD) {
		snprintf(a->err, sizeof(a->err), "%s",
			 errbuf[0] ? errbuf : curl_easy_strerror(rc));
		curl_easy_cleanup(h);
		return -1;
	}
	c->curl = h;
	c->fd = (int)fd;
	c->idle_since_ms = clock_mono_ms();
	snprintf(c->origin, sizeof(c->origin), "%s", origin);
	return 0;
}

/* 1 if c's idle connection is still open (nothing to read, no end), else
 * 0: the upstream closed it, or sent something no request asked for. */
static int conn_alive(const struct upstream_conn *c)
{
	char b;
	ssize_t n = recv(c->fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);

	return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
}

/* Drops the first n bytes of c->in. */
static void consume(struct upstream_conn *c, size_t n)
{
	memmove(c->in, c->in + n, c->in_len - n);
	c->in_len -= n;
}

/* The length of the answer's head at in[0..len), its ending empty line
 * included (CRLF or bare LF line ends), or 0 when it is not whole yet. */
static size_t head_end(const char *in, size_t len)
{
	const char *p = in, *end = in + len;

	while ((p = memchr(p, '\n', (size_t)(end - p))) != NULL) {
		if (end - p >= 2 && p[1] == '\n')
			return (size_t)(p + 2 - in);
		if (end - p >= 3 && p[1] == '\r' && p[2] == '\n')
			return (size_t)(p + 3 - in);
		p++;
	}
	return 0;
}

/*
 * Bytes came while the body is still being sent: reads them into c->in
 * (c->heard set). Returns IO_OK when they are interim answers (1xx,
 * consumed) or the start of one, so the body goes on; IO_CLOSED when a
 * final answer or the connection's end came (the body stops; read_answer
 * reads what came); IO_ERR on a socket error (errno in sys_err).
 */
static int early_bytes(struct upstream_conn *c)
{
	struct upstream_answer tmp;
	char reason[1];
	int64_t body_len;
	int chunked, keep;
	size_t hlen;
	ssize_t n;

	if (c->in_len == sizeof(c->in))
		return IO_CLOSED;
	n = recv(c->fd, c->in + c->in_len, sizeof(c->in) - c->in_len,
		 MSG_DONTWAIT);
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
		return IO_OK;
	if (n == 0 || (n < 0 && errno == ECONNRESET))
		return IO_CLOSED;
	if (n < 0) {
		c->sys_err = errno;
		return IO_ERR;
	}
	c->in_len += (size_t)n;
	c->heard = 1;
	memset(&tmp, 0, sizeof(tmp));
	tmp.reason = reason;
	tmp.reason_max = sizeof(reason);
	while ((hlen = head_end(c->in, c->in_len)) > 0) {
		if (upstream_conn_head(c->in, hlen, &tmp, &body_len, &chunked,
				       &keep) < 0 || tmp.status >= 200)
			return IO_CLOSED;
		consume(c, hlen);   /* 100 Continue, 103 Early Hints, ... */
	}
	return IO_OK;
}

/*
 * Writes head[0..hlen) and then the body. Returns IO_OK when all of it is
 * with the kernel, IO_CLOSED when the upstream answered or closed before
 * (the answer is to be read), or another io_end (errno kept for IO_ERR).
 */
static int send_request(struct upstream_conn *c, const struct upstream_req *r,
			const char *head, size_t hlen, uint64_t deadline)
{
	const struct upstream_body *b = r->body;
	struct iovec iov[UPSTREAM_CONN_IOV];
	struct msghdr msg;
	size_t hoff = 0;
	uint64_t sent = 0;
	ssize_t n;
	int k, ev, rc;

	while (hoff < hlen || sent < b->len) {
		k = 0;
		if (hoff < hlen) {
			iov[0].iov_base = (char *)head + hoff;
			iov[0].iov_len = hlen - hoff;
			k = 1;
		}
		k += b->pieces(b->arg, iov + k, UPSTREAM_CONN_IOV - k);
		if (k == 0) {
			c->sys_err = 0;
			return IO_ERR;   /* the body ended short of its length */
		}
		memset(&msg, 0, sizeof(msg));
		msg.msg_iov = iov;
		msg.msg_iovlen = (size_t)k;
		n = sendmsg(c->fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n > 0) {
			size_t used = (size_t)n;
			if (hoff < hlen) {
				size_t h = hlen - hoff < used ? hlen - hoff : used;
				hoff += h;
				used -= h;
			}
			if (used > 0) {
				b->advance(b->arg, used);
				sent += used;
			}
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
			if (errno == EPIPE || errno == ECONNRESET)
				return IO_CLOSED;
			c->sys_err = errno;
			return IO_ERR;
		}
		ev = wait_fd(c->fd, POLLOUT | POLLIN, r, deadline);
		if (ev < 0) {
			c->sys_err = errno;
			return ev;
		}
		/* A final answer (or the end) before the whole body: read
		 * it. An interim one is passed over. */
		if (ev & (POLLHUP | POLLERR))
			return IO_CLOSED;
		if ((ev & POLLIN) && (rc = early_bytes(c)) != IO_OK)
			return rc;
	}
	return IO_OK;
}

/* Reads more of the answer into c->in. Returns the bytes read (> 0), or
 * an io_end: IO_CLOSED at the connection's end. */
static int fill(struct upstream_conn *c, const struct upstream_req *r,
		uint64_t deadline)
{
	ssize_t n;
	int ev;

	if (c->in_len == sizeof(c->in))
		return IO_BAD;
	for (;;) {
		n = recv(c->fd, c->in + c->in_len, sizeof(c->in) - c->in_len,
			 MSG_DONTWAIT);
		if (n > 0) {
			c->in_len += (size_t)n;
			return (int)n;
		}
		if (n == 0)
			return IO_CLOSED;
		if (errno == EINTR)
			continue;
		if (errno == ECONNRESET)
			return IO_CLOSED;
		if (errno != EAGAIN && errno != EWOULDBLOCK) {
			c->sys_err = errno;
			return IO_ERR;
		}
		ev = wait_fd(c->fd, POLLIN, r, deadline);
		if (ev < 0) {
			c->sys_err = errno;
			return ev;
		}
	}
}

/* Keeps the body's bytes p[0..n) as the reason as far as it has room. */
static void keep_reason(struct upstream_answer *a, size_t *kept,
			const char *p, size_t n)
{
	size_t room = a->reason_max - 1 - *kept;

	if (n > room)
		n = room;
	memcpy(a->reason + *kept, p, n);
	*kept += n;
	a->reason[*kept] = '\0';
}

/* Copies a header's value p[0..n) (trimmed) into out. */
static void header_value(const char *p, size_t n, char *out, size_t outlen)
{
	while (n > 0 && (*p == ' ' || *p == '\t')) {
		p++;
		n--;
	}
	while (n > 0 && (p[n - 1] == ' ' || p[n - 1] == '\t' ||
			 p[n - 1] == '\r'))
		n--;
	if (n >= outlen)
		n = outlen - 1;
	memcpy(out, p, n);
	out[n] = '\0';
}

/* 1 if the header line p[0..n) is named name (of nlen bytes, colon
 * included); *v then points past the colon. */
static int header_is(const char *p, size_t n, const char *name, size_t nlen,
		     const char **v)
{
	if (n < nlen || strncasecmp(p, name, nlen) != 0)
		return 0;
	*v = p + nlen;
	return 1;
}

int upstream_conn_head(const char *in, size_t len, struct upstream_answer *a,
		       int64_t *body_len, int *chunked, int *keep)
{
	const char *p = in, *end = in + len, *eol, *v;
	char val[64];
	long status;
	int minor;

	if (len < 13 || strncmp(in, "HTTP/1.", 7) != 0 ||
	    (in[7] != '0' && in[7] != '1') || in[8] != ' ' ||
	    in[9] < '1' || in[9] > '5' || in[10] < '0' || in[10] > '9' ||
	    in[11] < '0' || in[11] > '9' ||
	    (in[12] != ' ' && in[12] != '\r' && in[12] != '\n'))
		return -1;
	minor = in[7] - '0';
	status = (in[9] - '0') * 100 + (in[10] - '0') * 10 + (in[11] - '0');
	if ((eol = memchr(in, '\n', len)) == NULL)
		return -1;
	a->status = status;
	a->status_text[0] = a->retry_after[0] = a->location[0] = '\0';
	if (eol - in > 12)
		header_value(in + 13, (size_t)(eol - in - 13), a->status_text,
			     sizeof(a->status_text));
	*body_len = -1;
	*chunked = 0;
	*keep = minor == 1;
	for (p = eol + 1; p < end; p = eol + 1) {
		size_t n;
		if ((eol = memchr(p, '\n', (size_t)(end - p))) == NULL)
			return -1;
		n = (size_t)(eol - p);
		if (n == 0 || (n == 1 && p[0] == '\r'))
			break;
		if (header_is(p, n, "Content-Length:", 15, &v)) {
			char *e;
			header_value(v, (size_t)(eol - v), val, sizeof(val));
			errno = 0;
			unsigned long long cl = strtoull(val, &e, 10);
			if (val[0] < '0' || val[0] > '9' || *e != '\0' ||
			    errno != 0 || cl > INT64_MAX)
				return -1;
			*body_len = (int64_t)cl;
		} else if (header_is(p, n, "Transfer-Encoding:", 18, &v)) {
			header_value(v, (size_t)(eol - v), val, sizeof(val));
			if (strcasestr(val, "chunked") != NULL)
				*chunked = 1;
		} else if (header_is(p, n, "Connection:", 11, &v)) {
			header_value(v, (size_t)(eol - v), val, sizeof(val));
			if (strcasestr(val, "close") != NULL)
				*keep = 0;
		} else if (header_is(p, n, "Retry-After:", 12, &v)) {
			header_value(v, (size_t)(eol - v), a->retry_after,
				     sizeof(a->retry_after));
		} else if (header_is(p, n, "Location:", 9, &v)) {
			header_value(v, (size_t)(eol - v), a->location,
				     sizeof(a->location));
		}
	}
	if (*chunked)
		*body_len = -1;
	if (status < 200 || status == 204 || status == 304) {
		*body_len = 0;
		*chunked = 0;
	}
	if (*body_len < 0 && !*chunked)
		*keep = 0;   /* the body ends with the connection */
	return 0;
}

int upstream_conn_chunk_line(const char *in, size_t len, uint64_t *size,
			     size_t *used)
{
	const char *eol = memchr(in, '\n', len);
	uint64_t v = 0;
	size_t i = 0;

	if (eol == NULL)
		return len > 1024 ? -1 : 0;
	for (; in + i < eol; i++) {
		char ch = in[i];
		unsigned d;
		if (ch >= '0' && ch <= '9')
			d = (unsigned)(ch - '0');
		else if (ch >= 'a' && ch <= 'f')
			d = (unsigned)(ch - 'a' + 10);
		else if (ch >= 'A' && ch <= 'F')
			d = (unsigned)(ch - 'A' + 10);
		else
			break;
		if (v >> 60)
			return -1;
		v = v << 4 | d;
	}
	/* At least one digit, then an extension, spaces or the line's end. */
	if (i == 0 || (in[i] != ';' && in[i] != ' ' && in[i] != '\t' &&
		       in[i] != '\r' && in + i != eol))
		return -1;
	*size = v;
	*used = (size_t)(eol - in) + 1;
	return 1;
}

/* Reads n bytes of body (n < 0: up to the connection's end, or
 * UPSTREAM_CONN_DRAIN_MAX bytes), keeping the first as the reason. Returns
 * IO_OK, IO_BAD when the connection ended short of n, or another io_end. */
static int read_plain(struct upstream_conn *c, const struct upstream_req *r,
		      uint64_t deadline, struct upstream_answer *a,
		      size_t *kept, int64_t n)
{
	uint64_t total = 0;
	int rc;

	for (;;) {
		size_t k = c->in_len;
		if (n >= 0 && (uint64_t)n < k)
			k = (size_t)n;
		keep_reason(a, kept, c->in, k);
		consume(c, k);
		total += k;
		if (n >= 0 && (n -= (int64_t)k) == 0)
			return IO_OK;
		if (n < 0 && total > UPSTREAM_CONN_DRAIN_MAX)
			return IO_OK;
		if ((rc = fill(c, r, deadline)) == IO_CLOSED)
			return n < 0 ? IO_OK : IO_BAD;
		if (rc < 0)
			return rc;
	}
}

/* Reads the CRLF (or bare LF) that ends a chunk's data. Returns IO_OK or
 * an io_end. */
static int read_crlf(struct upstream_conn *c, const struct upstream_req *r,
		     uint64_t deadline)
{
	int rc;

	while (c->in_len < 2 && !(c->in_len == 1 && c->in[0] == '\n'))
		if ((rc = fill(c, r, deadline)) < 0)
			return rc == IO_CLOSED ? IO_BAD : rc;
	if (c->in[0] == '\n') {
		consume(c, 1);
		return IO_OK;
	}
	if (c->in[0] != '\r' || c->in[1] != '\n')
		return IO_BAD;
	consume(c, 2);
	return IO_OK;
}

/* Reads a chunked body. Returns IO_OK, IO_LONG when it is longer than
 * UPSTREAM_CONN_DRAIN_MAX (left unread: the connection is to close), or
 * another io_end. */
static int read_chunked(struct upstream_conn *c, const struct upstream_req *r,
			uint64_t deadline, struct upstream_answer *a,
			size_t *kept)
{
	uint64_t size, total = 0;
	size_t used;
	int rc;

	for (;;) {
		while ((rc = upstream_conn_chunk_line(c->in, c->in_len, &size,
						      &used)) == 0)
			if ((rc = fill(c, r, deadline)) < 0)
				return rc == IO_CLOSED ? IO_BAD : rc;
		if (rc < 0)
			return IO_BAD;
		consume(c, used);
		if (size == 0)
			break;
		if (size > UPSTREAM_CONN_DRAIN_MAX - total) {
			/* Its first bytes as the reason, the rest unread. */
			size_t room = a->reason_max - 1 - *kept;
			if (room > size)
				room = (size_t)size;
			rc = read_plain(c, r, deadline, a, kept, (int64_t)room);
			return rc == IO_OK ? IO_LONG : rc;
		}
		total += size;
		if ((rc = read_plain(c, r, deadline, a, kept,
				     (int64_t)size)) != IO_OK ||
		    (rc = read_crlf(c, r, deadline)) != IO_OK)
			return rc;
	}
	/* Trailer lines, up to the empty one. */
	for (;;) {
		char *eol = memchr(c->in, '\n', c->in_len);
		if (eol == NULL) {
			if ((rc = fill(c, r, deadline)) < 0)
				return rc == IO_CLOSED ? IO_BAD : rc;
			continue;
		}
		used = (size_t)(eol - c->in) + 1;
		consume(c, used);
		if (used <= 2)
			return IO_OK;
	}
}

/*
 * Reads the answer to the request just sent. Returns IO_OK with a filled
 * (and *keep: whether the connection serves again), or an io_end;
 * *got_any says whether any byte of it came (an interim answer passed
 * over while the body went out included).
 */
static int read_answer(struct upstream_conn *c, const struct upstream_req *r,
		       uint64_t deadline, struct upstream_answer *a,
		       int *keep, int *got_any)
{
	int64_t body_len;
	size_t kept = 0, hlen;
	int chunked, rc;

	*got_any = c->in_len > 0 || c->heard;
	for (;;) {
		if ((hlen = head_end(c->in, c->in_len)) == 0) {
			if ((rc = fill(c, r, deadline)) < 0)
				return rc;
			*got_any = 1;
			continue;
		}
		if (upstream_conn_head(c->in, hlen, a, &body_len, &chunked,
				       keep) < 0)
			return IO_BAD;
		consume(c, hlen);
		if (a->status >= 200)
			break;
		/* 1xx: an interim answer; the final one follows. */
	}
	if (chunked)
		rc = read_chunked(c, r, deadline, a, &kept);
	else if (body_len > (int64_t)UPSTREAM_CONN_DRAIN_MAX) {
		rc = read_plain(c, r, deadline, a, &kept,
				(int64_t)(a->reason_max - 1));
		*keep = 0;
	} else {
		rc = read_plain(c, r, deadline, a, &kept, body_len);
	}
	if (rc == IO_LONG) {
		rc = IO_OK;    /* a long body left unread: the connection ends */
		*keep = 0;
	}
	if (c->in_len > 0)
		*keep = 0;     /* bytes no request asked for */
	return rc;
}

/* The request's head into a new string (*len bytes); NULL when memory is
 * short or url cannot be parsed. */
static char *request_head(const struct upstream_req *r, char *origin,
			  size_t olen, size_t *len)
{
	char target[2048], host[512];
	size_t cap = 256, off;
	int has_user = 0, n;
	char *h;

	if (url_parts(r->url, target, sizeof(target), host, sizeof(host),
		      origin, olen, &has_user) < 0)
		return NULL;
	cap += strlen(target) + strlen(host);
	for (size_t i = 0; r->headers[i] != NULL; i++)
		cap += strlen(r->headers[i]) + 2;
	if ((h = malloc(cap)) == NULL)
		return NULL;
	off = (size_t)snprintf(h, cap, "POST %s HTTP/1.1\r\nHost: %s\r\n",
			       target, host);
	for (size_t i = 0; r->headers[i] != NULL; i++)
		off += (size_t)snprintf(h + off, cap - off, "%s\r\n",
					r->headers[i]);
	n = snprintf(h + off, cap - off, "Content-Length: %" PRIu64 "\r\n\r\n",
		     r->body->len);
	if (n < 0 || (size_t)n >= cap - off) {
		free(h);
		return NULL;
	}
	*len = off + (size_t)n;
	return h;
}

/* The text for an io_end. */
static void io_reason(struct upstream_answer *a, int rc, int err,
		      const struct upstream_req *r, int got_any)
{
	switch (rc) {
	case IO_TIMEOUT:
		snprintf(a->err, sizeof(a->err),
			 "no answer within %" PRIu64 " ms", r->timeout_ms);
		break;
	case IO_ABANDON:
		snprintf(a->err, sizeof(a->err),
			 "abandoned: the relay is stopping");
		break;
	case IO_CLOSED:
		snprintf(a->err, sizeof(a->err), "the upstream closed the "
			 "connection %s", got_any ? "in its answer" :
			 "before answering");
		break;
	case IO_BAD:
		snprintf(a->err, sizeof(a->err),
			 "malformed or cut answer from the upstream");
		break;
	default:
		snprintf(a->err, sizeof(a->err), "connection to the upstream "
			 "failed: %s", err ? strerror(err) : "body cut short");
	}
}

long upstream_conn_post(struct upstream_conn *c, const struct upstream_req *r,
			struct upstream_answer *a)
{
	uint64_t deadline = clock_mono_ms() + r->timeout_ms;
	char origin[sizeof(c->origin)];
	size_t hlen = 0;
	int rc, keep = 0, got_any = 0, reused, err;
	char *head;

	a->status = 0;
	a->reason[0] = a->status_text[0] = a->retry_after[0] = '\0';
	a->location[0] = a->err[0] = '\0';
	if ((head = request_head(r, origin, sizeof(origin), &hlen)) == NULL) {
		snprintf(a->err, sizeof(a->err),
			 "cannot make the request (url or memory)");
		upstream_conn_close(c);
		return 0;
	}
	for (int attempt = 0;; attempt++) {
		if (c->fd >= 0 && (strcmp(c->origin, origin) != 0 ||
				   clock_mono_ms() - c->idle_since_ms >
				   UPSTREAM_CONN_MAX_IDLE_MS || !conn_alive(c)))
			upstream_conn_close(c);
		reused = c->fd >= 0 && c->served > 0;
		if (c->fd < 0 && conn_open(c, r, origin, deadline, a) < 0)
			break;
		c->in_len = 0;
		c->sys_err = 0;
		c->heard = 0;
		got_any = 0;
		rc = send_request(c, r, head, hlen, deadline);
		if (rc == IO_OK || rc == IO_CLOSED) {
			int sent_all = rc == IO_OK;
			rc = read_answer(c, r, deadline, a, &keep, &got_any);
			if (!sent_all)
				keep = 0;
		}
		err = c->sys_err;
		if (rc == IO_OK) {
			c->served++;
			c->idle_since_ms = clock_mono_ms();
			if (!keep)
				upstream_conn_close(c);
			break;
		}
		a->status = 0;
		upstream_conn_close(c);
		/* An idle connection the upstream had dropped: once more on
		 * a new one, from the body's start. */
		if (reused && !got_any && attempt == 0 &&
		    rc == IO_CLOSED && r->body->rewind(r->body->arg) == 0)
			continue;
		io_reason(a, rc, err, r, got_any);
		break;
	}
	free(head);
	return a->status;
}
