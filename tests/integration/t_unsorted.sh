#!/usr/bin/env bash
# t_unsorted.sh - series whose labels come unsorted, as the npm package
# prometheus-remote-write sends them (Object.entries({...options.labels,
# ...series.labels}): insertion order, __name__ not first), are stored with
# their labels sorted, whole and right, in VictoriaMetrics: with no tenants
# (the request is otherwise stored as it came) and with a tenant (the
# tenant label set too). They are counted in relay_series_sorted_total.
# What cannot be made valid by sorting (a name twice) still gets 400.
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/../lib.sh"
require_relay

VM_PORT=$(free_port)
RELAY_PORT=$(free_port)
URL=http://127.0.0.1:$RELAY_PORT/api/v1/write
start_vm "$T/vm" "$VM_PORT" || { fail setup "victoria-metrics did not start"; exit 1; }

# The body: 20 series {service="queue-worker", __name__=..., instance=...,
# job="rwsend"} in that order.
rwsend --emit "$T/npm.bin" --series 20 --name-prefix npm1 \
	--label service=queue-worker --insertion-order
rwsend --emit "$T/npm-t.bin" --series 20 --name-prefix npm2 \
	--label service=queue-worker --insertion-order
rwsend --emit "$T/dup.bin" --series 5 --name-prefix npm3 \
	--label service=a --label instance=again --insertion-order
first=$(rwsend --decode "$T/npm.bin" | head -n 1)
checkx "the body's labels are unsorted, __name__ not first ($first)" \
	'[[ "$first" == "series {service=\"queue-worker\",__name__=\"npm1_metric\","* ]]'

# 1. No tenants: nothing else rewrites the request.
write_conf "$T/relay.conf"
start_relay "$T/relay.conf" || { fail setup "relay did not become ready"; exit 1; }
code=$(post_rw "$URL" "$T/npm.bin")
check "unsorted labels, no tenant: 204 (got $code)" [ "$code" = 204 ]
check "relay_series_sorted_total counts the 20 series" \
	metric_is "$RELAY_PORT" relay_series_sorted_total 20
wait_until "$WAIT_CAP" vm_has "$VM_PORT" '{__name__="npm1_metric"}' 20
n=$(vm_series "$VM_PORT" '{__name__="npm1_metric",service="queue-worker",job="rwsend",instance=~"host-.*"}')
check "VictoriaMetrics holds the 20 series with all their labels ($n)" [ "$n" = 20 ]
keys=$(vm_export "$VM_PORT" '{__name__="npm1_metric"}' | jq -r '.metric | keys | join(",")' | sort -u)
check "... and no other label ($keys)" [ "$keys" = "__name__,instance,job,service" ]
POST_OUT=$T/dup.out code=$(post_rw "$URL" "$T/dup.bin")
check "a name twice, apart, still gets 400 (got $code)" [ "$code" = 400 ]
checkx "... with the reason ($(head -c 200 "$T/dup.out"))" \
	'grep -q "duplicate label name \"instance\"" "$T/dup.out"'
stop_relay

# 2. A tenant: the tenant label is set on the sorted series.
write_conf "$T/tenant.conf" "tenant acme.token=acme-secret"
start_relay "$T/tenant.conf" || { fail setup "relay did not become ready"; exit 1; }
code=$(post_rw "$URL" "$T/npm-t.bin" -H 'Authorization: Bearer acme-secret')
check "unsorted labels, tenant acme: 204 (got $code)" [ "$code" = 204 ]
wait_until "$WAIT_CAP" vm_has "$VM_PORT" '{__name__="npm2_metric"}' 20
n=$(vm_series "$VM_PORT" '{__name__="npm2_metric",service="queue-worker",job="rwsend",tenant="acme"}')
check "VictoriaMetrics holds the 20 series with the tenant label ($n)" [ "$n" = 20 ]
check "relay_series_sorted_total counts them" \
	metric_is "$RELAY_PORT" relay_series_sorted_total 20
