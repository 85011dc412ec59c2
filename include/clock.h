/*
 * clock.h - the relay's two clocks.
 *
 *   clock_wall_ms   CLOCK_REALTIME: times that are stored or shown (when an
 *                   entry was committed, usage hours, set-aside times).
 *                   It can step either way; never measure a wait with it.
 *   clock_mono_ms   CLOCK_MONOTONIC: every timer, deadline, backoff and
 *   clock_mono_us   duration. It never steps.
 *
 * clock_deadline turns a monotonic wait into the absolute time that
 * pthread_cond_timedwait expects of a condition variable made with
 * clock_cond_init (which waits on CLOCK_MONOTONIC).
 */
#ifndef RELAY_CLOCK_H
#define RELAY_CLOCK_H

#include <pthread.h>
#include <stdint.h>
#include <time.h>

uint64_t clock_wall_ms(void);
uint64_t clock_mono_ms(void);
uint64_t clock_mono_us(void);

/* Initialises cond to time its waits on CLOCK_MONOTONIC. Returns 0 or -1. */
int clock_cond_init(pthread_cond_t *cond);

/* The CLOCK_MONOTONIC time us microseconds from now. */
struct timespec clock_deadline(uint64_t us);

#endif
