/*
 * test_ratelimit.c - the per-tenant token buckets: one second of the
 * rate, a debt for a request larger than the bucket, tokens given back,
 * and a rate changed by a reload.
 */
#include "unit.h"
#include "ratelimit.h"

/* A full bucket takes a second's worth; the next request waits for the
 * refill. */
static void test_refill(void)
{
	struct ratelimit rl;

	ratelimit_init(&rl);
	CHECK_EQ_INT(ratelimit_take(&rl, "a", 1, 100, 100, 1000), 0);
	CHECK_EQ_INT(ratelimit_take(&rl, "a", 1, 100, 1, 1000), 1);
	/* 10 ms refill 1 token: taken. */
	CHECK_EQ_INT(ratelimit_take(&rl, "a", 1, 100, 1, 1010), 0);
	/* Another tenant has a bucket of its own. */
	CHECK_EQ_INT(ratelimit_take(&rl, "b", 1, 100, 100, 1010), 0);
	ratelimit_destroy(&rl);
}

/* A request larger than the bucket passes and leaves a debt, paid back
 * at the rate before the next one passes. */
static void test_debt(void)
{
	struct ratelimit rl;

	ratelimit_init(&rl);
	CHECK_EQ_INT(ratelimit_take(&rl, "a", 1, 100, 300, 1000), 0);
	/* Debt 200: still refused 1.9 s later, taken after 2 s. */
	CHECK_EQ_INT(ratelimit_take(&rl, "a", 1, 100, 1, 2900), 1);
	CHECK_EQ_INT(ratelimit_take(&rl, "a", 1, 100, 1, 3010), 0);
	ratelimit_destroy(&rl);
}

/* A reload lowers the rate while the tenant has a debt: it is paid back
 * in the time it would have taken at the old rate, not at the new rate
 * in samples (200000 samples at 10/s: hours of 429 for a one-second
 * debt). */
static void test_rate_lowered_with_debt(void)
{
	struct ratelimit rl;
	uint64_t t = 1000;

	ratelimit_init(&rl);
	/* 100000/s: 200000 samples pass, a debt of one second. */
	CHECK_EQ_INT(ratelimit_take(&rl, "a", 1, 100000, 200000, t), 0);
	/* Lowered to 10/s: refused within the second, taken after it. */
	CHECK_EQ_INT(ratelimit_take(&rl, "a", 1, 10, 1, t + 900), 1);
	CHECK_EQ_INT(ratelimit_take(&rl, "a", 1, 10, 1, t + 1100), 0);
	/* And then held to the new rate: 10 a second. */
	CHECK_EQ_INT(ratelimit_take(&rl, "a", 1, 10, 20, t + 1200), 0);
	CHECK_EQ_INT(ratelimit_take(&rl, "a", 1, 10, 1, t + 2000), 1);
	ratelimit_destroy(&rl);
}

/* A raised rate: what is left of the bucket is the same share of it. */
static void test_rate_raised(void)
{
	struct ratelimit rl;

	ratelimit_init(&rl);
	CHECK_EQ_INT(ratelimit_take(&rl, "a", 1, 10, 10, 1000), 0);
	/* Empty at 10/s; at 1000/s still empty at once, then refilling at
	 * the new rate: 10 ms bring 10 tokens. */
	CHECK_EQ_INT(ratelimit_take(&rl, "a", 1, 1000, 1, 1000), 1);
	CHECK_EQ_INT(ratelimit_take(&rl, "a", 1, 1000, 10, 1011), 0);
	ratelimit_destroy(&rl);
}

/* Tokens given back (a resend, the HA replica not elected) fill the
 * bucket, never past one second. */
static void test_give_back(void)
{
	struct ratelimit rl;

	ratelimit_init(&rl);
	CHECK_EQ_INT(ratelimit_take(&rl, "a", 1, 100, 100, 1000), 0);
	ratelimit_give_back(&rl, "a", 1, 100, 100);
	CHECK_EQ_INT(ratelimit_take(&rl, "a", 1, 100, 100, 1000), 0);
	ratelimit_give_back(&rl, "a", 1, 100, 1000);
	CHECK_EQ_INT(ratelimit_take(&rl, "a", 1, 100, 100, 1000), 0);
	CHECK_EQ_INT(ratelimit_take(&rl, "a", 1, 100, 1, 1000), 1);
	ratelimit_destroy(&rl);
}

/* Tokens given back at the rate they were taken at, after a reload
 * changed it: counted at that rate, not added to (and cut to) a bucket
 * counted at another. */
static void test_give_back_across_reload(void)
{
	struct ratelimit rl;

	ratelimit_init(&rl);
	CHECK_EQ_INT(ratelimit_take(&rl, "a", 1, 100, 50, 1000), 0);
	/* The reload: 1000/s; half the bucket is 500 tokens now. */
	CHECK_EQ_INT(ratelimit_take(&rl, "a", 1, 1000, 1, 1000), 0);
	/* The first request turns out a resend: its 50 at 100/s go back. */
	ratelimit_give_back(&rl, "a", 1, 100, 50);
	/* Nearly full at 1000/s: 600 taken, and still some left. */
	CHECK_EQ_INT(ratelimit_take(&rl, "a", 1, 1000, 600, 1000), 0);
	CHECK_EQ_INT(ratelimit_take(&rl, "a", 1, 1000, 1, 1000), 0);
	ratelimit_destroy(&rl);
}

int main(void)
{
	RUN(test_refill);
	RUN(test_debt);
	RUN(test_rate_lowered_with_debt);
	RUN(test_rate_raised);
	RUN(test_give_back);
	RUN(test_give_back_across_reload);
	return unit_done();
}
