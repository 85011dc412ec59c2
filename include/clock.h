/*
 * clock.h - the relay's two clocks.
 *
 *   clock_wall_ms   CLOCK_REALTIME: times that are stored or shown (when an
 *                   entry was committed, usage hours, set-aside times).
 *                   It can step either way; never measure a wait with it.
 *   clock_mono_ms   CLOCK_MONOTONIC: every timer, deadline, backoff and
 *   clock_mono_us   duration. It never steps.
 *
 * clock_age_ms judges how old a stored wall-clock time is without trusting
 * a step of the wall clock (see below).
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

/*
 * The age of something stored with created_ms = clock_wall_ms() at the
 * time, for limits such as max_age. The wall clock can step by days
 * either way while the relay runs; an age must neither jump (dropping
 * fresh data as too old) nor go negative. So "now" for ages is the
 * earlier of two readings: the wall clock, and the wall clock at start
 * plus the monotonic time since (what the wall clock would say had it not
 * stepped). A forward step makes entries from before it look no older
 * than they are; a backward step makes entries from after it (whose
 * created_ms went back too) no older either. A created_ms after that
 * "now" is age 0. So a step can only delay an age limit (until a restart
 * or until the wall clock catches up), never hasten it. The start
 * reading is taken by clock_start, or at the first call.
 */
uint64_t clock_age_ms(uint64_t created_ms);

/* The "now" of clock_age_ms: age = max(0, clock_age_now_ms() - created). */
uint64_t clock_age_now_ms(void);

/* Takes the start reading of clock_age_ms (call once at start). */
void clock_start(void);

/* Initialises cond to time its waits on CLOCK_MONOTONIC. Returns 0 or -1. */
int clock_cond_init(pthread_cond_t *cond);

/* The CLOCK_MONOTONIC time us microseconds from now. */
struct timespec clock_deadline(uint64_t us);

#endif
