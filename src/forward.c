/*
 * forward.c - upstream delivery threads (see forward.h).
 */
#include "forward.h"

#include <curl/curl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "log.h"
#include "metrics.h"
#include "queue.h"
#include "reload.h"
#include "retry.h"
#include "store.h"
#include "tenant_stats.h"
#include "upstream_conn.h"
#include "upstream_gate.h"
#include "upstream_status.h"
#include "version.h"
#include "writer.h"

#define REASON_MAX 512
/* curl's buffers, per forwarder thread: answers are short (only their
 * start is kept); bodies go out 64 KiB a send (16 KiB, its least, cost
 * about a fifth more CPU per delivered sample in a catch-up). */
#define SENDER_RECV_BUF 1024
#define SENDER_SEND_BUF FORWARD_SEND_BUF
/* The set-aside reason of a batch that could not be read to be sent. */
#define MALFORMED_REASON "malformed in the buffer (snappy block missing or " \
	"its length unreadable); not sent"
/* A misconfigured upstream is logged once per this time, tenant and status. */
#define MISCONF_LOG_MS 30000
#define MISCONF_SLOTS 32

struct forwarder {
	const struct config *cfg; /* ref */
	struct store *st;         /* ref */
	struct queue *q;          /* ref */
	struct writer *w;         /* ref */
	pthread_t *threads;
	int nthreads;
	/* Monotonic ms at which requests in flight are abandoned (0: never);
	 * set once by forwarder_stop. */
	_Atomic uint64_t abandon_at_ms;
	struct upstream_gates gates; /* one per upstream (upstream_gate.h) */
	struct retry_trust trust;    /* URLs whose refusals judge content */
	/* When each (tenant, status) was last logged as misconfigured. */
	pthread_mutex_t log_lock;
	struct misconf_slot {
		char tenant[TENANT_ID_MAX + 1];
		long status;
		uint64_t logged_ms;
		uint64_t suppressed;   /* failures since, not logged */
	} misconf[MISCONF_SLOTS];
};

/* One thread's connection and buffers. */
struct sender {
	struct forwarder *f;      /* ref */
	CURL *curl;
	struct curl_slist *headers;
	/* Plain HTTP without curl's copy of the body (upstream_conn.h): the
	 * connection, and the request's headers for it (NULL-ended). */
	struct upstream_conn conn;
	const char *conn_headers[8];
	char *auth;               /* owned: "Authorization: ..." or NULL */
	struct store_body body;   /* the request being sent, read from the map */
	/* What body was opened with and found, to open it again if curl
	 * rewinds after the transaction was released. */
	const struct queue_job *job; /* ref */
	uint64_t max_entries;
	struct store_span span;
	char reason[REASON_MAX];  /* start of the upstream's answer */
	size_t reason_len;
	char retry_after[64];
	char status_text[64];     /* reason phrase of the status line */
	char location[256];       /* Location of a 3xx */
	char errbuf[CURL_ERROR_SIZE];
	char url[2048];           /* of the request being sent */
	int kept_dest;            /* sent under ids the config has changed */
	long status;              /* of the last request: 0 no answer, -1 none */
	uint32_t rnd;
};

int forward_url(const struct config *cfg, const char *tenant, size_t tlen,
		const struct store_dest *dest, char *out, size_t outlen)
{
	const struct config_tenant *t = config_tenant_find(cfg, tenant, tlen);
	const char *p = cfg->url, *val, *account, *project;
	size_t o = 0, n;

	if (dest != NULL) {
		account = dest->account_id[0] ? dest->account_id : NULL;
		project = dest->project_id[0] ? dest->project_id : NULL;
	} else {
		account = t ? t->account_id : NULL;
		project = t ? t->project_id : NULL;
	}

	while (*p != '\0') {
		val = NULL;
		if (strncmp(p, "{tenant}", 8) == 0) {
			n = tlen;
			val = tenant;
			p += 8;
		} else if (strncmp(p, "{account_id}", 12) == 0) {
			val = account ? account : "0";
			n = strlen(val);
			p += 12;
		} else if (strncmp(p, "{project_id}", 12) == 0) {
			val = project ? project : "0";
			n = strlen(val);
			p += 12;
		} else {
			n = 1;
			val = p++;
		}
		if (o + n >= outlen)
			return -1;
		memcpy(out + o, val, n);
		o += n;
	}
	out[o] = '\0';
	return 0;
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *arg)
{
	struct sender *s = arg;
	size_t n = size * nmemb, room = sizeof(s->reason) - 1 - s->reason_len;

	if (room > 0) {
		size_t k = n < room ? n : room;
		memcpy(s->reason + s->reason_len, data, k);
		s->reason_len += k;
		s->reason[s->reason_len] = '\0';
	}
	return n;
}

/* Copies a header's value (data[skip..n), trimmed) into out. */
static void header_value(const char *data, size_t n, size_t skip, char *out,
			 size_t outlen)
{
	size_t k;

	while (skip < n && data[skip] == ' ')
		skip++;
	k = n - skip;
	if (k >= outlen)
		k = outlen - 1;
	memcpy(out, data + skip, k);
	out[k] = '\0';
	for (char *e = out + k;
	     e > out && (e[-1] == '\r' || e[-1] == '\n' || e[-1] == ' ');)
		*--e = '\0';
}

static size_t on_header(char *data, size_t size, size_t nmemb, void *arg)
{
	struct sender *s = arg;
	size_t n = size * nmemb;
	const char *sp;

	if (n > 5 && strncmp(data, "HTTP/", 5) == 0) {
		/* A new answer (after a 100 Continue, say): forget the last. */
		s->retry_after[0] = s->location[0] = s->status_text[0] = '\0';
		sp = memchr(data, ' ', n);
		sp = sp ? memchr(sp + 1, ' ', n - (size_t)(sp + 1 - data)) : NULL;
		if (sp != NULL)
			header_value(data, n, (size_t)(sp + 1 - data),
				     s->status_text, sizeof(s->status_text));
	} else if (n > 12 && strncasecmp(data, "Retry-After:", 12) == 0) {
		header_value(data, n, 12, s->retry_after, sizeof(s->retry_after));
	} else if (n > 9 && strncasecmp(data, "Location:", 9) == 0) {
		header_value(data, n, 9, s->location, sizeof(s->location));
	}
	return n;
}

/*
 * curl's progress callback: abandons the request once the relay stops and
 * its shutdown_timeout is over (curl calls it about once a second even
 * while the upstream says nothing). The entries stay buffered.
 */
static int on_progress(void *arg, curl_off_t dltotal, curl_off_t dlnow,
		       curl_off_t ultotal, curl_off_t ulnow)
{
	struct sender *s = arg;
	uint64_t at = atomic_load(&s->f->abandon_at_ms);

	(void)dltotal;
	(void)dlnow;
	(void)ultotal;
	(void)ulnow;
	return at != 0 && clock_mono_ms() >= at;
}

/* Opens s->body for s->job: the tenant's entries from job->first on. */
static int body_open(struct sender *s, struct store_span *span)
{
	const struct queue_job *job = s->job;

	return store_body_open(s->f->st, job->id, job->idlen, job->lane,
			       job->first, job->last, s->f->cfg->max_request_size,
			       s->max_entries, &s->body, span);
}

/*
 * curl's read callback: the next bytes of the body, straight from the map.
 * Once curl has them all the read transaction ends: an upstream that takes
 * its time to answer must not keep LMDB from reusing pages meanwhile.
 */
static size_t on_read(char *dst, size_t size, size_t nitems, void *arg)
{
	struct sender *s = arg;
	size_t n = sblock_stream_read(&s->body.stream, dst, size * nitems);

	if (s->body.stream.pos == s->body.stream.len)
		store_body_release(&s->body);
	return n;
}

/* curl's seek callback: it rewinds to resend a body (a reused connection
 * that turned out closed). After the release the body is opened again,
 * and used only if it is the same. */
static int on_seek(void *arg, curl_off_t offset, int origin)
{
	struct sender *s = arg;
	struct store_span again;
	uint64_t len = s->body.stream.len;

	if (origin != SEEK_SET || offset != 0)
		return CURL_SEEKFUNC_CANTSEEK;
	if (s->body.read != NULL) {
		sblock_stream_rewind(&s->body.stream);
		return CURL_SEEKFUNC_OK;
	}
	if (body_open(s, &again) != 0) /* 1: not readable now, not sent */
		return CURL_SEEKFUNC_CANTSEEK;
	if (again.entries != s->span.entries ||
	    again.first_seq != s->span.first_seq ||
	    again.last_seq != s->span.last_seq || s->body.stream.len != len) {
		store_body_release(&s->body);
		s->body.stream.len = len;
		return CURL_SEEKFUNC_CANTSEEK;
	}
	return CURL_SEEKFUNC_OK;
}

/* "Authorization: Basic " and base64 of user:password, in a new string;
 * NULL when memory is short. */
static char *basic_auth(const char *user, const char *password)
{
	static const char b64[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	static const char lead[] = "Authorization: Basic ";
	size_t ul = strlen(user), pl = strlen(password), n = ul + 1 + pl, o;
	unsigned char *in = malloc(n);
	char *out = malloc(sizeof(lead) + (n + 2) / 3 * 4);

	if (in == NULL || out == NULL) {
		free(in);
		free(out);
		return NULL;
	}
	memcpy(in, user, ul);
	in[ul] = ':';
	memcpy(in + ul + 1, password, pl);
	memcpy(out, lead, sizeof(lead) - 1);
	o = sizeof(lead) - 1;
	for (size_t i = 0; i < n; i += 3) {
		uint32_t v = (uint32_t)in[i] << 16;
		if (i + 1 < n)
			v |= (uint32_t)in[i + 1] << 8;
		if (i + 2 < n)
			v |= in[i + 2];
		out[o++] = b64[v >> 18 & 63];
		out[o++] = b64[v >> 12 & 63];
		out[o++] = i + 1 < n ? b64[v >> 6 & 63] : '=';
		out[o++] = i + 2 < n ? b64[v & 63] : '=';
	}
	out[o] = '\0';
	free(in);
	return out;
}

/* The headers of a request sent with upstream_conn: curl's, as
 * sender_init sets them. Returns 0 or -1 (memory). */
static int conn_headers_init(struct sender *s, const struct config *cfg)
{
	size_t k = 0;

	if (cfg->bearer_token != NULL) {
		size_t n = strlen(cfg->bearer_token) + 32;
		if ((s->auth = malloc(n)) == NULL)
			return -1;
		snprintf(s->auth, n, "Authorization: Bearer %s", cfg->bearer_token);
	} else if (cfg->basic_user != NULL &&
		   (s->auth = basic_auth(cfg->basic_user, cfg->basic_password ?
					 cfg->basic_password : "")) == NULL) {
		return -1;
	}
	s->conn_headers[k++] = "User-Agent: remote-write-relay/" RELAY_VERSION;
	s->conn_headers[k++] = "Content-Encoding: snappy";
	s->conn_headers[k++] = "Content-Type: application/x-protobuf";
	s->conn_headers[k++] = "X-Prometheus-Remote-Write-Version: 0.1.0";
	if (s->auth != NULL)
		s->conn_headers[k++] = s->auth;
	s->conn_headers[k] = NULL;
	return 0;
}

static int sender_init(struct sender *s, struct forwarder *f)
{
	const struct config *cfg = f->cfg;

	/* All but the body's parts: those are written before they are read,
	 * and left untouched they cost no memory (STORE_BODY_MAX_PIECES of
	 * them, 64 KiB a thread). */
	memset(s, 0, offsetof(struct sender, body));
	memset(&s->body, 0, offsetof(struct store_body, elements));
	memset(&s->body.stream, 0, sizeof(s->body.stream));
	memset((char *)s + offsetof(struct sender, job), 0,
	       sizeof(*s) - offsetof(struct sender, job));
	s->f = f;
	s->rnd = (uint32_t)time(NULL) ^ (uint32_t)(uintptr_t)s;
	upstream_conn_init(&s->conn);
	s->curl = curl_easy_init();
	if (s->curl == NULL || conn_headers_init(s, cfg) < 0)
		return -1;
	s->headers = curl_slist_append(s->headers, "Content-Encoding: snappy");
	s->headers = curl_slist_append(s->headers, "Content-Type: application/x-protobuf");
	s->headers = curl_slist_append(s->headers, "X-Prometheus-Remote-Write-Version: 0.1.0");
	s->headers = curl_slist_append(s->headers, "Expect:");
	curl_easy_setopt(s->curl, CURLOPT_HTTPHEADER, s->headers);
	curl_easy_setopt(s->curl, CURLOPT_USERAGENT, "remote-write-relay/" RELAY_VERSION);
	curl_easy_setopt(s->curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(s->curl, CURLOPT_TIMEOUT_MS, (long)cfg->timeout_ms);
	curl_easy_setopt(s->curl, CURLOPT_CONNECTTIMEOUT_MS,
			 (long)(cfg->timeout_ms < 10000 ? cfg->timeout_ms : 10000));
	curl_easy_setopt(s->curl, CURLOPT_BUFFERSIZE, (long)SENDER_RECV_BUF);
	curl_easy_setopt(s->curl, CURLOPT_UPLOAD_BUFFERSIZE, (long)SENDER_SEND_BUF);
	curl_easy_setopt(s->curl, CURLOPT_POST, 1L);
	curl_easy_setopt(s->curl, CURLOPT_POSTFIELDS, NULL);
	curl_easy_setopt(s->curl, CURLOPT_READFUNCTION, on_read);
	curl_easy_setopt(s->curl, CURLOPT_READDATA, s);
	curl_easy_setopt(s->curl, CURLOPT_SEEKFUNCTION, on_seek);
	curl_easy_setopt(s->curl, CURLOPT_SEEKDATA, s);
	curl_easy_setopt(s->curl, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(s->curl, CURLOPT_WRITEDATA, s);
	curl_easy_setopt(s->curl, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(s->curl, CURLOPT_HEADERDATA, s);
	curl_easy_setopt(s->curl, CURLOPT_ERRORBUFFER, s->errbuf);
	curl_easy_setopt(s->curl, CURLOPT_XFERINFOFUNCTION, on_progress);
	curl_easy_setopt(s->curl, CURLOPT_XFERINFODATA, s);
	curl_easy_setopt(s->curl, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(s->curl, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(s->curl, CURLOPT_SSL_VERIFYPEER, cfg->tls_verify ? 1L : 0L);
	curl_easy_setopt(s->curl, CURLOPT_SSL_VERIFYHOST, cfg->tls_verify ? 2L : 0L);
	if (cfg->ca_file != NULL)
		curl_easy_setopt(s->curl, CURLOPT_CAINFO, cfg->ca_file);
	if (cfg->client_cert != NULL)
		curl_easy_setopt(s->curl, CURLOPT_SSLCERT, cfg->client_cert);
	if (cfg->client_key != NULL)
		curl_easy_setopt(s->curl, CURLOPT_SSLKEY, cfg->client_key);
	if (cfg->bearer_token != NULL) {
		curl_easy_setopt(s->curl, CURLOPT_HTTPAUTH, CURLAUTH_BEARER);
		curl_easy_setopt(s->curl, CURLOPT_XOAUTH2_BEARER, cfg->bearer_token);
	} else if (cfg->basic_user != NULL) {
		curl_easy_setopt(s->curl, CURLOPT_HTTPAUTH, CURLAUTH_BASIC);
		curl_easy_setopt(s->curl, CURLOPT_USERNAME, cfg->basic_user);
		curl_easy_setopt(s->curl, CURLOPT_PASSWORD,
				 cfg->basic_password ? cfg->basic_password : "");
	}
	return 0;
}

static void sender_free(struct sender *s)
{
	if (s->curl != NULL)
		curl_easy_cleanup(s->curl);
	curl_slist_free_all(s->headers);
	upstream_conn_close(&s->conn);
	free(s->auth);
	store_body_release(&s->body);
}

/* upstream_body's reader over s->body (see upstream_conn.h). */
static int body_pieces(void *arg, struct iovec *iov, int max)
{
	struct sender *s = arg;

	return sblock_stream_iov(&s->body.stream, iov, max);
}

/* Once the kernel has all of the body the read transaction ends, as in
 * on_read. */
static void body_advance(void *arg, size_t n)
{
	struct sender *s = arg;

	sblock_stream_skip(&s->body.stream, n);
	if (s->body.stream.pos == s->body.stream.len)
		store_body_release(&s->body);
}

static int body_rewind(void *arg)
{
	return on_seek(arg, 0, SEEK_SET) == CURL_SEEKFUNC_OK ? 0 : -1;
}

/* sender_post over upstream_conn. Returns the status, or 0 with the
 * reason in s->reason. */
static long post_direct(struct sender *s, const char *url)
{
	struct upstream_body body = {
		.len = s->body.stream.len, .pieces = body_pieces,
		.advance = body_advance, .rewind = body_rewind, .arg = s
	};
	struct upstream_req req = {
		.url = url, .headers = s->conn_headers, .body = &body,
		.timeout_ms = s->f->cfg->timeout_ms,
		.connect_timeout_ms = s->f->cfg->timeout_ms < 10000 ?
			s->f->cfg->timeout_ms : 10000,
		.abandon_at_ms = &s->f->abandon_at_ms
	};
	struct upstream_answer a = {
		.reason = s->reason, .reason_max = sizeof(s->reason)
	};
	long status = upstream_conn_post(&s->conn, &req, &a);

	if (status == 0) {
		snprintf(s->reason, sizeof(s->reason), "%s", a.err);
		return 0;
	}
	s->reason_len = strlen(s->reason);
	memcpy(s->status_text, a.status_text, sizeof(s->status_text));
	memcpy(s->retry_after, a.retry_after, sizeof(s->retry_after));
	memcpy(s->location, a.location, sizeof(s->location));
	return status;
}

/* Posts s->body (streamed from the map) to url. Returns the HTTP status,
 * or 0 for a network error (the reason is in s->reason either way). */
static long sender_post(struct sender *s, const char *url)
{
	uint64_t t0 = clock_mono_us();
	long status = 0;
	int answered;
	CURLcode rc;

	s->reason[0] = '\0';
	s->reason_len = 0;
	s->retry_after[0] = '\0';
	s->status_text[0] = '\0';
	s->location[0] = '\0';
	s->errbuf[0] = '\0';
	s->status = 0;
	metric_add(&metrics.upstream_inflight, 1);
	if (upstream_conn_usable(url)) {
		status = post_direct(s, url);
		answered = status != 0;
	} else {
		curl_easy_setopt(s->curl, CURLOPT_URL, url);
		curl_easy_setopt(s->curl, CURLOPT_POSTFIELDSIZE_LARGE,
				 (curl_off_t)s->body.stream.len);
		rc = curl_easy_perform(s->curl);
		answered = rc == CURLE_OK;
		if (!answered)
			snprintf(s->reason, sizeof(s->reason), "%s",
				 s->errbuf[0] ? s->errbuf : curl_easy_strerror(rc));
		else
			curl_easy_getinfo(s->curl, CURLINFO_RESPONSE_CODE, &status);
	}
	atomic_fetch_sub(&metrics.upstream_inflight, 1);
	latency_observe(&metrics.upstream_latency, clock_mono_us() - t0);
	if (!answered) {
		metric_add(&metrics.upstream_requests[0], 1);
		return 0;
	}
	if (status < 100 || status > 599)
		status = 0;
	s->status = status;
	metric_add(&metrics.upstream_requests[status], 1);
	/* One line of the answer is enough for a reason. */
	for (size_t i = 0; i < s->reason_len; i++) {
		if (s->reason[i] == '\n' || s->reason[i] == '\r') {
			s->reason[i] = '\0';
			break;
		}
	}
	return status;
}

static uint32_t next_rand(struct sender *s)
{
	s->rnd ^= s->rnd << 13;
	s->rnd ^= s->rnd >> 17;
	s->rnd ^= s->rnd << 5;
	return s->rnd;
}

/*
 * Whether a misconfigured answer of tenant/status is to be logged now: the
 * first time, then once per MISCONF_LOG_MS. *suppressed gets how many were
 * not logged since the last line.
 */
static int misconf_log_due(struct forwarder *f, const char *tenant, long status,
			   uint64_t *suppressed)
{
	struct misconf_slot *slot = NULL, *m;
	uint64_t now = clock_mono_ms();
	int due = 0;

	pthread_mutex_lock(&f->log_lock);
	for (int i = 0; i < MISCONF_SLOTS; i++) {
		m = &f->misconf[i];
		if (m->status == status && strcmp(m->tenant, tenant) == 0) {
			slot = m;
			break;
		}
		/* Else reuse the slot logged longest ago (or never). */
		if (slot == NULL || m->logged_ms < slot->logged_ms)
			slot = m;
	}
	if (slot->status != status || strcmp(slot->tenant, tenant) != 0) {
		snprintf(slot->tenant, sizeof(slot->tenant), "%s", tenant);
		slot->status = status;
		slot->logged_ms = 0;
		slot->suppressed = 0;
	}
	if (slot->logged_ms == 0 || now - slot->logged_ms >= MISCONF_LOG_MS) {
		*suppressed = slot->suppressed;
		slot->suppressed = 0;
		slot->logged_ms = now ? now : 1;
		due = 1;
	} else {
		slot->suppressed++;
	}
	pthread_mutex_unlock(&f->log_lock);
	return due;
}

/* Logs an answer that says the URL or the credentials are wrong. */
static void log_misconfigured(struct sender *s, const struct queue_job *job,
			      long status, uint64_t delay)
{
	char qbody[REASON_MAX + 8], qtext[80], qloc[300], url[512];
	uint64_t suppressed;

	if (!misconf_log_due(s->f, job->id, status, &suppressed))
		return;
	log_msg(LOG_ERROR, "upstream refuses the relay's requests: check "
		"[upstream] url and credentials; the data is kept and retried",
		"tenant=\"%s\" status=%ld status_text=%s location=%s body=%s "
		"url=%s retry_in_ms=%llu attempt=%u not_logged_since=%llu",
		job->id, status,
		log_quote(s->status_text, strlen(s->status_text), qtext, sizeof(qtext)),
		log_quote(s->location, strlen(s->location), qloc, sizeof(qloc)),
		log_quote(s->reason, strlen(s->reason), qbody, sizeof(qbody)),
		log_redact_url(s->url, url, sizeof(url)),
		(unsigned long long)delay, job->attempts + 1,
		(unsigned long long)suppressed);
}

/*
 * Marks (to be counted once delivered), and logs once per MISCONF_LOG_MS
 * and tenant, a request sent
 * under ids the configuration no longer gives the tenant (it was removed
 * or renumbered since its entries were accepted): they go where they
 * would have gone, never to another tenant's account.
 */
static void note_kept_dest(struct sender *s, const struct config *cfg,
			   const struct queue_job *job,
			   const struct store_span *span)
{
	const struct config_tenant *t = config_tenant_find(cfg, job->id,
							   job->idlen);
	const struct store_dest *d = &s->body.dest;
	struct store_dest now;
	uint64_t suppressed;

	/* Ids the URL does not use send nothing elsewhere. */
	if (strstr(cfg->url, "{account_id}") == NULL &&
	    strstr(cfg->url, "{project_id}") == NULL)
		return;
	snprintf(now.account_id, sizeof(now.account_id), "%s",
		 t && t->account_id ? t->account_id : "");
	snprintf(now.project_id, sizeof(now.project_id), "%s",
		 t && t->project_id ? t->project_id : "");
	if (store_dest_equal(&now, d))
		return;
	s->kept_dest = 1;
	/* Status -1: a slot of its own beside the misconfigured answers. */
	if (!misconf_log_due(s->f, job->id, -1, &suppressed))
		return;
	log_msg(LOG_WARN, "delivering buffered data under the ids it was "
		"accepted with; the configuration changed them since",
		"tenant=\"%s\" configured=%s account_id=\"%s\" "
		"project_id=\"%s\" now_account_id=\"%s\" now_project_id=\"%s\" "
		"samples=%llu not_logged_since=%llu", job->id, t ? "yes" : "no",
		d->account_id, d->project_id, now.account_id, now.project_id,
		(unsigned long long)span->samples, (unsigned long long)suppressed);
}

/* The upstream's reason for an answer: its body's first line, else the
 * status line's reason phrase. */
static const char *answer_reason(const struct sender *s)
{
	return s->reason[0] ? s->reason : s->status_text;
}

/*
 * The lane's next part cannot be sent as stored (its block is missing or
 * its snappy preamble malformed; body_open found it): sending it would be
 * refused, and reading it again would fail again. It is set aside without
 * a request, with status 0 and the reason, and the lane moves on.
 */
static void set_aside_malformed(struct sender *s, const struct queue_job *job,
				const struct store_span *span)
{
	struct forwarder *f = s->f;

	queue_taken(f->q, job, 1, span->first_seq, span->last_seq);
	log_msg(LOG_ERROR, "buffered batch malformed, set aside unsent",
		"tenant=\"%s\" seq=%llu lane=%u bytes=%llu samples=%llu",
		job->id, (unsigned long long)span->first_seq, job->lane,
		(unsigned long long)span->bytes,
		(unsigned long long)span->samples);
	writer_set_aside(f->w, job->id, job->idlen, job->lane, span->first_seq,
			 0, MALFORMED_REASON);
	metric_add(&metrics.batches_set_aside, 1);
	metric_add(&metrics.batches_malformed, 1);
	metric_add(&metrics.samples_set_aside, span->samples);
	queue_done(f->q, job, QUEUE_SENT, span->first_seq, span->last_seq, 0);
}

/* Sends one request for a claimed tenant and tells the queue how it went. */
static void forward_one(struct sender *s, struct queue_job *job)
{
	struct forwarder *f = s->f;
	const struct config *cfg = f->cfg, *held;
	struct store_span span;
	char qreason[REASON_MAX + 8];
	const char *reason;
	uint64_t delay, body_len;
	long status;
	enum retry_verdict verdict;
	int rc;

	s->job = job;
	s->max_entries = job->isolate ? 1 : STORE_BODY_MAX_ENTRIES;
	rc = body_open(s, &span);
	if (rc < 0) {
		log_msg(LOG_ERROR, "cannot read buffer", "tenant=%s", job->id);
		queue_taken(f->q, job, 1, job->first, job->last);
		queue_done(f->q, job, QUEUE_RETRY, job->first, job->last, 1000);
		return;
	}
	if (rc == 1) {
		set_aside_malformed(s, job, &span);
		return;
	}
	s->span = span;
	queue_taken(f->q, job, span.entries, span.first_seq, span.last_seq);
	if (span.entries == 0)
		return;
	/* The url may change with a reload: the newest; the ids are those
	 * the entries were accepted under, when the store has them. */
	held = config_hold();
	s->kept_dest = 0;
	rc = forward_url(held, job->id, job->idlen,
			 s->body.has_dest ? &s->body.dest : NULL, s->url,
			 sizeof(s->url));
	if (rc == 0 && s->body.has_dest)
		note_kept_dest(s, held, job, &span);
	config_release(held);
	if (rc < 0) {
		log_msg(LOG_ERROR, "upstream url too long", "tenant=%s", job->id);
		store_body_release(&s->body);
		queue_done(f->q, job, QUEUE_RETRY, span.first_seq, span.last_seq,
			   f->cfg->max_backoff_ms);
		return;
	}
	/* The read transaction lasts this one request (see store.h). */
	status = sender_post(s, s->url);
	body_len = s->body.stream.len;
	store_body_release(&s->body);
	reason = answer_reason(s);
	log_quote(reason, strlen(reason), qreason, sizeof(qreason));
	verdict = retry_classify_answer(status, reason,
					retry_trust_has(&f->trust, s->url));
	if (verdict == RETRY_DONE)
		retry_trust_note(&f->trust, s->url);
	upstream_status_note(status, verdict == RETRY_DONE, reason);
	switch (verdict) {
	case RETRY_DONE:
		writer_ack_seen(f->w, job->id, job->idlen, job->lane,
				span.first_seq, span.last_seq, s->body.seen,
				s->body.nseen);
		metric_add(&metrics.samples_forwarded, span.samples);
		metric_add(&metrics.series_forwarded, span.series);
		metric_add(&metrics.bytes_forwarded, body_len);
		if (s->kept_dest)
			metric_add(&metrics.samples_forwarded_kept_dest,
				   span.samples);
		tenant_stats_forwarded(job->id, job->idlen, span.samples);
		if (job->attempts > 0)
			log_msg(LOG_INFO, "upstream delivery resumed",
				"tenant=\"%s\" failed_attempts=%u", job->id, job->attempts);
		queue_done(f->q, job, QUEUE_SENT, span.first_seq, span.last_seq, 0);
		break;
	case RETRY_AGAIN:
	case RETRY_MISCONFIGURED:
		metric_add(&metrics.upstream_retries, 1);
		/* Retry-After is honoured within the backoff's bounds. A
		 * failure of the whole upstream is paced by its gate
		 * (upstream_gate.h): the tenant itself waits min_backoff. */
		delay = verdict == RETRY_AGAIN ? cfg->min_backoff_ms :
			retry_delay_ms(s->retry_after, (int64_t)time(NULL),
				       job->attempts + 1, cfg->min_backoff_ms,
				       cfg->max_backoff_ms, next_rand(s));
		if (delay == 0)
			delay = 1;
		if (verdict == RETRY_MISCONFIGURED) {
			metric_add(&metrics.upstream_misconfigured[status], 1);
			log_misconfigured(s, job, status, delay);
		} else if (atomic_load(&f->abandon_at_ms) != 0 && status == 0) {
			log_msg(LOG_INFO, "upstream request abandoned at stop, "
				"its entries stay buffered",
				"tenant=\"%s\" entries=%llu", job->id,
				(unsigned long long)span.entries);
		} else {
			log_msg(job->attempts == 0 ? LOG_WARN : LOG_DEBUG,
				"upstream request failed, will retry",
				"tenant=\"%s\" status=%ld attempt=%u "
				"retry_in_ms=%llu reason=%s",
				job->id, status, job->attempts + 1,
				(unsigned long long)delay, qreason);
		}
		queue_done(f->q, job, QUEUE_RETRY, span.first_seq, span.last_seq, delay);
		break;
	case RETRY_REFUSED:
		/* 400, 409, 413, 422: the content is refused. A merged request
		 * is split so that only the entry refused alone is set
		 * aside (a 413 for a merged request is no verdict on any
		 * one entry). */
		if (span.entries > 1) {
			log_msg(LOG_WARN, "upstream refused a merged request, "
				"sending its entries one by one",
				"tenant=\"%s\" status=%ld entries=%llu reason=%s", job->id,
				status, (unsigned long long)span.entries, qreason);
			queue_done(f->q, job, QUEUE_ISOLATE, span.first_seq,
				   span.last_seq, 0);
			break;
		}
		log_msg(LOG_ERROR, "upstream refused a batch, set aside",
			"tenant=\"%s\" seq=%llu lane=%u status=%ld samples=%llu "
			"reason=%s", job->id, (unsigned long long)span.first_seq,
			job->lane, status, (unsigned long long)span.samples,
			qreason);
		writer_set_aside(f->w, job->id, job->idlen, job->lane,
				 span.first_seq, status, reason);
		metric_add(&metrics.batches_set_aside, 1);
		metric_add(&metrics.samples_set_aside, span.samples);
		queue_done(f->q, job, QUEUE_SENT, span.first_seq, span.last_seq, 0);
		break;
	}
}

/*
 * Sends a claimed job through the gate of its upstream (upstream_gate.h),
 * then tells the gate how the request went. While that upstream is down
 * and the job may not probe it, the job goes back to the queue until the
 * gate's next probe (or a change of the gate), and the thread is free for
 * other tenants: their upstreams may be up. Returns 0, or -1 once stopping
 * (the job is given back).
 */
static int forward_gated(struct sender *s, struct queue_job *job)
{
	struct forwarder *f = s->f;
	const struct config *held = config_hold();
	struct upstream_ticket ticket;
	uint64_t wait_ms = 0, seen = queue_gate_seen(f->q);
	long status;
	int rc, pass = 0;

	/* The gate is that of the tenant's configured URL (see forward_url). */
	rc = forward_url(held, job->id, job->idlen, NULL, s->url, sizeof(s->url));
	config_release(held);
	if (rc == 0)
		pass = upstream_gate_pass(&f->gates, s->url, &ticket, &wait_ms);
	if (pass < 0) {
		queue_unclaim(f->q, job);
		return -1;
	}
	if (pass == 1) {
		queue_defer(f->q, job, wait_ms, seen);
		return 0;
	}
	s->status = -1;
	forward_one(s, job);
	if (rc < 0)
		return 0;
	status = s->status;
	if (status == 0 && atomic_load(&f->abandon_at_ms) != 0)
		status = -1;    /* abandoned at stop: no news of the upstream */
	if (upstream_gate_leave(&f->gates, &ticket, status, answer_reason(s),
				s->retry_after, next_rand(s)))
		queue_gate_changed(f->q);
	return 0;
}

static void *forward_main(void *arg)
{
	struct forwarder *f = arg;
	struct sender s;
	struct queue_job job;

	if (sender_init(&s, f) < 0) {
		log_msg(LOG_ERROR, "cannot start forwarder", "reason=curl_easy_init");
		sender_free(&s);
		return NULL;
	}
	while (queue_claim(f->q, (unsigned)f->cfg->inflight_per_tenant, &job) == 0)
		if (forward_gated(&s, &job) < 0)
			break;
	sender_free(&s);
	return NULL;
}

struct forwarder *forwarder_start(const struct config *cfg, struct store *st,
				  struct queue *q, struct writer *w)
{
	struct forwarder *f = calloc(1, sizeof(*f));

	if (f == NULL)
		return NULL;
	pthread_mutex_init(&f->log_lock, NULL);
	f->cfg = cfg;
	f->st = st;
	f->q = q;
	f->w = w;
	if (upstream_gates_init(&f->gates, cfg->min_backoff_ms,
				cfg->max_backoff_ms) < 0) {
		free(f);
		return NULL;
	}
	retry_trust_init(&f->trust);
	f->threads = calloc((size_t)cfg->concurrency, sizeof(*f->threads));
	if (f->threads == NULL) {
		retry_trust_destroy(&f->trust);
		upstream_gates_destroy(&f->gates);
		free(f);
		return NULL;
	}
	for (int i = 0; i < cfg->concurrency; i++) {
		if (pthread_create(&f->threads[i], NULL, forward_main, f) != 0)
			break;
		f->nthreads++;
	}
	if (f->nthreads == 0) {
		retry_trust_destroy(&f->trust);
		upstream_gates_destroy(&f->gates);
		free(f->threads);
		free(f);
		return NULL;
	}
	return f;
}

void forwarder_stop(struct forwarder *f, uint64_t deadline_ms)
{
	atomic_store(&f->abandon_at_ms, deadline_ms ? deadline_ms : 1);
	upstream_gates_stop(&f->gates);
	for (int i = 0; i < f->nthreads; i++)
		pthread_join(f->threads[i], NULL);
	retry_trust_destroy(&f->trust);
	upstream_gates_destroy(&f->gates);
	pthread_mutex_destroy(&f->log_lock);
	free(f->threads);
	free(f);
}
