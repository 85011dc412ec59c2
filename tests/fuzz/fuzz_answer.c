/*
 * fuzz_answer.c - libFuzzer target for the parsers of an upstream's
 * answer (upstream_conn_head, upstream_conn_chunk_line); the checks are in
 * answer_check.h. A mismatch aborts, so libFuzzer keeps the input as a
 * crash.
 */
#include "answer_check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *e = answer_check(data, size);

	if (e != NULL) {
		fprintf(stderr, "fuzz_answer: %s\n", e);
		abort();
	}
	return 0;
}
