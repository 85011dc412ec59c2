/*
 * fuzz_config.c - libFuzzer target for the relay.conf reader: each input
 * is written to a file and read with config_load (see config_check.h).
 * A mismatch aborts, so libFuzzer keeps the input as a crash; leaks are
 * LeakSanitizer's.
 */
#include "config_check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *e = config_check(data, size);

	if (e != NULL) {
		fprintf(stderr, "fuzz_config: %s\n", e);
		abort();
	}
	return 0;
}
