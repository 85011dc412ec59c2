#!/usr/bin/env bash
# t_upstream_errors.sh - a wrong upstream URL or credential never costs
# acknowledged data. nginx stands between the relay and VictoriaMetrics and
# answers 404, then 301, then 401 (each a reload of its config), then
# passes the requests on. Meanwhile the relay keeps every batch (none is
# set aside, even with the smallest setaside_max_size), counts the answers
# in relay_upstream_misconfigured_total{code}, logs the status, reason and
# Location, and once nginx proxies everything arrives.
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/../lib.sh"
require_relay

VM_PORT=$(free_port)
NGX_PORT=$(free_port)
RELAY_PORT=$(free_port)
NGX=$T/nginx
start_vm "$T/vm" "$VM_PORT" || { fail setup "victoria-metrics did not start"; exit 1; }
start_nginx "$NGX" "$NGX_PORT" 'location / { return 404; }' ||
	{ fail setup "nginx did not start"; exit 1; }
write_conf "$T/relay.conf" \
	"upstream.url=http://127.0.0.1:$NGX_PORT/api/v1/write" \
	"upstream.min_backoff=50ms" "upstream.max_backoff=300ms" \
	"storage.setaside_max_size=1MiB"
start_relay "$T/relay.conf" || { fail setup "relay did not become ready"; exit 1; }
URL=http://127.0.0.1:$RELAY_PORT/api/v1/write
MATCH='{__name__=~"ue_.*"}'
total=0

# send PHASE: 20 requests of 10 series x 5 samples, all must be acknowledged.
send() {
	send_counted "ue_$1" 20
}

# phase CODE MODE: nginx answers CODE; new data comes in; the relay is
# seen getting CODE several times and counts it; nothing is set aside.
phase() {
	local code=$1 mode=$2 n0
	if ! nginx_mode "$NGX" "$NGX_PORT" "$code" "$mode"; then
		fail "$code: nginx answers $code" "reload did not take"
		return
	fi
	send "$code"
	n0=$(nginx_requests "$NGX" "$code")
	check "$code: the relay keeps retrying" \
		wait_until "$WAIT_CAP" _more_than "$NGX" "$code" $((n0 + 5))
	check "$code: counted in relay_upstream_misconfigured_total" \
		wait_until "$WAIT_CAP" metric_ge "$RELAY_PORT" \
		relay_upstream_misconfigured_total 1 "code=\"$code\""
	check "$code: nothing set aside" \
		metric_is "$RELAY_PORT" relay_batches_set_aside_total 0
	check "$code: logged with its status" \
		grep -q "upstream refuses the relay's requests.*status=$code" "$RELAY_LOG"
}

_more_than() {
	[ "$(nginx_requests "$1" "$2")" -ge "$3" ]
}

phase 404 'location / { return 404; }'
phase 301 "location / { return 301 http://127.0.0.1:$NGX_PORT/moved/api/v1/write; }"
check "301: the log names the Location" \
	grep -q "status=301 .*location=\"\?http://127.0.0.1:$NGX_PORT/moved/api/v1/write" "$RELAY_LOG"
phase 401 'location / { add_header WWW-Authenticate "Basic realm=vm" always; return 401; }'

# Fixed: nginx passes the requests to VictoriaMetrics.
nginx_mode "$NGX" "$NGX_PORT" 400 "$(nginx_proxy_mode "$VM_PORT")" ||
	fail "proxy: nginx passes requests on" "reload did not take"
send fixed
note "acknowledged samples: $total"
[ "$total" -eq 4000 ] || fail "all 4000 samples acknowledged" "total=$total"
check "everything acknowledged arrives ($total samples)" \
	wait_until "$WAIT_CAP" vm_is "$VM_PORT" "$MATCH" "$total"
check "the buffer is empty" \
	wait_until "$WAIT_CAP" metric_is "$RELAY_PORT" relay_buffer_entries 0
check "nothing set aside at the end" \
	metric_is "$RELAY_PORT" relay_batches_set_aside_total 0
check "nothing dropped" \
	metric_is "$RELAY_PORT" relay_samples_dropped_total 0
check "the relay stops cleanly" stop_relay
