/*
 * ratelimit.h - per-tenant token buckets of samples, for [tenant]
 * max_samples_per_second (admission.h asks; nothing else does).
 *
 * Each tenant's bucket holds at most one second of its rate and refills
 * continuously; a request takes as many tokens as it has samples and
 * histogram samples. A request larger than the bucket passes when the
 * bucket is not empty, leaving a debt that the refill pays back first, so
 * the long-run rate holds for requests of any size. When a reload changes
 * the rate, what the bucket holds (or owes) is kept in seconds of the
 * rate: a debt is paid back in the time it would have taken. One mutex; each call
 * is short. Buckets are made on first use and live until
 * ratelimit_destroy.
 */
#ifndef RELAY_RATELIMIT_H
#define RELAY_RATELIMIT_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

struct ratelimit_bucket;

struct ratelimit {
	pthread_mutex_t lock;
	struct ratelimit_bucket *buckets; /* owned: a list, one per tenant */
};

void ratelimit_init(struct ratelimit *rl);
void ratelimit_destroy(struct ratelimit *rl);

/*
 * Takes n tokens from the tenant's bucket, refilled at rate per second,
 * at monotonic time now_ms (clock_mono_ms(); a test passes its own).
 * Returns 0 when taken, 1 when the bucket is empty (nothing is taken: the
 * request is over the rate), or ERR_NOMEM when no bucket could be made
 * (the request then passes: a limit never refuses for want of memory).
 */
int ratelimit_take(struct ratelimit *rl, const char *id, size_t idlen,
		   double rate, uint64_t n, uint64_t now_ms);

/* Gives n tokens taken by ratelimit_take back to the tenant's bucket (at
 * most up to its one second of rate): for a request that stored nothing
 * after all (a resend, the HA replica not elected, a refusal at commit). */
void ratelimit_give_back(struct ratelimit *rl, const char *id, size_t idlen,
			 double rate, uint64_t n);

#endif
