#!/usr/bin/env bash
# t_rules.sh - the alerting rules in ops/ load in a real vmalert, and the
# relay's alerts fire when their condition is made true.
#
# The monitoring path does not go through the relay: a VictoriaMetrics of its
# own ("mon") scrapes the relay's /metrics every second (its -promscrape.config)
# and vmalert evaluates the rules against it, as docs/operations.md advises
# for RelayDown. The relay forwards to another VictoriaMetrics (the
# upstream) that the test stops; a Prometheus writes through the relay all
# along, with tenant acme's token.
#
# vmalert loads ops/exporters-rules.yml as it is. It loads a test copy of
# ops/relay-rules.yml rewritten to fit in seconds: every "for:" becomes 2s,
# every range ([5m], [15m], [1h]) becomes [20s] (longer than a few scrapes,
# shorter than a test should wait), and RelayBacklogOld's 900 s age
# threshold becomes 5 s. Expressions, labels and selectors are the file's.
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/../lib.sh"
require_relay

RELAY_RULES=$REPO/ops/relay-rules.yml
EXP_RULES=$REPO/ops/exporters-rules.yml
TOKEN=acme-token-rules

for f in "$RELAY_RULES" "$EXP_RULES"; do
	if out=$(promtool check rules "$f" 2>&1); then
		ok "promtool accepts ${f#"$REPO"/}"
	else
		fail "promtool accepts ${f#"$REPO"/}" "$(echo "$out" | tr '\n' ' ')"
	fi
done

sed -E -e 's/^([[:space:]]*for:[[:space:]]*).*/\12s/' \
	-e 's/\[[0-9]+[smhd]\]/[20s]/g' \
	-e 's/(relay_buffer_oldest_age_seconds\{[^}]*\}) > 900/\1 > 5/' \
	"$RELAY_RULES" >"$T/relay-rules.yml"
grep -q 'relay_buffer_oldest_age_seconds{job="relay"} > 5' "$T/relay-rules.yml" ||
	fail "test copy of the rules" "RelayBacklogOld's threshold was not rewritten"

RELAY_PORT=$(free_port)
MON_PORT=$(free_port)
UP_PORT=$(free_port)
PROM_PORT=$(free_port)
VMALERT_PORT=$(free_port)
NOTIFY_PORT=$(free_port)

cat >"$T/scrape.yml" <<YML
scrape_configs:
  - job_name: relay
    scrape_interval: 1s
    static_configs:
      - targets: ['127.0.0.1:$RELAY_PORT']
YML
start_vm "$T/mon" "$MON_PORT" -promscrape.config="$T/scrape.yml" ||
	{ fail setup "monitoring VictoriaMetrics did not start"; exit 1; }
# Started last: stop_vm stops the upstream.
start_vm "$T/up" "$UP_PORT" || { fail setup "upstream VictoriaMetrics did not start"; exit 1; }
write_conf "$T/relay.conf" "tenant acme.token=$TOKEN"
start_relay "$T/relay.conf" || { fail setup "relay did not become ready"; exit 1; }
start_prometheus "$T/prom" "$PROM_PORT" "$RELAY_PORT" "    bearer_token: $TOKEN"
start_nginx "$T/notifier" "$NOTIFY_PORT" 'location / { return 200; }' ||
	{ fail setup "alert receiver did not start"; exit 1; }
start_vmalert "$T/vmalert.log" "$VMALERT_PORT" "http://127.0.0.1:$MON_PORT" \
	"http://127.0.0.1:$NOTIFY_PORT" -rule="$T/relay-rules.yml" -rule="$EXP_RULES" ||
	{ fail setup "vmalert did not start"; exit 1; }

# --- every rule of both files is loaded -------------------------------------
want=$(grep -hoE '^[[:space:]]*- alert: [A-Za-z]+' "$RELAY_RULES" "$EXP_RULES" |
	awk '{print $3}' | sort)
got=$(vmalert_rules "$VMALERT_PORT")
checkx "vmalert loaded all $(wc -l <<<"$want") rules of both files" '[ "$want" = "$got" ]'
[ "$want" = "$got" ] || note "missing: $(comm -23 <(echo "$want") <(echo "$got") | tr '\n' ' ')"

# --- healthy: data flows, nothing fires ---------------------------------------
_delivering() { metric_ge "$RELAY_PORT" relay_upstream_requests_total 3 'code="204"'; }
check "the relay delivers Prometheus' data upstream" wait_until "$WAIT_CAP" _delivering
_mon_has_relay() { vm_has "$MON_PORT" 'relay_upstream_requests_total{job="relay",code="204"}' 5; }
check "the monitoring VictoriaMetrics scrapes the relay" wait_until "$WAIT_CAP" _mon_has_relay
# Past the rewritten for: 2s and a few evaluations.
sleep 5
bad=$(vmalert_rules "$VMALERT_PORT" lastError | awk 'NF > 1')
checkx "every rule evaluates without error" '[ -z "$bad" ]'
[ -z "$bad" ] || note "$bad"
firing=$(vmalert_alerts "$VMALERT_PORT" firing)
checkx "nothing fires while the relay delivers" '[ -z "$firing" ]'
[ -z "$firing" ] || note "firing: $firing"

# --- a sender with a wrong token: RelayRefusingClients ------------------------
for _ in 1 2 3 4 5; do
	post_rw "http://127.0.0.1:$RELAY_PORT/api/v1/write" "$REPO/tests/fixtures/req00000.bin" \
		-H 'Authorization: Bearer wrong' >/dev/null
done
check "refused writes are counted as unauthorized" \
	metric_ge "$RELAY_PORT" relay_requests_refused_total 5 'reason="unauthorized"'
check "RelayRefusingClients fires for the 401s (reason=unauthorized)" \
	wait_until "$WAIT_CAP" vmalert_firing "$VMALERT_PORT" RelayRefusingClients reason=unauthorized \
	"instance=127.0.0.1:$RELAY_PORT"

# --- the upstream stops: RelayUpstreamFailing and RelayBacklogOld -------------
stop_vm
if wait_until "$WAIT_CAP" vmalert_firing "$VMALERT_PORT" RelayUpstreamFailing "instance=127.0.0.1:$RELAY_PORT"; then
	ok "RelayUpstreamFailing fires when the upstream is stopped"
else
	fail "RelayUpstreamFailing fires when the upstream is stopped" "not firing"
	note "upstream requests by code, rate over 20s:"
	vm_query_json "$MON_PORT" 'rate(relay_upstream_requests_total[20s])' | sed 's/^/# /'
fi
check "RelayBacklogOld fires as the buffer's oldest entry ages" \
	wait_until "$WAIT_CAP" vmalert_firing "$VMALERT_PORT" RelayBacklogOld "instance=127.0.0.1:$RELAY_PORT"
checkx "RelayDown does not fire while the relay answers scrapes" \
	'! vmalert_firing "$VMALERT_PORT" RelayDown'

# --- the relay stops: RelayDown, seen through a path that avoids it -----------
stop_relay
check "RelayDown fires when the relay stops answering scrapes" \
	wait_until "$WAIT_CAP" vmalert_firing "$VMALERT_PORT" RelayDown "instance=127.0.0.1:$RELAY_PORT"

# The receiver got the alerts vmalert sent.
_notified() { [ "$(grep -c '^200 /api/v2/alerts' "$T/notifier/access.log")" -ge 1 ]; }
check "vmalert sent the alerts to its notifier" wait_until "$WAIT_CAP" _notified
