#!/usr/bin/env bash
# t_prealloc.sh - zeros ahead of the store: while the buffer grows (upstream
# down), data.mdb becomes longer than the data in it; a clean stop cuts it
# back to the data; the relay then starts on it and delivers every
# acknowledged sample. With preallocate = 0 the file stays at the data.
. "$(dirname "$0")/../lib.sh"
require_relay

VM_PORT=$(free_port)
RELAY_PORT=$(free_port)
URL=http://127.0.0.1:$RELAY_PORT/api/v1/write
FILE=$T/data/data.mdb

# fill PREFIX: 200 requests of 1000 series x 10 samples, about 11 MB stored.
fill() {
	rwsend "$URL" --series 1000 --samples-per-series 10 --requests 200 \
		--name-prefix "$1" --concurrency 2 --quiet
}

size() { stat -c %s "$FILE"; }

# The margin is a quarter of the data rounded down to whole MiB: 2 MiB
# here, refilled once under half. So the file ends up at least 1 MiB past
# what a clean stop leaves.
grown_past() { [ "$(size)" -ge $(($1 + 1048576)) ]; }

write_conf "$T/relay.conf"
start_relay "$T/relay.conf" || { fail setup "relay did not become ready"; exit 1; }
sum=$(fill pa)
acked=$(field "$sum" samples_acked)
check "upstream down: 200 requests acknowledged ($sum)" [ "$(field "$sum" acked)" = 200 ]
used=$(metric "$RELAY_PORT" relay_storage_used_bytes)
used=${used%.*}
wait_until 30 grown_past "$used"
running=$(size)
stop_relay
stopped=$(size)
note "data.mdb: $running bytes running, $stopped after a clean stop; LMDB pages in use $used"
check "while running, zeros lie past the data ($running >= $stopped + 1 MiB)" \
	[ "$running" -ge $((stopped + 1048576)) ]
check "a clean stop leaves no more than the data ($stopped < $used + 1 MiB)" \
	[ "$stopped" -lt $((used + 1048576)) ]

start_vm "$T/vm" "$VM_PORT" || { fail setup "victoria-metrics did not start"; exit 1; }
start_relay "$T/relay.conf" || { fail setup "relay did not restart"; exit 1; }
wait_until 120 metric_is "$RELAY_PORT" relay_buffer_samples 0 ||
	fail "drain" "relay_buffer_samples=$(metric "$RELAY_PORT" relay_buffer_samples)"
n=$(vm_count_distinct "$VM_PORT" '{__name__="pa_metric"}')
check "after the restart all $acked acknowledged samples are in victoria-metrics (${n:-0})" \
	[ "${n:-0}" -ge "$acked" ]
# The drain reuses the pages it frees (LMDB adds a few while readers hold
# the newest): no zeros are written ahead (2 MiB here).
drained=$(size)
check "a restart that only drains writes no zeros ahead ($drained < $stopped + 1 MiB)" \
	[ "$drained" -lt $((stopped + 1048576)) ]
stop_relay

# Off: with the upstream down again, the file is the data and no more.
rm -rf "$T/data"
stop_vm
write_conf "$T/off.conf" storage.preallocate=0
start_relay "$T/off.conf" || { fail setup "relay did not start with preallocate = 0"; exit 1; }
sum=$(fill pb)
check "preallocate = 0: 200 requests acknowledged ($sum)" [ "$(field "$sum" acked)" = 200 ]
running=$(size)
stop_relay
check "preallocate = 0: a clean stop leaves the file as it ran ($running = $(size))" \
	[ "$running" = "$(size)" ]
