/*
 * ratelimit.c - per-tenant token buckets (see ratelimit.h).
 */
#include "ratelimit.h"

#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "err.h"

struct ratelimit_bucket {
	char id[TENANT_ID_MAX + 1];
	size_t idlen;
	double tokens;              /* may be negative: a debt */
	double rate;                /* the rate tokens were counted at */
	uint64_t refilled_ms;       /* 0: never used */
	struct ratelimit_bucket *next;
};

void ratelimit_init(struct ratelimit *rl)
{
	memset(rl, 0, sizeof(*rl));
	pthread_mutex_init(&rl->lock, NULL);
}

void ratelimit_destroy(struct ratelimit *rl)
{
	struct ratelimit_bucket *b, *next;

	for (b = rl->buckets; b != NULL; b = next) {
		next = b->next;
		free(b);
	}
	rl->buckets = NULL;
	pthread_mutex_destroy(&rl->lock);
}

/* The tenant's bucket, made when absent; call with the lock held. */
static struct ratelimit_bucket *bucket_get(struct ratelimit *rl,
					   const char *id, size_t idlen)
{
	struct ratelimit_bucket *b;

	for (b = rl->buckets; b != NULL; b = b->next) {
		if (b->idlen == idlen && memcmp(b->id, id, idlen) == 0)
			return b;
	}
	if (idlen > TENANT_ID_MAX || (b = calloc(1, sizeof(*b))) == NULL)
		return NULL;
	memcpy(b->id, id, idlen);
	b->idlen = idlen;
	b->next = rl->buckets;
	rl->buckets = b;
	return b;
}

/* A reload changed the rate: the bucket keeps what it holds in seconds
 * of the rate, so that a debt is paid back in the time it would have
 * taken (in samples, a debt made at 100000/s would take hours at 10/s).
 * Call with the lock held. */
static void rescale(struct ratelimit_bucket *b, double rate)
{
	if (b->refilled_ms != 0 && b->rate > 0 && rate != b->rate)
		b->tokens *= rate / b->rate;
	b->rate = rate;
}

int ratelimit_take(struct ratelimit *rl, const char *id, size_t idlen,
		   double rate, uint64_t n, uint64_t now_ms)
{
	struct ratelimit_bucket *b;
	int rc = 0;

	pthread_mutex_lock(&rl->lock);
	if ((b = bucket_get(rl, id, idlen)) == NULL) {
		pthread_mutex_unlock(&rl->lock);
		return ERR_NOMEM;
	}
	rescale(b, rate);
	if (b->refilled_ms == 0) {
		b->tokens = rate;
	} else if (now_ms > b->refilled_ms) {
		b->tokens += rate * (double)(now_ms - b->refilled_ms) / 1000.0;
		if (b->tokens > rate)
			b->tokens = rate;
	}
	b->refilled_ms = now_ms ? now_ms : 1;
	if (b->tokens > 0)
		b->tokens -= (double)n;
	else
		rc = 1;
	pthread_mutex_unlock(&rl->lock);
	return rc;
}

void ratelimit_give_back(struct ratelimit *rl, const char *id, size_t idlen,
			 double rate, uint64_t n)
{
	struct ratelimit_bucket *b;

	pthread_mutex_lock(&rl->lock);
	for (b = rl->buckets; b != NULL; b = b->next) {
		if (b->idlen != idlen || memcmp(b->id, id, idlen) != 0)
			continue;
		/* n was taken at rate: the bucket counts at that rate first. */
		rescale(b, rate);
		b->tokens += (double)n;
		if (b->tokens > rate)
			b->tokens = rate;
		break;
	}
	pthread_mutex_unlock(&rl->lock);
}
