/*
 * upstream_status.h - what the upstream last answered, for the status
 * page (status_page.h): when it last took a request, when it last failed
 * one and why. Process-wide; the forwarders note each answer, the page
 * reads a copy. One mutex, held for a copy.
 */
#ifndef RELAY_UPSTREAM_STATUS_H
#define RELAY_UPSTREAM_STATUS_H

#include <stdint.h>

#define UPSTREAM_STATUS_REASON_MAX 200

struct upstream_status {
	uint64_t last_ok_ms;         /* wall clock; 0: never since start */
	uint64_t last_error_ms;      /* wall clock; 0: never since start */
	long last_error_status;      /* HTTP status, 0: no answer */
	char last_error[UPSTREAM_STATUS_REASON_MAX + 1]; /* its reason */
};

/* Notes one upstream answer: ok (2xx), or status and reason otherwise. */
void upstream_status_note(long status, int ok, const char *reason);

/* Copies the current state into out. */
void upstream_status_get(struct upstream_status *out);

#endif
