#!/usr/bin/env bash
# t_status_page.sh - the status page at GET /:
#  1. curl: without credentials it shows the version, the upstream and the
#     buffer but no tenant; /?admin without them answers 401 with a Basic
#     challenge (also with a wrong password); a Bearer admin token or HTTP
#     Basic admin:TOKEN shows the tenants with their numbers;
#  2. headless Chromium renders it (no script, nothing from the network):
#     the rendered text holds the tenants, their 24-hour samples and the
#     chart; a screenshot is saved under the build directory;
#  3. the upstream down: the page says backing off and shows the error:
#     without credentials its class only, with the admin token curl's
#     text too (it names the upstream's host and port).
. "$(dirname "$0")/../lib.sh"
require_relay

VM_PORT=$(free_port)
RELAY_PORT=$(free_port)
start_vm "$T/vm" "$VM_PORT" || { fail setup "victoria-metrics did not start"; exit 1; }
ADMIN=admin-status-token
write_conf "$T/relay.conf" \
	"server.admin_token=$ADMIN" \
	"usage.export=false" \
	"tenant acme.token=acme-st" \
	"tenant globex.token=globex-st"
start_relay "$T/relay.conf" || { fail setup "relay did not become ready"; exit 1; }
BASE=http://127.0.0.1:$RELAY_PORT
URL=$BASE/api/v1/write

s=$(rwsend "$URL" --token acme-st --series 20 --samples-per-series 3 --requests 2 --name-prefix st_a)
check "acme: 120 samples acknowledged" [ "$(field "$s" samples_acked)" = 120 ]
s=$(rwsend "$URL" --token globex-st --series 7 --requests 1 --name-prefix st_g)
check "globex: 7 samples acknowledged" [ "$(field "$s" samples_acked)" = 7 ]
wait_until "$WAIT_CAP" vm_has "$VM_PORT" '{__name__=~"st_.*"}' 127 ||
	fail "delivery" "not all samples arrived"

# --- 1. curl ------------------------------------------------------------------
page=$(curl -s --max-time 10 "$BASE/")
code=$(http_code "$BASE/")
check "GET /: 200 ($code)" [ "$code" = 200 ]
checkx "GET /: version, upstream and buffer" \
	'[[ $page == *"relay 0.1.0"* && $page == *"Upstream"* && $page == *"last success"* && $page == *"fill of max_size"* ]]'
checkx "GET / without credentials: no tenant data" \
	'[[ $page != *acme* && $page != *globex* && $page != *"<svg"* ]]'
checkx "GET /: no script, nothing loaded from elsewhere" \
	'[[ $page != *"<script"* && $page != *"src="* && $page != *"<link"* ]]'
hdr=$(curl -s --max-time 10 -D - -o /dev/null "$BASE/?admin")
checkx "GET /?admin without credentials: 401" '[[ $hdr == "HTTP/1.1 401"* ]]'
checkx "with WWW-Authenticate: Basic realm=\"relay\"" \
	'printf "%s" "$hdr" | grep -qi "^WWW-Authenticate: Basic realm=\"relay\""'
code=$(http_code "$BASE/?admin" -u admin:wrong)
check "GET /?admin with a wrong password: 401 ($code)" [ "$code" = 401 ]
code=$(http_code "$BASE/?admin" -u acme:$ADMIN)
check "GET /?admin with another user: 401 ($code)" [ "$code" = 401 ]
code=$(http_code "$BASE/?admin" -H "Authorization: Bearer acme-st")
check "GET /?admin with a tenant's token: 401 ($code)" [ "$code" = 401 ]
page=$(curl -s --max-time 10 -H "Authorization: Bearer $ADMIN" "$BASE/")
checkx "GET / with the Bearer admin token: acme's row with its 120 samples" \
	'printf "%s" "$page" | grep -q "<tr><td>acme</td><td class=\"n\">[0-9.]*</td><td class=\"n\">120</td>"'
checkx "and globex's with 7" \
	'printf "%s" "$page" | grep -q "<tr><td>globex</td><td class=\"n\">[0-9.]*</td><td class=\"n\">7</td>"'
page=$(curl -s --max-time 10 -u "admin:$ADMIN" "$BASE/?admin")
checkx "GET /?admin with Basic admin:TOKEN: the tenants and the chart" \
	'[[ $page == *"<td>acme</td>"* && $page == *"<td>globex</td>"* && $page == *"<svg"* && $page == *"<polyline"* ]]'

# --- 2. headless Chromium -------------------------------------------------------
CHROME=$(command -v chromium || command -v chromium-browser || true)
if [ -z "$CHROME" ]; then
	skip "chromium" "no chromium (ops/install-deps.sh installs it)"
else
	chrome() {
		timeout 120 "$CHROME" --headless --no-sandbox --disable-gpu \
			--user-data-dir="$T/chrome" --no-first-run \
			--disable-background-networking "$@" 2>>"$T/chrome.log"
	}
	dom=$(chrome --dump-dom "http://admin:$ADMIN@127.0.0.1:$RELAY_PORT/?admin")
	text=$(printf '%s' "$dom" | sed 's/<[^>]*>/ /g' | tr -s ' \n' ' ')
	checkx "chromium renders the page: tenants acme and globex" \
		'[[ $text == *" acme "* && $text == *" globex "* ]]'
	checkx "with their samples over 24 h (120, 7) and the chart" \
		'[[ $text == *" 120 "* && $text == *" 7 "* && $dom == *"<polyline"* ]]'
	checkx "and the upstream's state" '[[ $text == *"up to date"* || $text == *"delivering"* ]]'
	dom=$(chrome --dump-dom "http://127.0.0.1:$RELAY_PORT/")
	checkx "chromium without credentials: the page, no tenant" \
		'[[ $dom == *"relay 0.1.0"* && $dom != *acme* ]]'
	shot=$BUILD_DIR/status_page.png
	rm -f "$shot"
	chrome --window-size=1100,1000 --screenshot="$shot" \
		"http://admin:$ADMIN@127.0.0.1:$RELAY_PORT/?admin" >/dev/null
	checkx "screenshot saved ($shot)" \
		'[ -s "$shot" ] && [ "$(head -c 4 "$shot" | tail -c 3)" = PNG ]'
	note "screenshot: $shot"
fi

# --- 3. the upstream down -------------------------------------------------------
stop_vm
s=$(rwsend "$URL" --token acme-st --series 5 --requests 1 --name-prefix st_down)
check "upstream down: acme's 5 samples acknowledged" [ "$(field "$s" samples_acked)" = 5 ]
_backing_off() {
	curl -s --max-time 10 "$BASE/" | grep -q "backing off"
}
if wait_until "$WAIT_CAP" _backing_off; then
	ok "upstream down: the page says backing off"
else
	fail "backing off" "$(curl -s "$BASE/" | grep -A1 state)"
fi
# and says so every time, not only between a probe and the next (the
# tenants wait for the upstream's probe, not for a backoff of their own)
n=0
for _ in $(seq 10); do
	_backing_off && n=$((n + 1))
	sleep 0.2
done
check "upstream down: the page says backing off every time ($n of 10)" [ "$n" = 10 ]
checkx "and that the upstream is down" \
	'curl -s --max-time 10 "$BASE/" | grep -q "upstream down, probed"'
page=$(curl -s --max-time 10 "$BASE/")
checkx "and shows the last error (no answer, the connection refused)" \
	'printf "%s" "$page" | grep -q "last error</th><td>[0-9T:Z-]* ([0-9a-z ]* ago): no answer</td>"'
checkx "without credentials, not its text (no upstream port $VM_PORT)" \
	'[[ $page != *"$VM_PORT"* && $page != *"no answer, <code>"* ]]'
page=$(curl -s --max-time 10 -H "Authorization: Bearer $ADMIN" "$BASE/")
checkx "with the admin token, curl's text too" \
	'printf "%s" "$page" | grep -q "last error</th><td>[^<]*: no answer, <code>[^<]*$VM_PORT[^<]*</code>"'
checkx "and one buffered entry" \
	'printf "%s" "$page" | grep -q "<tr><th>entries</th><td class=\"n\">1</td>"'
