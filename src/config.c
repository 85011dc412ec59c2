/*
 * config.c - relay.conf reader (see config.h).
 *
 * Every key of the fixed sections is one row of config_keys[]: section,
 * type, place in struct config, default and bounds as written in the file,
 * and a help line. Defaults and bounds go through the same parsers as the
 * file, so the table cannot hold a value the file would refuse. [tenant ID]
 * sections fill a list instead of struct config: parse_header() starts one,
 * config_tenant.c reads its keys.
 */
#include "config_int.h"
#include "addr.h"
#include "labels.h"
#include "log.h"
#include "relabel.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const section_names[] = {
	"server", "limits", "storage", "upstream", "tenancy", "usage", "log"
};

enum config_type { CONF_STRING, CONF_SIZE, CONF_DURATION, CONF_INT, CONF_BOOL, CONF_ENUM };

/* Extra checks on a string value. */
/* CHECK_LABEL: a label name not starting with __; CHECK_LABEL_ANY: any
 * label name (external labels such as __replica__ may be reserved ones). */
enum config_check { CHECK_NONE, CHECK_URL, CHECK_LABEL, CHECK_LABEL_ANY, CHECK_TENANT_ID,
		    CHECK_LISTEN };

struct config_key {
	const char *name;
	enum config_section section;
	enum config_type type;
	size_t offset;              /* into struct config */
	const char *def;            /* as written in relay.conf; NULL: unset */
	const char *min, *max;      /* bounds as written; NULL: none */
	const char *const *names;   /* CONF_ENUM: index is the stored int */
	enum config_check check;    /* CONF_STRING */
	const char *help;
};

static const char *const when_full_names[] = {"reject", "drop_oldest", NULL};
/* In enum log_level order. */
static const char *const level_names[] = {"debug", "info", "warn", "error", NULL};

#define KEY(name, sec, type, field, def, min, max, names, check, help)       \
	{ name, sec, type, offsetof(struct config, field), def, min, max,    \
	  names, check, help }
#define STR(name, sec, field, def, check, help)                              \
	KEY(name, sec, CONF_STRING, field, def, NULL, NULL, NULL, check, help)
#define NUM(name, sec, type, field, def, min, max, help)                     \
	KEY(name, sec, type, field, def, min, max, NULL, CHECK_NONE, help)
#define ENUM(name, sec, field, def, names, help)                             \
	KEY(name, sec, CONF_ENUM, field, def, NULL, NULL, names, CHECK_NONE, help)

/* In the order relay.conf lists them. */
static const struct config_key config_keys[] = {
	STR("listen", SEC_SERVER, listen, "127.0.0.1:9201", CHECK_LISTEN,
	    "host:port of the HTTP API (remote write, /metrics, health); port 1-65535, an IPv6 address in brackets, no host: every address."),
	NUM("max_body_size", SEC_SERVER, CONF_SIZE, max_body_size, "32MiB", "1KiB", "1GiB",
	    "Largest compressed request body; larger ones get 413."),
	NUM("max_decoded_size", SEC_SERVER, CONF_SIZE, max_decoded_size, "64MiB", "1KiB", "4GiB",
	    "Largest snappy-decoded body, checked before decoding."),
	NUM("max_inflight_bytes", SEC_SERVER, CONF_SIZE, max_inflight_bytes, "1GiB", "1MiB", NULL,
	    "Memory of write requests being handled (bodies being received and decoded); requests past it get 503."),
	NUM("threads", SEC_SERVER, CONF_INT, threads, "2", "1", "64",
	    "HTTP worker threads."),
	NUM("max_connections", SEC_SERVER, CONF_INT, max_connections, "1024", "1", "100000",
	    "Most client connections open at once."),
	NUM("idle_timeout", SEC_SERVER, CONF_DURATION, idle_timeout_ms, "60s", "1s", "1d",
	    "A connection idle this long is closed."),
	NUM("shutdown_timeout", SEC_SERVER, CONF_DURATION, shutdown_timeout_ms, "5s", "100ms", "10m",
	    "Longest stop: upstream requests still in flight then are abandoned (their data stays buffered)."),
	NUM("header_timeout", SEC_SERVER, CONF_DURATION, header_timeout_ms, "10s", "100ms", "1h",
	    "A request line and headers not complete this long after the connection opened (or the request line arrived) close the connection."),
	NUM("body_timeout", SEC_SERVER, CONF_DURATION, body_timeout_ms, "10s", "100ms", "1h",
	    "Window of the body rate check: a body that brings less than body_min_rate in one such window closes the connection."),
	NUM("body_min_rate", SEC_SERVER, CONF_SIZE, body_min_rate, "1KiB", "0", "1GiB",
	    "Bytes per second a body must average over each body_timeout; 0: one byte per window is enough."),
	NUM("max_connections_per_ip", SEC_SERVER, CONF_INT, max_connections_per_ip, "0", "0", "100000",
	    "Most connections open at once from one client address; 0: no cap (behind a proxy)."),
	STR("admin_token", SEC_SERVER, admin_token, NULL, CHECK_NONE,
	    "Bearer token for the admin endpoints; empty: they are refused."),
	STR("tls_cert", SEC_SERVER, tls_cert, NULL, CHECK_NONE,
	    "PEM certificate chain for HTTPS; empty: plain HTTP."),
	STR("tls_key", SEC_SERVER, tls_key, NULL, CHECK_NONE,
	    "PEM private key of tls_cert."),
	STR("tls_client_ca", SEC_SERVER, tls_client_ca, NULL, CHECK_NONE,
	    "PEM CA bundle; when set, clients must show a certificate it signed."),

	NUM("max_labels_per_series", SEC_LIMITS, CONF_INT, max_labels_per_series,
	    "128", "1", "10000", "Most labels one series may carry."),
	NUM("max_label_name_length", SEC_LIMITS, CONF_INT, max_label_name_length,
	    "256", "1", "65536", "Longest label name, in bytes."),
	NUM("max_label_value_length", SEC_LIMITS, CONF_INT, max_label_value_length,
	    "16384", "1", "1048576", "Longest label value, in bytes."),

	STR("path", SEC_STORAGE, path, "./data", CHECK_NONE,
	    "Directory of the LMDB store."),
	NUM("max_size", SEC_STORAGE, CONF_SIZE, max_size, "8GiB", "1MiB", NULL,
	    "Most disk space the store may use (the LMDB map size)."),
	ENUM("when_full", SEC_STORAGE, when_full, "reject", when_full_names,
	     "When the store is full: reject new writes, or drop_oldest data "
	     "(first of the tenants over their share)."),
	NUM("max_age", SEC_STORAGE, CONF_DURATION, max_age_ms, "7d", "1m", NULL,
	    "Data not forwarded within this time is dropped."),
	NUM("dedup_window", SEC_STORAGE, CONF_DURATION, dedup_window_ms, "10m", "0", "1d",
	    "A batch resent within this time is stored once; 0: off."),
	NUM("preallocate", SEC_STORAGE, CONF_SIZE, preallocate, "32MiB", "0", "1GiB",
	    "Zeros kept written past the data so that commits overwrite rather than extend the file; up to a quarter of the data; 0: off."),
	NUM("usage_retention", SEC_STORAGE, CONF_DURATION, usage_retention_ms, "400d", "1d", NULL,
	    "How long per-tenant usage records are kept."),
	NUM("setaside_max_size", SEC_STORAGE, CONF_SIZE, setaside_max_size, "1GiB", "1MiB", NULL,
	    "Most bytes kept of batches the upstream refused; the oldest go first."),
	NUM("setaside_max_age", SEC_STORAGE, CONF_DURATION, setaside_max_age_ms, "30d", "1h", NULL,
	    "Batches the upstream refused are deleted after this time."),

	STR("url", SEC_UPSTREAM, url, "http://127.0.0.1:8428/api/v1/write", CHECK_URL,
	    "Remote-write URL (http:// or https://); may use {tenant}, {account_id} and {project_id}. A proxy is taken from the environment as curl does (http_proxy, https_proxy, all_proxy)."),
	NUM("timeout", SEC_UPSTREAM, CONF_DURATION, timeout_ms, "30s", "100ms", "1h",
	    "Time limit for one whole upstream request."),
	NUM("min_backoff", SEC_UPSTREAM, CONF_DURATION, min_backoff_ms, "100ms", "1ms", "1h",
	    "First delay before a retry; it doubles on each failure. Also the shortest wait a Retry-After can ask for."),
	NUM("max_backoff", SEC_UPSTREAM, CONF_DURATION, max_backoff_ms, "5s", "1ms", "1d",
	    "Longest delay between retries (at least min_backoff), also for a Retry-After. While the upstream is down one request at a time probes it at this pace, so delivery resumes at most this long after it is back."),
	NUM("max_request_size", SEC_UPSTREAM, CONF_SIZE, max_request_size, "8MiB", "64KiB", "30MiB",
	    "Decoded bytes per forwarded request."),
	NUM("concurrency", SEC_UPSTREAM, CONF_INT, concurrency, "8", "1", "64",
	    "Forwarder threads, one request in flight each."),
	NUM("inflight_per_tenant", SEC_UPSTREAM, CONF_INT, inflight_per_tenant, "4", "1", "64",
	    "Delivery lanes of one tenant in flight at once (up to 8); each series keeps its order whatever the value."),
	STR("bearer_token", SEC_UPSTREAM, bearer_token, NULL, CHECK_NONE,
	    "Bearer token sent upstream; empty: none."),
	STR("basic_user", SEC_UPSTREAM, basic_user, NULL, CHECK_NONE,
	    "Basic-auth user sent upstream; empty: none."),
	STR("basic_password", SEC_UPSTREAM, basic_password, NULL, CHECK_NONE,
	    "Basic-auth password of basic_user."),
	STR("ca_file", SEC_UPSTREAM, ca_file, NULL, CHECK_NONE,
	    "PEM CA bundle to verify upstream with; empty: system CAs."),
	STR("client_cert", SEC_UPSTREAM, client_cert, NULL, CHECK_NONE,
	    "PEM client certificate shown upstream; empty: none."),
	STR("client_key", SEC_UPSTREAM, client_key, NULL, CHECK_NONE,
	    "PEM private key of client_cert."),
	NUM("tls_verify", SEC_UPSTREAM, CONF_BOOL, tls_verify, "true", NULL, NULL,
	    "Verify the upstream certificate and host name."),

	STR("label", SEC_TENANCY, tenant_label, "tenant", CHECK_LABEL,
	    "Label that names the tenant on every forwarded series."),
	STR("header", SEC_TENANCY, tenant_header, "X-Scope-OrgID", CHECK_NONE,
	    "Request header that names the tenant when trust_header is on."),
	NUM("trust_header", SEC_TENANCY, CONF_BOOL, trust_header, "false", NULL, NULL,
	    "Take the tenant from header without a token (behind an authenticating proxy)."),
	STR("default", SEC_TENANCY, default_tenant, NULL, CHECK_TENANT_ID,
	    "Tenant of requests that name none; empty: none."),
	NUM("max_tenants", SEC_TENANCY, CONF_INT, max_tenants, "10000", "0", "10000000",
	    "With trust_header, most distinct tenants taken; a new one past it gets 429; 0: no limit."),
	STR("ha_cluster_label", SEC_TENANCY, ha_cluster_label, NULL, CHECK_LABEL_ANY,
	    "Label naming the HA cluster of a Prometheus pair; one replica per tenant and cluster is stored; empty: HA deduplication off."),
	STR("ha_replica_label", SEC_TENANCY, ha_replica_label, "__replica__", CHECK_LABEL_ANY,
	    "Label naming the replica within an HA cluster; removed from the series stored."),
	NUM("ha_failover_timeout", SEC_TENANCY, CONF_DURATION, ha_failover_timeout_ms, "30s", "1s", "1d",
	    "When the elected replica sent nothing for this long, the next request of another replica takes over."),
	STR("relabel", SEC_TENANCY, relabel, NULL, CHECK_NONE,
	    "Relabel rules file (a YAML list of Prometheus relabel_config entries) applied to every series first; empty: none."),
	NUM("relabel_cache", SEC_TENANCY, CONF_SIZE, relabel_cache_size, "64MiB", "0", "64GiB",
	    "Memory for the results of relabel rules (all tenants and threads together), remembered by the labels a series came with; 0: none."),

	NUM("export", SEC_USAGE, CONF_BOOL, usage_export, "true", NULL, NULL,
	    "Write the per-tenant usage counters into the upstream as relay_usage_*_total series, through the buffer."),
	NUM("export_interval", SEC_USAGE, CONF_DURATION, usage_export_interval_ms, "1m", "1s", "1d",
	    "How often the usage series are written."),
	STR("export_tenant", SEC_USAGE, usage_export_tenant, NULL, CHECK_TENANT_ID,
	    "Tenant whose queue and destination take the usage series (not billed to it); empty: no tenant, and the export pauses while url is per tenant."),
	STR("instance", SEC_USAGE, usage_instance, NULL, CHECK_NONE,
	    "Value of the relay label of the usage series; empty: the host name."),

	ENUM("level", SEC_LOG, log_level, "info", level_names,
	     "Lowest level logged: debug, info, warn or error."),
};
#define NKEYS (sizeof(config_keys) / sizeof(config_keys[0]))

/* Writes "FILE:LINE: reason" (or "FILE: reason" for line 0) into p->err.
 * Always returns -1. */
int config_fail(struct parser *p, unsigned line, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (p->err == NULL || p->errlen == 0)
		return -1;
	if (line > 0)
		n = snprintf(p->err, p->errlen, "%s:%u: ", p->file, line);
	else
		n = snprintf(p->err, p->errlen, "%s: ", p->file);
	if (n < 0 || (size_t)n >= p->errlen)
		return -1;
	va_start(ap, fmt);
	vsnprintf(p->err + n, p->errlen - (size_t)n, fmt, ap);
	va_end(ap);
	return -1;
}

struct unit {
	const char *suffix;
	uint64_t mult;
};

static const struct unit size_units[] = {
	{"", 1}, {"B", 1},
	{"KiB", 1ULL << 10}, {"MiB", 1ULL << 20}, {"GiB", 1ULL << 30}, {"TiB", 1ULL << 40},
	{"KB", 1000ULL}, {"MB", 1000000ULL}, {"GB", 1000000000ULL}, {"TB", 1000000000000ULL},
	{NULL, 0}
};
static const struct unit duration_units[] = {
	{"ms", 1}, {"s", 1000}, {"m", 60000}, {"h", 3600000}, {"d", 86400000}, {NULL, 0}
};

/*
 * Parses digits, a fraction when frac_ok, and one suffix of units into a
 * whole number. Fails on anything else, on overflow, and on a fraction that
 * does not come to a whole number ("1.5B"). Returns 0 or -1.
 */
static int parse_units(const char *p, const struct unit *u, int frac_ok, uint64_t *out)
{
	uint64_t whole = 0, frac = 0, scale = 1, f;

	if (!isdigit((unsigned char)*p))
		return -1;
	for (; isdigit((unsigned char)*p); p++) {
		if (whole > (UINT64_MAX - (uint64_t)(*p - '0')) / 10)
			return -1;
		whole = whole * 10 + (uint64_t)(*p - '0');
	}
	if (*p == '.' && frac_ok) {
		if (!isdigit((unsigned char)*++p))
			return -1;
		for (; isdigit((unsigned char)*p); p++) {
			if (scale > UINT64_MAX / 10)
				return -1;      /* more digits than anyone means */
			frac = frac * 10 + (uint64_t)(*p - '0');
			scale *= 10;
		}
	}
	while (u->suffix != NULL && strcmp(p, u->suffix) != 0)
		u++;
	if (u->suffix == NULL || whole > UINT64_MAX / u->mult || frac > UINT64_MAX / u->mult)
		return -1;
	f = frac * u->mult;
	if (f % scale != 0 || whole * u->mult > UINT64_MAX - f / scale)
		return -1;
	*out = whole * u->mult + f / scale;
	return 0;
}

int config_parse_size(const char *s, uint64_t *out)
{
	return parse_units(s, size_units, 1, out);
}

int config_parse_duration(const char *s, uint64_t *out_ms)
{
	if (strcmp(s, "0") == 0) {
		*out_ms = 0;
		return 0;
	}
	return parse_units(s, duration_units, 0, out_ms);
}

/* Parses a number of type (CONF_SIZE, CONF_DURATION or CONF_INT; an int
 * below 0 comes out as UINT64_MAX, past any bound). Returns 0 or -1. */
static int parse_number(enum config_type type, const char *v, uint64_t *out)
{
	int neg = *v == '-';

	if (type == CONF_SIZE)
		return config_parse_size(v, out);
	if (type == CONF_DURATION)
		return config_parse_duration(v, out);
	if (v[neg + strspn(v + neg, "0123456789")] != '\0' ||
	    parse_units(v + neg, size_units, 0, out) < 0)
		return -1;
	if (neg && *out != 0)
		*out = UINT64_MAX;
	return 0;
}

static int valid_tenant_id(const char *s)
{
	size_t n = strlen(s);

	return n > 0 && n <= TENANT_ID_MAX &&
	       strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-") == n;
}

/* [a-zA-Z_][a-zA-Z0-9_]*, not starting with "__" (reserved by Prometheus). */
static int valid_label_name(const char *s)
{
	return (isalpha((unsigned char)s[0]) || (s[0] == '_' && s[1] != '_')) &&
	       strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_") ==
	       strlen(s);
}

static int check_string(const struct config_key *k, const char *v, char *why, size_t n)
{
	if (k->check == CHECK_LISTEN)
		return addr_check_listen(k->name, v, why, n);
	if (k->check == CHECK_URL && strncmp(v, "http://", 7) != 0 &&
	    strncmp(v, "https://", 8) != 0)
		snprintf(why, n, "%s: \"%s\" must start with http:// or https://", k->name, v);
	else if (k->check == CHECK_LABEL && !valid_label_name(v))
		snprintf(why, n, "%s: \"%s\" is not a valid label name "
			 "([a-zA-Z_][a-zA-Z0-9_]*, not starting with __)", k->name, v);
	else if (k->check == CHECK_LABEL_ANY &&
		 !labels_name_valid((const uint8_t *)v, strlen(v)))
		snprintf(why, n, "%s: \"%s\" is not a valid label name "
			 "([a-zA-Z_][a-zA-Z0-9_]*)", k->name, v);
	else if (k->check == CHECK_TENANT_ID && !valid_tenant_id(v))
		snprintf(why, n, "%s: \"%s\" is not a valid tenant id "
			 "(1 to 64 of A-Z a-z 0-9 _ . -)", k->name, v);
	else
		return 0;
	return -1;
}

static int parse_bool(const char *v, int *out)
{
	static const char *const yes[] = {"true", "yes", "on", "1"};
	static const char *const no[] = {"false", "no", "off", "0"};

	for (size_t i = 0; i < 4; i++) {
		if (strcmp(v, yes[i]) == 0 || strcmp(v, no[i]) == 0) {
			*out = strcmp(v, yes[i]) == 0;
			return 0;
		}
	}
	return -1;
}

/*
 * Parses v as the value of k and stores it in cfg, freeing the string it
 * replaces. Returns 0, or -1 with the reason (without FILE:LINE) in why;
 * cfg is then unchanged.
 */
static int key_apply(const struct config_key *k, struct config *cfg, const char *v,
		     char *why, size_t n)
{
	void *dst = (char *)cfg + k->offset;
	uint64_t u = 0, lo = 0, hi = UINT64_MAX;
	char *copy = NULL;
	int i, len;

	switch (k->type) {
	case CONF_STRING:
		if (*v == '\0' && k->def != NULL) {
			snprintf(why, n, "%s: must not be empty", k->name);
			return -1;
		}
		if (*v != '\0' && check_string(k, v, why, n) < 0)
			return -1;
		if (*v != '\0' && (copy = strdup(v)) == NULL) {
			snprintf(why, n, "out of memory");
			return -1;
		}
		free(*(char **)dst);
		*(char **)dst = copy;
		return 0;
	case CONF_BOOL:
		if (parse_bool(v, &i) == 0) {
			*(int *)dst = i;
			return 0;
		}
		snprintf(why, n, "%s: \"%s\" is not a boolean (use true or false)", k->name, v);
		return -1;
	case CONF_ENUM:
		for (i = 0; k->names[i] != NULL; i++) {
			if (strcmp(v, k->names[i]) == 0) {
				*(int *)dst = i;
				return 0;
			}
		}
		len = snprintf(why, n, "%s: \"%s\" is not one of", k->name, v);
		for (i = 0; k->names[i] != NULL && len > 0 && (size_t)len < n; i++)
			len += snprintf(why + len, n - (size_t)len, "%s %s", i ? "," : "",
					k->names[i]);
		return -1;
	case CONF_SIZE:
	case CONF_DURATION:
	case CONF_INT:
		break;
	}

	if (parse_number(k->type, v, &u) < 0) {
		snprintf(why, n, "%s: \"%s\" is not %s", k->name, v,
			 k->type == CONF_SIZE ? "a size (use e.g. 512MiB, 8GiB)" :
			 k->type == CONF_DURATION ? "a duration (use e.g. 500ms, 30s, 5m, 1h, 7d)" :
			 "an integer");
		return -1;
	}
	if (k->min != NULL)
		parse_number(k->type, k->min, &lo);     /* the table's own */
	if (k->max != NULL)
		parse_number(k->type, k->max, &hi);
	if (u < lo || u > hi) {
		if (k->max == NULL)
			snprintf(why, n, "%s: %s is below the minimum %s", k->name, v, k->min);
		else
			snprintf(why, n, "%s: %s is out of range %s..%s", k->name, v,
				 k->min, k->max);
		return -1;
	}
	if (k->type == CONF_INT)
		*(int *)dst = (int)u;
	else
		*(uint64_t *)dst = u;
	return 0;
}

/* Clears cfg and fills in every default. Returns 0, or -1 with the reason
 * in why (out of memory); cfg then needs config_free. */
static int defaults_set(struct config *cfg, char *why, size_t n)
{
	memset(cfg, 0, sizeof(*cfg));
	for (size_t i = 0; i < NKEYS; i++) {
		const struct config_key *k = &config_keys[i];
		if (key_apply(k, cfg, k->def ? k->def : "", why, n) < 0)
			return -1;
	}
	return 0;
}

void config_defaults(struct config *cfg)
{
	char why[256];

	if (defaults_set(cfg, why, sizeof(why)) < 0)
		fatal("cannot set config defaults", "error=\"%s\"", why);
}

const char *config_key_info(size_t i, const char **section, const char **def,
			    const char **help)
{
	if (i >= NKEYS)
		return NULL;
	if (section != NULL)
		*section = section_names[config_keys[i].section];
	if (def != NULL)
		*def = config_keys[i].def;
	if (help != NULL)
		*help = config_keys[i].help;
	return config_keys[i].name;
}

static size_t key_index(enum config_section section, const char *name)
{
	size_t i;

	for (i = 0; i < NKEYS; i++)
		if (config_keys[i].section == section && strcmp(config_keys[i].name, name) == 0)
			break;
	return i;
}

/* Copies v into *dst (freeing the old string); "" stores NULL. */
int config_set_string(struct parser *p, char **dst, const char *v)
{
	char *copy = NULL;

	if (*v != '\0' && (copy = strdup(v)) == NULL)
		return config_fail(p, p->line, "out of memory");
	free(*dst);
	*dst = copy;
	return 0;
}

static char *trim(char *s)
{
	size_t n;

	while (isspace((unsigned char)*s))
		s++;
	n = strlen(s);
	while (n > 0 && isspace((unsigned char)s[n - 1]))
		s[--n] = '\0';
	return s;
}

/* Reads "[name]" or "[tenant ID]" (s is trimmed and starts with '['). */
static int parse_header(struct parser *p, char *s)
{
	struct config_tenant *t, **tail;
	size_t n = strlen(s);
	char *name, *rest;

	if (s[n - 1] != ']')
		return config_fail(p, p->line, "expected \"]\" at the end of a section header");
	s[n - 1] = '\0';
	name = trim(s + 1);
	rest = name + strcspn(name, " \t");
	if (*rest != '\0')
		*rest++ = '\0';
	rest = trim(rest);

	for (int i = 0; i < SEC_TENANT; i++) {
		if (*rest == '\0' && strcmp(name, section_names[i]) == 0) {
			p->section = (enum config_section)i;
			return 0;
		}
	}
	if (strcmp(name, "tenant") != 0)
		return config_fail(p, p->line, "unknown section [%s%s%s]", name,
			    *rest ? " " : "", rest);
	if (*rest == '\0')
		return config_fail(p, p->line, "[tenant] needs an id, e.g. [tenant acme]");
	if (!valid_tenant_id(rest))
		return config_fail(p, p->line, "invalid tenant id \"%s\" (1 to 64 of "
			    "A-Z a-z 0-9 _ . -)", rest);
	for (tail = &p->cfg->tenants; *tail != NULL; tail = &(*tail)->next)
		if (strcmp((*tail)->id, rest) == 0)
			return config_fail(p, p->line, "duplicate tenant \"%s\"", rest);
	if ((t = calloc(1, sizeof(*t))) == NULL || (t->id = strdup(rest)) == NULL) {
		free(t);
		return config_fail(p, p->line, "out of memory");
	}
	t->limit_status = 429;
	t->max_series_window_ms = 3600000;
	*tail = t;
	p->cfg->ntenants++;
	p->tenant = t;
	p->tenant_seen = 0;
	p->section = SEC_TENANT;
	return 0;
}

static int parse_line(struct parser *p, char *line)
{
	char why[512], *s, *eq, *key, *value;
	size_t i;

	/* A comment starts a line or follows whitespace: "a=b#c" keeps "#c". */
	for (i = 0; line[i] != '\0'; i++) {
		if ((line[i] == '#' || line[i] == ';') &&
		    (i == 0 || isspace((unsigned char)line[i - 1]))) {
			line[i] = '\0';
			break;
		}
	}
	s = trim(line);
	if (*s == '\0')
		return 0;
	if (*s == '[')
		return parse_header(p, s);
	if ((eq = strchr(s, '=')) == NULL || eq == s)
		return config_fail(p, p->line, "expected \"key = value\" or \"[section]\"");
	*eq = '\0';
	key = trim(s);
	value = trim(eq + 1);
	if (p->section == SEC_NONE)
		return config_fail(p, p->line, "key \"%s\" before any [section]", key);
	if (p->section == SEC_TENANT)
		return config_tenant_set(p, key, value);

	if ((i = key_index(p->section, key)) == NKEYS)
		return config_fail(p, p->line, "unknown key \"%s\" in [%s]", key,
			    section_names[p->section]);
	if (p->key_line[i] != 0)
		return config_fail(p, p->line, "duplicate key \"%s\" in [%s] (first set on "
			    "line %u)", key, section_names[p->section], p->key_line[i]);
	if (key_apply(&config_keys[i], p->cfg, value, why, sizeof(why)) < 0)
		return config_fail(p, p->line, "%s", why);
	p->key_line[i] = p->line;
	return 0;
}

/* The later of the lines two keys were set on; 0 if both are defaults. */
static unsigned later_line(const struct parser *p, enum config_section sec,
			   const char *a, const char *b)
{
	unsigned la = p->key_line[key_index(sec, a)];
	unsigned lb = p->key_line[key_index(sec, b)];

	return la > lb ? la : lb;
}

/* Checks that involve more than one key, once the whole file is read. */
static int check_cross(struct parser *p)
{
	const struct config *c = p->cfg;

	if (c->max_backoff_ms < c->min_backoff_ms)
		return config_fail(p, later_line(p, SEC_UPSTREAM, "min_backoff", "max_backoff"),
			    "max_backoff must not be less than min_backoff");
	if ((c->tls_cert == NULL) != (c->tls_key == NULL))
		return config_fail(p, later_line(p, SEC_SERVER, "tls_cert", "tls_key"),
			    "tls_cert and tls_key must be set together");
	if ((c->client_cert == NULL) != (c->client_key == NULL))
		return config_fail(p, later_line(p, SEC_UPSTREAM, "client_cert", "client_key"),
			    "client_cert and client_key must be set together");
	for (const struct config_tenant *t = c->tenants; ; t = t->next) {
		const char *cl = c->ha_cluster_label, *rl = c->ha_replica_label;
		if (t != NULL && t->has_ha_cluster_label)
			cl = t->ha_cluster_label;
		if (t != NULL && t->ha_replica_label != NULL)
			rl = t->ha_replica_label;
		if (cl != NULL && rl != NULL &&
		    (strcmp(cl, rl) == 0 || (c->tenant_label != NULL &&
		      strcmp(rl, c->tenant_label) == 0)))
			return config_fail(p, later_line(p, SEC_TENANCY, "ha_cluster_label",
						  "ha_replica_label"),
				    "ha_replica_label must differ from ha_cluster_label "
				    "and from label%s%s", t ? " in tenant " : "",
				    t ? t->id : "");
		if (t == NULL)
			break;
	}
	return 0;
}

/* Keys a reload applies; every other key keeps the value it started with. */
static int reloadable(const struct config_key *k)
{
	static const char *const names[] = {"admin_token", "url", "label", "header",
					    "trust_header", "default", "max_tenants", "level",
					    "ha_cluster_label", "ha_replica_label",
					    "ha_failover_timeout", "relabel", "relabel_cache",
					    NULL};

	for (int i = 0; names[i] != NULL; i++)
		if (strcmp(k->name, names[i]) == 0)
			return 1;
	return 0;
}

int config_keep_fixed(struct config *next, const struct config *cur,
		      char *changed, size_t changedlen)
{
	size_t n = sizeof(config_keys) / sizeof(config_keys[0]), used = 0;
	int differ = 0;

	if (changedlen > 0)
		changed[0] = '\0';
	for (size_t i = 0; i < n; i++) {
		const struct config_key *k = &config_keys[i];
		char *np = (char *)next + k->offset;
		const char *cp = (const char *)cur + k->offset;
		int same;

		if (reloadable(k))
			continue;
		if (k->type == CONF_STRING) {
			char **ns = (char **)np;
			char *const *cs = (char *const *)cp;
			same = (*ns == NULL && *cs == NULL) ||
			       (*ns != NULL && *cs != NULL && strcmp(*ns, *cs) == 0);
			if (!same) {
				char *copy = *cs ? strdup(*cs) : NULL;
				if (*cs != NULL && copy == NULL)
					return -1;
				free(*ns);
				*ns = copy;
			}
		} else {
			size_t sz = k->type == CONF_SIZE || k->type == CONF_DURATION ?
				    sizeof(uint64_t) : sizeof(int);
			same = memcmp(np, cp, sz) == 0;
			memcpy(np, cp, sz);
		}
		if (!same) {
			differ++;
			if (used < changedlen) {
				int w = snprintf(changed + used, changedlen - used, "%s%s",
						 used ? ", " : "", k->name);
				if (w > 0)
					used += (size_t)w;
			}
		}
	}
	return differ;
}

/* Reads the relabel rules files cfg names ([tenancy] and each [tenant]),
 * and numbers this load for the caches of their results. Returns 0, or -1
 * with the file's own "FILE:LINE: reason" in err. */
static int load_rules(struct config *cfg, char *err, size_t errlen)
{
	static _Atomic uint64_t loads;

	cfg->relabel_gen = ++loads;
	if (cfg->relabel != NULL &&
	    (cfg->relabel_rules = relabel_load(cfg->relabel, err, errlen)) == NULL)
		return -1;
	for (struct config_tenant *t = cfg->tenants; t != NULL; t = t->next)
		if (t->relabel != NULL &&
		    (t->relabel_rules = relabel_load(t->relabel, err, errlen)) == NULL)
			return -1;
	return 0;
}

/* config_load, the rules files read when rules is set. */
static int load(struct config *cfg, const char *path, int rules, char *err,
		size_t errlen)
{
	unsigned key_line[NKEYS] = {0};
	struct parser p = {
		.cfg = cfg, .file = path, .section = SEC_NONE, .key_line = key_line,
		.err = err, .errlen = errlen,
	};
	char why[256], *line = NULL;
	size_t cap = 0;
	FILE *f;
	int rc = -1;

	if (err != NULL && errlen > 0)
		err[0] = '\0';
	if (defaults_set(cfg, why, sizeof(why)) < 0)
		return config_fail(&p, 0, "%s", why);
	if ((cfg->file = strdup(path)) == NULL)
		return config_fail(&p, 0, "out of memory");
	if ((f = fopen(path, "r")) == NULL)
		return config_fail(&p, 0, "cannot open: %s", strerror(errno));

	while (getline(&line, &cap, f) >= 0) {
		p.line++;
		if (parse_line(&p, line) < 0)
			goto out;
	}
	if (ferror(f)) {
		config_fail(&p, 0, "cannot read: %s", strerror(errno));
		goto out;
	}
	if (check_cross(&p) < 0 || (rules && load_rules(cfg, err, errlen) < 0))
		goto out;
	rc = 0;
out:
	free(line);
	fclose(f);
	return rc;
}

int config_load(struct config *cfg, const char *path, char *err, size_t errlen)
{
	return load(cfg, path, 1, err, errlen);
}

int config_load_storage(struct config *cfg, const char *path, char *err,
			size_t errlen)
{
	return load(cfg, path, 0, err, errlen);
}

void config_free(struct config *cfg)
{
	struct config_tenant *t, *next;

	for (size_t i = 0; i < NKEYS; i++)
		if (config_keys[i].type == CONF_STRING)
			free(*(char **)((char *)cfg + config_keys[i].offset));
	for (t = cfg->tenants; t != NULL; t = next) {
		next = t->next;
		free(t->id);
		free(t->token);
		free(t->account_id);
		free(t->project_id);
		free(t->ha_cluster_label);
		free(t->ha_replica_label);
		free(t->relabel);
		relabel_free(t->relabel_rules);
		free(t);
	}
	relabel_free(cfg->relabel_rules);
	free(cfg->file);
	memset(cfg, 0, sizeof(*cfg));
}