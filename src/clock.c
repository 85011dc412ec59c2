/*
 * clock.c - wall and monotonic time (see clock.h).
 */
#include "clock.h"

#include <stdatomic.h>

/* Wall and monotonic ms at start, for clock_age_ms (0: not taken yet). */
static _Atomic uint64_t start_wall_ms, start_mono_ms;
static pthread_once_t start_once = PTHREAD_ONCE_INIT;

static uint64_t read_us(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

uint64_t clock_wall_ms(void)
{
	return read_us(CLOCK_REALTIME) / 1000;
}

uint64_t clock_mono_ms(void)
{
	return read_us(CLOCK_MONOTONIC) / 1000;
}

uint64_t clock_mono_us(void)
{
	return read_us(CLOCK_MONOTONIC);
}

int clock_cond_init(pthread_cond_t *cond)
{
	pthread_condattr_t ca;
	int rc;

	if (pthread_condattr_init(&ca) != 0)
		return -1;
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	rc = pthread_cond_init(cond, &ca);
	pthread_condattr_destroy(&ca);
	return rc == 0 ? 0 : -1;
}

struct timespec clock_deadline(uint64_t us)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	t.tv_sec += (time_t)(us / 1000000);
	t.tv_nsec += (long)(us % 1000000) * 1000;
	if (t.tv_nsec >= 1000000000) {
		t.tv_sec++;
		t.tv_nsec -= 1000000000;
	}
	return t;
}

static void take_start(void)
{
	atomic_store(&start_wall_ms, clock_wall_ms());
	atomic_store(&start_mono_ms, clock_mono_ms());
}

void clock_start(void)
{
	pthread_once(&start_once, take_start);
}

uint64_t clock_age_now_ms(void)
{
	uint64_t wall, steady;

	clock_start();
	wall = clock_wall_ms();
	steady = atomic_load(&start_wall_ms) +
		 (clock_mono_ms() - atomic_load(&start_mono_ms));
	return wall < steady ? wall : steady;
}

uint64_t clock_age_ms(uint64_t created_ms)
{
	uint64_t now = clock_age_now_ms();

	return now > created_ms ? now - created_ms : 0;
}
