/*
 * setaside.c - batches the upstream refused: list, replay, purge, trim,
 * and the CLI (see setaside.h).
 */
#include "setaside.h"

#include <curl/curl.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "config.h"
#include "err.h"
#include "log.h"
#include "tenant.h"
#include "usage.h"

/* The length of the valid UTF-8 sequence at p (n bytes left), or 0. */
static size_t utf8_len(const unsigned char *p, size_t n)
{
	size_t k = p[0] >= 0xf0 && p[0] <= 0xf4 ? 4 :
		   p[0] >= 0xe0 && p[0] <= 0xef ? 3 :
		   p[0] >= 0xc2 && p[0] <= 0xdf ? 2 : 0;

	if (k == 0 || n < k)
		return 0;
	for (size_t i = 1; i < k; i++)
		if ((p[i] & 0xc0) != 0x80)
			return 0;
	/* No overlong form, surrogate or code point past U+10FFFF. */
	if ((p[0] == 0xe0 && p[1] < 0xa0) || (p[0] == 0xed && p[1] >= 0xa0) ||
	    (p[0] == 0xf0 && p[1] < 0x90) || (p[0] == 0xf4 && p[1] >= 0x90))
		return 0;
	return k;
}

/* s[0..n) as a JSON string. A byte that is not valid UTF-8 (an upstream's
 * answer cut inside a character, or not text) becomes U+FFFD, so that the
 * answer stays valid JSON. */
static void json_string(struct buf *out, const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t k;

	buf_append(out, "\"", 1);
	for (size_t i = 0; i < n; i++) {
		unsigned char c = p[i];
		if (c == '"' || c == '\\') {
			buf_printf(out, "\\%c", c);
		} else if (c < 0x20) {
			buf_printf(out, "\\u%04x", c);
		} else if (c < 0x80) {
			buf_append(out, &s[i], 1);
		} else if ((k = utf8_len(p + i, n - i)) > 0) {
			buf_append(out, &s[i], k);
			i += k - 1;
		} else {
			buf_append(out, "\xef\xbf\xbd", 3);
		}
	}
	buf_append(out, "\"", 1);
}

/* Entries one read transaction visits: a page of a listing. */
#define SETASIDE_PAGE_ENTRIES 256

enum listing_state { LISTING_HEAD, LISTING_ROWS, LISTING_TAIL, LISTING_DONE };

struct setaside_list {
	struct store *st;            /* ref */
	struct setaside_filter f;
	struct store_pos pos;        /* after the last entry read */
	enum listing_state state;
	int json, first;
	struct buf *out;             /* ref, during setaside_list_next */
};

/* Formats one entry into the listing. */
static int list_one(void *arg, const struct setaside_item *it)
{
	struct setaside_list *l = arg;
	struct buf *out = l->out;
	char when[32];
	struct tm tm;
	time_t t;

	t = (time_t)(it->set_aside_ms / 1000);
	gmtime_r(&t, &tm);
	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
	if (l->json) {
		buf_printf(out, "%s{\"tenant\":", l->first ? "" : ",");
		json_string(out, it->tenant, it->tlen);
		buf_printf(out, ",\"seq\":%" PRIu64 ",\"set_aside\":\"%s\","
			   "\"status\":%u,\"samples\":%u,\"series\":%u,"
			   "\"bytes\":%zu,\"reason\":", it->seq, when,
			   it->status, it->samples, it->series, it->bytes);
		json_string(out, it->reason, it->reason_len);
		buf_printf(out, "}");
	} else {
		char q[1100];
		buf_printf(out, "tenant=%s seq=%" PRIu64 " set_aside=%s "
			   "status=%u samples=%u series=%u bytes=%zu "
			   "reason=%s\n",
			   it->tlen ? log_quote(it->tenant, it->tlen, q, 80) : "\"\"",
			   it->seq, when, it->status, it->samples,
			   it->series, it->bytes,
			   log_quote(it->reason, it->reason_len, q + 80,
				     sizeof(q) - 80));
	}
	l->first = 0;
	return 0;
}

int setaside_list_open(struct setaside_list **out, struct store *st,
		       const struct setaside_filter *f, int json)
{
	struct setaside_list *l;
	struct store_pos probe = {0};
	int rc;

	*out = NULL;
	if ((l = calloc(1, sizeof(*l))) == NULL)
		return ERR_NOMEM;
	l->st = st;
	l->f = *f;
	l->json = json;
	l->first = 1;
	/* Reads once now: a store that cannot be read is known before
	 * anything is answered. */
	if ((rc = store_setaside_page(st, f, &probe, 0, list_one, l)) < 0) {
		free(l);
		return rc;
	}
	*out = l;
	return 0;
}

int setaside_list_next(struct setaside_list *l, struct buf *out)
{
	int rc = 0;

	switch (l->state) {
	case LISTING_HEAD:
		if (l->json)
			buf_printf(out, "{\"setaside\":[");
		l->state = LISTING_ROWS;
		break;
	case LISTING_ROWS:
		l->out = out;
		rc = store_setaside_page(l->st, &l->f, &l->pos,
					 SETASIDE_PAGE_ENTRIES, list_one, l);
		l->out = NULL;
		if (rc == 0)
			l->state = LISTING_TAIL;
		break;
	case LISTING_TAIL:
		if (l->json)
			buf_printf(out, "]}\n");
		l->state = LISTING_DONE;
		break;
	case LISTING_DONE:
		return 0;
	}
	return rc < 0 ? rc : 1;
}

void setaside_list_free(struct setaside_list *l)
{
	free(l);
}

int setaside_format(struct store *st, const struct setaside_filter *f,
		    int json, struct buf *out)
{
	struct setaside_list *l;
	int rc;

	if ((rc = setaside_list_open(&l, st, f, json)) < 0)
		return rc;
	while ((rc = setaside_list_next(l, out)) == 1)
		;
	setaside_list_free(l);
	return rc;
}

int setaside_filter_parse(struct setaside_filter *f, const char *tenant,
			  const char *seq)
{
	char *end;

	memset(f, 0, sizeof(*f));
	f->any_tenant = 1;
	if (tenant != NULL && *tenant != '\0') {
		size_t n = strlen(tenant);
		if (!tenant_valid_id(tenant, n))
			return -1;
		memcpy(f->tenant, tenant, n);
		f->tlen = n;
		f->any_tenant = 0;
	}
	if (seq != NULL && *seq != '\0') {
		f->seq = strtoull(seq, &end, 10);
		if (*end != '\0' || f->seq == 0)
			return -1;
	}
	return 0;
}

/* Counts purged samples in the usage of the hour they are purged in, as
 * the relay's own purge does (usage_count_dropped: no record for data
 * without a tenant). */
static void cli_deleted(void *arg, const char *tenant, size_t tlen,
			uint64_t samples)
{
	(void)usage_count_dropped(arg, tenant, tlen,
				  (uint64_t)time(NULL) * 1000, DROP_PURGED,
				  samples);
}

/* Bytes of one part of a listing the CLI prints. */
#define SETASIDE_CLI_PART_MAX ((size_t)16 << 20)

/* Prints the listing part by part. Returns 0 or an ERR_* code. */
static int list_to_stdout(struct store *st, const struct setaside_filter *f,
			  struct buf *out)
{
	struct setaside_list *l;
	int rc;

	if ((rc = setaside_list_open(&l, st, f, 0)) < 0)
		return rc;
	while ((rc = setaside_list_next(l, out)) == 1) {
		if (out->len > 0 && fwrite(out->p, 1, out->len, stdout) != out->len) {
			rc = ERR_IO;
			break;
		}
		buf_reset(out);
	}
	setaside_list_free(l);
	return rc;
}

static void cli_help(FILE *out)
{
	fprintf(out, "usage: relay setaside list|replay|purge -c FILE [--tenant T] "
		"[--seq N]\n"
		"Batches the upstream refused for good. replay queues them again,\n"
		"purge deletes them. With a relay running on the same data\n"
		"directory, replay and purge go through its admin API\n"
		"([server] admin_token).\n");
}

/* Asks the running relay to replay or purge. Returns the exit code. */
static int via_relay(const struct config *cfg, const char *op,
		     const char *tenant, const char *seq)
{
	char url[1024], auth[600];
	struct curl_slist *hdr = NULL;
	long status = 0;
	CURL *c;
	CURLcode rc;
	char *et = NULL;

	if (cfg->admin_token == NULL) {
		fprintf(stderr, "relay setaside: a relay is running on %s; set "
			"[server] admin_token so that this command can ask it, or "
			"stop it\n", cfg->path);
		return 1;
	}
	if ((c = curl_easy_init()) == NULL)
		return 1;
	if (tenant != NULL)
		et = curl_easy_escape(c, tenant, 0);
	snprintf(url, sizeof(url), "%s://%s/api/v1/setaside/%s?tenant=%s&seq=%s",
		 cfg->tls_cert ? "https" : "http", cfg->listen, op,
		 et ? et : "", seq ? seq : "");
	curl_free(et);
	snprintf(auth, sizeof(auth), "Authorization: Bearer %s", cfg->admin_token);
	hdr = curl_slist_append(hdr, auth);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdr);
	curl_easy_setopt(c, CURLOPT_POST, 1L);
	curl_easy_setopt(c, CURLOPT_POSTFIELDS, "");
	curl_easy_setopt(c, CURLOPT_TIMEOUT, 30L);
	/* Our own listener, named in our own file. */
	curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 0L);
	curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 0L);
	rc = curl_easy_perform(c);
	if (rc == CURLE_OK)
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	else
		fprintf(stderr, "relay setaside: cannot reach the relay at %s: %s\n",
			cfg->listen, curl_easy_strerror(rc));
	curl_slist_free_all(hdr);
	curl_easy_cleanup(c);
	return status >= 200 && status < 300 ? 0 : 1;
}

int setaside_main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"tenant", required_argument, NULL, 't'},
		{"seq", required_argument, NULL, 's'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	const char *file = NULL, *tenant = NULL, *seq = NULL, *op;
	struct setaside_filter f;
	struct config cfg;
	struct store *st = NULL;
	struct store_txn *txn;
	struct buf out;
	uint64_t n = 0;
	char err[1024];
	int opt, rc = 1, r = 0, lock;

	if (argc < 2) {
		cli_help(stderr);
		return 2;
	}
	op = argv[1];
	optind = 2;
	while ((opt = getopt_long(argc, argv, "c:h", longopts, NULL)) != -1) {
		switch (opt) {
		case 'c': file = optarg; break;
		case 't': tenant = optarg; break;
		case 's': seq = optarg; break;
		case 'h': cli_help(stdout); return 0;
		default: cli_help(stderr); return 2;
		}
	}
	if (file == NULL || optind != argc ||
	    (strcmp(op, "list") != 0 && strcmp(op, "replay") != 0 &&
	     strcmp(op, "purge") != 0)) {
		cli_help(stderr);
		return 2;
	}
	if (setaside_filter_parse(&f, tenant, seq) < 0) {
		fprintf(stderr, "relay setaside: bad --tenant or --seq\n");
		return 2;
	}
	if (config_load_storage(&cfg, file, err, sizeof(err)) < 0) {
		fprintf(stderr, "%s\n", err);
		config_free(&cfg);
		return 1;
	}
	lock = store_lock(cfg.path);
	if (lock == ERR_BUSY) {
		if (strcmp(op, "list") == 0)
			rc = (st = store_open_readonly(cfg.path, err, sizeof(err))) ? 0 : 1;
		else
			rc = via_relay(&cfg, op, tenant, seq);
		if (strcmp(op, "list") != 0 || rc != 0) {
			if (rc != 0 && strcmp(op, "list") == 0)
				fprintf(stderr, "relay setaside: %s\n", err);
			config_free(&cfg);
			return rc ? 1 : 0;
		}
	} else {
		store_unlock(lock);
		if ((st = store_open(cfg.path, cfg.max_size, err, sizeof(err))) == NULL) {
			fprintf(stderr, "relay setaside: %s\n", err);
			config_free(&cfg);
			return 1;
		}
	}
	buf_init(&out, SETASIDE_CLI_PART_MAX);
	if (strcmp(op, "list") == 0) {
		rc = list_to_stdout(st, &f, &out) == 0 ? 0 : 1;
	} else if ((r = store_txn_begin(st, &txn)) == 0) {
		struct usage_round round = {0};
		struct setaside_sink sink = {NULL, cli_deleted, &round};
		int more;
		r = strcmp(op, "replay") == 0 ?
		    store_setaside_replay(txn, &f, NULL, 0, &n, &more) :
		    store_setaside_purge(txn, &f, &sink, 0, &n, &more);
		/* A purge counts in usage, as the relay counts its own. */
		if (r == 0)
			r = usage_round_flush(&round, txn);
		usage_round_free(&round);
		if (r == 0)
			r = store_txn_commit(txn);
		else
			store_txn_abort(txn);
	}
	if (strcmp(op, "list") != 0) {
		if (r == 0) {
			printf("%s: %" PRIu64 " entries\n", op, n);
			rc = 0;
		} else {
			fprintf(stderr, "relay setaside: %s\n", err_str(r));
		}
	}
	buf_free(&out);
	store_close(st);
	config_free(&cfg);
	return rc;
}
