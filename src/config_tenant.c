/*
 * config_tenant.c - the keys of relay.conf's [tenant ID] sections (see
 * config.h): their names, bounds and checks, and the lookup of a tenant's
 * section. config.c reads the file and starts each section; the keys of
 * the fixed sections are its config_keys[].
 */
#include "config_int.h"
#include "labels.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Keys of a [tenant ID] section; bit i of parser.tenant_seen. */
enum { TK_TOKEN, TK_SHA256, TK_ACCOUNT, TK_PROJECT, TK_RATE, TK_BUFFER, TK_STATUS,
       TK_HA_CLUSTER, TK_HA_REPLICA, TK_HA_TIMEOUT, TK_MAX_LABELS,
       TK_NAME_LENGTH, TK_VALUE_LENGTH, TK_MAX_SERIES, TK_SERIES_WINDOW,
       TK_RELABEL, TK_COUNT };
static const char *const tenant_keys[TK_COUNT] = {
	"token", "token_sha256", "account_id", "project_id",
	"max_samples_per_second", "max_buffer_bytes", "limit_status",
	"ha_cluster_label", "ha_replica_label", "ha_failover_timeout",
	"max_labels_per_series", "max_label_name_length",
	"max_label_value_length", "max_series", "max_series_window",
	"relabel"
};

/* Bounds of the tenant's integer keys, as [limits] has them (max_series:
 * 0 is none). */
static const struct tenant_bound {
	int key;
	uint64_t min, max;
} tenant_bounds[] = {
	{TK_MAX_LABELS, 1, 10000},
	{TK_NAME_LENGTH, 1, 65536},
	{TK_VALUE_LENGTH, 1, 1048576},
	{TK_MAX_SERIES, 0, 1000000000},
};

/* A VictoriaMetrics account or project id: 0..4294967295 in decimal. */
static int valid_vm_id(const char *v)
{
	size_t n = strspn(v, "0123456789");

	return v[n] == '\0' && n <= 10 && (n < 10 || strcmp(v, "4294967295") <= 0);
}

/* A rate such as "1000" or "0.5": digits and a point only (no sign, no
 * exponent, no hex). Returns 0 or -1. */
static int parse_rate(const char *v, double *out)
{
	char *end;
	double d;

	if (*v == '\0' || v[strspn(v, "0123456789.")] != '\0')
		return -1;
	errno = 0;
	d = strtod(v, &end);
	if (*end != '\0' || errno != 0 || !isfinite(d))
		return -1;
	*out = d;
	return 0;
}

static int parse_sha256(const char *v, uint8_t out[32])
{
	static const char hex[] = "0123456789abcdef";

	if (strlen(v) != 64 || strspn(v, "0123456789abcdefABCDEF") != 64)
		return -1;
	for (int i = 0; i < 64; i++) {
		int d = (int)(strchr(hex, tolower((unsigned char)v[i])) - hex);
		out[i / 2] = (uint8_t)(i % 2 ? out[i / 2] | d : d << 4);
	}
	return 0;
}

/* Sets the tenant's integer key k (a TK_ with a row in tenant_bounds)
 * from v. Returns 0 or -1. */
static int tenant_number(struct parser *p, int k, const char *key,
			 const char *v)
{
	struct config_tenant *t = p->tenant;
	const struct tenant_bound *b = tenant_bounds;
	unsigned long long n;
	char *end;

	while (b->key != k)
		b++;
	errno = 0;
	n = strtoull(v, &end, 10);
	if (*v < '0' || *v > '9' || *end != '\0' || errno != 0 || n < b->min ||
	    n > b->max)
		return config_fail(p, p->line, "%s: \"%s\" is not a number in %llu..%llu",
			    key, v, (unsigned long long)b->min,
			    (unsigned long long)b->max);
	if (k == TK_MAX_SERIES)
		t->max_series = n;
	else
		*(k == TK_MAX_LABELS ? &t->max_labels_per_series :
		  k == TK_NAME_LENGTH ? &t->max_label_name_length :
		  &t->max_label_value_length) = (int)n;
	return 0;
}

/* Sets one key of the current [tenant ID] section. Returns 0 or -1. */
int config_tenant_set(struct parser *p, const char *key, const char *v)
{
	struct config_tenant *t = p->tenant;
	const struct config_tenant *o;
	int i;

	for (i = 0; i < TK_COUNT && strcmp(key, tenant_keys[i]) != 0; i++)
		;
	if (i == TK_COUNT)
		return config_fail(p, p->line, "unknown key \"%s\" in [tenant %s]", key, t->id);
	if (p->tenant_seen & (1u << i))
		return config_fail(p, p->line, "duplicate key \"%s\" in [tenant %s]", key, t->id);
	p->tenant_seen |= 1u << i;

	switch (i) {
	case TK_TOKEN:
		if (*v != '\0' && t->has_token_sha256)
			break;
		for (o = p->cfg->tenants; *v != '\0' && o != NULL; o = o->next)
			if (o != t && o->token != NULL && strcmp(o->token, v) == 0)
				return config_fail(p, p->line, "token of tenant \"%s\" is already "
					    "used by tenant \"%s\"", t->id, o->id);
		return config_set_string(p, &t->token, v);
	case TK_SHA256:
		if (*v == '\0')
			return 0;
		if (t->token != NULL)
			break;
		if (parse_sha256(v, t->token_sha256) < 0)
			return config_fail(p, p->line, "token_sha256: must be 64 hex digits "
				    "(sha256sum of the token)");
		t->has_token_sha256 = 1;
		for (o = p->cfg->tenants; o != NULL; o = o->next)
			if (o != t && o->has_token_sha256 &&
			    memcmp(o->token_sha256, t->token_sha256, 32) == 0)
				return config_fail(p, p->line, "token of tenant \"%s\" is already "
					    "used by tenant \"%s\"", t->id, o->id);
		return 0;
	case TK_ACCOUNT:
	case TK_PROJECT:
		if (!valid_vm_id(v))
			return config_fail(p, p->line, "%s: \"%s\" is not a number in "
				    "0..4294967295", key, v);
		return config_set_string(p, i == TK_ACCOUNT ? &t->account_id : &t->project_id, v);
	case TK_RATE:
		if (parse_rate(v, &t->max_samples_per_second) < 0)
			return config_fail(p, p->line, "%s: \"%s\" is not a non-negative number",
				    key, v);
		return 0;
	case TK_BUFFER:
		if (config_parse_size(v, &t->max_buffer_bytes) < 0)
			return config_fail(p, p->line, "%s: \"%s\" is not a size (use e.g. "
				    "512MiB, 8GiB)", key, v);
		return 0;
	case TK_HA_CLUSTER:
	case TK_HA_REPLICA:
		if (*v != '\0' && !labels_name_valid((const uint8_t *)v, strlen(v)))
			return config_fail(p, p->line, "%s: \"%s\" is not a label name", key, v);
		if (i == TK_HA_REPLICA && *v == '\0')
			return config_fail(p, p->line, "%s: must not be empty", key);
		if (i == TK_HA_CLUSTER)
			t->has_ha_cluster_label = 1;
		return config_set_string(p, i == TK_HA_CLUSTER ? &t->ha_cluster_label :
				  &t->ha_replica_label, v);
	case TK_MAX_LABELS:
	case TK_NAME_LENGTH:
	case TK_VALUE_LENGTH:
	case TK_MAX_SERIES:
		return tenant_number(p, i, key, v);
	case TK_SERIES_WINDOW:
		if (config_parse_duration(v, &t->max_series_window_ms) < 0 ||
		    t->max_series_window_ms < 1000 ||
		    t->max_series_window_ms > 30 * 86400000ULL)
			return config_fail(p, p->line, "%s: \"%s\" is not a duration from 1s "
				    "to 30d", key, v);
		return 0;
	case TK_HA_TIMEOUT:
		if (config_parse_duration(v, &t->ha_failover_timeout_ms) < 0 ||
		    t->ha_failover_timeout_ms < 1000)
			return config_fail(p, p->line, "%s: \"%s\" is not a duration of 1s "
				    "or more", key, v);
		return 0;
	case TK_RELABEL:
		return config_set_string(p, &t->relabel, v);
	default:
		if (strcmp(v, "429") != 0 && strcmp(v, "503") != 0)
			return config_fail(p, p->line, "%s: \"%s\" must be 429 or 503", key, v);
		t->limit_status = atoi(v);
		return 0;
	}
	return config_fail(p, p->line, "tenant \"%s\" sets both token and token_sha256; "
		    "keep one", t->id);
}


const struct config_tenant *config_tenant_find(const struct config *cfg, const char *id,
					       size_t idlen)
{
	for (const struct config_tenant *t = cfg->tenants; t != NULL; t = t->next)
		if (strlen(t->id) == idlen && memcmp(t->id, id, idlen) == 0)
			return t;
	return NULL;
}
