#!/usr/bin/env bash
# t_relabel.sh - relabel rules against the reference, vmagent:
#  1. the same rules file (drop by __name__ regex, keep, labeldrop,
#     replace, labelmap, hashmod, lowercase, uppercase) given to the
#     relay ([tenancy] relabel) and to vmagent
#     (-remoteWrite.relabelConfig), the same requests sent
#     to both (each series twice, as scrapes repeat it: the second time
#     the relay takes its result from the cache of rule results), each
#     into its own VictoriaMetrics: the series and samples
#     both hold are identical (the relay's tenant label aside). hashmod
#     differs by design (Prometheus' MD5 against vmagent's XXH64): its
#     label is compared apart, the relay's value against MD5 computed here
#     by md5sum, and the rest of those series exactly;
#  2. usage bills what arrived in VictoriaMetrics, and the samples of the
#     dropped series are counted as samples_dropped_by_rule (usage and
#     /metrics);
#  3. the tenant's own rules run after [tenancy]'s; a series they leave
#     invalid (a label name that is none, __name__ removed) is refused
#     alone: the rest of the request arrives, the answer is 400 with the
#     count, usage and /metrics count the refused samples (relabel_invalid);
#  4. a SIGHUP reload swaps the rules (a series kept before it is dropped
#     after it: the cache holds one load's results); a bad rules file at
#     reload is refused with FILE:LINE and the rules in force keep working.
. "$(dirname "$0")/../lib.sh"
require_relay

VMAGENT=${VMAGENT:-vmagent}
if ! command -v "$VMAGENT" >/dev/null || ! command -v md5sum >/dev/null; then
	skip relabel "no vmagent or md5sum here"
	exit 0
fi

ADMIN=admin-relabel-1
TOKEN=acme-relabel-2
SERIES=6
SAMPLES=3
REQS=2          # each series twice: the second time from the rules' cache
START=$(($(now_ms) - 600000))

# eq NAME WANT GOT: ok when GOT is WANT.
eq() {
	check "$1 ($3)" [ "$3" = "$2" ]
}

# --- the rules ---------------------------------------------------------------

RULES=$T/rules.yml
cat >"$RULES" <<'EOF'
# drop by metric name
- source_labels: [__name__]
  regex: 'go_.*'
  action: drop
# keep env=prod, and series without env
- source_labels: [env]
  regex: 'prod|'
  action: keep
- regex: 'tmp_.*'
  action: labeldrop
# replace with groups, and a join with its own separator
- source_labels: [pod]
  regex: '(.*)-([0-9]+)'
  target_label: pod_index
  replacement: 'idx-$2'
- source_labels: [job, env]
  separator: /
  target_label: origin
- regex: 'k8s_label_(.*)'
  replacement: 'team_$1'
  action: labelmap
- source_labels: [instance]
  target_label: shard
  modulus: 4
  action: hashmod
# case mapping, past ASCII too
- source_labels: [env]
  target_label: env_upper
  action: uppercase
- source_labels: [pod]
  target_label: pod
  action: lowercase
EOF
TENANT_RULES=$T/tenant.yml
cat >"$TENANT_RULES" <<'EOF'
- target_label: stage
  replacement: tenant
# app9's host-0 gets bad_9, which the labelmap makes "9": not a label name
- source_labels: [instance, __name__]
  regex: 'host-0;app9_.*'
  target_label: bad_9
  replacement: x
# bad_9 -> "9": not a label name, the series is refused
- regex: 'bad_(.*)'
  action: labelmap
# app9's host-1 loses its metric name: refused
- source_labels: [instance, __name__]
  regex: 'host-1;app9_.*'
  target_label: __name__
  replacement: ''
EOF

# --- two VictoriaMetrics, the relay and vmagent ------------------------------

start_vm "$T/vm-relay" "$(free_port)" || { fail setup "victoria-metrics did not start"; exit 1; }
VM_R=$VM_PORT
start_vm "$T/vm-agent" "$(free_port)" || { fail setup "victoria-metrics did not start"; exit 1; }
VM_A=$VM_PORT
VM_PORT=$VM_R

RELAY_PORT=$(free_port)
write_conf "$T/relay.conf" \
	"server.admin_token=$ADMIN" \
	"tenancy.relabel=$RULES" \
	"tenant acme.token=$TOKEN"
start_relay "$T/relay.conf" || { fail setup "relay did not become ready"; exit 1; }
BASE=http://127.0.0.1:$RELAY_PORT

AGENT_PORT=$(free_port)
"$VMAGENT" -remoteWrite.url="http://127.0.0.1:$VM_A/api/v1/write" \
	-remoteWrite.tmpDataPath="$T/vmagent" \
	-remoteWrite.relabelConfig="$RULES" \
	-remoteWrite.flushInterval=200ms \
	-httpListenAddr="127.0.0.1:$AGENT_PORT" -loggerLevel=ERROR \
	>>"$T/vmagent.log" 2>&1 &
PIDS+=("$!")
_agent_up() { _http_ok "http://127.0.0.1:$AGENT_PORT/health"; }
wait_until "$WAIT_CAP" _agent_up || { fail setup "vmagent did not start: $(tail -3 "$T/vmagent.log")"; exit 1; }

# send PREFIX START LABELS...: the same requests to the relay (as acme) and
# to vmagent; prints the relay's summary line.
send() {
	local prefix=$1 start=$2 args=() l
	shift 2
	for l in "$@"; do args+=(--label "$l"); done
	rwsend "http://127.0.0.1:$AGENT_PORT/api/v1/write" --quiet \
		--series "$SERIES" --samples-per-series "$SAMPLES" --requests "$REQS" \
		--start-ts "$start" --name-prefix "$prefix" "${args[@]}" >/dev/null
	rwsend "$BASE/api/v1/write" --token "$TOKEN" --quiet \
		--series "$SERIES" --samples-per-series "$SAMPLES" --requests "$REQS" \
		--start-ts "$start" --name-prefix "$prefix" "${args[@]}"
}

PER=$((SERIES * SAMPLES * REQS))
send app "$START" env=prod pod=WÉB-Äpi-12 tmp_debug=x k8s_label_team=core >/dev/null
send go_gc "$START" env=prod >/dev/null
send app2 "$START" env=dev pod=api-3 >/dev/null
send app3 "$START" pod=db k8s_label_owner=ops >/dev/null
KEPT=$((2 * PER))
DROPPED=$((2 * PER))

# --- 1. the same series as vmagent -------------------------------------------

ALL='{__name__=~".+"}'
wait_until "$WAIT_CAP" vm_is "$VM_A" "$ALL" "$KEPT" ||
	fail "vmagent stored" "expected $KEPT samples, got $(vm_count "$VM_A" "$ALL")"
wait_until "$WAIT_CAP" vm_is "$VM_R" "$ALL" "$KEPT" ||
	fail "relay stored" "expected $KEPT samples, got $(vm_count "$VM_R" "$ALL")"

# normal PORT: every series as one sorted line: labels (no tenant, no
# shard), timestamps and values.
normal() {
	vm_export "$1" "$ALL" |
		jq -c '{m: (.metric | del(.tenant, .shard) | to_entries | sort_by(.key) | from_entries), t: .timestamps, v: .values}' |
		sort
}
normal "$VM_R" >"$T/relay.series"
normal "$VM_A" >"$T/vmagent.series"
if [ -s "$T/relay.series" ] && cmp -s "$T/relay.series" "$T/vmagent.series"; then
	ok "same as vmagent: $(wc -l <"$T/relay.series") series identical but for hashmod's label"
else
	fail "same as vmagent" "$(diff "$T/relay.series" "$T/vmagent.series" | head -5 | tr '\n' ' ')"
fi

# Each relay series carries exactly the labels the rules leave.
one=$(vm_export "$VM_R" '{__name__="app_metric",instance="host-1"}' | jq -c '.metric | keys')
eq "rules applied" '["__name__","env","env_upper","instance","job","k8s_label_team","origin","pod","pod_index","shard","team_team","tenant"]' "$one"
one=$(vm_export "$VM_R" '{__name__="app_metric",instance="host-1"}' | jq -r '"\(.metric.pod) \(.metric.env_upper)"')
eq "lowercase, uppercase" "wéb-äpi-12 PROD" "$one"

# hashmod: the relay's shard is MD5's last 8 bytes mod 4 (4 divides 2^64:
# the last hex digit's low two bits); vmagent's agrees only by chance.
bad=0 agree=0 total=0
while IFS=' ' read -r inst shard; do
	h=$(printf '%s' "$inst" | md5sum | cut -c32)
	want=$((16#$h % 4))
	[ "$shard" = "$want" ] || bad=$((bad + 1))
	total=$((total + 1))
	a=$(vm_export "$VM_A" "{__name__=\"app_metric\",instance=\"$inst\"}" | jq -r '.metric.shard')
	[ "$a" = "$shard" ] && agree=$((agree + 1))
done < <(vm_export "$VM_R" '{__name__="app_metric"}' | jq -r '"\(.metric.instance) \(.metric.shard)"')
eq "hashmod is Prometheus' MD5" "0 of $SERIES wrong" "$bad of $total wrong"
note "hashmod: vmagent's XXH64 shard agrees with MD5's on $agree of $total instances"

# --- 2. usage and /metrics ---------------------------------------------------

U=$(usage_json "$BASE" "$ADMIN")
eq "usage bills what arrived" "$KEPT" "$(usage_sum "$U" acme samples)"
eq "usage series" "$((2 * SERIES * REQS))" "$(usage_sum "$U" acme series)"
eq "usage samples_dropped_by_rule" "$DROPPED" "$(usage_sum "$U" acme samples_dropped_by_rule)"
eq "metric samples dropped" "$DROPPED" "$(metric "$RELAY_PORT" relay_samples_dropped_by_rule_total)"
# Every series sent so far went through the rules or the cache (the
# requests' labels come sorted, as Prometheus sends them).
hits=$(metric "$RELAY_PORT" relay_relabel_cache_hits_total)
misses=$(metric "$RELAY_PORT" relay_relabel_cache_misses_total)
eq "cache hits + misses = series sent" "$((4 * SERIES * REQS))" "$((${hits%.*} + ${misses%.*}))"
eq "metric tenant samples dropped" "$DROPPED" \
	"$(metric "$RELAY_PORT" relay_tenant_samples_dropped_by_rule_total 'tenant="acme"')"

# --- 3. the tenant's rules, after [tenancy]'s --------------------------------

write_conf "$T/relay.conf" \
	"server.admin_token=$ADMIN" \
	"tenancy.relabel=$RULES" \
	"tenant acme.token=$TOKEN" \
	"tenant acme.relabel=$TENANT_RULES"
hup_and_wait "configuration reloaded" || fail reload "no reload logged"
T2=$((START + 100000))
line=$(send app4 "$T2" env=prod)
eq "tenant rules: accepted" "$REQS" "$(field "$line" acked)"
wait_until "$WAIT_CAP" vm_is "$VM_R" '{__name__="app4_metric",stage="tenant",origin="rwsend/prod"}' "$PER" ||
	fail "tenant rules" "app4 series lack stage=tenant: $(vm_export "$VM_R" '{__name__="app4_metric"}' | head -1)"

# Series the rules leave invalid are refused alone: the rest is stored,
# the answer is 400 with the reason and the count.
rwsend --emit "$T/some.bin" --series "$SERIES" --samples-per-series "$SAMPLES" \
	--start-ts "$T2" --name-prefix app9 --label env=prod
code=$(POST_OUT=$T/some.out post_rw "$BASE/api/v1/write" "$T/some.bin" -H "Authorization: Bearer $TOKEN")
eq "some series invalid after rules: 400" 400 "$code"
checkx "... one line: the first reason, 2 series refused ($(head -c 300 "$T/some.out"))" \
	"[ \"\$(grep -c '' '$T/some.out')\" = 1 ] && grep -qF 'relabeled series 0: invalid label name \"9\"' '$T/some.out' && grep -qF '2 series refused ($((2 * SAMPLES)) samples), $((SERIES - 2)) series taken' '$T/some.out'"
check "... the other $((SERIES - 2)) series arrive" \
	wait_until "$WAIT_CAP" vm_is "$VM_R" '{__name__="app9_metric"}' "$(((SERIES - 2) * SAMPLES))"
eq "... host-0 and host-1 do not" 0 \
	"$(vm_count "$VM_R" '{__name__="app9_metric",instance=~"host-[01]"}')"
eq "... /metrics: 1 request, $((2 * SAMPLES)) samples refused as relabel_invalid" \
	"1 $((2 * SAMPLES))" \
	"$(metric "$RELAY_PORT" relay_requests_refused_total 'reason="relabel_invalid"') $(metric "$RELAY_PORT" relay_samples_refused_total 'reason="relabel_invalid"')"
eq "... the tenant's /metrics" 1 \
	"$(metric "$RELAY_PORT" relay_tenant_requests_refused_total 'reason="relabel_invalid"')"
invalid_billed() {
	local u
	u=$(usage_json "$BASE" "$ADMIN")
	[ "$(usage_sum "$u" acme samples_refused_relabel_invalid)" = $((2 * SAMPLES)) ] &&
		[ "$(usage_sum "$u" acme requests_refused_relabel_invalid)" = 1 ]
}
check "... usage: $((2 * SAMPLES)) samples refused as relabel_invalid" \
	wait_until "$WAIT_CAP" invalid_billed
# Sent again, it is not a duplicate (its refused series never were stored).
code=$(POST_OUT=$T/some.out post_rw "$BASE/api/v1/write" "$T/some.bin" -H "Authorization: Bearer $TOKEN")
eq "... sent again: 400 again, not a duplicate" 400 "$code"

# Every series invalid: 400, nothing stored.
rwsend --emit "$T/bad.bin" --series 2 --start-ts "$T2" --name-prefix app8 \
	--label env=prod --label bad_9=x
code=$(POST_OUT=$T/bad.out post_rw "$BASE/api/v1/write" "$T/bad.bin" -H "Authorization: Bearer $TOKEN")
eq "every series invalid: 400" 400 "$code"
checkx "... with the reason" "grep -qF 'relabeled series 0: invalid label name \"9\"' '$T/bad.out' && grep -qF '0 series taken' '$T/bad.out'"
eq "... counted" 3 \
	"$(metric "$RELAY_PORT" relay_requests_refused_total 'reason="relabel_invalid"')"

# --- 4. reload swaps rules; a bad file keeps the old ones --------------------

# app10's series are kept before the reload and dropped after it: what
# the old rules made of them is not taken from the cache.
send app10 "$((START + 150000))" env=prod >/dev/null
wait_until "$WAIT_CAP" vm_is "$VM_R" '{__name__="app10_metric"}' "$PER" ||
	fail "before reload" "app10 not stored"
sed -i 's/go_\.\*/(go|app5|app10)_.*/' "$RULES"
hup_and_wait "configuration reloaded" || fail reload "no reload logged"
T3=$((START + 200000))
send app5 "$T3" env=prod >/dev/null
send app10 "$T3" env=prod >/dev/null
send app6 "$T3" env=prod >/dev/null
wait_until "$WAIT_CAP" vm_is "$VM_R" '{__name__="app6_metric"}' "$PER" ||
	fail "after reload" "app6 not stored"
eq "reload swaps rules: app5 dropped" 0 "$(vm_count "$VM_R" '{__name__="app5_metric"}')"
eq "reload swaps rules: app10, kept before, dropped now" "$PER" \
	"$(vm_count "$VM_R" '{__name__="app10_metric"}')"
eq "reload: dropped counted" "$((DROPPED + 2 * PER))" \
	"$(metric "$RELAY_PORT" relay_samples_dropped_by_rule_total)"

printf -- '- action: drop\n  source_labels: [__name__]\n- action: hashmod\n  target_label: x\n' >"$RULES"
hup_and_wait "reload failed" || fail "bad file" "no reload failure logged"
if grep -F "reload failed" "$RELAY_LOG" | tail -1 | grep -qF "$RULES:3: relabel configuration for hashmod requires non-zero modulus"; then
	ok "bad file at reload: refused with FILE:LINE"
else
	fail "bad file at reload" "$(grep -F 'reload failed' "$RELAY_LOG" | tail -1)"
fi
T4=$((START + 300000))
send app5 "$T4" env=prod >/dev/null
send app7 "$T4" env=prod >/dev/null
wait_until "$WAIT_CAP" vm_is "$VM_R" '{__name__="app7_metric"}' "$PER" ||
	fail "old rules kept" "app7 not stored"
eq "old rules kept: app5 still dropped" 0 "$(vm_count "$VM_R" '{__name__="app5_metric"}')"

# A bad file at start is refused the same way.
if "$RELAY_BIN" -c "$T/relay.conf" -n >"$T/check.out" 2>&1; then
	fail "bad file at start" "relay -n accepted it"
else
	checkx "bad file at start: FILE:LINE" "grep -qF '$RULES:3: relabel configuration for hashmod requires non-zero modulus' '$T/check.out'"
fi

