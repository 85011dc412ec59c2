/*
 * test_inflight.c - bodies and decoded bytes counted against
 * max_inflight_bytes: bodies hold at most three quarters of it, both
 * together at most all of it, one request alone may pass either, and
 * every charge comes back on release.
 */
#include "inflight.h"
#include "metrics.h"
#include "unit.h"

#define MIB (1024ull * 1024)

static void test_bodies_stop_at_three_quarters(void)
{
	uint64_t held[8] = {0};
	int i;

	/* 100 MiB limit: bodies may take 75 MiB. */
	for (i = 0; i < 7; i++)
		CHECK_EQ_INT(inflight_body_charge(&held[i], 10 * MIB, 100 * MIB), 0);
	CHECK_EQ_INT(metric_get(&metrics.inflight_body_bytes), 70 * MIB);
	CHECK_EQ_INT(inflight_body_charge(&held[7], 10 * MIB, 100 * MIB), -1);
	CHECK_EQ_INT(held[7], 0);
	/* A small body still fits in what is left. */
	CHECK_EQ_INT(inflight_body_charge(&held[7], 5 * MIB, 100 * MIB), 0);
	/* Growing a charge counts only the difference. */
	CHECK_EQ_INT(inflight_body_charge(&held[7], 6 * MIB, 100 * MIB), -1);
	CHECK_EQ_INT(inflight_body_charge(&held[7], 5 * MIB, 100 * MIB), 0);
	for (i = 0; i < 8; i++)
		inflight_body_release(&held[i]);
	CHECK_EQ_INT(metric_get(&metrics.inflight_body_bytes), 0);
	CHECK_EQ_INT(held[0], 0);
}

static void test_decoding_keeps_its_quarter(void)
{
	uint64_t body = 0, other = 0, dec = 0, late = 0;

	CHECK_EQ_INT(inflight_body_charge(&other, 70 * MIB, 100 * MIB), 0);
	CHECK_EQ_INT(inflight_body_charge(&body, 1 * MIB, 100 * MIB), 0);
	/* 71 MiB of bodies: 29 MiB left for decoding. */
	CHECK_EQ_INT(inflight_decoded_charge(&dec, 30 * MIB, body, 100 * MIB), -1);
	CHECK_EQ_INT(dec, 0);
	CHECK_EQ_INT(inflight_decoded_charge(&dec, 29 * MIB, body, 100 * MIB), 0);
	CHECK_EQ_INT(metric_get(&metrics.inflight_bytes), 29 * MIB);
	/* Decoded bytes count against new bodies too. */
	CHECK_EQ_INT(inflight_body_charge(&late, 1 * MIB, 100 * MIB), -1);
	inflight_decoded_release(&dec);
	inflight_body_release(&body);
	inflight_body_release(&other);
	CHECK_EQ_INT(metric_get(&metrics.inflight_bytes), 0);
	CHECK_EQ_INT(metric_get(&metrics.inflight_body_bytes), 0);
}

static void test_one_request_alone_may_pass(void)
{
	uint64_t body = 0, dec = 0, other = 0;

	/* Limit 4 MiB, body 8 MiB, decoded 16 MiB: nothing else is held. */
	CHECK_EQ_INT(inflight_body_charge(&body, 8 * MIB, 4 * MIB), 0);
	CHECK_EQ_INT(inflight_decoded_charge(&dec, 16 * MIB, body, 4 * MIB), 0);
	/* But nothing else gets in beside it. */
	CHECK_EQ_INT(inflight_body_charge(&other, 1, 4 * MIB), -1);
	inflight_decoded_release(&dec);
	inflight_body_release(&body);
	CHECK_EQ_INT(inflight_body_charge(&other, 1, 4 * MIB), 0);
	inflight_body_release(&other);
}

int main(void)
{
	RUN(test_bodies_stop_at_three_quarters);
	RUN(test_decoding_keeps_its_quarter);
	RUN(test_one_request_alone_may_pass);
	return unit_done();
}
