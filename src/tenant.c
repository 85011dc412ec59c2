/*
 * tenant.c - request identity (see tenant.h).
 */
#include "tenant.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "err.h"

/* The known tenants: an open-addressing hash set of ids ("" = free slot),
 * at most half full. Owned here; lock held for every access. */
static struct {
	pthread_mutex_t lock;
	char (*slot)[TENANT_ID_MAX + 1];
	size_t n, cap;
} known = {PTHREAD_MUTEX_INITIALIZER, NULL, 0, 0};

static size_t id_hash(const char *id, size_t n)
{
	uint64_t h = 0xcbf29ce484222325ull;

	for (size_t i = 0; i < n; i++)
		h = (h ^ (unsigned char)id[i]) * 0x100000001b3ull;
	return (size_t)(h ^ h >> 29);
}

/* The slot holding id, or the free one where it would go; lock held. */
static char *known_slot(const char *id, size_t n)
{
	size_t i = id_hash(id, n) & (known.cap - 1);

	while (known.slot[i][0] != '\0' &&
	       (strncmp(known.slot[i], id, n) != 0 || known.slot[i][n] != '\0'))
		i = (i + 1) & (known.cap - 1);
	return known.slot[i];
}

/* Doubles the set's room; lock held. Returns 0 or ERR_NOMEM. */
static int known_grow(void)
{
	size_t oldcap = known.cap, cap = oldcap ? oldcap * 2 : 64;
	char (*old)[TENANT_ID_MAX + 1] = known.slot;

	if ((known.slot = calloc(cap, sizeof(*known.slot))) == NULL) {
		known.slot = old;
		return ERR_NOMEM;
	}
	known.cap = cap;
	for (size_t i = 0; i < oldcap; i++)
		if (old[i][0] != '\0')
			strcpy(known_slot(old[i], strlen(old[i])), old[i]);
	free(old);
	return 0;
}

int tenant_admit(const char *id, size_t n, unsigned max)
{
	char *slot;
	int rc = 0;

	if (n == 0 || n > TENANT_ID_MAX)
		return ERR_FAIL;
	pthread_mutex_lock(&known.lock);
	if (known.cap > 0 && *known_slot(id, n) != '\0')
		goto out;
	if (max > 0 && known.n >= max) {
		rc = ERR_FULL;
		goto out;
	}
	if ((known.n + 1) * 2 > known.cap && (rc = known_grow()) != 0)
		goto out;
	slot = known_slot(id, n);
	memcpy(slot, id, n);
	slot[n] = '\0';
	known.n++;
out:
	pthread_mutex_unlock(&known.lock);
	return rc;
}

size_t tenant_known_count(void)
{
	size_t n;

	pthread_mutex_lock(&known.lock);
	n = known.n;
	pthread_mutex_unlock(&known.lock);
	return n;
}

void tenant_known_clear(void)
{
	pthread_mutex_lock(&known.lock);
	free(known.slot);
	known.slot = NULL;
	known.n = known.cap = 0;
	pthread_mutex_unlock(&known.lock);
}

void tenant_sha256(const void *data, size_t len, uint8_t out[32])
{
	SHA256(data, len, out);
}

/* SHA-256 fetched from the provider once: EVP_sha256() in each call
 * looks it up again by name under a lock, every request. Kept until
 * exit. */
static EVP_MD *sha256_md;
static pthread_once_t sha256_once = PTHREAD_ONCE_INIT;

static void sha256_fetch(void)
{
	sha256_md = EVP_MD_fetch(NULL, "SHA256", NULL);
}

int tenant_sha256_2(const void *a, size_t alen, const void *b, size_t blen,
		    uint8_t out[32])
{
	EVP_MD_CTX *c;
	unsigned n = 32;
	int rc = 0;

	pthread_once(&sha256_once, sha256_fetch);
	c = EVP_MD_CTX_new();
	if (c == NULL || EVP_DigestInit_ex(c, sha256_md != NULL ? sha256_md :
					   EVP_sha256(), NULL) != 1 ||
	    EVP_DigestUpdate(c, a, alen) != 1 || EVP_DigestUpdate(c, b, blen) != 1 ||
	    EVP_DigestFinal_ex(c, out, &n) != 1)
		rc = -1;
	EVP_MD_CTX_free(c);
	return rc;
}

static int digest_cmp(const void *a, const void *b)
{
	const struct config_tenant *x = *(const struct config_tenant *const *)a;
	const struct config_tenant *y = *(const struct config_tenant *const *)b;

	return memcmp(x->token_sha256, y->token_sha256, 32);
}

int tenant_prepare(struct config *cfg, char *err, size_t errlen)
{
	const struct config_tenant **by = NULL;
	size_t n = 0;
	int rc = 0;

	for (struct config_tenant *t = cfg->tenants; t != NULL; t = t->next) {
		if (t->token != NULL && !t->has_token_sha256) {
			tenant_sha256(t->token, strlen(t->token), t->token_sha256);
			t->has_token_sha256 = 1;
		}
		n += t->has_token_sha256;
	}
	/* One secret for two tenants (one's token, the other's token_sha256:
	 * the parser compares each kind only with its own): refused, or its
	 * writes would all go to one of them. */
	if (n < 2)
		return 0;
	if ((by = malloc(n * sizeof(*by))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	n = 0;
	for (const struct config_tenant *t = cfg->tenants; t != NULL; t = t->next)
		if (t->has_token_sha256)
			by[n++] = t;
	qsort(by, n, sizeof(*by), digest_cmp);
	for (size_t i = 1; i < n && rc == 0; i++) {
		if (memcmp(by[i - 1]->token_sha256, by[i]->token_sha256, 32) != 0)
			continue;
		snprintf(err, errlen, "token of tenant \"%s\" is already used by "
			 "tenant \"%s\" (a token and a token_sha256 of the same "
			 "secret)", by[i]->id, by[i - 1]->id);
		rc = -1;
	}
	free(by);
	return rc;
}

int tenant_tokens_required(const struct config *cfg)
{
	for (const struct config_tenant *t = cfg->tenants; t != NULL; t = t->next)
		if (t->token != NULL || t->has_token_sha256)
			return 1;
	return 0;
}

int tenant_valid_id(const char *s, size_t n)
{
	if (n == 0 || n > TENANT_ID_MAX)
		return 0;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-'))
			return 0;
	}
	return 1;
}

int tenant_token_equal(const char *given, const char *secret)
{
	uint8_t a[32], b[32];

	if (given == NULL || secret == NULL)
		return 0;
	tenant_sha256(given, strlen(given), a);
	tenant_sha256(secret, strlen(secret), b);
	return CRYPTO_memcmp(a, b, 32) == 0;
}

static int b64_value(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

/* Decodes standard base64 (padding optional) into out; returns the length
 * or -1. */
static long b64_decode(const char *in, char *out, size_t outlen)
{
	uint32_t acc = 0;
	size_t o = 0;
	int bits = 0, v;

	for (; *in != '\0' && *in != '='; in++) {
		if ((v = b64_value((unsigned char)*in)) < 0)
			return -1;
		acc = acc << 6 | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			if (o >= outlen)
				return -1;
			out[o++] = (char)(acc >> bits & 0xff);
		}
	}
	return (long)o;
}

static void set_ident(struct tenant_ident *out, const char *id, size_t n,
		      const struct config_tenant *conf)
{
	memcpy(out->id, id, n);
	out->id[n] = '\0';
	out->idlen = n;
	out->conf = conf;
}

/* Finds the tenant whose token hashes to digest, looking at every tenant
 * so that the time taken does not depend on which one matches. */
static const struct config_tenant *match_token(const struct config *cfg,
					       const uint8_t digest[32])
{
	const struct config_tenant *found = NULL;

	for (const struct config_tenant *t = cfg->tenants; t != NULL; t = t->next) {
		if (t->has_token_sha256 &&
		    CRYPTO_memcmp(t->token_sha256, digest, 32) == 0)
			found = t;
	}
	return found;
}

static int check_authorization(const struct config *cfg, const char *auth,
			       struct tenant_ident *out, char *why,
			       size_t whylen)
{
	const struct config_tenant *t;
	uint8_t digest[32];
	char cred[512], *colon;
	long n;

	while (*auth == ' ')
		auth++;
	if (strncasecmp(auth, "Bearer ", 7) == 0) {
		auth += 7;
		while (*auth == ' ')
			auth++;
		tenant_sha256(auth, strlen(auth), digest);
		if ((t = match_token(cfg, digest)) == NULL) {
			snprintf(out->claim, sizeof(out->claim),
				 "token:%02x%02x%02x%02x", digest[0], digest[1],
				 digest[2], digest[3]);
			snprintf(why, whylen, "invalid token");
			return 401;
		}
		set_ident(out, t->id, strlen(t->id), t);
		return 0;
	}
	if (strncasecmp(auth, "Basic ", 6) == 0) {
		n = b64_decode(auth + 6, cred, sizeof(cred) - 1);
		if (n < 0 || (colon = memchr(cred, ':', (size_t)n)) == NULL) {
			snprintf(why, whylen, "malformed basic credentials");
			return 401;
		}
		tenant_sha256(colon + 1, (size_t)(cred + n - colon - 1), digest);
		t = config_tenant_find(cfg, cred, (size_t)(colon - cred));
		if (t == NULL || !t->has_token_sha256 ||
		    CRYPTO_memcmp(t->token_sha256, digest, 32) != 0) {
			if (tenant_valid_id(cred, (size_t)(colon - cred)))
				snprintf(out->claim, sizeof(out->claim), "%.*s",
					 (int)(colon - cred), cred);
			snprintf(why, whylen, "invalid credentials");
			return 401;
		}
		set_ident(out, t->id, strlen(t->id), t);
		return 0;
	}
	snprintf(why, whylen, "unsupported Authorization scheme; use Bearer or Basic");
	return 401;
}

int tenant_resolve(const struct config *cfg, const char *authorization,
		   const char *header_value, struct tenant_ident *out,
		   char *why, size_t whylen)
{
	const struct config_tenant *conf;
	int tokens = tenant_tokens_required(cfg), rc;

	memset(out, 0, sizeof(*out));
	if (authorization != NULL && tokens)
		return check_authorization(cfg, authorization, out, why, whylen);
	if (cfg->trust_header && header_value != NULL) {
		size_t n = strlen(header_value);
		if (!tenant_valid_id(header_value, n)) {
			snprintf(why, whylen, "invalid tenant in %s", cfg->tenant_header);
			return 401;
		}
		conf = config_tenant_find(cfg, header_value, n);
		if (conf == NULL &&
		    (rc = tenant_admit(header_value, n, (unsigned)cfg->max_tenants)) != 0) {
			if (rc != ERR_FULL) {
				snprintf(why, whylen, "cannot admit tenant %s: %s",
					 header_value, err_str(rc));
				return 503;
			}
			snprintf(out->claim, sizeof(out->claim), "%s", header_value);
			snprintf(why, whylen, "too many tenants: %s is not one of "
				 "the [tenancy] max_tenants = %d known", header_value,
				 cfg->max_tenants);
			return 429;
		}
		set_ident(out, header_value, n, conf);
		return 0;
	}
	if (tokens) {
		snprintf(why, whylen, "missing credentials: send Authorization: "
			 "Bearer <token>");
		return 401;
	}
	if (cfg->default_tenant != NULL) {
		size_t n = strlen(cfg->default_tenant);
		set_ident(out, cfg->default_tenant, n,
			  config_tenant_find(cfg, cfg->default_tenant, n));
		return 0;
	}
	if (cfg->trust_header) {
		snprintf(why, whylen, "missing %s header", cfg->tenant_header);
		return 401;
	}
	return 0;
}

int tenant_admin_auth(const char *auth, const char *admin_token)
{
	char cred[512];
	long n;

	if (auth == NULL || admin_token == NULL)
		return 0;
	while (*auth == ' ')
		auth++;
	if (strncasecmp(auth, "Bearer ", 7) == 0)
		return tenant_token_equal(auth + 7, admin_token);
	if (strncasecmp(auth, "Basic ", 6) != 0)
		return 0;
	n = b64_decode(auth + 6, cred, sizeof(cred) - 1);
	/* A NUL in the password would cut the comparison short. */
	if (n < 6 || memcmp(cred, "admin:", 6) != 0 ||
	    memchr(cred, '\0', (size_t)n) != NULL)
		return 0;
	cred[n] = '\0';
	return tenant_token_equal(cred + 6, admin_token);
}
