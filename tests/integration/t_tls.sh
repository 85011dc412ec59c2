#!/usr/bin/env bash
# t_tls.sh - TLS on both sides. Ingest over HTTPS ([server] tls_cert,
# tls_key), and with tls_client_ca only clients showing a certificate that CA
# signed get in. Upstream over HTTPS to a VictoriaMetrics started with -tls:
# verified against [upstream] ca_file, refused (never delivered unverified)
# with the system CAs; basic auth against VictoriaMetrics' -httpAuth.*; a
# bearer token and a client certificate against a second relay that demands
# both. The passwords and tokens never appear in the logs or in /metrics. The
# data directory is created 0700.
. "$(dirname "$0")/../lib.sh"
require_relay
command -v openssl >/dev/null || { fail setup "openssl is not installed"; exit 1; }

PKI=$(tmpdir pki)
VM_USER=vmwriter
VM_PASS=vmpass-$RANDOM$RANDOM-Kq7
BEARER=bearer-$RANDOM$RANDOM-Zx3

# --- certificates -----------------------------------------------------------
# mkca NAME: a self-signed CA in $PKI/NAME.pem, key NAME.key.
mkca() {
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
		-keyout "$PKI/$1.key" -out "$PKI/$1.pem" -days 2 -subj "/CN=$1" \
		-addext basicConstraints=critical,CA:TRUE \
		-addext keyUsage=critical,keyCertSign,cRLSign 2>>"$PKI/openssl.log"
}
# mkcert NAME CA USAGE: a certificate for 127.0.0.1 signed by CA.
mkcert() {
	printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=%s\n' "$3" \
		>"$PKI/$1.ext"
	openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
		-keyout "$PKI/$1.key" -out "$PKI/$1.csr" -subj "/CN=$1" 2>>"$PKI/openssl.log" &&
		openssl x509 -req -in "$PKI/$1.csr" -CA "$PKI/$2.pem" -CAkey "$PKI/$2.key" \
			-CAcreateserial -out "$PKI/$1.pem" -days 2 \
			-extfile "$PKI/$1.ext" 2>>"$PKI/openssl.log"
}
if mkca ca && mkca otherca && mkcert server ca serverAuth &&
	mkcert client ca clientAuth && mkcert stranger otherca clientAuth; then
	ok "test CA, server and client certificates generated"
else
	fail setup "openssl: $(tail -n 3 "$PKI/openssl.log")"
	exit 1
fi
CA=$PKI/ca.pem

# --- helpers ----------------------------------------------------------------
# vm_get PATH [curl args]: a GET to the TLS VictoriaMetrics.
vm_get() {
	local path=$1
	shift
	curl -s --max-time 30 --cacert "$CA" -u "$VM_USER:$VM_PASS" "$@" \
		"https://127.0.0.1:$VM_PORT$path"
}

_vm_tls_up() {
	kill -0 "$VM_PID" 2>/dev/null || return 1
	[ "$(vm_get /health)" = OK ]
}

# start_vm_tls DIR PORT: VictoriaMetrics serving HTTPS only, with basic auth.
start_vm_tls() {
	VM_PORT=$2
	VM_LOG=$T/vm-$2.log
	mkdir -p "$1"
	"$VM_BIN" -storageDataPath="$1" -httpListenAddr="127.0.0.1:$2" \
		-retentionPeriod=100y -search.disableCache -search.latencyOffset=0 \
		-dedup.minScrapeInterval=0 -loggerLevel=WARN \
		-tls -tlsCertFile="$PKI/server.pem" -tlsKeyFile="$PKI/server.key" \
		-httpAuth.username="$VM_USER" -httpAuth.password="$VM_PASS" \
		>>"$VM_LOG" 2>&1 &
	VM_PID=$!
	PIDS+=("$VM_PID")
	wait_until "$WAIT_CAP" _vm_tls_up
}

# vm_tls_count MATCH: distinct (series, timestamp) pairs stored.
vm_tls_count() {
	local out
	vm_get /internal/force_flush -o /dev/null
	out=$(vm_get /api/v1/export -G --data-urlencode "match[]=$1") || return 1
	[ -n "$out" ] || { echo 0; return 0; }
	printf '%s\n' "$out" | jq -s '[.[].timestamps | unique | length] | add // 0'
}

vm_tls_has() {
	local n
	n=$(vm_tls_count "$1") || return 1
	[ "${n:-0}" -ge "$2" ]
}

# https_code URL [curl args]: status of a request over TLS to a relay.
https_code() {
	local url=$1
	shift
	curl -s -o /dev/null -w '%{http_code}' --max-time 20 --cacert "$CA" "$@" "$url"
}

# start_relay_at CONF LOG SCHEME [curl args]: starts a relay whose readiness is
# checked over SCHEME (http or https, with the given client options). Sets
# RELAY_PID and RELAY_PORT.
start_relay_at() {
	local conf=$1 log=$2 scheme=$3
	shift 3
	RELAY_PORT=$(sed -n 's/^listen = [^:]*:\([0-9]*\)$/\1/p' "$conf")
	echo "--- start $(date +%T) $conf" >>"$log"
	"$RELAY_BIN" -c "$conf" >>"$log" 2>&1 &
	RELAY_PID=$!
	PIDS+=("$RELAY_PID")
	wait_until "$WAIT_CAP" _relay_at_up "$scheme" "$@"
}

_relay_at_up() {
	local scheme=$1
	shift
	kill -0 "$RELAY_PID" 2>/dev/null || return 1
	[ "$(https_code "$scheme://127.0.0.1:$RELAY_PORT/-/ready" "$@")" = 200 ]
}

# tls_metric SCHEME METRIC [LABELS] [curl args]: like metric, for any scheme.
tls_metric() {
	local scheme=$1 name=$2 labels=${3:-}
	shift 3
	curl -s --max-time 10 --cacert "$CA" "$@" "$scheme://127.0.0.1:$RELAY_PORT/metrics" |
		awk -v name="$name" -v labels="$labels" '
		/^#/ { next }
		{ base = $1; sub(/\{.*/, "", base)
		  if (base != name) next
		  if (labels != "" && index($1, labels) == 0) next
		  sum += $2; found = 1 }
		END { if (!found) exit 1; printf "%.0f\n", sum }'
}

# Snappy bodies of 50 series x 2 samples, one per prefix.
emit() {
	rwsend --emit "$T/$1.bin" --series 50 --samples-per-series 2 --name-prefix "$1"
}
# post SCHEME BODY [curl args]: posts $T/BODY.bin to the relay over SCHEME
# (trusting the test CA), prints the status.
post() {
	local scheme=$1 body=$2
	shift 2
	post_rw "$scheme://127.0.0.1:$RELAY_PORT/api/v1/write" "$T/$body.bin" \
		--cacert "$CA" -H 'Expect:' "$@"
}
for p in ta tb tc td te tf tg th ti; do emit "$p"; done

VM_PORT=$(free_port)
RELAY_PORT=$(free_port)
R1=$RELAY_PORT
if start_vm_tls "$T/vm" "$VM_PORT"; then
	ok "victoria-metrics serves HTTPS with basic auth"
else
	fail setup "victoria-metrics with -tls did not come up"
	_dump_log "$VM_LOG" 10
	exit 1
fi
code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 --cacert "$CA" \
	"https://127.0.0.1:$VM_PORT/api/v1/export?match[]=up")
check "victoria-metrics refuses requests without the password ($code)" [ "$code" = 401 ]
VMURL=https://127.0.0.1:$VM_PORT/api/v1/write

# --- 1. ingest over TLS, upstream over TLS with ca_file and basic auth ------
DATA1=$T/fresh/data
write_conf "$T/r1.conf" storage.path="$DATA1" \
	server.tls_cert="$PKI/server.pem" server.tls_key="$PKI/server.key" \
	upstream.url="$VMURL" upstream.ca_file="$CA" \
	upstream.basic_user="$VM_USER" upstream.basic_password="$VM_PASS" \
	log.level=debug
if start_relay_at "$T/r1.conf" "$RELAY_LOG" https; then
	ok "relay with tls_cert/tls_key is ready over https"
else
	fail "relay over https" "not ready; $(tail -n 3 "$RELAY_LOG")"
	exit 1
fi
check "the data directory is created 0700 ($(stat -c %a "$DATA1" 2>&1))" \
	[ "$(stat -c %a "$DATA1" 2>&1)" = 700 ]
code=$(post https ta)
check "a write over https with the CA gets 204 (got $code)" [ "$code" = 204 ]
code=$(post http ta)
check "plain http to the TLS port gets no HTTP answer (got $code)" [ "${code:0:1}" != 2 ]
code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 20 "https://127.0.0.1:$R1/-/ready")
check "https without the CA fails verification (got $code)" [ "$code" = 000 ]
if wait_until "$WAIT_CAP" vm_tls_has '{__name__="ta_metric"}' 100; then
	ok "over TLS with ca_file and basic auth: the samples reach victoria-metrics"
else
	fail "ta arrived" "found $(vm_tls_count '{__name__="ta_metric"}') of 100"
fi
n=$(tls_metric https relay_upstream_requests_total 'code="204"')
check "relay_upstream_requests_total{code=\"204\"} > 0 (is ${n:-absent})" [ "${n:-0}" -gt 0 ]
curl -s --max-time 10 --cacert "$CA" "https://127.0.0.1:$R1/metrics" >"$T/metrics.r1"
stop_relay

# --- 2. mTLS on ingest ------------------------------------------------------
write_conf "$T/r2.conf" storage.path="$DATA1" \
	server.tls_cert="$PKI/server.pem" server.tls_key="$PKI/server.key" \
	server.tls_client_ca="$CA" \
	upstream.url="$VMURL" upstream.ca_file="$CA" \
	upstream.basic_user="$VM_USER" upstream.basic_password="$VM_PASS" \
	log.level=debug
CLIENT=(--cert "$PKI/client.pem" --key "$PKI/client.key")
if start_relay_at "$T/r2.conf" "$RELAY_LOG" https "${CLIENT[@]}"; then
	ok "relay with tls_client_ca is ready for a client with a certificate"
else
	fail "relay with tls_client_ca" "not ready; $(tail -n 3 "$RELAY_LOG")"
	exit 1
fi
code=$(post https tb)
check "mTLS: a write without a client certificate is refused (got $code)" [ "${code:0:1}" != 2 ]
code=$(post https tc --cert "$PKI/stranger.pem" --key "$PKI/stranger.key")
check "mTLS: a write with a certificate from another CA is refused (got $code)" [ "${code:0:1}" != 2 ]
code=$(https_code "https://127.0.0.1:$RELAY_PORT/metrics")
check "mTLS: /metrics without a client certificate is refused (got $code)" [ "${code:0:1}" != 2 ]
code=$(post https td "${CLIENT[@]}")
check "mTLS: a write with the client certificate gets 204 (got $code)" [ "$code" = 204 ]
# the two writes refused for their certificate, answered 403, are counted
n403=$(tls_metric https relay_requests_total 'code="403"' "${CLIENT[@]}")
nref=$(tls_metric https relay_requests_refused_total 'reason="unauthorized"' "${CLIENT[@]}")
check "mTLS: the writes refused for their certificate are counted (403: $n403, unauthorized: $nref)" \
	[ "${n403:-0}" = 2 -a "${nref:-0}" = 2 ]
if wait_until "$WAIT_CAP" vm_tls_has '{__name__="td_metric"}' 100; then
	ok "mTLS: the write with the client certificate arrives"
else
	fail "td arrived" "found $(vm_tls_count '{__name__="td_metric"}') of 100"
fi
mtls_drained() {
	[ "$(tls_metric https relay_buffer_samples "" "${CLIENT[@]}")" = 0 ]
}
wait_until 20 mtls_drained
for p in tb tc; do
	n=$(vm_tls_count "{__name__=\"${p}_metric\"}")
	check "mTLS: nothing of the refused write $p was stored ($n)" [ "$n" = 0 ]
done
curl -s --max-time 10 --cacert "$CA" "${CLIENT[@]}" \
	"https://127.0.0.1:$RELAY_PORT/metrics" >"$T/metrics.r2"
stop_relay

# --- 3. upstream certificate verification is on by default ------------------
DATA3=$T/data3
write_conf "$T/r3.conf" storage.path="$DATA3" upstream.url="$VMURL" \
	upstream.basic_user="$VM_USER" upstream.basic_password="$VM_PASS" \
	log.level=debug
start_relay_at "$T/r3.conf" "$RELAY_LOG" http || { fail setup "relay r3 not ready"; exit 1; }
code=$(post http te)
check "without ca_file: the write is acknowledged (got $code)" [ "$code" = 204 ]
if wait_until "$WAIT_CAP" metric_ge "$RELAY_PORT" relay_upstream_requests_total 2 'code="error"'; then
	ok "without ca_file: upstream requests fail (relay_upstream_requests_total{code=\"error\"} grows)"
else
	fail "upstream TLS errors counted" "relay_upstream_requests_total{code=\"error\"}=$(metric "$RELAY_PORT" relay_upstream_requests_total 'code="error"')"
fi
n=$(vm_tls_count '{__name__="te_metric"}')
check "without ca_file: nothing was delivered to the unverified upstream ($n)" [ "$n" = 0 ]
check "without ca_file: the samples stay buffered" metric_ge "$RELAY_PORT" relay_buffer_samples 100
line=$(grep -iE 'certificate|ssl|tls' "$RELAY_LOG" | grep -v '^---' | tail -n 1)
note "log: $line"
check "the log names the TLS verification problem" [ -n "$line" ]
curl -s --max-time 10 "http://127.0.0.1:$RELAY_PORT/metrics" >"$T/metrics.r3"
stop_relay
# tls_verify = false: delivered without verification (an explicit choice).
write_conf "$T/r3b.conf" storage.path="$DATA3" upstream.url="$VMURL" \
	upstream.basic_user="$VM_USER" upstream.basic_password="$VM_PASS" \
	upstream.tls_verify=false log.level=debug
start_relay_at "$T/r3b.conf" "$RELAY_LOG" http || { fail setup "relay r3b not ready"; exit 1; }
if wait_until "$WAIT_CAP" vm_tls_has '{__name__="te_metric"}' 100; then
	ok "with tls_verify = false the buffered samples are delivered"
else
	fail "te arrived with tls_verify=false" "found $(vm_tls_count '{__name__="te_metric"}') of 100"
fi
stop_relay

# --- 4. bearer token and client certificate upstream ------------------------
# Relay B demands a client certificate (tls_client_ca) and the tenant token;
# relay A forwards to B with ca_file, client_cert/client_key and bearer_token.
B_PORT=$(free_port)
B_LOG=$T/relay-b.log
cat >"$T/rb.conf" <<EOF
[server]
listen = 127.0.0.1:$B_PORT
tls_cert = $PKI/server.pem
tls_key = $PKI/server.key
tls_client_ca = $CA
[storage]
path = $T/data-b
[upstream]
url = $VMURL
ca_file = $CA
basic_user = $VM_USER
basic_password = $VM_PASS
min_backoff = 100ms
max_backoff = 1s
[log]
level = debug
[tenant acme]
token = $BEARER
EOF
start_relay_at "$T/rb.conf" "$B_LOG" https "${CLIENT[@]}" ||
	{ fail setup "relay B not ready; $(tail -n 3 "$B_LOG")"; exit 1; }
B_PID=$RELAY_PID
code=$(post https tf "${CLIENT[@]}")
check "relay B refuses a write without the bearer token (got $code)" [ "$code" = 401 ]
code=$(post https tf "${CLIENT[@]}" -H "Authorization: Bearer $BEARER")
check "relay B takes a write with the bearer token (got $code)" [ "$code" = 204 ]

RELAY_PORT=$(free_port)
write_conf "$T/ra.conf" storage.path="$T/data-a" \
	upstream.url="https://127.0.0.1:$B_PORT/api/v1/write" \
	upstream.ca_file="$CA" upstream.client_cert="$PKI/client.pem" \
	upstream.client_key="$PKI/client.key" upstream.bearer_token="$BEARER" \
	log.level=debug
start_relay_at "$T/ra.conf" "$RELAY_LOG" http || { fail setup "relay A not ready"; exit 1; }
A_PORT=$RELAY_PORT
code=$(post http tg)
check "relay A acknowledges a write (got $code)" [ "$code" = 204 ]
if wait_until "$WAIT_CAP" vm_tls_has '{__name__="tg_metric",tenant="acme"}' 100; then
	ok "bearer token + client certificate upstream: the samples pass relay B (tenant acme) into victoria-metrics"
else
	fail "tg arrived through relay B" "found $(vm_tls_count '{__name__="tg_metric"}') of 100 (tenant acme: $(vm_tls_count '{__name__="tg_metric",tenant="acme"}'))"
fi
curl -s --max-time 10 "http://127.0.0.1:$A_PORT/metrics" >"$T/metrics.ra"
curl -s --max-time 10 --cacert "$CA" "${CLIENT[@]}" \
	"https://127.0.0.1:$B_PORT/metrics" >"$T/metrics.rb"
stop_relay
# The same relay A without its client certificate cannot deliver to B.
write_conf "$T/ra2.conf" storage.path="$T/data-a2" \
	upstream.url="https://127.0.0.1:$B_PORT/api/v1/write" \
	upstream.ca_file="$CA" upstream.bearer_token="$BEARER" log.level=debug
start_relay_at "$T/ra2.conf" "$RELAY_LOG" http || { fail setup "relay A2 not ready"; exit 1; }
code=$(post http ti)
check "relay A without client_cert acknowledges a write (got $code)" [ "$code" = 204 ]
# Either B refuses the handshake (errors counted) or, wrongly, the data gets in.
a2_settled() {
	metric_ge "$RELAY_PORT" relay_upstream_requests_total 2 'code="error"' ||
		metric_is "$RELAY_PORT" relay_buffer_samples 0
}
wait_until "$WAIT_CAP" a2_settled
n=$(vm_tls_count '{__name__="ti_metric"}')
check "relay B refuses relay A's requests without a client certificate (delivered $n samples)" \
	[ "$n" = 0 ]
curl -s --max-time 10 "http://127.0.0.1:$RELAY_PORT/metrics" >"$T/metrics.ra2"
stop_relay

# --- 5. credentials in the upstream URL itself --------------------------------
# VictoriaMetrics takes basic auth from the URL's user info as well; the
# password must not show up in the log (the relay logs its upstream URL).
RELAY_PORT=$(free_port)
URL_LOG=$T/relay-url.log
write_conf "$T/r5.conf" storage.path="$T/data5" \
	upstream.url="https://$VM_USER:$VM_PASS@127.0.0.1:$VM_PORT/api/v1/write" \
	upstream.ca_file="$CA" log.level=debug
start_relay_at "$T/r5.conf" "$URL_LOG" http || { fail setup "relay r5 not ready"; exit 1; }
code=$(post http th)
check "credentials in the URL: write acknowledged (got $code)" [ "$code" = 204 ]
if wait_until "$WAIT_CAP" vm_tls_has '{__name__="th_metric"}' 100; then
	ok "credentials in the URL: the samples arrive"
else
	fail "th arrived" "found $(vm_tls_count '{__name__="th_metric"}') of 100"
fi
curl -s --max-time 10 "http://127.0.0.1:$RELAY_PORT/metrics" >"$T/metrics.r5"
stop_relay
hits=$(grep -cF -- ":$VM_PASS@" "$URL_LOG")
check "credentials in the URL: the password is not logged ($hits lines)" [ "$hits" = 0 ]
[ "$hits" = 0 ] || grep -F -- ":$VM_PASS@" "$URL_LOG" | head -n 2 | sed 's/^/# /'
hits=$(grep -cF -- "$VM_PASS" "$T/metrics.r5")
check "credentials in the URL: the password is not in /metrics ($hits lines)" [ "$hits" = 0 ]

# --- secrets ----------------------------------------------------------------
for s in "$VM_PASS" "$BEARER"; do
	hits=$(cat "$RELAY_LOG" "$B_LOG" | grep -cF -- "$s")
	check "no relay log line holds the secret ${s%%-*}-... ($hits lines)" [ "$hits" = 0 ]
	[ "$hits" = 0 ] || grep -hF -- "$s" "$RELAY_LOG" "$B_LOG" | head -n 3 | sed 's/^/# /'
	hits=$(cat "$T"/metrics.r[123a-b]* | grep -cF -- "$s")
	check "no /metrics output holds the secret ${s%%-*}-... ($hits lines)" [ "$hits" = 0 ]
done
key=$(grep -v -- '-----' "$PKI/server.key" | head -n 1)
check "the TLS private key is not logged" [ "$(cat "$RELAY_LOG" "$B_LOG" | grep -cF -- "$key")" = 0 ]
