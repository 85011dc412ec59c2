#!/usr/bin/env bash
# t_gate_wait.sh - a lane whose upstream is down gives its forwarder thread
# back while it waits for the upstream's next probe: the tenants of another
# upstream keep being delivered. One forwarder thread; tenants d1 and d2
# go to a closed port (their account_id is the port), tenant a to
# VictoriaMetrics. The backoff is an hour, so the down upstream's next
# probe is half an hour away or more: a request that waited for it on the
# one thread would hold every tenant's delivery that long.
. "$(dirname "$0")/../lib.sh"
require_relay

PA=$(free_port)
PD=$(free_port)
RELAY_PORT=$(free_port)
start_vm "$T/vma" "$PA" || { fail setup "victoria-metrics did not start"; exit 1; }

write_conf "$T/relay.conf" \
	"upstream.url=http://127.0.0.1:{account_id}/api/v1/write" \
	"upstream.concurrency=1" \
	"upstream.min_backoff=1h" "upstream.max_backoff=1h" \
	"tenant a.token=tok-a" "tenant a.account_id=$PA" \
	"tenant d1.token=tok-d1" "tenant d1.account_id=$PD" \
	"tenant d2.token=tok-d2" "tenant d2.account_id=$PD"
start_relay "$T/relay.conf" || { fail setup "relay did not become ready"; exit 1; }
URL=http://127.0.0.1:$RELAY_PORT/api/v1/write

# send TENANT PREFIX: 5 requests of 20 series x 1 sample, one at a time;
# prints the acknowledged samples.
send() {
	local out
	out=$(rwsend "$URL" --token "tok-$1" --series 20 --samples-per-series 1 \
		--requests 5 --name-prefix "$2" --concurrency 1)
	note "$1 $2: $out" >&2
	field "$out" samples_acked
}

# The down upstream: d1's first request fails, its gate goes down.
n=$(send d1 da)
check "d1: 100 samples acknowledged" [ "$n" = 100 ]
check "the closed port's upstream is counted down" \
	wait_until "$WAIT_CAP" metric_is "$RELAY_PORT" relay_upstream_outages_total 1
# d2's lanes now wait for that upstream's next probe.
n=$(send d2 db)
check "d2: 100 samples acknowledged" [ "$n" = 100 ]

# a's upstream is up: every round arrives while d1 and d2 wait.
for round in 1 2 3; do
	n=$(send a "a$round")
	check "round $round: a's 100 samples acknowledged" [ "$n" = 100 ]
	if wait_until "$WAIT_CAP" vm_has "$PA" "{__name__=\"a${round}_metric\",tenant=\"a\"}" 100; then
		ok "round $round: a's samples arrived while the other upstream is down"
	else
		fail "round $round: a's samples" \
			"found $(vm_count_distinct "$PA" "{__name__=\"a${round}_metric\"}") of 100"
	fi
done
check "d1's and d2's samples wait in the buffer" \
	metric_is "$RELAY_PORT" relay_tenant_buffer_samples 200 'tenant="d'
check "the down upstream got no probe meanwhile" \
	metric_is "$RELAY_PORT" relay_upstream_probes_total 0
check "the relay stops promptly with lanes deferred" stop_relay
