/*
 * conn_guard.h - client connections must earn their place.
 *
 * libmicrohttpd bounds each request (header size, body size through the
 * handler, inactivity through idle_timeout) but nothing bounds how long a
 * connection may take to send its headers one byte at a time, how slowly a
 * body may arrive, or how many connections one client address holds. The
 * guard adds those three bounds around the daemon:
 *
 *   HEADER  from the connection's start (or, on a kept-alive connection,
 *           from its previous answer) until the handler's first call: the
 *           request line and headers must be in within header_timeout (a
 *           kept-alive connection gets idle_timeout + header_timeout from
 *           its previous answer, and header_timeout from the moment its
 *           request line is in, whichever ends first).
 *   BODY    while the body arrives: every body_timeout window must bring
 *           body_min_rate * body_timeout bytes (at least one).
 *   BUSY    the relay has the request (decoding, committing, answering):
 *           no deadline of the guard.
 *
 * A connection past its bound is closed with shutdown(2) from the guard's
 * watchdog thread: libmicrohttpd then reads end-of-file and closes it as
 * it would any connection the peer closed. Connections past
 * max_connections_per_ip are refused at accept. Every close is counted in
 * relay_connections_closed_total{reason}.
 *
 * Threads: the callbacks run on libmicrohttpd's threads, the watchdog on
 * its own; one mutex guards the connection list and the address table.
 * A connection's socket is closed by libmicrohttpd only after its
 * NOTIFY_CLOSED callback, which takes that mutex: the watchdog never shuts
 * down a socket number that was reused.
 */
#ifndef RELAY_CONN_GUARD_H
#define RELAY_CONN_GUARD_H

#include <stddef.h>
#include <sys/socket.h>

#include <microhttpd.h>

#include "config.h"

struct conn_guard;

/*
 * Starts the watchdog with cfg's [server] header_timeout, body_timeout,
 * body_min_rate, idle_timeout and max_connections_per_ip (copied; a reload
 * does not change them). Also raises the soft limit on open files to the
 * hard one, and warns when max_connections does not fit under it. Returns
 * NULL with a reason in err on failure; conn_guard_stop frees it.
 */
struct conn_guard *conn_guard_start(const struct config *cfg, char *err,
				    size_t errlen);

/* Stops the watchdog and frees g. Call after the daemon stopped. */
void conn_guard_stop(struct conn_guard *g);

/* MHD_AcceptPolicyCallback (cls: the guard): refuses a connection from an
 * address that holds max_connections_per_ip already. */
enum MHD_Result conn_guard_accept(void *cls, const struct sockaddr *addr,
				  socklen_t addrlen);

/* MHD_OPTION_NOTIFY_CONNECTION (cls: the guard): tracks a connection from
 * its start to its close; *socket_context holds the guard's record. */
void conn_guard_notify(void *cls, struct MHD_Connection *conn,
		       void **socket_context,
		       enum MHD_ConnectionNotificationCode code);

/* MHD_OPTION_URI_LOG_CALLBACK (cls: the guard): a request line is in.
 * Returns NULL (the request's context stays unset). */
void *conn_guard_uri(void *cls, const char *uri, struct MHD_Connection *conn);

/*
 * The access handler was called: first is 1 on a request's first call
 * (headers complete), upload is the number of body bytes offered. Moves
 * the connection to BODY (the request has a body), to BUSY (it has none,
 * or the body is complete), or counts body bytes.
 */
void conn_guard_on_request(struct MHD_Connection *conn, int first,
			   size_t upload);

/* The request ended (MHD_OPTION_NOTIFY_COMPLETED): the connection waits
 * for the next request line. */
void conn_guard_request_done(struct MHD_Connection *conn);

/*
 * Whether a libmicrohttpd log line may be written now: it logs one line
 * per connection that closed mid-request, and a flood of hostile
 * connections must not become a flood of log lines. Allows 20 lines per
 * 10 s; the first line allowed after some were held back is followed by
 * one saying how many. Thread-safe.
 */
int conn_guard_log_allowed(void);

#endif
