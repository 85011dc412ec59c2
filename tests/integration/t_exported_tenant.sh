#!/usr/bin/env bash
# t_exported_tenant.sh - a sender's own tenant label is kept as
# exported_tenant, as Prometheus keeps a scraped label that conflicts with
# a target label; tenant is always the relay's:
#  1. a Prometheus writing as acme scrapes the relay's /metrics: beta's
#     relay_tenant_* counters arrive in VictoriaMetrics as
#     {tenant="acme",exported_tenant="beta"} with beta's value, not merged
#     into acme's; no series claims tenant="beta";
#  2. a sender with tenant and exported_tenant labels: its tenant label
#     becomes exported_exported_tenant, its exported_tenant stays.
. "$(dirname "$0")/../lib.sh"
require_relay
command -v prometheus >/dev/null || { skip "exported_tenant" "no prometheus binary"; exit 0; }

VM_PORT=$(free_port)
RELAY_PORT=$(free_port)
PROM_PORT=$(free_port)
start_vm "$T/vm" "$VM_PORT" || { fail setup "victoria-metrics did not start"; exit 1; }
write_conf "$T/relay.conf" \
	"usage.export=false" \
	"tenant acme.token=acme-ex" \
	"tenant beta.token=beta-ex"
start_relay "$T/relay.conf" || { fail setup "relay did not become ready"; exit 1; }
URL=http://127.0.0.1:$RELAY_PORT/api/v1/write

s=$(rwsend "$URL" --token beta-ex --series 7 --requests 3 --name-prefix ex_beta)
check "beta: 21 samples acknowledged" [ "$(field "$s" samples_acked)" = 21 ]
beta=$(metric "$RELAY_PORT" relay_tenant_samples_received_total 'tenant="beta"')
check "the relay counts beta's 21 samples in relay_tenant_samples_received_total ($beta)" [ "$beta" = 21 ]

# --- 1. self-monitoring through the relay ----------------------------------
start_prometheus "$T/prom" "$PROM_PORT" "$RELAY_PORT" \
	"    authorization:
      credentials: acme-ex" "" "127.0.0.1:$RELAY_PORT"
SEL='{__name__="relay_tenant_samples_received_total",tenant="acme",exported_tenant="beta",job="shared"}'
if wait_until "$WAIT_CAP" vm_has "$VM_PORT" "$SEL" 1; then
	ok "beta's counter arrived as {tenant=\"acme\",exported_tenant=\"beta\"}"
else
	fail "exported_tenant" "no $SEL in VictoriaMetrics"
fi
v=$(vm_export "$VM_PORT" "$SEL" | jq -s '[.[].values[-1]] | max')
check "with beta's value ($v)" [ "$v" = 21 ]
n=$(vm_series "$VM_PORT" '{__name__=~"relay_tenant_.*",tenant="beta"}')
check "no relay_tenant_* series claims tenant=\"beta\" ($n)" [ "$n" = 0 ]
SELA='{__name__="relay_tenant_samples_received_total",tenant="acme",exported_tenant="acme",job="shared"}'
if wait_until "$WAIT_CAP" vm_has "$VM_PORT" "$SELA" 1; then
	ok "acme's own counter is {tenant=\"acme\",exported_tenant=\"acme\"}, a series of its own"
else
	fail "acme's own counter" "no $SELA"
fi
n=$(vm_series "$VM_PORT" '{__name__="relay_tenant_samples_received_total",exported_tenant=""}')
check "no relay_tenant_samples_received_total without exported_tenant ($n)" [ "$n" = 0 ]

# --- 2. exported_tenant taken too ------------------------------------------
s=$(rwsend "$URL" --token acme-ex --series 3 --name-prefix ex_forge \
	--label exported_tenant=x --label tenant=globex)
check "acme with tenant=globex, exported_tenant=x: 3 samples acknowledged" \
	[ "$(field "$s" samples_acked)" = 3 ]
SEL2='{__name__="ex_forge_metric",tenant="acme",exported_tenant="x",exported_exported_tenant="globex"}'
if wait_until "$WAIT_CAP" vm_has "$VM_PORT" "$SEL2" 3; then
	ok "stored as tenant=acme, exported_tenant=x, exported_exported_tenant=globex"
else
	fail "exported_exported_tenant" "$(vm_export "$VM_PORT" '{__name__="ex_forge_metric"}' | jq -c .metric | head -n 3)"
fi
n=$(vm_series "$VM_PORT" '{__name__="ex_forge_metric",tenant!="acme"}')
check "no forged series carries another tenant ($n)" [ "$n" = 0 ]
