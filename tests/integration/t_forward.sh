#!/usr/bin/env bash
# t_forward.sh - the plain path: 20 requests of 500 series reach
# VictoriaMetrics through the relay, every sample exactly once, and the
# relay's counters and buffer gauges say so.
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/../lib.sh"
require_relay

VM_PORT=$(free_port)
RELAY_PORT=$(free_port)
start_vm "$T/vm" "$VM_PORT" || { fail setup "victoria-metrics did not start"; exit 1; }
write_conf "$T/relay.conf"
start_relay "$T/relay.conf" || { fail setup "relay did not become ready"; exit 1; }

URL=http://127.0.0.1:$RELAY_PORT/api/v1/write
SEL='{__name__="fw_metric"}'
WANT=10000

sum=$(rwsend "$URL" --series 500 --samples-per-series 1 --requests 20 \
	--name-prefix fw --concurrency 4)
note "$sum"
check "20 requests answered 204" [ "$(field "$sum" status_2xx)" = 20 ]
check "10000 samples acknowledged" [ "$(field "$sum" samples_acked)" = "$WANT" ]

if wait_until "$WAIT_CAP" vm_has "$VM_PORT" "$SEL" "$WANT"; then
	ok "all $WANT samples reached victoria-metrics"
else
	fail "samples in victoria-metrics" "found $(vm_count_distinct "$VM_PORT" "$SEL") of $WANT"
fi
n=$(vm_count "$VM_PORT" "$SEL")
check "no sample arrived twice ($n stored)" [ "$n" = "$WANT" ]
n=$(vm_series "$VM_PORT" "$SEL")
check "500 series stored ($n)" [ "$n" = 500 ]

check "relay_samples_received_total = $WANT" \
	metric_is "$RELAY_PORT" relay_samples_received_total "$WANT"
check "relay_requests_total{code=\"204\"} = 20" \
	metric_is "$RELAY_PORT" relay_requests_total 20 'code="204"'
if wait_until "$WAIT_CAP" metric_is "$RELAY_PORT" relay_samples_forwarded_total "$WANT"; then
	ok "relay_samples_forwarded_total = $WANT"
else
	fail "relay_samples_forwarded_total" "is $(metric "$RELAY_PORT" relay_samples_forwarded_total), want $WANT"
fi
if wait_until "$WAIT_CAP" metric_is "$RELAY_PORT" relay_buffer_entries 0 &&
	wait_until "$WAIT_CAP" metric_is "$RELAY_PORT" relay_buffer_samples 0; then
	ok "the buffer empties"
else
	fail "buffer empties" "relay_buffer_entries=$(metric "$RELAY_PORT" relay_buffer_entries) relay_buffer_samples=$(metric "$RELAY_PORT" relay_buffer_samples)"
fi
check "upstream answered 204 at least once" \
	metric_ge "$RELAY_PORT" relay_upstream_requests_total 1 'code="204"'
check "/metrics uses the relay_ prefix only" \
	bash -c "! curl -s http://127.0.0.1:$RELAY_PORT/metrics | grep -v '^#' | grep -v '^relay_' | grep -q ."

stop_relay
rc=$?
check "SIGTERM stops the relay with exit 0 (got $rc)" [ "$rc" -eq 0 ]

# A restart on the same store finds nothing left to send.
start_relay "$T/relay.conf" || { fail restart "relay did not become ready again"; exit 1; }
check "after a restart the buffer is empty" metric_is "$RELAY_PORT" relay_buffer_entries 0
check "after a restart relay_buffer_samples is 0" metric_is "$RELAY_PORT" relay_buffer_samples 0
