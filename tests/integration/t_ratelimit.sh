#!/usr/bin/env bash
# t_ratelimit.sh - per-tenant limits. Tenant x may send 1000 samples/s:
# sending 500-sample requests as fast as it can, some get 429 with
# Retry-After, and what it was acknowledged and refused shows in the
# counters and in its usage; meanwhile unlimited tenant y gets 204 for
# every request. A tenant with limit_status = 503 gets 503 instead. The
# bucket is one second deep and a request passes while it is positive. A
# tenant over max_buffer_bytes (its upstream unreachable) is refused while
# the others are not.
. "$(dirname "$0")/../lib.sh"
require_relay

VM_PORT=$(free_port)
RELAY_PORT=$(free_port)
DEAD_PORT=$(free_port)  # nothing listens here: tenant q's upstream
start_vm "$T/vm" "$VM_PORT" || { fail setup "victoria-metrics did not start"; exit 1; }

ADMIN=admin-rl-token
write_conf "$T/relay.conf" \
	"upstream.url=http://127.0.0.1:{account_id}/api/v1/write" \
	"server.admin_token=$ADMIN" \
	"tenant x.token=x-token" \
	"tenant x.account_id=$VM_PORT" \
	"tenant x.max_samples_per_second=1000" \
	"tenant y.token=y-token" \
	"tenant y.account_id=$VM_PORT" \
	"tenant z.token=z-token" \
	"tenant z.account_id=$VM_PORT" \
	"tenant z.max_samples_per_second=1000" \
	"tenant z.limit_status=503" \
	"tenant w.token=w-token" \
	"tenant w.account_id=$VM_PORT" \
	"tenant w.max_samples_per_second=1000" \
	"tenant q.token=q-token" \
	"tenant q.account_id=$DEAD_PORT" \
	"tenant q.max_buffer_bytes=20000" \
	"tenant q.limit_status=429"
start_relay "$T/relay.conf" || { fail setup "relay did not become ready"; exit 1; }
BASE=http://127.0.0.1:$RELAY_PORT
URL=$BASE/api/v1/write

# retry_after FILE: the Retry-After value of saved response headers.
retry_after() {
	tr -d '\r' <"$1" | sed -n 's/^[Rr]etry-[Aa]fter:[[:space:]]*//p' | head -n 1
}

# --- x over its rate while y sends freely --------------------------------
rwsend "$URL" --token y-token --series 500 --samples-per-series 1 \
	--requests 40 --concurrency 2 --name-prefix rl_y >"$T/y.out" 2>"$T/y.err" &
Y_PID=$!
PIDS+=("$Y_PID")
sx=$(rwsend "$URL" --token x-token --series 500 --samples-per-series 1 \
	--requests 40 --concurrency 4 --name-prefix rl_x --quiet)
wait "$Y_PID"
y_rc=$?
_forget_pid "$Y_PID"
sy=$(cat "$T/y.out")
note "x: $sx"
note "y: $sy"
X2=$(field "$sx" status_2xx)
X4=$(field "$sx" status_4xx)
check "x: some requests refused with 4xx (got $X4 of 40)" [ "${X4:-0}" -gt 0 ]
check "x: some requests acknowledged (got $X2 of 40)" [ "${X2:-0}" -gt 0 ]
check "x: every request answered 2xx or 4xx" [ $((X2 + X4)) = 40 ]
check "y: all 40 requests answered 204 while x was limited ($sy)" \
	[ "$(field "$sy" status_2xx)" = 40 ]
check "y: rwsend saw no failure (exit $y_rc)" [ "$y_rc" = 0 ]

check "relay_requests_refused_total{reason=\"rate_limited\"} = $X4" \
	metric_is "$RELAY_PORT" relay_requests_refused_total "$X4" 'reason="rate_limited"'
check "relay_requests_total{code=\"429\"} = $X4" \
	metric_is "$RELAY_PORT" relay_requests_total "$X4" 'code="429"'
check "relay_tenant_requests_refused_total{tenant=\"x\",reason=\"rate_limited\"} = $X4" \
	metric_is "$RELAY_PORT" relay_tenant_requests_refused_total "$X4" 'tenant="x",reason="rate_limited"'
n=$(metric "$RELAY_PORT" relay_tenant_requests_refused_total 'tenant="y"' || echo 0)
check "no refusal counted for y ($n)" [ "${n:-0}" = 0 ]

_usage_x_settled() {
	local j
	j=$(usage_json "$BASE" "$ADMIN" "tenant=x")
	[ "$(usage_sum "$j" x samples_refused_rate_limited)" = $((X4 * 500)) ]
}
if wait_until "$WAIT_CAP" _usage_x_settled; then
	ok "usage: x's samples_refused_rate_limited = $((X4 * 500))"
else
	fail "usage: x's samples_refused_rate_limited" \
		"$(usage_sum "$(usage_json "$BASE" "$ADMIN" tenant=x)" x samples_refused_rate_limited), want $((X4 * 500))"
fi
J=$(usage_json "$BASE" "$ADMIN")
check "usage: x's samples = acknowledged ($((X2 * 500)))" [ "$(usage_sum "$J" x samples)" = $((X2 * 500)) ]
check "usage: x's requests = acknowledged ($X2)" [ "$(usage_sum "$J" x requests)" = "$X2" ]
check "usage: y's samples = 20000" [ "$(usage_sum "$J" y samples)" = 20000 ]
check "usage: y's samples_refused_rate_limited = 0" [ "$(usage_sum "$J" y samples_refused_rate_limited)" = 0 ]
C=$(usage_json "$BASE" "$ADMIN" "format=csv")
col=$(printf '%s\n' "$C" | head -n 1 | tr ',' '\n' | grep -nx samples_refused_rate_limited | cut -d: -f1)
v=$(printf '%s\n' "$C" | awk -F, -v c="${col:-0}" '$1 == "x" && c { s += $c } END { printf "%d", s }')
check "usage csv: x's samples_refused_rate_limited = $((X4 * 500)) (got $v)" [ "$v" = $((X4 * 500)) ]

if wait_until "$WAIT_CAP" vm_has "$VM_PORT" '{__name__="rl_x_metric",tenant="x"}' $((X2 * 500)); then
	ok "x's acknowledged samples arrived"
else
	fail "x's samples" "found $(vm_count_distinct "$VM_PORT" '{__name__="rl_x_metric"}') of $((X2 * 500))"
fi
n=$(vm_count "$VM_PORT" '{__name__="rl_x_metric"}')
check "nothing of x's refused requests reached victoria-metrics ($n = $((X2 * 500)))" [ "$n" = $((X2 * 500)) ]
if wait_until "$WAIT_CAP" vm_has "$VM_PORT" '{__name__="rl_y_metric",tenant="y"}' 20000; then
	ok "y's 20000 samples arrived"
else
	fail "y's samples" "found $(vm_count_distinct "$VM_PORT" '{__name__="rl_y_metric"}') of 20000"
fi

# Retry-After on a 429: post 500-sample bodies as x until one is refused.
# Each a new one: a resent body stores nothing and its tokens go back, so
# resending one body may never bring the bucket down to the limit.
for i in $(seq 1 20); do
	"$RWSEND" --emit "$T/x500_$i.bin" --series 500 --samples-per-series 1 \
		--name-prefix "rl_xh$i"
done
got=
for i in $(seq 1 20); do
	code=$(post_rw "$URL" "$T/x500_$i.bin" -H "Authorization: Bearer x-token" -D "$T/h429")
	if [ "$code" = 429 ]; then
		got=429
		break
	fi
done
check "x: a 429 answer while over the rate" [ "$got" = 429 ]
ra=$(retry_after "$T/h429")
check "x: the 429 carries Retry-After with a positive number of seconds (got '$ra')" \
	bash -c '[[ $1 =~ ^[0-9]+$ ]] && [ "$1" -gt 0 ]' _ "$ra"

# --- z: the same limit, answered 503 ----------------------------------------
sz=$(rwsend "$URL" --token z-token --series 500 --samples-per-series 1 \
	--requests 20 --concurrency 4 --name-prefix rl_z --quiet)
note "z: $sz"
check "z (limit_status = 503): some requests refused with 5xx ($sz)" \
	[ "$(field "$sz" status_5xx)" -gt 0 ]
check "z: none refused with 4xx" [ "$(field "$sz" status_4xx)" = 0 ]
got=
for i in $(seq 1 20); do
	code=$(post_rw "$URL" "$T/x500_$i.bin" -H "Authorization: Bearer z-token" -D "$T/h503")
	if [ "$code" = 503 ]; then
		got=503
		break
	fi
done
check "z: a 503 answer while over the rate" [ "$got" = 503 ]
ra=$(retry_after "$T/h503")
check "z: the 503 carries Retry-After (got '$ra')" \
	bash -c '[[ $1 =~ ^[0-9]+$ ]] && [ "$1" -gt 0 ]' _ "$ra"
check "relay_tenant_requests_refused_total{tenant=\"z\",reason=\"rate_limited\"} > 0" \
	metric_ge "$RELAY_PORT" relay_tenant_requests_refused_total 1 'tenant="z",reason="rate_limited"'

# --- w: a request passes while the bucket is positive -------------------------
# A full bucket holds 1000; one request of 5000 samples passes and leaves
# it at -4000, so the next request is refused until it refills (4 s).
"$RWSEND" --emit "$T/w5000.bin" --series 5000 --samples-per-series 1 --name-prefix rl_w
"$RWSEND" --emit "$T/w1.bin" --series 1 --samples-per-series 1 --name-prefix rl_w1
code=$(post_rw "$URL" "$T/w5000.bin" -H "Authorization: Bearer w-token" -D "$T/hw")
check "w: a 5000-sample request into a full 1000 bucket passes (got $code)" [ "$code" = 204 ]
code=$(post_rw "$URL" "$T/w1.bin" -H "Authorization: Bearer w-token" -D "$T/hw")
check "w: right after it, even a 1-sample request is refused (got $code)" [ "$code" = 429 ]
_w_passes() {
	[ "$(post_rw "$URL" "$T/w1.bin" -H "Authorization: Bearer w-token" -D "$T/hw")" = 204 ]
}
if wait_until 20 _w_passes; then
	ok "w: once the bucket refills, requests pass again"
else
	fail "w: refill" "still refused after 20 s"
fi

# --- q: over its share of the buffer --------------------------------------
# q's upstream is unreachable, so what it sends stays buffered.
qsum=$(rwsend "$URL" --token q-token --series 200 --samples-per-series 1 \
	--requests 30 --name-prefix rl_q --quiet)
note "q: $qsum"
Q2=$(field "$qsum" status_2xx)
check "q: some requests stored before its buffer share filled (got $Q2)" [ "${Q2:-0}" -gt 0 ]
check "q: later requests refused with 429 ($qsum)" [ "$(field "$qsum" status_4xx)" -gt 0 ]
qb=$(metric "$RELAY_PORT" relay_tenant_buffer_bytes 'tenant="q"')
check "q: its buffered bytes stay within max_buffer_bytes ($qb <= 20000)" [ "${qb:-99999}" -le 20000 ]
check "q: refusals counted as tenant_buffer_full" \
	metric_ge "$RELAY_PORT" relay_tenant_requests_refused_total 1 'tenant="q",reason="tenant_buffer_full"'
"$RWSEND" --emit "$T/q.bin" --series 200 --samples-per-series 1 --name-prefix rl_qh
code=$(post_rw "$URL" "$T/q.bin" -H "Authorization: Bearer q-token" -D "$T/hq")
check "q: a further request gets 429 (got $code)" [ "$code" = 429 ]
ra=$(retry_after "$T/hq")
check "q: with Retry-After (got '$ra')" bash -c '[[ $1 =~ ^[0-9]+$ ]]' _ "$ra"
sy=$(rwsend "$URL" --token y-token --series 200 --samples-per-series 1 \
	--requests 10 --name-prefix rl_y2)
check "y: unaffected by q's full share, 10 of 10 answered 204 ($sy)" \
	[ "$(field "$sy" status_2xx)" = 10 ]
# Every refused request held 200 samples; usage should say so.
Q4=$(( $(field "$qsum" status_4xx) + 1 ))
_usage_q_refused() {
	[ "$(usage_sum "$(usage_json "$BASE" "$ADMIN" tenant=q)" q samples_refused_tenant_buffer_full)" = $((Q4 * 200)) ]
}
if wait_until 10 _usage_q_refused; then
	ok "usage: q's samples_refused_tenant_buffer_full = $((Q4 * 200)) ($Q4 requests x 200)"
else
	fail "usage: q's samples_refused_tenant_buffer_full" \
		"got $(usage_sum "$(usage_json "$BASE" "$ADMIN" tenant=q)" q samples_refused_tenant_buffer_full), want $((Q4 * 200)) for $Q4 refused requests; relay_tenant_samples_refused_total{tenant=\"q\"}=$(metric "$RELAY_PORT" relay_tenant_samples_refused_total 'tenant="q"'), relay_tenant_requests_refused_total{tenant=\"q\",reason=\"tenant_buffer_full\"}=$(metric "$RELAY_PORT" relay_tenant_requests_refused_total 'tenant="q",reason="tenant_buffer_full"')"
fi
J=$(usage_json "$BASE" "$ADMIN" "tenant=q")
check "usage: q's samples = its acknowledged $((Q2 * 200)) + 0" [ "$(usage_sum "$J" q samples)" = $((Q2 * 200)) ]
