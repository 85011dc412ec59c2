#!/usr/bin/env bash
# t_prometheus.sh - a real Prometheus (the Debian package, 2.42) scrapes
# itself every second and remote-writes to the relay; its samples, and the
# metadata requests it sends along, get through to VictoriaMetrics.
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/../lib.sh"
require_relay
command -v prometheus >/dev/null || { fail setup "prometheus is not installed (ops/install-deps.sh)"; exit 1; }

VM_PORT=$(free_port)
RELAY_PORT=$(free_port)
PROM_PORT=$(free_port)
start_vm "$T/vm" "$VM_PORT" || { fail setup "victoria-metrics did not start"; exit 1; }
write_conf "$T/relay.conf"
start_relay "$T/relay.conf" || { fail setup "relay did not become ready"; exit 1; }

start_prometheus "$T/prom" "$PROM_PORT" "$RELAY_PORT" '    metadata_config:
      send_interval: 2s'

SEL='up{job="prometheus"}'
if wait_until "$WAIT_CAP" vm_has "$VM_PORT" "$SEL" 1; then
	ok "up{job=\"prometheus\"} reached victoria-metrics through the relay"
else
	fail "up{job=\"prometheus\"} in victoria-metrics" "not found within ${WAIT_CAP}s"
	_dump_log "$PROM_LOG" 15
fi
if wait_until "$WAIT_CAP" metric_ge "$RELAY_PORT" relay_requests_total 3 'code="204"'; then
	ok "the relay answered Prometheus with 204"
else
	fail "relay answered 204" "relay_requests_total{code=\"204\"}=$(metric "$RELAY_PORT" relay_requests_total 'code="204"')"
fi
P=$PROM_PORT
if wait_until "$WAIT_CAP" metric_ge "$P" prometheus_remote_storage_metadata_total 1; then
	ok "Prometheus sent metadata"
else
	fail "Prometheus sent metadata" "prometheus_remote_storage_metadata_total stays 0"
fi
for m in prometheus_remote_storage_samples_failed_total \
	prometheus_remote_storage_metadata_failed_total \
	prometheus_remote_storage_samples_dropped_total; do
	v=$(metric "$P" "$m")
	check "Prometheus: $m = 0 (is ${v:-absent})" [ "${v:-0}" = 0 ]
done
v=$(metric "$P" prometheus_remote_storage_samples_total)
check "Prometheus: prometheus_remote_storage_samples_total > 0 (is ${v:-absent})" [ "${v:-0}" -gt 0 ]
