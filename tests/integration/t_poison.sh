#!/usr/bin/env bash
# t_poison.sh - a batch upstream refuses for good (400) must not hold up the
# others: VictoriaMetrics takes at most 200000 decoded bytes per request, the
# relay gets small requests around one of about 240000 decoded bytes (one
# series of 12000 samples, so all in one delivery lane; well under the
# relay's own limits). Everything else arrives and
# the refused batch is set aside.
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/../lib.sh"
require_relay

VM_PORT=$(free_port)
RELAY_PORT=$(free_port)
start_vm "$T/vm" "$VM_PORT" -maxInsertRequestSize=200000 ||
	{ fail setup "victoria-metrics did not start"; exit 1; }
write_conf "$T/relay.conf" upstream.max_request_size=1MiB
start_relay "$T/relay.conf" || { fail setup "relay did not become ready"; exit 1; }
URL=http://127.0.0.1:$RELAY_PORT/api/v1/write

small() {
	local sum
	sum=$(rwsend "$URL" --series 50 --requests 20 --name-prefix "$1")
	note "$1: $sum" >&2
	field "$sum" samples_acked
}

a=$(small pa)
sum=$(rwsend "$URL" --series 1 --samples-per-series 12000 --name-prefix pz)
note "pz: $sum"
check "the large request is acknowledged (204)" [ "$(field "$sum" status_2xx)" = 1 ]
b=$(small pb)
check "the small requests are acknowledged (2000 samples)" [ "$((a + b))" = 2000 ]

for name in pa pb; do
	sel="{__name__=\"${name}_metric\"}"
	if wait_until "$WAIT_CAP" vm_has "$VM_PORT" "$sel" 1000; then
		ok "$name: all 1000 samples arrived past the refused batch"
	else
		fail "$name arrived" "found $(vm_count_distinct "$VM_PORT" "$sel") of 1000"
	fi
done
if wait_until "$WAIT_CAP" metric_ge "$RELAY_PORT" relay_batches_set_aside_total 1; then
	ok "relay_batches_set_aside_total >= 1"
else
	fail "relay_batches_set_aside_total" "is $(metric "$RELAY_PORT" relay_batches_set_aside_total)"
fi
check "upstream's 400 is counted" \
	metric_ge "$RELAY_PORT" relay_upstream_requests_total 1 'code="400"'
note "pz samples in victoria-metrics: $(vm_count "$VM_PORT" '{__name__="pz_metric"}')"
if wait_until "$WAIT_CAP" metric_is "$RELAY_PORT" relay_buffer_entries 0; then
	ok "the buffer empties: the refused batch is not retried forever"
else
	fail "buffer empties" "relay_buffer_entries=$(metric "$RELAY_PORT" relay_buffer_entries)"
fi
check "the relay is still ready" \
	[ "$(http_code "http://127.0.0.1:$RELAY_PORT/-/ready")" = 200 ]
