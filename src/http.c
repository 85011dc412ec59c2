/*
 * http.c - the HTTP transport (see http.h): the server, its connections
 * and the route table; the routes other than the write route are answered
 * here. The write route (reading a write's body, handing it to ingest and
 * to admission, submitting it to the writer, answering) is http_write.c's.
 */
#include "http_int.h"

#include <microhttpd.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "admission.h"
#include "conn_guard.h"
#include "err.h"
#include "http_stream.h"
#include "inflight.h"
#include "listener.h"
#include "log.h"
#include "metrics.h"
#include "queue.h"
#include "reload.h"
#include "setaside.h"
#include "status_page.h"
#include "store.h"
#include "tenant.h"
#include "usage.h"
#include "writer.h"

#define RETRY_AFTER_S "5"

/* Answers with text (copied); 405s say which methods are allowed. */
static enum MHD_Result respond_allow(struct MHD_Connection *conn,
				     unsigned status, const char *text,
				     const char *content_type, const char *allow)
{
	struct MHD_Response *resp;
	enum MHD_Result ret;
	size_t len = text ? strlen(text) : 0;

	resp = MHD_create_response_from_buffer(len, (void *)(text ? text : ""),
					       MHD_RESPMEM_MUST_COPY);
	if (resp == NULL)
		return MHD_NO;
	if (len > 0)
		MHD_add_response_header(resp, "Content-Type",
					content_type ? content_type :
					"text/plain; charset=utf-8");
	if (status == 503 || status == 429)
		MHD_add_response_header(resp, "Retry-After", RETRY_AFTER_S);
	if (status == 405)
		MHD_add_response_header(resp, "Allow", allow ? allow : "POST");
	ret = MHD_queue_response(conn, status, resp);
	MHD_destroy_response(resp);
	return ret;
}

static enum MHD_Result respond(struct MHD_Connection *conn, unsigned status,
			       const char *text, const char *content_type)
{
	return respond_allow(conn, status, text, content_type, NULL);
}


static enum MHD_Result handle_metrics(struct http *h, struct MHD_Connection *conn,
				      const char *url, const char *method)
{
	struct MHD_Response *resp;
	enum MHD_Result ret;
	struct buf out;

	(void)url;
	(void)method;
	buf_init(&out, 64u << 20);
	if (metrics_render(&out, h->d.q) < 0) {
		buf_free(&out);
		return respond(conn, 500, "cannot render metrics\n", NULL);
	}
	resp = MHD_create_response_from_buffer(out.len, out.p ? out.p : (void *)"",
					       out.p ? MHD_RESPMEM_MUST_FREE :
					       MHD_RESPMEM_PERSISTENT);
	if (resp == NULL) {
		buf_free(&out);
		return MHD_NO;
	}
	MHD_add_response_header(resp, "Content-Type",
				"text/plain; version=0.0.4; charset=utf-8");
	ret = MHD_queue_response(conn, 200, resp);
	MHD_destroy_response(resp);
	return ret;
}

static int usage_part(void *arg, struct buf *out)
{
	return usage_report_next(arg, out);
}

static void usage_done(void *arg)
{
	usage_report_free(arg);
}

static const char *query_arg(void *arg, const char *name)
{
	return MHD_lookup_connection_value(arg, MHD_GET_ARGUMENT_KIND, name);
}

/* Queues a streamed answer (http_stream.h); next, when not NULL, is the
 * next page's cursor for X-Usage-Next. */
static enum MHD_Result respond_stream(struct MHD_Connection *conn,
				      const struct http_stream_src *src,
				      const char *content_type, const char *next)
{
	struct MHD_Response *resp = http_stream_response(src);
	enum MHD_Result ret;

	if (resp == NULL)
		return MHD_NO;
	MHD_add_response_header(resp, "Content-Type", content_type);
	if (next != NULL)
		MHD_add_response_header(resp, "X-Usage-Next", next);
	ret = MHD_queue_response(conn, 200, resp);
	MHD_destroy_response(resp);
	return ret;
}

/* GET /api/v1/usage (admin): the usage report, streamed page by page. */
static enum MHD_Result handle_usage(struct http *h, struct MHD_Connection *conn,
				    const char *url, const char *method)
{
	struct usage_filter f;
	struct usage_report *rep;
	const char *why;
	char next[TENANT_ID_MAX + 32];
	int csv, rc;

	(void)url;
	(void)method;
	if (usage_query_parse(&f, &csv, query_arg, conn, &why) < 0)
		return respond(conn, 400, why, NULL);
	if ((rc = usage_report_open(&rep, h->d.st, &f, csv)) < 0)
		return respond(conn, rc == ERR_NOMEM ? 500 : 503, rc == ERR_NOMEM ?
			       "cannot format usage\n" : "storage unavailable\n", NULL);
	rc = usage_report_next_cursor(rep, next, sizeof(next));
	return respond_stream(conn, &(struct http_stream_src){
				usage_part, usage_done, rep, "usage"},
			      csv ? "text/csv; charset=utf-8" : "application/json",
			      rc == 1 ? next : NULL);
}

/* POST /-/reload (admin): reads the file again. */
static enum MHD_Result handle_reload(struct http *h, struct MHD_Connection *conn,
				     const char *url, const char *method)
{
	char msg[1200], line[1210];

	(void)h;
	(void)url;
	(void)method;
	if (reload_now(msg, sizeof(msg)) < 0) {
		snprintf(line, sizeof(line), "%s\n", msg);
		return respond(conn, 400, line, NULL);
	}
	snprintf(line, sizeof(line), "%s\n", msg);
	return respond(conn, 200, line, NULL);
}

/* The ?tenant=&seq= filter of the set-aside routes; 0 or -1 (answered). */
static int setaside_filter(struct MHD_Connection *conn,
			   struct setaside_filter *f, enum MHD_Result *ret)
{
	if (setaside_filter_parse(f,
		MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "tenant"),
		MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "seq")) < 0) {
		*ret = respond(conn, 400, "bad tenant or seq\n", NULL);
		return -1;
	}
	return 0;
}

/* POST /api/v1/setaside/replay|purge (admin): queues the operation. */
static enum MHD_Result handle_setaside_op(struct http *h,
					  struct MHD_Connection *conn,
					  const char *url, const char *method)
{
	struct setaside_filter f;
	enum MHD_Result ret;
	int replay = strcmp(url, "/api/v1/setaside/replay") == 0;

	(void)method;
	if (setaside_filter(conn, &f, &ret) < 0)
		return ret;
	writer_setaside_op(h->d.w, &f, replay);
	return respond(conn, 202, replay ? "replay queued\n" : "purge queued\n",
		       NULL);
}

static int setaside_part(void *arg, struct buf *out)
{
	return setaside_list_next(arg, out);
}

static void setaside_done(void *arg)
{
	setaside_list_free(arg);
}

/* GET /api/v1/setaside (admin): lists the set-aside entries, streamed. */
static enum MHD_Result handle_setaside(struct http *h, struct MHD_Connection *conn,
				       const char *url, const char *method)
{
	struct setaside_filter f;
	struct setaside_list *l;
	enum MHD_Result ret;
	int rc;

	(void)url;
	(void)method;
	if (setaside_filter(conn, &f, &ret) < 0)
		return ret;
	if ((rc = setaside_list_open(&l, h->d.st, &f, 1)) < 0)
		return respond(conn, rc == ERR_NOMEM ? 500 : 503, rc == ERR_NOMEM ?
			       "cannot list\n" : "storage unavailable\n", NULL);
	return respond_stream(conn, &(struct http_stream_src){
				setaside_part, setaside_done, l, "setaside"},
			      "application/json", NULL);
}

/* Whether the request carries [server] admin_token; answers it if not. */
static int admin_ok(struct MHD_Connection *conn, enum MHD_Result *ret)
{
	const char *auth = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
						       "Authorization");

	const struct config *cfg = config_hold();
	int off = cfg->admin_token == NULL;
	int good = !off && auth != NULL && strncasecmp(auth, "Bearer ", 7) == 0 &&
		   tenant_token_equal(auth + 7, cfg->admin_token);

	config_release(cfg);
	if (off) {
		*ret = respond(conn, 403, "admin endpoints are off: set [server] "
			       "admin_token\n", NULL);
		return 0;
	}
	if (!good) {
		*ret = respond(conn, 401, "admin token required\n", NULL);
		return 0;
	}
	return 1;
}

static enum MHD_Result handle_healthy(struct http *h, struct MHD_Connection *conn,
				      const char *url, const char *method)
{
	(void)h;
	(void)url;
	(void)method;
	return respond(conn, 200, "OK\n", NULL);
}

static enum MHD_Result handle_ready(struct http *h, struct MHD_Connection *conn,
				    const char *url, const char *method)
{
	(void)url;
	(void)method;
	if (admission_stopping(&h->adm))
		return respond(conn, 503, "shutting down\n", NULL);
	return respond(conn, 200, "OK\n", NULL);
}

/* MHD_get_connection_values: notes that the query has an "admin" key. */
static enum MHD_Result find_admin_arg(void *cls, enum MHD_ValueKind kind,
				      const char *key, const char *value)
{
	(void)kind;
	(void)value;
	if (strcmp(key, "admin") == 0) {
		*(int *)cls = 1;
		return MHD_NO;
	}
	return MHD_YES;
}

/* GET / (status_page.h): the tenant part with the admin token as Bearer
 * or HTTP Basic (user admin); ?admin without it asks a browser for it. */
static enum MHD_Result handle_status(struct http *h, struct MHD_Connection *conn,
				     const char *url, const char *method)
{
	const char *auth = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
						       "Authorization");
	const struct config *cfg = config_hold();
	struct MHD_Response *resp;
	enum MHD_Result ret;
	struct buf out;
	int asked = 0, admin, rc;

	(void)url;
	(void)method;
	MHD_get_connection_values(conn, MHD_GET_ARGUMENT_KIND, find_admin_arg,
				  &asked);
	admin = tenant_admin_auth(auth, cfg->admin_token);
	if (asked && !admin) {
		int off = cfg->admin_token == NULL;
		config_release(cfg);
		if (off)
			return respond(conn, 403, "admin endpoints are off: set "
				       "[server] admin_token\n", NULL);
		resp = MHD_create_response_from_buffer(
			strlen("admin token required\n"),
			(void *)"admin token required\n", MHD_RESPMEM_PERSISTENT);
		if (resp == NULL)
			return MHD_NO;
		MHD_add_response_header(resp, "Content-Type",
					"text/plain; charset=utf-8");
		MHD_add_response_header(resp, "WWW-Authenticate",
					"Basic realm=\"relay\", charset=\"UTF-8\"");
		ret = MHD_queue_response(conn, 401, resp);
		MHD_destroy_response(resp);
		return ret;
	}
	buf_init(&out, 16u << 20);
	rc = status_page_render(&out, cfg, h->d.st, h->d.q, admin);
	config_release(cfg);
	if (rc != 0) {
		buf_free(&out);
		return respond(conn, rc == ERR_NOMEM ? 500 : 503, rc == ERR_NOMEM ?
			       "cannot render the page\n" :
			       "storage unavailable\n", NULL);
	}
	resp = MHD_create_response_from_buffer(out.len, out.p, MHD_RESPMEM_MUST_FREE);
	if (resp == NULL) {
		buf_free(&out);
		return MHD_NO;
	}
	MHD_add_response_header(resp, "Content-Type", "text/html; charset=utf-8");
	MHD_add_response_header(resp, "Cache-Control", "no-store");
	ret = MHD_queue_response(conn, 200, resp);
	MHD_destroy_response(resp);
	return ret;
}

static enum MHD_Result handle_not_found(struct http *h,
					struct MHD_Connection *conn,
					const char *url, const char *method)
{
	(void)h;
	(void)url;
	(void)method;
	return respond(conn, 404, "not found\n", NULL);
}

/*
 * The routes, as http.h lists them. method: "GET" also takes HEAD; NULL
 * takes any (the handler decides). prefix: path is a prefix of the URL.
 * admin: [server] admin_token required, checked after the method. The
 * write route is not called through here (it reads a body; see
 * on_request) but is listed so that the table is the whole API.
 */
static const struct route {
	const char *method;
	const char *path;
	int prefix;
	int admin;
	enum MHD_Result (*handler)(struct http *h, struct MHD_Connection *conn,
				   const char *url, const char *method);
} routes[] = {
	{"POST", "/api/v1/write",           0, 0, NULL},
	{"GET",  "/",                       0, 0, handle_status},
	{"GET",  "/metrics",                0, 0, handle_metrics},
	{"GET",  "/-/healthy",              0, 0, handle_healthy},
	{"GET",  "/-/ready",                0, 0, handle_ready},
	{"POST", "/-/reload",               0, 1, handle_reload},
	{"GET",  "/api/v1/usage",           0, 1, handle_usage},
	{NULL,   "/api/v1/setaside",        0, 1, handle_setaside},
	{"POST", "/api/v1/setaside/replay", 0, 1, handle_setaside_op},
	{"POST", "/api/v1/setaside/purge",  0, 1, handle_setaside_op},
	{NULL,   "/api/v1/setaside/",       1, 1, handle_not_found},
};

static const struct route *route_find(const char *url)
{
	for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
		const struct route *rt = &routes[i];
		if (rt->prefix ? strncmp(url, rt->path, strlen(rt->path)) == 0 :
				 strcmp(url, rt->path) == 0)
			return rt;
	}
	return NULL;
}

static int method_ok(const struct route *rt, const char *method)
{
	if (rt->method == NULL || strcmp(method, rt->method) == 0)
		return 1;
	return strcmp(rt->method, "GET") == 0 && strcmp(method, "HEAD") == 0;
}

/* Answers a request to a route other than the write route. */
static enum MHD_Result dispatch(struct http *h, struct MHD_Connection *conn,
				const char *url, const char *method)
{
	const struct route *rt = route_find(url);
	enum MHD_Result ret;

	if (rt == NULL) {
		/* Everything under /-/ is an operation: a wrong one is 405. */
		if (strncmp(url, "/-/", 3) == 0)
			return respond(conn, 405, "method not allowed\n", NULL);
		return respond(conn, 404, "not found\n", NULL);
	}
	if (!method_ok(rt, method))
		return respond_allow(conn, 405, rt->handler == handle_setaside_op ?
				     "use POST\n" : "method not allowed\n", NULL,
				     strcmp(rt->method, "GET") == 0 ? "GET, HEAD" :
				     rt->method);
	if (rt->admin && !admin_ok(conn, &ret))
		return ret;
	return rt->handler(h, conn, url, method);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn,
				  const char *url, const char *method,
				  const char *version, const char *upload,
				  size_t *upload_size, void **con_cls)
{
	struct http *h = cls;

	(void)version;
	conn_guard_on_request(conn, *con_cls == NULL, *upload_size);
	if (*con_cls == NULL && h->tls_ca != NULL && !listener_client_cert_ok(conn)) {
		log_msg(LOG_WARN, "client certificate missing or not trusted",
			"url=%s", url);
		/* A write refused so is counted as any refused write (no
		 * tenant: none is known). */
		if (strcmp(url, routes[0].path) == 0) {
			metrics_count_request(403);
			metric_add(&metrics.refused[REFUSE_UNAUTHORIZED], 1);
		}
		return respond(conn, 403, "client certificate required\n", NULL);
	}
	if (strcmp(url, routes[0].path) == 0)
		return http_write_handle(h, conn, method, upload, upload_size,
					 con_cls);
	if (*upload_size > 0) {
		/* Other routes take no body: drop it. */
		*upload_size = 0;
		return MHD_YES;
	}
	if (*con_cls == NULL && strcmp(method, "POST") == 0) {
		/* Answer a POST once its (ignored) body is in. */
		*con_cls = h;
		return MHD_YES;
	}
	return dispatch(h, conn, url, method);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
			 enum MHD_RequestTerminationCode toe)
{
	(void)toe;
	conn_guard_request_done(conn);
	/* cls: a POST to another route, whose body was dropped. */
	if (*con_cls == NULL || *con_cls == cls)
		return;
	http_write_end(*con_cls);
	*con_cls = NULL;
}

static void on_mhd_log(void *cls, const char *fmt, va_list ap)
	__attribute__((format(printf, 2, 0)));

static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
	char line[512];
	size_t n;

	(void)cls;
	if (!conn_guard_log_allowed())
		return;
	vsnprintf(line, sizeof(line), fmt, ap);
	n = strlen(line);
	while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == ' '))
		line[--n] = '\0';
	log_msg(LOG_WARN, "http server", "detail=\"%s\"", line);
}

struct http *http_start(const struct http_deps *deps, char *err, size_t errlen)
{
	const struct config *cfg = deps->cfg;
	struct sockaddr_storage ss;
	/* Level-triggered poll, not epoll: with epoll's edge triggering
	 * libmicrohttpd misses a peer's close that arrives with its last
	 * bytes (see docs/limits.md). */
	unsigned flags = MHD_USE_POLL_INTERNAL_THREAD |
			 MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG;
	struct MHD_OptionItem opts[16];
	struct http *h;
	int n = 0;

	if (listener_parse_addr(cfg->listen, &ss, err, errlen) < 0)
		return NULL;
	if (ss.ss_family == AF_INET6)
		flags |= MHD_USE_IPv6;
	h = calloc(1, sizeof(*h));
	if (h == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	h->d = *deps;
	admission_init(&h->adm, deps->q, deps->w);
	h->stored = MHD_create_response_from_buffer(0, (void *)"",
						    MHD_RESPMEM_PERSISTENT);
	if (h->stored == NULL) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	opts[n++] = (struct MHD_OptionItem){MHD_OPTION_EXTERNAL_LOGGER,
					    (intptr_t)on_mhd_log, h};
	if (cfg->tls_cert != NULL || cfg->tls_key != NULL) {
		if (cfg->tls_cert == NULL || cfg->tls_key == NULL) {
			snprintf(err, errlen, "tls_cert and tls_key go together");
			goto fail;
		}
		if ((h->tls_cert = listener_read_pem(cfg->tls_cert, err, errlen)) == NULL ||
		    (h->tls_key = listener_read_pem(cfg->tls_key, err, errlen)) == NULL)
			goto fail;
		flags |= MHD_USE_TLS;
		opts[n++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_CERT, 0, h->tls_cert};
		opts[n++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_KEY, 0, h->tls_key};
		if (cfg->tls_client_ca != NULL) {
			if ((h->tls_ca = listener_read_pem(cfg->tls_client_ca, err, errlen)) == NULL)
				goto fail;
			opts[n++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_TRUST, 0, h->tls_ca};
		}
	}
	opts[n++] = (struct MHD_OptionItem){MHD_OPTION_SOCK_ADDR, 0, &ss};
	opts[n++] = (struct MHD_OptionItem){MHD_OPTION_THREAD_POOL_SIZE,
					    (intptr_t)cfg->threads, NULL};
	opts[n++] = (struct MHD_OptionItem){MHD_OPTION_CONNECTION_LIMIT,
					    (intptr_t)cfg->max_connections, NULL};
	opts[n++] = (struct MHD_OptionItem){MHD_OPTION_CONNECTION_TIMEOUT,
					    (intptr_t)((cfg->idle_timeout_ms + 999) / 1000), NULL};
	opts[n++] = (struct MHD_OptionItem){MHD_OPTION_NOTIFY_COMPLETED,
					    (intptr_t)on_completed, h};
	opts[n++] = (struct MHD_OptionItem){MHD_OPTION_LISTEN_BACKLOG_SIZE, 1024, NULL};
	if ((h->guard = conn_guard_start(cfg, err, errlen)) == NULL)
		goto fail;
	opts[n++] = (struct MHD_OptionItem){MHD_OPTION_NOTIFY_CONNECTION,
					    (intptr_t)conn_guard_notify, h->guard};
	opts[n++] = (struct MHD_OptionItem){MHD_OPTION_URI_LOG_CALLBACK,
					    (intptr_t)conn_guard_uri, h->guard};
	opts[n++] = (struct MHD_OptionItem){MHD_OPTION_END, 0, NULL};
	h->daemon = MHD_start_daemon(flags, 0, conn_guard_accept, h->guard,
				     on_request, h,
				     MHD_OPTION_ARRAY, opts, MHD_OPTION_END);
	if (h->daemon == NULL) {
		snprintf(err, errlen, "cannot listen on %s (in use, or not an "
			 "address of this host?)", cfg->listen);
		goto fail;
	}
	return h;
fail:
	conn_guard_stop(h->guard);
	if (h->stored != NULL)
		MHD_destroy_response(h->stored);
	free(h->tls_cert);
	free(h->tls_key);
	free(h->tls_ca);
	admission_destroy(&h->adm);
	free(h);
	return NULL;
}

void http_refuse_new(struct http *h)
{
	admission_stop(&h->adm);
}

void http_stop(struct http *h, unsigned wait_ms)
{
	struct timespec ts = {0, 10 * 1000000};
	MHD_socket lsock;

	admission_stop(&h->adm);
	/* The listening socket stays open until MHD is stopped, then it is
	 * ours to close: connections meanwhile wait in its backlog. */
	lsock = MHD_quiesce_daemon(h->daemon);
	/* Every request handed to the writer is answered (stored or
	 * refused) before the daemon stops: libmicrohttpd must not stop
	 * with connections suspended, and the writer still owns their
	 * batches. The writer runs until after this returns, so the wait
	 * ends; past wait_ms it is said in the log. */
	for (unsigned waited = 0; atomic_load(&h->waiting) > 0; waited += 10) {
		if (waited >= wait_ms && waited - 10 < wait_ms)
			log_msg(LOG_WARN, "stop waits for commits in progress",
				"requests=%ld", atomic_load(&h->waiting));
		nanosleep(&ts, NULL);
	}
	/* Let resumed connections send their answers. */
	nanosleep(&(struct timespec){0, 50 * 1000000}, NULL);
	MHD_stop_daemon(h->daemon);
	if (lsock != MHD_INVALID_SOCKET)
		close(lsock);
	conn_guard_stop(h->guard);
	MHD_destroy_response(h->stored);
	free(h->tls_cert);
	free(h->tls_key);
	free(h->tls_ca);
	admission_destroy(&h->adm);
	free(h);
}
