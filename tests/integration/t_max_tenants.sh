#!/usr/bin/env bash
# t_max_tenants.sh - [tenancy] max_tenants with trust_header: of 8 tenants
# named by X-Scope-OrgID with max_tenants = 5, the first 5 are stored and
# delivered, the other 3 get 429, are counted as too_many_tenants and leave
# nothing behind (no data, no per-tenant series in /metrics); a known
# tenant keeps passing, and a reload that raises the limit takes one more.
. "$(dirname "$0")/../lib.sh"
require_relay

VM_PORT=$(free_port)
RELAY_PORT=$(free_port)
start_vm "$T/vm" "$VM_PORT" || { fail setup "victoria-metrics did not start"; exit 1; }

ADMIN=adm-maxten-4e1f
write_conf "$T/relay.conf" "server.admin_token=$ADMIN" \
	"tenancy.trust_header=true" "tenancy.max_tenants=5"
start_relay "$T/relay.conf" || { fail setup "relay did not become ready"; exit 1; }
BASE=http://127.0.0.1:$RELAY_PORT
URL=$BASE/api/v1/write

# 3 series, one sample each.
"$RWSEND" --emit "$T/body.bin" --series 3 --samples-per-series 1 --name-prefix mt

# send TENANT: posts the body as TENANT, prints the status code.
send() {
	http_code "$URL" -X POST -H 'Content-Type: application/x-protobuf' \
		-H 'Content-Encoding: snappy' \
		-H 'X-Prometheus-Remote-Write-Version: 0.1.0' \
		-H "X-Scope-OrgID: $1" --data-binary "@$T/body.bin"
}

codes=
for i in 1 2 3 4 5 6 7 8; do
	codes="$codes $(send "mt$i")"
done
note "status codes of mt1..mt8:$codes"
check "the first 5 tenants are stored (204)" \
	[ "$(echo $codes | cut -d' ' -f1-5)" = "204 204 204 204 204" ]
check "the 3 tenants past max_tenants = 5 get 429" \
	[ "$(echo $codes | cut -d' ' -f6-8)" = "429 429 429" ]
check "relay_requests_refused_total{reason=\"too_many_tenants\"} = 3" \
	metric_is "$RELAY_PORT" relay_requests_refused_total 3 'reason="too_many_tenants"'
check "relay_requests_total{code=\"429\"} = 3" \
	metric_is "$RELAY_PORT" relay_requests_total 3 'code="429"'
check "relay_samples_received_total = 15 (5 tenants x 3)" \
	metric_is "$RELAY_PORT" relay_samples_received_total 15
n=$(curl -s "$BASE/metrics" | grep -c 'tenant="mt[678]"')
check "/metrics has no series of the refused tenants ($n)" [ "$n" = 0 ]

c=$(send mt2)
check "a known tenant still passes (got $c)" [ "$c" = 204 ]

for i in 1 2 3 4 5; do
	if wait_until "$WAIT_CAP" vm_has "$VM_PORT" "{__name__=\"mt_metric\",tenant=\"mt$i\"}" 3; then
		ok "mt$i's 3 series arrived"
	else
		fail "mt$i's series" "not in victoria-metrics"
	fi
done
n=$(vm_series "$VM_PORT" '{__name__="mt_metric",tenant=~"mt[678]"}')
check "nothing of the refused tenants reached victoria-metrics ($n)" [ "$n" = 0 ]

# A reload raising the limit admits one more new tenant.
sed -i 's/^max_tenants = 5$/max_tenants = 6/' "$T/relay.conf"
c=$(http_code "$BASE/-/reload" -X POST -H "Authorization: Bearer $ADMIN")
check "reload with max_tenants = 6 (got $c)" [ "$c" = 200 ]
c=$(send mt6)
check "after the reload mt6 is stored (got $c)" [ "$c" = 204 ]
c=$(send mt7)
check "and mt7 still gets 429 (got $c)" [ "$c" = 429 ]
check "relay_requests_refused_total{reason=\"too_many_tenants\"} = 4" \
	metric_is "$RELAY_PORT" relay_requests_refused_total 4 'reason="too_many_tenants"'

stop_relay
check "the relay stopped cleanly" [ $? = 0 ]
