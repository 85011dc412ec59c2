#!/usr/bin/env bash
# t_full.sh - a full buffer pushes back with 503 and Retry-After (never a
# silent loss): upstream is down, the store is 1MiB; once upstream is back
# every acknowledged sample arrives and the relay takes writes again.
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/../lib.sh"
require_relay

VM_PORT=$(free_port)
RELAY_PORT=$(free_port)
write_conf "$T/relay.conf" storage.max_size=1MiB
start_relay "$T/relay.conf" || { fail setup "relay did not become ready"; exit 1; }
URL=http://127.0.0.1:$RELAY_PORT/api/v1/write

# At most 400 requests of 200 series x 5 samples: far more than 1MiB holds.
sum=$(rwsend "$URL" --series 200 --samples-per-series 5 --requests 400 \
	--name-prefix fu --quiet)
note "$sum"
acked=$(field "$sum" samples_acked)
s5=$(field "$sum" status_5xx)
check "a full buffer answers 503 ($s5 of 400 requests)" [ "${s5:-0}" -gt 0 ]
check "nothing else was refused ($sum)" \
	[ "$(field "$sum" status_4xx)$(field "$sum" errors)" = 00 ]
check "some requests were taken before it filled ($acked samples)" [ "${acked:-0}" -gt 0 ]

# The 503 carries Retry-After.
rwsend --emit "$T/one.bin" --series 200 --samples-per-series 5 \
	--name-prefix fx --start-ts "$(($(now_ms) - 7200000))"
code=$(curl -s -D "$T/headers" -o "$T/resp" -w '%{http_code}' --max-time 30 \
	-H 'Expect:' -H 'Content-Type: application/x-protobuf' \
	-H 'Content-Encoding: snappy' --data-binary "@$T/one.bin" "$URL")
check "still full: 503 (got $code)" [ "$code" = 503 ]
ra=$(sed -n 's/^[Rr]etry-[Aa]fter:[[:space:]]*\([0-9]*\).*/\1/p' "$T/headers")
check "the 503 has a Retry-After header in seconds (${ra:-none})" [ -n "$ra" ]
check "relay_requests_total{code=\"503\"} > 0" \
	metric_ge "$RELAY_PORT" relay_requests_total 1 'code="503"'
check "/-/healthy still answers 200" \
	[ "$(http_code "http://127.0.0.1:$RELAY_PORT/-/healthy")" = 200 ]

# Upstream comes back: everything acknowledged arrives, room is made.
start_vm "$T/vm" "$VM_PORT" || { fail setup "victoria-metrics did not start"; exit 1; }
SEL='{__name__="fu_metric"}'
if wait_until "$WAIT_CAP" vm_has "$VM_PORT" "$SEL" "$acked"; then
	ok "all $acked acknowledged samples arrived"
else
	fail "acknowledged samples arrived" "found $(vm_count_distinct "$VM_PORT" "$SEL") of $acked"
fi
if wait_until "$WAIT_CAP" metric_is "$RELAY_PORT" relay_buffer_entries 0; then
	ok "the buffer empties"
else
	fail "buffer empties" "relay_buffer_entries=$(metric "$RELAY_PORT" relay_buffer_entries)"
fi
code=$(http_code "$URL" -H 'Expect:' -H 'Content-Type: application/x-protobuf' \
	-H 'Content-Encoding: snappy' --data-binary "@$T/one.bin")
check "writes are taken again: 204 (got $code)" [ "$code" = 204 ]
if wait_until "$WAIT_CAP" vm_has "$VM_PORT" '{__name__="fx_metric"}' 1000; then
	ok "and they arrive"
else
	fail "write after drain arrived" "found $(vm_count_distinct "$VM_PORT" '{__name__="fx_metric"}') of 1000"
fi
