#!/usr/bin/env bash
# t_hostile.sh - many hostile connections together do not keep an
# authenticated sender out, nor take memory past max_inflight_bytes. From
# other loopback addresses, 2,000 connections send half a header and close
# in the same segment, 1,000 send a header one byte a second, and 60
# uploads of a tenant with a token stall after 29 MiB of a 30 MiB body.
# Meanwhile every write of a good sender from 127.0.0.1 is answered 2xx,
# RssAnon stays within max_inflight_bytes plus the stated overhead, and
# /metrics counts the connections the relay closed, by reason. Then, with
# no deadline short enough to help, 1,100 aborted connections alone: the
# relay notices each close at once and keeps serving. Last, senders that
# close while their write is committed: stored and counted all the same,
# and SIGTERM still stops the relay.
. "$(dirname "$0")/../lib.sh"
require_relay

GOOD_TOKEN=good-2c9d41e7-token
NOISY_TOKEN=noisy-83b0f5aa-token
LIMIT_MIB=256
VM_PORT=$(free_port)
RELAY_PORT=$(free_port)
URL=http://127.0.0.1:$RELAY_PORT/api/v1/write
start_vm "$T/vm" "$VM_PORT" || { fail setup "victoria-metrics did not start"; exit 1; }

write_conf "$T/relay.conf" \
	server.max_inflight_bytes=${LIMIT_MIB}MiB \
	server.header_timeout=1s server.body_timeout=1s server.body_min_rate=1KiB \
	server.max_connections=512 server.max_connections_per_ip=64 \
	"tenant good.token=$GOOD_TOKEN" "tenant noisy.token=$NOISY_TOKEN"
start_relay "$T/relay.conf" || { fail setup "relay did not become ready"; exit 1; }
note "open file limit of the relay: $(awk '/^Max open files/ { print $4 "/" $5 }' \
	"/proc/$RELAY_PID/limits")"
base=$(rss_anon_kib "$RELAY_PID")
note "RssAnon before the attack: ${base} KiB"
watch_rss "$RELAY_PID" "$T/rss.max"

python3 "$REPO/tests/tools/hostile.py" "$RELAY_PORT" --duration 20 \
	--aborted 2000 --aborted-from 127.0.0.5,127.0.0.6 \
	--slow 1000 --slow-from 127.0.0.7,127.0.0.8,127.0.0.9,127.0.0.10,127.0.0.11 \
	--stalled 60 --stalled-from 127.0.0.3,127.0.0.4 --token "$NOISY_TOKEN" \
	>"$T/hostile.out" 2>"$T/hostile.err" &
attacker=$!
PIDS+=("$attacker")
# Let the attack take hold before the good sender starts.
sleep 3
out=$(rwsend "$URL" --token "$GOOD_TOKEN" --requests 10 --series 50 \
	--samples-per-series 2 --timeout 15 --name-prefix good 2>"$T/rwsend.err")
rc=$?
note "good sender under attack: $out"
check "every write of the good sender is answered 2xx under attack ($out)" \
	[ "$rc" = 0 -a "$(field "$out" status_2xx)" = 10 ]
wait "$attacker"
note "attacker: $(cat "$T/hostile.out") $(head -c 300 "$T/hostile.err")"
max=$(cat "$T/rss.max")
bound=$((base + (LIMIT_MIB + 64) * 1024))
note "RssAnon under attack: at most ${max} KiB (bound ${bound} KiB: before + ${LIMIT_MIB} MiB + 64 MiB)"
check "RssAnon stays within max_inflight_bytes + 64 MiB (${max} <= ${bound} KiB)" \
	[ "${max:-0}" -gt 0 -a "${max:-0}" -le "$bound" ]

m() { metric "$RELAY_PORT" relay_connections_closed_total "reason=\"$1\""; }
note "closed: header_timeout=$(m header_timeout) slow_body=$(m slow_body) per_ip=$(m per_ip)" \
	"refused overloaded=$(metric "$RELAY_PORT" relay_requests_refused_total 'reason="overloaded"')"
check "slow headers are closed and counted" metric_ge "$RELAY_PORT" \
	relay_connections_closed_total 1 'reason="header_timeout"'
check "stalled bodies are closed and counted" metric_ge "$RELAY_PORT" \
	relay_connections_closed_total 1 'reason="slow_body"'
check "connections over the per-address cap are refused and counted" metric_ge \
	"$RELAY_PORT" relay_connections_closed_total 1 'reason="per_ip"'
check "bodies past the in-flight limit get 503 and are counted" metric_ge \
	"$RELAY_PORT" relay_requests_refused_total 1 'reason="overloaded"'
check "no body bytes are held once the attack is over" \
	wait_until 10 metric_is "$RELAY_PORT" relay_inflight_body_bytes 0
check "the relay is alive after the attack" kill -0 "$RELAY_PID"
stop_relay

# A peer that closes is noticed at once, whatever the header deadline: with
# header_timeout longer than the good sender waits and no per-address cap,
# 1,100 aborted connections (more than max_connections) from one address.
write_conf "$T/aborted.conf" server.header_timeout=1h server.idle_timeout=1h \
	"tenant good.token=$GOOD_TOKEN"
start_relay "$T/aborted.conf" || { fail setup "relay did not become ready"; exit 1; }
python3 "$REPO/tests/tools/hostile.py" "$RELAY_PORT" --duration 20 \
	--aborted 1100 --aborted-from 127.0.0.5 >"$T/aborted.out" 2>&1
note "attacker: $(cat "$T/aborted.out")"
out=$(rwsend "$URL" --token "$GOOD_TOKEN" --requests 5 --series 50 \
	--samples-per-series 2 --timeout 15 --name-prefix after 2>"$T/rwsend.err")
rc=$?
note "good sender after 1,100 aborted connections: $out"
check "every write is answered 2xx after 1,100 aborted connections ($out)" \
	[ "$rc" = 0 -a "$(field "$out" status_2xx)" = 5 ]
check "the aborted connections are all closed (none held)" \
	wait_until 10 metric_is "$RELAY_PORT" relay_connections_open 1
stop_relay

# Senders that close their connection while the relay commits their write
# (a timeout that ran out): each write is stored and counted all the same,
# and SIGTERM still stops the relay at once (it once waited for ever for
# answers that had nowhere to go). Rounds of 60 until some close in time.
write_conf "$T/gone.conf" server.shutdown_timeout=5s
start_relay "$T/gone.conf" || { fail setup "relay did not become ready"; exit 1; }
sent=0
samples=0
for round in 1 2 3 4 5; do
	out=$(python3 "$REPO/tests/tools/hostile.py" "$RELAY_PORT" --duration 1 \
		--gone 60 --gone-series 2000 --gone-wait-ms 2 2>&1)
	sent=$((sent + $(field "$out" gone)))
	samples=$((samples + $(field "$out" gone_samples)))
	metric_ge "$RELAY_PORT" relay_write_client_gone_total 1 && break
done
note "gone senders: $sent writes of $samples samples in $round rounds;" \
	"client gone before the answer: $(metric "$RELAY_PORT" relay_write_client_gone_total)"
check "some senders closed before their answer, and are counted" \
	metric_ge "$RELAY_PORT" relay_write_client_gone_total 1
check "every write of the gone senders is stored ($sent)" \
	wait_until 10 metric_is "$RELAY_PORT" relay_commit_requests_total "$sent"
check "and its samples counted as received ($samples)" \
	metric_is "$RELAY_PORT" relay_samples_received_total "$samples"
t0=$(date +%s)
stop_relay
rc=$?
check "SIGTERM stops the relay, exit 0 (rc $rc, $(( $(date +%s) - t0 )) s)" [ "$rc" = 0 ]
