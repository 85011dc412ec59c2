/*
 * config_check.h - what the config fuzz target checks on one input, shared
 * with tests/unit/test_fuzz_regress.c, which replays the inputs kept under
 * tests/fuzz/regress/config/.
 *
 * The input is written to a temporary file (config_load takes a path) and
 * read with config_load, then config_free; no crash and no leak (the
 * sanitizers' part). On success the config must satisfy what the reader
 * promises: values within their bounds, the cross-key rules, valid and
 * findable tenants. On failure the message is one line "FILE:LINE: reason"
 * or "FILE: reason", with LINE a line of the input; a short message buffer
 * is truncated, never overrun, and does not change the outcome. An
 * accepted config also goes through config_keep_fixed as a reload onto the
 * defaults: it lists as many real keys as it counts, a short list buffer
 * is not overrun, and a second call changes nothing. The size and duration
 * parsers also get the input as one string.
 *
 * config_check() returns NULL, or a one-line description of what is wrong
 * (in a static buffer).
 */
#ifndef RELAY_CONFIG_CHECK_H
#define RELAY_CONFIG_CHECK_H

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"

static char cc_msg[1024];
static char cc_path[4096];

static const char *cc_fail(const char *fmt, ...)
	__attribute__((format(printf, 1, 2)));
static const char *cc_fail(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(cc_msg, sizeof(cc_msg), fmt, ap);
	va_end(ap);
	return cc_msg;
}

static void cc_remove(void)
{
	if (cc_path[0] != '\0')
		unlink(cc_path);
}

/* Writes data[0..size) to this process's temporary config file, made on
 * the first call and removed at exit. Returns 0 or -1. */
static int cc_write(const uint8_t *data, size_t size)
{
	const char *dir = getenv("TMPDIR");
	FILE *f;
	int fd;

	if (cc_path[0] == '\0') {
		snprintf(cc_path, sizeof(cc_path), "%s/relay-fuzz-conf.XXXXXX",
			 dir != NULL && *dir != '\0' ? dir : "/tmp");
		if ((fd = mkstemp(cc_path)) < 0) {
			cc_path[0] = '\0';
			return -1;
		}
		close(fd);
		atexit(cc_remove);
	}
	if ((f = fopen(cc_path, "wb")) == NULL)
		return -1;
	if (size > 0 && fwrite(data, 1, size, f) != size) {
		fclose(f);
		return -1;
	}
	return fclose(f) == 0 ? 0 : -1;
}

static int cc_tenant_id_ok(const char *s)
{
	size_t n = strlen(s);

	return n > 0 && n <= TENANT_ID_MAX &&
	       strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
			 "0123456789_.-") == n;
}

/* What config_load promises about a config it accepted. Returns NULL or
 * what is wrong. */
static const char *cc_loaded(const struct config *c)
{
	const struct config_tenant *t, *u;
	const char *l = c->tenant_label;
	int n = 0;

	if (c->file == NULL || strcmp(c->file, cc_path) != 0)
		return cc_fail("cfg->file is not the path read");
	if (c->listen == NULL || c->path == NULL || c->url == NULL ||
	    c->tenant_label == NULL || c->tenant_header == NULL)
		return cc_fail("a key with a default is unset");
	if (strncmp(c->url, "http://", 7) != 0 &&
	    strncmp(c->url, "https://", 8) != 0)
		return cc_fail("url \"%.100s\" accepted", c->url);
	if (!((l[0] >= 'a' && l[0] <= 'z') || (l[0] >= 'A' && l[0] <= 'Z') ||
	      (l[0] == '_' && l[1] != '_')) ||
	    strspn(l, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
		      "0123456789_") != strlen(l))
		return cc_fail("tenant label \"%.100s\" accepted", l);
	if (c->default_tenant != NULL && !cc_tenant_id_ok(c->default_tenant))
		return cc_fail("default tenant \"%.100s\" accepted",
			       c->default_tenant);
	if (c->max_body_size < 1024 || c->max_body_size > (1ull << 30) ||
	    c->max_decoded_size < 1024 || c->max_decoded_size > (4ull << 30) ||
	    c->max_inflight_bytes < (1ull << 20) ||
	    c->threads < 1 || c->threads > 64 ||
	    c->max_connections < 1 || c->max_connections > 100000 ||
	    c->idle_timeout_ms < 1000 || c->idle_timeout_ms > 86400000 ||
	    c->max_labels_per_series < 1 || c->max_labels_per_series > 10000 ||
	    c->max_label_name_length < 1 ||
	    c->max_label_name_length > 65536 ||
	    c->max_label_value_length < 1 ||
	    c->max_label_value_length > 1048576 ||
	    c->max_size < (1ull << 20) || c->max_age_ms < 60000 ||
	    c->dedup_window_ms > 86400000 ||
	    c->usage_retention_ms < 86400000 ||
	    c->timeout_ms < 100 || c->timeout_ms > 3600000 ||
	    c->min_backoff_ms < 1 || c->min_backoff_ms > 3600000 ||
	    c->max_backoff_ms < 1 || c->max_backoff_ms > 86400000 ||
	    c->max_request_size < (64u << 10) ||
	    c->max_request_size > (30u << 20) ||
	    c->concurrency < 1 || c->concurrency > 64 ||
	    (c->when_full != WHEN_FULL_REJECT &&
	     c->when_full != WHEN_FULL_DROP_OLDEST) ||
	    c->log_level < 0 || c->log_level > 3 ||
	    (c->tls_verify != 0 && c->tls_verify != 1) ||
	    (c->trust_header != 0 && c->trust_header != 1))
		return cc_fail("a value out of its bounds was accepted");
	if (c->max_backoff_ms < c->min_backoff_ms ||
	    (c->tls_cert == NULL) != (c->tls_key == NULL) ||
	    (c->client_cert == NULL) != (c->client_key == NULL))
		return cc_fail("a rule between two keys was not enforced");
	for (t = c->tenants; t != NULL; t = t->next, n++) {
		if (!cc_tenant_id_ok(t->id))
			return cc_fail("tenant id \"%.100s\" accepted", t->id);
		if (config_tenant_find(c, t->id, strlen(t->id)) != t)
			return cc_fail("tenant \"%s\" not found by its id", t->id);
		if (t->limit_status != 429 && t->limit_status != 503)
			return cc_fail("tenant \"%s\": limit_status %d", t->id,
				       t->limit_status);
		if (t->token != NULL && t->has_token_sha256)
			return cc_fail("tenant \"%s\" has token and token_sha256",
				       t->id);
		for (u = t->next; u != NULL; u = u->next)
			if ((t->token != NULL && u->token != NULL &&
			     strcmp(t->token, u->token) == 0) ||
			    (t->has_token_sha256 && u->has_token_sha256 &&
			     memcmp(t->token_sha256, u->token_sha256, 32) == 0))
				return cc_fail("tenants \"%s\" and \"%s\" share "
					       "a token", t->id, u->id);
		if (t->max_samples_per_second < 0 ||
		    t->max_samples_per_second != t->max_samples_per_second)
			return cc_fail("tenant \"%s\": max_samples_per_second %g",
				       t->id, t->max_samples_per_second);
	}
	if (n != c->ntenants)
		return cc_fail("ntenants is %d, the list holds %d", c->ntenants,
			       n);
	return NULL;
}

/* Checks a config_load error message: "FILE:LINE: reason" with LINE in
 * 1..lines, or "FILE: reason"; one line. Returns NULL or what is wrong. */
static const char *cc_error(const char *err, size_t lines)
{
	size_t plen = strlen(cc_path);
	const char *p;
	char *end;
	unsigned long line;

	if (strncmp(err, cc_path, plen) != 0 || err[plen] != ':')
		return cc_fail("error does not start with the path: \"%.200s\"",
			       err);
	if (strchr(err, '\n') != NULL)
		return cc_fail("error is more than one line: \"%.200s\"", err);
	p = err + plen + 1;
	if (*p >= '0' && *p <= '9') {
		line = strtoul(p, &end, 10);
		if (line < 1 || line > lines || *end != ':')
			return cc_fail("error names line %lu of %zu: \"%.200s\"",
				       line, lines, err);
		p = end + 1;
	}
	if (p[0] != ' ' || p[1] == '\0')
		return cc_fail("error has no reason after the path: \"%.200s\"",
			       err);
	return NULL;
}

/* Whether name is a key of the fixed sections. */
static int cc_is_key(const char *name, size_t n)
{
	const char *k;

	for (size_t i = 0; (k = config_key_info(i, NULL, NULL, NULL)) != NULL;
	     i++)
		if (strlen(k) == n && memcmp(k, name, n) == 0)
			return 1;
	return 0;
}

/*
 * config_keep_fixed(next, defaults) as a reload onto a relay running with
 * the defaults: returns how many keys differed (*count) and lists them in
 * a changed buffer of changedlen bytes (exactly that size, so that ASan
 * sees an overrun). With a full-size buffer the list must name *count real
 * keys; a second call must find nothing left to change. Returns NULL or
 * what is wrong; *count is -1 when memory was short.
 */
static const char *cc_keep_fixed(struct config *next, size_t changedlen,
				 int *count)
{
	struct config cur;
	char *changed = malloc(changedlen), again[64];
	const char *e = NULL, *p, *q;
	int n, names = 0;

	*count = -1;
	if (changed == NULL)
		return NULL;
	config_defaults(&cur);
	n = config_keep_fixed(next, &cur, changed, changedlen);
	if (n < 0)
		goto out;
	*count = n;
	if (changedlen > 1024) {
		for (p = changed; *p != '\0'; p = *q ? q + 2 : q, names++) {
			q = strstr(p, ", ");
			if (q == NULL)
				q = p + strlen(p);
			if (!cc_is_key(p, (size_t)(q - p))) {
				e = cc_fail("config_keep_fixed listed \"%.*s\", "
					    "not a key", (int)(q - p), p);
				goto out;
			}
		}
		if (names != n) {
			e = cc_fail("config_keep_fixed returned %d but listed "
				    "%d keys: %.200s", n, names, changed);
			goto out;
		}
	}
	if ((n = config_keep_fixed(next, &cur, again, sizeof(again))) > 0)
		e = cc_fail("a second config_keep_fixed still changed %d keys "
			    "(%s)", n, again);
out:
	config_free(&cur);
	free(changed);
	return e;
}

static const char *config_check(const uint8_t *data, size_t size)
{
	struct config cfg;
	char err[1024], *small, *s;
	const char *e = NULL;
	size_t i, lines = 0;
	uint64_t v;
	int rc, rc2, kept = -1, kept2 = -1;

	/* The unit parsers on the input as one string. */
	if ((s = malloc(size + 1)) != NULL) {
		memcpy(s, data, size);
		s[size] = '\0';
		config_parse_size(s, &v);
		config_parse_duration(s, &v);
		free(s);
	}

	if (cc_write(data, size) < 0)
		return NULL;                    /* no temporary file: no test */
	for (i = 0; i < size; i++)
		lines += data[i] == '\n';
	if (size > 0 && data[size - 1] != '\n')
		lines++;

	memset(&cfg, 0, sizeof(cfg));
	rc = config_load(&cfg, cc_path, err, sizeof(err));
	if (rc == 0) {
		if ((e = cc_loaded(&cfg)) == NULL)
			e = cc_keep_fixed(&cfg, 4096, &kept);
	} else if (rc != -1)
		e = cc_fail("config_load returned %d", rc);
	else
		e = cc_error(err, lines);
	config_free(&cfg);
	if (e != NULL)
		return e;

	/* A message buffer of 24 bytes: truncated, same outcome. */
	if ((small = malloc(24)) == NULL)
		return NULL;
	rc2 = config_load(&cfg, cc_path, small, 24);
	if (rc2 != rc)
		e = cc_fail("config_load returned %d with a short message "
			    "buffer, %d with a long one", rc2, rc);
	else if (rc != 0 && strlen(small) >= 24)
		e = cc_fail("config_load overran a short message buffer");
	else if (rc != 0 && strncmp(small, err, strlen(small)) != 0)
		e = cc_fail("the short message is not the start of the long one");
	else if (rc == 0 && (e = cc_keep_fixed(&cfg, 24, &kept2)) == NULL &&
		 kept >= 0 && kept2 >= 0 && kept2 != kept)
		e = cc_fail("config_keep_fixed counted %d keys with a short "
			    "list buffer, %d with a long one", kept2, kept);
	config_free(&cfg);
	free(small);
	return e;
}

#endif
