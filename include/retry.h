/*
 * retry.h - what the forwarder does with an upstream's answer, and when it
 * tries again.
 */
#ifndef RELAY_RETRY_H
#define RELAY_RETRY_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

/*
 * Only an answer that condemns a batch's content may set it aside: the
 * batch is acknowledged data, and any other answer says nothing about it.
 * A wrong URL, redirect or credential (3xx, 401, 403, 404, 405, and any
 * other status not listed) is the relay's configuration or the upstream's
 * at fault: the batch is kept and sent again, like after a 503.
 */
enum retry_verdict {
	RETRY_DONE,         /* 2xx: delivered, delete it */
	RETRY_AGAIN,        /* 5xx, 429, 408, network error: back off, resend */
	RETRY_MISCONFIGURED,/* 1xx, 3xx, 4xx but those below: the URL or the
			     * credentials are wrong; back off, resend, log */
	RETRY_REFUSED       /* 400, 409, 413, 422: the content is refused
			     * (409: Thanos Receive's permanent conflicts,
			     * out-of-order or duplicate samples); split a
			     * merged request, set a lone entry aside */
};

/* Classifies an HTTP status; 0 stands for a network or protocol error. */
enum retry_verdict retry_classify(long status);

/*
 * A 400 is also what an upstream answers to a request it has no route
 * for: VictoriaMetrics to a path it does not serve ("unsupported path
 * requested"), vmauth to a missing route, nginx to plain HTTP on its TLS
 * port. So a refusal judges a batch's content only from a URL that has
 * taken a request (2xx) since the relay started, and only when its text
 * names no missing route; else the batch is kept and the answer counts as
 * a misconfiguration (RETRY_MISCONFIGURED), until a request there is
 * taken. A URL changed by a reload starts anew.
 */
struct retry_trust {
	pthread_mutex_t lock;
	uint64_t *slots;        /* owned: hashes of URLs; 0 is free */
	size_t cap, n;
};

/* Returns 0, or ERR_NOMEM. */
int retry_trust_init(struct retry_trust *t);
void retry_trust_destroy(struct retry_trust *t);
/* url took a request (answered 2xx). Out of memory, or past 65,536
 * URLs, it is not noted (its refusals are then kept, never set aside). */
void retry_trust_note(struct retry_trust *t, const char *url);
/* Whether url took a request since the start. */
int retry_trust_has(struct retry_trust *t, const char *url);

/* retry_classify(status), with a refusal (RETRY_REFUSED) turned into
 * RETRY_MISCONFIGURED when its text (reason, may be NULL) names a missing
 * route or the URL is not trusted (see above). */
enum retry_verdict retry_classify_answer(long status, const char *reason,
					 int trusted);

/*
 * The delay before the next attempt after a failed one: the upstream's
 * Retry-After value (retry_after, NULL or "" if none) when it is valid,
 * held within [min_ms, max_ms] so that 0, a past date or an absurd value
 * never makes a hot loop nor an endless wait; else retry_backoff_ms.
 * now_s is the wall clock (Unix seconds) for an HTTP date.
 */
uint64_t retry_delay_ms(const char *retry_after, int64_t now_s,
			unsigned attempt, uint64_t min_ms, uint64_t max_ms,
			uint32_t rnd);

/*
 * Delay before attempt number attempt (1 for the first retry): min_ms
 * doubled per attempt, capped at max_ms, then jittered down to between half
 * and all of that with rnd (any 32-bit random value).
 */
uint64_t retry_backoff_ms(unsigned attempt, uint64_t min_ms, uint64_t max_ms,
			  uint32_t rnd);

/*
 * Parses a Retry-After value: delta seconds, or an HTTP date compared with
 * now_s (Unix seconds). Returns the delay in ms, capped at cap_ms, or -1
 * when it is not a valid value.
 */
int64_t retry_after_ms(const char *value, int64_t now_s, uint64_t cap_ms);

#endif
