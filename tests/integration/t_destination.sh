#!/usr/bin/env bash
# t_destination.sh - acknowledged data goes where it was accepted for: with
# [upstream] url routing by {account_id} (one VictoriaMetrics, the account
# in an extra_label), data buffered while the upstream is down keeps the
# account its tenant had when it was accepted, across a reload that
# removes one tenant (beta, account 7) and renumbers another (gamma, 9 ->
# 11); gamma's data accepted after the reload goes under 11. Nothing lands
# under another tenant's account (alpha's is 0), and the relay logs and
# counts the data it delivers under ids the configuration has changed.
. "$(dirname "$0")/../lib.sh"
require_relay

VM_PORT=$(free_port)
RELAY_PORT=$(free_port)
URL=http://127.0.0.1:$RELAY_PORT/api/v1/write
TOK_A=alpha-token-5d1e
TOK_B=beta-token-77c0
TOK_G=gamma-token-9a41

# conf GAMMA_ACCOUNT [beta]: the relay's file, with tenant beta if asked.
conf() {
	local -a beta=()
	[ "${2:-}" = beta ] && beta=("tenant beta.token=$TOK_B" "tenant beta.account_id=7")
	write_conf "$T/relay.conf" \
		"upstream.url=http://127.0.0.1:$VM_PORT/api/v1/write?extra_label=acct={account_id}" \
		"tenant alpha.token=$TOK_A" \
		"${beta[@]}" \
		"tenant gamma.token=$TOK_G" \
		"tenant gamma.account_id=$1"
}

# send TOKEN PREFIX: 5 requests of 20 series x 1 sample; prints the
# acknowledged samples.
send() {
	local sum
	sum=$(rwsend "$URL" --token "$1" --series 20 --samples-per-series 1 \
		--requests 5 --name-prefix "$2")
	note "$2: $sum" >&2
	field "$sum" samples_acked
}

# --- the upstream is down: beta's and gamma's data waits in the buffer ----
conf 9 beta
start_relay "$T/relay.conf" || { fail setup "relay did not become ready"; exit 1; }
n=$(send "$TOK_B" db)
check "upstream down: beta's 100 samples acknowledged ($n)" [ "$n" = 100 ]
n=$(send "$TOK_G" dg)
check "upstream down: gamma's 100 samples acknowledged ($n)" [ "$n" = 100 ]
check "upstream down: 200 samples wait in the buffer" \
	metric_is "$RELAY_PORT" relay_buffer_samples 200

# --- beta removed, gamma renumbered 9 -> 11, SIGHUP -------------------------
conf 11
if hup_and_wait "configuration reloaded"; then
	ok "SIGHUP: the new configuration is in force"
else
	fail "SIGHUP reload" "no 'configuration reloaded' line in the log"
fi
n=$(send "$TOK_G" ng)
check "after the reload: gamma's 100 new samples acknowledged ($n)" [ "$n" = 100 ]

# --- the upstream comes up ------------------------------------------------
start_vm "$T/vm" "$VM_PORT" || { fail setup "victoria-metrics did not start"; exit 1; }
for want in db:7 dg:9 ng:11; do
	p=${want%%:*} acct=${want#*:}
	if wait_until "$WAIT_CAP" vm_has "$VM_PORT" "{__name__=\"${p}_metric\",acct=\"$acct\"}" 100; then
		ok "${p}: all 100 samples arrived under account $acct"
	else
		fail "${p} under account $acct" \
			"found $(vm_count_distinct "$VM_PORT" "{__name__=\"${p}_metric\",acct=\"$acct\"}") of 100"
	fi
	n=$(vm_series "$VM_PORT" "{__name__=\"${p}_metric\",acct!=\"$acct\"}")
	check "${p}: no series under another account ($n)" [ "$n" = 0 ]
done
n=$(vm_series "$VM_PORT" '{acct="0"}')
check "nothing landed under alpha's account 0 ($n series)" [ "$n" = 0 ]
check "the buffer empties" \
	wait_until "$WAIT_CAP" metric_is "$RELAY_PORT" relay_buffer_samples 0
check "the 200 samples delivered under their earlier ids are counted" \
	metric_is "$RELAY_PORT" relay_samples_forwarded_kept_destination_total 200
n=$(log_count 'accepted with; the configuration changed them since')
check "delivery under earlier ids is logged ($n lines)" [ "$n" -ge 2 ]
n=$(grep -F 'accepted with; the configuration changed them since' "$RELAY_LOG" |
	grep -cF 'tenant="beta" configured=no account_id="7"')
check "the log names removed tenant beta and its account 7 ($n)" [ "$n" -ge 1 ]

stop_relay
