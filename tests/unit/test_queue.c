/*
 * test_queue.c - the delivery index: what queue_claim hands a forwarder
 * (new entries, ranges to send again, one entry at a time after
 * QUEUE_ISOLATE), queue_taken/queue_unclaim/queue_done, the cap on
 * requests in flight per tenant, the backoff after QUEUE_RETRY, tenants
 * taking turns, and the sums queue_totals and queue_heads report.
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
	queue_done(&q, &j2, QUEUE_SENT, 1, 1, 0);
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
	CHECK_EQ_INT(claim(&q, 4, &j), 0);
	queue_taken(&q, &j, 3, 1, 3);
	queue_done(&q, &j, QUEUE_RETRY, 1, 3, 0);
	CHECK_EQ_INT(claim(&q, 4, &j2), 0);
	CHECK_EQ_INT(j2.first, 1);
	CHECK_EQ_INT(j2.last, 3);
	/* The resend holds 1..2 only: 3 is put back to send again. */
	queue_taken(&q, &j2, 2, 1, 2);
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
	queue_done(&q, &j, QUEUE_SENT, 1, 1, 0);
	add(&q, "b", 2);
	CHECK_EQ_INT(claim(&q, 4, &j), 0);
	CHECK_STR(j.id, "b");
	CHECK_EQ_INT(j.first, 2);
	queue_destroy(&q);
}

static void test_inflight_cap(void)
{
	struct queue q;
	struct queue_job j, j2;

	queue_init(&q);
	add(&q, "a", 1);
	CHECK_EQ_INT(claim(&q, 1, &j), 0);
	queue_taken(&q, &j, 1, 1, 1);
	add(&q, "a", 2);
	add(&q, "b", 1);
	/* a has its one request in flight: b is next, not a's entry 2. */
	CHECK_EQ_INT(claim(&q, 1, &j2), 0);
	CHECK_STR(j2.id, "b");
	queue_taken(&q, &j2, 1, 1, 1);
	queue_done(&q, &j, QUEUE_SENT, 1, 1, 0);
	CHECK_EQ_INT(claim(&q, 1, &j), 0);
	CHECK_STR(j.id, "a");
	CHECK_EQ_INT(j.first, 2);
	/* With a cap of 2, a second request of a tenant may go out. */
	queue_taken(&q, &j, 1, 2, 2);
	add(&q, "a", 3);
	CHECK_EQ_INT(claim(&q, 2, &j2), 0);
	CHECK_STR(j2.id, "a");
	CHECK_EQ_INT(j2.first, 3);
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
	/* Each request takes one entry: the tenants take turns. */
	for (int i = 0; i < 6; i++) {
		CHECK_EQ_INT(claim(&q, 4, &j), 0);
		order[i] = j.id[0] == 'a' ? "a" : j.id[0] == 'b' ? "b" : "c";
		queue_taken(&q, &j, 1, j.first, j.first);
		queue_done(&q, &j, QUEUE_SENT, j.first, j.first, 0);
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
	RUN(test_inflight_cap);
	RUN(test_turns);
	RUN(test_removed_and_heads);
	RUN(test_stop);
	return unit_done();
}
