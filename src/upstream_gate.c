/*
 * upstream_gate.c - one gate per upstream (see upstream_gate.h).
 */
#include "upstream_gate.h"

#include <assert.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "log.h"
#include "metrics.h"
#include "retry.h"

/* How long a waiter sleeps at most while a probe is out (its answer wakes
 * the waiters; this only bounds a missed wake-up). */
#define PROBE_OUT_WAIT_MS 1000

enum upstream_pass upstream_gate_try(struct upstream_gate *g, uint64_t now_ms,
				     uint64_t *wait_ms)
{
	if (!g->down)
		return UPSTREAM_OPEN;
	if (g->probe_out) {
		*wait_ms = PROBE_OUT_WAIT_MS;
		return UPSTREAM_WAIT;
	}
	if (now_ms < g->probe_at_ms) {
		*wait_ms = g->probe_at_ms - now_ms;
		return UPSTREAM_WAIT;
	}
	g->probe_out = 1;
	g->probes++;
	return UPSTREAM_PROBE;
}

enum upstream_change upstream_gate_answer(struct upstream_gate *g,
					  enum upstream_pass pass, long status,
					  const char *retry_after,
					  uint64_t now_ms, int64_t now_s,
					  uint64_t min_ms, uint64_t max_ms,
					  uint32_t rnd)
{
	enum retry_verdict v;

	assert(pass == UPSTREAM_OPEN || pass == UPSTREAM_PROBE);
	if (pass == UPSTREAM_PROBE)
		g->probe_out = 0;
	if (status < 0)
		return UPSTREAM_SAME;        /* nothing was sent */
	v = retry_classify(status);
	if (v == RETRY_MISCONFIGURED)
		return UPSTREAM_SAME;        /* one tenant's URL or credentials */
	if (v == RETRY_DONE || v == RETRY_REFUSED) {
		/* The upstream read a request and judged it: it is there. */
		if (!g->down)
			return UPSTREAM_SAME;
		g->down = 0;
		g->failures = 0;
		g->probe_out = 0;
		return UPSTREAM_CAME_UP;
	}
	/* RETRY_AGAIN: the upstream as a whole failed. */
	if (!g->down) {
		g->down = 1;
		g->failures = 1;
		g->probes = 0;
		g->down_since_ms = now_ms;
		g->probe_at_ms = now_ms + retry_delay_ms(retry_after, now_s, 1,
							 min_ms, max_ms, rnd);
		return UPSTREAM_WENT_DOWN;
	}
	if (pass == UPSTREAM_PROBE) {
		if (g->failures < 64)
			g->failures++;
		g->probe_at_ms = now_ms + retry_delay_ms(retry_after, now_s,
							 g->failures, min_ms,
							 max_ms, rnd);
	}
	/* A request sent before the gate went down failed too: no news. */
	return UPSTREAM_SAME;
}

void upstream_origin(const char *url, char *out, size_t outlen)
{
	const char *p = strstr(url, "://");
	size_t n;

	p = p ? p + 3 : url;
	n = strcspn(p, "/?#") + (size_t)(p - url);
	if (n >= outlen)
		n = outlen - 1;
	memcpy(out, url, n);
	out[n] = '\0';
}

int upstream_gates_init(struct upstream_gates *gs, uint64_t min_ms,
			uint64_t max_ms)
{
	memset(gs, 0, sizeof(*gs));
	gs->min_ms = min_ms;
	gs->max_ms = max_ms < min_ms ? min_ms : max_ms;
	if (clock_cond_init(&gs->wake) != 0)
		return -1;
	pthread_mutex_init(&gs->lock, NULL);
	return 0;
}

void upstream_gates_destroy(struct upstream_gates *gs)
{
	pthread_cond_destroy(&gs->wake);
	pthread_mutex_destroy(&gs->lock);
}

/* The slot of origin, taken if new: a free one, else one that is up and
 * that no request holds, else the last one, shared. Lock held. */
static int gate_slot(struct upstream_gates *gs, const char *origin)
{
	int spare = -1;

	if (origin[0] == '\0')
		origin = "-";   /* "" marks a free slot */
	for (int i = 0; i < UPSTREAM_GATE_SLOTS; i++) {
		struct upstream_gate *g = &gs->gate[i];

		if (strcmp(g->origin, origin) == 0)
			return i;
		if (spare < 0 && (g->origin[0] == '\0' ||
				  (!g->down && g->users == 0)))
			spare = i;
	}
	if (spare < 0)
		return UPSTREAM_GATE_SLOTS - 1;  /* shared by the rest */
	memset(&gs->gate[spare], 0, sizeof(gs->gate[spare]));
	snprintf(gs->gate[spare].origin, UPSTREAM_ORIGIN_MAX, "%s", origin);
	return spare;
}

int upstream_gate_enter(struct upstream_gates *gs, const char *url,
			struct upstream_ticket *t)
{
	char origin[UPSTREAM_ORIGIN_MAX];
	struct upstream_gate *g;
	struct timespec until;
	uint64_t wait_ms = 0;
	int rc = 0;

	t->slot = -1;
	t->pass = UPSTREAM_NONE;
	upstream_origin(url, origin, sizeof(origin));
	pthread_mutex_lock(&gs->lock);
	t->slot = gate_slot(gs, origin);
	g = &gs->gate[t->slot];
	g->users++;
	g->used_ms = clock_mono_ms();
	while (!gs->stopping) {
		t->pass = upstream_gate_try(g, clock_mono_ms(), &wait_ms);
		if (t->pass != UPSTREAM_WAIT)
			break;
		until = clock_deadline(wait_ms * 1000);
		pthread_cond_timedwait(&gs->wake, &gs->lock, &until);
	}
	if (gs->stopping) {
		if (t->pass == UPSTREAM_PROBE)
			g->probe_out = 0;
		g->users--;
		t->slot = -1;
		t->pass = UPSTREAM_NONE;
		rc = -1;
		goto out;
	}
	if (t->pass == UPSTREAM_PROBE)
		metric_add(&metrics.upstream_probes, 1);
out:
	pthread_mutex_unlock(&gs->lock);
	return rc;
}

/*
 * A gate that is down and that no request has asked for in two probe
 * delays and 10 s is no longer any tenant's upstream (a reload moved the
 * url, a renumbered {account_id}): nothing would ever bring it up, and
 * relay_upstream_up would read 0 for good. It is forgotten, its slot
 * freed, at the next request to any upstream (the usage series go out
 * every minute by default). A tenant that still sends there asks within a
 * probe delay (its request waits for the gate's next probe). Called with
 * the lock held, at most once a second.
 */
static void forget_stale(struct upstream_gates *gs, uint64_t now)
{
	uint64_t stale = 2 * gs->max_ms + 10000;

	if (now - gs->swept_ms < 1000)
		return;
	gs->swept_ms = now;
	for (int i = 0; i < UPSTREAM_GATE_SLOTS; i++) {
		struct upstream_gate *g = &gs->gate[i];

		if (g->origin[0] == '\0' || !g->down || g->users > 0 ||
		    now - g->used_ms < stale)
			continue;
		atomic_fetch_sub_explicit(&metrics.upstreams_down, 1,
					  memory_order_relaxed);
		log_msg(LOG_INFO, "upstream no longer used while down: forgotten",
			"upstream=%s down_for_s=%.1f", g->origin,
			(double)(now - g->down_since_ms) / 1000.0);
		memset(g, 0, sizeof(*g));
	}
}

int upstream_gate_pass(struct upstream_gates *gs, const char *url,
		       struct upstream_ticket *t, uint64_t *wait_ms)
{
	char origin[UPSTREAM_ORIGIN_MAX];
	struct upstream_gate *g;
	uint64_t now;
	int slot, rc = 0;

	t->slot = -1;
	t->pass = UPSTREAM_NONE;
	upstream_origin(url, origin, sizeof(origin));
	pthread_mutex_lock(&gs->lock);
	if (gs->stopping) {
		rc = -1;
		goto out;
	}
	now = clock_mono_ms();
	forget_stale(gs, now);
	slot = gate_slot(gs, origin);
	g = &gs->gate[slot];
	g->used_ms = now;
	t->pass = upstream_gate_try(g, now, wait_ms);
	if (t->pass == UPSTREAM_WAIT) {
		t->pass = UPSTREAM_NONE;
		rc = 1;
		goto out;
	}
	t->slot = slot;
	g->users++;
	if (t->pass == UPSTREAM_PROBE)
		metric_add(&metrics.upstream_probes, 1);
out:
	pthread_mutex_unlock(&gs->lock);
	return rc;
}

int upstream_gate_leave(struct upstream_gates *gs, struct upstream_ticket *t,
			long status, const char *reason,
			const char *retry_after, uint32_t rnd)
{
	char qreason[256];
	struct upstream_gate *g;
	enum upstream_change c;
	uint64_t now = clock_mono_ms();

	int woke = 0;

	if (t->slot < 0)
		return 0;
	pthread_mutex_lock(&gs->lock);
	g = &gs->gate[t->slot];
	g->users--;
	g->used_ms = now;
	c = upstream_gate_answer(g, t->pass, status, retry_after, now,
				 (int64_t)time(NULL), gs->min_ms, gs->max_ms,
				 rnd);
	if (c == UPSTREAM_WENT_DOWN) {
		metric_add(&metrics.upstreams_down, 1);
		metric_add(&metrics.upstream_outages, 1);
		log_msg(LOG_WARN, "upstream down: one request at a time probes "
			"it until it answers; the data stays buffered",
			"upstream=%s status=%ld reason=%s next_probe_in_ms=%llu",
			g->origin, status,
			log_quote(reason ? reason : "", reason ? strlen(reason) : 0,
				  qreason, sizeof(qreason)),
			(unsigned long long)(g->probe_at_ms - now));
	} else if (c == UPSTREAM_CAME_UP) {
		atomic_fetch_sub_explicit(&metrics.upstreams_down, 1,
					  memory_order_relaxed);
		log_msg(LOG_INFO, "upstream back up, delivery resumes",
			"upstream=%s down_for_s=%.1f probes=%llu", g->origin,
			(double)(now - g->down_since_ms) / 1000.0,
			(unsigned long long)g->probes);
	}
	/* Whatever happened, a probe's place or the gate may be free now. */
	if (c != UPSTREAM_SAME || t->pass == UPSTREAM_PROBE) {
		pthread_cond_broadcast(&gs->wake);
		woke = 1;
	}
	pthread_mutex_unlock(&gs->lock);
	t->slot = -1;
	t->pass = UPSTREAM_NONE;
	return woke;
}

void upstream_gates_stop(struct upstream_gates *gs)
{
	pthread_mutex_lock(&gs->lock);
	gs->stopping = 1;
	pthread_cond_broadcast(&gs->wake);
	pthread_mutex_unlock(&gs->lock);
}
