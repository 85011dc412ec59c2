#!/usr/bin/env bash
# t_reload.sh - reloading the configuration without a restart: SIGHUP and
# POST /-/reload (admin) apply new tenant tokens, new tenants and a new
# [tenancy] label in the same process, while a sender whose token stays
# valid keeps sending across the reloads without a single refusal. A file
# that does not load keeps the old configuration in force and says why
# (FILE:LINE); a key that only a restart can change is reported and keeps
# its old value; data buffered while the upstream is down survives reloads.
# shellcheck source=tests/lib.sh disable=SC2016,SC2034
. "$(dirname "$0")/../lib.sh"
require_relay

VM_PORT=$(free_port)
RELAY_PORT=$(free_port)
start_vm "$T/vm" "$VM_PORT" || { fail setup "victoria-metrics did not start"; exit 1; }

ADMIN=adm-reload-91c2
TOK_A1=one
TOK_A2=two
TOK_B=bee-token-5521
TOK_C=cee-token-7730
CONF=$T/relay.conf
BASE=http://127.0.0.1:$RELAY_PORT
URL=$BASE/api/v1/write

# conf_v1 / conf_v2 [extra key=value ...]: the configuration before and
# after the change. v2: tenant a's token changes, tenant b appears, the
# tenancy label becomes "org"; tenant c is the same in both.
conf_v1() {
	write_conf "$CONF" "server.admin_token=$ADMIN" "tenancy.label=tenant" \
		"tenant a.token=$TOK_A1" "tenant c.token=$TOK_C" "$@"
}
conf_v2() {
	write_conf "$CONF" "server.admin_token=$ADMIN" "tenancy.label=org" \
		"tenant a.token=$TOK_A2" "tenant b.token=$TOK_B" \
		"tenant c.token=$TOK_C" "$@"
}

# reload_api [curl args...]: POST /-/reload; prints "CODE BODY" (one line).
reload_api() {
	local body code
	body=$(curl -s --max-time 30 -w '\n%{http_code}' -X POST "$@" "$BASE/-/reload")
	code=${body##*$'\n'}
	body=${body%$'\n'*}
	printf '%s %s\n' "$code" "$(printf '%s' "$body" | tr '\n' ' ')"
}

# code_with TOKEN PREFIX: status of one generated request sent with TOKEN.
code_with() {
	local sum
	sum=$(rwsend "$URL" --token "$1" --series 5 --requests 1 --name-prefix "$2" --quiet)
	if [ "$(field "$sum" status_2xx)" = 1 ]; then
		echo 204
	elif [ "$(field "$sum" status_4xx)" = 1 ]; then
		# rwsend does not print the code; ask curl for the exact one.
		"$RWSEND" --emit "$T/probe.bin" --series 1 --name-prefix "$2"
		post_rw "$URL" "$T/probe.bin" -H "Authorization: Bearer $1"
	else
		echo "other($sum)"
	fi
}

conf_v1
start_relay "$CONF" || { fail setup "relay did not become ready"; exit 1; }
PID0=$RELAY_PID

c=$(code_with "$TOK_A1" rl_a1)
check "before the reload: tenant a's token 'one' is accepted ($c)" [ "$c" = 204 ]
c=$(code_with "$TOK_B" rl_b0)
check "before the reload: tenant b does not exist yet: 401 ($c)" [ "$c" = 401 ]

# --- SIGHUP with a sender running across it --------------------------------
rwsend "$URL" --token "$TOK_C" --series 20 --requests 3000 --concurrency 4 \
	--name-prefix rl_bg --quiet >"$T/bg.out" 2>"$T/bg.err" &
BG=$!
PIDS+=("$BG")
# Let it get going before the reload.
wait_until "$WAIT_CAP" metric_ge "$RELAY_PORT" relay_tenant_requests_total 20 'tenant="c"' ||
	note "the background sender was slow to start"
bg_alive_at_hup=0
kill -0 "$BG" 2>/dev/null && bg_alive_at_hup=1
conf_v2
if hup_and_wait "configuration reloaded"; then
	ok "SIGHUP: the log says 'configuration reloaded'"
else
	fail "SIGHUP reload" "no 'configuration reloaded' line in the log"
fi
check "the background sender was still sending when SIGHUP came" [ "$bg_alive_at_hup" = 1 ]
# A few more reloads of the same file while it keeps sending.
for i in 1 2 3; do
	kill -0 "$BG" 2>/dev/null || break
	hup_and_wait "configuration reloaded" || break
done

c=$(code_with "$TOK_A2" rl_a2)
check "after SIGHUP: tenant a's new token 'two' is accepted ($c)" [ "$c" = 204 ]
c=$(code_with "$TOK_A1" rl_a1x)
check "after SIGHUP: tenant a's old token 'one' gets 401 ($c)" [ "$c" = 401 ]
c=$(code_with "$TOK_B" rl_b)
check "after SIGHUP: the new tenant b is accepted ($c)" [ "$c" = 204 ]

wait "$BG"
bg_rc=$?
_forget_pid "$BG"
bg=$(cat "$T/bg.out")
note "background sender (tenant c): $bg"
[ -s "$T/bg.err" ] && note "background sender stderr: $(head -c 300 "$T/bg.err")"
checkx "background sender across the reloads: all 3000 requests answered 2xx (rc $bg_rc)" \
	'[ "$bg_rc" = 0 ] && [ "$(field "$bg" sent)" = 3000 ] && [ "$(field "$bg" acked)" = 3000 ]'
BG_ACKED=$(field "$bg" samples_acked)

check "the same process kept serving (pid $PID0 alive)" kill -0 "$PID0"
check "the relay was started once (one 'relay started' line)" \
	[ "$(log_count 'msg="relay started"')" = 1 ]
check "the relay is ready after the reloads" \
	[ "$(http_code "$BASE/-/ready")" = 200 ]

# New series carry the new label name; the old ones kept theirs.
if wait_until "$WAIT_CAP" vm_has "$VM_PORT" '{__name__="rl_a2_metric",org="a"}' 5; then
	ok "after the reload tenant a's series carry org=\"a\""
else
	fail "new label name" "$(vm_export "$VM_PORT" '{__name__="rl_a2_metric"}' | head -c 300)"
fi
n=$(vm_series "$VM_PORT" '{__name__="rl_a2_metric",tenant!=""}')
check "after the reload no new series carries the old label 'tenant' ($n)" [ "$n" = 0 ]
if wait_until "$WAIT_CAP" vm_has "$VM_PORT" '{__name__="rl_b_metric",org="b"}' 5; then
	ok "tenant b's series arrived with org=\"b\""
else
	fail "tenant b's series" "$(vm_export "$VM_PORT" '{__name__="rl_b_metric"}' | head -c 300)"
fi
n=$(vm_series "$VM_PORT" '{__name__="rl_a1_metric",tenant="a"}')
check "series sent before the reload kept tenant=\"a\" ($n of 5)" [ "$n" = 5 ]
n=$(vm_series "$VM_PORT" '{__name__=~"rl_a1x_metric|rl_b0_metric"}')
check "nothing of the refused requests arrived ($n series)" [ "$n" = 0 ]
if wait_until "$WAIT_CAP" vm_has "$VM_PORT" '{__name__="rl_bg_metric"}' "$BG_ACKED"; then
	ok "all $BG_ACKED samples of the background sender arrived"
else
	fail "background sender's samples" \
		"found $(vm_count_distinct "$VM_PORT" '{__name__="rl_bg_metric"}') of $BG_ACKED"
fi
n1=$(vm_series "$VM_PORT" '{__name__="rl_bg_metric",tenant="c"}')
n2=$(vm_series "$VM_PORT" '{__name__="rl_bg_metric",org="c"}')
note "background series: tenant=\"c\": $n1, org=\"c\": $n2"
checkx "background series changed label name at the reload (tenant: $n1, org: $n2)" \
	'[ "$n1" = 20 ] && [ "$n2" = 20 ]'
n=$(vm_series "$VM_PORT" '{__name__="rl_bg_metric",tenant!="c",org!="c"}')
check "every background series carries tenant c under one of the names ($n others)" [ "$n" = 0 ]

# --- a broken file: SIGHUP keeps the old configuration ----------------------
conf_v2
nl=$(($(wc -l <"$CONF") + 1))
printf '[tenant zz\ntoken = zz-token\n' >>"$CONF"
before=$(log_count "reload failed")
kill -HUP "$RELAY_PID"
if wait_until "$WAIT_CAP" _log_more "reload failed" "$before"; then
	line=$(grep -F "reload failed" "$RELAY_LOG" | tail -n 1)
	note "log: $line"
	if printf '%s' "$line" | grep -qF "$CONF:$nl:"; then
		ok "SIGHUP on an unterminated section header: the log names $(basename "$CONF"):$nl"
	else
		fail "SIGHUP broken file: FILE:LINE in the log" "$line"
	fi
else
	fail "SIGHUP broken file" "no 'reload failed' line in the log"
fi
c=$(code_with "$TOK_A2" rl_keep1)
check "after a failed SIGHUP the old config stays: token 'two' accepted ($c)" [ "$c" = 204 ]
c=$(code_with zz-token rl_zz)
check "after a failed SIGHUP the broken file's tenant zz is not in force ($c)" [ "$c" = 401 ]
check "the relay still runs after a failed SIGHUP" kill -0 "$PID0"
check "/metrics: relay_config_last_reload_successful 0 after it" \
	metric_is "$RELAY_PORT" relay_config_last_reload_successful 0

# --- POST /-/reload -----------------------------------------------------
r=$(reload_api -H "Authorization: Bearer $ADMIN")
note "POST /-/reload on the broken file: $r"
check "POST /-/reload on a broken file: 400" [ "${r%% *}" = 400 ]
checkx "POST /-/reload on a broken file: the answer names $(basename "$CONF"):$nl" \
	'grep -qF "$CONF:$nl:" <<<"$r"'

conf_v2
nl=$(($(wc -l <"$CONF") + 1))
echo "no_such_key = 1" >>"$CONF"
r=$(reload_api -H "Authorization: Bearer $ADMIN")
note "POST /-/reload with an unknown key: $r"
checkx "POST /-/reload with an unknown key: 400 naming $(basename "$CONF"):$nl" \
	'[ "${r%% *}" = 400 ] && grep -qF "$CONF:$nl:" <<<"$r" && grep -qF no_such_key <<<"$r"'
c=$(code_with "$TOK_A2" rl_keep2)
check "after a refused POST /-/reload the old config stays: token 'two' ($c)" [ "$c" = 204 ]

conf_v2 "tenant d.token=dee-token"
r=$(reload_api)
check "POST /-/reload without a token: 401 (${r%% *})" [ "${r%% *}" = 401 ]
r=$(reload_api -H "Authorization: Bearer $TOK_A2")
check "POST /-/reload with a tenant's token: 401 (${r%% *})" [ "${r%% *}" = 401 ]
r=$(reload_api -H "Authorization: Bearer ${ADMIN}x")
check "POST /-/reload with a wrong admin token: 401 (${r%% *})" [ "${r%% *}" = 401 ]
c=$(code_with dee-token rl_d0)
check "a refused (401) reload changed nothing: tenant d unknown ($c)" [ "$c" = 401 ]
c=$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 "$BASE/-/reload" \
	-H "Authorization: Bearer $ADMIN")
check "GET /-/reload is not a reload (got $c)" [ "$c" != 200 ]
r=$(reload_api -H "Authorization: Bearer $ADMIN")
note "POST /-/reload on a good file: $r"
check "POST /-/reload on a good file: 200" [ "${r%% *}" = 200 ]
check "/metrics: relay_config_last_reload_successful 1 again" \
	metric_is "$RELAY_PORT" relay_config_last_reload_successful 1
ts=$(metric "$RELAY_PORT" relay_config_last_reload_success_timestamp_seconds)
st=$(metric "$RELAY_PORT" relay_start_time_seconds)
checkx "and its time is that of the reload, after the start ($ts, started $st)" \
	'[ "${ts%.*}" -gt "${st%.*}" ]'
c=$(code_with dee-token rl_d)
check "after POST /-/reload the new tenant d is accepted ($c)" [ "$c" = 204 ]

# --- a key that needs a restart -----------------------------------------
thr=$(metric "$RELAY_PORT" relay_requests_total)
conf_v2 "tenant d.token=dee-token" server.threads=5 storage.dedup_window=1m
r=$(reload_api -H "Authorization: Bearer $ADMIN")
note "POST /-/reload changing [server] threads: $r"
check "a non-reloadable change is not an error: 200" [ "${r%% *}" = 200 ]
checkx "the answer names 'threads' as needing a restart" \
	'grep -qiE "restart.*threads|threads.*restart" <<<"$r"'
line=$(grep -iE 'restart' "$RELAY_LOG" | grep -F threads | tail -n 1)
note "log: $line"
check "the log names 'threads' as needing a restart" [ -n "$line" ]
before=$(log_count threads)
if hup_and_wait "configuration reloaded"; then
	ok "SIGHUP with a non-reloadable change still reloads"
else
	fail "SIGHUP non-reloadable" "no 'configuration reloaded' line"
fi
check "SIGHUP with a non-reloadable change warns in the log again" \
	[ "$(log_count threads)" -gt "$before" ]
sum=$(rwsend "$URL" --token "$TOK_A2" --series 10 --requests 20 --concurrency 4 \
	--name-prefix rl_thr --quiet)
check "the relay serves after a non-reloadable change ($sum)" \
	[ "$(field "$sum" acked)" = 20 ]
check "the relay is ready after a non-reloadable change" \
	[ "$(http_code "$BASE/-/ready")" = 200 ]
note "relay_requests_total before: $thr, after: $(metric "$RELAY_PORT" relay_requests_total)"

# --- the admin token itself is reloadable -------------------------------
conf_v2 "tenant d.token=dee-token" server.threads=5 storage.dedup_window=1m \
	"server.admin_token=${ADMIN}-new"
r=$(reload_api -H "Authorization: Bearer $ADMIN")
check "reload to a new admin token: 200 (${r%% *})" [ "${r%% *}" = 200 ]
r=$(reload_api -H "Authorization: Bearer $ADMIN")
check "the old admin token is refused afterwards: 401 (${r%% *})" [ "${r%% *}" = 401 ]
r=$(reload_api -H "Authorization: Bearer ${ADMIN}-new")
check "the new admin token works: 200 (${r%% *})" [ "${r%% *}" = 200 ]
ADMIN=${ADMIN}-new

# --- buffered data across reloads with the upstream down ----------------
if wait_until "$WAIT_CAP" metric_is "$RELAY_PORT" relay_buffer_entries 0; then
	ok "the buffer is empty before the outage"
else
	fail "buffer empty before the outage" "relay_buffer_entries=$(metric "$RELAY_PORT" relay_buffer_entries)"
fi
stop_vm
s1=$(rwsend "$URL" --token "$TOK_A2" --series 30 --requests 20 --concurrency 4 \
	--name-prefix rl_buf1 --quiet)
conf_v1 "server.admin_token=$ADMIN" "tenant d.token=dee-token"
hup_and_wait "configuration reloaded" || fail "reload while VM is down" "no 'configuration reloaded' line"
s2=$(rwsend "$URL" --token "$TOK_A1" --series 30 --requests 20 --concurrency 4 \
	--name-prefix rl_buf2 --quiet)
conf_v2 "server.admin_token=$ADMIN"
r=$(reload_api -H "Authorization: Bearer $ADMIN")
check "POST /-/reload while the upstream is down: 200 (${r%% *})" [ "${r%% *}" = 200 ]
s3=$(rwsend "$URL" --token "$TOK_A2" --series 30 --requests 20 --concurrency 4 \
	--name-prefix rl_buf3 --quiet)
note "while VM is down: $s1 / $s2 / $s3"
checkx "everything sent while VM was down was acknowledged" \
	'[ "$(field "$s1" acked)" = 20 ] && [ "$(field "$s2" acked)" = 20 ] && [ "$(field "$s3" acked)" = 20 ]'
buf=$(metric "$RELAY_PORT" relay_buffer_samples)
check "the buffer holds what was sent while VM is down ($buf >= 1800)" [ "${buf:-0}" -ge 1800 ]
start_vm "$T/vm" "$VM_PORT" || { fail setup "victoria-metrics did not restart"; exit 1; }
for p in rl_buf1 rl_buf2 rl_buf3; do
	sel="{__name__=\"${p}_metric\"}"
	if wait_until "$WAIT_CAP" vm_has "$VM_PORT" "$sel" 600; then
		ok "$p: all 600 acknowledged samples arrived after the reloads"
	else
		fail "$p arrived" "found $(vm_count_distinct "$VM_PORT" "$sel") of 600"
	fi
done
n=$(vm_series "$VM_PORT" '{__name__="rl_buf2_metric",tenant="a"}')
check "data buffered under the old label kept it (tenant=\"a\": $n of 30)" [ "$n" = 30 ]
if wait_until "$WAIT_CAP" metric_is "$RELAY_PORT" relay_buffer_entries 0; then
	ok "the buffer empties after the outage"
else
	fail "buffer empties" "relay_buffer_entries=$(metric "$RELAY_PORT" relay_buffer_entries)"
fi
checkx "still the same process at the end (pid $PID0)" '[ "$RELAY_PID" = "$PID0" ] && kill -0 "$PID0"'
if stop_relay; then
	ok "the relay exits 0 after the reloads"
else
	fail "clean stop after reloads" "non-zero exit"
fi
