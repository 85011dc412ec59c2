/*
 * upstream_conn.h - a request to a plain-HTTP upstream written from where
 * its body lies.
 *
 * Why. libcurl takes a request body through a read callback, which copies
 * it into curl's own upload buffer before the kernel copies it again into
 * the socket. A catch-up drain sends gigabytes: that first copy was a
 * quarter of the relay's CPU while it drained (perf, the memmove under the
 * read callback). Over plain HTTP the relay therefore writes the request
 * itself, its head and then the body's pieces straight from the LMDB map
 * with sendmsg (one system call for up to UPSTREAM_CONN_IOV pieces), and
 * reads the answer itself. libcurl still makes the connection (name
 * lookup, connect timeout, TCP keep-alive, the errors it reports) with
 * CURLOPT_CONNECT_ONLY, and still carries every request over https or
 * through a proxy (upstream_conn_usable says which).
 *
 * The request is HTTP/1.1 with Content-Length; the connection is kept for
 * the next request unless the answer says otherwise or was cut. The
 * answer is read whole: status line, headers (Retry-After and Location
 * are kept), and a body framed by Content-Length, chunked, or by the
 * connection's end; its first bytes are kept as the reason. A request
 * sent on a connection that had served before and was found closed
 * before any answer (the upstream dropped an idle connection) is sent
 * once more on a new one, as curl does; a connection idle for
 * UPSTREAM_CONN_MAX_IDLE_MS is not used again. Interim answers (100
 * Continue) are passed over, also while the body is being sent; a final
 * answer that comes before the whole body ends the sending.
 *
 * One connection per forwarder thread; nothing here is shared.
 */
#ifndef RELAY_UPSTREAM_CONN_H
#define RELAY_UPSTREAM_CONN_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

/* Pieces one sendmsg takes at most. */
#define UPSTREAM_CONN_IOV 256
/* Most bytes of an answer's status line and headers. */
#define UPSTREAM_CONN_HEAD_MAX 16384
/* An answer's body longer than this is not read to its end: the
 * connection is closed instead. */
#define UPSTREAM_CONN_DRAIN_MAX (1u << 20)
/* A connection idle longer than this is not used again: a NAT or a
 * firewall may have dropped it without a word, and a request sent into
 * it would wait out the whole timeout. */
#define UPSTREAM_CONN_MAX_IDLE_MS 60000

struct upstream_conn {
	void *curl;              /* owned: the CURL handle holding the
				  * connection; NULL: none */
	int fd;                  /* its socket, -1: none */
	char origin[512];        /* the URL's scheme://host:port */
	unsigned served;         /* requests answered on it */
	uint64_t idle_since_ms;  /* monotonic ms of its last answer */
	int sys_err;             /* errno of the last socket call that failed */
	int heard;               /* bytes of an answer came while the body
				  * went out (this attempt) */
	size_t in_len;           /* bytes of in[] read, not yet used */
	char in[UPSTREAM_CONN_HEAD_MAX];
};

/* The body a request sends: a reader over pieces that stay where they lie
 * until done() (sblock_stream, through the caller). */
struct upstream_body {
	uint64_t len;
	/* Fills iov[0..max) with the next pieces from the current position,
	 * without moving it; returns how many (0 at the end). */
	int (*pieces)(void *arg, struct iovec *iov, int max);
	/* Moves the position n bytes on. */
	void (*advance)(void *arg, size_t n);
	/* Goes back to the start for a resend; 0, or -1 when the body is
	 * not there any more (nothing is sent again then). */
	int (*rewind)(void *arg);
	void *arg;
};

struct upstream_req {
	const char *url;
	const char *const *headers;  /* "Name: value" lines, NULL-ended */
	const struct upstream_body *body;
	uint64_t timeout_ms;         /* the whole request, connect included */
	uint64_t connect_timeout_ms;
	/* Monotonic ms at which to give up (0: never); read while waiting. */
	_Atomic uint64_t *abandon_at_ms;
};

/* What the upstream answered. The caller's buffers; each ends with a NUL. */
struct upstream_answer {
	long status;             /* 100..599, or 0: no answer (why in err) */
	char *reason;            /* the body's first bytes */
	size_t reason_max;       /* reason's size, NUL included (>= 1) */
	char status_text[64];    /* the status line's reason phrase */
	char retry_after[64];
	char location[256];
	char err[256];           /* why there was no answer */
};

/* Sets up c with no connection. */
void upstream_conn_init(struct upstream_conn *c);

/* Closes c's connection, if any. */
void upstream_conn_close(struct upstream_conn *c);

/*
 * Whether url goes through upstream_conn_post: http://, no user name or
 * password in it, and no proxy set in the environment (http_proxy,
 * all_proxy, ALL_PROXY), which curl would use. 1 or 0.
 */
int upstream_conn_usable(const char *url);

/*
 * POSTs r->body to r->url with r->headers (plus Host, Content-Length),
 * over c's connection when it goes to the same origin, else a new one.
 * Returns the status (also in a->status), or 0 when no answer came
 * (a->err says why; c is closed then).
 */
long upstream_conn_post(struct upstream_conn *c, const struct upstream_req *r,
			struct upstream_answer *a);

/* ---- The answer's parts, for the unit tests ---- */

/*
 * Parses an answer's head in[0..len) (status line and headers, up to and
 * including the empty line) into a; sets *body_len (-1: until the
 * connection ends), *chunked and *keep (1: the connection may serve
 * again). Returns 0, or -1 when it is not an HTTP/1.x answer.
 */
int upstream_conn_head(const char *in, size_t len, struct upstream_answer *a,
		       int64_t *body_len, int *chunked, int *keep);

/*
 * Reads one chunk-size line of a chunked body in in[0..len): 1 with *size
 * and *used (the line's bytes, CRLF included) set, 0 when the line is not
 * complete yet, -1 when it is malformed.
 */
int upstream_conn_chunk_line(const char *in, size_t len, uint64_t *size,
			     size_t *used);

#endif
