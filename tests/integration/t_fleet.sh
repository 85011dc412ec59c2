#!/usr/bin/env bash
# t_fleet.sh - a fleet of three relays behind nginx running
# ops/nginx-relay.conf (its relay addresses, listen port and log paths
# changed for this test's ports), one VictoriaMetrics behind them:
#  1. 8 senders (tests/tools/fleetsend.py) for 6 tenants, each with its
#     token (as a bearer token; foxtrot's as the password of Basic auth,
#     which nginx routes on the user), write through nginx and retry as
#     Prometheus does (5xx, 429, connection errors, with backoff; never a
#     4xx);
#  2. while all relays are up, each tenant's requests reached one relay
#     (the relays' relay_tenant_requests_total), and nginx passed no write
#     on to a second relay (its access log);
#  3. the relay holding the most tenants is stopped (SIGSTOP) until writes
#     nginx sent to it wait unread in its sockets, then killed with kill -9;
#     nginx passes those writes, and its tenants' next ones, on to the next
#     relay of the ring, so no sender sees an error or has to retry (this
#     needs non_idempotent: nginx would answer 502 to a POST it had sent);
#     the relay is started again later, and its tenants come back to it;
#  4. every acknowledged sample is in VictoriaMetrics, under its tenant;
#  5. the usage of the fleet (relay usage of each relay's data directory,
#     summed) equals what was acknowledged per tenant, plus at most the
#     requests a fail-over sent twice: those in flight on the killed relay,
#     at most one per sender of a tenant that relay held (a tenant on
#     another relay: exactly what was acknowledged);
#  6. the same with the usage series the relays export into VictoriaMetrics
#     (relay_usage_<column>_total{tenant,relay}, summed over relays).
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/../lib.sh"
require_relay
command -v nginx >/dev/null || { fail setup "nginx is not installed (ops/install-deps.sh)"; exit 1; }
command -v python3 >/dev/null || { fail setup "python3 is not installed"; exit 1; }
FLEETSEND=$REPO/tests/tools/fleetsend.py

VM_PORT=$(free_port)
start_vm "$T/vm" "$VM_PORT" || { fail setup "victoria-metrics did not start"; exit 1; }

ADMIN=adm-fleet-5c2a
TENANTS=(acme bravo cargo delta echo foxtrot)
SENDERS=8
SERIES=20
SAMPLES=5
PER_REQ=$((SERIES * SAMPLES))
tenant_args=()
tenant_send=()
for t in "${TENANTS[@]}"; do
	tenant_args+=("tenant $t.token=tok-$t-91")
	if [ "$t" = foxtrot ]; then
		tenant_send+=(--tenant-basic "$t:tok-$t-91")
	else
		tenant_send+=(--tenant "$t:tok-$t-91")
	fi
done

# --- three relays -----------------------------------------------------------
R_PID=()
R_PORT=()
R_CONF=()
for i in 1 2 3; do
	RELAY_PORT=$(free_port)
	usage_args=("usage.export=true" "usage.export_interval=1s" \
		"usage.instance=r$i")
	R_CONF[i]=$T/relay-$i.conf
	write_conf "${R_CONF[i]}" "storage.path=$T/data-$i" \
		"server.admin_token=$ADMIN" "${tenant_args[@]}" "${usage_args[@]}"
	RELAY_LOG=$T/relay-$i.log
	start_relay "${R_CONF[i]}" || { fail setup "relay $i did not become ready"; exit 1; }
	R_PID[i]=$RELAY_PID
	R_PORT[i]=$RELAY_PORT
done

# --- nginx with ops/nginx-relay.conf ------------------------------------------
NGX_PORT=$(free_port)
NGX=$T/nginx
mkdir -p "$NGX"
sed -e "s/10\.0\.0\.11:9201/127.0.0.1:${R_PORT[1]}/" \
	-e "s/10\.0\.0\.12:9201/127.0.0.1:${R_PORT[2]}/" \
	-e "s/10\.0\.0\.13:9201/127.0.0.1:${R_PORT[3]}/" \
	-e "s/^\( *listen\) 9201;/\1 127.0.0.1:$NGX_PORT;/" \
	-e "s|/var/log/nginx/relay-access.log|$NGX/access.log|" \
	-e "s|/var/log/nginx/relay-error.log|$NGX/error.log|" \
	"$REPO/ops/nginx-relay.conf" >"$NGX/relay.conf"
n=$(grep -cE "127\.0\.0\.1:(${R_PORT[1]}|${R_PORT[2]}|${R_PORT[3]}|$NGX_PORT)[ ;]|$NGX/(access|error)\.log" "$NGX/relay.conf")
if [ "$n" != 6 ] || grep -v '^ *#' "$NGX/relay.conf" | grep -q '/var/log\|10\.0\.0\.'; then
	fail setup "ops/nginx-relay.conf no longer has the lines this test changes ($n of 6 changed)"
	exit 1
fi
start_nginx_conf "$NGX" "$NGX_PORT" "$NGX/relay.conf" || { fail setup "nginx did not start"; exit 1; }
ok "nginx runs ops/nginx-relay.conf in front of relays on ${R_PORT[*]}"

# --- helpers ------------------------------------------------------------------
ACKED=$T/acked
STOP=$T/stop
acked() { awk '$1 == "ack" { n++ } END { print n + 0 }' "$ACKED" 2>/dev/null || echo 0; }
acked_ge() { [ "$(acked)" -ge "$1" ]; }
# tenant_reqs I TENANT: write requests relay I made durable for TENANT since
# it started (0 when none).
tenant_reqs() {
	metric "${R_PORT[$1]}" relay_tenant_requests_total "tenant=\"$2\"" || echo 0
}
victim_back() { [ "$(metric "${R_PORT[V]}" relay_tenant_requests_total || echo 0)" -gt 0 ]; }
senders_done() { ! kill -0 "$SEND_PID" 2>/dev/null; }
# writes_waiting PORT: true when a connection to PORT holds bytes the
# listener has not read (/proc/net/tcp: local port, state 01 established,
# rx_queue > 0): a write nginx sent to a stopped relay.
writes_waiting() {
	awk -v port="$(printf '%04X' "$1")" '
		NR > 1 && substr($2, index($2, ":") + 1) == port && $4 == "01" {
			split($5, q, ":")
			if (q[2] !~ /^0+$/) n++
		}
		END { exit !(n > 0) }' /proc/net/tcp
}
relays_drained() {
	local i
	for i in 1 2 3; do
		metric_is "${R_PORT[i]}" relay_buffer_entries 0 || return 1
	done
}

# --- 1. the senders -----------------------------------------------------------
python3 "$FLEETSEND" send "http://127.0.0.1:$NGX_PORT/api/v1/write" \
	"${tenant_send[@]}" --senders "$SENDERS" --series "$SERIES" \
	--samples "$SAMPLES" --acked "$ACKED" --stop-file "$STOP" \
	>"$T/send.out" 2>"$T/send.err" &
SEND_PID=$!
PIDS+=("$SEND_PID")

# --- 2. all relays up: one relay per tenant -----------------------------------
if ! wait_until "$WAIT_CAP" acked_ge 240; then
	fail "senders" "only $(acked) requests acknowledged through nginx"
	_dump_log "$T/send.err" 10
	_dump_log "$NGX/error.log" 10
	exit 1
fi
declare -A HOME_OF=()
declare -a HELD=(0 0 0 0)
spread=1
for t in "${TENANTS[@]}"; do
	on=()
	for i in 1 2 3; do
		[ "$(tenant_reqs "$i" "$t")" -gt 0 ] && on+=("$i")
	done
	note "tenant $t: requests on relay(s) ${on[*]:-none}"
	if [ "${#on[@]}" -ne 1 ]; then
		spread=0
		continue
	fi
	HOME_OF[$t]=${on[0]}
	HELD[on[0]]=$((HELD[on[0]] + 1))
done
check "all relays up: each tenant's requests reached one relay" [ "$spread" = 1 ]
nf=$(grep -c 'up="[^"]*,' "$NGX/access.log")
check "all relays up: nginx passed no write on to a second relay ($nf)" [ "$nf" = 0 ]
note "tenants per relay: 1=${HELD[1]} 2=${HELD[2]} 3=${HELD[3]}"

# --- 3. kill -9 of the relay holding the most tenants, later a restart --------
V=1
for i in 2 3; do
	[ "${HELD[i]}" -gt "${HELD[V]}" ] && V=$i
done
# Stopped first, so that writes nginx has already sent to it are in its
# sockets when it dies, as they are when a busy relay crashes.
kill -STOP "${R_PID[V]}"
if wait_until "$WAIT_CAP" writes_waiting "${R_PORT[V]}"; then
	ok "relay $V stopped with writes nginx sent to it unanswered"
else
	fail "writes in flight on relay $V" "none seen in /proc/net/tcp"
fi
A0=$(acked)
RELAY_PID=${R_PID[V]}
kill9_relay
note "relay $V (port ${R_PORT[V]}) killed with kill -9 after $A0 acknowledged requests"
if wait_until "$WAIT_CAP" acked_ge $((A0 + 400)); then
	ok "writes go on while relay $V is down ($(($(acked) - A0)) acknowledged)"
else
	fail "writes while relay $V is down" "$(($(acked) - A0)) acknowledged"
fi
nf=$(grep -c 'up="[^"]*,' "$NGX/access.log")
check "nginx failed writes over to the next relay ($nf)" [ "$nf" -ge 1 ]
nc=$(grep -c 'while reading response header from upstream' "$NGX/error.log")
check "among them writes relay $V had received when it was killed ($nc)" [ "$nc" -ge 1 ]

RELAY_PORT=${R_PORT[V]}
RELAY_LOG=$T/relay-$V.log
start_relay "${R_CONF[V]}" || { fail restart "relay $V did not become ready again"; exit 1; }
R_PID[V]=$RELAY_PID
# nginx tries it again after fail_timeout (10s in ops/nginx-relay.conf).
if wait_until "$WAIT_CAP" victim_back; then
	ok "after its restart relay $V takes its tenants' writes again"
else
	fail "relay $V back in the ring" "no write reached it after its restart"
fi
A1=$(acked)
wait_until "$WAIT_CAP" acked_ge $((A1 + 100))
touch "$STOP"
if ! wait_until "$WAIT_CAP" senders_done; then
	fail "senders" "did not stop"
	exit 1
fi
wait "$SEND_PID"
_forget_pid "$SEND_PID"
sed 's/^/# /' "$T/send.out"

declare -A ACK_SAMPLES=() ACK_REQS=() SENDERS_OF=()
bad_send=0
for t in "${TENANTS[@]}"; do
	line=$(grep "^tenant=$t " "$T/send.out")
	ACK_SAMPLES[$t]=$(field "$line" acked_samples)
	ACK_REQS[$t]=$(field "$line" acked_requests)
	SENDERS_OF[$t]=$(field "$line" senders)
	[ "$(field "$line" dropped)" = 0 ] && [ "$(field "$line" unacked)" = 0 ] ||
		bad_send=1
done
check "every write was acknowledged in the end: none dropped (4xx), none given up" \
	[ "$bad_send" = 0 ]
n=$(awk '{ for (i = 1; i <= NF; i++) if ($i ~ /^retries=/) { sub(/.*=/, "", $i); n += $i } } END { print n + 0 }' "$T/send.out")
check "no sender saw an error or had to retry: nginx failed every write over ($n retries)" \
	[ "$n" = 0 ]
note "nginx: $(grep -c 'up="[^"]*,' "$NGX/access.log") writes failed over," \
	"$(grep -c '" 50[234] ' "$NGX/access.log") answered 502/503/504 to a sender"

# --- 4. every acknowledged sample is in VictoriaMetrics ----------------------
if wait_until "$WAIT_CAP" relays_drained; then
	ok "every relay delivered its buffer"
else
	fail "buffers drained" "relay_buffer_entries: $(for i in 1 2 3; do metric "${R_PORT[i]}" relay_buffer_entries; done | tr '\n' ' ')"
fi
vm_export "$VM_PORT" '{__name__="fleet_metric"}' |
	python3 "$FLEETSEND" verify "$ACKED" >"$T/verify.out"
sed 's/^/# /' "$T/verify.out"
for t in "${TENANTS[@]}"; do
	line=$(grep "^tenant=$t " "$T/verify.out")
	a=$(field "$line" acked)
	checkx "$t: all $a acknowledged samples in victoria-metrics, under tenant $t" \
		"[ '$a' = '${ACK_SAMPLES[$t]}' ] && [ '$(field "$line" missing)' = 0 ] && [ '$(field "$line" wrong_tenant)' = 0 ]"
	checkx "$t: nothing in victoria-metrics that was not acknowledged" \
		"[ '$(field "$line" extra)' = 0 ]"
done

# --- 5. usage of the fleet = acknowledged, within the fail-over bound ---------
# bound TENANT: the samples a fail-over may have stored twice: one request
# per sender of a tenant the killed relay held, none for the others.
bound() {
	if [ "${HOME_OF[$1]:-}" = "$V" ]; then
		echo $((SENDERS_OF[$1] * PER_REQ))
	else
		echo 0
	fi
}
for i in 1 2 3; do
	"$RELAY_BIN" usage -c "${R_CONF[i]}" >"$T/usage-$i.json" ||
		fail "relay usage of relay $i" "exit status $?"
done
declare -A FLEET_SAMPLES=() FLEET_REQS=()
for t in "${TENANTS[@]}"; do
	s=0 r=0
	for i in 1 2 3; do
		s=$((s + $(usage_sum "$(cat "$T/usage-$i.json")" "$t" samples)))
		r=$((r + $(usage_sum "$(cat "$T/usage-$i.json")" "$t" requests)))
	done
	FLEET_SAMPLES[$t]=$s
	FLEET_REQS[$t]=$r
	b=$(bound "$t")
	d=$((s - ACK_SAMPLES[$t]))
	checkx "$t: relay usage of the fleet bills $s samples for ${ACK_SAMPLES[$t]} acknowledged (+$d, bound $b)" \
		"[ $d -ge 0 ] && [ $d -le $b ]"
	checkx "$t: relay usage of the fleet bills $r requests for ${ACK_REQS[$t]} acknowledged (bound +$((b / PER_REQ)))" \
		"[ $((r - ACK_REQS[$t])) -ge 0 ] && [ $((r - ACK_REQS[$t])) -le $((b / PER_REQ)) ]"
done

# --- 6. the usage series in VictoriaMetrics -----------------------------------
# vm_usage COLUMN TENANT: relay_usage_COLUMN_total of TENANT summed over the
# relays (the last value of each relay's series).
vm_usage() {
	vm_flush "$VM_PORT"
	curl -s --max-time 30 -G --data-urlencode \
		"query=sum(last_over_time(relay_usage_$1_total{tenant=\"$2\"}[1d]))" \
		"http://127.0.0.1:$VM_PORT/api/v1/query" |
		jq -r '.data.result[0].value[1] // "0"'
}
vm_usage_is() {
	[ "$(vm_usage samples "$1")" = "${FLEET_SAMPLES[$1]}" ] &&
		[ "$(vm_usage requests "$1")" = "${FLEET_REQS[$1]}" ]
}
usage_series() {
	vm_flush "$VM_PORT"
	curl -s --max-time 30 -G --data-urlencode 'match[]={__name__=~"relay_usage_.*"}' \
		"http://127.0.0.1:$VM_PORT/api/v1/series" | jq '.data | length'
}
usage_series_there() { [ "$(usage_series)" -gt 0 ]; }
wait_until "$WAIT_CAP" usage_series_there
checkx "victoria-metrics holds the relays' relay_usage_ series" usage_series_there
if usage_series_there; then
	for t in "${TENANTS[@]}"; do
		wait_until "$WAIT_CAP" vm_usage_is "$t"
		s=$(vm_usage samples "$t")
		r=$(vm_usage requests "$t")
		b=$(bound "$t")
		d=$((${s%.*} - ACK_SAMPLES[$t]))
		[ "$s" = "${FLEET_SAMPLES[$t]}" ] || curl -s -G --data-urlencode "query=last_over_time(relay_usage_samples_total{tenant=\"$t\"}[1d])" "http://127.0.0.1:$VM_PORT/api/v1/query" | jq -c '.data.result[] | [.metric.relay, .value[1]]' | sed 's/^/# per relay: /'
		checkx "$t: usage series in victoria-metrics bill $s samples, as relay usage does (${FLEET_SAMPLES[$t]}), and $r requests (${FLEET_REQS[$t]})" \
			"[ '$s' = '${FLEET_SAMPLES[$t]}' ] && [ '$r' = '${FLEET_REQS[$t]}' ]"
		checkx "$t: usage series bill ${ACK_SAMPLES[$t]} acknowledged samples +$d (bound $b)" \
			"[ $d -ge 0 ] && [ $d -le $b ]"
	done
fi
