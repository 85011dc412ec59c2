#!/usr/bin/env bash
# t_usage_export.sh - the usage records as series in a real VictoriaMetrics:
#  1. relay_usage_samples_total (and requests, bytes) of each tenant equal
#     what `relay usage` reports for it; the series carry the billed
#     tenant and the relay label; the export tenant is not billed for them;
#     no usage row without a tenant appears;
#  2. after an upstream outage and a kill -9 of the relay, the series
#     still agree with `relay usage`, and what they grew by equals the
#     samples acknowledged meanwhile (value now - value before: exact);
#  3. with a per-tenant url, the series go to export_tenant's destination,
#     and without export_tenant the export is off;
#  4. past [storage] usage_retention: the hours the clean-up deleted stay
#     in the series (carried), which never goes down, also across a
#     restart.
. "$(dirname "$0")/../lib.sh"
require_relay

VM_PORT=$(free_port)
RELAY_PORT=$(free_port)
start_vm "$T/vm" "$VM_PORT" || { fail setup "victoria-metrics did not start"; exit 1; }

ADMIN=admin-ux-token
write_conf "$T/relay.conf" \
	"server.admin_token=$ADMIN" \
	"usage.export_interval=1s" \
	"usage.instance=relay-ux" \
	"usage.export_tenant=ops" \
	"tenant acme.token=acme-ux" \
	"tenant globex.token=globex-ux" \
	"tenant ops.token=ops-ux"
start_relay "$T/relay.conf" || { fail setup "relay did not become ready"; exit 1; }
URL=http://127.0.0.1:$RELAY_PORT/api/v1/write

# usage_line: "acme=N\nglobex=N" of `relay usage` column $1 (the CLI reads
# the data directory, also while the relay runs).
usage_line() {
	local j t
	j=$("$RELAY_BIN" usage -c "$T/relay.conf") || return 1
	for t in acme globex; do
		echo "$t=$(usage_sum "$j" "$t" "$1")"
	done
}

# series_line NAME: the same from VictoriaMetrics: the latest value of
# relay_usage_NAME_total per billed tenant.
series_line() {
	vm_query "$VM_PORT" "sum by (tenant) (last_over_time(relay_usage_$1_total{relay=\"relay-ux\",tenant=~\"acme|globex\"}[1h]))"
}

_agree() {
	local want got
	want=$(usage_line "$1") || return 1
	got=$(series_line "$1")
	[ -n "$got" ] && [ "$want" = "$got" ]
}

# --- 1. the series equal the usage records ----------------------------------
s=$(rwsend "$URL" --token acme-ux --series 10 --samples-per-series 2 --requests 3 --name-prefix ux_a)
check "acme: 60 samples acknowledged" [ "$(field "$s" samples_acked)" = 60 ]
s=$(rwsend "$URL" --token globex-ux --series 5 --requests 2 --name-prefix ux_g)
check "globex: 10 samples acknowledged" [ "$(field "$s" samples_acked)" = 10 ]

for col in samples requests bytes_compressed series; do
	if wait_until "$WAIT_CAP" _agree "$col"; then
		ok "relay_usage_${col}_total per tenant = relay usage ($(series_line "$col" | tr '\n' ' '))"
	else
		fail "relay_usage_${col}_total" "series: $(series_line "$col" | tr '\n' ' ') usage: $(usage_line "$col" | tr '\n' ' ')"
	fi
done
check "acme's value is the 60 samples sent" [ "$(series_line samples | head -n 1)" = "acme=60" ]

labels=$(vm_export "$VM_PORT" '{__name__="relay_usage_samples_total",tenant="acme"}' |
	jq -r '.metric | to_entries | map("\(.key)=\(.value)") | sort | join(",")' | sort -u)
check "labels: __name__, relay=relay-ux, tenant=acme and nothing else ($labels)" \
	[ "$labels" = "__name__=relay_usage_samples_total,relay=relay-ux,tenant=acme" ]
J=$(usage_json "http://127.0.0.1:$RELAY_PORT" "$ADMIN")
v=$(usage_sum "$J" ops samples)
check "the export tenant ops is billed no sample for them (samples = $v)" [ "$v" = 0 ]
v=$(usage_sum "$J" ops requests)
check "nor any request (requests = $v)" [ "$v" = 0 ]
v=$(printf '%s' "$J" | jq '[.usage[] | select(.tenant == "")] | length')
check "no usage row without a tenant ($v)" [ "$v" = 0 ]
v=$(metric "$RELAY_PORT" relay_tenant_samples_received_total 'tenant="ops"' || echo 0)
check "relay_tenant_samples_received_total of ops stays 0 ($v)" [ "$v" = 0 ]
v=$(metric "$RELAY_PORT" relay_usage_exports_total || echo 0)
check "relay_usage_exports_total counts the stored exports ($v)" [ "$v" -ge 1 ]
v=$(metric "$RELAY_PORT" relay_usage_export_failures_total || echo none)
check "relay_usage_export_failures_total = 0 ($v)" [ "$v" = 0 ]
before=$(series_line samples | sed -n 's/^acme=//p')
T_BEFORE=$(date +%s)

# --- 2. outage and kill -9 --------------------------------------------------
stop_vm
s=$(rwsend "$URL" --token acme-ux --series 10 --samples-per-series 3 --requests 2 --name-prefix ux_b)
check "outage: 60 more acme samples acknowledged" [ "$(field "$s" samples_acked)" = 60 ]
# Exports pile up in ops' queue while the upstream is down.
_ops_grew() {
	local v
	v=$(metric "$RELAY_PORT" relay_tenant_buffer_samples 'tenant="ops"') || return 1
	[ "$v" -gt "$1" ]
}
b0=$(metric "$RELAY_PORT" relay_tenant_buffer_samples 'tenant="ops"' || echo 0)
if wait_until "$WAIT_CAP" _ops_grew "$b0"; then
	b1=$(metric "$RELAY_PORT" relay_tenant_buffer_samples 'tenant="ops"')
	wait_until "$WAIT_CAP" _ops_grew "$b1"
	ok "outage: usage exports buffered ($(metric "$RELAY_PORT" relay_tenant_buffer_samples 'tenant="ops"') samples in ops' queue)"
else
	fail "outage" "no export buffered"
fi
kill9_relay
start_relay "$T/relay.conf" || { fail "restart" "relay did not become ready after kill -9"; exit 1; }
start_vm "$T/vm" "$VM_PORT" || { fail setup "victoria-metrics did not restart"; exit 1; }
for col in samples requests bytes_decoded; do
	if wait_until "$WAIT_CAP" _agree "$col"; then
		ok "after outage and kill -9: relay_usage_${col}_total = relay usage ($(series_line "$col" | tr '\n' ' '))"
	else
		fail "after kill -9: relay_usage_${col}_total" "series: $(series_line "$col" | tr '\n' ' ') usage: $(usage_line "$col" | tr '\n' ' ')"
	fi
done
after=$(series_line samples | sed -n 's/^acme=//p')
check "acme's series grew by exactly the 60 samples sent meanwhile ($before -> $after)" \
	[ "$((after - before))" = 60 ]
# The billing queries of the README. Over a window that starts once the
# series exist, increase() is exact: the samples acknowledged since.
n=$(($(date +%s) - T_BEFORE))
got=$(vm_query "$VM_PORT" "sum by (tenant) (increase(relay_usage_samples_total{tenant=~\"acme|globex\"}[${n}s]))" | tr '\n' ' ')
check "increase(relay_usage_samples_total[${n}s]) since the first check: acme 60, globex 0 ($got)" \
	[ "$got" = "acme=60 globex=0 " ]
# Over a window that holds the counters' start, increase_pure() (counters
# start at 0) is the whole usage; plain increase() would take the first
# sample as its base.
want=$(usage_line samples | tr '\n' ' ')
got=$(vm_query "$VM_PORT" 'sum by (tenant) (increase_pure(relay_usage_samples_total{tenant=~"acme|globex"}[1h]))' | tr '\n' ' ')
check "increase_pure(relay_usage_samples_total[1h]) = relay usage ($got)" [ "$got" = "$want" ]

# --- 3. a per-tenant url: export_tenant's destination, or no export --------
# VictoriaMetrics adds extra_label to every series it receives: here the
# tenant whose queue a request came from.
stop_relay
write_conf "$T/relay2.conf" \
	"storage.path=$T/data2" \
	"upstream.url=http://127.0.0.1:$VM_PORT/api/v1/write?extra_label=queue={tenant}" \
	"usage.export_interval=1s" \
	"usage.instance=relay-ux2" \
	"usage.export_tenant=ops" \
	"tenant acme.token=acme-ux" \
	"tenant ops.token=ops-ux"
start_relay "$T/relay2.conf" || { fail setup "relay 2 did not become ready"; exit 1; }
s=$(rwsend "$URL" --token acme-ux --series 4 --requests 1 --name-prefix ux_c)
check "per-tenant url: 4 acme samples acknowledged" [ "$(field "$s" samples_acked)" = 4 ]
SEL3='{__name__="relay_usage_samples_total",relay="relay-ux2",tenant="acme",queue="ops"}'
if wait_until "$WAIT_CAP" vm_has "$VM_PORT" "$SEL3" 1; then
	ok "the usage series went to export_tenant ops' destination, tenant=acme kept"
else
	fail "export_tenant destination" "$(vm_export "$VM_PORT" '{relay="relay-ux2"}' | jq -c .metric | head -n 3)"
fi
stop_relay
write_conf "$T/relay3.conf" \
	"storage.path=$T/data3" \
	"upstream.url=http://127.0.0.1:$VM_PORT/api/v1/write?extra_label=queue={tenant}" \
	"usage.export_interval=1s" \
	"tenant acme.token=acme-ux"
start_relay "$T/relay3.conf" || { fail setup "relay 3 did not become ready"; exit 1; }
checkx "per-tenant url without export_tenant: the export pauses, and says so" \
	'grep -q "msg=\"usage export paused\"" "$RELAY_LOG"'

# --- 4. past usage_retention, across a restart ------------------------------
# 72 hourly records of tenant-00000 (1 sample each) up to the previous
# hour, and usage_retention = 1d: the first clean-up deletes the hours
# older than a day and carries them. Every sample of the series is 72,
# before and after a restart (no drop, which increase() takes as a reset).
stop_relay
LAST4=$(( ($(date +%s) / 3600 - 1) * 3600 ))
out=$("$USAGEFILL" "$T/data4" 1 72 "$LAST4") ||
	{ fail setup "usagefill: $out"; exit 1; }
write_conf "$T/relay4.conf" \
	"storage.path=$T/data4" \
	"storage.usage_retention=1d" \
	"usage.export_interval=1s" \
	"usage.instance=relay-ux4"
start_relay "$T/relay4.conf" || { fail setup "relay 4 did not become ready"; exit 1; }
SEL4='relay_usage_samples_total{relay="relay-ux4",tenant="tenant-00000"}'
# _kept_rows: the rows `relay usage` shows, when fewer than 72.
_kept_rows() {
	local n
	n=$("$RELAY_BIN" usage -c "$T/relay4.conf" | jq '.usage | length') || return 1
	[ "$n" -lt 72 ] && echo "$n"
}
if wait_until "$WAIT_CAP" _kept_rows >/dev/null; then
	ok "the clean-up deleted the hours past a day: relay usage shows $(_kept_rows) of 72"
else
	fail "clean-up" "relay usage still shows 72 rows"
fi
# Two exports after the clean-up, then the same after a restart.
x=$(metric "$RELAY_PORT" relay_usage_exports_total || echo 0)
wait_until "$WAIT_CAP" metric_ge "$RELAY_PORT" relay_usage_exports_total $((x + 2))
got=$(vm_query "$VM_PORT" "last_over_time($SEL4[1h])")
check "after the clean-up the series is still all 72 samples ($got)" \
	[ "$got" = "tenant-00000=72" ]
stop_relay
start_relay "$T/relay4.conf" || { fail setup "relay 4 did not restart"; exit 1; }
wait_until "$WAIT_CAP" metric_ge "$RELAY_PORT" relay_usage_exports_total 2
got=$(vm_query "$VM_PORT" "min_over_time($SEL4[1h])")
check "after a restart no sample of the series is below 72 ($got)" \
	[ "$got" = "tenant-00000=72" ]
got=$(vm_query "$VM_PORT" "max_over_time($SEL4[1h])")
check "nor above ($got)" [ "$got" = "tenant-00000=72" ]
