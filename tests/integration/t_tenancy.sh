#!/usr/bin/env bash
# t_tenancy.sh - tenants with tokens: every forwarded series carries its
# sender's tenant (a forged tenant label is replaced), bearer and basic
# credentials both work, one tenant's token is configured only by its
# SHA-256, requests without a valid token get 401 and leave nothing behind,
# the admin endpoint takes only the admin token, and /metrics has the
# per-tenant series.
. "$(dirname "$0")/../lib.sh"
require_relay

VM_PORT=$(free_port)
RELAY_PORT=$(free_port)
start_vm "$T/vm" "$VM_PORT" || { fail setup "victoria-metrics did not start"; exit 1; }

ACME_TOKEN=acme-7f3c9e1a-token
GLOBEX_TOKEN=globex-b41d22e0-token
ADMIN_TOKEN=admin-5a6b7c8d-token
GLOBEX_SHA=$(printf %s "$GLOBEX_TOKEN" | sha256sum | cut -d' ' -f1)

write_conf "$T/relay.conf" \
	"server.admin_token=$ADMIN_TOKEN" \
	"tenant acme.token=$ACME_TOKEN" \
	"tenant globex.token_sha256=$GLOBEX_SHA"
check "the config holds no plain token of globex" \
	bash -c "! grep -q -- '$GLOBEX_TOKEN' '$T/relay.conf'"
start_relay "$T/relay.conf" || { fail setup "relay did not become ready"; exit 1; }

BASE=http://127.0.0.1:$RELAY_PORT
URL=$BASE/api/v1/write

# --- acme forges tenant="globex" on every series ---------------------------
sum=$(rwsend "$URL" --token "$ACME_TOKEN" --label tenant=globex \
	--series 25 --samples-per-series 2 --requests 4 --name-prefix tn_acme \
	--concurrency 2)
note "acme: $sum"
check "acme (bearer): 4 requests answered 204" [ "$(field "$sum" status_2xx)" = 4 ]
ACME_SAMPLES=$(field "$sum" samples_acked)

# --- globex with its bearer token (configured as token_sha256) ------------
sum=$(rwsend "$URL" --token "$GLOBEX_TOKEN" --series 10 --samples-per-series 1 \
	--requests 3 --name-prefix tn_globex)
note "globex: $sum"
check "globex (bearer, token_sha256): 3 requests answered 204" \
	[ "$(field "$sum" status_2xx)" = 3 ]
GLOBEX_SAMPLES=$(field "$sum" samples_acked)

# --- basic auth: user = tenant id, password = token -----------------------
"$RWSEND" --emit "$T/basic.bin" --series 7 --samples-per-series 1 \
	--name-prefix tn_basic --label tenant=acme
code=$(post_rw "$URL" "$T/basic.bin" -u "globex:$GLOBEX_TOKEN")
check "globex (basic auth): 204 (got $code)" [ "$code" = 204 ]
"$RWSEND" --emit "$T/basic_acme.bin" --series 3 --samples-per-series 1 \
	--name-prefix tn_basic_acme
code=$(post_rw "$URL" "$T/basic_acme.bin" -u "acme:$ACME_TOKEN")
check "acme (basic auth): 204 (got $code)" [ "$code" = 204 ]

# --- VictoriaMetrics: every series carries its sender's tenant -------------
if wait_until "$WAIT_CAP" vm_has "$VM_PORT" '{__name__="tn_acme_metric",tenant="acme"}' "$ACME_SAMPLES"; then
	ok "acme's $ACME_SAMPLES samples arrived labelled tenant=\"acme\""
else
	fail "acme's samples in victoria-metrics" \
		"found $(vm_count_distinct "$VM_PORT" '{__name__="tn_acme_metric",tenant="acme"}') of $ACME_SAMPLES"
fi
n=$(vm_series "$VM_PORT" '{__name__="tn_acme_metric",tenant="globex"}')
check "no series of acme's names carries the forged tenant=\"globex\" ($n)" [ "$n" = 0 ]
n=$(vm_series "$VM_PORT" '{__name__="tn_acme_metric"}')
check "acme's 25 series are stored once each ($n)" [ "$n" = 25 ]
n=$(vm_series "$VM_PORT" '{__name__="tn_acme_metric",tenant!="acme"}')
check "every stored acme series has tenant=\"acme\" ($n others)" [ "$n" = 0 ]
# The export shows exactly one tenant label, with acme's value.
bad=$(vm_export "$VM_PORT" '{__name__="tn_acme_metric"}' |
	jq -c 'select(.metric.tenant != "acme")' | wc -l)
check "export: no acme series with another tenant value ($bad)" [ "$bad" = 0 ]

if wait_until "$WAIT_CAP" vm_has "$VM_PORT" '{__name__="tn_globex_metric",tenant="globex"}' "$GLOBEX_SAMPLES"; then
	ok "globex's samples arrived labelled tenant=\"globex\""
else
	fail "globex's samples in victoria-metrics" \
		"found $(vm_count_distinct "$VM_PORT" '{__name__="tn_globex_metric",tenant="globex"}') of $GLOBEX_SAMPLES"
fi
n=$(vm_series "$VM_PORT" '{__name__="tn_globex_metric",tenant!="globex"}')
check "no globex series with another tenant ($n)" [ "$n" = 0 ]

if wait_until "$WAIT_CAP" vm_has "$VM_PORT" '{__name__="tn_basic_metric",tenant="globex"}' 7; then
	ok "basic-auth globex data arrived as tenant=\"globex\" (its forged tenant=\"acme\" replaced)"
else
	fail "basic-auth data in victoria-metrics" \
		"$(vm_export "$VM_PORT" '{__name__="tn_basic_metric"}' | head -c 300)"
fi
n=$(vm_series "$VM_PORT" '{__name__="tn_basic_metric",tenant="acme"}')
check "the basic-auth sender's tenant=\"acme\" did not survive ($n)" [ "$n" = 0 ]
if wait_until "$WAIT_CAP" vm_has "$VM_PORT" '{__name__="tn_basic_acme_metric",tenant="acme"}' 3; then
	ok "basic-auth acme data arrived as tenant=\"acme\""
else
	fail "basic-auth acme data" "$(vm_export "$VM_PORT" '{__name__="tn_basic_acme_metric"}' | head -c 300)"
fi

# --- requests without a valid token ------------------------------------------
if wait_until "$WAIT_CAP" metric_is "$RELAY_PORT" relay_buffer_entries 0; then
	ok "buffer empty before the unauthorized requests"
else
	fail "buffer empty" "relay_buffer_entries=$(metric "$RELAY_PORT" relay_buffer_entries)"
fi
recv0=$(metric "$RELAY_PORT" relay_samples_received_total)
reqs0=$(metric "$RELAY_PORT" relay_requests_total 'code="204"')
"$RWSEND" --emit "$T/unauth.bin" --series 5 --samples-per-series 1 --name-prefix tn_unauth
code=$(post_rw "$URL" "$T/unauth.bin")
check "no Authorization header: 401 (got $code)" [ "$code" = 401 ]
code=$(post_rw "$URL" "$T/unauth.bin" -H "Authorization: Bearer not-a-token")
check "wrong bearer token: 401 (got $code)" [ "$code" = 401 ]
code=$(post_rw "$URL" "$T/unauth.bin" -H "Authorization: Bearer ${ACME_TOKEN}x")
check "acme's token plus a character: 401 (got $code)" [ "$code" = 401 ]
code=$(post_rw "$URL" "$T/unauth.bin" -H "Authorization: Bearer $GLOBEX_SHA")
check "globex's SHA-256 used as a token: 401 (got $code)" [ "$code" = 401 ]
code=$(post_rw "$URL" "$T/unauth.bin" -u "acme:$GLOBEX_TOKEN")
check "basic auth with another tenant's token: 401 (got $code)" [ "$code" = 401 ]
code=$(post_rw "$URL" "$T/unauth.bin" -u "nobody:$ACME_TOKEN")
check "basic auth with an unknown user: 401 (got $code)" [ "$code" = 401 ]
code=$(post_rw "$URL" "$T/unauth.bin" -H "Authorization: Basic %%%notbase64")
check "malformed basic credentials: 401 (got $code)" [ "$code" = 401 ]
code=$(post_rw "$URL" "$T/unauth.bin" -H "X-Scope-OrgID: acme")
check "tenant header without trust_header: 401 (got $code)" [ "$code" = 401 ]
sum=$(rwsend "$URL" --series 5 --requests 3 --name-prefix tn_unauth2 --quiet)
check "rwsend without token: 3 requests refused with 4xx ($sum)" \
	[ "$(field "$sum" status_4xx)" = 3 ]
sum=$(rwsend "$URL" --token wrong --series 5 --requests 3 --name-prefix tn_unauth2 --quiet)
check "rwsend with a wrong token: 3 requests refused with 4xx ($sum)" \
	[ "$(field "$sum" status_4xx)" = 3 ]

check "relay_samples_received_total unchanged by refused requests" \
	metric_is "$RELAY_PORT" relay_samples_received_total "$recv0"
check "relay_requests_total{code=\"204\"} unchanged" \
	metric_is "$RELAY_PORT" relay_requests_total "$reqs0" 'code="204"'
check "relay_requests_total{code=\"401\"} counts the 14 refusals" \
	metric_is "$RELAY_PORT" relay_requests_total 14 'code="401"'
check "relay_requests_refused_total{reason=\"unauthorized\"} = 14" \
	metric_is "$RELAY_PORT" relay_requests_refused_total 14 'reason="unauthorized"'
check "nothing buffered after the refusals" \
	metric_is "$RELAY_PORT" relay_buffer_entries 0

# An authorized marker sent after the refusals arrives; the refused data
# never does.
"$RWSEND" --emit "$T/marker.bin" --series 2 --samples-per-series 1 --name-prefix tn_marker
code=$(post_rw "$URL" "$T/marker.bin" -H "Authorization: Bearer $ACME_TOKEN")
check "marker after the refusals: 204 (got $code)" [ "$code" = 204 ]
if wait_until "$WAIT_CAP" vm_has "$VM_PORT" '{__name__="tn_marker_metric"}' 2; then
	ok "the marker arrived"
else
	fail "marker" "not in victoria-metrics"
fi
n=$(vm_series "$VM_PORT" '{__name__=~"tn_unauth.*"}')
check "no refused series reached victoria-metrics ($n)" [ "$n" = 0 ]

# --- admin endpoint ----------------------------------------------------------
UURL=$BASE/api/v1/usage
code=$(http_code "$UURL")
check "usage without a token: 401 (got $code)" [ "$code" = 401 ]
code=$(http_code "$UURL" -H "Authorization: Bearer wrong-admin")
check "usage with a wrong token: 401 (got $code)" [ "$code" = 401 ]
code=$(http_code "$UURL" -H "Authorization: Bearer ${ADMIN_TOKEN}x")
check "usage with the admin token plus a character: 401 (got $code)" [ "$code" = 401 ]
code=$(http_code "$UURL" -H "Authorization: Bearer $ACME_TOKEN")
check "usage with a tenant's token: 401 (got $code)" [ "$code" = 401 ]
body=$(curl -s --max-time 10 "$UURL" 2>/dev/null)
check "the 401 answer does not leak usage" bash -c '! grep -q acme <<<"$1"' _ "$body"
code=$(http_code "$UURL" -H "Authorization: Bearer $ADMIN_TOKEN")
check "usage with the admin token: 200 (got $code)" [ "$code" = 200 ]
json=$(curl -s --max-time 10 -H "Authorization: Bearer $ADMIN_TOKEN" "$UURL")
tenants=$(printf '%s' "$json" | jq -r '[.usage[].tenant] | unique | join(",")' 2>/dev/null)
check "usage names exactly the tenants acme,globex (got '$tenants')" \
	[ "$tenants" = "acme,globex" ]
s=$(printf '%s' "$json" | jq '[.usage[] | select(.tenant == "acme") | .samples] | add')
want=$((ACME_SAMPLES + 3 + 2))
check "acme's usage samples = $want (got $s)" [ "$s" = "$want" ]
s=$(printf '%s' "$json" | jq '[.usage[] | select(.tenant == "globex") | .samples] | add')
want=$((GLOBEX_SAMPLES + 7))
check "globex's usage samples = $want (got $s)" [ "$s" = "$want" ]

# --- per-tenant metrics ---------------------------------------------------
want=$((ACME_SAMPLES + 3 + 2))
check "relay_tenant_samples_received_total{tenant=\"acme\"} = $want" \
	metric_is "$RELAY_PORT" relay_tenant_samples_received_total "$want" 'tenant="acme"'
want=$((GLOBEX_SAMPLES + 7))
check "relay_tenant_samples_received_total{tenant=\"globex\"} = $want" \
	metric_is "$RELAY_PORT" relay_tenant_samples_received_total "$want" 'tenant="globex"'
check "relay_tenant_requests_total{tenant=\"acme\"} = 6" \
	metric_is "$RELAY_PORT" relay_tenant_requests_total 6 'tenant="acme"'
check "relay_tenant_requests_total{tenant=\"globex\"} = 4" \
	metric_is "$RELAY_PORT" relay_tenant_requests_total 4 'tenant="globex"'
if wait_until "$WAIT_CAP" metric_is "$RELAY_PORT" relay_tenant_samples_forwarded_total \
	"$((ACME_SAMPLES + 5))" 'tenant="acme"'; then
	ok "relay_tenant_samples_forwarded_total{tenant=\"acme\"} = $((ACME_SAMPLES + 5))"
else
	fail "relay_tenant_samples_forwarded_total{tenant=\"acme\"}" \
		"is $(metric "$RELAY_PORT" relay_tenant_samples_forwarded_total 'tenant="acme"')"
fi
check "no relay_tenant_ series for a tenant that does not exist" \
	bash -c "! curl -s http://127.0.0.1:$RELAY_PORT/metrics | grep '^relay_tenant_' | grep -v 'tenant=\"acme\"' | grep -vq 'tenant=\"globex\"'"

# --- another label name ----------------------------------------------------
stop_relay || fail "stop" "relay did not exit cleanly"
write_conf "$T/relay2.conf" \
	"server.admin_token=$ADMIN_TOKEN" \
	"tenancy.label=org" \
	"tenant acme.token=$ACME_TOKEN" \
	"tenant globex.token_sha256=$GLOBEX_SHA"
start_relay "$T/relay2.conf" || { fail setup "relay did not restart"; exit 1; }
sum=$(rwsend "$URL" --token "$GLOBEX_TOKEN" --label org=acme --label tenant=keep \
	--series 4 --requests 1 --name-prefix tn_org)
check "label = org: 204 ($sum)" [ "$(field "$sum" status_2xx)" = 1 ]
if wait_until "$WAIT_CAP" vm_has "$VM_PORT" '{__name__="tn_org_metric",org="globex"}' 4; then
	ok "label = org: series carry org=\"globex\" (the forged org=\"acme\" replaced)"
else
	fail "label = org" "$(vm_export "$VM_PORT" '{__name__="tn_org_metric"}' | head -c 300)"
fi
n=$(vm_series "$VM_PORT" '{__name__="tn_org_metric",org="acme"}')
check "label = org: no series with org=\"acme\" ($n)" [ "$n" = 0 ]
n=$(vm_series "$VM_PORT" '{__name__="tn_org_metric",tenant="keep"}')
check "label = org: the sender's own tenant label is left alone ($n)" [ "$n" = 4 ]
