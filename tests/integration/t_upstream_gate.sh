#!/usr/bin/env bash
# t_upstream_gate.sh - while the upstream is down, the relay sends it one
# request at a time (the probe) for all its tenants, and on the first
# success every tenant resumes; one tenant's wrong URL never holds the
# others back. nginx stands in front of VictoriaMetrics: it passes
# /api/<tenant>/write on, answers 404 to tenant "bad" (its URL is wrong),
# then 503 to everyone (the outage), then passes everything on again. Its
# access log counts the requests the upstream got during the outage. Then
# nginx hands the requests to a listener that never answers (a hung
# upstream, 504 after 1 s): the listener's connections show no two
# requests in flight at once after the first failure.
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/../lib.sh"
require_relay

VM_PORT=$(free_port)
NGX_PORT=$(free_port)
RELAY_PORT=$(free_port)
NGX=$T/nginx
CONC=4
TENANTS="t1 t2 t3 t4 bad"
# nginx_mode checks a mode with a POST to /-/probe: 204 unless all is 503.
PROXY="location = /-/probe { return 204; } location / { rewrite ^ /api/v1/write break; proxy_pass http://127.0.0.1:$VM_PORT; proxy_http_version 1.1; proxy_set_header Connection \"\"; }"
BAD404='location /api/bad/ { return 404; }'
start_vm "$T/vm" "$VM_PORT" || { fail setup "victoria-metrics did not start"; exit 1; }
start_nginx "$NGX" "$NGX_PORT" "$BAD404 $PROXY" ||
	{ fail setup "nginx did not start"; exit 1; }
args=()
for t in $TENANTS; do
	args+=("tenant $t.token=tok-$t")
done
write_conf "$T/relay.conf" \
	"upstream.url=http://127.0.0.1:$NGX_PORT/api/{tenant}/write" \
	"upstream.concurrency=$CONC" "upstream.max_request_size=64KiB" "${args[@]}"
start_relay "$T/relay.conf" || { fail setup "relay did not become ready"; exit 1; }
URL=http://127.0.0.1:$RELAY_PORT/api/v1/write
declare -A want

# send TENANT PREFIX: 20 requests of 50 series x 2 samples; adds what was
# acknowledged to want[TENANT/PREFIX].
send() {
	local out
	out=$(rwsend "$URL" --token "tok-$1" --series 50 --samples-per-series 2 \
		--requests 20 --name-prefix "$2" --concurrency 2)
	note "$1 $2: $out"
	want[$1/$2]=$(field "$out" samples_acked)
	check "$1 $2: every sample acknowledged" [ "${want[$1/$2]}" = 2000 ]
}

# arrived TENANT PREFIX: all of want[TENANT/PREFIX] is in VictoriaMetrics.
arrived() {
	vm_has "$VM_PORT" "{__name__=\"$2_metric\",tenant=\"$1\"}" "${want[$1/$2]}"
}

# _one_at_a_time "CONNECTIONS PEAK": at least 3 connections, never 2 at once.
_one_at_a_time() {
	[ "${1#* }" = 1 ] && [ "${1% *}" -ge 3 ]
}

_requests_ge() {
	[ "$(nginx_requests "$NGX" "$1")" -ge "$2" ]
}

# --- one tenant's URL is wrong: the others are not held back -------------
for t in $TENANTS; do
	send "$t" "ga"
done
check "404 for one tenant: the relay keeps retrying it" \
	wait_until "$WAIT_CAP" _requests_ge 404 5
for t in t1 t2 t3 t4; do
	check "404 for one tenant: $t's data arrives" \
		wait_until "$WAIT_CAP" arrived "$t" ga
done
check "404 for one tenant: relay_upstream_up stays 1" \
	metric_is "$RELAY_PORT" relay_upstream_up 1
check "404 for one tenant: no outage counted" \
	metric_is "$RELAY_PORT" relay_upstream_outages_total 0

# --- the outage: one request at a time ------------------------------------
nginx_mode "$NGX" "$NGX_PORT" 503 "$BAD404 location / { return 503; }" ||
	fail "outage: nginx answers 503" "reload did not take"
n0=$(nginx_requests "$NGX" 503)
p0=$(metric "$RELAY_PORT" relay_upstream_probes_total)
p0=${p0:-0}
for t in t1 t2 t3 t4; do
	send "$t" "gb"
done
check "outage: relay_upstream_up goes to 0" \
	wait_until "$WAIT_CAP" metric_is "$RELAY_PORT" relay_upstream_up 0
check "outage: counted in relay_upstream_outages_total" \
	metric_ge "$RELAY_PORT" relay_upstream_outages_total 1
check "outage: logged as down with its status" \
	grep -q "upstream down.*status=503" "$RELAY_LOG"
# Several probe delays (max_backoff is 1s here) go by with 5 tenants' data
# waiting.
check "outage: the relay keeps probing" \
	wait_until "$WAIT_CAP" metric_ge "$RELAY_PORT" relay_upstream_probes_total $((p0 + 6))
p1=$(metric "$RELAY_PORT" relay_upstream_probes_total)
outages=$(metric "$RELAY_PORT" relay_upstream_outages_total)
n1=$(nginx_requests "$NGX" 503)
# The 503s the upstream answered meanwhile: the probes, one at a time, plus
# at most the requests already in flight each time it went down (one a
# forwarder thread) and one probe let through before p0 was read. (nginx's
# old worker may still pass a request or two on after the reload, so that
# the relay sees a success and goes down a second time.)
got=$((n1 - n0))
limit=$((p1 - p0 + outages * CONC + 1))
note "outage: $got requests answered 503, $((p1 - p0)) probes, $outages outages"
check "outage: the upstream got $got requests, at most the $((p1 - p0)) probes + $((limit - p1 + p0))" \
	[ "$got" -le "$limit" ]
check "outage: /-/healthy answers 200" \
	[ "$(http_code "http://127.0.0.1:$RELAY_PORT/-/healthy")" = 200 ]

# --- the upstream is back: everyone resumes, nothing lost ----------------
nginx_mode "$NGX" "$NGX_PORT" 204 "$BAD404 $PROXY" ||
	fail "back: nginx passes requests on" "reload did not take"
check "back: relay_upstream_up returns to 1" \
	wait_until "$WAIT_CAP" metric_is "$RELAY_PORT" relay_upstream_up 1
check "back: logged as back up" \
	grep -q "upstream back up.*down_for_s=" "$RELAY_LOG"
for t in t1 t2 t3 t4; do
	for p in ga gb; do
		check "back: all of $t's $p samples arrived" \
			wait_until "$WAIT_CAP" arrived "$t" "$p"
	done
done
# --- a hung upstream: one request in flight at a time ---------------------
# nginx passes requests to a listener that never answers and gives up after
# 1 s (504): each request is in flight for a second. The listener writes
# "OPENED CLOSED PATH" (monotonic seconds) per connection; after the first
# connection closes (the first 504: the gate goes down), no two of the
# connections opened later may overlap.
if command -v python3 >/dev/null; then
	HUNG_PORT=$(free_port)
	python3 -c '
import socket, sys, threading, time
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1])))
s.listen(64)
lock = threading.Lock()
def hold(c):
    opened, head = time.monotonic(), b""
    try:
        while True:
            d = c.recv(65536)
            if not d:
                break
            if len(head) < 256:
                head += d
    except OSError:
        pass
    closed = time.monotonic()
    path = (head.split(b" ") + [b"", b""])[1].decode("latin-1") or "-"
    with lock, open(sys.argv[2], "a") as f:
        f.write("%.6f %.6f %s\n" % (opened, closed, path))
while True:
    c, _ = s.accept()
    threading.Thread(target=hold, args=(c,), daemon=True).start()
' "$HUNG_PORT" "$T/hung.txt" &
	PIDS+=("$!")
	wait_until "$WAIT_CAP" _port_listening "$HUNG_PORT" ||
		fail "hung: listener starts" "not listening"
	: >"$T/hung.txt"
	nginx_mode "$NGX" "$NGX_PORT" 504 "$BAD404 location = /-/probe { return 504; } location / { proxy_pass http://127.0.0.1:$HUNG_PORT; proxy_read_timeout 1s; }" ||
		fail "hung: nginx passes requests to the silent listener" "reload did not take"
	o0=$(metric "$RELAY_PORT" relay_upstream_outages_total)
	p0=$(metric "$RELAY_PORT" relay_upstream_probes_total)
	for t in t1 t2 t3 t4; do
		send "$t" "gc"
	done
	check "hung: the relay goes down and probes" \
		wait_until "$WAIT_CAP" metric_ge "$RELAY_PORT" relay_upstream_probes_total $((p0 + 8))
	nginx_mode "$NGX" "$NGX_PORT" 204 "$BAD404 $PROXY" ||
		fail "hung: back: nginx passes requests on" "reload did not take"
	check "hung: relay_upstream_up returns to 1" \
		wait_until "$WAIT_CAP" metric_is "$RELAY_PORT" relay_upstream_up 1
	check "hung: one outage more" \
		metric_is "$RELAY_PORT" relay_upstream_outages_total $((o0 + 1))
	# At most one connection open at a time after the first 504.
	over=$(python3 -c '
import sys
rows = [l.split() for l in open(sys.argv[1])]
rows = [(float(a), float(b)) for a, b, p in rows if p.startswith("/api/")]
first = min(b for a, b in rows)
later = sorted(r for r in rows if r[0] > first)
ev = sorted([(a, 1) for a, b in later] + [(b, -1) for a, b in later])
n = peak = 0
for t, d in ev:
    n += d
    peak = max(peak, n)
print(len(later), peak)
' "$T/hung.txt")
	note "hung: connections after the first 504, most open at once: $over"
	check "hung: after the first 504, one request at a time reached the upstream ($over)" \
		_one_at_a_time "$over"
	for t in t1 t2 t3 t4; do
		check "hung: back: all of $t's gc samples arrived" \
			wait_until "$WAIT_CAP" arrived "$t" gc
	done
else
	skip "hung upstream" "no python3 to run a listener that never answers"
fi

# The tenant with the wrong URL kept its data all along; fixed, it goes.
nginx_mode "$NGX" "$NGX_PORT" 204 "$PROXY" ||
	fail "bad fixed: nginx passes its requests on" "reload did not take"
check "bad fixed: all of its samples arrived" \
	wait_until "$WAIT_CAP" arrived bad ga
check "the buffer empties" \
	wait_until "$WAIT_CAP" metric_is "$RELAY_PORT" relay_buffer_samples 0
check "nothing set aside" metric_is "$RELAY_PORT" relay_batches_set_aside_total 0
