#!/usr/bin/env bash
# t_series_window.sh - a reload that lengthens a tenant's max_series_window:
# its series records were written with the old window (and are expired on
# disk by it), so each series seen again is written again with the new one
# and a restart still counts it. Tenant acme: max_series = 2, window 3s; 2
# series stored; reload to a window of 1h; the same 2 series sent again; 5 s
# later (past the old window, a commit round expires records) a restart; a
# 3rd series must still be refused (2 series within the hour).
. "$(dirname "$0")/../lib.sh"
require_relay

VM_PORT=$(free_port)
RELAY_PORT=$(free_port)
start_vm "$T/vm" "$VM_PORT" || { fail setup "victoria-metrics did not start"; exit 1; }
conf() {
	write_conf "$T/relay.conf" \
		"tenant acme.token=acme-tok" \
		"tenant acme.max_series=2" \
		"tenant acme.max_series_window=$1" \
		"tenant other.token=other-tok"
}
conf 3s
start_relay "$T/relay.conf" || { fail setup "relay did not become ready"; exit 1; }
URL=http://127.0.0.1:$RELAY_PORT/api/v1/write
T0=$(($(now_ms) - 600 * 1000))
send() { # TOKEN PREFIX SERIES [TS]
	rwsend "$URL" --token "$1" --requests 1 --series "$3" \
		--samples-per-series 1 --name-prefix "$2" --start-ts "${4:-$T0}"
}
reloads() { grep -c 'msg="configuration reloaded"' "$RELAY_LOG"; }
reloaded() { [ "$(reloads)" -gt "$1" ]; }
s1=$(send acme-tok w_a 2)
check "2 series of acme stored" [ "$(field "$s1" status_2xx)" = 1 ]
conf 1h
r0=$(reloads)
kill -HUP "$RELAY_PID"
check "reload to a 1h window applied" wait_until "$WAIT_CAP" reloaded "$r0"
s2=$(send acme-tok w_a 2 $((T0 + 15000)))   # the same 2 series, a scrape later
s3=$(send acme-tok w_new 1)
check "before the restart: a 3rd series is refused ($s3)" [ "$(field "$s3" status_4xx)" = 1 ]
sleep 5
send other-tok w_o 1 >/dev/null   # a commit round: expires records
stop_relay
start_relay "$T/relay.conf" || { fail setup "relay did not restart"; exit 1; }
s4=$(send acme-tok w_new2 1)
note "after the restart: $s4"
check "after a restart: acme's 2 series seen within the hour still count, a 3rd refused ($s4)" \
	[ "$(field "$s4" status_4xx)" = 1 ]
