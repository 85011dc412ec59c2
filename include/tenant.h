/*
 * tenant.h - who sent a request.
 *
 * In order:
 *  1. Authorization: Bearer TOKEN, or Basic with user = tenant id and
 *     password = TOKEN: the [tenant] whose token it is. A token that
 *     matches no tenant is refused (401). Tokens are compared as SHA-256
 *     digests in constant time, against every tenant.
 *  2. [tenancy] trust_header: the tenant named in that header (a proxy in
 *     front has authenticated it). A tenant with a [tenant] section is
 *     always taken; any other must be known (tenant_admit): once
 *     [tenancy] max_tenants tenants are known, a request naming a new one
 *     is refused with 429 (a Prometheus sender drops it unless it retries
 *     429; it would retry a 5xx for ever, for a limit that does not pass).
 *  3. [tenancy] default, when no [tenant] has a token.
 *  4. When no tenant has a token and trust_header is off: no tenant; the
 *     series are stored as sent.
 *  Otherwise 401.
 */
#ifndef RELAY_TENANT_H
#define RELAY_TENANT_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"

struct tenant_ident {
	char id[TENANT_ID_MAX + 1]; /* "" when there is no tenancy */
	size_t idlen;
	const struct config_tenant *conf; /* ref; NULL if not configured */
	/* When refused: who the request said it was, for the log only (never
	 * counted, as anyone can claim it): the Basic user ("acme"), the
	 * header's tenant past max_tenants, or "token:" and the first 8 hex
	 * digits of the bearer token's SHA-256 (compare with
	 * `printf %s TOKEN | sha256sum`); "" otherwise. */
	char claim[TENANT_ID_MAX + 1];
};

/* Fills token_sha256 of tenants configured with a plain token. Returns 0,
 * or -1 with the reason in err when two tenants have the same secret (one
 * as token, the other as token_sha256) or memory is short. */
int tenant_prepare(struct config *cfg, char *err, size_t errlen);

/* Whether any tenant has a token (so requests must carry one). */
int tenant_tokens_required(const struct config *cfg);

/*
 * Resolves a request's tenant from its Authorization header and the
 * [tenancy] header's value (either may be NULL). Returns 0; or 401, or
 * 429 for a new tenant past max_tenants (503 out of memory), with a
 * short reason in why (never the token).
 */
int tenant_resolve(const struct config *cfg, const char *authorization,
		   const char *header_value, struct tenant_ident *out,
		   char *why, size_t whylen);

/*
 * The tenants named by a trusted header that the relay knows: the ones it
 * took since it started and the ones the buffer held when it started.
 * One set for the process, safe from any thread; it only grows (at most
 * to max_tenants after the start).
 *
 * Makes id[0..n) known unless max (> 0) tenants are known already.
 * Returns 0 if it is known (was, or is now), ERR_FULL if not because of
 * max, ERR_NOMEM.
 */
int tenant_admit(const char *id, size_t n, unsigned max);

/* How many tenants are known. */
size_t tenant_known_count(void);

/* Forgets every known tenant (for tests). */
void tenant_known_clear(void);

/* Whether s[0..n) is a valid tenant id: [A-Za-z0-9_.-]{1,64}. */
int tenant_valid_id(const char *s, size_t n);

/* SHA-256 of data. */
void tenant_sha256(const void *data, size_t len, uint8_t out[32]);

/* SHA-256 of a then b. Returns 0, or -1 if the digest could not be made. */
int tenant_sha256_2(const void *a, size_t alen, const void *b, size_t blen,
		     uint8_t out[32]);

/* Constant-time comparison of a bearer token with a configured secret
 * (the admin token). Returns 1 if equal. */
int tenant_token_equal(const char *given, const char *secret);

/* Whether an Authorization header carries the admin token: as a Bearer
 * token, or as HTTP Basic with user "admin" and the token as password.
 * Returns 1 if so, 0 otherwise (also when admin_token is NULL). */
int tenant_admin_auth(const char *authorization, const char *admin_token);

#endif
