/*
 * test_clock.c - clock_age_ms: the age of a stored wall-clock time never
 * goes negative (a time after now is age 0) and, with no step of the wall
 * clock, is the plain difference. The steps themselves are tested with
 * libfaketime in tests/integration/t_clockstep.sh.
 */
#include "clock.h"

#include <stdint.h>

#include "unit.h"

static void test_age_plain(void)
{
	uint64_t wall, age;

	clock_start();
	wall = clock_wall_ms();
	age = clock_age_ms(wall - 5000);
	CHECK(age >= 5000);
	CHECK(age < 5000 + 60000);
	CHECK(clock_age_ms(0) >= wall - 60000);
}

static void test_age_future_is_zero(void)
{
	uint64_t wall = clock_wall_ms();

	CHECK_EQ_INT(clock_age_ms(wall + 60000), 0);
	CHECK_EQ_INT(clock_age_ms(wall + 8ull * 86400000), 0);
	CHECK_EQ_INT(clock_age_ms(UINT64_MAX), 0);
}

static void test_age_now_not_ahead_of_wall(void)
{
	uint64_t before = clock_wall_ms();
	uint64_t now = clock_age_now_ms();

	CHECK(now <= clock_wall_ms());
	CHECK(now + 60000 >= before);
}

int main(void)
{
	RUN(test_age_plain);
	RUN(test_age_future_is_zero);
	RUN(test_age_now_not_ahead_of_wall);
	return unit_done();
}
