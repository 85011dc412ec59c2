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
#include "log.h"
#include "tenant.h"
#include "usage.h"

/* One set-aside value, split up. */
struct item {
	const char *tenant;
	size_t tlen;
	uint64_t seq;
	struct setaside_hdr sh;
	const char *reason;
	struct entry_hdr eh;
	MDB_val entry;           /* the queue value as it was */
};

static int item_parse(const MDB_val *k, const MDB_val *v, struct item *it)
{
	if (store_key_parse(k, &it->tenant, &it->tlen, &it->seq) < 0 ||
	    v->mv_size < sizeof(it->sh))
		return -1;
	memcpy(&it->sh, v->mv_data, sizeof(it->sh));
	if (v->mv_size < sizeof(it->sh) + it->sh.reason_len)
		return -1;
	it->reason = (const char *)v->mv_data + sizeof(it->sh);
	it->entry.mv_data = (uint8_t *)v->mv_data + sizeof(it->sh) + it->sh.reason_len;
	it->entry.mv_size = v->mv_size - sizeof(it->sh) - it->sh.reason_len;
	if (store_entry_hdr(&it->entry, &it->eh) < 0)
		memset(&it->eh, 0, sizeof(it->eh));
	return 0;
}

/* Positions cur at the first entry f may take; returns an LMDB code. */
static int first_match(MDB_cursor *cur, const struct setaside_filter *f,
		       uint8_t *key, MDB_val *k, MDB_val *v)
{
	if (f->any_tenant)
		return mdb_cursor_get(cur, k, v, MDB_FIRST);
	k->mv_size = store_key(key, f->tenant, f->tlen, f->seq);
	k->mv_data = key;
	return mdb_cursor_get(cur, k, v, MDB_SET_RANGE);
}

/* 1 if it matches f, 0 if not, -1 if no later entry can match. */
static int matches(const struct setaside_filter *f, const struct item *it)
{
	if (!f->any_tenant &&
	    (it->tlen != f->tlen || memcmp(it->tenant, f->tenant, f->tlen) != 0))
		return -1;
	if (f->seq != 0 && it->seq != f->seq)
		return f->any_tenant ? 0 : -1;
	return 1;
}

static void json_string(struct buf *out, const char *s, size_t n)
{
	buf_append(out, "\"", 1);
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '"' || c == '\\')
			buf_printf(out, "\\%c", c);
		else if (c < 0x20)
			buf_printf(out, "\\u%04x", c);
		else
			buf_append(out, &s[i], 1);
	}
	buf_append(out, "\"", 1);
}

int setaside_format(MDB_txn *txn, struct store *st,
		    const struct setaside_filter *f, int json, struct buf *out)
{
	uint8_t key[STORE_KEY_MAX];
	MDB_cursor *cur;
	MDB_val k, v;
	struct item it;
	char when[32];
	struct tm tm;
	time_t t;
	int rc, m, first = 1;

	if (mdb_cursor_open(txn, st->setaside, &cur) != 0)
		return -1;
	if (json)
		buf_printf(out, "{\"setaside\":[");
	for (rc = first_match(cur, f, key, &k, &v); rc == 0;
	     rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		if (item_parse(&k, &v, &it) < 0)
			continue;
		if ((m = matches(f, &it)) < 0)
			break;
		if (m == 0)
			continue;
		t = (time_t)(it.sh.set_aside_ms / 1000);
		gmtime_r(&t, &tm);
		strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
		if (json) {
			buf_printf(out, "%s{\"tenant\":", first ? "" : ",");
			json_string(out, it.tenant, it.tlen);
			buf_printf(out, ",\"seq\":%" PRIu64 ",\"set_aside\":\"%s\","
				   "\"status\":%u,\"samples\":%u,\"series\":%u,"
				   "\"bytes\":%zu,\"reason\":", it.seq, when,
				   it.sh.status, it.eh.samples, it.eh.series,
				   it.entry.mv_size);
			json_string(out, it.reason, it.sh.reason_len);
			buf_printf(out, "}");
		} else {
			char q[1100];
			buf_printf(out, "tenant=%s seq=%" PRIu64 " set_aside=%s "
				   "status=%u samples=%u series=%u bytes=%zu "
				   "reason=%s\n",
				   it.tlen ? log_quote(it.tenant, it.tlen, q, 80) : "\"\"",
				   it.seq, when, it.sh.status, it.eh.samples,
				   it.eh.series, it.entry.mv_size,
				   log_quote(it.reason, it.sh.reason_len, q + 80,
					     sizeof(q) - 80));
		}
		first = 0;
	}
	if (json)
		buf_printf(out, "]}\n");
	mdb_cursor_close(cur);
	return rc == 0 || rc == MDB_NOTFOUND ? 0 : -1;
}

/* Applies op (1 replay, 0 purge) to the matching entries. */
static int take(MDB_txn *txn, struct store *st, const struct setaside_filter *f,
		const struct setaside_sink *sink, uint64_t *n, int replay)
{
	uint8_t key[STORE_KEY_MAX], qkey[STORE_KEY_MAX];
	MDB_cursor *cur;
	MDB_val k, v, qk;
	struct item it;
	int rc, m;

	*n = 0;
	if ((rc = mdb_cursor_open(txn, st->setaside, &cur)) != 0)
		return rc;
	rc = first_match(cur, f, key, &k, &v);
	while (rc == 0) {
		if (item_parse(&k, &v, &it) < 0) {
			rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
			continue;
		}
		if ((m = matches(f, &it)) < 0)
			break;
		if (m == 0) {
			rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
			continue;
		}
		if (replay) {
			uint64_t seq = st->next_seq++;
			qk.mv_size = store_key(qkey, it.tenant, it.tlen, seq);
			qk.mv_data = qkey;
			if ((rc = mdb_put(txn, st->queue, &qk, &it.entry, 0)) != 0)
				break;
			if (sink && sink->replayed)
				sink->replayed(sink->arg, it.tenant, it.tlen, seq,
					       it.entry.mv_size, it.eh.samples,
					       it.eh.created_ms);
		} else if (sink && sink->deleted) {
			sink->deleted(sink->arg, it.tenant, it.tlen, it.eh.samples);
		}
		(*n)++;
		if ((rc = mdb_cursor_del(cur, 0)) != 0)
			break;
		rc = mdb_cursor_get(cur, &k, &v, MDB_GET_CURRENT);
		if (rc == EINVAL)
			rc = MDB_NOTFOUND;
	}
	mdb_cursor_close(cur);
	if (rc == MDB_NOTFOUND)
		rc = 0;
	if (rc == 0 && replay && *n > 0)
		rc = store_put_next_seq(txn, st);
	return rc;
}

int setaside_replay(MDB_txn *txn, struct store *st,
		    const struct setaside_filter *f,
		    const struct setaside_sink *sink, uint64_t *n)
{
	return take(txn, st, f, sink, n, 1);
}

int setaside_purge(MDB_txn *txn, struct store *st,
		   const struct setaside_filter *f,
		   const struct setaside_sink *sink, uint64_t *n)
{
	return take(txn, st, f, sink, n, 0);
}

static uint64_t db_bytes(MDB_txn *txn, struct store *st, MDB_dbi dbi)
{
	MDB_stat ms;

	if (mdb_stat(txn, dbi, &ms) != 0)
		return 0;
	return (ms.ms_branch_pages + ms.ms_leaf_pages + ms.ms_overflow_pages) *
	       (uint64_t)st->page_size;
}

int setaside_trim(MDB_txn *txn, struct store *st, uint64_t max_bytes,
		  uint64_t max_age_ms, uint64_t now,
		  const struct setaside_sink *sink, uint64_t *n)
{
	struct setaside_filter one;
	MDB_cursor *cur;
	MDB_val k, v;
	struct item it, oldest = {0};
	uint64_t k_n;
	int rc;

	*n = 0;
	/* By age: one pass. */
	if ((rc = mdb_cursor_open(txn, st->setaside, &cur)) != 0)
		return rc;
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;) {
		if (item_parse(&k, &v, &it) == 0 &&
		    it.sh.set_aside_ms + max_age_ms < now) {
			if (sink && sink->deleted)
				sink->deleted(sink->arg, it.tenant, it.tlen, it.eh.samples);
			(*n)++;
			if ((rc = mdb_cursor_del(cur, 0)) != 0)
				break;
			rc = mdb_cursor_get(cur, &k, &v, MDB_GET_CURRENT);
		} else {
			rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
		}
	}
	mdb_cursor_close(cur);
	if (rc != MDB_NOTFOUND && rc != EINVAL && rc != 0)
		return rc;
	/* By size: the oldest first, while over. */
	while (db_bytes(txn, st, st->setaside) > max_bytes) {
		int found = 0;
		if ((rc = mdb_cursor_open(txn, st->setaside, &cur)) != 0)
			return rc;
		for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
		     rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
			if (item_parse(&k, &v, &it) == 0 &&
			    (!found || it.sh.set_aside_ms < oldest.sh.set_aside_ms)) {
				oldest = it;
				found = 1;
			}
		}
		mdb_cursor_close(cur);
		if (!found)
			break;
		memset(&one, 0, sizeof(one));
		memcpy(one.tenant, oldest.tenant, oldest.tlen);
		one.tlen = oldest.tlen;
		one.seq = oldest.seq;
		if ((rc = setaside_purge(txn, st, &one, sink, &k_n)) != 0)
			return rc;
		if (k_n == 0)
			break;
		*n += k_n;
	}
	return 0;
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

/* Counts purged samples in the usage of the hour they are purged in. */
static void cli_deleted(void *arg, const char *tenant, size_t tlen,
			uint64_t samples)
{
	struct usage_rec *u = usage_round_get(arg, tenant, tlen,
					      usage_hour((uint64_t)time(NULL) * 1000));

	if (u != NULL)
		u->samples_dropped[DROP_PURGED] += samples;
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
	struct store st;
	struct buf out;
	MDB_txn *txn;
	uint64_t n = 0;
	char err[1024];
	int opt, rc = 1, lock;

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
	if (config_load(&cfg, file, err, sizeof(err)) < 0) {
		fprintf(stderr, "%s\n", err);
		config_free(&cfg);
		return 1;
	}
	lock = store_lock(cfg.path);
	if (lock == -2) {
		rc = strcmp(op, "list") == 0 ? store_open_readonly(&st, cfg.path, err, sizeof(err)) :
		     via_relay(&cfg, op, tenant, seq);
		if (strcmp(op, "list") != 0 || rc != 0) {
			if (rc != 0 && strcmp(op, "list") == 0)
				fprintf(stderr, "relay setaside: %s\n", err);
			config_free(&cfg);
			return rc ? 1 : 0;
		}
	} else {
		store_unlock(lock);
		if (store_open(&st, cfg.path, cfg.max_size, err, sizeof(err)) < 0) {
			fprintf(stderr, "relay setaside: %s\n", err);
			config_free(&cfg);
			return 1;
		}
	}
	buf_init(&out, (size_t)1 << 32);
	if (strcmp(op, "list") == 0) {
		if (mdb_txn_begin(st.env, NULL, MDB_RDONLY, &txn) == 0) {
			rc = setaside_format(txn, &st, &f, 0, &out) == 0 ? 0 : 1;
			mdb_txn_abort(txn);
			if (rc == 0 && out.len > 0)
				fwrite(out.p, 1, out.len, stdout);
		}
	} else if (mdb_txn_begin(st.env, NULL, 0, &txn) == 0) {
		struct usage_round round = {0};
		struct setaside_sink sink = {NULL, cli_deleted, &round};
		int r = strcmp(op, "replay") == 0 ? setaside_replay(txn, &st, &f, NULL, &n) :
			setaside_purge(txn, &st, &f, &sink, &n);
		/* A purge counts in usage, as the relay counts its own. */
		if (r == 0)
			r = usage_round_flush(&round, txn, st.usage, st.usage_hll);
		usage_round_free(&round);
		if (r == 0)
			r = mdb_txn_commit(txn);
		else
			mdb_txn_abort(txn);
		if (r == 0) {
			printf("%s: %" PRIu64 " entries\n", op, n);
			rc = 0;
		} else {
			fprintf(stderr, "relay setaside: %s\n", mdb_strerror(r));
		}
	}
	buf_free(&out);
	store_close(&st);
	config_free(&cfg);
	return rc;
}
