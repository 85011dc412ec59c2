/*
 * inflight.h - memory of write requests being handled, counted against
 * [server] max_inflight_bytes.
 *
 * Two kinds of bytes count, in two gauges:
 *   body     a body being received, from its first byte: its announced
 *            Content-Length as soon as the headers are in (the buffer is
 *            made that size), or, without one, the bytes received so far;
 *   decoded  a body being decoded and validated.
 * Bodies may hold at most three quarters of the limit, so that bodies
 * that arrive slowly cannot keep complete ones from being decoded; bodies
 * and decoded bytes together at most the whole limit. One request may
 * pass either bound when nothing else is held, so that a limit below
 * max_body_size or max_decoded_size does not refuse every request.
 *
 * Each charge is kept by its request in a uint64_t (0: nothing held) and
 * released when the bytes are freed. Thread-safe.
 */
#ifndef RELAY_INFLIGHT_H
#define RELAY_INFLIGHT_H

#include <stdint.h>

/* Raises a body's charge *held to want bytes. Returns 0, or -1 when the
 * bounds above do not allow it (*held is unchanged then). */
int inflight_body_charge(uint64_t *held, uint64_t want, uint64_t limit);

/* Releases a body's charge; *held becomes 0. */
void inflight_body_release(uint64_t *held);

/* Charges n decoded bytes to *held for a request whose body holds
 * own_body. Returns 0, or -1 when the bounds do not allow it (*held is
 * unchanged then). */
int inflight_decoded_charge(uint64_t *held, uint64_t n, uint64_t own_body,
			    uint64_t limit);

/* Releases a decoded charge; *held becomes 0. */
void inflight_decoded_release(uint64_t *held);

#endif
