/*
 * upstream_status.c - the upstream's last answers (see upstream_status.h).
 */
#include "upstream_status.h"

#include <pthread.h>
#include <stdio.h>

#include "clock.h"

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct upstream_status state;

void upstream_status_note(long status, int ok, const char *reason)
{
	uint64_t now = clock_wall_ms();

	pthread_mutex_lock(&lock);
	if (ok) {
		state.last_ok_ms = now;
	} else {
		state.last_error_ms = now;
		state.last_error_status = status;
		snprintf(state.last_error, sizeof(state.last_error), "%s",
			 reason != NULL ? reason : "");
	}
	pthread_mutex_unlock(&lock);
}

void upstream_status_get(struct upstream_status *out)
{
	pthread_mutex_lock(&lock);
	*out = state;
	pthread_mutex_unlock(&lock);
}
