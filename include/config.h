/*
 * config.h - relay.conf: an INI file of [section] headers and key = value
 * lines ('#' or ';' start a comment, also after a value).
 *
 * Every key lives in one table in config.c (name, type, default, bounds,
 * help). Sizes take KiB/MiB/GiB/TiB (or KB/MB/GB/TB, powers of ten) or plain
 * bytes; durations take ms, s, m, h, d. Errors are reported as
 * "FILE:LINE: reason".
 */
#ifndef RELAY_CONFIG_H
#define RELAY_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#define TENANT_ID_MAX 64

struct relabel_rules;

/* One [tenant ID] section. */
struct config_tenant {
	char *id;                   /* owned; [A-Za-z0-9_.-]{1,64} */
	char *token;                /* owned, NULL if none */
	uint8_t token_sha256[32];   /* valid when has_token_sha256 */
	int has_token_sha256;
	char *account_id;           /* owned, NULL if unset ("12") */
	char *project_id;           /* owned, NULL if unset */
	double max_samples_per_second; /* 0: no limit */
	uint64_t max_buffer_bytes;  /* 0: no limit */
	int limit_status;           /* 429 (default) or 503 */
	char *ha_cluster_label;     /* owned; valid when has_ha_cluster_label
				     * (NULL there: HA off for the tenant) */
	int has_ha_cluster_label;
	char *ha_replica_label;     /* owned, NULL: [tenancy]'s */
	uint64_t ha_failover_timeout_ms; /* 0: [tenancy]'s */
	/* Override [limits] for the tenant; 0: [limits]'s. */
	int max_labels_per_series;
	int max_label_name_length;
	int max_label_value_length;
	uint64_t max_series;        /* distinct series within the window; 0: none */
	uint64_t max_series_window_ms; /* 1h */
	char *relabel;              /* owned, NULL: none; rules file path */
	struct relabel_rules *relabel_rules; /* owned, loaded from relabel */
	struct config_tenant *next; /* owned; in file order */
};

struct config {
	char *file;                 /* owned; path it was read from */

	/* [server] */
	char *listen;               /* "127.0.0.1:9201" */
	uint64_t max_body_size;     /* 32MiB: compressed body limit */
	uint64_t max_decoded_size;  /* 64MiB: snappy-decoded limit */
	uint64_t max_inflight_bytes;/* 1GiB: decoded bytes in flight, 503 past it */
	int threads;                /* 2: HTTP worker threads */
	int max_connections;        /* 1024 */
	uint64_t idle_timeout_ms;   /* 60s: per-connection inactivity limit */
	uint64_t shutdown_timeout_ms; /* 5s: longest stop, then in-flight upstream requests are abandoned */
	uint64_t header_timeout_ms; /* 10s: request line and headers complete */
	uint64_t body_timeout_ms;   /* 10s: window of the body rate check */
	uint64_t body_min_rate;     /* 1KiB: bytes/s a body averages per window */
	int max_connections_per_ip; /* 0: no cap */
	char *admin_token;          /* owned, NULL: admin endpoints refused */
	char *tls_cert;             /* owned, NULL: plain HTTP */
	char *tls_key;
	char *tls_client_ca;

	/* [limits] */
	int max_labels_per_series;  /* 128 */
	int max_label_name_length;  /* 256 */
	int max_label_value_length; /* 16384 */

	/* [storage] */
	char *path;                 /* "./data" */
	uint64_t max_size;          /* 8GiB */
	int when_full;              /* WHEN_FULL_REJECT or WHEN_FULL_DROP_OLDEST */
	uint64_t max_age_ms;        /* 7d */
	uint64_t dedup_window_ms;   /* 10m: resent batches are not stored twice */
	uint64_t preallocate;       /* 32MiB: zeros written ahead of the data */
	uint64_t usage_retention_ms;/* 400d */
	uint64_t setaside_max_size; /* 1GiB: batches the upstream refused */
	uint64_t setaside_max_age_ms; /* 30d */

	/* [upstream] */
	char *url;                  /* may hold {tenant} {account_id} {project_id} */
	uint64_t timeout_ms;        /* 30s: whole request */
	uint64_t min_backoff_ms;    /* 100ms */
	uint64_t max_backoff_ms;    /* 5s */
	uint64_t max_request_size;  /* 8MiB: decoded bytes per forwarded request */
	int concurrency;            /* 8: forwarder threads (one request each) */
	int inflight_per_tenant;    /* 4: delivery lanes of a tenant in flight */
	char *bearer_token;         /* owned, NULL: none */
	char *basic_user;           /* owned, NULL: none */
	char *basic_password;
	char *ca_file;              /* owned, NULL: system CAs */
	char *client_cert;
	char *client_key;
	int tls_verify;             /* 1 */

	/* [tenancy] */
	char *tenant_label;         /* "tenant" */
	char *tenant_header;        /* "X-Scope-OrgID" */
	int trust_header;           /* 0 */
	char *default_tenant;       /* owned, NULL when empty */
	int max_tenants;            /* 10000: with trust_header; 0: no limit */
	char *ha_cluster_label;     /* owned, NULL: HA deduplication off (ha.h) */
	char *ha_replica_label;     /* "__replica__" */
	uint64_t ha_failover_timeout_ms; /* 30s */
	char *relabel;              /* owned, NULL: none; rules file path */
	struct relabel_rules *relabel_rules; /* owned, loaded from relabel */
	uint64_t relabel_cache_size; /* 64MiB, all threads' caches; 0: none */
	uint64_t relabel_gen;        /* this load's number, unique in the
				      * process: the caches of rule results
				      * (relabel_pass.c) hold one load's */

	/* [usage] */
	int usage_export;           /* 1: usage records as series upstream */
	uint64_t usage_export_interval_ms; /* 1m */
	char *usage_export_tenant;  /* owned, NULL: the queue with no tenant */
	char *usage_instance;       /* owned, NULL: the host name */

	/* [log] */
	int log_level;              /* enum log_level, LOG_INFO */

	struct config_tenant *tenants; /* owned list */
	int ntenants;
};

enum { WHEN_FULL_REJECT = 0, WHEN_FULL_DROP_OLDEST = 1 };

/* Fills cfg with every default (no tenants). */
void config_defaults(struct config *cfg);

/*
 * Reads path into cfg (which the call initialises with the defaults first).
 * Returns 0, or -1 with "FILE:LINE: reason" in err (cfg then holds nothing
 * that needs freeing beyond config_free). Unknown sections or keys, bad
 * values, values out of bounds and duplicate tenants are errors. The
 * relabel rules files it names are read too (relabel.h); a bad one is
 * reported with its own "FILE:LINE: reason".
 */
int config_load(struct config *cfg, const char *path, char *err, size_t errlen);

/*
 * config_load without reading the relabel rules files: for the commands
 * that only open the buffer (relay salvage, setaside, usage). A directory
 * is salvaged on whatever host it can be read, where the rules files may
 * not be; the rules act on what comes in, never on what is buffered.
 */
int config_load_storage(struct config *cfg, const char *path, char *err,
			size_t errlen);

/* Frees everything cfg owns. */
void config_free(struct config *cfg);

/* Finds a tenant by id; NULL if none. */
const struct config_tenant *config_tenant_find(const struct config *cfg,
					       const char *id, size_t idlen);

/*
 * Describes the i-th key of the fixed sections (in relay.conf order), for
 * help output and tests: returns its name, or NULL past the last key.
 * *section, *def and *help (each may be NULL) point to static strings;
 * *def is the default as written in relay.conf, NULL when unset.
 */
const char *config_key_info(size_t i, const char **section, const char **def,
			    const char **help);

/*
 * Makes next keep cur's value of every key that a reload cannot change
 * (all but [tenant] sections, [tenancy], [server] admin_token, [upstream]
 * url and [log] level), and lists in changed ("listen, threads") those
 * whose value next had differed. Returns how many differed, or -1 when out
 * of memory.
 */
int config_keep_fixed(struct config *next, const struct config *cur,
		      char *changed, size_t changedlen);

/* Parses "8GiB", "32MiB", "1000" ... Returns 0 or -1. */
int config_parse_size(const char *s, uint64_t *out);

/* Parses "30s", "100ms", "5m", "1h", "7d". Returns 0 or -1. */
int config_parse_duration(const char *s, uint64_t *out_ms);

#endif
