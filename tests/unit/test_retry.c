/*
 * test_retry.c - what the forwarder makes of an upstream's answer: status
 * classification, the backoff between attempts, and Retry-After values.
 */
#include "retry.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "unit.h"

/* 2023-11-14T22:13:20Z, a Tuesday. */
#define NOW_S 1700000000

/* A small xorshift generator, so that every run checks the same values. */
static uint32_t rnd_state = 2463534242u;

static uint32_t rnd_next(void)
{
	rnd_state ^= rnd_state << 13;
	rnd_state ^= rnd_state >> 17;
	rnd_state ^= rnd_state << 5;
	return rnd_state;
}

/* The delay before jitter, as retry.h states it: min doubled per attempt,
 * capped at max. Computed without overflow. */
static uint64_t nominal_ms(unsigned attempt, uint64_t min_ms, uint64_t max_ms)
{
	uint64_t d = min_ms ? min_ms : 1;

	for (unsigned i = 1; i < attempt && d < max_ms; i++)
		d = d > max_ms / 2 ? max_ms : d * 2;
	return d > max_ms ? max_ms : d;
}

/* Writes t as an IMF-fixdate ("Tue, 14 Nov 2023 22:13:20 GMT"). */
static void http_date(char *out, size_t n, time_t t)
{
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(out, n, "%a, %d %b %Y %H:%M:%S GMT", &tm);
}

static void test_classify_done(void)
{
	CHECK_EQ_INT(retry_classify(200), RETRY_DONE);
	CHECK_EQ_INT(retry_classify(204), RETRY_DONE);
	CHECK_EQ_INT(retry_classify(299), RETRY_DONE);
}

static void test_classify_again(void)
{
	CHECK_EQ_INT(retry_classify(0), RETRY_AGAIN);
	CHECK_EQ_INT(retry_classify(500), RETRY_AGAIN);
	CHECK_EQ_INT(retry_classify(502), RETRY_AGAIN);
	CHECK_EQ_INT(retry_classify(503), RETRY_AGAIN);
	CHECK_EQ_INT(retry_classify(504), RETRY_AGAIN);
	CHECK_EQ_INT(retry_classify(429), RETRY_AGAIN);
	CHECK_EQ_INT(retry_classify(408), RETRY_AGAIN);
}

/* A refusal judges content only from a URL that took a request, and when
 * its text names no missing route (VictoriaMetrics, vmauth, nginx). */
static void test_classify_answer(void)
{
	static const char *const route[] = {
		"remoteAddr: \"127.0.0.1:5\"; requestURI: /api/v1/wrtie; "
		"unsupported path requested: \"/api/v1/wrtie\"",
		"missing route for \"/x\"",
		"The plain HTTP request was sent to HTTPS port",
	};

	for (size_t i = 0; i < 3; i++) {
		CHECK_EQ_INT(retry_classify_answer(400, route[i], 1),
			     RETRY_MISCONFIGURED);
		CHECK_EQ_INT(retry_classify_answer(400, route[i], 0),
			     RETRY_MISCONFIGURED);
	}
	CHECK_EQ_INT(retry_classify_answer(400, "cannot parse labels", 1),
		     RETRY_REFUSED);
	CHECK_EQ_INT(retry_classify_answer(400, NULL, 1), RETRY_REFUSED);
	CHECK_EQ_INT(retry_classify_answer(413, "too large", 1), RETRY_REFUSED);
	/* not trusted yet: kept, whatever it says */
	CHECK_EQ_INT(retry_classify_answer(400, "cannot parse labels", 0),
		     RETRY_MISCONFIGURED);
	CHECK_EQ_INT(retry_classify_answer(422, NULL, 0), RETRY_MISCONFIGURED);
	/* the rest is retry_classify's */
	CHECK_EQ_INT(retry_classify_answer(204, NULL, 0), RETRY_DONE);
	CHECK_EQ_INT(retry_classify_answer(503, NULL, 0), RETRY_AGAIN);
	CHECK_EQ_INT(retry_classify_answer(404, NULL, 1), RETRY_MISCONFIGURED);
}

/* URLs noted as having taken a request, and only those; many of them. */
static void test_trust(void)
{
	struct retry_trust t;
	char url[64];

	CHECK_EQ_INT(retry_trust_init(&t), 0);
	CHECK_EQ_INT(retry_trust_has(&t, "http://vm:8428/api/v1/write"), 0);
	retry_trust_note(&t, "http://vm:8428/api/v1/write");
	CHECK_EQ_INT(retry_trust_has(&t, "http://vm:8428/api/v1/write"), 1);
	CHECK_EQ_INT(retry_trust_has(&t, "http://vm:8428/api/v1/wrtie"), 0);
	for (int i = 0; i < 1000; i++) {
		snprintf(url, sizeof(url), "http://vm:8480/insert/%d/prom", i);
		retry_trust_note(&t, url);
		retry_trust_note(&t, url);
	}
	CHECK_EQ_INT((int)t.n, 1001);
	for (int i = 0; i < 1000; i++) {
		snprintf(url, sizeof(url), "http://vm:8480/insert/%d/prom", i);
		CHECK_EQ_INT(retry_trust_has(&t, url), 1);
	}
	CHECK_EQ_INT(retry_trust_has(&t, "http://vm:8480/insert/1000/prom"), 0);
	CHECK_EQ_INT(retry_trust_has(&t, "http://vm:8428/api/v1/write"), 1);
	retry_trust_destroy(&t);
}

/* Only an answer that condemns the content sets a batch aside. */
static void test_classify_refused(void)
{
	CHECK_EQ_INT(retry_classify(400), RETRY_REFUSED);
	CHECK_EQ_INT(retry_classify(409), RETRY_REFUSED);
	CHECK_EQ_INT(retry_classify(413), RETRY_REFUSED);
	CHECK_EQ_INT(retry_classify(422), RETRY_REFUSED);
}

/* A wrong URL, redirect or credential says nothing about the batch: it is
 * kept and sent again. */
static void test_classify_misconfigured(void)
{
	static const long st[] = { 100, 300, 301, 302, 307, 308, 401, 403,
				   404, 405, 406, 410, 411, 415, 499 };

	for (size_t i = 0; i < sizeof(st) / sizeof(st[0]); i++)
		CHECK_EQ_INT(retry_classify(st[i]), RETRY_MISCONFIGURED);
}

/* With rnd 0 the jitter takes the lowest value: half the nominal delay. */
static void test_backoff_doubles_from_min(void)
{
	CHECK_EQ_INT(retry_backoff_ms(1, 100, 30000, 0), 50);
	CHECK_EQ_INT(retry_backoff_ms(2, 100, 30000, 0), 100);
	CHECK_EQ_INT(retry_backoff_ms(3, 100, 30000, 0), 200);
	CHECK_EQ_INT(retry_backoff_ms(4, 100, 30000, 0), 400);
	CHECK_EQ_INT(retry_backoff_ms(9, 100, 30000, 0), 12800);
	/* 100 * 2^9 = 51200 is past the cap. */
	CHECK_EQ_INT(retry_backoff_ms(10, 100, 30000, 0), 15000);
	CHECK_EQ_INT(retry_backoff_ms(50, 100, 30000, 0), 15000);
	/* The highest jitter value gives the nominal delay itself. */
	CHECK_EQ_INT(retry_backoff_ms(1, 100, 30000, 50), 100);
	CHECK_EQ_INT(retry_backoff_ms(3, 100, 30000, 200), 400);
	CHECK_EQ_INT(retry_backoff_ms(12, 100, 30000, 15000), 30000);
}

/* For many attempts and random values: within [nominal/2, nominal], never
 * above max, and the nominal delay doubles until the cap. */
static void test_backoff_bounds(void)
{
	static const uint64_t mins[] = { 1, 2, 100, 250, 1000 };
	static const uint64_t maxs[] = { 1, 100, 30000, 86400000 };
	static const uint32_t edges[] = { 0, 1, 2, 0x7fffffffu, 0x80000000u,
					  0xfffffffeu, 0xffffffffu };

	for (size_t i = 0; i < sizeof(mins) / sizeof(mins[0]); i++) {
		for (size_t j = 0; j < sizeof(maxs) / sizeof(maxs[0]); j++) {
			uint64_t min = mins[i], max = maxs[j];

			if (min > max)
				continue;
			for (unsigned a = 1; a <= 64; a++) {
				uint64_t d = nominal_ms(a, min, max);

				if (a > 1)
					CHECK(d == max ||
					      d == 2 * nominal_ms(a - 1, min, max));
				for (int k = 0; k < 200 + 7; k++) {
					uint32_t r = k < 7 ? edges[k] : rnd_next();
					uint64_t got = retry_backoff_ms(a, min, max, r);

					CHECK(got <= max);
					CHECK(got <= d);
					CHECK(got >= d / 2);
				}
			}
		}
	}
}

/* Attempt counters that only ever grow must not wrap the delay around. */
static void test_backoff_many_attempts(void)
{
	unsigned attempts[] = { 100, 1000, 100000, 0xffffffffu };

	for (size_t i = 0; i < sizeof(attempts) / sizeof(attempts[0]); i++) {
		CHECK_EQ_INT(retry_backoff_ms(attempts[i], 100, 30000, 0), 15000);
		CHECK_EQ_INT(retry_backoff_ms(attempts[i], 100, 30000, 15000),
			     30000);
	}
}

/*
 * A cap beyond what doubling can reach without overflow: the delay must
 * still be at least min/2 and at most max, not wrap to 0.
 */
static void test_backoff_huge_cap(void)
{
	for (unsigned a = 1; a <= 200; a++) {
		uint64_t got = retry_backoff_ms(a, 100, UINT64_MAX, 0);

		if (got < 50) {
			snprintf(unit_msg, sizeof(unit_msg),
				 "%s:%d: attempt %u with max UINT64_MAX gives "
				 "%llu ms (below min/2): the doubling wrapped",
				 __FILE__, __LINE__, a, (unsigned long long)got);
			unit_cur_failed = 1;
			return;
		}
	}
}

static void test_retry_after_seconds(void)
{
	CHECK_EQ_INT(retry_after_ms("5", NOW_S, 600000), 5000);
	CHECK_EQ_INT(retry_after_ms(" 120 ", NOW_S, 600000), 120000);
	CHECK_EQ_INT(retry_after_ms("120", NOW_S, 600000), 120000);
	CHECK_EQ_INT(retry_after_ms("0", NOW_S, 600000), 0);
}

static void test_retry_after_cap(void)
{
	CHECK_EQ_INT(retry_after_ms("5", NOW_S, 3000), 3000);
	CHECK_EQ_INT(retry_after_ms("3", NOW_S, 3000), 3000);
	CHECK_EQ_INT(retry_after_ms("4", NOW_S, 3500), 3500);
	CHECK_EQ_INT(retry_after_ms("86400", NOW_S, 30000), 30000);
	/* Far more digits than fit in 64 bits: capped, not wrapped. */
	CHECK_EQ_INT(retry_after_ms("99999999999999999999999999999", NOW_S,
				    30000), 30000);
	CHECK_EQ_INT(retry_after_ms("18446744073709552", NOW_S, 30000), 30000);
}

static void test_retry_after_date(void)
{
	char date[64];

	http_date(date, sizeof(date), NOW_S);
	CHECK_STR(date, "Tue, 14 Nov 2023 22:13:20 GMT");
	http_date(date, sizeof(date), NOW_S + 120);
	CHECK_EQ_INT(retry_after_ms(date, NOW_S, 600000), 120000);
	/* Capped. */
	CHECK_EQ_INT(retry_after_ms(date, NOW_S, 60000), 60000);
	/* Now and the past: no wait. */
	http_date(date, sizeof(date), NOW_S);
	CHECK_EQ_INT(retry_after_ms(date, NOW_S, 600000), 0);
	http_date(date, sizeof(date), NOW_S - 3600);
	CHECK_EQ_INT(retry_after_ms(date, NOW_S, 600000), 0);
	CHECK_EQ_INT(retry_after_ms("Thu, 01 Jan 1970 00:00:00 GMT", NOW_S,
				    600000), 0);
	/* The obsolete RFC 850 form that HTTP still accepts. */
	CHECK_EQ_INT(retry_after_ms("Tuesday, 14-Nov-23 22:15:20 GMT", NOW_S,
				    600000), 120000);
}

static void test_retry_after_garbage(void)
{
	CHECK_EQ_INT(retry_after_ms("", NOW_S, 600000), -1);
	CHECK_EQ_INT(retry_after_ms("   ", NOW_S, 600000), -1);
	CHECK_EQ_INT(retry_after_ms("soon", NOW_S, 600000), -1);
	CHECK_EQ_INT(retry_after_ms("5s", NOW_S, 600000), -1);
	CHECK_EQ_INT(retry_after_ms("5 6", NOW_S, 600000), -1);
	CHECK_EQ_INT(retry_after_ms("1.5", NOW_S, 600000), -1);
	CHECK_EQ_INT(retry_after_ms("0x10", NOW_S, 600000), -1);
	CHECK_EQ_INT(retry_after_ms("-5", NOW_S, 600000), -1);
	CHECK_EQ_INT(retry_after_ms("+5", NOW_S, 600000), -1);
}

/* Retry-After is honoured within [min, max]: 0, a past date or a huge
 * value never make a hot loop or an endless wait; garbage falls back to
 * the backoff. */
static void test_retry_delay(void)
{
	char date[64];

	CHECK_EQ_INT(retry_delay_ms("0", NOW_S, 1, 100, 30000, 0), 100);
	CHECK_EQ_INT(retry_delay_ms("0", NOW_S, 50, 100, 30000, 0), 100);
	CHECK_EQ_INT(retry_delay_ms("5", NOW_S, 1, 100, 30000, 0), 5000);
	CHECK_EQ_INT(retry_delay_ms("86400", NOW_S, 1, 100, 30000, 0), 30000);
	CHECK_EQ_INT(retry_delay_ms("999999999999999999999", NOW_S, 1, 100,
				    30000, 0), 30000);
	http_date(date, sizeof(date), NOW_S - 3600);
	CHECK_EQ_INT(retry_delay_ms(date, NOW_S, 1, 100, 30000, 0), 100);
	http_date(date, sizeof(date), NOW_S + 10);
	CHECK_EQ_INT(retry_delay_ms(date, NOW_S, 1, 100, 30000, 0), 10000);
	/* No value or garbage: the backoff (half of nominal with rnd 0). */
	CHECK_EQ_INT(retry_delay_ms(NULL, NOW_S, 3, 100, 30000, 0), 200);
	CHECK_EQ_INT(retry_delay_ms("", NOW_S, 3, 100, 30000, 0), 200);
	CHECK_EQ_INT(retry_delay_ms("soon", NOW_S, 3, 100, 30000, 0), 200);
	CHECK_EQ_INT(retry_delay_ms("-1", NOW_S, 1, 100, 30000, 0), 50);
	/* Never 0, whatever the bounds. */
	CHECK(retry_delay_ms("0", NOW_S, 1, 0, 0, 0) >= 1);
}

int main(void)
{
	RUN(test_classify_done);
	RUN(test_classify_again);
	RUN(test_classify_refused);
	RUN(test_classify_misconfigured);
	RUN(test_classify_answer);
	RUN(test_trust);
	RUN(test_backoff_doubles_from_min);
	RUN(test_backoff_bounds);
	RUN(test_backoff_many_attempts);
	RUN(test_backoff_huge_cap);
	RUN(test_retry_after_seconds);
	RUN(test_retry_after_cap);
	RUN(test_retry_after_date);
	RUN(test_retry_after_garbage);
	RUN(test_retry_delay);
	return unit_done();
}
