#!/usr/bin/env bash
# t_upstream_answers.sh - the relay reads every way an HTTP upstream frames
# its answer, and keeps its connection in step. nginx stands between the
# relay and VictoriaMetrics. It answers 429 with a chunked body: the
# reason reaches the log, and later requests go on the same connection.
# Then 503 with "Connection: close": the reason reaches the log, and each
# request comes on a new connection. Then it closes connections without
# answering (444): counted and logged as no answer. Then it passes the requests on, with
# a keep-alive timeout of 1 s: nginx closes the relay's connection while
# it is idle, and the next send goes on a new one without a failed
# attempt. Every acknowledged sample arrives.
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/../lib.sh"
require_relay

VM_PORT=$(free_port)
NGX_PORT=$(free_port)
RELAY_PORT=$(free_port)
NGX=$T/nginx
CHUNKED='location / { default_type text/plain; sub_filter_types *;
	sub_filter "not-in-the-body" "x"; return 429 "slow down, chunked\n"; }'
CLOSE='location / { keepalive_timeout 0; return 503 "closing after this\n"; }'
start_vm "$T/vm" "$VM_PORT" || { fail setup "victoria-metrics did not start"; exit 1; }
start_nginx "$NGX" "$NGX_PORT" "$CHUNKED" ||
	{ fail setup "nginx did not start"; exit 1; }
write_conf "$T/relay.conf" \
	"upstream.url=http://127.0.0.1:$NGX_PORT/api/v1/write" \
	"upstream.min_backoff=50ms" "upstream.max_backoff=200ms" \
	"upstream.concurrency=8" "log.level=debug" # every retry logged
start_relay "$T/relay.conf" || { fail setup "relay did not become ready"; exit 1; }
URL=http://127.0.0.1:$RELAY_PORT/api/v1/write
total=0

send() {
	send_counted "ua_$1" 10
}

_at_least() {
	[ "$(nginx_requests "$NGX" "$1")" -ge "$2" ]
}

# The most requests one connection carried, of those answered CODE. With
# more requests than forwarder threads (8), some thread sent three or more:
# on one connection unless each answer cost it its connection.
most_on_one() {
	awk -v st="$1" '$1 == st && $4 > m { m = $4 } END { print m + 0 }' "$NGX/access.log"
}

send chunked
check "chunked 429: the relay keeps retrying" \
	wait_until "$WAIT_CAP" _at_least 429 24
check "chunked 429: the body's reason is logged" \
	grep -q 'will retry.*status=429.*reason="slow down, chunked"' "$RELAY_LOG"
most=$(most_on_one 429)
note "most 429 answers on one connection: $most"
check "chunked 429: one connection carried several requests" [ "$most" -ge 3 ]

# answers NAME PROBE_CODE CODE MODE: nginx answers as MODE (its probe
# gets PROBE_CODE, its log says CODE), and the relay gets 5 answers more.
answers() {
	local n0
	nginx_mode "$NGX" "$NGX_PORT" "$2" "$4" ||
		fail "$1: nginx answers $3" "reload did not take"
	n0=$(nginx_requests "$NGX" "$3")
	check "$1: the relay keeps retrying" \
		wait_until "$WAIT_CAP" _at_least "$3" $((n0 + 5))
}

answers close 503 503 "$CLOSE"
check "close: the body's reason is logged" \
	grep -q 'will retry.*status=503.*reason="closing after this"' "$RELAY_LOG"
# The probe of nginx_mode came on a connection of its own too.
check "close: every 503 came on a new connection" [ "$(most_on_one 503)" = 1 ]

# 444: nginx closes the connection without a word.
answers "no answer" 000 444 'location / { return 444; }'
check "no answer: counted as no answer" \
	metric_ge "$RELAY_PORT" relay_upstream_requests_total 1 'code="error"'
check "no answer: logged as such" \
	grep -q 'will retry.*status=0.*reason="the upstream closed the connection before answering"' "$RELAY_LOG"
check "nothing set aside" metric_is "$RELAY_PORT" relay_batches_set_aside_total 0

nginx_mode "$NGX" "$NGX_PORT" 400 "keepalive_timeout 1s; $(nginx_proxy_mode "$VM_PORT")" ||
	fail "proxy: nginx passes requests on" "reload did not take"
check "proxy: the $total samples so far arrive" \
	wait_until "$WAIT_CAP" vm_is "$VM_PORT" '{__name__=~"ua_.*"}' "$total"
# Requests that got no answer (0 when there was none).
no_answer() {
	metric "$RELAY_PORT" relay_upstream_requests_total 'code="error"' || echo 0
}
errors0=$(no_answer)
sleep 2   # nginx closes the relay's idle connections after 1 s
send idle
check "after an idle connection was closed: all $total samples arrive" \
	wait_until "$WAIT_CAP" vm_is "$VM_PORT" '{__name__=~"ua_.*"}' "$total"
check "and no request failed on the closed connection" \
	[ "$(no_answer)" = "$errors0" ]
check "acknowledged: 1000 samples" [ "$total" = 1000 ]
check "the relay stops cleanly" stop_relay
