/*
 * retry.h - what the forwarder does with an upstream's answer, and when it
 * tries again.
 */
#ifndef RELAY_RETRY_H
#define RELAY_RETRY_H

#include <stdint.h>

enum retry_verdict {
	RETRY_DONE,    /* 2xx: delivered, delete it */
	RETRY_AGAIN,   /* 5xx, 429, 408, network error: back off and resend */
	RETRY_REFUSED  /* other status: will never succeed, set it aside */
};

/* Classifies an HTTP status; 0 stands for a network or protocol error. */
enum retry_verdict retry_classify(long status);

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
