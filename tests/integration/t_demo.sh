#!/usr/bin/env bash
# t_demo.sh - `make demo` (ops/demo.sh) without a terminal: the series of
# the three exporters arrive in VictoriaMetrics with their tenant's label
# (acme: PostgreSQL and node; beta: Redis and node), the exporters' rules
# match what the real exporters expose (Redis filled past its maxmemory:
# RedisEvictingKeys fires, RedisMemoryHigh is pending; 16 connections of 20:
# PostgresqlTooManyConnections is pending), stopping PostgreSQL makes
# vmalert fire PostgresqlDown for tenant acme, and SIGTERM stops every
# process the demo started and removes its directory.
#
# The demo runs as a background job, which ignores SIGINT when there is no
# terminal (bash starts background jobs so), so it is stopped by SIGTERM, the
# other signal it handles alike. PostgresqlDown has for: 1m in
# ops/exporters-rules.yml, used as it is: that wait is most of this test.
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/../lib.sh"
require_relay

# PostgreSQL runs as the postgres user when the demo runs as root: it must
# be able to reach the demo's directory, which is under ours.
[ "$(id -u)" != 0 ] || chmod 0711 "$T"

TMPDIR=$T "$REPO/ops/demo.sh" >"$T/demo.out" 2>&1 &
DEMO_PID=$!
PIDS+=("$DEMO_PID")

_ready() { grep -qx 'demo: ready' "$T/demo.out"; }
if ! wait_until 180 _ready; then
	fail "the demo starts" "no 'demo: ready' line"
	sed 's/^/# /' "$T/demo.out" | tail -n 30
	exit 1
fi
ok "the demo starts and prints what runs where"
env_file=$(ls "$T"/demo.*/demo.env 2>/dev/null | head -n 1)
[ -n "$env_file" ] || { fail "the demo writes demo.env" "none under $T"; exit 1; }
# shellcheck disable=SC1090
. "$env_file"
for u in "http://127.0.0.1:$VM_PORT/targets" "http://127.0.0.1:$VMALERT_PORT/vmalert/alerts" \
	"http://127.0.0.1:$ACME_PROM_PORT/graph" "http://127.0.0.1:$RELAY_PORT/metrics"; do
	checkx "the demo prints $u and it answers" \
		'grep -qF "$u" "$T/demo.out" && [ "$(http_code "$u" -L)" = 200 ]'
done

# Every process of the demo, and their children (PostgreSQL's backends,
# nginx's worker), to check that none is left at the end.
all_pids=$DEMO_PIDS
for p in $DEMO_PIDS; do
	all_pids="$all_pids $(pgrep -P "$p" | tr '\n' ' ')"
done

# --- the exporters' series, with their tenant's label --------------------------
has() { vm_has "$VM_PORT" "$1" 1; }
check "postgres-exporter's pg_up arrives with tenant=acme" \
	wait_until 120 has 'pg_up{job="postgres",tenant="acme"}'
check "redis-exporter's redis_up arrives with tenant=beta" \
	wait_until 120 has 'redis_up{job="redis",tenant="beta"}'
for t in acme beta; do
	check "node-exporter's series arrive with tenant=$t" \
		wait_until 120 has "node_memory_MemTotal_bytes{job=\"node\",tenant=\"$t\"}"
done
checkx "no PostgreSQL series carries another tenant than acme" \
	'[ "$(vm_series "$VM_PORT" "{__name__=~\"pg_.+\",tenant!=\"acme\"}")" = 0 ]'
checkx "no Redis series carries another tenant than beta" \
	'[ "$(vm_series "$VM_PORT" "{__name__=~\"redis_.+\",tenant!=\"beta\"}")" = 0 ]'
checkx "the relay's own series are scraped by VictoriaMetrics, not through the relay" \
	'has "relay_build_info{job=\"relay\"}" &&
	 [ "$(vm_series "$VM_PORT" "relay_build_info{tenant!=\"\"}")" = 0 ]'
for t in acme beta; do
	check "the relay counts samples of tenant $t" \
		metric_ge "$RELAY_PORT" relay_tenant_samples_received_total 1 "tenant=\"$t\""
done
checkx "vmalert has the rules of ops/ loaded" \
	'vmalert_rules "$VMALERT_PORT" | grep -qx PostgresqlDown &&
	 vmalert_rules "$VMALERT_PORT" | grep -qx RelayDown'

# --- Redis over its maxmemory (64mb in the demo): evictions, memory high --------
redis-cli -p "$REDIS_PORT" EVAL \
	"for i=1,300000 do redis.call('SET','k'..i,string.rep('x',300)) end" 0 >/dev/null
check "RedisEvictingKeys fires for tenant beta once Redis evicts" \
	wait_until 120 vmalert_firing "$VMALERT_PORT" RedisEvictingKeys tenant=beta job=redis
check "RedisMemoryHigh is pending for tenant beta (its for: is 5m)" \
	wait_until 60 vmalert_state "$VMALERT_PORT" pending RedisMemoryHigh tenant=beta

# --- 16 of PostgreSQL's 20 connections in use: PostgresqlTooManyConnections --------
sleepers=()
for _ in $(seq 16); do
	psql -h 127.0.0.1 -p "$PG_PORT" -U postgres -Atqc 'select pg_sleep(600)' \
		>/dev/null 2>&1 &
	sleepers+=("$!")
	PIDS+=("$!")
done
check "PostgresqlTooManyConnections is pending for tenant acme (its for: is 5m)" \
	wait_until 120 vmalert_state "$VMALERT_PORT" pending PostgresqlTooManyConnections tenant=acme
for p in "${sleepers[@]}"; do
	_stop_pid "$p"
	_forget_pid "$p"
done

# --- PostgreSQL stops: PostgresqlDown fires for acme ---------------------------
checkx "PostgresqlDown is not firing while PostgreSQL runs" \
	'! vmalert_firing "$VMALERT_PORT" PostgresqlDown'
kill -INT "$PG_PID"   # fast shutdown
check "PostgreSQL stops" wait_until "$WAIT_CAP" _gone "$PG_PID"
if wait_until 180 vmalert_firing "$VMALERT_PORT" PostgresqlDown tenant=acme job=postgres; then
	ok "vmalert fires PostgresqlDown for tenant acme"
else
	fail "vmalert fires PostgresqlDown for tenant acme" "not firing"
	vmalert_alerts "$VMALERT_PORT" pending | sed 's/^/# pending: /'
	vm_query_json "$VM_PORT" 'pg_up' | sed 's/^/# /'
fi
checkx "RedisDown is not firing (Redis runs)" '! vmalert_firing "$VMALERT_PORT" RedisDown'
_notified() { grep -q '^200 /api/v2/alerts' "$DEMO_DIR/notifier/access.log"; }
check "vmalert sent the alert to the demo's receiver" wait_until "$WAIT_CAP" _notified

# --- SIGTERM: everything stops, the directory goes --------------------------------
kill -TERM "$DEMO_PID"
if wait_until 120 _gone "$DEMO_PID"; then
	ok "the demo ends on SIGTERM"
else
	fail "the demo ends on SIGTERM" "still running"
fi
wait "$DEMO_PID" 2>/dev/null
rc=$?
_forget_pid "$DEMO_PID"
checkx "the demo exits 0 after a stop it was asked for (got $rc)" '[ "$rc" = 0 ]'
checkx "the demo says it stops" 'grep -qx "demo: stopping" "$T/demo.out"'
left=
for p in $all_pids; do
	[ "$p" = "$PG_PID" ] && continue
	kill -0 "$p" 2>/dev/null && left="$left $p($(ps -o comm= -p "$p"))"
done
checkx "no process the demo started is left ($(wc -w <<<"$all_pids") checked)" '[ -z "$left" ]'
[ -z "$left" ] || note "left:$left"
# Nothing runs in (or from) its directory either.
inside=
for d in /proc/[0-9]*; do
	c=$(readlink "$d/cwd" 2>/dev/null) || continue
	case $c in "$DEMO_DIR"*) inside="$inside ${d#/proc/}" ;; esac
done
checkx "no process has its working directory in the demo's directory" '[ -z "$inside" ]'
checkx "the demo's directory is removed" '[ ! -e "$DEMO_DIR" ]'
