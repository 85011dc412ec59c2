#!/usr/bin/env bash
# t_outage.sh - VictoriaMetrics goes away while clients send: the relay
# keeps answering 204 and buffers; when VictoriaMetrics is back on the same
# data directory, every acknowledged sample arrives.
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/../lib.sh"
require_relay

VM_PORT=$(free_port)
RELAY_PORT=$(free_port)
start_vm "$T/vm" "$VM_PORT" || { fail setup "victoria-metrics did not start"; exit 1; }
write_conf "$T/relay.conf"
start_relay "$T/relay.conf" || { fail setup "relay did not become ready"; exit 1; }
URL=http://127.0.0.1:$RELAY_PORT/api/v1/write

# send PREFIX REQUESTS: 200 series x 2 samples per request; prints the
# number of acknowledged samples.
send() {
	local sum
	sum=$(rwsend "$URL" --series 200 --samples-per-series 2 --requests "$2" \
		--step 1000 --name-prefix "$1" --concurrency 2)
	note "$1: $sum" >&2
	field "$sum" samples_acked
}

# Before the outage.
a=$(send oa 5)
check "before the outage: all 2000 samples acknowledged" [ "$a" = 2000 ]
if wait_until "$WAIT_CAP" vm_has "$VM_PORT" '{__name__="oa_metric"}' "$a"; then
	ok "before the outage: samples arrive"
else
	fail "before the outage" "found $(vm_count_distinct "$VM_PORT" '{__name__="oa_metric"}') of $a"
fi

# During the outage.
stop_vm
b=$(send ob 10)
check "during the outage: all 4000 samples acknowledged with 204" [ "$b" = 4000 ]
check "during the outage: relay_buffer_samples > 0" \
	metric_ge "$RELAY_PORT" relay_buffer_samples 1
check "during the outage: /-/healthy answers 200" \
	[ "$(http_code "http://127.0.0.1:$RELAY_PORT/-/healthy")" = 200 ]
if wait_until "$WAIT_CAP" metric_ge "$RELAY_PORT" relay_upstream_retries_total 1; then
	ok "during the outage: relay_upstream_retries_total > 0"
else
	fail "retries counted" "relay_upstream_retries_total=$(metric "$RELAY_PORT" relay_upstream_retries_total)"
fi

# After the outage: same data directory, same port.
start_vm "$T/vm" "$VM_PORT" || { fail "restart victoria-metrics" "did not start"; exit 1; }
c=$(send oc 5)
check "after the outage: all 2000 samples acknowledged" [ "$c" = 2000 ]

for p in oa:"$a" ob:"$b" oc:"$c"; do
	name=${p%%:*}
	want=${p#*:}
	sel="{__name__=\"${name}_metric\"}"
	if wait_until "$WAIT_CAP" vm_has "$VM_PORT" "$sel" "$want"; then
		ok "$name: all $want acknowledged samples arrived"
	else
		fail "$name arrived" "found $(vm_count_distinct "$VM_PORT" "$sel") of $want"
	fi
done
if wait_until "$WAIT_CAP" metric_is "$RELAY_PORT" relay_buffer_samples 0; then
	ok "the buffer empties after the outage"
else
	fail "buffer empties" "relay_buffer_samples=$(metric "$RELAY_PORT" relay_buffer_samples)"
fi
total=$((a + b + c))
check "relay_samples_forwarded_total >= $total" \
	metric_ge "$RELAY_PORT" relay_samples_forwarded_total "$total"
