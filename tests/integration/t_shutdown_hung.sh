#!/usr/bin/env bash
# t_shutdown_hung.sh - a stop is bounded by [server] shutdown_timeout even
# when the upstream hangs. The upstream is a listener that accepts the
# relay's connection and never reads nor answers; the relay's request
# timeout is an hour, and the request it holds counts in
# relay_upstream_requests_in_flight. On SIGTERM /-/ready answers 503 (and
# so do new writes) while the relay stops, the relay exits 0 on its own,
# and after a restart towards VictoriaMetrics everything it had
# acknowledged arrives.
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/../lib.sh"
require_relay

VM_PORT=$(free_port)
HUNG_PORT=$(free_port)
RELAY_PORT=$(free_port)
start_vm "$T/vm" "$VM_PORT" || { fail setup "victoria-metrics did not start"; exit 1; }

# The hung upstream: accepts, notes each connection in $T/accepted, and
# never reads or answers.
python3 -c '
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1])))
s.listen(16)
held = []
while True:
    c, _ = s.accept()
    held.append(c)
    with open(sys.argv[2], "a") as f:
        f.write("accepted\n")
' "$HUNG_PORT" "$T/accepted" &
PIDS+=("$!")
wait_until "$WAIT_CAP" _port_listening "$HUNG_PORT" ||
	{ fail setup "hung listener did not start"; exit 1; }

write_conf "$T/hung.conf" \
	"upstream.url=http://127.0.0.1:$HUNG_PORT/api/v1/write" \
	"upstream.timeout=1h" "server.shutdown_timeout=2s"
write_conf "$T/vm.conf"
start_relay "$T/hung.conf" || { fail setup "relay did not become ready"; exit 1; }
URL=http://127.0.0.1:$RELAY_PORT/api/v1/write

out=$(rwsend "$URL" --series 10 --samples-per-series 5 --requests 20 --name-prefix sh_) ||
	fail "every request acknowledged" "$out"
acked=$(field "$out" samples_acked)
check "acknowledged: 1000 samples" [ "$acked" = 1000 ]
check "the relay's request reached the hung upstream" \
	wait_until "$WAIT_CAP" test -s "$T/accepted"
check "the request the upstream holds counts in flight" \
	wait_until "$WAIT_CAP" metric_ge "$RELAY_PORT" relay_upstream_requests_in_flight 1

kill -TERM "$RELAY_PID"
# While it stops: /-/ready and writes answer 503 (not a hang, not a 200).
ready=none
write=none
deadline=$((SECONDS + WAIT_CAP))
while kill -0 "$RELAY_PID" 2>/dev/null && [ "$SECONDS" -lt "$deadline" ]; do
	c=$(http_code "http://127.0.0.1:$RELAY_PORT/-/ready" --max-time 5)
	[ "$ready" = 503 ] || ready=$c
	c=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 -X POST \
		-H 'Content-Type: application/x-protobuf' \
		-H 'Content-Encoding: snappy' --data-binary x "$URL")
	[ "$write" = 503 ] || write=$c
	[ "$ready" = 503 ] && [ "$write" = 503 ] && break
	sleep 0.1
done
check "/-/ready answers 503 during the stop (got $ready)" [ "$ready" = 503 ]
check "a write gets 503 during the stop (got $write)" [ "$write" = 503 ]
rc=0
stop_relay || rc=$?
check "the relay exits on its own, status 0 (got $rc)" [ "$rc" = 0 ]
check "the log says the request was abandoned" \
	grep -q "upstream request abandoned at stop" "$RELAY_LOG"

start_relay "$T/vm.conf" || { fail setup "relay did not restart"; exit 1; }
check "after a restart all $acked samples arrive" \
	wait_until "$WAIT_CAP" vm_is "$VM_PORT" '{__name__=~"sh_.*"}' "$acked"
check "nothing dropped" metric_is "$RELAY_PORT" relay_samples_dropped_total 0
check "nothing in flight once all arrived" \
	wait_until "$WAIT_CAP" metric_is "$RELAY_PORT" relay_upstream_requests_in_flight 0
check "the relay stops cleanly" stop_relay
