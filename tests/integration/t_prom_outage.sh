#!/usr/bin/env bash
# t_prom_outage.sh - VictoriaMetrics is stopped for minutes while a real
# Prometheus (2.42, scraping itself every second) writes through the relay:
# the relay keeps answering, Prometheus fails and drops nothing, and once
# VictoriaMetrics is back the buffer drains and its series have no gap:
# from before the outage to after it, no hole longer than 3 scrape intervals.
#
# OUTAGE_S sets the length of the outage (120 s by default).
. "$(dirname "$0")/../lib.sh"
require_relay
command -v prometheus >/dev/null || { fail setup "prometheus is not installed (ops/install-deps.sh)"; exit 1; }

OUTAGE_S=${OUTAGE_S:-120}
INTERVAL_MS=1000
MAX_GAP_MS=$((3 * INTERVAL_MS))

VM_PORT=$(free_port)
RELAY_PORT=$(free_port)
PROM_PORT=$(free_port)
start_vm "$T/vm" "$VM_PORT" || { fail setup "victoria-metrics did not start"; exit 1; }
write_conf "$T/relay.conf"
start_relay "$T/relay.conf" || { fail setup "relay did not become ready"; exit 1; }

start_prometheus "$T/prom" "$PROM_PORT" "$RELAY_PORT"

SELECTORS=('up{job="prometheus"}' 'scrape_duration_seconds{job="prometheus"}'
	'prometheus_tsdb_head_series{job="prometheus"}')

# Data flows before the outage.
if wait_until "$WAIT_CAP" vm_has "$VM_PORT" "${SELECTORS[0]}" 5; then
	ok "before the outage: Prometheus' samples reach victoria-metrics"
else
	fail "before the outage" "up{job=\"prometheus\"} not in victoria-metrics"
	_dump_log "$PROM_LOG" 15
	exit 1
fi

# --- the outage ---------------------------------------------------------------
stop_vm
out_start=$(now_ms)
ok204_0=$(metric "$RELAY_PORT" relay_requests_total 'code="204"')
note "victoria-metrics stopped for ${OUTAGE_S}s"
deadline=$((SECONDS + OUTAGE_S))
maxbuf=0
while [ "$SECONDS" -lt "$deadline" ]; do
	sleep 5
	b=$(metric "$RELAY_PORT" relay_buffer_samples)
	[ "${b:-0}" -gt "$maxbuf" ] && maxbuf=$b
done
ok204_1=$(metric "$RELAY_PORT" relay_requests_total 'code="204"')
note "during the outage: $((ok204_1 - ok204_0)) requests answered 204, buffer up to $maxbuf samples"
check "during the outage the relay answers Prometheus with 204 ($((ok204_1 - ok204_0)) requests)" \
	[ $((ok204_1 - ok204_0)) -ge $((OUTAGE_S / 2)) ]
check "during the outage the buffer grows ($maxbuf samples)" [ "$maxbuf" -gt 0 ]
other=$(curl -s --max-time 10 "http://127.0.0.1:$RELAY_PORT/metrics" |
	awk '/^relay_requests_total\{/ && !/code="204"/ { s += $2 } END { printf "%.0f", s }')
check "the relay answered no request with anything but 204 (others: $other)" [ "${other:-0}" = 0 ]

# --- back ---------------------------------------------------------------------
start_vm "$T/vm" "$VM_PORT" || { fail setup "victoria-metrics did not restart"; exit 1; }
out_end=$(now_ms)
if wait_until 180 metric_is "$RELAY_PORT" relay_buffer_samples 0; then
	ok "after the outage the buffer drains"
else
	fail "buffer drains" "relay_buffer_samples=$(metric "$RELAY_PORT" relay_buffer_samples)"
fi
# A few more scrapes after the drain, and time for them to get through.
sleep 5
wait_until 60 metric_is "$RELAY_PORT" relay_buffer_samples 0

# --- no gap -------------------------------------------------------------------
for sel in "${SELECTORS[@]}"; do
	vm_export "$VM_PORT" "$sel" >"$T/series.json"
	read -r n first last gap at < <(jq -s -r '
		[.[].timestamps[]] | unique as $t
		| if ($t | length) < 2 then "\($t | length) 0 0 0 0" else
		  [range(1; $t | length) | {gap: ($t[.] - $t[. - 1]), at: $t[. - 1]}]
		  | max_by(.gap) as $m
		  | "\($t | length) \($t[0]) \($t[-1]) \($m.gap) \($m.at)" end' "$T/series.json")
	note "$sel: $n samples from $first to $last, longest gap ${gap}ms at $at" \
		"(outage $out_start..$out_end)"
	span=no
	[ "$first" -lt "$out_start" ] && [ "$last" -gt "$out_end" ] && span=yes
	check "$sel: stored samples span the whole outage" [ "$span" = yes ]
	nogap=no
	[ "$n" -gt 1 ] && [ "$gap" -le "$MAX_GAP_MS" ] && nogap=yes
	check "$sel: no gap longer than ${MAX_GAP_MS}ms (longest ${gap}ms)" [ "$nogap" = yes ]
done

# --- Prometheus' own view -----------------------------------------------------
P=$PROM_PORT
for m in prometheus_remote_storage_samples_failed_total \
	prometheus_remote_storage_samples_dropped_total; do
	v=$(metric "$P" "$m")
	check "Prometheus: $m = 0 (is ${v:-absent})" [ "${v:-0}" = 0 ]
done
note "Prometheus: samples sent $(metric "$P" prometheus_remote_storage_samples_total)," \
	"retried $(metric "$P" prometheus_remote_storage_samples_retried_total)"
check "the relay is up" kill -0 "$RELAY_PID"
