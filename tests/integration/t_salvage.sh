#!/usr/bin/env bash
# t_salvage.sh - what `relay salvage` carries with the entries, seen from
# outside. With the upstream down, tenant gamma (account 9, HA on) buffers
# 100 samples from replica a of cluster eu-1, which is elected. The relay
# is stopped and its directory salvaged; a relay on the new directory,
# with gamma renumbered to account 11, delivers the 100 samples under
# account 9 (the destination they were accepted under) and none under 11,
# and still has replica a elected: replica b's requests are deduplicated,
# not stored. (That the lanes' cursors are carried, so nothing a lane
# delivered is sent again, is test_salvage.c's: a relay cannot be stopped
# at a chosen lane.)
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/../lib.sh"
require_relay

VM_PORT=$(free_port) # nothing listens there until start_vm
RELAY_PORT=$(free_port)
BASE=http://127.0.0.1:$RELAY_PORT
URL=$BASE/api/v1/write
TOKEN=gamma-salvage-3b7d

# conf FILE ACCOUNT [KEY=VALUE...]: gamma with ACCOUNT, HA on.
conf() {
	local file=$1 account=$2
	shift 2
	write_conf "$file" \
		"upstream.url=http://127.0.0.1:$VM_PORT/api/v1/write?extra_label=acct={account_id}" \
		"tenancy.ha_cluster_label=cluster" \
		"tenant gamma.token=$TOKEN" \
		"tenant gamma.account_id=$account" \
		"tenant gamma.ha_failover_timeout=1h" "$@"
}

# send PREFIX REPLICA START_TS: 5 requests of 4 series x 5 samples.
send() {
	rwsend "$URL" --token "$TOKEN" --requests 5 --series 4 \
		--samples-per-series 5 --name-prefix "$1" --start-ts "$3" \
		--label cluster=eu-1 --label "__replica__=$2"
}

leader() {
	curl -s --max-time 10 "$BASE/metrics" |
		sed -n 's/^relay_ha_elected_replica{tenant="gamma",cluster="eu-1",replica="\([^"]*\)"} 1$/\1/p'
}

leader_is() {
	[ "$(leader)" = "$1" ]
}

T0=$(($(now_ms) - 3600 * 1000))
conf "$T/fill.conf" 9
start_relay "$T/fill.conf" || { fail setup "relay did not become ready"; exit 1; }
s=$(send sal a "$T0")
check "upstream down: replica a's 100 samples acknowledged" [ "$(field "$s" samples_acked)" = 100 ]
check "replica a is elected (is $(leader))" leader_is a
stop_relay

# --max-size is a size as in relay.conf; one it cannot read is refused
"$RELAY_BIN" salvage --from "$T/data" --to "$T/data.bad" --max-size 2Gx \
	>"$T/badsize.out" 2>&1
rc=$?
check "relay salvage --max-size 2Gx: refused with exit 2 ($rc)" [ "$rc" = 2 ]
check "and says why" grep -q 'is not a size' "$T/badsize.out"

# The commands that only open the buffer do not need the relabel rules
# files relay.conf names (a directory is salvaged where it can be read);
# the relay itself still refuses to start without them.
conf "$T/norules.conf" 9 "tenancy.relabel=$T/elsewhere/rules.yml"
"$RELAY_BIN" -n -c "$T/norules.conf" >"$T/norules-n.out" 2>&1
rc=$?
check "relay -n with a missing rules file: refused ($rc)" [ "$rc" != 0 ]
"$RELAY_BIN" salvage -c "$T/norules.conf" --to "$T/data.c" >"$T/salvage-c.out" 2>&1
rc=$?
note "$(tr '\n' ';' <"$T/salvage-c.out")"
check "relay salvage -c, the rules file missing: exit 0 ($rc)" [ "$rc" = 0 ]
check "and it copies the 100 samples" grep -q "^queue: copied=[0-9]* samples=100 " "$T/salvage-c.out"
"$RELAY_BIN" usage -c "$T/norules.conf" >"$T/usage-c.out" 2>&1
rc=$?
check "relay usage -c, the rules file missing: exit 0 ($rc)" [ "$rc" = 0 ]
"$RELAY_BIN" setaside list -c "$T/norules.conf" >"$T/sa-c.out" 2>&1
rc=$?
check "relay setaside list -c, the rules file missing: exit 0 ($rc)" [ "$rc" = 0 ]
"$RELAY_BIN" salvage --from "$T/data" --to "$T/data.new" --max-size 1GiB \
	>"$T/salvage.out" 2>&1
rc=$?
note "$(tr '\n' ';' <"$T/salvage.out")"
check "relay salvage: exit 0 ($rc)" [ "$rc" = 0 ]
check "it copies the 100 samples" grep -q "^queue: copied=[0-9]* samples=100 " "$T/salvage.out"
check "and the destination record" grep -q "^dest: copied=1 " "$T/salvage.out"
check "and the election" grep -q "^ha: copied=1 " "$T/salvage.out"

start_vm "$T/vm" "$VM_PORT" || { fail setup "victoria-metrics did not start"; exit 1; }
conf "$T/new.conf" 11 "storage.path=$T/data.new"
start_relay "$T/new.conf" || { fail setup "relay did not start on the salvaged directory"; exit 1; }
if wait_until "$WAIT_CAP" vm_has "$VM_PORT" '{__name__="sal_metric",acct="9"}' 100; then
	ok "the 100 salvaged samples arrive under account 9, as accepted"
else
	fail "salvaged samples under account 9" \
		"found $(vm_count "$VM_PORT" '{__name__="sal_metric",acct="9"}'), under 11: $(vm_count "$VM_PORT" '{__name__="sal_metric",acct="11"}')"
fi
n=$(vm_series "$VM_PORT" '{__name__="sal_metric",acct!="9"}')
check "none under another account ($n series)" [ "$n" = 0 ]
check "counted as delivered under earlier ids" \
	wait_until "$WAIT_CAP" metric_is "$RELAY_PORT" relay_samples_forwarded_kept_destination_total 100

check "replica a is still elected after the salvage (is $(leader))" leader_is a
s=$(send salb b $((T0 + 100000)))
check "replica b: answered 2xx ($s)" [ "$(field "$s" status_2xx)" = 5 ]
v=$(metric "$RELAY_PORT" relay_ha_deduplicated_samples_total 'tenant="gamma"')
check "replica b's 100 samples deduplicated, not stored (is ${v:-absent})" [ "${v:-0}" = 100 ]
check "replica a stays elected (is $(leader))" leader_is a
n=$(vm_count "$VM_PORT" '{__name__="salb_metric"}')
check "nothing of replica b upstream ($n)" [ "$n" = 0 ]
stop_relay
stop_vm
