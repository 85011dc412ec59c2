#!/usr/bin/env bash
# t_clockstep.sh - steps of the wall clock by days neither drop fresh data
# as too old nor stop delivery. The relay runs under libfaketime (the
# monotonic clock left alone, the wall clock's offset read from a file at
# run time, re-read every second), with max_age = 1h and VictoriaMetrics not yet running, so
# that what it acknowledges stays buffered and the forwarder backs off.
# The wall clock jumps 8 days ahead while data is buffered, more comes in,
# then it jumps back to a day behind the real time, more comes in, then
# VictoriaMetrics starts: nothing is dropped as too old and everything
# arrives.
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/../lib.sh"
require_relay

VM_PORT=$(free_port)
RELAY_PORT=$(free_port)
faketime_relay

write_conf "$T/relay.conf" "storage.max_age=1h" \
	"upstream.min_backoff=100ms" "upstream.max_backoff=1s"
start_relay "$T/relay.conf" || { fail setup "relay did not become ready"; exit 1; }
URL=http://127.0.0.1:$RELAY_PORT/api/v1/write
total=0

# send NAME: 10 requests of 10 series x 5 samples; all acknowledged.
send() {
	send_counted "cs_$1_" 10
}

# buffered N: the relay holds N samples, none dropped as too old.
buffered() {
	metric_is "$RELAY_PORT" relay_buffer_samples "$1"
}

send before
check "500 samples buffered while the upstream is down" \
	wait_until "$WAIT_CAP" buffered 500
check "the relay is backing off" \
	wait_until "$WAIT_CAP" metric_ge "$RELAY_PORT" relay_upstream_retries_total 2

# +8 days. Writes after the step make commits, and each commit checks
# max_age once a second: several over a few seconds.
echo "+8d" >"$OFFSET"
for i in 1 2 3 4; do
	send "ahead$i"
	sleep 1
done
check "after +8d: nothing dropped as too old" \
	metric_is "$RELAY_PORT" relay_samples_dropped_total 0 'reason="age"'
check "after +8d: all $total samples still buffered" buffered "$total"
age=$(metric "$RELAY_PORT" relay_buffer_oldest_age_seconds)
check "after +8d: the oldest entry is not days old (${age}s)" [ "${age:-999999}" -lt 3600 ]

# Back to a day behind the real time: 9 days back.
echo "-1d" >"$OFFSET"
for i in 1 2 3 4; do
	send "behind$i"
	sleep 1
done
check "after -1d: nothing dropped as too old" \
	metric_is "$RELAY_PORT" relay_samples_dropped_total 0 'reason="age"'
check "after -1d: all $total samples still buffered" buffered "$total"

# The upstream comes up: delivery goes on at once, not a day later.
start_vm "$T/vm" "$VM_PORT" || { fail setup "victoria-metrics did not start"; exit 1; }
send after
note "acknowledged samples: $total"
check "acknowledged: 5000 samples" [ "$total" = 5000 ]
check "everything acknowledged arrives" \
	wait_until "$WAIT_CAP" vm_is "$VM_PORT" '{__name__=~"cs_.*"}' "$total"
check "the buffer is empty" \
	wait_until "$WAIT_CAP" metric_is "$RELAY_PORT" relay_buffer_entries 0
check "nothing dropped at all" \
	metric_is "$RELAY_PORT" relay_samples_dropped_total 0
check "the relay stops cleanly" stop_relay
