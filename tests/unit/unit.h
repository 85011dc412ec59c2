/*
 * unit.h - a minimal unit-test harness.
 *
 * Each test binary defines test functions and runs them with RUN(fn). A
 * failed CHECK records the failure and returns from the test. Every test
 * prints "ok - name" or "FAIL - name: file:line: what"; unit_done() prints
 * "# N passed, M failed" and gives the exit code. tests/run.sh adds the
 * lines of all binaries and integration scripts together.
 */
#ifndef RELAY_UNIT_H
#define RELAY_UNIT_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int unit_passed, unit_failed, unit_cur_failed;
static char unit_msg[512];

#define CHECK(cond)                                                           \
	do {                                                                  \
		if (!(cond)) {                                                \
			snprintf(unit_msg, sizeof(unit_msg), "%s:%d: %s",     \
				 __FILE__, __LINE__, #cond);                  \
			unit_cur_failed = 1;                                  \
			return;                                               \
		}                                                             \
	} while (0)

#define CHECK_EQ_INT(a, b)                                                    \
	do {                                                                  \
		long long unit_a = (long long)(a), unit_b = (long long)(b);   \
		if (unit_a != unit_b) {                                       \
			snprintf(unit_msg, sizeof(unit_msg),                  \
				 "%s:%d: %s == %s (%lld != %lld)", __FILE__,   \
				 __LINE__, #a, #b, unit_a, unit_b);           \
			unit_cur_failed = 1;                                  \
			return;                                               \
		}                                                             \
	} while (0)

/* The message cuts each expression to 80 bytes and each value to 120, so
 * that it fits unit_msg (and gcc's -Wformat-truncation has no case). */
#define CHECK_STR(a, b)                                                       \
	do {                                                                  \
		const char *unit_a = (a), *unit_b = (b);                      \
		if (unit_a == NULL || unit_b == NULL ||                       \
		    strcmp(unit_a, unit_b) != 0) {                            \
			snprintf(unit_msg, sizeof(unit_msg),                  \
				 "%s:%d: %.80s == %.80s (\"%.120s\" != \"%.120s\")", \
				 __FILE__, __LINE__, #a, #b,                  \
				 unit_a ? unit_a : "(null)",                  \
				 unit_b ? unit_b : "(null)");                 \
			unit_cur_failed = 1;                                  \
			return;                                               \
		}                                                             \
	} while (0)

#define RUN(fn)                                                               \
	do {                                                                  \
		unit_cur_failed = 0;                                          \
		unit_msg[0] = '\0';                                           \
		fn();                                                         \
		if (unit_cur_failed) {                                        \
			unit_failed++;                                        \
			printf("FAIL - %s: %s\n", #fn, unit_msg);             \
		} else {                                                      \
			unit_passed++;                                        \
			printf("ok - %s\n", #fn);                             \
		}                                                             \
		fflush(stdout);                                               \
	} while (0)

static inline int unit_done(void)
{
	printf("# %d passed, %d failed\n", unit_passed, unit_failed);
	return unit_failed ? 1 : 0;
}

/* Reads a whole file; returns a malloc'd buffer (caller frees) or NULL. */
static inline unsigned char *unit_read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	unsigned char *p = NULL;
	long n;

	if (f == NULL)
		return NULL;
	if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 &&
	    fseek(f, 0, SEEK_SET) == 0 && (p = malloc((size_t)n + 1)) != NULL) {
		if (fread(p, 1, (size_t)n, f) != (size_t)n) {
			free(p);
			p = NULL;
		} else {
			*len = (size_t)n;
		}
	}
	fclose(f);
	return p;
}

#endif
