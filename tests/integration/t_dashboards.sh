#!/usr/bin/env bash
# t_dashboards.sh - the Grafana dashboards of ops/grafana/ are importable as
# they are (schemaVersion, a ${datasource} variable of type prometheus used
# by every panel) and every query of every panel returns data from a
# VictoriaMetrics that holds the relay's real series.
#
# Grafana is not packaged for Debian, so the test does what Grafana would:
# vmagent scrapes the relay's /metrics every second into VictoriaMetrics
# while traffic flows (two tenants, one of them over its rate limit, a
# sender with a wrong token, an upstream that answers 503 and then 404 for
# a while: nginx in front of VictoriaMetrics), then each query runs through
# /api/v1/query_range over the test's time range with the variables filled
# in as Grafana fills them ($job, $instance, $tenant as a regex of every
# value, $__rate_interval = 4 scrape intervals, $__interval, $__range). Each
# variable's own label_values() query must find values too.
#
# Panels on the relay_usage_* series read the usage the relay writes into
# its upstream ([usage] export, every second here). A query that returns no
# data is a failure.
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/../lib.sh"
require_relay

DASH_DIR=$REPO/ops/grafana
ACME=acme-dash-token
BETA=beta-dash-token

# --- importable as they are ---------------------------------------------------------
dashboards=("$DASH_DIR"/*.json)
checkx "ops/grafana holds the overview and tenants dashboards" \
	'[ -f "$DASH_DIR/relay-overview.json" ] && [ -f "$DASH_DIR/relay-tenants.json" ]'
for d in "${dashboards[@]}"; do
	n=$(basename "$d")
	checkx "$n: valid JSON with a title, a uid and a schemaVersion" \
		'jq -e ".title and .uid and (.schemaVersion | type == \"number\")" "$d" >/dev/null'
	checkx "$n: a datasource variable of type prometheus" \
		'jq -e "[.templating.list[] | select(.name == \"datasource\" and .type == \"datasource\" and .query == \"prometheus\")] | length == 1" "$d" >/dev/null'
	checkx "$n: every panel and query uses \${datasource}" \
		'jq -e "[.panels[] | select(.targets) | (.datasource.uid, .targets[].datasource.uid)] | all(. == \"\${datasource}\")" "$d" >/dev/null'
	checkx "$n: panel ids are unique" \
		'jq -e "[.panels[].id] | length == (unique | length)" "$d" >/dev/null'
	checkx "$n: no panel without a query" \
		'jq -e "[.panels[] | select(.type != \"row\") | select((.targets // []) | length == 0)] | length == 0" "$d" >/dev/null'
done
checkx "relay-tenants.json: a tenant variable from label_values(..., tenant)" \
	'jq -e "[.templating.list[] | select(.name == \"tenant\" and (.definition | test(\"label_values\\\\(.*, *tenant\\\\)\")))] | length == 1" "$DASH_DIR/relay-tenants.json" >/dev/null'

# --- the relay's real series in VictoriaMetrics ------------------------------------
VM_PORT=$(free_port)
RELAY_PORT=$(free_port)
NGINX_PORT=$(free_port)
AGENT_PORT=$(free_port)
start_vm "$T/vm" "$VM_PORT" || { fail setup "VictoriaMetrics did not start"; exit 1; }
start_nginx "$T/nginx" "$NGINX_PORT" "$(nginx_proxy_mode "$VM_PORT")" ||
	{ fail setup "nginx did not start"; exit 1; }
# The relay writes its usage as series every second here.
usage_conf=("usage.export_interval=1s")
write_conf "$T/relay.conf" "upstream.url=http://127.0.0.1:$NGINX_PORT/api/v1/write" \
	"tenant acme.token=$ACME" "tenant beta.token=$BETA" \
	"tenant beta.max_samples_per_second=200" "tenant beta.limit_status=429" \
	"${usage_conf[@]}"
start_relay "$T/relay.conf" || { fail setup "relay did not become ready"; exit 1; }
cat >"$T/scrape.yml" <<YML
scrape_configs:
  - job_name: relay
    scrape_interval: 1s
    static_configs:
      - targets: ['127.0.0.1:$RELAY_PORT']
YML
vmagent -httpListenAddr="127.0.0.1:$AGENT_PORT" -promscrape.config="$T/scrape.yml" \
	-remoteWrite.url="http://127.0.0.1:$VM_PORT/api/v1/write" \
	-remoteWrite.tmpDataPath="$T/vmagent" -remoteWrite.flushInterval=1s \
	-loggerLevel=WARN >"$T/vmagent.log" 2>&1 &
PIDS+=("$!")
START=$(date +%s)

URL=http://127.0.0.1:$RELAY_PORT/api/v1/write
# send ROUNDS: a round is a request of each tenant (beta's are over its rate:
# some get 429) and one with a wrong token (401).
send() {
	local i
	for ((i = 0; i < $1; i++)); do
		rwsend "$URL" --token "$ACME" --series 50 --samples-per-series 2 \
			--name-prefix dash_acme --quiet >/dev/null
		rwsend "$URL" --token "$BETA" --series 100 --samples-per-series 3 --requests 3 \
			--name-prefix dash_beta --quiet >/dev/null
		post_rw "$URL" "$REPO/tests/fixtures/req00000.bin" -H 'Authorization: Bearer wrong' >/dev/null
		sleep 0.5
	done
}
send 8
# The upstream fails for a while (503, retried), then says the URL is wrong
# (404: misconfigured), then works again.
nginx_mode "$T/nginx" "$NGINX_PORT" 503 'location / { return 503; }' ||
	fail setup "nginx did not switch to 503"
send 6
nginx_mode "$T/nginx" "$NGINX_PORT" 404 'location / { return 404; }' ||
	fail setup "nginx did not switch to 404"
send 6
nginx_mode "$T/nginx" "$NGINX_PORT" 400 "$(nginx_proxy_mode "$VM_PORT")" ||
	fail setup "nginx did not switch back to VictoriaMetrics"
send 8
_drained() { metric_is "$RELAY_PORT" relay_buffer_entries 0; }
check "the relay delivers its backlog once the upstream is back" wait_until "$WAIT_CAP" _drained
checkx "the relay saw the refusals and upstream failures the test makes" \
	'metric_ge "$RELAY_PORT" relay_requests_refused_total 1 "reason=\"unauthorized\"" &&
	 metric_ge "$RELAY_PORT" relay_requests_refused_total 1 "reason=\"rate_limited\"" &&
	 metric_ge "$RELAY_PORT" relay_upstream_requests_total 1 "code=\"503\"" &&
	 metric_ge "$RELAY_PORT" relay_upstream_misconfigured_total 1'
# Two more scrapes after the drain reach VictoriaMetrics.
sel='relay_buffer_entries{job="relay"}'
before=$(vm_count_distinct "$VM_PORT" "$sel")
check "vmagent's scrapes of the relay reach VictoriaMetrics" \
	wait_until "$WAIT_CAP" vm_has "$VM_PORT" "$sel" $((${before:-0} + 2))
_usage_in() { [ "$(vm_series "$VM_PORT" 'relay_usage_samples_total{tenant="beta"}')" -ge 1 ]; }
check "the relay's usage series reach VictoriaMetrics" wait_until "$WAIT_CAP" _usage_in
END=$(date +%s)
RANGE=$((END - START))

usage_series=$(vm_series "$VM_PORT" '{__name__=~"relay_usage_.+"}')
note "relay_usage_ series in VictoriaMetrics: $usage_series"

# --- the variables ----------------------------------------------------------------
# fill EXPR [INTERVAL]: the expression with the dashboard's variables as
# Grafana fills them for this relay ($tenant: every value, as a regex;
# $__interval: the step, 5s, or the panel's minimum interval when it has one).
fill() {
	local e=$1 iv=${2:-5s}
	e=${e//'$__rate_interval'/20s}
	e=${e//'$__interval'/$iv}
	e=${e//'$__range'/${RANGE}s}
	e=${e//'$job'/relay}
	e=${e//'$instance'/127.0.0.1:$RELAY_PORT}
	e=${e//'$tenant'/(acme|beta)}
	printf '%s' "$e"
}

# label_values(SELECTOR, LABEL) as Grafana's Prometheus data source asks it.
label_values() {
	local q=$1 sel label
	sel=$(sed -E 's/^label_values\((.*), *([a-zA-Z_]+)\)$/\1/' <<<"$q")
	label=$(sed -E 's/^label_values\((.*), *([a-zA-Z_]+)\)$/\2/' <<<"$q")
	curl -s --max-time 30 -G --data-urlencode "match[]=$sel" \
		--data-urlencode "start=$START" --data-urlencode "end=$END" \
		"http://127.0.0.1:$VM_PORT/api/v1/label/$label/values" | jq -r '.data[]?'
}

for d in "${dashboards[@]}"; do
	n=$(basename "$d" .json)
	while IFS=$'\t' read -r name q; do
		vals=$(label_values "$(fill "$q")" | tr '\n' ' ')
		checkx "$n: variable \$$name finds values ($vals)" '[ -n "$vals" ]'
	done < <(jq -r '.templating.list[] | select(.type == "query") | [.name, .definition] | @tsv' "$d")
done
checkx "relay-tenants: \$tenant lists acme and beta" \
	'vals=$(label_values "$(fill "label_values(relay_tenant_samples_received_total{job=~\"\$job\",instance=~\"\$instance\"}, tenant)")");
	 grep -qx acme <<<"$vals" && grep -qx beta <<<"$vals"'

# --- every query of every panel -------------------------------------------------------
# query_points EXPR: how many points /api/v1/query_range returns for EXPR
# over the test's range; "error: ..." when VictoriaMetrics refuses it.
query_points() {
	curl -s --max-time 60 -G --data-urlencode "query=$1" \
		--data-urlencode "start=$START" --data-urlencode "end=$END" \
		--data-urlencode "step=5s" "http://127.0.0.1:$VM_PORT/api/v1/query_range" |
		jq -r 'if .status == "success" then [.data.result[].values | length] | add // 0
			else "error: \(.error)" end'
}

for d in "${dashboards[@]}"; do
	n=$(basename "$d" .json)
	while IFS=$'\t' read -r title ref iv expr; do
		name="$n: \"$title\" $ref"
		q=$(fill "$expr" "$iv")
		if [[ $q == *'$'* ]]; then
			fail "$name" "a variable is left unfilled: $q"
			continue
		fi
		pts=$(query_points "$q")
		if [[ $pts =~ ^[0-9]+$ ]] && [ "$pts" -gt 0 ]; then
			ok "$name returns data ($pts points)"
		else
			fail "$name returns data" "${pts:-no answer}: $q"
		fi
	done < <(jq -r '.panels[] | select(.targets) | .title as $t | (.interval // "5s") as $i |
		.targets[] | [$t, .refId, $i, (.expr | gsub("\n"; " "))] | @tsv' "$d")
done
