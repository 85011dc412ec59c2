#!/usr/bin/env bash
# t_wrong_path.sh - a typo in [upstream] url's path costs no acknowledged
# data. VictoriaMetrics answers 400 "unsupported path requested" to a path
# it does not serve, which must not read as a refusal of the content: with
# the url at /api/v1/wrtie every batch stays buffered (nothing set aside),
# the answers count as a misconfiguration; fixed by a reload, all of it
# arrives.
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/../lib.sh"
require_relay

VM_PORT=$(free_port)
RELAY_PORT=$(free_port)
start_vm "$T/vm" "$VM_PORT" || { fail setup "victoria-metrics did not start"; exit 1; }
conf() {
	write_conf "$T/relay.conf" "upstream.url=http://127.0.0.1:$VM_PORT$1" \
		"upstream.min_backoff=50ms" "upstream.max_backoff=300ms"
}
conf /api/v1/wrtie
start_relay "$T/relay.conf" || { fail setup "relay did not become ready"; exit 1; }
URL=http://127.0.0.1:$RELAY_PORT/api/v1/write
total=0
send_counted "wp_" 5
note "acknowledged samples: $total"
check "VictoriaMetrics answered the wrong path with 400" \
	wait_until "$WAIT_CAP" metric_ge "$RELAY_PORT" relay_upstream_misconfigured_total 3 'code="400"'
check "nothing set aside for a wrong path" \
	metric_is "$RELAY_PORT" relay_batches_set_aside_total 0
check "the batches stay in the buffer ($total samples)" \
	metric_is "$RELAY_PORT" relay_buffer_samples "$total"
check "the log says to check the url, with VictoriaMetrics' reason" \
	grep -q 'upstream refuses the relay.s requests: check \[upstream\] url.*unsupported path requested' "$RELAY_LOG"

conf /api/v1/write
kill -HUP "$RELAY_PID"
if wait_until "$WAIT_CAP" vm_has "$VM_PORT" '{__name__=~"wp_.*"}' "$total"; then
	ok "fixed by a reload: all $total samples arrive"
else
	fail "all samples arrive" "found $(vm_count "$VM_PORT" '{__name__=~"wp_.*"}') of $total"
fi
check "and none was set aside" metric_is "$RELAY_PORT" relay_batches_set_aside_total 0
check "the relay stops cleanly" stop_relay
