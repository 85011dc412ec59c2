#!/usr/bin/env bash
# ops/demo.sh - the relay in the stack it is made for, on this machine
# (`make demo`): PostgreSQL and Redis with their exporters, node-exporter,
# two Prometheus 2.42 (tenants acme and beta, each with its own token)
# writing through the relay, VictoriaMetrics as the store and vmalert with
# the rules of ops/. Everything listens on free loopback ports and keeps its
# state in one temporary directory; every program is started here, as the
# current user (PostgreSQL as the postgres user when that is root, which it
# refuses to run as), never through the packages' system services.
#
# What scrapes what:
#   acme's Prometheus: PostgreSQL's exporter and node-exporter
#   beta's Prometheus: Redis's exporter and node-exporter
#   VictoriaMetrics itself: the relay, vmalert and itself (job relay,
#     vmalert, victoria-metrics), not through the relay, so that RelayDown
#     can fire when the relay is down (docs/operations.md)
#
# It prints what runs where and waits; SIGINT (Ctrl-C) or SIGTERM stops
# every process it started, by PID, last started first, and removes the
# directory. KEEP_TMP=1 keeps the directory. The packages it needs are in
# ops/install-deps.sh (make demo runs it first).
#
# The processes are managed by the helpers of tests/lib.sh, which the tests
# use too; the demo's result lines are its own (no ok/FAIL counting).
set -u
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/../tests/lib.sh"

# A stop asked for is a normal end: exit 0, so that the trap of lib.sh stops
# and removes everything without dumping logs as it does after a failure.
trap 'echo; echo "demo: stopping"; exit 0' INT TERM

EVERY=${DEMO_INTERVAL:-5s}   # scrape and rule evaluation interval
ACME_TOKEN=acme-demo-token
BETA_TOKEN=beta-demo-token
ADMIN_TOKEN=admin-demo-token
L=$T/logs
mkdir -p "$L"

die() {
	echo "demo: $*" >&2
	exit 1
}

for cmd in victoria-metrics vmalert prometheus nginx redis-server \
	prometheus-postgres-exporter prometheus-redis-exporter \
	prometheus-node-exporter curl jq; do
	command -v "$cmd" >/dev/null || die "$cmd is missing: run ops/install-deps.sh"
done
PG_BIN=$(printf '%s\n' /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
[ -x "$PG_BIN/initdb" ] || die "PostgreSQL is missing: run ops/install-deps.sh"
[ -x "$RELAY_BIN" ] || die "no relay at $RELAY_BIN: run make"

# run_bg NAME CMD...: starts CMD in the background, its output in $L/NAME.log,
# its pid in PID_OF[NAME]; stopped when the demo ends.
declare -A PID_OF=()
run_bg() {
	local name=$1
	shift
	"$@" >>"$L/$name.log" 2>&1 &
	PIDS+=("$!")
	PID_OF[$name]=$!
}

# up NAME PORT: waits until PORT answers, or ends the demo with NAME's log.
up() {
	wait_until "$WAIT_CAP" _port_listening "$2" && return 0
	_dump_log "$L/$1.log" 15 >&2
	die "$1 did not come up on port $2"
}

# PostgreSQL refuses to run as root: then its files and processes belong to
# the postgres user of the Debian package, and the demo's directory is
# opened to it for traversal only.
AS_PG=()
if [ "$(id -u)" = 0 ]; then
	id postgres >/dev/null 2>&1 || die "running as root and there is no postgres user"
	chmod 0711 "$T"
	AS_PG=(setpriv --reuid=postgres --regid=postgres --init-groups --)
fi

PG_PORT=$(free_port)
PGX_PORT=$(free_port)
REDIS_PORT=$(free_port)
REDISX_PORT=$(free_port)
NODE_PORT=$(free_port)
VM_PORT=$(free_port)
RELAY_PORT=$(free_port)
ACME_PORT=$(free_port)
BETA_PORT=$(free_port)
VMALERT_PORT=$(free_port)
NOTIFY_PORT=$(free_port)

echo "demo: starting in $T (logs in $T/logs)"

# --- PostgreSQL and its exporter ------------------------------------------
mkdir -p "$T/pg" "$T/pg-run"
[ ${#AS_PG[@]} -eq 0 ] || chown postgres: "$T/pg" "$T/pg-run"
"${AS_PG[@]}" "$PG_BIN/initdb" -D "$T/pg" -U postgres --auth=trust -E UTF8 \
	--no-sync >"$L/initdb.log" 2>&1 || { _dump_log "$L/initdb.log" 15 >&2; die "initdb failed"; }
run_bg postgres "${AS_PG[@]}" "$PG_BIN/postgres" -D "$T/pg" -h 127.0.0.1 -p "$PG_PORT" \
	-k "$T/pg-run" -c max_connections=20 -c fsync=off
up postgres "$PG_PORT"
PG_DSN="postgresql://postgres@127.0.0.1:$PG_PORT/postgres?sslmode=disable"
run_bg postgres_exporter env DATA_SOURCE_NAME="$PG_DSN" prometheus-postgres-exporter \
	--web.listen-address="127.0.0.1:$PGX_PORT"
up postgres_exporter "$PGX_PORT"

# --- Redis and its exporter -----------------------------------------------
mkdir -p "$T/redis"
cat >"$T/redis/redis.conf" <<CONF
bind 127.0.0.1
port $REDIS_PORT
protected-mode yes
daemonize no
dir $T/redis
save ""
appendonly no
maxmemory 64mb
maxmemory-policy allkeys-lru
CONF
run_bg redis redis-server "$T/redis/redis.conf"
up redis "$REDIS_PORT"
run_bg redis_exporter prometheus-redis-exporter -redis.addr "redis://127.0.0.1:$REDIS_PORT" \
	-web.listen-address "127.0.0.1:$REDISX_PORT"
up redis_exporter "$REDISX_PORT"

# --- node-exporter ----------------------------------------------------------
# (its systemd collector needs a running systemd: not here)
run_bg node_exporter prometheus-node-exporter --web.listen-address="127.0.0.1:$NODE_PORT" \
	--no-collector.systemd
up node_exporter "$NODE_PORT"

# --- VictoriaMetrics: the store; it scrapes the relay and vmalert itself -----
cat >"$T/vm-scrape.yml" <<YML
global:
  scrape_interval: $EVERY
scrape_configs:
  - job_name: relay
    static_configs:
      - targets: ['127.0.0.1:$RELAY_PORT']
  - job_name: vmalert
    static_configs:
      - targets: ['127.0.0.1:$VMALERT_PORT']
  - job_name: victoria-metrics
    static_configs:
      - targets: ['127.0.0.1:$VM_PORT']
YML
start_vm "$T/vm" "$VM_PORT" -promscrape.config="$T/vm-scrape.yml" ||
	die "VictoriaMetrics did not come up"

# --- the relay ----------------------------------------------------------------
write_conf "$T/relay.conf" "server.admin_token=$ADMIN_TOKEN" \
	"tenant acme.token=$ACME_TOKEN" "tenant beta.token=$BETA_TOKEN"
start_relay "$T/relay.conf" || die "the relay did not come up (log: $RELAY_LOG)"

# --- the tenants' Prometheus ----------------------------------------------------
PROM_INTERVAL=$EVERY
PROM_JOBS="  - job_name: postgres
    static_configs:
      - targets: ['127.0.0.1:$PGX_PORT']
  - job_name: node
    static_configs:
      - targets: ['127.0.0.1:$NODE_PORT']"
start_prometheus "$T/prom-acme" "$ACME_PORT" "$RELAY_PORT" "    bearer_token: $ACME_TOKEN"
PID_OF[prom_acme]=$PROM_PID
PROM_JOBS="  - job_name: redis
    static_configs:
      - targets: ['127.0.0.1:$REDISX_PORT']
  - job_name: node
    static_configs:
      - targets: ['127.0.0.1:$NODE_PORT']"
start_prometheus "$T/prom-beta" "$BETA_PORT" "$RELAY_PORT" "    bearer_token: $BETA_TOKEN"
PID_OF[prom_beta]=$PROM_PID
up prometheus "$ACME_PORT"
up prometheus "$BETA_PORT"

# --- vmalert with the rules of ops/, and a receiver for its alerts ---------------
start_nginx "$T/notifier" "$NOTIFY_PORT" 'location / { return 200; }' ||
	die "the alert receiver (nginx) did not come up"
start_vmalert "$L/vmalert.log" "$VMALERT_PORT" "http://127.0.0.1:$VM_PORT" \
	"http://127.0.0.1:$NOTIFY_PORT" -evaluationInterval="$EVERY" \
	-rule="$REPO/ops/relay-rules.yml" -rule="$REPO/ops/exporters-rules.yml" \
	-external.url="http://127.0.0.1:$VMALERT_PORT" ||
	die "vmalert did not come up"

# The ports and pids, for a script that drives the demo (tests/integration/t_demo.sh).
cat >"$T/demo.env" <<ENV
DEMO_DIR=$T
PG_BIN=$PG_BIN
PG_PORT=$PG_PORT
PG_PID=${PID_OF[postgres]}
PG_EXPORTER_PORT=$PGX_PORT
REDIS_PORT=$REDIS_PORT
REDIS_EXPORTER_PORT=$REDISX_PORT
NODE_EXPORTER_PORT=$NODE_PORT
VM_PORT=$VM_PORT
RELAY_PORT=$RELAY_PORT
ACME_PROM_PORT=$ACME_PORT
BETA_PROM_PORT=$BETA_PORT
VMALERT_PORT=$VMALERT_PORT
NOTIFIER_PORT=$NOTIFY_PORT
ADMIN_TOKEN=$ADMIN_TOKEN
DEMO_PIDS="${PIDS[*]}"
ENV

u=http://127.0.0.1
row() { printf '  %-27s %-46s %s\n' "$@"; }
echo
echo "The relay demo runs (state in $T, logs in $T/logs):"
echo
row "what" "where" "pid"
row "PostgreSQL $(basename "$(dirname "$PG_BIN")")" "127.0.0.1:$PG_PORT" "${PID_OF[postgres]}"
row "postgres-exporter (acme)" "$u:$PGX_PORT/metrics" "${PID_OF[postgres_exporter]}"
row "Redis" "127.0.0.1:$REDIS_PORT" "${PID_OF[redis]}"
row "redis-exporter (beta)" "$u:$REDISX_PORT/metrics" "${PID_OF[redis_exporter]}"
row "node-exporter (acme, beta)" "$u:$NODE_PORT/metrics" "${PID_OF[node_exporter]}"
row "VictoriaMetrics" "$u:$VM_PORT/" "$VM_PID"
row "relay" "$u:$RELAY_PORT/metrics" "$RELAY_PID"
row "Prometheus, tenant acme" "$u:$ACME_PORT/graph" "${PID_OF[prom_acme]}"
row "Prometheus, tenant beta" "$u:$BETA_PORT/graph" "${PID_OF[prom_beta]}"
row "vmalert (rules of ops/)" "$u:$VMALERT_PORT/vmalert/alerts" "$VMALERT_PID"
row "alert receiver (nginx)" "$u:$NOTIFY_PORT" "$NGINX_PID"
cat <<TXT

Open:
  $u:$VMALERT_PORT/vmalert/alerts  the alerts of the rules in ops/, evaluated every $EVERY
  $u:$VM_PORT/targets  what VictoriaMetrics scrapes itself (the relay, vmalert)
  $u:$ACME_PORT/classic/targets  what acme's Prometheus scrapes (beta: port $BETA_PORT)
  Grafana: a Prometheus data source at $u:$VM_PORT, then import ops/grafana/*.json
  the series per tenant and job, in VictoriaMetrics:
    curl -s $u:$VM_PORT/api/v1/query --data-urlencode 'query=count by (tenant, job) ({tenant!=""})' | jq -c '.data.result[]'
  alerts vmalert sent: $T/notifier/access.log
Try:
  usage per tenant:   curl -s -H 'Authorization: Bearer $ADMIN_TOKEN' $u:$RELAY_PORT/api/v1/usage | jq
  PostgreSQL down:    kill -INT ${PID_OF[postgres]}   (PostgresqlDown fires for tenant acme after its for: 1m)
  a refused write:    curl -s -X POST -H 'Authorization: Bearer wrong' $u:$RELAY_PORT/api/v1/write
  Redis evicting:     redis-cli -p $REDIS_PORT EVAL "for i=1,300000 do redis.call('SET','k'..i,string.rep('x',300)) end" 0
  psql:               psql -h 127.0.0.1 -p $PG_PORT -U postgres    redis-cli -p $REDIS_PORT

Ctrl-C stops everything and removes $T.
demo: ready
TXT

# Wait for SIGINT or SIGTERM: the trap of tests/lib.sh stops everything.
sleep infinity &
PIDS+=("$!")
wait "$!"
