#!/usr/bin/env bash
# t_gate_reload.sh - [upstream] url pointed at a dead port takes its gate
# down (relay_upstream_up 0); a reload fixes the url and the buffered data
# is delivered. The old origin's gate gets no request any more: the first
# request two probe delays and 10 s after its last use forgets it (logged),
# and relay_upstream_up reads 1 again.
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/../lib.sh"
require_relay

DEAD_PORT=$(free_port)
VM_PORT=$(free_port)
RELAY_PORT=$(free_port)
start_vm "$T/vm" "$VM_PORT" || { fail setup "victoria-metrics did not start"; exit 1; }
write_conf "$T/relay.conf" "upstream.max_backoff=500ms" \
	"upstream.url=http://127.0.0.1:$DEAD_PORT/api/v1/write" "usage.export=false"
start_relay "$T/relay.conf" || { fail setup "relay did not become ready"; exit 1; }
URL=http://127.0.0.1:$RELAY_PORT/api/v1/write
total=0
send_counted "gr_" 3
check "the dead upstream is seen down" \
	wait_until "$WAIT_CAP" metric_is "$RELAY_PORT" relay_upstream_up 0
write_conf "$T/relay.conf" "upstream.max_backoff=500ms" "usage.export=false"
check "the fixed url is reloaded" hup_and_wait "configuration reloaded"
check "everything arrives at the fixed upstream" \
	wait_until "$WAIT_CAP" vm_is "$VM_PORT" '{__name__=~"gr_.*"}' "$total"
check "the buffer is empty" \
	wait_until "$WAIT_CAP" metric_is "$RELAY_PORT" relay_buffer_entries 0
# past two probe delays and 10 s, the next request forgets the old one
sleep 12
send_counted "gr2_" 1
check "relay_upstream_up is 1 again once the old upstream is forgotten" \
	wait_until "$WAIT_CAP" metric_is "$RELAY_PORT" relay_upstream_up 1
check "which is logged" grep -q 'upstream no longer used while down: forgotten' "$RELAY_LOG"
check "the relay stops cleanly" stop_relay
