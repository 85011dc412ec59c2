#!/usr/bin/env bash
# t_catchup_order.sh - catch-up after an outage keeps every series in order
# while it drains in parallel, into an upstream that refuses out-of-order
# samples: a real Prometheus 2.42 remote-write receiver.
#
# The upstream is down while 8 shard-like senders (disjoint series per
# connection, each waiting for its answer before the next request, each
# series one sample per request with increasing timestamps) build a
# backlog. Then Prometheus comes up and the relay drains the backlog:
#   A. with the shipped delivery defaults; the relay gets a SIGTERM in the
#      middle of the catch-up and is started again;
#   B. with every lane of the tenant in flight (inflight_per_tenant = 8,
#      concurrency = 8), which without delivery lanes would reorder a
#      series' samples; the relay is killed with SIGKILL in the middle of
#      the catch-up and started again.
# After each: Prometheus refused no request (its own counter of answers to
# /api/v1/write, which outlives the relay's restarts, and its log), nothing
# is set aside, and every sample acknowledged to a sender is in Prometheus.
# A SIGKILL can cut a request's body in the middle of its upload;
# Prometheus answers the rest of it 400 ("Error decoding remote write
# request", in its log) to no one. Those are not refusals of what the relay
# sent: B subtracts them, at most one per lane in flight (8), and A (a
# clean stop) must have none.
#
# Why B sets max_request_size = 64KiB: after a SIGKILL the relay sends
# again the request that was in flight (its delivery was not recorded).
# Prometheus takes a sample again only as an exact duplicate of a series'
# newest one; a merged request holding several samples of a series would be
# refused as out of order when sent again. Each sender request here puts
# about 40 KB into each lane, so with 64KiB requests every upstream request
# holds one sender request's part of one lane: one sample per series, and
# its resend is an exact duplicate, which Prometheus accepts.
#
# No timing assertions: the stops wait for the first recorded deliveries,
# not for a time (the notes say how much was left).
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/../lib.sh"
require_relay
command -v prometheus >/dev/null ||
	{ fail setup "prometheus is not installed (ops/install-deps.sh)"; exit 1; }

PROM_PORT=$(free_port)
RELAY_PORT=$(free_port)
ADMIN=adm-catchup-51c2
UP=http://127.0.0.1:$PROM_PORT/api/v1/write
URL=http://127.0.0.1:$RELAY_PORT/api/v1/write
# Within Prometheus' head block (an hour), in the past.
START=$(($(date +%s) * 1000 - 20 * 60 * 1000))

# A's stop lets the requests in flight finish and records them; that holds
# within shutdown_timeout (5s by default), after which they are abandoned
# and sent again as after a SIGKILL. On a loaded 2-core machine an 8 MiB
# request into Prometheus can take longer, so A gives the stop a minute.
write_conf "$T/a.conf" "upstream.url=$UP" "server.admin_token=$ADMIN" \
	"server.shutdown_timeout=60s"
write_conf "$T/b.conf" "upstream.url=$UP" "server.admin_token=$ADMIN" \
	"upstream.inflight_per_tenant=8" "upstream.concurrency=8" \
	"upstream.max_request_size=64KiB"

# senders PREFIX SERIES REQUESTS: 8 senders at once, sender i with SERIES
# series of its own (PREFIXi_metric), REQUESTS requests one after the
# other, one sample per series each, 1 s apart. Prints the samples the
# relay acknowledged; returns 1 unless every request got a 2xx.
senders() {
	local prefix=$1 series=$2 requests=$3 i rc=0 sum=0 line
	local -a pids=()
	for i in 0 1 2 3 4 5 6 7; do
		rwsend "$URL" --series "$series" --requests "$requests" \
			--concurrency 1 --start-ts "$START" --step 1000 \
			--name-prefix "$prefix$i" --quiet >"$T/send.$prefix.$i" &
		pids+=("$!")
	done
	for i in "${pids[@]}"; do
		wait "$i" || rc=1
	done
	for i in 0 1 2 3 4 5 6 7; do
		line=$(cat "$T/send.$prefix.$i")
		sum=$((sum + $(field "$line" samples_acked)))
	done
	echo "$sum"
	return "$rc"
}

# drained_some ACKED: the relay delivered some of the backlog and recorded
# it (the buffer holds less than it took).
drained_some() {
	local v
	v=$(metric "$RELAY_PORT" relay_buffer_samples) || return 1
	[ "$v" -lt "$1" ]
}

# wait_some_drained ACKED: waits (polling often) until the relay recorded
# its first deliveries, so that a stop lands in the middle of the catch-up.
wait_some_drained() {
	local i
	for ((i = 0; i < 3000; i++)); do
		drained_some "$1" && return 0
		sleep 0.02
	done
	return 1
}

# prom_refused: requests Prometheus answered 4xx on /api/v1/write since it
# started (its own /metrics).
prom_refused() {
	curl -s --max-time 10 "http://127.0.0.1:$PROM_PORT/metrics" | awk '
		/^prometheus_http_requests_total\{/ && /handler="\/api\/v1\/write"/ &&
		/code="4/ { s += $2 } END { printf "%.0f\n", s }'
}

# prom_samples PREFIX: samples Prometheus holds of PREFIX's 8 senders
# (one metric name each: count_over_time drops the name).
prom_samples() {
	local i n sum=0
	for i in 0 1 2 3 4 5 6 7; do
		n=$(prom_scalar "$PROM_PORT" "sum(count_over_time($1${i}_metric[1h]))")
		sum=$((sum + n))
	done
	echo "$sum"
}

setaside_len() {
	curl -s --max-time 10 -H "Authorization: Bearer $ADMIN" \
		"http://127.0.0.1:$RELAY_PORT/api/v1/setaside" | jq '.setaside | length'
}

# after PHASE PREFIX ACKED: the checks once a catch-up is over.
after() {
	local phase=$1 prefix=$2 acked=$3 cut_max=$4 have refused ooo cut
	if wait_until 120 metric_is "$RELAY_PORT" relay_buffer_entries 0; then
		ok "$phase: the backlog drains"
	else
		fail "$phase: the backlog drains" \
			"relay_buffer_entries=$(metric "$RELAY_PORT" relay_buffer_entries)"
	fi
	refused=$(prom_refused)
	cut=$(grep -c "Error decoding remote write request" "$PROM_LOG")
	check "$phase: bodies cut by the stop: $cut (at most $cut_max)" \
		[ "$cut" -le "$cut_max" ]
	check "$phase: Prometheus refused no request the relay sent whole (4xx answers: $refused, cut bodies: $cut)" \
		[ "$((refused - cut))" = 0 ]
	ooo=$(grep -c "Out of order sample" "$PROM_LOG")
	check "$phase: Prometheus logged no out-of-order sample ($ooo)" [ "$ooo" = 0 ]
	check "$phase: the relay counts no 400 since its restart" \
		[ "$(metric "$RELAY_PORT" relay_upstream_requests_total 'code="400"' || echo 0)" = 0 ]
	check "$phase: nothing is set aside (list: $(setaside_len))" [ "$(setaside_len)" = 0 ]
	check "$phase: relay_batches_set_aside_total = 0" \
		metric_is "$RELAY_PORT" relay_batches_set_aside_total 0
	have=$(prom_samples "$prefix")
	check "$phase: every acknowledged sample is in Prometheus ($have of $acked)" \
		[ "$have" = "$acked" ]
}

# --- A: shipped defaults, SIGTERM in the middle ------------------------------
start_relay "$T/a.conf" || { fail setup "relay did not become ready"; exit 1; }
acked=$(senders ca 2000 25)
check "A: the 8 senders' requests are all acknowledged ($acked samples)" \
	[ "$acked" = $((8 * 2000 * 25)) ]
check "A: the relay holds them while the upstream is down" \
	metric_is "$RELAY_PORT" relay_buffer_samples "$acked"
start_prom_receiver "$T/prom" "$PROM_PORT" ||
	{ fail setup "prometheus did not start"; exit 1; }
wait_some_drained "$acked" || fail "A: delivery starts" "nothing delivered"
stop_relay
check "A: SIGTERM in the middle of the catch-up: clean exit" [ "$?" = 0 ]
check "A: no request in flight was abandoned at the stop" \
	bash -c "! grep -q 'abandoned at stop' '$RELAY_LOG'"
start_relay "$T/a.conf" || { fail setup "relay did not restart"; exit 1; }
note "A: after the restart $(metric "$RELAY_PORT" relay_buffer_samples) samples were still buffered"
after A ca "$acked" 0
stop_relay

# --- B: all lanes in flight, SIGKILL in the middle ---------------------------
stop_prometheus
start_relay "$T/b.conf" || { fail setup "relay did not become ready"; exit 1; }
acked=$(senders kb 4000 12)
check "B: the 8 senders' requests are all acknowledged ($acked samples)" \
	[ "$acked" = $((8 * 4000 * 12)) ]
start_prom_receiver "$T/prom" "$PROM_PORT" ||
	{ fail setup "prometheus did not restart"; exit 1; }
wait_some_drained "$acked" || fail "B: delivery starts" "nothing delivered"
kill9_relay
start_relay "$T/b.conf" || { fail setup "relay did not restart"; exit 1; }
note "B: after the SIGKILL $(metric "$RELAY_PORT" relay_buffer_samples) samples were still buffered"
after B kb "$acked" 8
check "the relay is up" kill -0 "$RELAY_PID"
