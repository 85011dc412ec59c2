/*
 * retry.c - upstream answer classification and backoff (see retry.h).
 */
#include "retry.h"

#include <ctype.h>
#include <curl/curl.h>
#include <stdlib.h>

enum retry_verdict retry_classify(long status)
{
	if (status >= 200 && status < 300)
		return RETRY_DONE;
	if (status == 0 || status >= 500 || status == 429 || status == 408)
		return RETRY_AGAIN;
	if (status == 400 || status == 413 || status == 422)
		return RETRY_REFUSED;
	return RETRY_MISCONFIGURED;
}

uint64_t retry_backoff_ms(unsigned attempt, uint64_t min_ms, uint64_t max_ms,
			  uint32_t rnd)
{
	uint64_t d = min_ms ? min_ms : 1;

	for (unsigned i = 1; i < attempt && d < max_ms; i++)
		d = d > max_ms / 2 ? max_ms : d * 2;
	if (d > max_ms)
		d = max_ms;
	/* Full range jitter over the upper half: [d/2, d]. */
	return d / 2 + (uint64_t)rnd % (d / 2 + 1);
}

int64_t retry_after_ms(const char *value, int64_t now_s, uint64_t cap_ms)
{
	const char *p = value;
	uint64_t secs = 0;
	time_t when;

	while (*p == ' ')
		p++;
	if (isdigit((unsigned char)*p)) {
		while (isdigit((unsigned char)*p)) {
			secs = secs * 10 + (uint64_t)(*p - '0');
			if (secs > cap_ms / 1000 + 1)
				secs = cap_ms / 1000 + 1;
			p++;
		}
		while (*p == ' ')
			p++;
		if (*p != '\0')
			return -1;
	} else {
		when = curl_getdate(p, NULL);
		if (when == (time_t)-1)
			return -1;
		secs = when > now_s ? (uint64_t)(when - now_s) : 0;
	}
	return secs * 1000 > cap_ms ? (int64_t)cap_ms : (int64_t)(secs * 1000);
}

uint64_t retry_delay_ms(const char *retry_after, int64_t now_s,
			unsigned attempt, uint64_t min_ms, uint64_t max_ms,
			uint32_t rnd)
{
	int64_t ra = -1;
	uint64_t d;

	if (min_ms == 0)
		min_ms = 1;
	if (max_ms < min_ms)
		max_ms = min_ms;
	if (retry_after != NULL && retry_after[0] != '\0')
		ra = retry_after_ms(retry_after, now_s, max_ms);
	if (ra < 0)
		return retry_backoff_ms(attempt, min_ms, max_ms, rnd);
	d = (uint64_t)ra;
	return d < min_ms ? min_ms : d > max_ms ? max_ms : d;
}
