#!/usr/bin/env bash
# t_setaside.sh - batches the upstream refused for good: VictoriaMetrics
# takes at most 100000 decoded bytes per request and the relay gets one
# request of one series with 9000 samples (well over that: one series, so
# it is all in one delivery lane) between small ones. The big one
# is set aside with VictoriaMetrics' answer; `relay setaside list` and GET
# /api/v1/setaside show it; `relay setaside replay` (through the running
# relay's admin API) queues it again, and it is refused and set aside again
# under a new seq until VictoriaMetrics takes larger requests, then it
# arrives. `setaside purge` deletes one and the tenant's usage says so.
# With the relay stopped the same commands work on the data directory.
# shellcheck source=tests/lib.sh disable=SC2016,SC2034
. "$(dirname "$0")/../lib.sh"
require_relay

VM_PORT=$(free_port)
RELAY_PORT=$(free_port)
VM_SMALL=-maxInsertRequestSize=100000
VM_LARGE=-maxInsertRequestSize=10000000
start_vm "$T/vm" "$VM_PORT" "$VM_SMALL" || { fail setup "victoria-metrics did not start"; exit 1; }

ADMIN=adm-setaside-4e1f
TOKEN=acme-setaside-88d0
CONF=$T/relay.conf
write_conf "$CONF" "server.admin_token=$ADMIN" "tenant acme.token=$TOKEN"
# The same relay without an admin token, for the CLI's refusal.
write_conf "$T/noadmin.conf" "tenant acme.token=$TOKEN"
start_relay "$CONF" || { fail setup "relay did not become ready"; exit 1; }
BASE=http://127.0.0.1:$RELAY_PORT
URL=$BASE/api/v1/write

# sa_json: GET /api/v1/setaside (admin).
sa_json() {
	curl -s --max-time 10 -H "Authorization: Bearer $ADMIN" "$BASE/api/v1/setaside"
}

# sa_len: how many entries GET /api/v1/setaside lists ("x" on an error).
sa_len() {
	sa_json | jq '.setaside | length' 2>/dev/null || echo x
}

sa_len_is() {
	[ "$(sa_len)" = "$1" ]
}

# cli OP [args...]: `relay setaside OP -c $CONF ...`; stdout+stderr in $T/cli.out,
# returns its exit code.
cli() {
	local op=$1
	shift
	"$RELAY_BIN" setaside "$op" -c "$CONF" "$@" >"$T/cli.out" 2>"$T/cli.err"
}

# big PREFIX: one request of one series with 9000 samples.
big() {
	rwsend "$URL" --token "$TOKEN" --series 1 --samples-per-series 9000 --requests 1 --name-prefix "$1"
}

# one_seq_not SEQ: true when exactly one entry is set aside and its seq is
# not SEQ.
one_seq_not() {
	local j
	j=$(sa_json)
	[ "$(jq '.setaside | length' <<<"$j" 2>/dev/null)" = 1 ] &&
		[ "$(jq '.setaside[0].seq' <<<"$j")" != "$1" ]
}

# --- a batch refused for good -----------------------------------------------
a=$(rwsend "$URL" --token "$TOKEN" --series 50 --requests 10 --name-prefix sa_a)
sum=$(big sa_big)
note "sa_big: $sum"
b=$(rwsend "$URL" --token "$TOKEN" --series 50 --requests 10 --name-prefix sa_b)
check "the 9000-sample request is acknowledged (204)" [ "$(field "$sum" status_2xx)" = 1 ]
checkx "the small requests are acknowledged" \
	'[ "$(field "$a" samples_acked)" = 500 ] && [ "$(field "$b" samples_acked)" = 500 ]'
for p in sa_a sa_b; do
	if wait_until "$WAIT_CAP" vm_has "$VM_PORT" "{__name__=\"${p}_metric\"}" 500; then
		ok "$p: all 500 samples arrived past the refused batch"
	else
		fail "$p arrived" "found $(vm_count_distinct "$VM_PORT" "{__name__=\"${p}_metric\"}") of 500"
	fi
done
if wait_until "$WAIT_CAP" metric_is "$RELAY_PORT" relay_batches_set_aside_total 1; then
	ok "the big batch is set aside (relay_batches_set_aside_total = 1)"
else
	fail "set aside" "relay_batches_set_aside_total=$(metric "$RELAY_PORT" relay_batches_set_aside_total)"
fi
check "relay_samples_set_aside_total = 9000" \
	metric_is "$RELAY_PORT" relay_samples_set_aside_total 9000
wait_until "$WAIT_CAP" sa_len_is 1 || note "the set-aside list did not show one entry"

# --- list: CLI (relay running) and admin API ---------------------------------
if cli list; then
	out=$(cat "$T/cli.out")
	note "setaside list: $out"
	checkx "setaside list (relay running): one entry" '[ "$(grep -c "seq=" <<<"$out")" = 1 ]'
	checkx "setaside list: tenant acme, status 400, 9000 samples" \
		'grep -q "tenant=acme " <<<"$out" && grep -q " status=400 " <<<"$out" && grep -q " samples=9000 " <<<"$out"'
	checkx "setaside list: shows VictoriaMetrics' reason (maxInsertRequestSize)" \
		'grep -q "reason=\".*maxInsertRequestSize" <<<"$out"'
else
	fail "setaside list while the relay runs" "exit $?: $(cat "$T/cli.err")"
fi
j=$(sa_json)
note "GET /api/v1/setaside: $(head -c 400 <<<"$j")"
checkx "GET /api/v1/setaside: one entry, tenant acme, status 400, 9000 samples, series 1" \
	'[ "$(jq -c "[.setaside[] | [.tenant, .status, .samples, .series]]" <<<"$j")" = "[[\"acme\",400,9000,1]]" ]'
checkx "GET /api/v1/setaside: the reason is VictoriaMetrics' answer" \
	'jq -r ".setaside[0].reason" <<<"$j" | grep -q maxInsertRequestSize'
SEQ1=$(jq '.setaside[0].seq' <<<"$j")
checkx "the CLI and the API name the same seq ($SEQ1)" 'grep -q "seq=$SEQ1 " "$T/cli.out"'
n=$(curl -s --max-time 10 -H "Authorization: Bearer $ADMIN" \
	"$BASE/api/v1/setaside?tenant=nobody" | jq '.setaside | length')
check "GET /api/v1/setaside?tenant=nobody: empty ($n)" [ "$n" = 0 ]
c=$(http_code "$BASE/api/v1/setaside")
check "GET /api/v1/setaside without the admin token: 401 ($c)" [ "$c" = 401 ]
c=$(http_code "$BASE/api/v1/setaside" -H "Authorization: Bearer $TOKEN")
check "GET /api/v1/setaside with a tenant's token: 401 ($c)" [ "$c" = 401 ]
c=$(http_code "$BASE/api/v1/setaside/replay" -X POST)
check "POST /api/v1/setaside/replay without the admin token: 401 ($c)" [ "$c" = 401 ]
c=$(http_code "$BASE/api/v1/setaside/purge" -X POST -H "Authorization: Bearer $TOKEN")
check "POST /api/v1/setaside/purge with a tenant's token: 401 ($c)" [ "$c" = 401 ]
check "a refused purge deleted nothing" sa_len_is 1

# --- the CLI without an admin token while the relay runs -----------------
"$RELAY_BIN" setaside replay -c "$T/noadmin.conf" >"$T/na.out" 2>&1
rc=$?
note "setaside replay without admin_token: exit $rc: $(cat "$T/na.out")"
checkx "setaside replay without admin_token (relay running): fails and says to set admin_token" \
	'[ "$rc" != 0 ] && grep -q admin_token "$T/na.out"'
"$RELAY_BIN" setaside purge -c "$T/noadmin.conf" >"$T/na.out" 2>&1
rc=$?
checkx "setaside purge without admin_token (relay running): fails and says to set admin_token" \
	'[ "$rc" != 0 ] && grep -q admin_token "$T/na.out"'
check "neither changed the list" sa_len_is 1

# --- replay while VictoriaMetrics still refuses --------------------------
if cli replay; then
	ok "setaside replay (relay running, through the admin API): exit 0"
else
	fail "setaside replay" "exit $?: $(cat "$T/cli.out" "$T/cli.err")"
fi
if wait_until "$WAIT_CAP" metric_is "$RELAY_PORT" relay_batches_set_aside_total 2 &&
	wait_until "$WAIT_CAP" one_seq_not "$SEQ1"; then
	ok "replayed, refused again, set aside again under a new seq"
else
	fail "replay refused again" "set_aside_total=$(metric "$RELAY_PORT" relay_batches_set_aside_total) list: $(sa_json | head -c 300)"
fi
j=$(sa_json)
SEQ2=$(jq '.setaside[0].seq' <<<"$j")
note "seq before: $SEQ1, after the replay: $SEQ2"
checkx "the new seq is later than the old ($SEQ2 > $SEQ1)" '[ "$SEQ2" -gt "$SEQ1" ]'
checkx "set aside again with status 400 and 9000 samples" \
	'[ "$(jq -c ".setaside[0] | [.status, .samples]" <<<"$j")" = "[400,9000]" ]'
check "relay_upstream_requests_total{code=\"400\"} >= 2" \
	metric_ge "$RELAY_PORT" relay_upstream_requests_total 2 'code="400"'
n=$(vm_count "$VM_PORT" '{__name__="sa_big_metric"}')
check "nothing of the refused batch is in VictoriaMetrics ($n)" [ "$n" = 0 ]

# --- VictoriaMetrics takes larger requests: replay delivers ---------------
stop_vm
start_vm "$T/vm" "$VM_PORT" "$VM_LARGE" || { fail setup "victoria-metrics did not restart"; exit 1; }
if cli replay; then
	ok "setaside replay after VictoriaMetrics' limit was raised: exit 0"
else
	fail "setaside replay (2)" "exit $?: $(cat "$T/cli.out" "$T/cli.err")"
fi
if wait_until "$WAIT_CAP" vm_has "$VM_PORT" '{__name__="sa_big_metric"}' 9000; then
	ok "the 9000 samples of the replayed batch arrived"
else
	fail "replayed batch arrived" "found $(vm_count_distinct "$VM_PORT" '{__name__="sa_big_metric"}') of 9000"
fi
n=$(vm_series "$VM_PORT" '{__name__="sa_big_metric",tenant="acme"}')
check "the replayed series carry tenant=\"acme\" ($n of 1)" [ "$n" = 1 ]
if wait_until "$WAIT_CAP" sa_len_is 0; then
	ok "the set-aside list is empty after the replay"
else
	fail "set-aside list empty" "$(sa_json | head -c 300)"
fi
cli list
checkx "setaside list (CLI) is empty too" '[ ! -s "$T/cli.out" ]'
check "relay_batches_set_aside_total stays 2" \
	metric_is "$RELAY_PORT" relay_batches_set_aside_total 2
if wait_until "$WAIT_CAP" metric_is "$RELAY_PORT" relay_buffer_entries 0; then
	ok "the buffer is empty"
else
	fail "buffer empty" "relay_buffer_entries=$(metric "$RELAY_PORT" relay_buffer_entries)"
fi

# --- purge (through the running relay) -------------------------------------
stop_vm
start_vm "$T/vm" "$VM_PORT" "$VM_SMALL" || { fail setup "victoria-metrics did not restart"; exit 1; }
purged0=$(usage_sum "$(usage_json "$BASE" "$ADMIN" tenant=acme)" acme samples_dropped_purged)
sum=$(big sa_big2)
check "another 9000-sample request: 204" [ "$(field "$sum" status_2xx)" = 1 ]
if wait_until "$WAIT_CAP" sa_len_is 1; then
	ok "the second poison batch is set aside"
else
	fail "second poison set aside" "$(sa_json | head -c 300)"
fi
if cli purge; then
	ok "setaside purge (relay running): exit 0"
else
	fail "setaside purge" "exit $?: $(cat "$T/cli.out" "$T/cli.err")"
fi
if wait_until "$WAIT_CAP" sa_len_is 0; then
	ok "the set-aside list is empty after the purge"
else
	fail "list empty after purge" "$(sa_json | head -c 300)"
fi
check "relay_samples_set_aside_total counts all three set-asides (27000)" \
	metric_is "$RELAY_PORT" relay_samples_set_aside_total 27000
j=$(usage_json "$BASE" "$ADMIN" tenant=acme)
u=$(usage_sum "$j" acme samples_dropped_purged)
note "acme usage: samples_dropped_purged=$u (before: $purged0), samples_dropped_set_aside=$(usage_sum "$j" acme samples_dropped_set_aside), samples_delivered=$(usage_sum "$j" acme samples_delivered)"
check "acme's usage: samples_dropped_purged = 9000 ($u)" [ "$u" = 9000 ]
u=$("$RELAY_BIN" usage -c "$CONF" --tenant acme --csv 2>&1)
col=$(head -n 1 <<<"$u" | tr ',' '\n' | grep -nx samples_dropped_purged | cut -d: -f1)
v=$(tail -n +2 <<<"$u" | cut -d, -f"${col:-1}" | awk '{ s += $1 } END { if (NR) print s }')
check "relay usage (CLI) agrees: samples_dropped_purged = 9000 (${v:-none})" [ "${v:-}" = 9000 ]

# --- with the relay stopped, the CLI works on the data directory ----------
sum=$(big sa_c)
check "poison batch sa_c: 204" [ "$(field "$sum" status_2xx)" = 1 ]
wait_until "$WAIT_CAP" sa_len_is 1 || fail "sa_c set aside" "$(sa_json | head -c 300)"
sum=$(big sa_d)
check "poison batch sa_d: 204" [ "$(field "$sum" status_2xx)" = 1 ]
wait_until "$WAIT_CAP" sa_len_is 2 || fail "sa_d set aside" "$(sa_json | head -c 300)"
j=$(sa_json)
SEQ_C=$(jq '[.setaside[].seq] | min' <<<"$j")
SEQ_D=$(jq '[.setaside[].seq] | max' <<<"$j")
note "set aside: sa_c seq=$SEQ_C, sa_d seq=$SEQ_D"
if stop_relay; then
	ok "the relay stops cleanly with set-aside entries"
else
	fail "stop relay" "non-zero exit"
fi
if cli list; then
	out=$(cat "$T/cli.out")
	checkx "setaside list (relay stopped): the two entries" \
		'[ "$(grep -c "status=400" <<<"$out")" = 2 ] && grep -q "seq=$SEQ_C " <<<"$out" && grep -q "seq=$SEQ_D " <<<"$out"'
else
	fail "setaside list (relay stopped)" "exit $?: $(cat "$T/cli.err")"
fi
if cli list --seq "$SEQ_D"; then
	checkx "setaside list --seq $SEQ_D: that entry only" \
		'[ "$(grep -c "seq=" "$T/cli.out")" = 1 ] && grep -q "seq=$SEQ_D " "$T/cli.out"'
else
	fail "setaside list --seq" "exit $?: $(cat "$T/cli.err")"
fi
if cli purge --seq "$SEQ_D"; then
	note "setaside purge --seq $SEQ_D: $(cat "$T/cli.out")"
	checkx "setaside purge --seq (relay stopped): deletes 1 entry" 'grep -q "1 entries" "$T/cli.out"'
else
	fail "setaside purge (relay stopped)" "exit $?: $(cat "$T/cli.out" "$T/cli.err")"
fi
cli list
checkx "after the purge only sa_c's entry is left" \
	'[ "$(grep -c "seq=" "$T/cli.out")" = 1 ] && grep -q "seq=$SEQ_C " "$T/cli.out"'
if cli replay; then
	note "setaside replay (relay stopped): $(cat "$T/cli.out")"
	checkx "setaside replay (relay stopped): queues 1 entry" 'grep -q "1 entries" "$T/cli.out"'
else
	fail "setaside replay (relay stopped)" "exit $?: $(cat "$T/cli.out" "$T/cli.err")"
fi
cli list
checkx "after the replay the list is empty" '[ ! -s "$T/cli.out" ]'

stop_vm
start_relay "$CONF" || { fail "restart" "relay did not become ready"; exit 1; }
checkx "on restart (VictoriaMetrics down) the replayed entry is in the buffer: 1 entry, 9000 samples" \
	'metric_is "$RELAY_PORT" relay_buffer_entries 1 && metric_is "$RELAY_PORT" relay_buffer_samples 9000'
check "nothing set aside after the restart" sa_len_is 0
start_vm "$T/vm" "$VM_PORT" "$VM_LARGE" || { fail setup "victoria-metrics did not restart"; exit 1; }
if wait_until "$WAIT_CAP" vm_has "$VM_PORT" '{__name__="sa_c_metric"}' 9000; then
	ok "the entry replayed offline is delivered after the restart (9000 samples)"
else
	fail "offline replay delivered" "found $(vm_count_distinct "$VM_PORT" '{__name__="sa_c_metric"}') of 9000"
fi
if wait_until "$WAIT_CAP" metric_is "$RELAY_PORT" relay_buffer_entries 0; then
	ok "the buffer empties"
else
	fail "buffer empties" "relay_buffer_entries=$(metric "$RELAY_PORT" relay_buffer_entries)"
fi
n=$(vm_count "$VM_PORT" '{__name__="sa_d_metric"}')
check "the entry purged offline never arrives ($n)" [ "$n" = 0 ]
check "the set-aside list is empty at the end" sa_len_is 0
u=$(usage_sum "$(usage_json "$BASE" "$ADMIN" tenant=acme)" acme samples_dropped_purged)
note "acme usage after the offline purge: samples_dropped_purged=$u"
