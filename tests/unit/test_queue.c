/*
 * test_queue.c - the delivery index: what queue_claim hands a forwarder
 * (new entries, ranges to send again, one entry at a time after
 * QUEUE_ISOLATE), queue_taken/queue_unclaim/queue_done, the lanes (one
 * request in flight each, in parallel up to the cap per tenant, tenants
 * first then the lane furthest behind, entries of version 1 by lane 0
 * alone, the cursors found at start), the backoff after QUEUE_RETRY,
 * tenants taking turns, and the sums queue_totals and queue_heads
 * report.
 *
 * Most tests follow one lane: one_lane() makes the tenant's other lanes
 * through everything, as if they had no part in its entries.
 *
 * Every claim here is made when some tenant is ready, so queue_claim
 * returns at once; alarm() ends a run that would hang.
 */
#include "queue.h"

#include <string.h>
#include <unistd.h>

#include "unit.h"

static void add(struct queue *q, const char *t, uint64_t seq)
{
	queue_added(q, t, strlen(t), seq, 100, 10, 1000 + seq);
}

/* Lanes 1.. of tenant t are through everything: only lane 0 has work. */
static void one_lane(struct queue *q, const char *t)
{
	for (unsigned l = 1; l < QUEUE_LANES; l++)
		queue_lane_through(q, t, strlen(t), l, 1000000);
}

/* The request was delivered and the writer committed that. */
static void sent(struct queue *q, const struct queue_job *j, uint64_t first,
		 uint64_t last)
{
	queue_done(q, j, QUEUE_SENT, first, last, 0);
	queue_lane_acked(q, j->id, j->idlen, j->lane);
}

static int claim(struct queue *q, unsigned max_inflight, struct queue_job *j)
{
	memset(j, 0, sizeof(*j));
	return queue_claim(q, max_inflight, j);
}

static void test_claim_fresh_and_taken(void)
{
	struct queue q;
	struct queue_job j;
	struct queue_totals t;

	queue_init(&q);
	add(&q, "a", 1);
	add(&q, "a", 2);
	add(&q, "a", 3);
	one_lane(&q, "a");
	queue_totals(&q, &t);
	CHECK_EQ_INT(t.entries, 3);
	CHECK_EQ_INT(t.bytes, 300);
	CHECK_EQ_INT(t.samples, 30);
	CHECK_EQ_INT(t.oldest_ms, 1001);
	CHECK_EQ_INT(claim(&q, 4, &j), 0);
	CHECK_STR(j.id, "a");
	CHECK_EQ_INT(j.first, 1);
	CHECK_EQ_INT(j.last, 3);
	CHECK_EQ_INT(j.fresh, 1);
	CHECK_EQ_INT(j.isolate, 0);
	/* The request holds 1..2; 3 is left for the next claim. */
	queue_taken(&q, &j, 2, 1, 2);
	sent(&q, &j, 1, 2);
	CHECK_EQ_INT(claim(&q, 4, &j), 0);
	CHECK_EQ_INT(j.first, 3);
	CHECK_EQ_INT(j.last, 3);
	CHECK_EQ_INT(j.fresh, 1);
	queue_destroy(&q);
}

static void test_unclaim(void)
{
	struct queue q;
	struct queue_job j, j2;

	queue_init(&q);
	add(&q, "a", 1);
	add(&q, "a", 2);
	one_lane(&q, "a");
	CHECK_EQ_INT(claim(&q, 1, &j), 0);
	queue_unclaim(&q, &j);
	/* As if it had not been made: the same entries, in flight 0 again. */
	CHECK_EQ_INT(claim(&q, 1, &j2), 0);
	CHECK_EQ_INT(j2.first, 1);
	CHECK_EQ_INT(j2.last, 2);
	CHECK_EQ_INT(j2.fresh, 1);
	/* A range to send again that is given back goes first again. */
	queue_taken(&q, &j2, 2, 1, 2);
	queue_done(&q, &j2, QUEUE_RETRY, 1, 2, 0);
	CHECK_EQ_INT(claim(&q, 1, &j), 0);
	CHECK_EQ_INT(j.fresh, 0);
	CHECK_EQ_INT(j.attempts, 1);
	queue_unclaim(&q, &j);
	CHECK_EQ_INT(claim(&q, 1, &j2), 0);
	CHECK_EQ_INT(j2.fresh, 0);
	CHECK_EQ_INT(j2.first, 1);
	CHECK_EQ_INT(j2.last, 2);
	queue_destroy(&q);
}

static void test_retry_goes_first(void)
{
	struct queue q;
	struct queue_job j, j2;

	queue_init(&q);
	add(&q, "a", 1);
	one_lane(&q, "a");
	CHECK_EQ_INT(claim(&q, 4, &j), 0);
	queue_taken(&q, &j, 1, 1, 1);
	add(&q, "a", 2);
	queue_done(&q, &j, QUEUE_RETRY, 1, 1, 0);
	/* The failed entry goes before the new one. */
	CHECK_EQ_INT(claim(&q, 4, &j2), 0);
	CHECK_EQ_INT(j2.fresh, 0);
	CHECK_EQ_INT(j2.first, 1);
	CHECK_EQ_INT(j2.last, 1);
	queue_taken(&q, &j2, 1, 1, 1);
	sent(&q, &j2, 1, 1);
	CHECK_EQ_INT(claim(&q, 4, &j), 0);
	CHECK_EQ_INT(j.fresh, 1);
	CHECK_EQ_INT(j.first, 2);
	CHECK_EQ_INT(j.attempts, 0);
	queue_destroy(&q);
}

static void test_retry_taken_short(void)
{
	struct queue q;
	struct queue_job j, j2;

	queue_init(&q);
	add(&q, "a", 1);
	add(&q, "a", 2);
	add(&q, "a", 3);
	one_lane(&q, "a");
	CHECK_EQ_INT(claim(&q, 4, &j), 0);
	queue_taken(&q, &j, 3, 1, 3);
	queue_done(&q, &j, QUEUE_RETRY, 1, 3, 0);
	CHECK_EQ_INT(claim(&q, 4, &j2), 0);
	CHECK_EQ_INT(j2.first, 1);
	CHECK_EQ_INT(j2.last, 3);
	/* The resend holds 1..2 only: 3 is put back to send again. */
	queue_taken(&q, &j2, 2, 1, 2);
	sent(&q, &j2, 1, 2);
	CHECK_EQ_INT(claim(&q, 4, &j), 0);
	CHECK_EQ_INT(j.fresh, 0);
	CHECK_EQ_INT(j.first, 3);
	CHECK_EQ_INT(j.last, 3);
	queue_destroy(&q);
}

static void test_isolate(void)
{
	struct queue q;
	struct queue_job j;

	queue_init(&q);
	add(&q, "a", 1);
	add(&q, "a", 2);
	one_lane(&q, "a");
	CHECK_EQ_INT(claim(&q, 4, &j), 0);
	queue_taken(&q, &j, 2, 1, 2);
	queue_done(&q, &j, QUEUE_ISOLATE, 1, 2, 0);
	CHECK_EQ_INT(claim(&q, 4, &j), 0);
	CHECK_EQ_INT(j.isolate, 1);
	CHECK_EQ_INT(j.fresh, 0);
	CHECK_EQ_INT(j.first, 1);
	CHECK_EQ_INT(j.last, 2);
	/* Isolating is not a failure: no backoff, no attempt counted. */
	CHECK_EQ_INT(j.attempts, 0);
	queue_destroy(&q);
}

static void test_backoff(void)
{
	struct queue q;
	struct queue_job j;
	struct queue_totals t;

	queue_init(&q);
	add(&q, "a", 1);
	add(&q, "b", 1);
	one_lane(&q, "a");
	one_lane(&q, "b");
	CHECK_EQ_INT(claim(&q, 4, &j), 0);
	CHECK_STR(j.id, "a");
	queue_taken(&q, &j, 1, 1, 1);
	queue_done(&q, &j, QUEUE_RETRY, 1, 1, 3600 * 1000);
	queue_totals(&q, &t);
	CHECK_EQ_INT(t.tenants_waiting, 1);
	/* a backs off for an hour: b is served, then a's new entries wait. */
	add(&q, "a", 2);
	CHECK_EQ_INT(claim(&q, 4, &j), 0);
	CHECK_STR(j.id, "b");
	queue_taken(&q, &j, 1, 1, 1);
	sent(&q, &j, 1, 1);
	add(&q, "b", 2);
	CHECK_EQ_INT(claim(&q, 4, &j), 0);
	CHECK_STR(j.id, "b");
	CHECK_EQ_INT(j.first, 2);
	queue_destroy(&q);
}

/* A claim deferred at a down upstream's gate goes back untouched; the
 * tenant is not claimed again until the time given or a change of the
 * gate, and the other tenants are served meanwhile. */
static void test_defer(void)
{
	struct queue q;
	struct queue_job j;

	queue_init(&q);
	add(&q, "a", 1);
	add(&q, "b", 1);
	one_lane(&q, "a");
	one_lane(&q, "b");
	CHECK_EQ_INT(claim(&q, 4, &j), 0);
	CHECK_STR(j.id, "a");
	queue_defer(&q, &j, 3600 * 1000, queue_gate_seen(&q));
	CHECK_EQ_INT(claim(&q, 4, &j), 0);
	CHECK_STR(j.id, "b");
	queue_taken(&q, &j, 1, 1, 1);
	sent(&q, &j, 1, 1);
	add(&q, "b", 2);
	CHECK_EQ_INT(claim(&q, 4, &j), 0);
	CHECK_STR(j.id, "b");
	queue_taken(&q, &j, 1, 2, 2);
	sent(&q, &j, 2, 2);
	/* The gate changed: a's claim is as it was, and no attempt counted. */
	queue_gate_changed(&q);
	CHECK_EQ_INT(claim(&q, 4, &j), 0);
	CHECK_STR(j.id, "a");
	CHECK_EQ_INT(j.first, 1);
	CHECK_EQ_INT(j.fresh, 1);
	CHECK_EQ_INT(j.attempts, 0);
	queue_destroy(&q);
}

/* The gate changed between its answer and the defer (another forwarder's
 * probe came back): the claim is given back without a wait. */
static void test_defer_after_change(void)
{
	struct queue q;
	struct queue_job j;
	struct queue_tenant *t;
	uint64_t seen;
	int deferred;

	queue_init(&q);
	add(&q, "a", 1);
	one_lane(&q, "a");
	CHECK_EQ_INT(claim(&q, 4, &j), 0);
	seen = queue_gate_seen(&q);
	queue_gate_changed(&q);
	queue_defer(&q, &j, 3600 * 1000, seen);
	pthread_mutex_lock(&q.lock);
	t = queue_tenant_get(&q, "a", 1, 0);
	deferred = t == NULL || t->gate_at_ms != 0;
	pthread_mutex_unlock(&q.lock);
	CHECK_EQ_INT(deferred, 0);
	if (!deferred) { /* a claim would wait an hour */
		CHECK_EQ_INT(claim(&q, 4, &j), 0);
		CHECK_STR(j.id, "a");
		CHECK_EQ_INT(j.first, 1);
	}
	queue_destroy(&q);
}

/* inflight_per_tenant caps a tenant's lanes in flight: at the cap the
 * next claim serves another tenant; below it, another lane of the same. */
static void test_inflight_cap(void)
{
	struct queue q;
	struct queue_job j, j2;

	queue_init(&q);
	add(&q, "a", 1);
	add(&q, "b", 1);
	one_lane(&q, "b");
	CHECK_EQ_INT(claim(&q, 1, &j), 0);
	CHECK_STR(j.id, "a");
	CHECK_EQ_INT(j.lane, 0);
	queue_taken(&q, &j, 1, 1, 1);
	/* a has its one request in flight: b is next, not a's lane 1. */
	CHECK_EQ_INT(claim(&q, 1, &j2), 0);
	CHECK_STR(j2.id, "b");
	queue_taken(&q, &j2, 1, 1, 1);
	sent(&q, &j2, 1, 1);
	/* With a cap of 2, a second lane of a goes out, the next one. */
	CHECK_EQ_INT(claim(&q, 2, &j2), 0);
	CHECK_STR(j2.id, "a");
	CHECK_EQ_INT(j2.lane, 1);
	CHECK_EQ_INT(j2.first, 1);
	queue_destroy(&q);
}

/* Each lane has its own place and one request in flight: eight lanes of a
 * tenant go in parallel over the same entries, and a lane whose request
 * is out is not claimed again until it is done. */
static void test_lanes_parallel(void)
{
	struct queue q;
	struct queue_job j[QUEUE_LANES + 1];
	unsigned seen = 0;

	queue_init(&q);
	add(&q, "a", 1);
	add(&q, "a", 2);
	add(&q, "z", 1);
	one_lane(&q, "z");
	for (unsigned l = 0; l < QUEUE_LANES; l++) {
		CHECK_EQ_INT(claim(&q, QUEUE_LANES, &j[l]), 0);
		/* Tenants first: z's lane in between. */
		if (strcmp(j[l].id, "z") == 0) {
			queue_taken(&q, &j[l], 0, 0, 0);
			l--;
			continue;
		}
		CHECK_EQ_INT(j[l].first, 1);
		CHECK_EQ_INT(j[l].last, 2);
		seen |= 1u << j[l].lane;
		queue_taken(&q, &j[l], 1, 1, 2);
	}
	CHECK_EQ_INT(seen, (1u << QUEUE_LANES) - 1);
	/* z's lanes are through, a's all in flight: a new entry of a waits
	 * for the lane that is done. */
	add(&q, "a", 3);
	sent(&q, &j[5], 1, 2);
	CHECK_EQ_INT(claim(&q, QUEUE_LANES, &j[8]), 0);
	CHECK_STR(j[8].id, "a");
	CHECK_EQ_INT(j[8].lane, j[5].lane);
	CHECK_EQ_INT(j[8].first, 3);
	queue_destroy(&q);
}

/* Of the lanes ready, the one furthest behind in the sequence goes first,
 * so that the lanes get through a backlog together. */
static void test_lane_behind_first(void)
{
	struct queue q;
	struct queue_job j;

	queue_init(&q);
	for (uint64_t seq = 1; seq <= 20; seq++)
		add(&q, "a", seq);
	/* Each lane in turn (all at entry 1); lane l's request holds
	 * entries 1..10-l: lane 7 is left furthest behind, lane 0 ahead. */
	for (unsigned l = 0; l < QUEUE_LANES; l++) {
		CHECK_EQ_INT(claim(&q, 1, &j), 0);
		CHECK_EQ_INT(j.lane, l);
		CHECK_EQ_INT(j.first, 1);
		queue_taken(&q, &j, 10 - l, 1, 10 - l);
		sent(&q, &j, 1, 10 - l);
	}
	/* In turn, lane 0 would come next (at entry 11). */
	CHECK_EQ_INT(claim(&q, 1, &j), 0);
	CHECK_EQ_INT(j.lane, 7);
	CHECK_EQ_INT(j.first, 4);
	queue_taken(&q, &j, 2, 4, 5);
	sent(&q, &j, 4, 5);
	/* Lanes 6 (at 5) and 7 (at 6) now. */
	CHECK_EQ_INT(claim(&q, 1, &j), 0);
	CHECK_EQ_INT(j.lane, 6);
	CHECK_EQ_INT(j.first, 5);
	queue_destroy(&q);
}

/* After a failed attempt the lanes go in turn: a lane that keeps failing,
 * though furthest behind, does not keep the others from theirs. */
static void test_failing_lane_not_first(void)
{
	struct queue q;
	struct queue_job j;

	queue_init(&q);
	for (uint64_t seq = 1; seq <= 4; seq++)
		add(&q, "a", seq);
	for (unsigned l = 2; l < QUEUE_LANES; l++)
		queue_lane_through(&q, "a", 1, l, 1000000);
	CHECK_EQ_INT(claim(&q, 1, &j), 0);
	CHECK_EQ_INT(j.lane, 0);
	queue_taken(&q, &j, 2, 1, 2);
	sent(&q, &j, 1, 2);
	/* Lane 1, behind, fails (no backoff here, to claim at once). */
	CHECK_EQ_INT(claim(&q, 1, &j), 0);
	CHECK_EQ_INT(j.lane, 1);
	queue_taken(&q, &j, 2, 1, 2);
	queue_done(&q, &j, QUEUE_RETRY, 1, 2, 0);
	/* Still furthest behind, but lane 0 has its turn. */
	CHECK_EQ_INT(claim(&q, 1, &j), 0);
	CHECK_EQ_INT(j.lane, 0);
	CHECK_EQ_INT(j.first, 3);
	queue_taken(&q, &j, 2, 3, 4);
	sent(&q, &j, 3, 4);
	/* A success, and the lane behind goes first again. */
	CHECK_EQ_INT(claim(&q, 1, &j), 0);
	CHECK_EQ_INT(j.lane, 1);
	CHECK_EQ_INT(j.first, 1);
	queue_destroy(&q);
}

/* A delivered lane sends nothing more until the writer committed its
 * delivery: after a crash only the request in flight goes again. */
static void test_lane_waits_for_ack(void)
{
	struct queue q;
	struct queue_job j, z;

	queue_init(&q);
	add(&q, "a", 1);
	add(&q, "z", 1);
	one_lane(&q, "a");
	one_lane(&q, "z");
	CHECK_EQ_INT(claim(&q, 8, &j), 0);
	CHECK_STR(j.id, "a");
	queue_taken(&q, &j, 1, 1, 1);
	CHECK_EQ_INT(claim(&q, 8, &z), 0);
	CHECK_STR(z.id, "z");
	queue_taken(&q, &z, 0, 0, 0);
	/* a is first in turn again, with entry 2 to send, but its lane waits
	 * for the commit of its delivery: z's new entry goes. */
	add(&q, "a", 2);
	add(&q, "z", 2);
	queue_done(&q, &j, QUEUE_SENT, 1, 1, 0);
	CHECK_EQ_INT(claim(&q, 8, &z), 0);
	CHECK_STR(z.id, "z");
	queue_taken(&q, &z, 0, 0, 0);
	queue_lane_acked(&q, "a", 1, 0);
	CHECK_EQ_INT(claim(&q, 8, &j), 0);
	CHECK_STR(j.id, "a");
	CHECK_EQ_INT(j.first, 2);
	queue_destroy(&q);
}

static int hook_calls, hook_stops;

/* The hook runs with the queue's lock held: it counts, and when told it
 * stops the queue by hand (the claim that called it then returns -1
 * after its wait, up to 1 s). */
static void hook(void *arg)
{
	struct queue *q = arg;

	hook_calls++;
	if (hook_stops)
		q->stopping = 1;
}

/* A forwarder that finds nothing to claim, or only a tenant later in
 * turn, while a lane with more to send waits for the commit of its
 * delivery calls the hook (the writer then commits soon); not while
 * another lane of the same tenant can go. */
static void test_ack_wait_hook(void)
{
	struct queue q;
	struct queue_job j, k, z;

	queue_init(&q);
	queue_on_ack_wait(&q, hook, &q);
	hook_calls = hook_stops = 0;
	add(&q, "a", 1);
	add(&q, "a", 2);
	for (unsigned l = 2; l < QUEUE_LANES; l++)
		queue_lane_through(&q, "a", 1, l, 1000000);
	CHECK_EQ_INT(claim(&q, 4, &j), 0);
	CHECK_EQ_INT(j.lane, 0);
	queue_taken(&q, &j, 1, 1, 1);
	queue_done(&q, &j, QUEUE_SENT, 1, 1, 0);
	/* Lane 1 of a can go: no call. */
	CHECK_EQ_INT(claim(&q, 4, &k), 0);
	CHECK_EQ_INT(k.lane, 1);
	CHECK_EQ_INT(hook_calls, 0);
	queue_taken(&q, &k, 1, 1, 2);
	/* z, after a in turn, goes while a's lane 0 waits: a call. */
	add(&q, "z", 3);
	one_lane(&q, "z");
	CHECK_EQ_INT(claim(&q, 4, &z), 0);
	CHECK_STR(z.id, "z");
	CHECK_EQ_INT(hook_calls, 1);
	queue_taken(&q, &z, 0, 0, 0);
	/* Nothing left to claim but a's entry 2, behind the commit. */
	hook_stops = 1;
	CHECK_EQ_INT(claim(&q, 4, &j), -1);
	CHECK_EQ_INT(hook_calls, 2);
	queue_destroy(&q);
}

/* A lane with no part in the range (entries 0) is through it, at once. */
static void test_lane_empty_advances(void)
{
	struct queue q;
	struct queue_job j;

	queue_init(&q);
	add(&q, "a", 1);
	add(&q, "a", 2);
	one_lane(&q, "a");
	CHECK_EQ_INT(claim(&q, 1, &j), 0);
	queue_taken(&q, &j, 0, 0, 0);
	add(&q, "a", 3);
	CHECK_EQ_INT(claim(&q, 1, &j), 0);
	CHECK_EQ_INT(j.lane, 0);
	CHECK_EQ_INT(j.first, 3);
	queue_destroy(&q);
}

/* The cursors found at start: a lane goes on after what it delivered. */
static void test_lane_through(void)
{
	struct queue q;
	struct queue_job j;

	queue_init(&q);
	for (uint64_t s = 1; s <= 6; s++)
		add(&q, "a", s);
	one_lane(&q, "a");
	queue_lane_through(&q, "a", 1, 0, 4);
	CHECK_EQ_INT(claim(&q, 1, &j), 0);
	CHECK_EQ_INT(j.lane, 0);
	CHECK_EQ_INT(j.first, 5);
	CHECK_EQ_INT(j.last, 6);
	queue_destroy(&q);
}

/* Entries of version 1 go first, by lane 0 alone: the other lanes of the
 * tenant wait until none is left. */
static void test_legacy_lane0_first(void)
{
	struct queue q;
	struct queue_job j;

	queue_init(&q);
	add(&q, "a", 1);
	add(&q, "a", 2);
	add(&q, "a", 3);
	queue_legacy(&q, "a", 1, 2);
	add(&q, "z", 10);
	CHECK_EQ_INT(claim(&q, QUEUE_LANES, &j), 0);
	CHECK_STR(j.id, "a");
	CHECK_EQ_INT(j.lane, 0);
	queue_taken(&q, &j, 2, 1, 2);
	/* a's lanes 1.. wait: only z's lanes are claimed now. */
	for (int i = 0; i < 3; i++) {
		struct queue_job z;
		CHECK_EQ_INT(claim(&q, QUEUE_LANES, &z), 0);
		CHECK_STR(z.id, "z");
		queue_taken(&q, &z, 0, 0, 0);
	}
	/* Lane 0 delivered 1..2 and the writer deleted them. */
	sent(&q, &j, 1, 2);
	queue_removed(&q, "a", 1, 2, 200, 20, 3, 1003);
	CHECK_EQ_INT(claim(&q, QUEUE_LANES, &j), 0);
	CHECK_STR(j.id, "a");
	CHECK(j.lane != 0);
	CHECK_EQ_INT(j.first, 3);
	queue_destroy(&q);
}

static void test_turns(void)
{
	struct queue q;
	struct queue_job j;
	const char *order[6];

	queue_init(&q);
	for (uint64_t s = 1; s <= 3; s++) {
		add(&q, "a", s);
		add(&q, "b", s);
		add(&q, "c", s);
	}
	one_lane(&q, "a");
	one_lane(&q, "b");
	one_lane(&q, "c");
	/* Each request takes one entry: the tenants take turns. */
	for (int i = 0; i < 6; i++) {
		CHECK_EQ_INT(claim(&q, 4, &j), 0);
		order[i] = j.id[0] == 'a' ? "a" : j.id[0] == 'b' ? "b" : "c";
		queue_taken(&q, &j, 1, j.first, j.first);
		sent(&q, &j, j.first, j.first);
	}
	CHECK_STR(order[0], "a");
	CHECK_STR(order[1], "b");
	CHECK_STR(order[2], "c");
	CHECK_STR(order[3], "a");
	CHECK_STR(order[4], "b");
	CHECK_STR(order[5], "c");
	queue_destroy(&q);
}

static void test_removed_and_heads(void)
{
	struct queue q;
	struct queue_head h[4];
	struct queue_totals t;

	queue_init(&q);
	add(&q, "a", 1);
	add(&q, "a", 2);
	add(&q, "b", 5);
	CHECK_EQ_INT(queue_tenant_bytes(&q, "a", 1), 200);
	CHECK_EQ_INT(queue_heads(&q, h, 4), 2);
	CHECK_STR(h[0].id, "a");
	CHECK_EQ_INT(h[0].seq, 1);
	CHECK_EQ_INT(h[1].seq, 5);
	queue_removed(&q, "a", 1, 1, 100, 10, 2, 1002);
	CHECK_EQ_INT(queue_tenant_bytes(&q, "a", 1), 100);
	CHECK_EQ_INT(queue_heads(&q, h, 4), 2);
	CHECK_EQ_INT(h[0].seq, 2);
	CHECK_EQ_INT(h[0].created_ms, 1002);
	queue_removed(&q, "a", 1, 1, 100, 10, 0, 0);
	CHECK_EQ_INT(queue_heads(&q, h, 4), 1);
	CHECK_STR(h[0].id, "b");
	queue_totals(&q, &t);
	CHECK_EQ_INT(t.entries, 1);
	CHECK_EQ_INT(t.bytes, 100);
	CHECK_EQ_INT(t.oldest_ms, 1005);
	queue_destroy(&q);
}

static void test_stop(void)
{
	struct queue q;
	struct queue_job j;

	queue_init(&q);
	add(&q, "a", 1);
	queue_stop(&q);
	CHECK_EQ_INT(claim(&q, 4, &j), -1);
	queue_destroy(&q);
}

int main(void)
{
	alarm(60);
	RUN(test_claim_fresh_and_taken);
	RUN(test_unclaim);
	RUN(test_retry_goes_first);
	RUN(test_retry_taken_short);
	RUN(test_isolate);
	RUN(test_backoff);
	RUN(test_defer);
	RUN(test_defer_after_change);
	RUN(test_inflight_cap);
	RUN(test_lanes_parallel);
	RUN(test_lane_behind_first);
	RUN(test_failing_lane_not_first);
	RUN(test_lane_waits_for_ack);
	RUN(test_ack_wait_hook);
	RUN(test_lane_empty_advances);
	RUN(test_lane_through);
	RUN(test_legacy_lane0_first);
	RUN(test_turns);
	RUN(test_removed_and_heads);
	RUN(test_stop);
	return unit_done();
}
