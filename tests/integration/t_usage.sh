#!/usr/bin/env bash
# t_usage.sh - per-tenant usage records equal what was acknowledged:
#  1. a mixed run of two tenants (request, series, sample and byte counts
#     known from the bodies posted) read back as JSON, as CSV and with
#     `relay usage` while the relay runs;
#  2. a byte-identical resend is acknowledged but neither stored nor
#     counted again (another tenant's identical body is its own);
#  3. kill -9 under concurrent load with the upstream down: usage holds
#     every acknowledged sample and exactly what is stored, and once the
#     upstream is back everything acknowledged arrives.
. "$(dirname "$0")/../lib.sh"
require_relay

VM_PORT=$(free_port)
RELAY_PORT=$(free_port)
start_vm "$T/vm" "$VM_PORT" || { fail setup "victoria-metrics did not start"; exit 1; }

ACME_TOKEN=acme-usage-token-1
GLOBEX_TOKEN=globex-usage-token-2
ADMIN_TOKEN=admin-usage-token-3
write_conf "$T/relay.conf" \
	"server.admin_token=$ADMIN_TOKEN" \
	"tenant acme.token=$ACME_TOKEN" \
	"tenant globex.token=$GLOBEX_TOKEN"
start_relay "$T/relay.conf" || { fail setup "relay did not become ready"; exit 1; }

BASE=http://127.0.0.1:$RELAY_PORT
URL=$BASE/api/v1/write

# csv_sum CSV TENANT FIELD: the same from a CSV report (by header name).
csv_sum() {
	printf '%s\n' "$1" | awk -F, -v t="$2" -v f="$3" '
		NR == 1 { for (i = 1; i <= NF; i++) if ($i == f) c = i; next }
		$1 == t && c { s += $c }
		END { if (!c) { print "nocol"; exit } printf "%d\n", s }'
}

# _between N LO HI: LO <= N <= HI (integers).
_between() {
	[ -n "$1" ] && [ "$1" -ge "$2" ] && [ "$1" -le "$3" ]
}

# _one_of X A B...: X equals one of the rest.
_one_of() {
	local x=$1
	shift
	for v in "$@"; do
		[ "$x" = "$v" ] && return 0
	done
	return 1
}

# decoded_len FILE: the decoded length a snappy block states (its varint
# preamble).
decoded_len() {
	local v=0 shift=0 b
	for b in $(od -An -tu1 -N5 "$1"); do
		v=$((v | (b & 127) << shift))
		shift=$((shift + 7))
		[ "$b" -lt 128 ] && break
	done
	echo "$v"
}

# --- 1. a mixed run ------------------------------------------------------------
# acme: 6 requests of 40 series x 3 samples; globex: 4 requests of 90 series
# x 1 sample. Bodies are files so that their sizes are known.
START=$(( ($(date +%s) - 7200) * 1000 ))
HOUR0=$(( $(date +%s) / 3600 * 3600 ))
declare -A REQ SER SMP BYTES DEC
REQ[acme]=0; SER[acme]=0; SMP[acme]=0; BYTES[acme]=0; DEC[acme]=0
REQ[globex]=0; SER[globex]=0; SMP[globex]=0; BYTES[globex]=0; DEC[globex]=0
afiles=() gfiles=()
for i in 0 1 2 3 4 5; do
	f=$T/acme-$i.bin
	"$RWSEND" --emit "$f" --series 40 --samples-per-series 3 --name-prefix us_acme \
		--start-ts $((START + i * 10000))
	afiles+=(--file "$f")
	BYTES[acme]=$((BYTES[acme] + $(stat -c %s "$f")))
	DEC[acme]=$((DEC[acme] + $(decoded_len "$f")))
done
for i in 0 1 2 3; do
	f=$T/globex-$i.bin
	"$RWSEND" --emit "$f" --series 90 --samples-per-series 1 --name-prefix us_globex \
		--start-ts $((START + i * 10000))
	gfiles+=(--file "$f")
	BYTES[globex]=$((BYTES[globex] + $(stat -c %s "$f")))
	DEC[globex]=$((DEC[globex] + $(decoded_len "$f")))
done
sa=$(rwsend "$URL" --token "$ACME_TOKEN" "${afiles[@]}" --concurrency 3)
sg=$(rwsend "$URL" --token "$GLOBEX_TOKEN" "${gfiles[@]}" --concurrency 2)
note "acme: $sa"
note "globex: $sg"
check "acme: 6 requests answered 204" [ "$(field "$sa" status_2xx)" = 6 ]
check "globex: 4 requests answered 204" [ "$(field "$sg" status_2xx)" = 4 ]
REQ[acme]=6; SER[acme]=$((6 * 40)); SMP[acme]=$((6 * 40 * 3))
REQ[globex]=4; SER[globex]=$((4 * 90)); SMP[globex]=$((4 * 90))

# Let delivery finish so that the reports stop changing.
if wait_until "$WAIT_CAP" vm_has "$VM_PORT" '{__name__="us_acme_metric"}' "${SMP[acme]}" &&
	wait_until "$WAIT_CAP" vm_has "$VM_PORT" '{__name__="us_globex_metric"}' "${SMP[globex]}"; then
	ok "both tenants' samples arrived"
else
	fail "delivery" "acme $(vm_count_distinct "$VM_PORT" '{__name__="us_acme_metric"}')/${SMP[acme]} globex $(vm_count_distinct "$VM_PORT" '{__name__="us_globex_metric"}')/${SMP[globex]}"
fi
_delivered_all() {
	local j
	j=$(usage_json "$BASE" "$ADMIN_TOKEN") || return 1
	[ "$(usage_sum "$j" acme samples_delivered)" = "${SMP[acme]}" ] &&
		[ "$(usage_sum "$j" globex samples_delivered)" = "${SMP[globex]}" ]
}
if wait_until "$WAIT_CAP" _delivered_all; then
	ok "usage: samples_delivered = samples for both tenants"
else
	j=$(usage_json "$BASE" "$ADMIN_TOKEN")
	fail "samples_delivered" "acme $(usage_sum "$j" acme samples_delivered)/${SMP[acme]} globex $(usage_sum "$j" globex samples_delivered)/${SMP[globex]}"
fi

J=$(usage_json "$BASE" "$ADMIN_TOKEN")
note "usage: $J"
rows=$(printf '%s' "$J" | jq '.usage | length')
check "usage JSON parses, one or two rows per tenant (got $rows)" \
	_between "$rows" 2 4
for t in acme globex; do
	for f in requests series samples; do
		v=$(usage_sum "$J" "$t" "$f")
		case $f in requests) w=${REQ[$t]} ;; series) w=${SER[$t]} ;; samples) w=${SMP[$t]} ;; esac
		check "json: $t $f = $w (got $v)" [ "$v" = "$w" ]
	done
	v=$(usage_sum "$J" "$t" bytes_compressed)
	check "json: $t bytes_compressed = ${BYTES[$t]}, the body bytes posted (got $v)" \
		[ "$v" = "${BYTES[$t]}" ]
	v=$(usage_sum "$J" "$t" bytes_decoded)
	check "json: $t bytes_decoded = ${DEC[$t]}, the bodies' decoded lengths (got $v)" \
		[ "$v" = "${DEC[$t]}" ]
	v=$(usage_sum "$J" "$t" samples_refused_rate_limited)
	check "json: $t samples_refused_rate_limited = 0 (got $v)" [ "$v" = 0 ]
done
if [ "$(printf '%s' "$J" | jq '.usage | length')" = 2 ]; then
	# An estimate: within 2%, at these sizes within one.
	v=$(usage_sum "$J" acme active_series)
	check "json: acme active_series = 40 +-1 (got $v)" _between "$v" 39 41
	v=$(usage_sum "$J" globex active_series)
	check "json: globex active_series = 90 +-1 (got $v)" _between "$v" 89 91
else
	note "the run crossed an hour boundary: active_series per hour not checked"
fi
hours=$(printf '%s' "$J" | jq -r '.usage[].hour' | sort -u | tr '\n' ' ')
bad=$(printf '%s' "$J" | jq -r '.usage[].hour' | grep -cvE '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:00:00Z$')
check "json: hours are UTC hour starts ($hours)" [ "$bad" = 0 ]
h0=$(date -u -d "@$HOUR0" +%Y-%m-%dT%H:00:00Z)
hnow=$(date -u +%Y-%m-%dT%H:00:00Z)
first=$(printf '%s' "$J" | jq -r '[.usage[].hour] | min')
check "json: the first hour is the hour the run started ($first; $h0 or $hnow)" \
	_one_of "$first" "$h0" "$hnow"
v=$(metric "$RELAY_PORT" relay_samples_received_total)
check "usage samples add up to relay_samples_received_total ($v)" \
	[ "$v" = $((SMP[acme] + SMP[globex])) ]

# Filters.
j=$(usage_json "$BASE" "$ADMIN_TOKEN" "tenant=globex")
check "json ?tenant=globex: only globex rows" \
	[ "$(printf '%s' "$j" | jq -r '[.usage[].tenant] | unique | join(",")')" = globex ]
check "json ?tenant=globex: samples = ${SMP[globex]}" [ "$(usage_sum "$j" globex samples)" = "${SMP[globex]}" ]
# an id too long is refused, not cut down to another tenant's
long=globex$(printf 'x%.0s' $(seq 70))
code=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $ADMIN_TOKEN" \
	"$BASE/api/v1/usage?tenant=$long")
check "json ?tenant=<76 characters>: 400 ($code)" [ "$code" = 400 ]
j=$(usage_json "$BASE" "$ADMIN_TOKEN" "to=$HOUR0")
check "json ?to=<the run's first hour>: no rows (to is exclusive)" \
	[ "$(printf '%s' "$j" | jq '.usage | length')" = 0 ]
j=$(usage_json "$BASE" "$ADMIN_TOKEN" "from=$h0")
check "json ?from=$h0 (RFC 3339): every row" \
	[ "$(printf '%s' "$j" | jq '.usage | length')" = "$rows" ]
j=$(usage_json "$BASE" "$ADMIN_TOKEN" "from=$((HOUR0 + 7 * 86400))")
check "json ?from=<next week>: no rows" [ "$(printf '%s' "$j" | jq '.usage | length')" = 0 ]
j=$(usage_json "$BASE" "$ADMIN_TOKEN" "tenant=acme&from=$(date -u -d "@$HOUR0" +%Y-%m-%d)&to=$((HOUR0 + 3 * 86400))")
check "json ?tenant=acme&from=<date>&to=<unix>: acme's samples" \
	[ "$(usage_sum "$j" acme samples)" = "${SMP[acme]}" ]
code=$(http_code "$BASE/api/v1/usage?from=yesterday" -H "Authorization: Bearer $ADMIN_TOKEN")
check "json ?from=yesterday: 400 (got $code)" [ "$code" = 400 ]
code=$(http_code "$BASE/api/v1/usage?format=xml" -H "Authorization: Bearer $ADMIN_TOKEN")
check "?format=xml: 400 (got $code)" [ "$code" = 400 ]

# CSV.
C=$(usage_json "$BASE" "$ADMIN_TOKEN" "format=csv")
hdr=$(printf '%s\n' "$C" | head -n 1)
keys=$(printf '%s' "$J" | jq -r '.usage[0] | keys_unsorted | join(",")')
check "csv header = the JSON keys in order" [ "$hdr" = "$keys" ]
check "csv: one line per JSON row" [ "$(printf '%s\n' "$C" | tail -n +2 | grep -c .)" = "$rows" ]
for t in acme globex; do
	for f in requests series samples bytes_compressed bytes_decoded samples_delivered; do
		check "csv: $t $f matches json" [ "$(csv_sum "$C" "$t" "$f")" = "$(usage_sum "$J" "$t" "$f")" ]
	done
done
check "csv: Content-Type text/csv" bash -c "curl -s -o /dev/null -D - -H 'Authorization: Bearer $ADMIN_TOKEN' '$BASE/api/v1/usage?format=csv' | grep -qi '^content-type: text/csv'"

# The CLI reads the same while the relay runs.
cli=$("$RELAY_BIN" usage -c "$T/relay.conf")
rc=$?
check "relay usage (relay running) exits 0 (got $rc)" [ "$rc" = 0 ]
check "relay usage prints the same JSON as the endpoint" [ "$cli" = "$J" ]
cli=$("$RELAY_BIN" usage -c "$T/relay.conf" --csv)
check "relay usage --csv prints the same CSV as the endpoint" [ "$cli" = "$C" ]
cli=$("$RELAY_BIN" usage -c "$T/relay.conf" --tenant acme)
check "relay usage --tenant acme: acme's rows only" \
	[ "$(printf '%s' "$cli" | jq -r '[.usage[].tenant] | unique | join(",")')" = acme ]
check "relay usage --tenant acme: samples ${SMP[acme]}" \
	[ "$(usage_sum "$cli" acme samples)" = "${SMP[acme]}" ]
cli=$("$RELAY_BIN" usage -c "$T/relay.conf" --tenant globex --from "$h0" --to "$((HOUR0 + 86400))" --csv)
check "relay usage --tenant globex --from --to --csv: globex's samples" \
	[ "$(csv_sum "$cli" globex samples)" = "${SMP[globex]}" ]
cli=$("$RELAY_BIN" usage -c "$T/relay.conf" --to "$HOUR0")
check "relay usage --to <first hour>: no rows" [ "$(printf '%s' "$cli" | jq '.usage | length')" = 0 ]
"$RELAY_BIN" usage -c "$T/relay.conf" --from garbage >/dev/null 2>&1
rc=$?
check "relay usage --from garbage: non-zero exit (got $rc)" [ "$rc" -ne 0 ]

# --- 2. a byte-identical resend --------------------------------------------
"$RWSEND" --emit "$T/dup.bin" --series 30 --samples-per-series 2 --name-prefix us_dup
DUPBYTES=$(stat -c %s "$T/dup.bin")
code=$(post_rw "$URL" "$T/dup.bin" -H "Authorization: Bearer $ACME_TOKEN")
check "dup: first post 204 (got $code)" [ "$code" = 204 ]
before=$(usage_json "$BASE" "$ADMIN_TOKEN" "tenant=acme")
code=$(post_rw "$URL" "$T/dup.bin" -H "Authorization: Bearer $ACME_TOKEN")
check "dup: second, identical post 204 (got $code)" [ "$code" = 204 ]
code=$(post_rw "$URL" "$T/dup.bin" -H "Authorization: Bearer $ACME_TOKEN")
check "dup: third, identical post 204 (got $code)" [ "$code" = 204 ]
after=$(usage_json "$BASE" "$ADMIN_TOKEN" "tenant=acme")
for f in requests series samples bytes_compressed bytes_decoded; do
	check "dup: acme $f unchanged by the resends ($(usage_sum "$before" acme "$f") -> $(usage_sum "$after" acme "$f"))" \
		[ "$(usage_sum "$before" acme "$f")" = "$(usage_sum "$after" acme "$f")" ]
done
check "dup: acme's requests = 7 after one stored copy" [ "$(usage_sum "$after" acme requests)" = 7 ]
check "dup: relay_tenant_duplicate_requests_total{tenant=\"acme\"} = 2" \
	metric_is "$RELAY_PORT" relay_tenant_duplicate_requests_total 2 'tenant="acme"'
# The same body from another tenant is that tenant's data.
code=$(post_rw "$URL" "$T/dup.bin" -H "Authorization: Bearer $GLOBEX_TOKEN")
check "dup: the same body as globex 204 (got $code)" [ "$code" = 204 ]
j=$(usage_json "$BASE" "$ADMIN_TOKEN" "tenant=globex")
check "dup: globex's requests counted it (5)" [ "$(usage_sum "$j" globex requests)" = 5 ]
check "dup: globex's bytes_compressed grew by the body" \
	[ "$(usage_sum "$j" globex bytes_compressed)" = $((BYTES[globex] + DUPBYTES)) ]
# A marker after the resends; once it is in, anything stored before it is.
"$RWSEND" --emit "$T/mark.bin" --series 1 --samples-per-series 1 --name-prefix us_mark
code=$(post_rw "$URL" "$T/mark.bin" -H "Authorization: Bearer $ACME_TOKEN")
check "dup: marker 204 (got $code)" [ "$code" = 204 ]
if wait_until "$WAIT_CAP" vm_has "$VM_PORT" '{__name__="us_mark_metric"}' 1 &&
	wait_until "$WAIT_CAP" vm_has "$VM_PORT" '{__name__="us_dup_metric",tenant="globex"}' 60 &&
	wait_until "$WAIT_CAP" metric_is "$RELAY_PORT" relay_buffer_entries 0; then
	ok "dup: marker and globex's copy arrived, buffer empty"
else
	fail "dup: delivery" "marker $(vm_count "$VM_PORT" '{__name__="us_mark_metric"}')"
fi
n=$(vm_count "$VM_PORT" '{__name__="us_dup_metric",tenant="acme"}')
check "dup: victoria-metrics holds acme's 60 samples once (got $n)" [ "$n" = 60 ]
n=$(vm_count "$VM_PORT" '{__name__="us_dup_metric",tenant="globex"}')
check "dup: victoria-metrics holds globex's 60 samples once (got $n)" [ "$n" = 60 ]

# --- 3. kill -9 under load, upstream down ------------------------------------
j=$(usage_json "$BASE" "$ADMIN_TOKEN")
A0=$(usage_sum "$j" acme samples)
R0=$(usage_sum "$j" acme requests)
D0=$(usage_sum "$j" acme samples_delivered)
stop_vm
ok204=$(metric "$RELAY_PORT" relay_requests_total 'code="204"')
"$RWSEND" "$URL" --token "$ACME_TOKEN" --series 50 --samples-per-series 2 \
	--requests 10000 --concurrency 4 --name-prefix us_kill --quiet \
	>"$T/load.out" 2>"$T/load.err" &
LOAD_PID=$!
PIDS+=("$LOAD_PID")
if wait_until "$WAIT_CAP" metric_ge "$RELAY_PORT" relay_requests_total $((ok204 + 40)) 'code="204"'; then
	kill9_relay
	ok "kill -9 after 40+ acknowledged requests"
else
	kill9_relay
	fail "load" "the relay did not acknowledge 40 requests"
fi
wait "$LOAD_PID"
_forget_pid "$LOAD_PID"
load=$(cat "$T/load.out")
note "load: $load"
ACKED=$(field "$load" samples_acked)
ACKREQ=$(field "$load" acked)
check "the kill came mid-load (acked $ACKREQ of 10000 requests)" \
	_between "$ACKREQ" 40 9999

# Read back with the CLI before the relay restarts.
cli=$("$RELAY_BIN" usage -c "$T/relay.conf" --tenant acme)
rc=$?
check "relay usage after kill -9 exits 0" [ "$rc" = 0 ]
U=$(( $(usage_sum "$cli" acme samples) - A0 ))
UR=$(( $(usage_sum "$cli" acme requests) - R0 ))
note "usage after kill -9: $U samples in $UR requests; rwsend: $ACKED acked in $ACKREQ"
check "usage after kill -9 holds every acknowledged sample ($U >= $ACKED)" [ "$U" -ge "$ACKED" ]
check "usage after kill -9: requests x 100 = samples ($UR x 100 = $U)" [ $((UR * 100)) = "$U" ]
# A request committed in the instant before the kill may not have had its
# 204 delivered: at most one per sender thread.
check "usage after kill -9 counts at most the 4 requests in flight beyond the acknowledged ($UR - $ACKREQ <= 4)" \
	[ $((UR - ACKREQ)) -le 4 ]
if [ "$U" = "$ACKED" ]; then
	ok "usage after kill -9 = acknowledged samples exactly ($U)"
else
	note "usage counts $((U - ACKED)) samples committed but not acknowledged (in flight at the kill)"
fi

start_relay "$T/relay.conf" || { fail "restart" "relay did not come back"; exit 1; }
j=$(usage_json "$BASE" "$ADMIN_TOKEN" "tenant=acme")
check "after restart the endpoint reports the same samples" \
	[ $(( $(usage_sum "$j" acme samples) - A0 )) = "$U" ]
check "after restart nothing of the outage is counted as delivered" \
	[ "$(usage_sum "$j" acme samples_delivered)" = "$D0" ]
check "after restart relay_buffer_samples = $U" metric_is "$RELAY_PORT" relay_buffer_samples "$U"

start_vm "$T/vm" "$VM_PORT" || { fail "vm restart" "victoria-metrics did not come back"; exit 1; }
SEL='{__name__="us_kill_metric",tenant="acme"}'
if wait_until "$WAIT_CAP" vm_has "$VM_PORT" "$SEL" "$U"; then
	ok "every stored sample arrived ($U, of which $ACKED acknowledged)"
else
	fail "arrival after kill -9" "found $(vm_count_distinct "$VM_PORT" "$SEL") of $U"
fi
n=$(vm_count_distinct "$VM_PORT" "$SEL")
check "victoria-metrics holds exactly what usage counted ($n = $U)" [ "$n" = "$U" ]
check "victoria-metrics holds every acknowledged sample ($n >= $ACKED)" [ "$n" -ge "$ACKED" ]
_delivered_kill() {
	local j
	j=$(usage_json "$BASE" "$ADMIN_TOKEN" "tenant=acme")
	[ "$(usage_sum "$j" acme samples_delivered)" = $((D0 + U)) ]
}
if wait_until "$WAIT_CAP" _delivered_kill; then
	ok "usage samples_delivered caught up (+$U)"
else
	fail "samples_delivered after restart" "$(usage_sum "$(usage_json "$BASE" "$ADMIN_TOKEN" tenant=acme)" acme samples_delivered), want $((D0 + U))"
fi
