/*
 * inflight.c - memory of write requests being handled (see inflight.h).
 *
 * The two gauges live in struct metrics (relay_inflight_body_bytes,
 * relay_inflight_decoded_bytes); this file is their only writer. A
 * charge reads both and adds to one, so charges take one mutex.
 */
#include "inflight.h"

#include <pthread.h>

#include "metrics.h"

static pthread_mutex_t inflight_lock = PTHREAD_MUTEX_INITIALIZER;

int inflight_body_charge(uint64_t *held, uint64_t want, uint64_t limit)
{
	uint64_t bodies, decoded, delta;
	int ok;

	if (want <= *held)
		return 0;
	delta = want - *held;
	pthread_mutex_lock(&inflight_lock);
	bodies = metric_get(&metrics.inflight_body_bytes);
	decoded = metric_get(&metrics.inflight_bytes);
	ok = (bodies == *held && decoded == 0) ||
	     (bodies + delta <= limit / 4 * 3 && bodies + decoded + delta <= limit);
	if (ok) {
		metric_add(&metrics.inflight_body_bytes, delta);
		*held = want;
	}
	pthread_mutex_unlock(&inflight_lock);
	return ok ? 0 : -1;
}

void inflight_body_release(uint64_t *held)
{
	if (*held == 0)
		return;
	pthread_mutex_lock(&inflight_lock);
	atomic_fetch_sub(&metrics.inflight_body_bytes, *held);
	pthread_mutex_unlock(&inflight_lock);
	*held = 0;
}

int inflight_decoded_charge(uint64_t *held, uint64_t n, uint64_t own_body,
			    uint64_t limit)
{
	uint64_t bodies, decoded;
	int ok;

	pthread_mutex_lock(&inflight_lock);
	bodies = metric_get(&metrics.inflight_body_bytes);
	decoded = metric_get(&metrics.inflight_bytes);
	ok = (bodies == own_body && decoded == *held) ||
	     bodies + decoded + n <= limit;
	if (ok) {
		metric_add(&metrics.inflight_bytes, n);
		*held += n;
	}
	pthread_mutex_unlock(&inflight_lock);
	return ok ? 0 : -1;
}

void inflight_decoded_release(uint64_t *held)
{
	if (*held == 0)
		return;
	pthread_mutex_lock(&inflight_lock);
	atomic_fetch_sub(&metrics.inflight_bytes, *held);
	pthread_mutex_unlock(&inflight_lock);
	*held = 0;
}
