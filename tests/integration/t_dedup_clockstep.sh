#!/usr/bin/env bash
# t_dedup_clockstep.sh - resend deduplication and steps of the wall clock
# (libfaketime; the monotonic clock left alone). Dedup records are looked
# up from the clock a forward step cannot hasten: a resend is answered 204
# and not stored again, also after kill -9 and a restart, and after the
# wall clock steps 15 minutes ahead (it was stored and billed again: the
# step had shortened the window).
# VictoriaMetrics is not running: what is acknowledged stays buffered,
# counted in relay_buffer_samples.
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/../lib.sh"
require_relay

VM_PORT=$(free_port)
RELAY_PORT=$(free_port)
faketime_relay

write_conf "$T/relay.conf" "upstream.min_backoff=100ms" "upstream.max_backoff=1s"
start_relay "$T/relay.conf" || { fail setup "relay did not become ready"; exit 1; }
URL=http://127.0.0.1:$RELAY_PORT/api/v1/write
BODY=$REPO/tests/fixtures/req00000.bin

check "first copy: 204" [ "$(post_rw "$URL" "$BODY")" = 204 ]
check "first copy buffered" wait_until "$WAIT_CAP" metric_ge "$RELAY_PORT" relay_buffer_samples 1
S1=$(metric "$RELAY_PORT" relay_buffer_samples)
note "samples of one copy: $S1"
check "resend: 204" [ "$(post_rw "$URL" "$BODY")" = 204 ]
check "resend counted a duplicate" metric_is "$RELAY_PORT" relay_duplicate_requests_total 1
check "resend not stored" metric_is "$RELAY_PORT" relay_buffer_samples "$S1"

kill9_relay
start_relay "$T/relay.conf" || { fail setup "relay did not restart"; exit 1; }
check "after kill -9: resend 204" [ "$(post_rw "$URL" "$BODY")" = 204 ]
check "after kill -9: a duplicate" metric_is "$RELAY_PORT" relay_duplicate_requests_total 1
check "after kill -9: not stored again" metric_is "$RELAY_PORT" relay_buffer_samples "$S1"

# The wall clock steps 15 minutes ahead (NTP fixing a clock that was
# behind); the resend comes a few seconds after its first copy.
echo "+15m" >"$OFFSET"
sleep 2
check "after +15m: resend 204" [ "$(post_rw "$URL" "$BODY")" = 204 ]
check "after +15m: a duplicate" metric_is "$RELAY_PORT" relay_duplicate_requests_total 2
check "after +15m: not stored again (buffer $(metric "$RELAY_PORT" relay_buffer_samples), one copy $S1)" \
	metric_is "$RELAY_PORT" relay_buffer_samples "$S1"

# A request stored after the step, then kill -9: its stamp survives the
# restart, so its resend is still a duplicate.
BODY2=$REPO/tests/fixtures/req00001.bin
check "after +15m: another request: 204" [ "$(post_rw "$URL" "$BODY2")" = 204 ]
check "and it is buffered" wait_until "$WAIT_CAP" metric_ge "$RELAY_PORT" relay_buffer_samples $((S1 + 1))
S2=$(metric "$RELAY_PORT" relay_buffer_samples)
kill9_relay
start_relay "$T/relay.conf" || { fail setup "relay did not restart"; exit 1; }
check "after +15m and kill -9: its resend 204" [ "$(post_rw "$URL" "$BODY2")" = 204 ]
check "after +15m and kill -9: a duplicate" metric_is "$RELAY_PORT" relay_duplicate_requests_total 1
check "after +15m and kill -9: not stored again" metric_is "$RELAY_PORT" relay_buffer_samples "$S2"
check "the relay stops cleanly" stop_relay
