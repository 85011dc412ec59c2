/*
 * conn_guard.c - header deadline, body rate and per-address cap for client
 * connections (see conn_guard.h).
 */
#include "conn_guard.h"

#include <assert.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "clock.h"
#include "log.h"
#include "metrics.h"

#define GUARD_IP_BUCKETS 1024
/* Descriptors the relay needs besides client connections: listen socket,
 * LMDB, log, upstream connections, the poll threads' own. */
#define GUARD_FD_RESERVE 64

enum guard_phase { PHASE_HEADER, PHASE_BODY, PHASE_BUSY, PHASE_IDLE, PHASE_CLOSING };

/* Connections from one client address. */
struct guard_ip {
	struct guard_ip *next;
	uint8_t addr[16];
	size_t len;                 /* 4 or 16 */
	int count;
};

/* One connection, from NOTIFY_STARTED to NOTIFY_CLOSED. */
struct guard_conn {
	struct conn_guard *g;       /* ref */
	struct guard_conn *prev, *next;
	struct guard_ip *ip;        /* ref: its address's entry, NULL if none */
	int fd;                     /* ref: libmicrohttpd owns the socket */
	enum guard_phase phase;
	uint64_t deadline_ms;       /* HEADER, IDLE: close past it */
	uint64_t window_ms;         /* BODY: start of the current window */
	uint64_t window_bytes;      /* BODY: bytes in the current window */
};

struct conn_guard {
	uint64_t header_ms, body_ms, idle_ms, tick_ms;
	uint64_t body_need;         /* bytes every body window must bring */
	int per_ip;                 /* 0: no cap */
	pthread_mutex_t lock;
	pthread_cond_t wake;
	pthread_t thread;
	int stopping;
	struct guard_conn *conns;   /* owned list */
	struct guard_ip *ips[GUARD_IP_BUCKETS]; /* owned */
};

/* The address bytes of sa (IPv4-mapped IPv6 as IPv4); 0 if not IP. */
static size_t ip_key(const struct sockaddr *sa, uint8_t out[16])
{
	if (sa == NULL)
		return 0;
	if (sa->sa_family == AF_INET) {
		memcpy(out, &((const struct sockaddr_in *)sa)->sin_addr, 4);
		return 4;
	}
	if (sa->sa_family == AF_INET6) {
		const struct in6_addr *a = &((const struct sockaddr_in6 *)sa)->sin6_addr;
		if (IN6_IS_ADDR_V4MAPPED(a)) {
			memcpy(out, a->s6_addr + 12, 4);
			return 4;
		}
		memcpy(out, a->s6_addr, 16);
		return 16;
	}
	return 0;
}

static size_t ip_bucket(const uint8_t *addr, size_t len)
{
	uint32_t h = 2166136261u;   /* FNV-1a */

	for (size_t i = 0; i < len; i++)
		h = (h ^ addr[i]) * 16777619u;
	return h % GUARD_IP_BUCKETS;
}

/* The entry of an address, NULL if it holds no connection. Lock held. */
static struct guard_ip *ip_find(struct conn_guard *g, const uint8_t *addr, size_t len)
{
	struct guard_ip *e;

	for (e = g->ips[ip_bucket(addr, len)]; e != NULL; e = e->next)
		if (e->len == len && memcmp(e->addr, addr, len) == 0)
			return e;
	return NULL;
}

/* Counts one more connection of an address; NULL when out of memory (the
 * connection is then not counted). Lock held. */
static struct guard_ip *ip_take(struct conn_guard *g, const uint8_t *addr, size_t len)
{
	struct guard_ip *e = ip_find(g, addr, len);
	size_t b;

	if (e == NULL) {
		e = calloc(1, sizeof(*e));
		if (e == NULL)
			return NULL;
		memcpy(e->addr, addr, len);
		e->len = len;
		b = ip_bucket(addr, len);
		e->next = g->ips[b];
		g->ips[b] = e;
	}
	e->count++;
	return e;
}

/* Counts one connection of e less, freeing e at zero. Lock held. */
static void ip_put(struct conn_guard *g, struct guard_ip *e)
{
	struct guard_ip **pp;

	assert(e->count > 0);
	if (--e->count > 0)
		return;
	for (pp = &g->ips[ip_bucket(e->addr, e->len)]; *pp != e; pp = &(*pp)->next)
		;
	*pp = e->next;
	free(e);
}

/* Closes c's connection: libmicrohttpd reads end-of-file on it next and
 * closes it. Lock held. */
static void guard_close(struct guard_conn *c, enum conn_close_reason reason)
{
	static const char *const names[] = {"header_timeout", "slow_body", "per_ip"};

	c->phase = PHASE_CLOSING;
	shutdown(c->fd, SHUT_RDWR);
	metric_add(&metrics.conn_closed[reason], 1);
	log_msg(LOG_DEBUG, "connection closed", "reason=%s fd=%d", names[reason], c->fd);
}

/* Applies c's bound at now. Lock held. */
static void guard_check(struct conn_guard *g, struct guard_conn *c, uint64_t now)
{
	switch (c->phase) {
	case PHASE_HEADER:
	case PHASE_IDLE:
		if (now >= c->deadline_ms)
			guard_close(c, CONN_CLOSE_HEADER_TIMEOUT);
		break;
	case PHASE_BODY:
		if (now - c->window_ms < g->body_ms)
			break;
		if (c->window_bytes < g->body_need) {
			guard_close(c, CONN_CLOSE_SLOW_BODY);
			break;
		}
		c->window_ms = now;
		c->window_bytes = 0;
		break;
	default:
		break;
	}
}

static void *guard_main(void *arg)
{
	struct conn_guard *g = arg;

	pthread_mutex_lock(&g->lock);
	while (!g->stopping) {
		struct timespec ts = clock_deadline(g->tick_ms * 1000);
		uint64_t now;

		pthread_cond_timedwait(&g->wake, &g->lock, &ts);
		now = clock_mono_ms();
		for (struct guard_conn *c = g->conns; c != NULL; c = c->next)
			guard_check(g, c, now);
	}
	pthread_mutex_unlock(&g->lock);
	return NULL;
}

/* Raises the soft limit on open files to the hard one: libmicrohttpd needs
 * one descriptor per connection, and a soft limit of 1024 (a common
 * default) is used up by max_connections = 1024 alone. */
static void raise_fd_limit(const struct config *cfg)
{
	struct rlimit rl;
	rlim_t want = (rlim_t)cfg->max_connections + GUARD_FD_RESERVE, before;

	if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
		return;
	before = rl.rlim_cur;
	if (rl.rlim_cur != rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
			rl.rlim_cur = before;
	}
	if (rl.rlim_cur < want)
		log_msg(LOG_WARN, "open file limit below max_connections",
			"limit=%llu max_connections=%d hint=\"raise ulimit -n (LimitNOFILE=)\"",
			(unsigned long long)rl.rlim_cur, cfg->max_connections);
	else if (before != rl.rlim_cur)
		log_msg(LOG_INFO, "open file limit raised", "from=%llu to=%llu",
			(unsigned long long)before, (unsigned long long)rl.rlim_cur);
}

struct conn_guard *conn_guard_start(const struct config *cfg, char *err,
				    size_t errlen)
{
	struct conn_guard *g = calloc(1, sizeof(*g));
	uint64_t shortest;

	if (g == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	g->header_ms = cfg->header_timeout_ms;
	g->body_ms = cfg->body_timeout_ms;
	g->idle_ms = cfg->idle_timeout_ms;
	g->body_need = cfg->body_min_rate * cfg->body_timeout_ms / 1000;
	if (g->body_need == 0)
		g->body_need = 1;
	g->per_ip = cfg->max_connections_per_ip;
	shortest = g->header_ms < g->body_ms ? g->header_ms : g->body_ms;
	g->tick_ms = shortest / 10 < 20 ? 20 : shortest / 10 > 1000 ? 1000 : shortest / 10;
	pthread_mutex_init(&g->lock, NULL);
	if (clock_cond_init(&g->wake) != 0) {
		snprintf(err, errlen, "connection guard: cannot make a condition variable");
		pthread_mutex_destroy(&g->lock);
		free(g);
		return NULL;
	}
	if (pthread_create(&g->thread, NULL, guard_main, g) != 0) {
		snprintf(err, errlen, "connection guard: cannot start its thread");
		pthread_cond_destroy(&g->wake);
		pthread_mutex_destroy(&g->lock);
		free(g);
		return NULL;
	}
	raise_fd_limit(cfg);
	return g;
}

void conn_guard_stop(struct conn_guard *g)
{
	struct guard_conn *c, *next;

	if (g == NULL)
		return;
	pthread_mutex_lock(&g->lock);
	g->stopping = 1;
	pthread_cond_signal(&g->wake);
	pthread_mutex_unlock(&g->lock);
	pthread_join(g->thread, NULL);
	/* The daemon stopped: every connection was notified closed. */
	for (c = g->conns; c != NULL; c = next) {
		next = c->next;
		free(c);
	}
	for (size_t i = 0; i < GUARD_IP_BUCKETS; i++) {
		struct guard_ip *e, *enext;
		for (e = g->ips[i]; e != NULL; e = enext) {
			enext = e->next;
			free(e);
		}
	}
	pthread_cond_destroy(&g->wake);
	pthread_mutex_destroy(&g->lock);
	free(g);
}

enum MHD_Result conn_guard_accept(void *cls, const struct sockaddr *addr,
				  socklen_t addrlen)
{
	struct conn_guard *g = cls;
	struct guard_ip *e;
	uint8_t key[16];
	size_t len;
	int full;

	(void)addrlen;
	if (g->per_ip == 0 || (len = ip_key(addr, key)) == 0)
		return MHD_YES;
	pthread_mutex_lock(&g->lock);
	e = ip_find(g, key, len);
	full = e != NULL && e->count >= g->per_ip;
	pthread_mutex_unlock(&g->lock);
	if (!full)
		return MHD_YES;
	metric_add(&metrics.conn_closed[CONN_CLOSE_PER_IP], 1);
	return MHD_NO;
}

/* NOTIFY_STARTED: track the connection, HEADER phase. */
static void guard_started(struct conn_guard *g, struct MHD_Connection *conn,
			  void **socket_context)
{
	const union MHD_ConnectionInfo *ci;
	struct guard_conn *c = calloc(1, sizeof(*c));
	uint8_t key[16];
	size_t len = 0;

	if (c == NULL)
		return;         /* not guarded; idle_timeout still applies */
	c->g = g;
	ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
	c->fd = ci ? ci->connect_fd : -1;
	ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	if (ci != NULL)
		len = ip_key(ci->client_addr, key);
	c->phase = PHASE_HEADER;
	c->deadline_ms = clock_mono_ms() + g->header_ms;
	pthread_mutex_lock(&g->lock);
	if (len > 0 && g->per_ip > 0)
		c->ip = ip_take(g, key, len);
	c->next = g->conns;
	if (g->conns != NULL)
		g->conns->prev = c;
	g->conns = c;
	/* Two threads may both have let an address's last slot in. */
	if (c->ip != NULL && c->ip->count > g->per_ip && c->fd >= 0)
		guard_close(c, CONN_CLOSE_PER_IP);
	pthread_mutex_unlock(&g->lock);
	metric_add(&metrics.connections_open, 1);
	*socket_context = c;
}

/* NOTIFY_CLOSED: forget the connection (its socket is closed after). */
static void guard_closed(struct conn_guard *g, void **socket_context)
{
	struct guard_conn *c = *socket_context;

	if (c == NULL)
		return;
	pthread_mutex_lock(&g->lock);
	if (c->prev != NULL)
		c->prev->next = c->next;
	else
		g->conns = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	if (c->ip != NULL)
		ip_put(g, c->ip);
	pthread_mutex_unlock(&g->lock);
	atomic_fetch_sub(&metrics.connections_open, 1);
	free(c);
	*socket_context = NULL;
}

void conn_guard_notify(void *cls, struct MHD_Connection *conn,
		       void **socket_context,
		       enum MHD_ConnectionNotificationCode code)
{
	struct conn_guard *g = cls;

	if (code == MHD_CONNECTION_NOTIFY_STARTED)
		guard_started(g, conn, socket_context);
	else if (code == MHD_CONNECTION_NOTIFY_CLOSED)
		guard_closed(g, socket_context);
}

/* The guard's record of conn, NULL if it has none. */
static struct guard_conn *guard_of(struct MHD_Connection *conn)
{
	const union MHD_ConnectionInfo *ci =
		MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);

	return ci ? ci->socket_context : NULL;
}

void *conn_guard_uri(void *cls, const char *uri, struct MHD_Connection *conn)
{
	struct guard_conn *c = guard_of(conn);
	struct conn_guard *g = cls;
	uint64_t deadline;

	(void)uri;
	if (c == NULL)
		return NULL;
	deadline = clock_mono_ms() + g->header_ms;
	pthread_mutex_lock(&g->lock);
	if (c->phase == PHASE_IDLE) {
		c->phase = PHASE_HEADER;
		if (deadline < c->deadline_ms)
			c->deadline_ms = deadline;
	}
	pthread_mutex_unlock(&g->lock);
	return NULL;
}

/* Whether the request on conn announces a body. */
static int has_body(struct MHD_Connection *conn)
{
	const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
						     MHD_HTTP_HEADER_CONTENT_LENGTH);

	if (MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
					MHD_HTTP_HEADER_TRANSFER_ENCODING) != NULL)
		return 1;
	return cl != NULL && strtoull(cl, NULL, 10) > 0;
}

void conn_guard_on_request(struct MHD_Connection *conn, int first, size_t upload)
{
	struct guard_conn *c = guard_of(conn);
	int body = first && has_body(conn);

	if (c == NULL)
		return;
	pthread_mutex_lock(&c->g->lock);
	if (c->phase != PHASE_CLOSING) {
		if (first) {
			c->phase = body ? PHASE_BODY : PHASE_BUSY;
			c->window_ms = clock_mono_ms();
			c->window_bytes = 0;
		} else if (upload > 0) {
			c->window_bytes += upload;
		} else {
			c->phase = PHASE_BUSY;
		}
	}
	pthread_mutex_unlock(&c->g->lock);
}

void conn_guard_request_done(struct MHD_Connection *conn)
{
	struct guard_conn *c = guard_of(conn);

	if (c == NULL)
		return;
	pthread_mutex_lock(&c->g->lock);
	if (c->phase != PHASE_CLOSING) {
		c->phase = PHASE_IDLE;
		c->deadline_ms = clock_mono_ms() + c->g->idle_ms + c->g->header_ms;
	}
	pthread_mutex_unlock(&c->g->lock);
}

int conn_guard_log_allowed(void)
{
	static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
	static uint64_t window_ms, held;
	static unsigned used;
	uint64_t now = clock_mono_ms(), report = 0;
	int ok;

	pthread_mutex_lock(&lock);
	if (now - window_ms >= 10000) {
		window_ms = now;
		used = 0;
	}
	ok = used < 20;
	if (ok) {
		used++;
		report = held;
		held = 0;
	} else {
		held++;
	}
	pthread_mutex_unlock(&lock);
	if (report > 0)
		log_msg(LOG_WARN, "http server lines held back", "count=%llu",
			(unsigned long long)report);
	return ok;
}
