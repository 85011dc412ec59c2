/*
 * fuzz_decoder.c - libFuzzer target for the request decoder: snappy,
 * protobuf, validation and the tenant rewrite, held against protobuf-c and
 * run through ingest_body as the relay runs it (see decoder_check.h).
 * A mismatch aborts, so libFuzzer keeps the input as a crash.
 */
#include "decoder_check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *e = decoder_check(data, size);

	if (e != NULL) {
		fprintf(stderr, "fuzz_decoder: %s\n", e);
		abort();
	}
	return 0;
}
