/*
 * retry.c - upstream answer classification and backoff (see retry.h).
 */
#include "retry.h"

#include <ctype.h>
#include <curl/curl.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"

#define TRUST_MAX 65536

enum retry_verdict retry_classify(long status)
{
	if (status >= 200 && status < 300)
		return RETRY_DONE;
	if (status == 0 || status >= 500 || status == 429 || status == 408)
		return RETRY_AGAIN;
	if (status == 400 || status == 409 || status == 413 || status == 422)
		return RETRY_REFUSED;
	return RETRY_MISCONFIGURED;
}

/* Answers that say the request found no route, not that its content is
 * wrong: VictoriaMetrics (single node and vminsert), vmauth, nginx. */
static const char *const no_route[] = {
	"unsupported path requested",
	"missing route",
	"The plain HTTP request was sent to HTTPS port",
};

enum retry_verdict retry_classify_answer(long status, const char *reason,
					 int trusted)
{
	enum retry_verdict v = retry_classify(status);

	if (v != RETRY_REFUSED)
		return v;
	if (!trusted)
		return RETRY_MISCONFIGURED;
	for (size_t i = 0; reason != NULL &&
	     i < sizeof(no_route) / sizeof(no_route[0]); i++)
		if (strstr(reason, no_route[i]) != NULL)
			return RETRY_MISCONFIGURED;
	return v;
}

/* FNV-1a of url, never 0 (a free slot). */
static uint64_t url_hash(const char *url)
{
	uint64_t h = 1469598103934665603ull;

	for (; *url != '\0'; url++)
		h = (h ^ (uint8_t)*url) * 1099511628211ull;
	return h ? h : 1;
}

int retry_trust_init(struct retry_trust *t)
{
	memset(t, 0, sizeof(*t));
	pthread_mutex_init(&t->lock, NULL);
	return 0;
}

void retry_trust_destroy(struct retry_trust *t)
{
	free(t->slots);
	t->slots = NULL;
	pthread_mutex_destroy(&t->lock);
}

/* The slot of h (its own, or the free one it would take); call with the
 * lock held and t->cap > 0. */
static uint64_t *trust_slot(const struct retry_trust *t, uint64_t h)
{
	size_t i = (size_t)h & (t->cap - 1);

	while (t->slots[i] != 0 && t->slots[i] != h)
		i = (i + 1) & (t->cap - 1);
	return &t->slots[i];
}

void retry_trust_note(struct retry_trust *t, const char *url)
{
	uint64_t h = url_hash(url), *s, *old;
	size_t cap;

	pthread_mutex_lock(&t->lock);
	if (t->cap > 0 && *trust_slot(t, h) == h)
		goto out;
	if (t->n >= TRUST_MAX)
		goto out;
	if ((t->n + 1) * 2 > t->cap) {    /* at most half full */
		cap = t->cap ? t->cap * 2 : 16;
		old = t->slots;
		if ((t->slots = calloc(cap, sizeof(*t->slots))) == NULL) {
			t->slots = old;
			goto out;
		}
		for (size_t i = 0; i < t->cap; i++)
			if (old[i] != 0) {
				size_t j = (size_t)old[i] & (cap - 1);
				while (t->slots[j] != 0)
					j = (j + 1) & (cap - 1);
				t->slots[j] = old[i];
			}
		free(old);
		t->cap = cap;
	}
	s = trust_slot(t, h);
	*s = h;
	t->n++;
out:
	pthread_mutex_unlock(&t->lock);
}

int retry_trust_has(struct retry_trust *t, const char *url)
{
	uint64_t h = url_hash(url);
	int has;

	pthread_mutex_lock(&t->lock);
	has = t->cap > 0 && *trust_slot(t, h) == h;
	pthread_mutex_unlock(&t->lock);
	return has;
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
