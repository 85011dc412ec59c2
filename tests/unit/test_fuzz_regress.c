/*
 * test_fuzz_regress.c - replays the fuzz targets' inputs through the same
 * checks the targets run (tests/fuzz/decoder_check.h, config_check.h,
 * answer_check.h): the seed corpora, and the inputs the fuzzers found a
 * bug with, kept under tests/fuzz/regress/{decoder,config,answer}/ so that
 * the bug stays fixed.
 * Under make check the sanitizers watch the replay too.
 *
 * Files are read from $REPO/tests/fuzz, or tests/fuzz when REPO is unset
 * (run from the top of the tree).
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "unit.h"

#include "../fuzz/answer_check.h"
#include "../fuzz/config_check.h"
#include "../fuzz/decoder_check.h"

typedef const char *(*check_fn)(const uint8_t *data, size_t size);

static int name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/*
 * Runs check on every file of tests/fuzz/SUB, in name order. Returns the
 * number of files run (0 when the directory is missing and need is 0), or
 * -1 when the directory cannot be read; on the first failure stops and
 * writes "SUB/FILE: what" into unit_msg.
 */
static long replay(const char *sub, check_fn check, int need, int *failed)
{
	const char *repo = getenv("REPO");
	char dir[1024], path[2048];
	char **names = NULL, **p;
	size_t n = 0, cap = 0, i, len;
	unsigned char *data;
	struct dirent *de;
	const char *e;
	long runs = 0;
	DIR *d;

	*failed = 0;
	snprintf(dir, sizeof(dir), "%s/tests/fuzz/%s",
		 repo != NULL && *repo != '\0' ? repo : ".", sub);
	if ((d = opendir(dir)) == NULL) {
		if (!need)
			return 0;
		snprintf(unit_msg, sizeof(unit_msg), "cannot read %.400s", dir);
		return -1;
	}
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		if (n == cap) {
			cap = cap ? 2 * cap : 64;
			if ((p = realloc(names, cap * sizeof(*p))) == NULL)
				break;
			names = p;
		}
		if ((names[n] = strdup(de->d_name)) != NULL)
			n++;
	}
	closedir(d);
	if (n > 0)
		qsort(names, n, sizeof(*names), name_cmp);
	for (i = 0; i < n && !*failed; i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
		len = 0;
		if ((data = unit_read_file(path, &len)) == NULL) {
			snprintf(unit_msg, sizeof(unit_msg), "cannot read %.400s",
				 path);
			*failed = 1;
			break;
		}
		if ((e = check(data, len)) != NULL) {
			snprintf(unit_msg, sizeof(unit_msg), "%s/%s: %s", sub,
				 names[i], e);
			*failed = 1;
		}
		free(data);
		runs++;
	}
	for (i = 0; i < n; i++)
		free(names[i]);
	free(names);
	return runs;
}

/* Fails the test as replay() reported; with need set, a missing or empty
 * directory fails too (regress/ directories exist once there is a find). */
#define REPLAY(sub, check, need)                                              \
	do {                                                                  \
		int failed_;                                                  \
		long runs_ = replay(sub, check, need, &failed_);              \
		if (runs_ < 0 || failed_ || (need && runs_ == 0)) {           \
			if (runs_ == 0)                                       \
				snprintf(unit_msg, sizeof(unit_msg),          \
					 "tests/fuzz/%s is empty", sub);      \
			unit_cur_failed = 1;                                  \
			return;                                               \
		}                                                             \
	} while (0)

static void test_decoder_corpus(void)
{
	REPLAY("corpus/decoder", decoder_check, 1);
}

static void test_decoder_regress(void)
{
	REPLAY("regress/decoder", decoder_check, 0);
}

static void test_config_corpus(void)
{
	REPLAY("corpus/config", config_check, 1);
}

static void test_config_regress(void)
{
	REPLAY("regress/config", config_check, 0);
}

static void test_answer_corpus(void)
{
	REPLAY("corpus/answer", answer_check, 1);
}

static void test_answer_regress(void)
{
	REPLAY("regress/answer", answer_check, 0);
}

int main(void)
{
	RUN(test_decoder_corpus);
	RUN(test_decoder_regress);
	RUN(test_config_corpus);
	RUN(test_config_regress);
	RUN(test_answer_corpus);
	RUN(test_answer_regress);
	ingest_thread_cleanup();
	wire_scratch_free();
	return unit_done();
}
