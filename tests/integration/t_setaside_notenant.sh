#!/usr/bin/env bash
# t_setaside_notenant.sh - requests without a tenant are in
# no usage record (usage.h): `relay setaside purge` on a stopped relay's
# directory keeps to that as the relay's own purge does (it wrote a
# record for the tenant "").
. "$(dirname "$0")/../lib.sh"
require_relay

VM_PORT=$(free_port)
RELAY_PORT=$(free_port)
start_vm "$T/vm" "$VM_PORT" -maxInsertRequestSize=100000 || { fail setup "victoria-metrics did not start"; exit 1; }
CONF=$T/relay.conf
write_conf "$CONF" "usage.export=false"
start_relay "$CONF" || { fail setup "relay did not become ready"; exit 1; }
URL=http://127.0.0.1:$RELAY_PORT/api/v1/write
# A success first: the relay trusts a 400 of an upstream that took data.
rwsend "$URL" --series 5 --requests 1 --name-prefix nt_small >/dev/null
wait_until "$WAIT_CAP" vm_has "$VM_PORT" '{__name__="nt_small_metric"}' 5 || note "small not delivered"
out=$(rwsend "$URL" --series 1 --samples-per-series 9000 --requests 1 --name-prefix nt_big)
check "the big request is acknowledged" [ "$(field "$out" status_2xx)" = 1 ]
wait_until "$WAIT_CAP" metric_is "$RELAY_PORT" relay_batches_set_aside_total 1 ||
	fail "set aside" "relay_batches_set_aside_total=$(metric "$RELAY_PORT" relay_batches_set_aside_total)"
stop_relay
j=$("$RELAY_BIN" usage -c "$CONF")
check "no usage row before the purge ($j)" [ "$(jq '.usage | length' <<<"$j")" = 0 ]
"$RELAY_BIN" setaside purge -c "$CONF" >"$T/cli.out" 2>&1
note "purge: $(cat "$T/cli.out")"
j=$("$RELAY_BIN" usage -c "$CONF")
note "relay usage after the offline purge: $(head -c 300 <<<"$j")"
check "no usage row without a tenant after the offline purge" \
	[ "$(jq '[.usage[] | select(.tenant == "")] | length' <<<"$j")" = 0 ]
