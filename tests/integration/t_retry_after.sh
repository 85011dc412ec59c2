#!/usr/bin/env bash
# t_retry_after.sh - "Retry-After: 0" never makes a hot loop. nginx answers
# every request with 503 and Retry-After: 0 while one tenant's data waits;
# the requests nginx logs over a stretch of time are bounded by what
# [upstream] min_backoff allows (one request in flight per tenant, each at
# least min_backoff after the last one ended). Then nginx passes requests
# on to VictoriaMetrics and everything arrives.
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/../lib.sh"
require_relay

MIN_BACKOFF_MS=200
VM_PORT=$(free_port)
NGX_PORT=$(free_port)
RELAY_PORT=$(free_port)
NGX=$T/nginx
start_vm "$T/vm" "$VM_PORT" || { fail setup "victoria-metrics did not start"; exit 1; }
start_nginx "$NGX" "$NGX_PORT" \
	'location / { add_header Retry-After 0 always; return 503; }' ||
	{ fail setup "nginx did not start"; exit 1; }
write_conf "$T/relay.conf" \
	"upstream.url=http://127.0.0.1:$NGX_PORT/api/v1/write" \
	"upstream.min_backoff=${MIN_BACKOFF_MS}ms" "upstream.max_backoff=1s" \
	"upstream.inflight_per_tenant=1"
start_relay "$T/relay.conf" || { fail setup "relay did not become ready"; exit 1; }
URL=http://127.0.0.1:$RELAY_PORT/api/v1/write

_have_503() {
	[ "$(nginx_requests "$NGX" 503)" -ge 2 ]
}

out=$(rwsend "$URL" --series 10 --samples-per-series 5 --requests 20 --name-prefix ra_) ||
	fail "every request acknowledged" "$out"
acked=$(field "$out" samples_acked)
check "nginx answers 503 to the relay" \
	wait_until "$WAIT_CAP" _have_503

# Over a stretch of a few seconds: at most one request per min_backoff
# (plus one at the start of the stretch and a margin of two).
t0=$(date +%s%3N)
n0=$(nginx_requests "$NGX" 503)
sleep 5
n1=$(nginx_requests "$NGX" 503)
t1=$(date +%s%3N)
made=$((n1 - n0))
bound=$(((t1 - t0) / MIN_BACKOFF_MS + 3))
note "requests in $((t1 - t0)) ms: $made (bound $bound)"
if [ "$made" -le "$bound" ]; then
	ok "Retry-After: 0 is held to min_backoff ($made requests, at most $bound)"
else
	fail "Retry-After: 0 is held to min_backoff" "$made requests in $((t1 - t0)) ms, bound $bound"
fi
check "the relay kept retrying" [ "$made" -ge 1 ]
check "nothing set aside" metric_is "$RELAY_PORT" relay_batches_set_aside_total 0

nginx_mode "$NGX" "$NGX_PORT" 400 "$(nginx_proxy_mode "$VM_PORT")" ||
	fail "proxy: nginx passes requests on" "reload did not take"
check "all $acked acknowledged samples arrive" \
	wait_until "$WAIT_CAP" vm_is "$VM_PORT" '{__name__=~"ra_.*"}' "$acked"
check "acknowledged: 1000 samples" [ "$acked" = 1000 ]
check "the relay stops cleanly" stop_relay
