#!/usr/bin/env bash
# t_kill9.sh - an acknowledged sample survives kill -9: the relay acks
# while VictoriaMetrics is down, is killed right after the last ack, and on
# restart on the same store forwards everything. A second round kills it
# while it is forwarding (at least once: nothing may be missing).
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/../lib.sh"
require_relay

VM_PORT=$(free_port)
RELAY_PORT=$(free_port)
write_conf "$T/relay.conf"
URL=http://127.0.0.1:$RELAY_PORT/api/v1/write

# Round 1: upstream down the whole time the first relay lives.
start_relay "$T/relay.conf" || { fail setup "relay did not become ready"; exit 1; }
sum=$(rwsend "$URL" --series 200 --samples-per-series 2 --requests 30 \
	--name-prefix ka --concurrency 4)
kill9_relay
note "$sum"
acked=$(field "$sum" samples_acked)
check "round 1: 12000 samples acknowledged before kill -9" [ "$acked" = 12000 ]

start_vm "$T/vm" "$VM_PORT" || { fail setup "victoria-metrics did not start"; exit 1; }
start_relay "$T/relay.conf" || { fail "round 1 restart" "relay did not become ready on the old store"; exit 1; }
SEL='{__name__="ka_metric"}'
if wait_until "$WAIT_CAP" vm_has "$VM_PORT" "$SEL" "$acked"; then
	ok "round 1: every acknowledged sample arrived after kill -9 and restart"
else
	fail "round 1 arrived" "found $(vm_count_distinct "$VM_PORT" "$SEL") of $acked"
fi
n=$(vm_count "$VM_PORT" "$SEL")
check "round 1: nothing arrived twice ($n of $acked)" [ "$n" = "$acked" ]

# Round 2: upstream up, killed while forwarding; restarted at once.
sum=$(rwsend "$URL" --series 200 --samples-per-series 2 --requests 30 \
	--name-prefix kb --concurrency 4)
kill9_relay
note "$sum"
acked=$(field "$sum" samples_acked)
check "round 2: 12000 samples acknowledged before kill -9" [ "$acked" = 12000 ]
start_relay "$T/relay.conf" || { fail "round 2 restart" "relay did not become ready on the old store"; exit 1; }
SEL='{__name__="kb_metric"}'
if wait_until "$WAIT_CAP" vm_has "$VM_PORT" "$SEL" "$acked"; then
	ok "round 2: every acknowledged sample arrived (at least once)"
else
	fail "round 2 arrived" "found $(vm_count_distinct "$VM_PORT" "$SEL") of $acked"
fi
if wait_until "$WAIT_CAP" metric_is "$RELAY_PORT" relay_buffer_entries 0; then
	ok "the buffer empties after the restarts"
else
	fail "buffer empties" "relay_buffer_entries=$(metric "$RELAY_PORT" relay_buffer_entries)"
fi
