#!/usr/bin/env bash
# t_routing.sh - per-tenant upstream URLs: {account_id}, {project_id} and
# {tenant} in [upstream] url send each tenant to its own upstream (two
# single-node VictoriaMetrics stand in for cluster URLs: each tenant's
# account_id is its VM's port). When one tenant's upstream is down, or
# accepts connections and never answers, the other tenant's data keeps
# arriving before the first upstream is back; then the backlog arrives.
. "$(dirname "$0")/../lib.sh"
require_relay

PA=$(free_port)
PB=$(free_port)
RELAY_PORT=$(free_port)
start_vm "$T/vma" "$PA" || { fail setup "victoria-metrics A did not start"; exit 1; }
VMA_PID=$VM_PID
start_vm "$T/vmb" "$PB" || { fail setup "victoria-metrics B did not start"; exit 1; }
VMB_PID=$VM_PID

A_TOKEN=tenant-a-token
B_TOKEN=tenant-b-token
# extra_label shows upstream which tenant and project the URL was made for.
write_conf "$T/relay.conf" \
	"upstream.url=http://127.0.0.1:{account_id}/api/v1/write?extra_label=url_tenant={tenant}&extra_label=url_project={project_id}" \
	"upstream.timeout=20s" \
	"tenant a.token=$A_TOKEN" \
	"tenant a.account_id=$PA" \
	"tenant a.project_id=5" \
	"tenant b.token=$B_TOKEN" \
	"tenant b.account_id=$PB"
start_relay "$T/relay.conf" || { fail setup "relay did not become ready"; exit 1; }
URL=http://127.0.0.1:$RELAY_PORT/api/v1/write

# send TENANT PREFIX REQUESTS: 20 series x 1 sample per request; prints
# the acknowledged samples.
send() {
	local tok sum
	case $1 in a) tok=$A_TOKEN ;; b) tok=$B_TOKEN ;; esac
	sum=$(rwsend "$URL" --token "$tok" --series 20 --samples-per-series 1 \
		--requests "$3" --name-prefix "$2" --concurrency 2)
	note "$1 $2: $sum" >&2
	field "$sum" samples_acked
}

# --- both upstreams up: each tenant's data lands only in its own ---------
n=$(send a ra 3)
check "a: 60 samples acknowledged" [ "$n" = 60 ]
n=$(send b rb 2)
check "b: 40 samples acknowledged" [ "$n" = 40 ]
if wait_until "$WAIT_CAP" vm_has "$PA" '{__name__="ra_metric",tenant="a"}' 60; then
	ok "a's samples arrived in VM A"
else
	fail "a in VM A" "found $(vm_count_distinct "$PA" '{__name__="ra_metric"}') of 60"
fi
if wait_until "$WAIT_CAP" vm_has "$PB" '{__name__="rb_metric",tenant="b"}' 40; then
	ok "b's samples arrived in VM B"
else
	fail "b in VM B" "found $(vm_count_distinct "$PB" '{__name__="rb_metric"}') of 40"
fi
n=$(vm_count "$PA" '{__name__="ra_metric"}')
check "VM A holds a's 60 samples once ($n)" [ "$n" = 60 ]
n=$(vm_series "$PA" '{__name__="ra_metric",url_tenant="a",url_project="5"}')
check "a's URL had {tenant}=a and {project_id}=5 ($n of 20 series)" [ "$n" = 20 ]
n=$(vm_series "$PB" '{__name__="rb_metric",url_tenant="b",url_project="0"}')
check "b's URL had {tenant}=b and an unset {project_id} as 0 ($n of 20 series)" [ "$n" = 20 ]
n=$(vm_series "$PA" '{__name__="rb_metric"}')
check "none of b's series in VM A ($n)" [ "$n" = 0 ]
n=$(vm_series "$PB" '{__name__="ra_metric"}')
check "none of a's series in VM B ($n)" [ "$n" = 0 ]
n=$(vm_series "$PA" '{tenant="b"}')
check "VM A has no series with tenant=\"b\" ($n)" [ "$n" = 0 ]
n=$(vm_series "$PB" '{tenant="a"}')
check "VM B has no series with tenant=\"a\" ($n)" [ "$n" = 0 ]

# --- VM A down: b keeps arriving, a waits in the buffer ------------------
VM_PID=$VMA_PID
stop_vm
A_BACKLOG=0
for round in 1 2 3; do
	n=$(send a "rc$round" 2)
	check "VM A down, round $round: a's 40 samples acknowledged" [ "$n" = 40 ]
	A_BACKLOG=$((A_BACKLOG + n))
	n=$(send b "rd$round" 2)
	check "VM A down, round $round: b's 40 samples acknowledged" [ "$n" = 40 ]
	if wait_until "$WAIT_CAP" vm_has "$PB" "{__name__=\"rd${round}_metric\",tenant=\"b\"}" 40; then
		ok "VM A down, round $round: b's new samples arrived in VM B"
	else
		fail "VM A down, round $round: b's samples" \
			"found $(vm_count_distinct "$PB" "{__name__=\"rd${round}_metric\"}") of 40"
	fi
	check "VM A down, round $round: VM A is still down" bash -c "! kill -0 $VMA_PID 2>/dev/null"
	check "VM A down, round $round: a's backlog waits in the buffer" \
		metric_is "$RELAY_PORT" relay_tenant_buffer_samples "$A_BACKLOG" 'tenant="a"'
done
# Deliveries are deleted in the writer's next commit, up to 100 ms later.
check "VM A down: b's buffer empties" \
	wait_until "$WAIT_CAP" metric_is "$RELAY_PORT" relay_tenant_buffer_samples 0 'tenant="b"'
check "VM A down: the relay counted failed upstream requests" \
	metric_ge "$RELAY_PORT" relay_upstream_requests_total 1 'code="error"'

# --- VM A's port accepts connections and never answers ------------------
BH_PID=
if command -v python3 >/dev/null 2>&1; then
	python3 -c '
import os, socket, sys
open(sys.argv[2], "w").write(str(os.getpid()))
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1])))
s.listen(64)
held = []
while True:
    c, _ = s.accept()
    held.append(c)
' "$PA" "$T/blackhole.pid" >/dev/null 2>&1 &
	BH_PID=$!
	PIDS+=("$BH_PID")
	if wait_until 10 _port_listening "$PA"; then
		n=$(send a re 2)
		check "VM A hangs: a's 40 samples acknowledged" [ "$n" = 40 ]
		A_BACKLOG=$((A_BACKLOG + n))
		for round in 1 2; do
			n=$(send b "rf$round" 2)
			check "VM A hangs, round $round: b's 40 samples acknowledged" [ "$n" = 40 ]
			if wait_until "$WAIT_CAP" vm_has "$PB" "{__name__=\"rf${round}_metric\",tenant=\"b\"}" 40; then
				ok "VM A hangs, round $round: b's new samples arrived in VM B"
			else
				fail "VM A hangs, round $round: b's samples" \
					"found $(vm_count_distinct "$PB" "{__name__=\"rf${round}_metric\"}") of 40"
			fi
			check "VM A hangs, round $round: the silent listener is still there" \
				_port_listening "$PA"
		done
		check "VM A hangs: a's backlog waits in the buffer" \
			metric_is "$RELAY_PORT" relay_tenant_buffer_samples "$A_BACKLOG" 'tenant="a"'
	else
		fail "silent listener" "could not listen on $PA"
	fi
	# The interpreter may run under a wrapper: stop the process that
	# holds the port by its own pid, then the wrapper.
	[ -s "$T/blackhole.pid" ] && _stop_pid "$(cat "$T/blackhole.pid")"
	_stop_pid "$BH_PID"
	_forget_pid "$BH_PID"
	wait_until 10 bash -c "! (exec 3<>/dev/tcp/127.0.0.1/$PA) 2>/dev/null" ||
		fail "silent listener" "port $PA still taken"
else
	skip "silent upstream" "no python3 to run a listener that never answers"
fi

# --- VM A back: a's backlog arrives, only there --------------------------
start_vm "$T/vma" "$PA" || { fail "VM A restart" "victoria-metrics A did not come back"; exit 1; }
VMA_PID=$VM_PID
SEL='{__name__=~"r[ce][0-9]*_metric",tenant="a"}'
if wait_until "$WAIT_CAP" vm_has "$PA" "$SEL" "$A_BACKLOG"; then
	ok "VM A back: a's backlog of $A_BACKLOG samples arrived"
else
	fail "a's backlog" "found $(vm_count_distinct "$PA" "$SEL") of $A_BACKLOG"
fi
n=$(vm_count "$PA" "$SEL")
check "VM A back: no backlog sample arrived twice ($n)" [ "$n" = "$A_BACKLOG" ]
n=$(vm_series "$PB" '{tenant="a"}')
check "VM A back: none of a's series in VM B ($n)" [ "$n" = 0 ]
n=$(vm_series "$PA" '{tenant="b"}')
check "VM A back: none of b's series in VM A ($n)" [ "$n" = 0 ]
if wait_until "$WAIT_CAP" metric_is "$RELAY_PORT" relay_buffer_entries 0; then
	ok "the buffer empties"
else
	fail "buffer empties" "relay_buffer_entries=$(metric "$RELAY_PORT" relay_buffer_entries)"
fi
