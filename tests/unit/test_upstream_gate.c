/*
 * test_upstream_gate.c - the gate of an upstream: its states, the one probe
 * at a time while it is down, the probes' schedule, and every waiter going
 * at once when it is back. The state machine runs on a clock the test
 * gives; the blocking calls are checked for what they decide, never for
 * how long they take.
 */
#include "upstream_gate.h"

#include <pthread.h>
#include <stdint.h>
#include <string.h>

#include "unit.h"

#define MIN_MS 100
#define MAX_MS 5000
#define NOW_S 1700000000

static uint32_t rnd_state = 2463534242u;

static uint32_t rnd_next(void)
{
	rnd_state ^= rnd_state << 13;
	rnd_state ^= rnd_state >> 17;
	rnd_state ^= rnd_state << 5;
	return rnd_state;
}

static enum upstream_change answer(struct upstream_gate *g,
				   enum upstream_pass pass, long status,
				   const char *retry_after, uint64_t now)
{
	return upstream_gate_answer(g, pass, status, retry_after, now, NOW_S,
				    MIN_MS, MAX_MS, rnd_next());
}

/* A gate taken down at t=1000 by a 503 to an ordinary request. */
static void gate_down(struct upstream_gate *g)
{
	memset(g, 0, sizeof(*g));
	strcpy(g->origin, "http://vm:8428");
	(void)answer(g, UPSTREAM_OPEN, 503, NULL, 1000);
}

static void test_up_lets_all_through(void)
{
	struct upstream_gate g = {0};
	uint64_t w = 0;

	for (int i = 0; i < 10; i++)
		CHECK_EQ_INT(upstream_gate_try(&g, 1000, &w), UPSTREAM_OPEN);
	CHECK_EQ_INT(answer(&g, UPSTREAM_OPEN, 204, NULL, 1000), UPSTREAM_SAME);
	CHECK_EQ_INT(g.down, 0);
}

static void test_whole_upstream_failures_take_it_down(void)
{
	static const long statuses[] = {0, 500, 502, 503, 504, 429, 408};
	struct upstream_gate g = {0};

	for (size_t i = 0; i < sizeof(statuses) / sizeof(statuses[0]); i++) {
		memset(&g, 0, sizeof(g));
		CHECK_EQ_INT(answer(&g, UPSTREAM_OPEN, statuses[i], NULL, 1000),
			     UPSTREAM_WENT_DOWN);
		CHECK_EQ_INT(g.down, 1);
		/* The first probe: min_backoff jittered to [min/2, min]. */
		CHECK(g.probe_at_ms >= 1000 + MIN_MS / 2);
		CHECK(g.probe_at_ms <= 1000 + MIN_MS);
	}
}

static void test_tenant_answers_leave_it_alone(void)
{
	static const long statuses[] = {301, 401, 403, 404, 405};
	struct upstream_gate g = {0};
	uint64_t w = 0, at;

	for (size_t i = 0; i < sizeof(statuses) / sizeof(statuses[0]); i++) {
		memset(&g, 0, sizeof(g));
		CHECK_EQ_INT(answer(&g, UPSTREAM_OPEN, statuses[i], NULL, 1000),
			     UPSTREAM_SAME);
		CHECK_EQ_INT(upstream_gate_try(&g, 1000, &w), UPSTREAM_OPEN);
	}
	/* Down, a probe gets a 404: still down, the probe's place is free
	 * at once, and the schedule does not move. */
	gate_down(&g);
	at = g.probe_at_ms;
	CHECK_EQ_INT(upstream_gate_try(&g, at, &w), UPSTREAM_PROBE);
	CHECK_EQ_INT(answer(&g, UPSTREAM_PROBE, 404, NULL, at), UPSTREAM_SAME);
	CHECK_EQ_INT(g.down, 1);
	CHECK_EQ_INT(g.probe_at_ms, at);
	CHECK_EQ_INT(upstream_gate_try(&g, at, &w), UPSTREAM_PROBE);
}

static void test_one_probe_at_a_time(void)
{
	struct upstream_gate g;
	uint64_t w = 0, at;

	gate_down(&g);
	at = g.probe_at_ms;
	/* Before the delay: everyone waits, told how long. */
	CHECK_EQ_INT(upstream_gate_try(&g, at - 10, &w), UPSTREAM_WAIT);
	CHECK_EQ_INT(w, 10);
	/* Then one probe, and only one however many ask, however late. */
	CHECK_EQ_INT(upstream_gate_try(&g, at, &w), UPSTREAM_PROBE);
	for (int i = 0; i < 100; i++)
		CHECK_EQ_INT(upstream_gate_try(&g, at + 1000000, &w),
			     UPSTREAM_WAIT);
	CHECK_EQ_INT(g.probes, 1);
}

static void test_failed_probe_backs_off(void)
{
	struct upstream_gate g;
	uint64_t w = 0, now, nominal = MIN_MS;

	gate_down(&g);
	for (unsigned k = 2; k <= 20; k++) {
		now = g.probe_at_ms;
		CHECK_EQ_INT(upstream_gate_try(&g, now, &w), UPSTREAM_PROBE);
		CHECK_EQ_INT(answer(&g, UPSTREAM_PROBE, 0, NULL, now),
			     UPSTREAM_SAME);
		/* min doubled per failed probe, capped at max, jittered
		 * down to no less than half of it. */
		nominal = nominal * 2 > MAX_MS ? MAX_MS : nominal * 2;
		CHECK(g.probe_at_ms >= now + nominal / 2);
		CHECK(g.probe_at_ms <= now + nominal);
		CHECK(g.probe_at_ms <= now + MAX_MS);
	}
	CHECK_EQ_INT(g.down, 1);
	CHECK_EQ_INT(g.probes, 19);
}

static void test_retry_after_within_bounds(void)
{
	struct upstream_gate g = {0};
	uint64_t w = 0, now;

	CHECK_EQ_INT(answer(&g, UPSTREAM_OPEN, 503, "3", 1000),
		     UPSTREAM_WENT_DOWN);
	CHECK_EQ_INT(g.probe_at_ms, 1000 + 3000);
	now = g.probe_at_ms;
	CHECK_EQ_INT(upstream_gate_try(&g, now, &w), UPSTREAM_PROBE);
	CHECK_EQ_INT(answer(&g, UPSTREAM_PROBE, 429, "3600", now), UPSTREAM_SAME);
	CHECK_EQ_INT(g.probe_at_ms, now + MAX_MS);
	now = g.probe_at_ms;
	CHECK_EQ_INT(upstream_gate_try(&g, now, &w), UPSTREAM_PROBE);
	CHECK_EQ_INT(answer(&g, UPSTREAM_PROBE, 503, "0", now), UPSTREAM_SAME);
	CHECK_EQ_INT(g.probe_at_ms, now + MIN_MS);
}

static void test_success_brings_all_back(void)
{
	struct upstream_gate g;
	uint64_t w = 0, at;

	gate_down(&g);
	at = g.probe_at_ms;
	CHECK_EQ_INT(upstream_gate_try(&g, at, &w), UPSTREAM_PROBE);
	CHECK_EQ_INT(answer(&g, UPSTREAM_PROBE, 204, NULL, at + 5),
		     UPSTREAM_CAME_UP);
	for (int i = 0; i < 10; i++)
		CHECK_EQ_INT(upstream_gate_try(&g, at + 5, &w), UPSTREAM_OPEN);
	/* And a later failure starts from min_backoff again. */
	CHECK_EQ_INT(answer(&g, UPSTREAM_OPEN, 502, NULL, at + 10),
		     UPSTREAM_WENT_DOWN);
	CHECK(g.probe_at_ms <= at + 10 + MIN_MS);
}

static void test_content_refusal_means_up(void)
{
	struct upstream_gate g;
	uint64_t w = 0;

	gate_down(&g);
	CHECK_EQ_INT(upstream_gate_try(&g, g.probe_at_ms, &w), UPSTREAM_PROBE);
	CHECK_EQ_INT(answer(&g, UPSTREAM_PROBE, 400, NULL, g.probe_at_ms),
		     UPSTREAM_CAME_UP);
}

static void test_requests_from_before(void)
{
	struct upstream_gate g;
	uint64_t w = 0, at;

	/* A request let through before the gate went down fails too: no
	 * news, the probe schedule stays. */
	gate_down(&g);
	at = g.probe_at_ms;
	CHECK_EQ_INT(answer(&g, UPSTREAM_OPEN, 503, NULL, 1001), UPSTREAM_SAME);
	CHECK_EQ_INT(g.probe_at_ms, at);
	CHECK_EQ_INT(g.failures, 1);
	/* One of them succeeds: the upstream is there. */
	CHECK_EQ_INT(answer(&g, UPSTREAM_OPEN, 204, NULL, 1002),
		     UPSTREAM_CAME_UP);
	CHECK_EQ_INT(upstream_gate_try(&g, 1002, &w), UPSTREAM_OPEN);
}

static void test_nothing_sent(void)
{
	struct upstream_gate g;
	uint64_t w = 0, at;

	gate_down(&g);
	at = g.probe_at_ms;
	CHECK_EQ_INT(upstream_gate_try(&g, at, &w), UPSTREAM_PROBE);
	CHECK_EQ_INT(answer(&g, UPSTREAM_PROBE, -1, NULL, at), UPSTREAM_SAME);
	CHECK_EQ_INT(g.probe_at_ms, at);
	CHECK_EQ_INT(upstream_gate_try(&g, at, &w), UPSTREAM_PROBE);
}

static void test_origin(void)
{
	char o[UPSTREAM_ORIGIN_MAX], small[12];

	upstream_origin("http://127.0.0.1:8428/api/v1/write", o, sizeof(o));
	CHECK(strcmp(o, "http://127.0.0.1:8428") == 0);
	upstream_origin("https://vm.example:443?x=1", o, sizeof(o));
	CHECK(strcmp(o, "https://vm.example:443") == 0);
	upstream_origin("http://h", o, sizeof(o));
	CHECK(strcmp(o, "http://h") == 0);
	upstream_origin("http://a-long-host:1/x", small, sizeof(small));
	CHECK(strcmp(small, "http://a-lo") == 0);
}

/* --- the blocking calls ------------------------------------------------- */

struct waiter {
	struct upstream_gates *gs;
	const char *url;
	int rc;
	struct upstream_ticket t;
};

static void *wait_main(void *arg)
{
	struct waiter *w = arg;

	w->rc = upstream_gate_enter(w->gs, w->url, &w->t);
	return NULL;
}

static void test_enter_leave(void)
{
	struct upstream_gates gs;
	struct upstream_ticket t, u;
	struct waiter w = {0};
	pthread_t th;

	CHECK_EQ_INT(upstream_gates_init(&gs, 1, 1), 0);
	CHECK_EQ_INT(upstream_gate_enter(&gs, "http://a:1/api/v1/write", &t), 0);
	CHECK_EQ_INT(t.pass, UPSTREAM_OPEN);
	upstream_gate_leave(&gs, &t, 503, "Service Unavailable", NULL, 7);
	/* a is down: the next request to it is its probe... */
	CHECK_EQ_INT(upstream_gate_enter(&gs, "http://a:1/t2/write", &t), 0);
	CHECK_EQ_INT(t.pass, UPSTREAM_PROBE);
	/* ...another upstream does not wait for it... */
	CHECK_EQ_INT(upstream_gate_enter(&gs, "http://b:2/api/v1/write", &u), 0);
	CHECK_EQ_INT(u.pass, UPSTREAM_OPEN);
	upstream_gate_leave(&gs, &u, 204, "", NULL, 7);
	/* ...a second request to a waits until the probe's answer, and goes
	 * as an ordinary request once it is a success. */
	w.gs = &gs;
	w.url = "http://a:1/t3/write";
	w.rc = 99;
	CHECK_EQ_INT(pthread_create(&th, NULL, wait_main, &w), 0);
	upstream_gate_leave(&gs, &t, 204, "", NULL, 7);
	pthread_join(th, NULL);
	CHECK_EQ_INT(w.rc, 0);
	CHECK_EQ_INT(w.t.pass, UPSTREAM_OPEN);
	upstream_gate_leave(&gs, &w.t, 204, "", NULL, 7);
	upstream_gates_destroy(&gs);
}

/* upstream_gate_pass never waits: while the upstream is down and probed,
 * it says how long to stay away; the probe's answer says when to ask
 * again; another upstream goes at once. */
static void test_pass_does_not_wait(void)
{
	struct upstream_gates gs;
	struct upstream_ticket t, u;
	uint64_t wait_ms = 0;

	CHECK_EQ_INT(upstream_gates_init(&gs, 3600 * 1000, 3600 * 1000), 0);
	CHECK_EQ_INT(upstream_gate_pass(&gs, "http://a:1/x", &t, &wait_ms), 0);
	CHECK_EQ_INT(t.pass, UPSTREAM_OPEN);
	/* Went down: a change, waiters may go (and find it down). */
	CHECK_EQ_INT(upstream_gate_leave(&gs, &t, 0, "Connection refused",
					 NULL, 7), 1);
	CHECK_EQ_INT(upstream_gate_pass(&gs, "http://a:1/y", &t, &wait_ms), 1);
	CHECK(t.slot < 0);
	CHECK(wait_ms >= 1800 * 1000 && wait_ms <= 3600 * 1000);
	CHECK_EQ_INT(upstream_gate_pass(&gs, "http://b:2/x", &u, &wait_ms), 0);
	CHECK_EQ_INT(u.pass, UPSTREAM_OPEN);
	/* An answer from an upstream that is up changes nothing. */
	CHECK_EQ_INT(upstream_gate_leave(&gs, &u, 204, "", NULL, 7), 0);
	upstream_gates_stop(&gs);
	CHECK_EQ_INT(upstream_gate_pass(&gs, "http://b:2/x", &u, &wait_ms), -1);
	upstream_gates_destroy(&gs);
}

static void test_stop_wakes_waiters(void)
{
	struct upstream_gates gs;
	struct upstream_ticket t;
	struct waiter w = {0};
	pthread_t th;

	CHECK_EQ_INT(upstream_gates_init(&gs, 1, 1), 0);
	CHECK_EQ_INT(upstream_gate_enter(&gs, "http://a:1/", &t), 0);
	upstream_gate_leave(&gs, &t, 0, "Connection refused", NULL, 7);
	CHECK_EQ_INT(upstream_gate_enter(&gs, "http://a:1/", &t), 0);
	CHECK_EQ_INT(t.pass, UPSTREAM_PROBE);
	/* The probe never answers; the relay stops: the waiter gives up. */
	w.gs = &gs;
	w.url = "http://a:1/";
	w.rc = 99;
	CHECK_EQ_INT(pthread_create(&th, NULL, wait_main, &w), 0);
	upstream_gates_stop(&gs);
	pthread_join(th, NULL);
	CHECK_EQ_INT(w.rc, -1);
	upstream_gate_leave(&gs, &t, -1, "", NULL, 7);
	CHECK_EQ_INT(upstream_gate_enter(&gs, "http://c:3/", &t), -1);
	upstream_gates_destroy(&gs);
}

int main(void)
{
	RUN(test_up_lets_all_through);
	RUN(test_whole_upstream_failures_take_it_down);
	RUN(test_tenant_answers_leave_it_alone);
	RUN(test_one_probe_at_a_time);
	RUN(test_failed_probe_backs_off);
	RUN(test_retry_after_within_bounds);
	RUN(test_success_brings_all_back);
	RUN(test_content_refusal_means_up);
	RUN(test_requests_from_before);
	RUN(test_nothing_sent);
	RUN(test_origin);
	RUN(test_enter_leave);
	RUN(test_pass_does_not_wait);
	RUN(test_stop_wakes_waiters);
	return unit_done();
}
