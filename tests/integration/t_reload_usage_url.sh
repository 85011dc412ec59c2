#!/usr/bin/env bash
# t_reload_usage_url.sh - the usage series and a reload of [upstream] url.
# A url per tenant ({account_id} here) with no [usage] export_tenant gives
# the series no destination: the export pauses. It is judged at every
# export against the url in force, so a reload that makes the url per
# tenant pauses it (it went on to account 0 before), and one that makes
# it plain again resumes it. VictoriaMetrics single-node:
# ?extra_label=acct={account_id} shows the account a request was sent to.
. "$(dirname "$0")/../lib.sh"
require_relay

VM_PORT=$(free_port)
RELAY_PORT=$(free_port)
start_vm "$T/vm" "$VM_PORT" || { fail setup "victoria-metrics did not start"; exit 1; }
CONF=$T/relay.conf
PLAIN="http://127.0.0.1:$VM_PORT/api/v1/write"
PER="http://127.0.0.1:$VM_PORT/api/v1/write?extra_label=acct={account_id}"
conf() {
	write_conf "$CONF" "upstream.url=$1" "usage.export_interval=1s" \
		"usage.instance=relay-rl" "tenant acme.token=acme-rl" \
		"tenant acme.account_id=12"
}
# usage_since MS [LABELS]: samples of the usage series with timestamps
# from MS on, with the given extra label matchers.
usage_since() {
	vm_flush "$VM_PORT"
	curl -s --max-time 60 -G \
		--data-urlencode "match[]={__name__=~\"relay_usage_.*\",relay=\"relay-rl\"${2:-}}" \
		--data-urlencode "start=$(($1 / 1000))" \
		--data-urlencode "end=$(($(date +%s) + 86400))" \
		"http://127.0.0.1:$VM_PORT/api/v1/export" |
		jq -s --argjson t "$1" '[.[].timestamps[] | select(. >= $t)] | length'
}
usage_arrives() {
	[ "$(usage_since "$1" "${2:-}")" -gt 0 ]
}

conf "$PLAIN"
start_relay "$CONF" || { fail setup "relay did not become ready"; exit 1; }
URL=http://127.0.0.1:$RELAY_PORT/api/v1/write
rwsend "$URL" --token acme-rl --series 3 --requests 1 --name-prefix ru_a --quiet >/dev/null
T1=$(now_ms)
check "plain url: the usage series arrive" wait_until "$WAIT_CAP" usage_arrives "$T1"

# The url becomes per tenant: the next export pauses instead of sending.
# (Series exported before it and not yet delivered go under the new url:
# docs/usage.md; so the count starts once it paused.)
conf "$PER"
hup_and_wait "configuration reloaded" || fail reload "no reload line"
check "url per tenant by reload: the export says it pauses" \
	wait_until "$WAIT_CAP" _log_more "usage export paused" 0
T2=$(now_ms)
rwsend "$URL" --token acme-rl --series 3 --requests 1 --name-prefix ru_b --quiet >/dev/null
check "acme's new series go to account 12" \
	wait_until "$WAIT_CAP" vm_is "$VM_PORT" '{__name__="ru_b_metric",acct="12"}' 3
n=$(usage_since "$T2" ',acct="0"')
check "no usage series exported to account 0 after the reload ($n)" [ "$n" = 0 ]

# Plain again: it resumes.
T3=$(now_ms)
conf "$PLAIN"
hup_and_wait "configuration reloaded" || fail reload "no second reload line"
check "plain url again: the export says it resumes" \
	wait_until "$WAIT_CAP" _log_more "usage export resumed" 0
check "and the usage series arrive again" wait_until "$WAIT_CAP" usage_arrives "$T3"

# A start on a per-tenant url says so at once.
conf "$PER"
stop_relay
before=$(log_count 'usage export paused')
start_relay "$CONF" || { fail setup "relay did not restart"; exit 1; }
check "a start with a per-tenant url logs 'usage export paused'" \
	[ "$(log_count 'usage export paused')" -gt "$before" ]
