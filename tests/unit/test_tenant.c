/*
 * test_tenant.c - who sent a request: tenant_resolve with bearer and basic
 * credentials (plain token and token_sha256), requests without credentials,
 * trust_header (and its max_tenants), the default tenant and no tenancy
 * at all; tenant_valid_id and tenant_token_equal.
 *
 * Configurations are written to a temporary file and read with
 * config_load, as the relay reads them, then tenant_prepare'd.
 */
#include "config.h"
#include "err.h"
#include "tenant.h"
#include "unit.h"

#include <stdint.h>
#include <unistd.h>

#define WHYLEN 200

/* sha256 -n "globex-secret" in hex, as `printf %s globex-secret | sha256sum`
 * prints it; computed at start-up with tenant_sha256. */
static char globex_hex[65];

static char dir[48];
static char conf_path[64];

static int write_text(const char *text)
{
	FILE *f = fopen(conf_path, "w");

	if (f == NULL)
		return -1;
	fputs(text, f);
	return fclose(f) == 0 ? 0 : -1;
}

static int load(const char *text, struct config *cfg)
{
	char err[WHYLEN];

	memset(cfg, 0, sizeof(*cfg));
	if (write_text(text) < 0)
		return -1;
	if (config_load(cfg, conf_path, err, sizeof(err)) < 0) {
		fprintf(stderr, "# config_load: %s\n", err);
		return -1;
	}
	if (tenant_prepare(cfg, err, sizeof(err)) < 0) {
		fprintf(stderr, "# tenant_prepare: %s\n", err);
		return -1;
	}
	return 0;
}

/* Two tenants with tokens: acme (plain token), globex (token_sha256). */
static int load_tokens(struct config *cfg, const char *extra)
{
	char text[1024];

	snprintf(text, sizeof(text),
		 "%s\n"
		 "[tenant acme]\n"
		 "token = acme-secret\n"
		 "[tenant globex]\n"
		 "token_sha256 = %s\n",
		 extra ? extra : "", globex_hex);
	return load(text, cfg);
}

/* "Basic " + base64(s), into out. */
static void basic(const char *s, char *out, size_t outlen)
{
	static const char tab[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	size_t n = strlen(s), o = 0, i;

	o += (size_t)snprintf(out, outlen, "Basic ");
	for (i = 0; i < n; i += 3) {
		uint32_t v = (uint32_t)(unsigned char)s[i] << 16;
		size_t k = n - i;

		if (k > 1)
			v |= (uint32_t)(unsigned char)s[i + 1] << 8;
		if (k > 2)
			v |= (unsigned char)s[i + 2];
		if (o + 5 >= outlen)
			break;
		out[o++] = tab[v >> 18 & 63];
		out[o++] = tab[v >> 12 & 63];
		out[o++] = k > 1 ? tab[v >> 6 & 63] : '=';
		out[o++] = k > 2 ? tab[v & 63] : '=';
	}
	out[o] = '\0';
}

/* Resolves and checks a refusal: 401, a reason, and no tenant. */
#define CHECK_401(cfg, auth, hdr)                                             \
	do {                                                                  \
		struct tenant_ident id_;                                      \
		char why_[WHYLEN] = "";                                       \
		int st_ = tenant_resolve((cfg), (auth), (hdr), &id_, why_,    \
					 sizeof(why_));                       \
		CHECK_EQ_INT(st_, 401);                                       \
		CHECK(why_[0] != '\0');                                       \
		CHECK_EQ_INT(id_.idlen, 0);                                   \
	} while (0)

/* Resolves and checks a success naming tenant want. */
#define CHECK_TENANT(cfg, auth, hdr, want)                                    \
	do {                                                                  \
		struct tenant_ident id_;                                      \
		char why_[WHYLEN] = "";                                       \
		int st_ = tenant_resolve((cfg), (auth), (hdr), &id_, why_,    \
					 sizeof(why_));                       \
		CHECK_EQ_INT(st_, 0);                                         \
		CHECK_STR(id_.id, (want));                                    \
		CHECK_EQ_INT(id_.idlen, strlen(want));                        \
	} while (0)

static void test_bearer_ok(void)
{
	struct config cfg;
	struct tenant_ident id;
	char why[WHYLEN];

	CHECK(load_tokens(&cfg, NULL) == 0);
	CHECK(tenant_tokens_required(&cfg));
	CHECK_EQ_INT(tenant_resolve(&cfg, "Bearer acme-secret", NULL, &id, why,
				    sizeof(why)), 0);
	CHECK_STR(id.id, "acme");
	CHECK_EQ_INT(id.idlen, 4);
	CHECK(id.conf != NULL);
	CHECK_STR(id.conf->id, "acme");
	/* The tenant configured with token_sha256. */
	CHECK_EQ_INT(tenant_resolve(&cfg, "Bearer globex-secret", NULL, &id, why,
				    sizeof(why)), 0);
	CHECK_STR(id.id, "globex");
	CHECK(id.conf != NULL);
	CHECK_STR(id.conf->id, "globex");
	/* The scheme is case-insensitive (RFC 7235). */
	CHECK_TENANT(&cfg, "bearer acme-secret", NULL, "acme");
	config_free(&cfg);
}

static void test_bearer_wrong(void)
{
	struct config cfg;
	struct tenant_ident id;
	char why[WHYLEN] = "";

	CHECK(load_tokens(&cfg, NULL) == 0);
	CHECK_EQ_INT(tenant_resolve(&cfg, "Bearer acme-secreT", NULL, &id, why,
				    sizeof(why)), 401);
	CHECK(why[0] != '\0');
	CHECK(strstr(why, "acme-secreT") == NULL); /* never echo a token */
	CHECK_401(&cfg, "Bearer ", NULL);
	CHECK_401(&cfg, "Bearer acme-secret-and-more", NULL);
	CHECK_401(&cfg, "Bearer acme", NULL);
	/* globex's digest itself is not a token. */
	{
		char auth[100];
		snprintf(auth, sizeof(auth), "Bearer %s", globex_hex);
		CHECK_401(&cfg, auth, NULL);
	}
	/* Other schemes are refused. */
	CHECK_401(&cfg, "Token acme-secret", NULL);
	CHECK_401(&cfg, "acme-secret", NULL);
	config_free(&cfg);
}

static void test_basic_ok(void)
{
	struct config cfg;
	char auth[256];

	CHECK(load_tokens(&cfg, NULL) == 0);
	basic("acme:acme-secret", auth, sizeof(auth));
	CHECK_TENANT(&cfg, auth, NULL, "acme");
	basic("globex:globex-secret", auth, sizeof(auth));
	CHECK_TENANT(&cfg, auth, NULL, "globex");
	/* Unpadded base64 is taken as well. */
	CHECK_TENANT(&cfg, "Basic YWNtZTphY21lLXNlY3JldA", NULL, "acme");
	config_free(&cfg);
}

static void test_basic_wrong(void)
{
	struct config cfg;
	char auth[256];

	CHECK(load_tokens(&cfg, NULL) == 0);
	/* Right password, wrong user (another tenant's id). */
	basic("globex:acme-secret", auth, sizeof(auth));
	CHECK_401(&cfg, auth, NULL);
	/* Unknown user. */
	basic("nobody:acme-secret", auth, sizeof(auth));
	CHECK_401(&cfg, auth, NULL);
	/* Wrong password. */
	basic("acme:nope", auth, sizeof(auth));
	CHECK_401(&cfg, auth, NULL);
	basic("acme:", auth, sizeof(auth));
	CHECK_401(&cfg, auth, NULL);
	/* The token alone as user name, no password. */
	basic("acme-secret", auth, sizeof(auth));
	CHECK_401(&cfg, auth, NULL);
	/* Malformed base64. */
	CHECK_401(&cfg, "Basic !!!notbase64!!!", NULL);
	CHECK_401(&cfg, "Basic YWNtZTph*21lLXNlY3JldA==", NULL);
	CHECK_401(&cfg, "Basic ", NULL);
	config_free(&cfg);
}

static void test_missing_credentials(void)
{
	struct config cfg;

	CHECK(load_tokens(&cfg, NULL) == 0);
	CHECK_401(&cfg, NULL, NULL);
	/* Without trust_header the tenant header is ignored. */
	CHECK_401(&cfg, NULL, "acme");
	config_free(&cfg);
	/* A default tenant does not open the door when tokens exist. */
	CHECK(load_tokens(&cfg, "[tenancy]\ndefault = acme\n") == 0);
	CHECK_401(&cfg, NULL, NULL);
	config_free(&cfg);
}

static void test_trust_header(void)
{
	struct config cfg;
	struct tenant_ident id;
	char why[WHYLEN];

	CHECK(load("[tenancy]\ntrust_header = true\n"
		   "[tenant known]\naccount_id = 7\n", &cfg) == 0);
	CHECK(!tenant_tokens_required(&cfg));
	CHECK_EQ_INT(tenant_resolve(&cfg, NULL, "team-1.prod_x", &id, why,
				    sizeof(why)), 0);
	CHECK_STR(id.id, "team-1.prod_x");
	CHECK(id.conf == NULL);
	CHECK_EQ_INT(tenant_resolve(&cfg, NULL, "known", &id, why, sizeof(why)), 0);
	CHECK_STR(id.id, "known");
	CHECK(id.conf != NULL);
	CHECK_STR(id.conf->account_id, "7");
	CHECK_401(&cfg, NULL, "bad id");
	CHECK_401(&cfg, NULL, "a/b");
	CHECK_401(&cfg, NULL, "");
	{
		char long_id[80];
		memset(long_id, 'x', 65);
		long_id[65] = '\0';
		CHECK_401(&cfg, NULL, long_id);
	}
	/* No header and no default: refused. */
	CHECK_401(&cfg, NULL, NULL);
	config_free(&cfg);

	/* A custom header name; with a default, a missing header falls back. */
	CHECK(load("[tenancy]\ntrust_header = true\nheader = X-Tenant\n"
		   "default = fallback\n", &cfg) == 0);
	CHECK_TENANT(&cfg, NULL, "abc", "abc");
	CHECK_TENANT(&cfg, NULL, NULL, "fallback");
	config_free(&cfg);

	/* With tokens too, a token decides when one is sent, the header
	 * when none is. */
	CHECK(load_tokens(&cfg, "[tenancy]\ntrust_header = true\n") == 0);
	CHECK_TENANT(&cfg, "Bearer acme-secret", "globex", "acme");
	CHECK_401(&cfg, "Bearer wrong", "globex");
	CHECK_TENANT(&cfg, NULL, "globex", "globex");
	config_free(&cfg);
}

static void test_default_tenant(void)
{
	struct config cfg;
	struct tenant_ident id;
	char why[WHYLEN];

	CHECK(load("[tenancy]\ndefault = main\n[tenant main]\nproject_id = 3\n",
		   &cfg) == 0);
	CHECK_EQ_INT(tenant_resolve(&cfg, NULL, NULL, &id, why, sizeof(why)), 0);
	CHECK_STR(id.id, "main");
	CHECK_EQ_INT(id.idlen, 4);
	CHECK(id.conf != NULL);
	CHECK_STR(id.conf->project_id, "3");
	/* No tenant has a token: an Authorization header changes nothing. */
	CHECK_TENANT(&cfg, "Bearer whatever", NULL, "main");
	/* The header is not trusted. */
	CHECK_TENANT(&cfg, NULL, "other", "main");
	config_free(&cfg);

	/* A default that has no section of its own. */
	CHECK(load("[tenancy]\ndefault = solo\n", &cfg) == 0);
	CHECK_EQ_INT(tenant_resolve(&cfg, NULL, NULL, &id, why, sizeof(why)), 0);
	CHECK_STR(id.id, "solo");
	CHECK(id.conf == NULL);
	config_free(&cfg);
}

static void test_no_tenancy(void)
{
	struct config cfg;
	struct tenant_ident id;
	char why[WHYLEN];

	CHECK(load("[server]\nlisten = 127.0.0.1:9999\n", &cfg) == 0);
	CHECK(!tenant_tokens_required(&cfg));
	memset(&id, 0x55, sizeof(id));
	CHECK_EQ_INT(tenant_resolve(&cfg, NULL, NULL, &id, why, sizeof(why)), 0);
	CHECK_EQ_INT(id.idlen, 0);
	CHECK_STR(id.id, "");
	CHECK(id.conf == NULL);
	CHECK_EQ_INT(tenant_resolve(&cfg, "Bearer anything", "acme", &id, why,
				    sizeof(why)), 0);
	CHECK_EQ_INT(id.idlen, 0);
	/* Tenants without tokens, no default, no trust_header: still none. */
	config_free(&cfg);
	CHECK(load("[tenant a]\naccount_id = 1\n", &cfg) == 0);
	CHECK_EQ_INT(tenant_resolve(&cfg, NULL, NULL, &id, why, sizeof(why)), 0);
	CHECK_EQ_INT(id.idlen, 0);
	config_free(&cfg);
}

static void test_valid_id(void)
{
	char s[70];

	CHECK(tenant_valid_id("a", 1));
	CHECK(tenant_valid_id("acme", 4));
	CHECK(tenant_valid_id("A-Z_a.z-0.9", 11));
	memset(s, 'x', sizeof(s));
	CHECK(tenant_valid_id(s, 64));
	CHECK(!tenant_valid_id(s, 65));
	CHECK(!tenant_valid_id("", 0));
	CHECK(!tenant_valid_id("a b", 3));
	CHECK(!tenant_valid_id("a/b", 3));
	CHECK(!tenant_valid_id("a:b", 3));
	CHECK(!tenant_valid_id("a\"b", 3));
	CHECK(!tenant_valid_id("a{b", 3));
	CHECK(!tenant_valid_id("caf\xc3\xa9", 5));
	CHECK(!tenant_valid_id("a\0b", 3));
	/* Only the first n bytes count. */
	CHECK(tenant_valid_id("ab cd", 2));
}

static void test_token_equal(void)
{
	CHECK_EQ_INT(tenant_token_equal("s3cret", "s3cret"), 1);
	CHECK_EQ_INT(tenant_token_equal("s3cret", "s3creT"), 0);
	CHECK_EQ_INT(tenant_token_equal("s3cre", "s3cret"), 0);
	CHECK_EQ_INT(tenant_token_equal("s3cret!", "s3cret"), 0);
	CHECK_EQ_INT(tenant_token_equal("", "s3cret"), 0);
	CHECK_EQ_INT(tenant_token_equal(NULL, "s3cret"), 0);
	CHECK_EQ_INT(tenant_token_equal("s3cret", NULL), 0);
	CHECK_EQ_INT(tenant_token_equal(NULL, NULL), 0);
}

static void test_sha256(void)
{
	uint8_t a[32], b[32];
	/* printf %s abc | sha256sum */
	static const uint8_t abc[32] = {
		0xba, 0x78, 0x16, 0xbf, 0x8f, 0x01, 0xcf, 0xea, 0x41, 0x41, 0x40,
		0xde, 0x5d, 0xae, 0x22, 0x23, 0xb0, 0x03, 0x61, 0xa3, 0x96, 0x17,
		0x7a, 0x9c, 0xb4, 0x10, 0xff, 0x61, 0xf2, 0x00, 0x15, 0xad};

	tenant_sha256("abc", 3, a);
	CHECK(memcmp(a, abc, 32) == 0);
	CHECK_EQ_INT(tenant_sha256_2("a", 1, "bc", 2, b), 0);
	CHECK(memcmp(b, abc, 32) == 0);
}

/* With trust_header, new tenants past max_tenants get 429; known ones and
 * [tenant] sections still pass; 0 lifts the limit. */
/* One secret as one tenant's token and another's token_sha256 is refused
 * (the parser compares each kind only with its own); else all its writes
 * would go to one of the two. */
static void test_token_and_sha256_of_one_secret(void)
{
	struct config cfg;
	char text[512], err[WHYLEN] = "";

	snprintf(text, sizeof(text), "[tenant alpha]\ntoken = globex-secret\n"
		 "[tenant beta]\ntoken_sha256 = %s\n", globex_hex);
	memset(&cfg, 0, sizeof(cfg));
	CHECK_EQ_INT(write_text(text), 0);
	CHECK_EQ_INT(config_load(&cfg, conf_path, err, sizeof(err)), 0);
	CHECK_EQ_INT(tenant_prepare(&cfg, err, sizeof(err)), -1);
	CHECK(strstr(err, "already used by tenant") != NULL);
	CHECK(strstr(err, "alpha") != NULL && strstr(err, "beta") != NULL);
	config_free(&cfg);
	/* two different secrets of the two kinds are fine */
	snprintf(text, sizeof(text), "[tenant alpha]\ntoken = acme-secret\n"
		 "[tenant beta]\ntoken_sha256 = %s\n", globex_hex);
	memset(&cfg, 0, sizeof(cfg));
	CHECK_EQ_INT(write_text(text), 0);
	CHECK_EQ_INT(config_load(&cfg, conf_path, err, sizeof(err)), 0);
	CHECK_EQ_INT(tenant_prepare(&cfg, err, sizeof(err)), 0);
	config_free(&cfg);
}

static void test_max_tenants(void)
{
	struct config cfg;
	struct tenant_ident id;
	char why[WHYLEN], name[16];

	tenant_known_clear();
	CHECK(load("[tenancy]\ntrust_header = true\nmax_tenants = 2\n"
		   "[tenant known]\naccount_id = 7\n", &cfg) == 0);
	CHECK_EQ_INT(cfg.max_tenants, 2);
	CHECK_EQ_INT(tenant_resolve(&cfg, NULL, "a", &id, why, sizeof(why)), 0);
	CHECK_EQ_INT(tenant_resolve(&cfg, NULL, "b", &id, why, sizeof(why)), 0);
	CHECK_EQ_INT(tenant_resolve(&cfg, NULL, "c", &id, why, sizeof(why)), 429);
	CHECK(strstr(why, "too many tenants") != NULL);
	CHECK_EQ_INT(tenant_resolve(&cfg, NULL, "a", &id, why, sizeof(why)), 0);
	CHECK_STR(id.id, "a");
	CHECK_EQ_INT(tenant_resolve(&cfg, NULL, "known", &id, why, sizeof(why)), 0);
	CHECK(id.conf != NULL);
	CHECK_EQ_INT(tenant_known_count(), 2);
	/* An id that only starts like a known one is another tenant. */
	CHECK_EQ_INT(tenant_resolve(&cfg, NULL, "ab", &id, why, sizeof(why)), 429);
	cfg.max_tenants = 0;
	for (int i = 0; i < 1000; i++) {
		snprintf(name, sizeof(name), "t%d", i);
		CHECK_EQ_INT(tenant_resolve(&cfg, NULL, name, &id, why, sizeof(why)), 0);
	}
	CHECK_EQ_INT(tenant_known_count(), 1002);
	CHECK_EQ_INT(tenant_admit("t999", 4, 1), 0);
	CHECK_EQ_INT(tenant_admit("new", 3, 1002), ERR_FULL);
	config_free(&cfg);
	tenant_known_clear();
}

int main(void)
{
	uint8_t d[32];

	snprintf(dir, sizeof(dir), "/tmp/test_tenant.XXXXXX");
	if (mkdtemp(dir) == NULL) {
		perror("mkdtemp");
		return 1;
	}
	snprintf(conf_path, sizeof(conf_path), "%s/relay.conf", dir);
	tenant_sha256("globex-secret", 13, d);
	for (int i = 0; i < 32; i++)
		snprintf(globex_hex + 2 * i, 3, "%02x", d[i]);

	RUN(test_sha256);
	RUN(test_bearer_ok);
	RUN(test_bearer_wrong);
	RUN(test_basic_ok);
	RUN(test_basic_wrong);
	RUN(test_missing_credentials);
	RUN(test_trust_header);
	RUN(test_default_tenant);
	RUN(test_no_tenancy);
	RUN(test_valid_id);
	RUN(test_token_equal);
	RUN(test_token_and_sha256_of_one_secret);
	RUN(test_max_tenants);

	unlink(conf_path);
	rmdir(dir);
	return unit_done();
}
