#!/usr/bin/env bash
# t_shutdown.sh - a clean stop under load: 16 concurrent senders write while
# VictoriaMetrics is down and the relay gets SIGTERM in the middle. Every
# request answered 2xx is durable, the others got 503 or a connection error
# (never a hang), the relay exits 0 logging "stopping" and "stopped", and a
# restart resumes with exactly the buffer it left, which then all arrives.
# A second relay on the same data directory fails at once with a clear
# message while the first keeps serving.
# shellcheck source=tests/lib.sh disable=SC2016,SC2034
. "$(dirname "$0")/../lib.sh"
require_relay

VM_PORT=$(free_port)     # VictoriaMetrics starts only later
RELAY_PORT=$(free_port)
CONF=$T/relay.conf
write_conf "$CONF"
BASE=http://127.0.0.1:$RELAY_PORT
URL=$BASE/api/v1/write
SERIES=20                # samples per request (one sample per series)
REQUESTS=20000
SEL='{__name__="sd_metric"}'

# logval KEY LINE: value of KEY=... in a logfmt line.
logval() {
	printf '%s\n' "$2" | tr ' ' '\n' | sed -n "s/^$1=//p" | head -n 1
}

start_relay "$CONF" || { fail setup "relay did not become ready"; exit 1; }
PID1=$RELAY_PID

# --- SIGTERM in the middle of the load -----------------------------------
rwsend "$URL" --series "$SERIES" --requests "$REQUESTS" --concurrency 16 \
	--timeout 20 --name-prefix sd >"$T/load.out" 2>"$T/load.err" &
LOAD=$!
PIDS+=("$LOAD")
if wait_until "$WAIT_CAP" metric_ge "$RELAY_PORT" relay_requests_total 300 'code="204"'; then
	ok "the load is running (300+ requests answered 204)"
else
	fail "load running" "relay_requests_total{code=\"204\"}=$(metric "$RELAY_PORT" relay_requests_total 'code="204"')"
fi
load_alive=0
kill -0 "$LOAD" 2>/dev/null && load_alive=1
check "the senders were still sending when SIGTERM came" [ "$load_alive" = 1 ]
stop_relay
rc=$?
check "the relay exits 0 on SIGTERM under load (exit $rc)" [ "$rc" = 0 ]

# The senders must finish on their own: every request gets an answer or a
# connection error, none hangs.
if wait_until "$WAIT_CAP" _gone "$LOAD"; then
	ok "the senders finished: no request hung"
else
	fail "senders finished" "rwsend still running ${WAIT_CAP}s after the relay stopped"
	kill -KILL "$LOAD" 2>/dev/null
fi
wait "$LOAD" 2>/dev/null
_forget_pid "$LOAD"
sum=$(cat "$T/load.out")
note "senders: $sum"
[ -s "$T/load.err" ] && note "sender errors (first ones): $(tr '\n' '|' <"$T/load.err" | head -c 600)"
sent=$(field "$sum" sent)
acked=$(field "$sum" samples_acked)
s5=$(field "$sum" status_5xx)
errs=$(field "$sum" errors)
checkx "rwsend accounted for every request ($sent of $REQUESTS)" '[ "$sent" = "$REQUESTS" ]'
check "no request got a 4xx ($(field "$sum" status_4xx))" [ "$(field "$sum" status_4xx)" = 0 ]
checkx "every request got 2xx, 5xx or a connection error" \
	'[ $(( $(field "$sum" acked) + s5 + errs )) = "$sent" ]'
bad=$(grep -E 'status [0-9]+' "$T/load.err" | grep -vE 'status (503|0):' || true)
check "the failures rwsend printed are 503 or connection errors only" [ -z "$bad" ]
checkx "some requests were refused or cut by the stop ($s5 5xx, $errs connection errors)" \
	'[ $((s5 + errs)) -gt 0 ]'

line=$(grep -F 'msg="stopping"' "$RELAY_LOG" | tail -n 1)
check "the log says 'stopping'" [ -n "$line" ]
stopped=$(grep -F 'msg="stopped"' "$RELAY_LOG" | tail -n 1)
note "log: $stopped"
check "the log says 'stopped'" [ -n "$stopped" ]
LEFT_E=$(logval buffered_entries "$stopped")
LEFT_S=$(logval buffered_samples "$stopped")
checkx "every acknowledged sample is in the buffer left ($LEFT_S >= $acked)" \
	'[ "${LEFT_S:-0}" -ge "$acked" ]'
checkx "the buffer holds no more than what was sent ($LEFT_S <= $((sent * SERIES)))" \
	'[ "${LEFT_S:-0}" -le $((sent * SERIES)) ]'

# --- restart: it resumes with what it left -------------------------------
start_relay "$CONF" || { fail restart "relay did not become ready on the old store"; exit 1; }
e=$(metric "$RELAY_PORT" relay_buffer_entries)
s=$(metric "$RELAY_PORT" relay_buffer_samples)
check "after the restart relay_buffer_entries = $LEFT_E, as left ($e)" [ "$e" = "$LEFT_E" ]
check "after the restart relay_buffer_samples = $LEFT_S, as left ($s)" [ "$s" = "$LEFT_S" ]
open=$(grep -F 'msg="storage open"' "$RELAY_LOG" | tail -n 1)
checkx "the restart's 'storage open' line counts the same buffer" \
	'[ "$(logval entries "$open")" = "$LEFT_E" ] && [ "$(logval samples "$open")" = "$LEFT_S" ]'

start_vm "$T/vm" "$VM_PORT" || { fail setup "victoria-metrics did not start"; exit 1; }
if wait_until "$WAIT_CAP" vm_has "$VM_PORT" "$SEL" "$acked"; then
	ok "every acknowledged sample arrived after the restart ($acked)"
else
	fail "acknowledged samples arrived" "found $(vm_count_distinct "$VM_PORT" "$SEL") of $acked"
fi
if wait_until "$WAIT_CAP" metric_is "$RELAY_PORT" relay_buffer_entries 0; then
	ok "the buffer empties"
else
	fail "buffer empties" "relay_buffer_entries=$(metric "$RELAY_PORT" relay_buffer_entries)"
fi
n=$(vm_count_distinct "$VM_PORT" "$SEL")
check "VictoriaMetrics holds exactly the buffer that was left ($n = $LEFT_S)" [ "$n" = "$LEFT_S" ]
n=$(vm_count "$VM_PORT" "$SEL")
check "nothing arrived twice ($n = $LEFT_S)" [ "$n" = "$LEFT_S" ]
check "relay_samples_forwarded_total = $LEFT_S" \
	metric_is "$RELAY_PORT" relay_samples_forwarded_total "$LEFT_S"

# --- a second relay on the same data directory ---------------------------
PORT2=$(free_port)
sed "s/^listen = .*/listen = 127.0.0.1:$PORT2/" "$CONF" >"$T/second.conf"
timeout -k 5 30 "$RELAY_BIN" -c "$T/second.conf" >"$T/second.log" 2>&1
rc=$?
note "second relay: exit $rc: $(head -c 400 "$T/second.log")"
check "a second relay on the same data directory exits 1 ($rc)" [ "$rc" = 1 ]
checkx "it says another relay is using the directory" \
	'grep -qF "another relay is using $T/data" "$T/second.log"'
c=$(http_code "http://127.0.0.1:$PORT2/-/healthy")
check "the second relay does not serve on its port ($c)" [ "$c" = 000 ]
check "the first relay is still the same process" kill -0 "$RELAY_PID"
check "the first relay is still ready" [ "$(http_code "$BASE/-/ready")" = 200 ]
sum=$(rwsend "$URL" --series 10 --requests 20 --concurrency 4 --name-prefix sd_after)
check "the first relay still takes writes ($sum)" [ "$(field "$sum" acked)" = 20 ]
if wait_until "$WAIT_CAP" vm_has "$VM_PORT" '{__name__="sd_after_metric"}' 200; then
	ok "and still forwards them"
else
	fail "forwarding after the second relay" "found $(vm_count_distinct "$VM_PORT" '{__name__="sd_after_metric"}') of 200"
fi
if stop_relay; then
	ok "the first relay exits 0 at the end"
else
	fail "final stop" "non-zero exit"
fi
check "two 'stopped' lines in the log, one per run" \
	[ "$(grep -cF 'msg="stopped"' "$RELAY_LOG")" = 2 ]
