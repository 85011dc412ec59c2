#!/usr/bin/env bash
# t_crashloop.sh - kill -9 at random moments under concurrent load, five
# times, restarting on the same store each time: every sample the relay
# acknowledged reaches VictoriaMetrics (at least once; duplicates allowed).
# VictoriaMetrics is up for some rounds and down for others, so the relay
# dies both while buffering and while forwarding.
#
# Load: 3 senders (name prefixes cl0..cl2) with 4 workers each. A worker
# sends one request per rwsend run and records the request's number only
# when rwsend counted it acknowledged (a 2xx; a reset or refused connection
# is not). Request r of a sender carries the timestamps BASE + (r*K + k)*STEP
# (k < K) on each of its S series, so the check is exact: every
# (series, timestamp) of every acknowledged request must be stored.
. "$(dirname "$0")/../lib.sh"
require_relay

SENDERS=3
W=4        # workers per sender
S=20       # series per request
K=5        # samples per series per request
STEP=100   # ms between timestamps
ROUNDS=${ROUNDS:-5}
BASE=$(($(now_ms) - 3 * 3600 * 1000))

VM_PORT=$(free_port)
RELAY_PORT=$(free_port)
URL=http://127.0.0.1:$RELAY_PORT/api/v1/write
start_vm "$T/vm" "$VM_PORT" || { fail setup "victoria-metrics did not start"; exit 1; }
write_conf "$T/relay.conf"
start_relay "$T/relay.conf" || { fail setup "relay did not become ready"; exit 1; }

# worker PREFIX W: sends requests W, W+4, W+8, ... until $T/stop exists.
worker() {
	local p=$1 w=$2 n=0 r out
	while [ ! -e "$T/stop" ]; do
		r=$((n * W + w))
		n=$((n + 1))
		out=$("$RWSEND" "$URL" --series "$S" --samples-per-series "$K" \
			--requests 1 --start-ts $((BASE + r * K * STEP)) --step "$STEP" \
			--name-prefix "$p" --timeout 20 --quiet 2>/dev/null)
		case " $out " in
		*" acked=1 "*) echo "$r" >>"$T/acked.$p" ;;
		*)
			echo "$r" >>"$T/unacked.$p"
			sleep 0.05
			;;
		esac
	done
}

for ((s = 0; s < SENDERS; s++)); do
	: >"$T/acked.cl$s"
	: >"$T/unacked.cl$s"
	for ((w = 0; w < W; w++)); do
		worker "cl$s" "$w" &
		PIDS+=("$!")
		WORKERS+=("$!")
	done
done

count_lines() {
	cat "$@" 2>/dev/null | wc -l
}

for ((round = 1; round <= ROUNDS; round++)); do
	case $round in
	3) stop_vm ;;                       # rounds 3 and 4: upstream down
	5) start_vm "$T/vm" "$VM_PORT" ||   # round 5: back
		{ fail setup "victoria-metrics did not restart"; exit 1; } ;;
	esac
	ms=$((500 + RANDOM % 1501))
	sleep "$((ms / 1000)).$(printf '%03d' $((ms % 1000)))"
	buf=$(metric "$RELAY_PORT" relay_buffer_samples)
	kill9_relay
	note "round $round: killed after ${ms}ms (vm $([ -n "$VM_PID" ] && echo up || echo down)," \
		"buffer ${buf:-?} samples, acked so far $(count_lines "$T"/acked.*)," \
		"not acked $(count_lines "$T"/unacked.*))"
	if ! start_relay "$T/relay.conf"; then
		fail "round $round" "relay did not restart on its store after kill -9"
		exit 1
	fi
done
ok "$ROUNDS rounds of kill -9 and restart under load"
sleep 1
touch "$T/stop"
for pid in "${WORKERS[@]}"; do
	wait "$pid" 2>/dev/null
	_forget_pid "$pid"
done

total=0
for ((s = 0; s < SENDERS; s++)); do
	a=$(count_lines "$T/acked.cl$s")
	u=$(count_lines "$T/unacked.cl$s")
	note "cl$s: $a requests acknowledged, $u not"
	check "cl$s: requests were acknowledged ($a)" [ "$a" -gt 0 ]
	total=$((total + a))
done
check "some requests failed while the relay was down (the kills hit the load)" \
	[ "$(count_lines "$T"/unacked.*)" -gt 0 ]

if wait_until 90 metric_is "$RELAY_PORT" relay_buffer_samples 0; then
	ok "the buffer drains after the last restart"
else
	fail "buffer drains" "relay_buffer_samples=$(metric "$RELAY_PORT" relay_buffer_samples)"
fi

# Every (series, timestamp) of every acknowledged request must be stored.
vm_export "$VM_PORT" '{__name__=~"cl[0-9]+_metric"}' >"$T/export.json"
jq -r '.metric.__name__ as $n | .metric.instance as $i | .timestamps[] |
	"\($n) \($i) \(.)"' "$T/export.json" | sort -u >"$T/present"
for ((s = 0; s < SENDERS; s++)); do
	p=cl$s
	sort -n -u "$T/acked.$p" | awk -v p="$p" -v S="$S" -v K="$K" -v step="$STEP" \
		-v base="$BASE" '{
			for (j = 0; j < S; j++)
				for (k = 0; k < K; k++)
					printf "%s_metric host-%d %.0f\n", p, j, base + ($1 * K + k) * step
		}' | sort -u >"$T/expected.$p"
	want=$(wc -l <"$T/expected.$p")
	found=$(grep -c "^${p}_metric " "$T/present")
	missing=$(comm -23 "$T/expected.$p" "$T/present" | wc -l)
	check "$p: distinct samples in victoria-metrics ($found) >= samples acknowledged ($want)" \
		[ "$found" -ge "$want" ]
	if [ "$missing" = 0 ]; then
		ok "$p: every acknowledged (series, timestamp) is in victoria-metrics"
	else
		fail "$p: acknowledged samples lost" "$missing of $want missing, e.g. $(comm -23 "$T/expected.$p" "$T/present" | head -n 3 | tr '\n' ';')"
	fi
done
rows=$(jq -s '[.[].timestamps | length] | add // 0' "$T/export.json")
note "stored rows $rows for $(wc -l <"$T/present") distinct samples (duplicates from at-least-once delivery: $((rows - $(wc -l <"$T/present"))))"
check "the relay is up after the last restart" kill -0 "$RELAY_PID"
