#!/usr/bin/env bash
# t_ha_limits.sh - an HA pair under its tenant's limits: what the replica
# that is not elected sends (answered 2xx, never stored) takes nothing of
# the tenant's limits.
# 1. max_samples_per_second = 5: replica a sends 4 samples (elected), b
#    the same 4 (deduplicated), a 4 more at once: all 2xx, nothing
#    billed as refused for the rate (b's tokens went back).
# 2. max_series = 4: a stores 3 series, b sends 2 series of its own
#    (deduplicated), then a's 4th series is taken (3 stored of 4).
# 3. max_series = 4, series seen first in b's request: b sends 3 series, a
#    the same 3 a moment later (stored, 1 + 3 = 4); a 5th is refused, and
#    still is after a restart (a's request noted the series on disk).
# 4. max_series = 2, a holds 1: b sends 3 series, 2 of them over the
#    limit: deduplicated (2xx), and all 3 of its samples are billed as
#    deduplicated, none refused and none left uncounted.
. "$(dirname "$0")/../lib.sh"
require_relay

VM_PORT=$(free_port)
RELAY_PORT=$(free_port)
start_vm "$T/vm" "$VM_PORT" || { fail setup "victoria-metrics did not start"; exit 1; }
ADMIN=adm-ha-limits
write_conf "$T/relay.conf" \
	"server.admin_token=$ADMIN" \
	"tenancy.ha_cluster_label=cluster" \
	"tenant acme.token=acme-tok" \
	"tenant acme.max_samples_per_second=5" \
	"tenant series.token=series-tok" \
	"tenant series.max_series=4" \
	"tenant beta.token=beta-tok" \
	"tenant beta.max_series=4" \
	"tenant gamma.token=gamma-tok" \
	"tenant gamma.max_series=2"
start_relay "$T/relay.conf" || { fail setup "relay did not become ready"; exit 1; }
BASE=http://127.0.0.1:$RELAY_PORT
URL=$BASE/api/v1/write
T0=$(($(now_ms) - 600 * 1000))
# send TOKEN PREFIX SERIES TS REPLICA
send() {
	rwsend "$URL" --token "$1" --requests 1 --series "$3" \
		--samples-per-series 1 --name-prefix "$2" --start-ts "$4" \
		--label cluster=eu-1 --label "__replica__=$5"
}

# --- 1. the rate ------------------------------------------------------------
s1=$(send acme-tok rate_a 4 "$T0" a)
s2=$(send acme-tok rate_a 4 "$T0" b)
s3=$(send acme-tok rate_a2 4 $((T0 + 1000)) a)
note "rate: a $s1 | b $s2 | a $s3"
check "rate: replica a's first request answered 2xx" [ "$(field "$s1" status_2xx)" = 1 ]
check "rate: replica b's request (deduplicated) answered 2xx" [ "$(field "$s2" status_2xx)" = 1 ]
check "rate: replica a's second request answered 2xx, within 5 samples/s ($s3)" \
	[ "$(field "$s3" status_2xx)" = 1 ]
U=$(usage_json "$BASE" "$ADMIN" "tenant=acme")
v=$(usage_sum "$U" acme samples_refused_rate_limited)
check "rate: no sample billed as refused for the rate (is ${v:-0})" [ "${v:-0}" = 0 ]
v=$(usage_sum "$U" acme samples)
check "rate: replica a's 8 samples stored and billed (is ${v:-0})" [ "${v:-0}" = 8 ]

# --- 2. max_series, the other replica's own series ----------------------------
s1=$(send series-tok leader 3 "$T0" a)
s2=$(send series-tok follower_own 2 "$T0" b)
s3=$(send series-tok leader_new 1 "$T0" a)
note "series: a $s1 | b $s2 | a $s3"
check "series: replica a's 3 series stored" [ "$(field "$s1" status_2xx)" = 1 ]
check "series: replica b's 2 series deduplicated (2xx)" [ "$(field "$s2" status_2xx)" = 1 ]
check "series: replica a's 4th series taken, 3 stored of max_series 4 ($s3)" \
	[ "$(field "$s3" status_2xx)" = 1 ]

# --- 3. max_series, series seen first in the other replica's request --------
b0=$(send beta-tok beta_lead 1 "$T0" a)   # elects a for beta: 1 series
b1=$(send beta-tok beta_s 3 "$T0" b)      # b first: deduplicated
b2=$(send beta-tok beta_s 3 "$T0" a)      # a: the same 3, stored (4)
check "beta: replica a's 1 + 3 series stored" \
	[ "$(field "$b0" status_2xx)$(field "$b1" status_2xx)$(field "$b2" status_2xx)" = 111 ]
b3=$(send beta-tok beta_over 1 "$T0" a)
check "beta: at max_series, a 5th series refused ($b3)" [ "$(field "$b3" status_4xx)" = 1 ]
stop_relay
start_relay "$T/relay.conf" || { fail setup "relay did not restart"; exit 1; }
b4=$(send beta-tok beta_after 3 "$T0" a)
check "beta: after a restart still at max_series, 3 new series refused ($b4)" \
	[ "$(field "$b4" status_4xx)" = 1 ]

# --- 4. the other replica's series over max_series ---------------------------
g0=$(send gamma-tok gamma_lead 1 "$T0" a)   # elects a: 1 series of 2
g1=$(send gamma-tok gamma_b 3 "$T0" b)      # 1 within the limit, 2 over
note "gamma: a $g0 | b $g1"
check "gamma: replica b's request, 2 of its series over max_series, deduplicated (2xx)" \
	[ "$(field "$g1" status_2xx)" = 1 ]
U=$(usage_json "$BASE" "$ADMIN" "tenant=gamma")
v=$(usage_sum "$U" gamma samples_deduplicated)
check "gamma: all 3 of b's samples billed as deduplicated (is ${v:-0})" [ "${v:-0}" = 3 ]
v=$(usage_sum "$U" gamma samples_refused_series_limit)
check "gamma: none billed as refused (is ${v:-0})" [ "${v:-0}" = 0 ]
v=$(usage_sum "$U" gamma samples)
check "gamma: replica a's 1 sample stored and billed (is ${v:-0})" [ "${v:-0}" = 1 ]
