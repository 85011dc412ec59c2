/*
 * test_config.c - relay.conf parsing: defaults, every value type, every
 * error with its FILE:LINE, tenants, the size and duration parsers, and the
 * shipped relay.conf (read from the repository root, where tests run).
 */
#include "config.h"
#include "log.h"
#include "unit.h"

#include <stdint.h>
#include <unistd.h>

/* Room for any message here; small enough that a failed CHECK_STR of two
 * such buffers fits the harness's message. */
#define ERRLEN 200

static char dir[48];
static char conf[64];

/* Writes text to <dir>/relay.conf and returns that path. */
static const char *write_conf(const char *text)
{
	FILE *f = fopen(conf, "w");

	if (f == NULL)
		return NULL;
	fputs(text, f);
	fclose(f);
	return conf;
}

/* Loads text as a config file; err holds the error, "" on success. */
static int load(const char *text, struct config *cfg, char *err, size_t errlen)
{
	if (write_conf(text) == NULL) {
		snprintf(err, errlen, "cannot write %s", conf);
		memset(cfg, 0, sizeof(*cfg));
		return -1;
	}
	return config_load(cfg, conf, err, errlen);
}

/* Checks every default named in config.h; a failure ends the caller's test
 * once it returns. */
static void check_defaults(const struct config *cfg)
{
	CHECK_STR(cfg->listen, "127.0.0.1:9201");
	CHECK_EQ_INT(cfg->max_body_size, 32ULL << 20);
	CHECK_EQ_INT(cfg->max_decoded_size, 64ULL << 20);
	CHECK_EQ_INT(cfg->max_inflight_bytes, 1ULL << 30);
	CHECK_EQ_INT(cfg->threads, 2);
	CHECK_EQ_INT(cfg->max_connections, 1024);
	CHECK_EQ_INT(cfg->idle_timeout_ms, 60000);
	CHECK(cfg->admin_token == NULL);
	CHECK(cfg->tls_cert == NULL && cfg->tls_key == NULL && cfg->tls_client_ca == NULL);
	CHECK_EQ_INT(cfg->max_labels_per_series, 128);
	CHECK_EQ_INT(cfg->max_label_name_length, 256);
	CHECK_EQ_INT(cfg->max_label_value_length, 16384);
	CHECK_STR(cfg->path, "./data");
	CHECK_EQ_INT(cfg->max_size, 8ULL << 30);
	CHECK_EQ_INT(cfg->when_full, WHEN_FULL_REJECT);
	CHECK_EQ_INT(cfg->max_age_ms, 7ULL * 86400000);
	CHECK_EQ_INT(cfg->dedup_window_ms, 600000);
	CHECK_EQ_INT(cfg->usage_retention_ms, 400ULL * 86400000);
	CHECK_STR(cfg->url, "http://127.0.0.1:8428/api/v1/write");
	CHECK_EQ_INT(cfg->timeout_ms, 30000);
	CHECK_EQ_INT(cfg->min_backoff_ms, 100);
	CHECK_EQ_INT(cfg->max_backoff_ms, 5000);
	CHECK_EQ_INT(cfg->max_request_size, 8ULL << 20);
	CHECK_EQ_INT(cfg->concurrency, 8);
	CHECK(cfg->bearer_token == NULL && cfg->basic_user == NULL &&
	      cfg->basic_password == NULL);
	CHECK(cfg->ca_file == NULL && cfg->client_cert == NULL && cfg->client_key == NULL);
	CHECK_EQ_INT(cfg->tls_verify, 1);
	CHECK_STR(cfg->tenant_label, "tenant");
	CHECK_STR(cfg->tenant_header, "X-Scope-OrgID");
	CHECK_EQ_INT(cfg->trust_header, 0);
	CHECK(cfg->default_tenant == NULL);
	CHECK_EQ_INT(cfg->log_level, LOG_INFO);
	CHECK(cfg->tenants == NULL);
	CHECK_EQ_INT(cfg->ntenants, 0);
}

static void test_defaults(void)
{
	struct config cfg;

	config_defaults(&cfg);
	check_defaults(&cfg);
	config_free(&cfg);
}

static void test_empty_file_gives_defaults(void)
{
	struct config cfg;
	char err[ERRLEN];
	int rc;

	rc = load("# nothing but a comment\n\n", &cfg, err, sizeof(err));
	CHECK_STR(err, "");
	CHECK_EQ_INT(rc, 0);
	CHECK_STR(cfg.file, conf);
	check_defaults(&cfg);
	config_free(&cfg);
}

static void test_every_type(void)
{
	static const char text[] =
		"[server]\n"
		"listen = 0.0.0.0:9999\n"
		"max_body_size = 1MiB\n"
		"max_decoded_size = 2MB\n"
		"max_inflight_bytes = 1.5GiB\n"
		"threads = 64\n"
		"max_connections = 100000\n"
		"idle_timeout = 90s\n"
		"admin_token = adm1n\n"
		"tls_cert = /etc/relay/cert.pem\n"
		"tls_key = /etc/relay/key.pem\n"
		"tls_client_ca = /etc/relay/ca.pem\n"
		"[limits]\n"
		"max_labels_per_series = 40\n"
		"max_label_name_length = 100\n"
		"max_label_value_length = 2048\n"
		"[storage]\n"
		"path = /var/lib/relay\n"
		"max_size = 1TiB\n"
		"when_full = drop_oldest\n"
		"max_age = 2d\n"
		"dedup_window = 0\n"
		"usage_retention = 30d\n"
		"[upstream]\n"
		"url = https://vm:8480/insert/{account_id}:{project_id}/prometheus/api/v1/write\n"
		"timeout = 5s\n"
		"min_backoff = 250ms\n"
		"max_backoff = 2m\n"
		"max_request_size = 64KiB\n"
		"concurrency = 16\n"
		"basic_user = relay\n"
		"basic_password = pw\n"
		"ca_file = /etc/ssl/vm.pem\n"
		"client_cert = /etc/relay/client.pem\n"
		"client_key = /etc/relay/client.key\n"
		"tls_verify = off\n"
		"[tenancy]\n"
		"label = org_id\n"
		"header = X-Tenant\n"
		"trust_header = yes\n"
		"default = acme\n"
		"[log]\n"
		"level = debug\n";
	struct config cfg;
	char err[ERRLEN];
	int rc = load(text, &cfg, err, sizeof(err));

	CHECK_STR(err, "");
	CHECK_EQ_INT(rc, 0);
	CHECK_STR(cfg.listen, "0.0.0.0:9999");
	CHECK_EQ_INT(cfg.max_body_size, 1 << 20);
	CHECK_EQ_INT(cfg.max_decoded_size, 2000000);
	CHECK_EQ_INT(cfg.max_inflight_bytes, 3ULL << 29);
	CHECK_EQ_INT(cfg.threads, 64);
	CHECK_EQ_INT(cfg.max_connections, 100000);
	CHECK_EQ_INT(cfg.idle_timeout_ms, 90000);
	CHECK_STR(cfg.admin_token, "adm1n");
	CHECK_STR(cfg.tls_cert, "/etc/relay/cert.pem");
	CHECK_STR(cfg.tls_key, "/etc/relay/key.pem");
	CHECK_STR(cfg.tls_client_ca, "/etc/relay/ca.pem");
	CHECK_EQ_INT(cfg.max_labels_per_series, 40);
	CHECK_EQ_INT(cfg.max_label_name_length, 100);
	CHECK_EQ_INT(cfg.max_label_value_length, 2048);
	CHECK_STR(cfg.path, "/var/lib/relay");
	CHECK_EQ_INT(cfg.max_size, 1ULL << 40);
	CHECK_EQ_INT(cfg.when_full, WHEN_FULL_DROP_OLDEST);
	CHECK_EQ_INT(cfg.max_age_ms, 2 * 86400000ULL);
	CHECK_EQ_INT(cfg.dedup_window_ms, 0);
	CHECK_EQ_INT(cfg.usage_retention_ms, 30 * 86400000ULL);
	CHECK_STR(cfg.url, "https://vm:8480/insert/{account_id}:{project_id}"
		  "/prometheus/api/v1/write");
	CHECK_EQ_INT(cfg.timeout_ms, 5000);
	CHECK_EQ_INT(cfg.min_backoff_ms, 250);
	CHECK_EQ_INT(cfg.max_backoff_ms, 120000);
	CHECK_EQ_INT(cfg.max_request_size, 65536);
	CHECK_EQ_INT(cfg.concurrency, 16);
	CHECK(cfg.bearer_token == NULL);
	CHECK_STR(cfg.basic_user, "relay");
	CHECK_STR(cfg.basic_password, "pw");
	CHECK_STR(cfg.ca_file, "/etc/ssl/vm.pem");
	CHECK_STR(cfg.client_cert, "/etc/relay/client.pem");
	CHECK_STR(cfg.client_key, "/etc/relay/client.key");
	CHECK_EQ_INT(cfg.tls_verify, 0);
	CHECK_STR(cfg.tenant_label, "org_id");
	CHECK_STR(cfg.tenant_header, "X-Tenant");
	CHECK_EQ_INT(cfg.trust_header, 1);
	CHECK_STR(cfg.default_tenant, "acme");
	CHECK_EQ_INT(cfg.log_level, LOG_DEBUG);
	CHECK_EQ_INT(cfg.ntenants, 0);
	config_free(&cfg);
	CHECK(cfg.listen == NULL && cfg.file == NULL);
}

static void test_comments_and_whitespace(void)
{
	static const char text[] =
		"; a comment\n"
		"   # an indented comment\n"
		"\n"
		"[server]   # after a header\n"
		"\tlisten\t=\t10.0.0.1:80   # after a value\r\n"
		"admin_token = a#b;c ; the rest is a comment\n"
		"tls_cert=/c.pem;x\n"
		"tls_key =   /k.pem\t\n"
		"[ storage ]\n"
		"path = /data dir  \n"
		"[upstream]\n"
		"url = http://vm/api/v1/write?a=1;b=2#frag\n"
		"bearer_token =   \n";
	struct config cfg;
	char err[ERRLEN];
	int rc = load(text, &cfg, err, sizeof(err));

	CHECK_STR(err, "");
	CHECK_EQ_INT(rc, 0);
	CHECK_STR(cfg.listen, "10.0.0.1:80");
	CHECK_STR(cfg.admin_token, "a#b;c");
	CHECK_STR(cfg.tls_cert, "/c.pem;x");
	CHECK_STR(cfg.tls_key, "/k.pem");
	CHECK_STR(cfg.path, "/data dir");
	CHECK_STR(cfg.url, "http://vm/api/v1/write?a=1;b=2#frag");
	CHECK(cfg.bearer_token == NULL);
	config_free(&cfg);
}

static void test_empty_optional_values_are_null(void)
{
	struct config cfg;
	char err[ERRLEN];
	int rc = load("[server]\nadmin_token =\n[tenancy]\ndefault =\n"
		      "[upstream]\nca_file = # unset\n", &cfg, err, sizeof(err));

	CHECK_STR(err, "");
	CHECK_EQ_INT(rc, 0);
	CHECK(cfg.admin_token == NULL);
	CHECK(cfg.default_tenant == NULL);
	CHECK(cfg.ca_file == NULL);
	config_free(&cfg);
}

static void test_bool_words(void)
{
	static const struct { const char *word; int value; } words[] = {
		{"true", 1}, {"yes", 1}, {"on", 1}, {"1", 1},
		{"false", 0}, {"no", 0}, {"off", 0}, {"0", 0},
	};
	struct config cfg;
	char text[128], err[ERRLEN];

	for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++) {
		snprintf(text, sizeof(text), "[tenancy]\ntrust_header = %s\n", words[i].word);
		int rc = load(text, &cfg, err, sizeof(err));
		int got = cfg.trust_header;
		config_free(&cfg);
		CHECK_STR(err, "");
		CHECK_EQ_INT(rc, 0);
		CHECK_EQ_INT(got, words[i].value);
	}
}

static void test_log_levels(void)
{
	static const struct { const char *name; int level; } levels[] = {
		{"debug", LOG_DEBUG}, {"info", LOG_INFO}, {"warn", LOG_WARN},
		{"error", LOG_ERROR},
	};
	struct config cfg;
	char text[128], err[ERRLEN];

	for (size_t i = 0; i < sizeof(levels) / sizeof(levels[0]); i++) {
		enum log_level want;
		snprintf(text, sizeof(text), "[log]\nlevel = %s\n", levels[i].name);
		int rc = load(text, &cfg, err, sizeof(err));
		int got = cfg.log_level;
		config_free(&cfg);
		CHECK_STR(err, "");
		CHECK_EQ_INT(rc, 0);
		CHECK_EQ_INT(got, levels[i].level);
		CHECK_EQ_INT(log_parse_level(levels[i].name, &want), 0);
		CHECK_EQ_INT(got, want);
	}
}

static void test_size_parser(void)
{
	static const struct { const char *s; uint64_t v; } good[] = {
		{"0", 0}, {"1", 1}, {"1024", 1024}, {"1B", 1}, {"1KiB", 1024},
		{"32MiB", 32ULL << 20}, {"8GiB", 8ULL << 30}, {"2TiB", 2ULL << 40},
		{"1KB", 1000}, {"3MB", 3000000}, {"1GB", 1000000000},
		{"1TB", 1000000000000ULL}, {"1.5GiB", 3ULL << 29}, {"0.5KiB", 512},
		{"1.25KB", 1250}, {"1.0", 1}, {"0.001KB", 1},
		{"18446744073709551615", UINT64_MAX},
		{"16777215TiB", 16777215ULL << 40},
	};
	static const char *const bad[] = {
		"", "-1", "+1", " 1", "1 ", "1.5", "1.5B", "0.3KiB", "1.KiB", ".5KiB",
		"8XB", "8 GiB", "8gib", "1kib", "KiB", "1e3", "0x10",
		"16777216TiB", "18446744073709551616", "99999999999999999999KiB",
		"1.00000000000000000001KiB",
	};
	uint64_t v;

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		v = 12345;
		CHECK_STR(config_parse_size(good[i].s, &v) == 0 ? good[i].s : "(failed)",
			  good[i].s);
		CHECK_EQ_INT(v, good[i].v);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		v = 12345;
		CHECK_STR(config_parse_size(bad[i], &v) < 0 ? "(failed)" : bad[i], "(failed)");
		CHECK_EQ_INT(v, 12345);
	}
}

static void test_duration_parser(void)
{
	static const struct { const char *s; uint64_t ms; } good[] = {
		{"0", 0}, {"0s", 0}, {"0ms", 0}, {"1ms", 1}, {"100ms", 100},
		{"30s", 30000}, {"5m", 300000}, {"1h", 3600000}, {"7d", 604800000},
		{"400d", 400ULL * 86400000}, {"213503982334d", 213503982334ULL * 86400000},
	};
	static const char *const bad[] = {
		"", "5", "00", "1.5s", "-1s", "+1s", "1w", "1 s", "1S", "1sec", "10ms5",
		"s", "1hm", "213503982335d", "18446744073709551616ms",
	};
	uint64_t v;

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		v = 12345;
		CHECK_STR(config_parse_duration(good[i].s, &v) == 0 ? good[i].s : "(failed)",
			  good[i].s);
		CHECK_EQ_INT(v, good[i].ms);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		v = 12345;
		CHECK_STR(config_parse_duration(bad[i], &v) < 0 ? "(failed)" : bad[i],
			  "(failed)");
		CHECK_EQ_INT(v, 12345);
	}
}

#define SHA_TEST "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"

/* Each text fails with "<path>:<want>". */
static const struct { const char *text, *want; } error_cases[] = {
	{"[server]\nlisen = 127.0.0.1:1\n",
	 "2: unknown key \"lisen\" in [server]"},
	{"[server]\n\n\n\n[storage]\nmax_size = 8XB\n",
	 "6: max_size: \"8XB\" is not a size (use e.g. 512MiB, 8GiB)"},
	{"[server]\nthreads = 0\n", "2: threads: 0 is out of range 1..64"},
	{"[server]\nthreads = 65\n", "2: threads: 65 is out of range 1..64"},
	{"[server]\nthreads = -1\n", "2: threads: -1 is out of range 1..64"},
	{"[server]\nthreads = two\n", "2: threads: \"two\" is not an integer"},
	{"[server]\nthreads = 2.5\n", "2: threads: \"2.5\" is not an integer"},
	{"[server]\nmax_connections = 99999999999999999999\n",
	 "2: max_connections: \"99999999999999999999\" is not an integer"},
	{"[storage]\nmax_size = 1000KiB\n",
	 "2: max_size: 1000KiB is below the minimum 1MiB"},
	{"[upstream]\nmax_request_size = 31MiB\n",
	 "2: max_request_size: 31MiB is out of range 64KiB..30MiB"},
	{"[upstream]\nmax_request_size = 65535\n",
	 "2: max_request_size: 65535 is out of range 64KiB..30MiB"},
	{"[server]\nidle_timeout = 60\n",
	 "2: idle_timeout: \"60\" is not a duration (use e.g. 500ms, 30s, 5m, 1h, 7d)"},
	{"[storage]\ndedup_window = 2d\n", "2: dedup_window: 2d is out of range 0..1d"},
	{"[upstream]\ntls_verify = maybe\n",
	 "2: tls_verify: \"maybe\" is not a boolean (use true or false)"},
	{"[storage]\nwhen_full = panic\n",
	 "2: when_full: \"panic\" is not one of reject, drop_oldest"},
	{"[log]\nlevel = trace\n",
	 "2: level: \"trace\" is not one of debug, info, warn, error"},
	{"[upstream]\nurl = ftp://vm/write\n",
	 "2: url: \"ftp://vm/write\" must start with http:// or https://"},
	{"[upstream]\nurl = 127.0.0.1:8428\n",
	 "2: url: \"127.0.0.1:8428\" must start with http:// or https://"},
	{"[server]\nlisten =\n", "2: listen: must not be empty"},
	{"[storage]\npath = # nowhere\n", "2: path: must not be empty"},
	{"[tenancy]\nlabel = __tenant\n",
	 "2: label: \"__tenant\" is not a valid label name "
	 "([a-zA-Z_][a-zA-Z0-9_]*, not starting with __)"},
	{"[tenancy]\nlabel = 1tenant\n",
	 "2: label: \"1tenant\" is not a valid label name "
	 "([a-zA-Z_][a-zA-Z0-9_]*, not starting with __)"},
	{"[tenancy]\nlabel = ten-ant\n",
	 "2: label: \"ten-ant\" is not a valid label name "
	 "([a-zA-Z_][a-zA-Z0-9_]*, not starting with __)"},
	{"[tenancy]\ndefault = a b\n",
	 "2: default: \"a b\" is not a valid tenant id (1 to 64 of A-Z a-z 0-9 _ . -)"},
	{"[nope]\n", "1: unknown section [nope]"},
	{"[server extra]\n", "1: unknown section [server extra]"},
	{"[Server]\n", "1: unknown section [Server]"},
	{"[server\n", "1: expected \"]\" at the end of a section header"},
	{"threads = 2\n", "1: key \"threads\" before any [section]"},
	{"[server]\nthreads\n", "2: expected \"key = value\" or \"[section]\""},
	{"[server]\n= 2\n", "2: expected \"key = value\" or \"[section]\""},
	{"[server]\nthreads = 2\n[limits]\n[server]\nthreads = 3\n",
	 "5: duplicate key \"threads\" in [server] (first set on line 2)"},
	{"[tenant]\n", "1: [tenant] needs an id, e.g. [tenant acme]"},
	{"[tenant a/b]\n",
	 "1: invalid tenant id \"a/b\" (1 to 64 of A-Z a-z 0-9 _ . -)"},
	{"[tenant acme]\ntoken = a\n\n[tenant other]\n[tenant acme]\n",
	 "5: duplicate tenant \"acme\""},
	{"[tenant acme]\ntoken = a\ntoken = b\n",
	 "3: duplicate key \"token\" in [tenant acme]"},
	{"[tenant acme]\ntokn = a\n", "2: unknown key \"tokn\" in [tenant acme]"},
	{"[tenant acme]\ntoken = a\ntoken_sha256 = " SHA_TEST "\n",
	 "3: tenant \"acme\" sets both token and token_sha256; keep one"},
	{"[tenant acme]\ntoken_sha256 = " SHA_TEST "\ntoken = a\n",
	 "3: tenant \"acme\" sets both token and token_sha256; keep one"},
	{"[tenant a]\ntoken = s3cret\n[tenant b]\naccount_id = 1\ntoken = s3cret\n",
	 "5: token of tenant \"b\" is already used by tenant \"a\""},
	{"[tenant a]\ntoken_sha256 = " SHA_TEST "\n[tenant b]\ntoken_sha256 = "
	 SHA_TEST "\n",
	 "4: token of tenant \"b\" is already used by tenant \"a\""},
	{"[tenant a]\ntoken_sha256 = abc\n",
	 "2: token_sha256: must be 64 hex digits (sha256sum of the token)"},
	{"[tenant a]\ntoken_sha256 = "
	 "gf86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08\n",
	 "2: token_sha256: must be 64 hex digits (sha256sum of the token)"},
	{"[tenant a]\naccount_id = 12a\n",
	 "2: account_id: \"12a\" is not a number in 0..4294967295"},
	{"[tenant a]\nproject_id = 4294967296\n",
	 "2: project_id: \"4294967296\" is not a number in 0..4294967295"},
	{"[tenant a]\nmax_samples_per_second = -1\n",
	 "2: max_samples_per_second: \"-1\" is not a non-negative number"},
	{"[tenant a]\nmax_samples_per_second = 1e3\n",
	 "2: max_samples_per_second: \"1e3\" is not a non-negative number"},
	{"[tenant a]\nmax_samples_per_second = .\n",
	 "2: max_samples_per_second: \".\" is not a non-negative number"},
	{"[tenant a]\nmax_buffer_bytes = 1.5B\n",
	 "2: max_buffer_bytes: \"1.5B\" is not a size (use e.g. 512MiB, 8GiB)"},
	{"[tenant a]\nmax_labels_per_series = 0\n",
	 "2: max_labels_per_series: \"0\" is not a number in 1..10000"},
	{"[tenant a]\nmax_label_value_length = 1048577\n",
	 "2: max_label_value_length: \"1048577\" is not a number in 1..1048576"},
	{"[tenant a]\nmax_series = -1\n",
	 "2: max_series: \"-1\" is not a number in 0..1000000000"},
	{"[tenant a]\nmax_series_window = 500ms\n",
	 "2: max_series_window: \"500ms\" is not a duration from 1s to 30d"},
	{"[tenant a]\nlimit_status = 500\n",
	 "2: limit_status: \"500\" must be 429 or 503"},
	{"[tenant a]\nha_cluster_label = 1x\n",
	 "2: ha_cluster_label: \"1x\" is not a label name"},
	{"[tenant a]\nha_replica_label =\n",
	 "2: ha_replica_label: must not be empty"},
	{"[tenant a]\nha_failover_timeout = 500ms\n",
	 "2: ha_failover_timeout: \"500ms\" is not a duration of 1s or more"},
	{"[tenancy]\nha_replica_label = a-b\n",
	 "2: ha_replica_label: \"a-b\" is not a valid label name ([a-zA-Z_][a-zA-Z0-9_]*)"},
	{"[tenancy]\nha_cluster_label = cluster\nha_replica_label = cluster\n",
	 "3: ha_replica_label must differ from ha_cluster_label and from label"},
	{"[tenancy]\nha_cluster_label = cluster\nha_replica_label = tenant\n",
	 "3: ha_replica_label must differ from ha_cluster_label and from label"},
	{"[tenancy]\nha_cluster_label = c\n[tenant x]\nha_replica_label = c\n",
	 "2: ha_replica_label must differ from ha_cluster_label and from label"
	 " in tenant x"},
	{"[upstream]\nmin_backoff = 1m\n",
	 "2: max_backoff must not be less than min_backoff"},
	{"[upstream]\nmax_backoff = 50ms\n",
	 "2: max_backoff must not be less than min_backoff"},
	{"[upstream]\nmax_backoff = 50ms\n\nmin_backoff = 1s\n",
	 "4: max_backoff must not be less than min_backoff"},
	{"[upstream]\nmin_backoff = 1s\n# later\nmax_backoff = 50ms\n[log]\n",
	 "4: max_backoff must not be less than min_backoff"},
	{"[server]\ntls_cert = /c.pem\n",
	 "2: tls_cert and tls_key must be set together"},
	{"[upstream]\nclient_key = /k.pem\n",
	 "2: client_cert and client_key must be set together"},
	{"[server]\n\nlisten = 127.0.0.1:99999\n",
	 "3: listen: \"127.0.0.1:99999\": the port must be a number from 1 to 65535"},
	{"[server]\nlisten = 127.0.0.1:0\n",
	 "2: listen: \"127.0.0.1:0\": the port must be a number from 1 to 65535"},
	{"[server]\nlisten = 127.0.0.1:\n",
	 "2: listen: \"127.0.0.1:\": the port must be a number from 1 to 65535"},
	{"[server]\nlisten = 127.0.0.1:-1\n",
	 "2: listen: \"127.0.0.1:-1\": the port must be a number from 1 to 65535"},
	{"[server]\nlisten = 127.0.0.1:0x50\n",
	 "2: listen: \"127.0.0.1:0x50\": the port must be a number from 1 to 65535"},
	{"[server]\nlisten = 127.0.0.1:000080\n",
	 "2: listen: \"127.0.0.1:000080\": the port must be a number from 1 to 65535"},
	{"[server]\nlisten = 127.0.0.1\n",
	 "2: listen: \"127.0.0.1\" is not host:port"},
	{"[server]\nlisten = ::1:9201\n",
	 "2: listen: \"::1:9201\": an IPv6 address goes in brackets, as [::1]:9201"},
	{"[server]\nlisten = [::1:9201\n",
	 "2: listen: \"[::1:9201\": no closing ] after the IPv6 address"},
	{"[server]\nlisten = local host:9201\n",
	 "2: listen: \"local host:9201\": \"local host\" is not a host name or address"},
	{"[server]\nlisten = [127.0.0.1]:9201\n",
	 "2: listen: \"[127.0.0.1]:9201\": \"127.0.0.1\" is not an IPv6 address"},
};

static void test_errors(void)
{
	struct config cfg;
	char err[ERRLEN], want[ERRLEN];

	for (size_t i = 0; i < sizeof(error_cases) / sizeof(error_cases[0]); i++) {
		int rc = load(error_cases[i].text, &cfg, err, sizeof(err));
		config_free(&cfg);
		snprintf(want, sizeof(want), "%s:%s", conf, error_cases[i].want);
		CHECK_STR(err, want);
		CHECK_EQ_INT(rc, -1);
	}
}

/* HA keys: [tenancy]'s defaults, and a tenant's own (an empty cluster
 * label turns HA off for it). */
static void test_ha_keys(void)
{
	static const char text[] =
		"[tenancy]\n"
		"ha_cluster_label = cluster\n"
		"ha_failover_timeout = 10s\n"
		"[tenant a]\n"
		"ha_replica_label = __prometheus_replica__\n"
		"ha_failover_timeout = 1m\n"
		"[tenant b]\n"
		"ha_cluster_label =\n"
		"[tenant c]\n";
	struct config cfg;
	const struct config_tenant *t;
	char err[ERRLEN];
	int rc = load(text, &cfg, err, sizeof(err));

	CHECK_STR(err, "");
	CHECK_EQ_INT(rc, 0);
	CHECK_STR(cfg.ha_cluster_label, "cluster");
	CHECK_STR(cfg.ha_replica_label, "__replica__");
	CHECK_EQ_INT(cfg.ha_failover_timeout_ms, 10000);
	t = cfg.tenants;
	CHECK(!t->has_ha_cluster_label);
	CHECK_STR(t->ha_replica_label, "__prometheus_replica__");
	CHECK_EQ_INT(t->ha_failover_timeout_ms, 60000);
	t = t->next;
	CHECK(t->has_ha_cluster_label && t->ha_cluster_label == NULL);
	t = t->next;
	CHECK(!t->has_ha_cluster_label && t->ha_replica_label == NULL);
	CHECK_EQ_INT(t->ha_failover_timeout_ms, 0);
	config_free(&cfg);
	CHECK(load("", &cfg, err, sizeof(err)) == 0);
	CHECK(cfg.ha_cluster_label == NULL);
	CHECK_STR(cfg.ha_replica_label, "__replica__");
	CHECK_EQ_INT(cfg.ha_failover_timeout_ms, 30000);
	config_free(&cfg);
}

/* listen: the forms that load, and a host that does not resolve. */
static void test_listen_forms(void)
{
	static const char *const good[] = {
		"127.0.0.1:1", "127.0.0.1:65535", "0.0.0.0:9201", "[::1]:9201",
		"[::]:9201", ":9201", "localhost:9201",
	};
	struct config cfg;
	char text[128], err[ERRLEN], want[ERRLEN];
	int rc;

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		snprintf(text, sizeof(text), "[server]\nlisten = %s\n", good[i]);
		rc = load(text, &cfg, err, sizeof(err));
		CHECK_STR(rc == 0 ? cfg.listen : err, good[i]);
		config_free(&cfg);
	}
	rc = load("[server]\nlisten = no-such-host.invalid:9201\n", &cfg, err, sizeof(err));
	config_free(&cfg);
	CHECK_EQ_INT(rc, -1);
	snprintf(want, sizeof(want), "%s:2: listen: \"no-such-host.invalid:9201\": "
		 "cannot resolve \"no-such-host.invalid\": ", conf);
	err[strlen(want) < sizeof(err) ? strlen(want) : 0] = '\0';
	CHECK_STR(err, want);
}

static void test_missing_file(void)
{
	struct config cfg;
	char path[64], err[ERRLEN], want[ERRLEN];
	int rc;

	snprintf(path, sizeof(path), "%s/missing.conf", dir);
	rc = config_load(&cfg, path, err, sizeof(err));
	config_free(&cfg);
	snprintf(want, sizeof(want), "%s: cannot open: No such file or directory", path);
	CHECK_STR(err, want);
	CHECK_EQ_INT(rc, -1);
}

static void test_small_or_no_error_buffer(void)
{
	struct config cfg;
	char err[8];
	int rc;

	memset(err, 'x', sizeof(err));
	rc = load("[server]\nthreads = 0\n", &cfg, err, sizeof(err));
	config_free(&cfg);
	CHECK_EQ_INT(rc, -1);
	CHECK_EQ_INT(strlen(err), sizeof(err) - 1);
	CHECK_EQ_INT(memcmp(err, conf, sizeof(err) - 1), 0);
	rc = config_load(&cfg, conf, NULL, 0);
	config_free(&cfg);
	CHECK_EQ_INT(rc, -1);
}

static void test_tenants(void)
{
	static const char text[] =
		"[tenant acme]\n"
		"token = acme-secret\n"
		"account_id = 12\n"
		"project_id = 3\n"
		"max_samples_per_second = 2500.5\n"
		"max_buffer_bytes = 1GiB\n"
		"limit_status = 503\n"
		"max_labels_per_series = 40\n"
		"max_label_name_length = 128\n"
		"max_label_value_length = 2048\n"
		"max_series = 100000\n"
		"max_series_window = 2s\n"
		"\n"
		"[tenant beta.team-2_X]\n"
		"token_sha256 = 9F86D081884C7D659A2FEAA0C55AD015A3BF4F1B2B0B822CD15D6C15B0F00A08\n"
		"account_id = 4294967295\n"
		"project_id = 0\n"
		"\n"
		"[server]\n"
		"threads = 3\n"
		"[tenant gamma]\n"
		"token =\n"
		"token_sha256 =\n";
	struct config cfg;
	const struct config_tenant *t;
	char err[ERRLEN];
	int rc = load(text, &cfg, err, sizeof(err));

	CHECK_STR(err, "");
	CHECK_EQ_INT(rc, 0);
	CHECK_EQ_INT(cfg.ntenants, 3);
	CHECK_EQ_INT(cfg.threads, 3);

	t = cfg.tenants;
	CHECK_STR(t->id, "acme");
	CHECK_STR(t->token, "acme-secret");
	CHECK_EQ_INT(t->has_token_sha256, 0);
	CHECK_STR(t->account_id, "12");
	CHECK_STR(t->project_id, "3");
	CHECK(t->max_samples_per_second == 2500.5);
	CHECK_EQ_INT(t->max_buffer_bytes, 1ULL << 30);
	CHECK_EQ_INT(t->limit_status, 503);
	CHECK_EQ_INT(t->max_labels_per_series, 40);
	CHECK_EQ_INT(t->max_label_name_length, 128);
	CHECK_EQ_INT(t->max_label_value_length, 2048);
	CHECK_EQ_INT(t->max_series, 100000);
	CHECK_EQ_INT(t->max_series_window_ms, 2000);

	t = t->next;
	CHECK_STR(t->id, "beta.team-2_X");
	CHECK(t->token == NULL);
	CHECK_EQ_INT(t->has_token_sha256, 1);
	CHECK_EQ_INT(t->token_sha256[0], 0x9f);
	CHECK_EQ_INT(t->token_sha256[1], 0x86);
	CHECK_EQ_INT(t->token_sha256[16], 0xa3);
	CHECK_EQ_INT(t->token_sha256[31], 0x08);
	CHECK_STR(t->account_id, "4294967295");
	CHECK_STR(t->project_id, "0");
	CHECK(t->max_samples_per_second == 0);
	CHECK_EQ_INT(t->max_buffer_bytes, 0);
	CHECK_EQ_INT(t->limit_status, 429);
	CHECK_EQ_INT(t->max_labels_per_series, 0);
	CHECK_EQ_INT(t->max_series, 0);
	CHECK_EQ_INT(t->max_series_window_ms, 3600000);

	t = t->next;
	CHECK_STR(t->id, "gamma");
	CHECK(t->token == NULL && !t->has_token_sha256);
	CHECK(t->account_id == NULL && t->project_id == NULL);
	CHECK(t->next == NULL);

	CHECK(config_tenant_find(&cfg, "acme-and-more", 4) == cfg.tenants);
	CHECK(config_tenant_find(&cfg, "gamma", 5) == t);
	CHECK(config_tenant_find(&cfg, "acm", 3) == NULL);
	CHECK(config_tenant_find(&cfg, "acmex", 5) == NULL);
	CHECK(config_tenant_find(&cfg, "", 0) == NULL);
	config_free(&cfg);
	CHECK(cfg.tenants == NULL && cfg.ntenants == 0);
}

static void test_tenant_id_length(void)
{
	struct config cfg;
	char id[TENANT_ID_MAX + 2], text[128], err[ERRLEN], want[ERRLEN];
	int rc;

	memset(id, 'a', TENANT_ID_MAX);
	id[TENANT_ID_MAX] = '\0';
	snprintf(text, sizeof(text), "[tenant %s]\n", id);
	rc = load(text, &cfg, err, sizeof(err));
	CHECK_STR(err, "");
	CHECK_EQ_INT(rc, 0);
	CHECK(config_tenant_find(&cfg, id, TENANT_ID_MAX) != NULL);
	config_free(&cfg);

	strcat(id, "a");
	snprintf(text, sizeof(text), "\n[tenant %s]\n", id);
	rc = load(text, &cfg, err, sizeof(err));
	config_free(&cfg);
	snprintf(want, sizeof(want), "%s:2: invalid tenant id \"%s\" (1 to 64 of "
		 "A-Z a-z 0-9 _ . -)", conf, id);
	CHECK_STR(err, want);
	CHECK_EQ_INT(rc, -1);
}

static void test_shipped_relay_conf(void)
{
	struct config cfg;
	char err[ERRLEN];
	int rc = config_load(&cfg, "relay.conf", err, sizeof(err));

	CHECK_STR(err, "");
	CHECK_EQ_INT(rc, 0);
	CHECK_STR(cfg.listen, "127.0.0.1:9201");
	CHECK_STR(cfg.path, "./data");
	CHECK_EQ_INT(cfg.max_size, 8ULL << 30);
	CHECK_STR(cfg.url, "http://127.0.0.1:8428/api/v1/write");
	CHECK(cfg.tenants == NULL);
	CHECK_EQ_INT(cfg.ntenants, 0);
	CHECK(cfg.default_tenant == NULL);
	CHECK(cfg.admin_token == NULL);
	CHECK_EQ_INT(cfg.trust_header, 0);
	config_free(&cfg);
}

/* Every key of the table appears in its section of relay.conf as
 * "name = default", with a comment line right above it. */
static void test_shipped_relay_conf_documents_every_key(void)
{
	const char *name, *section, *def, *help;
	char want[ERRLEN], head[64];
	size_t len = 0, nkeys = 0;
	unsigned char *text = unit_read_file("relay.conf", &len);

	CHECK(text != NULL);
	text[len] = '\0';
	for (size_t i = 0; (name = config_key_info(i, &section, &def, &help)) != NULL; i++) {
		const char *start, *end, *at, *prev;

		nkeys++;
		CHECK(help != NULL && help[0] != '\0');
		snprintf(head, sizeof(head), "\n[%s]\n", section);
		start = strstr((char *)text, head);
		CHECK_STR(start ? section : "(no section)", section);
		end = strstr(start + 1, "\n[");
		snprintf(want, sizeof(want), "\n%s =%s%s\n", name, def ? " " : "", def ? def : "");
		at = strstr(start, want);
		/* on failure, name the key: want holds newlines */
		CHECK_STR(at != NULL && (end == NULL || at < end) ? name :
			  "(not in its section with its default)", name);
		for (prev = at - 1; prev > (char *)text && prev[-1] != '\n'; prev--)
			;
		CHECK_STR(strncmp(prev, "# ", 2) == 0 ? name : "(no comment above)", name);
	}
	free(text);
	/* The table is not empty and ends where config_key_info says. */
	CHECK(nkeys > 30);
	CHECK(config_key_info(nkeys, NULL, NULL, NULL) == NULL);
}

int main(void)
{
	snprintf(dir, sizeof(dir), "/tmp/test_config.XXXXXX");
	if (mkdtemp(dir) == NULL) {
		perror("mkdtemp");
		return 1;
	}
	snprintf(conf, sizeof(conf), "%s/relay.conf", dir);

	RUN(test_defaults);
	RUN(test_empty_file_gives_defaults);
	RUN(test_every_type);
	RUN(test_comments_and_whitespace);
	RUN(test_empty_optional_values_are_null);
	RUN(test_bool_words);
	RUN(test_log_levels);
	RUN(test_size_parser);
	RUN(test_duration_parser);
	RUN(test_errors);
	RUN(test_listen_forms);
	RUN(test_missing_file);
	RUN(test_small_or_no_error_buffer);
	RUN(test_tenants);
	RUN(test_ha_keys);
	RUN(test_tenant_id_length);
	RUN(test_shipped_relay_conf);
	RUN(test_shipped_relay_conf_documents_every_key);

	unlink(conf);
	rmdir(dir);
	return unit_done();
}
