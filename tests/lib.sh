# tests/lib.sh - shared helpers for tests/integration/t_*.sh (source it).
#
# Each script gets its own temporary directory ($T), its own loopback ports
# and its own VictoriaMetrics; every process started through these helpers
# is stopped when the script exits, whatever the reason. Results are lines
# "ok - NAME" or "FAIL - NAME: REASON" on stdout, or "ok - NAME # SKIP
# REASON" for a check that cannot run here (tests/run.sh counts those as
# skipped, not passed); the script exits 1 when any check failed. Nothing here asserts on timing: waits poll with a generous
# cap, and not reaching a state within the cap is a failure.
#
# Environment (set by tests/run.sh, defaulted here for running one script
# by hand from the repo root): RELAY_BIN, BUILD_DIR, REPO.

set -u

REPO=${REPO:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}
BUILD_DIR=${BUILD_DIR:-$REPO/build}
RELAY_BIN=${RELAY_BIN:-$BUILD_DIR/relay}
RWSEND=${RWSEND:-$BUILD_DIR/bin/rwsend}
USAGEFILL=${USAGEFILL:-$BUILD_DIR/bin/usagefill}
VM_BIN=${VM_BIN:-victoria-metrics}
WAIT_CAP=${WAIT_CAP:-60}

TEST_NAME=$(basename "$0" .sh)
T=$(mktemp -d "${TMPDIR:-/tmp}/$TEST_NAME.XXXXXX")
FAILS=0
PASSES=0
SKIPS=0
PIDS=()          # every background process we started
VM_PID=
VM_PORT=
VM_LOG=
RELAY_PID=
RELAY_PORT=
RELAY_LOG=$T/relay.log

# --- results ---------------------------------------------------------------

ok() {
	PASSES=$((PASSES + 1))
	echo "ok - $TEST_NAME: $1"
}

fail() {
	FAILS=$((FAILS + 1))
	echo "FAIL - $TEST_NAME: $1: ${2:-failed}"
}

# check NAME CMD...: ok when CMD succeeds, else fail with CMD as the reason.
check() {
	local name=$1
	shift
	if "$@"; then
		ok "$name"
	else
		fail "$name" "$*"
	fi
}

# checkx NAME EXPR: like check, for a condition written as one string of
# shell (run with eval, so it may hold && || and $(...)); EXPR is the reason
# when it fails.
checkx() {
	if eval "$2"; then
		ok "$1"
	else
		fail "$1" "$2"
	fi
}

# skip NAME REASON: a check that cannot run on this machine; counted as
# skipped, neither passed nor failed.
skip() {
	SKIPS=$((SKIPS + 1))
	echo "ok - $TEST_NAME: $1 # SKIP $2"
}

# note TEXT...: a diagnostic line that run.sh does not count.
note() {
	echo "# $*"
}

# --- cleanup ---------------------------------------------------------------

# Stops pid $1: SIGTERM, up to 10 s, then SIGKILL. Quiet if already gone.
_stop_pid() {
	local pid=$1 i
	kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null; return 0; }
	kill -TERM "$pid" 2>/dev/null
	for ((i = 0; i < 100; i++)); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	kill -KILL "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
	return 0
}

_forget_pid() {
	local pid=$1 p keep=()
	for p in "${PIDS[@]}"; do
		[ "$p" = "$pid" ] || keep+=("$p")
	done
	PIDS=("${keep[@]}")
}

_dump_log() {
	local f=$1 n=${2:-25}
	[ -s "$f" ] || return 0
	note "--- last $n lines of $(basename "$f") ---"
	tail -n "$n" "$f" | sed 's/^/# /'
}

_cleanup() {
	local rc=$? i f
	trap - EXIT INT TERM
	# Last started, first stopped: senders before the relay before upstream.
	for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do
		_stop_pid "${PIDS[$i]}"
	done
	# Under make check the relay is built with sanitizers: a report in its
	# log is a failure of this script, whatever else passed.
	# A script running several relays gives each a log $T/relay-*.log.
	for f in "$RELAY_LOG" "$T"/relay-*.log; do
		if [ -s "$f" ] &&
			grep -qE 'ERROR: [A-Za-z]+Sanitizer|runtime error:' "$f"; then
			fail "sanitizer" "$(basename "$f"): $(grep -m1 -E 'ERROR: [A-Za-z]+Sanitizer|runtime error:' "$f")"
		fi
	done
	if [ "$FAILS" -gt 0 ] || [ "$rc" -ne 0 ]; then
		_dump_log "$RELAY_LOG" 40
		[ -n "$VM_LOG" ] && _dump_log "$VM_LOG" 10
	fi
	if [ -n "${KEEP_TMP:-}" ]; then
		note "kept $T"
	else
		rm -rf "$T"
	fi
	if [ "$FAILS" -gt 0 ]; then
		exit 1
	fi
	exit "$rc"
}
trap _cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# tmpdir [NAME]: a fresh directory under this test's $T (removed on exit).
tmpdir() {
	local d
	d=$(mktemp -d "$T/${1:-d}.XXXXXX") || return 1
	echo "$d"
}

# --- waiting ---------------------------------------------------------------

# wait_until TIMEOUT_S CMD...: runs CMD every 0.2 s until it succeeds.
# Returns 0 when it did, 1 when TIMEOUT_S passed first.
wait_until() {
	local cap=$1 deadline
	shift
	deadline=$((SECONDS + cap))
	while :; do
		"$@" && return 0
		[ "$SECONDS" -ge "$deadline" ] && return 1
		sleep 0.2
	done
}

# --- ports and HTTP --------------------------------------------------------

_port_listening() {
	(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# free_port: prints a loopback TCP port nobody listens on, below the
# kernel's ephemeral range, not handed out before in this script (the list
# is a file: free_port runs in a $(...) subshell).
free_port() {
	local p i
	for ((i = 0; i < 500; i++)); do
		p=$((20000 + (RANDOM * 32768 + RANDOM + BASHPID + i * 7919) % 12000))
		grep -qx "$p" "$T/.ports" 2>/dev/null && continue
		_port_listening "$p" && continue
		echo "$p" >>"$T/.ports"
		echo "$p"
		return 0
	done
	echo "free_port: no free port found" >&2
	return 1
}

# http_code URL [curl args...]: prints the status code of a request (000 on
# a transport error).
http_code() {
	local url=$1
	shift
	curl -s -o /dev/null -w '%{http_code}' --max-time 30 "$@" "$url"
}

# post_rw URL FILE [curl args...]: POSTs FILE as a Remote Write body (snappy
# protobuf, version 0.1.0 headers) and prints the status code (000 on a
# transport error). The answer's body goes to the file $POST_OUT when that
# is set, else nowhere. Extra args add headers (-H, -u) or options
# (--cacert, -D FILE for the answer's headers).
post_rw() {
	local url=$1 file=$2
	shift 2
	curl -s -o "${POST_OUT:-/dev/null}" -w '%{http_code}' --max-time 30 -X POST \
		-H 'Content-Type: application/x-protobuf' \
		-H 'Content-Encoding: snappy' \
		-H 'X-Prometheus-Remote-Write-Version: 0.1.0' \
		--data-binary "@$file" "$@" "$url"
}

_http_ok() {
	[ "$(curl -s --max-time 5 "$1")" = "${2:-OK}" ]
}

_http_2xx() {
	local c
	c=$(http_code "$1")
	[ "${c:0:1}" = 2 ]
}

# --- VictoriaMetrics -------------------------------------------------------

# start_prometheus DIR PORT RELAY_PORT [EXTRA [EXTERNAL [SHARED]]]: starts
# Prometheus on 127.0.0.1:PORT scraping itself every second, with
# remote_write to the relay on RELAY_PORT (batches sent after at most 1 s);
# EXTRA is more YAML for that remote_write entry, indented by four spaces.
# EXTERNAL, a YAML map ("{cluster: eu-1, __replica__: a}"), sets its
# external labels; SHARED (host:port) is one more target, of job "shared",
# that several Prometheus can scrape alike (an HA pair). PROM_JOBS, when
# set, is more scrape_configs entries (YAML, indented by two spaces), and
# PROM_INTERVAL the scrape and evaluation interval (1s when unset). Its log
# is DIR/prometheus.log (in PROM_LOG), its pid in PROM_PID; it is stopped
# on exit.
start_prometheus() {
	local dir=$1 port=$2 relay_port=$3 extra=${4:-} external=${5:-} shared=${6:-}
	local ext_line='' shared_job='' every=${PROM_INTERVAL:-1s}
	mkdir -p "$dir"
	[ -z "$external" ] || ext_line="  external_labels: $external"
	[ -z "$shared" ] || shared_job="  - job_name: shared
    static_configs:
      - targets: ['$shared']"
	cat >"$dir/prometheus.yml" <<YML
global:
  scrape_interval: $every
  evaluation_interval: $every
$ext_line
scrape_configs:
  - job_name: prometheus
    static_configs:
      - targets: ['127.0.0.1:$port']
$shared_job
${PROM_JOBS:-}
remote_write:
  - url: http://127.0.0.1:$relay_port/api/v1/write
    queue_config:
      batch_send_deadline: 1s
$extra
YML
	PROM_LOG=$dir/prometheus.log
	prometheus --config.file="$dir/prometheus.yml" --storage.tsdb.path="$dir/tsdb" \
		--web.listen-address="127.0.0.1:$port" >"$PROM_LOG" 2>&1 &
	PROM_PID=$!
	PIDS+=("$!")
}

# start_prom_receiver DIR PORT: starts Prometheus on 127.0.0.1:PORT as a
# remote-write receiver (--web.enable-remote-write-receiver, POST
# /api/v1/write; it refuses out-of-order samples with 400), scraping
# nothing, and waits until it is ready. Its log is DIR/prometheus.log (in
# PROM_LOG), its pid in PROM_PID; it is stopped on exit. Returns 1 when it
# does not come up.
start_prom_receiver() {
	local dir=$1 port=$2
	mkdir -p "$dir"
	printf 'global:\n  scrape_interval: 1m\nscrape_configs: []\n' >"$dir/prometheus.yml"
	PROM_LOG=$dir/prometheus.log
	prometheus --config.file="$dir/prometheus.yml" --storage.tsdb.path="$dir/tsdb" \
		--web.listen-address="127.0.0.1:$port" \
		--web.enable-remote-write-receiver >>"$PROM_LOG" 2>&1 &
	PROM_PID=$!
	PIDS+=("$PROM_PID")
	if ! wait_until "$WAIT_CAP" _http_2xx "http://127.0.0.1:$port/-/ready"; then
		echo "start_prom_receiver: prometheus on port $port did not come up" >&2
		_dump_log "$PROM_LOG" 10 >&2
		return 1
	fi
}

# stop_prometheus: SIGTERM to PROM_PID, and waits for it to exit.
stop_prometheus() {
	[ -n "${PROM_PID:-}" ] || return 0
	kill -TERM "$PROM_PID" 2>/dev/null
	wait_until "$WAIT_CAP" _gone "$PROM_PID" || kill -KILL "$PROM_PID" 2>/dev/null
	wait "$PROM_PID" 2>/dev/null
	_forget_pid "$PROM_PID"
	PROM_PID=
}

# prom_scalar PORT QUERY: the value of an instant PromQL query that gives
# one number (0 when it gives nothing).
prom_scalar() {
	curl -s --max-time 30 -G --data-urlencode "query=$2" \
		"http://127.0.0.1:$1/api/v1/query" |
		jq -r '.data.result[0].value[1] // "0"'
}

# prom_timestamps PORT SELECTOR: prints the timestamps (ms, one a line,
# ascending) of the samples a Prometheus stored in its own TSDB for the
# one series SELECTOR matches, over the last hour.
prom_timestamps() {
	curl -s --max-time 30 -G --data-urlencode "query=$2[1h]" \
		"http://127.0.0.1:$1/api/v1/query" |
		jq -r '.data.result[0].values // [] | .[] | .[0] * 1000 | round'
}

# vm_timestamps PORT MATCH: prints the distinct timestamps (ms, ascending)
# of the samples VictoriaMetrics stores for the series MATCH selects.
vm_timestamps() {
	vm_export "$1" "$2" | jq -s -r '[.[].timestamps[]] | unique | .[]'
}

# start_vm DIR PORT [extra flags...]: starts VictoriaMetrics storing in DIR
# on 127.0.0.1:PORT and waits until /health answers OK. Sets VM_PID,
# VM_PORT, VM_LOG. Returns 1 when it does not come up.
start_vm() {
	local dir=$1 port=$2
	shift 2
	VM_PORT=$port
	VM_LOG=$T/vm-$port.log
	mkdir -p "$dir"
	"$VM_BIN" -storageDataPath="$dir" -httpListenAddr="127.0.0.1:$port" \
		-retentionPeriod=100y -search.disableCache \
		-search.latencyOffset=0 -dedup.minScrapeInterval=0 \
		-loggerLevel=WARN "$@" >>"$VM_LOG" 2>&1 &
	VM_PID=$!
	PIDS+=("$VM_PID")
	if ! wait_until "$WAIT_CAP" _vm_up "$port"; then
		echo "start_vm: victoria-metrics on port $port did not come up" >&2
		_dump_log "$VM_LOG" 10 >&2
		return 1
	fi
}

_vm_up() {
	kill -0 "$VM_PID" 2>/dev/null || return 1
	_http_ok "http://127.0.0.1:$1/health"
}

# stop_vm: stops the VictoriaMetrics started last (SIGTERM, then waits).
stop_vm() {
	[ -n "$VM_PID" ] || return 0
	_stop_pid "$VM_PID"
	_forget_pid "$VM_PID"
	VM_PID=
}

# vm_flush PORT: makes freshly written data searchable.
vm_flush() {
	curl -s --max-time 30 -o /dev/null "http://127.0.0.1:$1/internal/force_flush"
}

# vm_export PORT MATCH: prints /api/v1/export for a series selector (JSON
# lines, one series each; VictoriaMetrics writes NaN values as bare NaN).
vm_export() {
	vm_flush "$1"
	# end: export stops at now by default, and senders such as rwsend may
	# have written timestamps a little ahead of it (one a second from an
	# hour ago, for more than an hour's worth of requests).
	curl -s --max-time 60 -G --data-urlencode "match[]=$2" \
		--data-urlencode "end=$(($(date +%s) + 86400))" \
		"http://127.0.0.1:$1/api/v1/export"
}

# vm_query PORT PROMQL: prints "LABEL=VALUE" lines of an instant query at
# now, one per series, sorted: LABEL is the series' tenant label (set
# VM_QUERY_LABEL for another), VALUE the value as VictoriaMetrics gives it.
vm_query() {
	vm_flush "$1"
	curl -s --max-time 30 -G --data-urlencode "query=$2" \
		"http://127.0.0.1:$1/api/v1/query" |
		jq -r --arg l "${VM_QUERY_LABEL:-tenant}" \
			'.data.result[] | "\(.metric[$l] // "")=\(.value[1])"' | sort
}

# vm_count PORT MATCH: prints how many samples VictoriaMetrics stores for a
# series selector, e.g. vm_count 8428 '{__name__=~"t1_.*"}'.
vm_count() {
	local out
	out=$(vm_export "$1" "$2") || return 1
	if [ -z "$out" ]; then
		echo 0
		return 0
	fi
	printf '%s\n' "$out" | jq -s '[.[].timestamps | length] | add // 0'
}

# vm_count_distinct PORT MATCH: like vm_count, but a (series, timestamp)
# pair stored twice counts once.
vm_count_distinct() {
	local out
	out=$(vm_export "$1" "$2") || return 1
	if [ -z "$out" ]; then
		echo 0
		return 0
	fi
	printf '%s\n' "$out" |
		jq -s '[.[].timestamps | unique | length] | add // 0'
}

# vm_series PORT MATCH: prints how many series match.
vm_series() {
	local out
	out=$(vm_export "$1" "$2") || return 1
	printf '%s' "$out" | grep -c '"metric"'
}

# vm_has PORT MATCH N: true when at least N distinct samples match (for
# wait_until).
vm_has() {
	local n
	n=$(vm_count_distinct "$1" "$2") || return 1
	[ "${n:-0}" -ge "$3" ]
}

# vm_is PORT MATCH N: true when exactly N samples match.
vm_is() {
	local n
	n=$(vm_count "$1" "$2") || return 1
	[ "${n:-x}" = "$3" ]
}

# faketime_relay: from here on start_relay runs the relay under
# libfaketime, its wall clock offset by what $OFFSET holds ("+0" at first;
# write "+15m" or "-8d" to step it, read again within a second); the
# monotonic clock is left alone. Ends the script with a failure when
# libfaketime is missing.
faketime_relay() {
	local f lib=
	for f in /usr/lib/*/faketime/libfaketimeMT.so.1 /usr/lib/faketime/libfaketimeMT.so.1; do
		[ -e "$f" ] && lib=$f && break
	done
	if [ -z "$lib" ]; then
		fail setup "libfaketime not installed (ops/install-deps.sh)"
		exit 1
	fi
	OFFSET=$T/faketime
	echo "+0" >"$OFFSET"
	REAL_RELAY=$RELAY_BIN
	RELAY_BIN=$T/relay-faketime
	# Under make check the relay is built with ASan, whose runtime must
	# come first among the libraries: libfaketime is preloaded ahead of it.
	cat >"$RELAY_BIN" <<SH
#!/bin/sh
exec env LD_PRELOAD="$lib" FAKETIME_TIMESTAMP_FILE="$OFFSET" \
	ASAN_OPTIONS="\${ASAN_OPTIONS:+\$ASAN_OPTIONS:}verify_asan_link_order=0" \
	FAKETIME_CACHE_DURATION=1 FAKETIME_DONT_FAKE_MONOTONIC=1 "$REAL_RELAY" "\$@"
SH
	chmod +x "$RELAY_BIN"
}

# --- the relay -------------------------------------------------------------

# require_relay: ends the script with a failure when there is no relay binary.
require_relay() {
	if [ ! -x "$RELAY_BIN" ]; then
		fail setup "no relay binary at $RELAY_BIN"
		exit 1
	fi
	if [ ! -x "$RWSEND" ]; then
		fail setup "no rwsend at $RWSEND (make tools)"
		exit 1
	fi
}

# write_conf FILE [section.key=value ...]: writes a relay config. The base
# listens on $RELAY_PORT, stores in $T/data and forwards to $VM_PORT with
# short backoffs; each argument adds or replaces one key.
write_conf() {
	local file=$1 arg sec key val s line
	shift
	local -a order=(server storage upstream)
	local -A kv=(
		[server.listen]="127.0.0.1:$RELAY_PORT"
		[storage.path]="$T/data"
		[upstream.url]="http://127.0.0.1:$VM_PORT/api/v1/write"
		[upstream.min_backoff]=100ms
		[upstream.max_backoff]=1s
	)
	local -a keys=(server.listen storage.path upstream.url
		upstream.min_backoff upstream.max_backoff)
	for arg in "$@"; do
		key=${arg%%=*}
		val=${arg#*=}
		[ -n "${kv[$key]+x}" ] || keys+=("$key")
		kv[$key]=$val
		sec=${key%%.*}
		case " ${order[*]} " in
		*" $sec "*) ;;
		*) order+=("$sec") ;;
		esac
	done
	{
		echo "# written by $TEST_NAME"
		for s in "${order[@]}"; do
			echo "[$s]"
			for key in "${keys[@]}"; do
				[ "${key%%.*}" = "$s" ] || continue
				line=${kv[$key]}
				echo "${key#*.} = $line"
			done
		done
	} >"$file"
}

_conf_listen_port() {
	sed -n 's/^[[:space:]]*listen[[:space:]]*=[[:space:]]*[^:]*:\([0-9]*\).*/\1/p' "$1" | head -n 1
}

# start_relay CONF: starts the relay in the background (log in $RELAY_LOG)
# and waits until /-/ready answers 2xx. Sets RELAY_PID and RELAY_PORT.
start_relay() {
	local conf=$1
	RELAY_PORT=$(_conf_listen_port "$conf")
	echo "--- start $(date +%T) $conf" >>"$RELAY_LOG"
	"$RELAY_BIN" -c "$conf" >>"$RELAY_LOG" 2>&1 &
	RELAY_PID=$!
	PIDS+=("$RELAY_PID")
	if ! wait_until "$WAIT_CAP" _relay_up; then
		echo "start_relay: relay not ready on port $RELAY_PORT" >&2
		return 1
	fi
}

_relay_up() {
	kill -0 "$RELAY_PID" 2>/dev/null || return 1
	_http_2xx "http://127.0.0.1:$RELAY_PORT/-/ready"
}

# stop_relay: SIGTERM, then waits for the exit (cap $WAIT_CAP s). Returns the
# relay's exit status, or 1 when it had to be killed.
stop_relay() {
	local rc
	[ -n "$RELAY_PID" ] || return 0
	kill -TERM "$RELAY_PID" 2>/dev/null
	if ! wait_until "$WAIT_CAP" _gone "$RELAY_PID"; then
		echo "stop_relay: relay did not stop on SIGTERM, killing it" >&2
		kill -KILL "$RELAY_PID" 2>/dev/null
		wait "$RELAY_PID" 2>/dev/null
		_forget_pid "$RELAY_PID"
		RELAY_PID=
		return 1
	fi
	wait "$RELAY_PID" 2>/dev/null
	rc=$?
	_forget_pid "$RELAY_PID"
	RELAY_PID=
	return "$rc"
}

# kill9_relay: SIGKILL, no chance to flush anything.
kill9_relay() {
	[ -n "$RELAY_PID" ] || return 0
	kill -KILL "$RELAY_PID" 2>/dev/null
	wait "$RELAY_PID" 2>/dev/null
	_forget_pid "$RELAY_PID"
	RELAY_PID=
	return 0
}

_gone() {
	! kill -0 "$1" 2>/dev/null
}

# log_count PATTERN: how many relay log lines contain the fixed string.
log_count() {
	grep -cF -- "$1" "$RELAY_LOG"
}

_log_more() {
	[ "$(log_count "$1")" -gt "$2" ]
}

# hup_and_wait PATTERN: SIGHUP the relay, wait for one more log line with
# PATTERN. Returns 1 when none came.
hup_and_wait() {
	local before
	before=$(log_count "$1")
	kill -HUP "$RELAY_PID"
	wait_until "$WAIT_CAP" _log_more "$1" "$before"
}

# metric PORT NAME [LABELS]: prints the value of a relay metric from
# /metrics, summed over all its label variants, or over those whose label
# set contains LABELS (e.g. 'code="204"'). Prints nothing and returns 1
# when no line matches.
metric() {
	local port=$1 name=$2 labels=${3:-}
	curl -s --max-time 10 "http://127.0.0.1:$port/metrics" |
		awk -v name="$name" -v labels="$labels" '
		/^#/ { next }
		{
			series = $1
			base = series
			sub(/\{.*/, "", base)
			if (base != name) next
			if (labels != "" && index(series, labels) == 0) next
			sum += $2
			found = 1
		}
		END {
			if (!found) exit 1
			printf "%.0f\n", sum
		}'
}

# with_asan BIN: true when BIN was built with AddressSanitizer (make check),
# whose allocator's own overhead makes memory figures meaningless.
with_asan() {
	ldd "$1" 2>/dev/null | grep -q libasan
}

# rss_anon_kib PID: prints the process's anonymous resident memory in KiB
# (RssAnon of /proc/PID/status).
rss_anon_kib() {
	awk '/^RssAnon:/ { print $2 }' "/proc/$1/status" 2>/dev/null
}

# watch_rss PID FILE: samples rss_anon_kib every 0.1 s in the background and
# keeps the highest value seen in FILE, until PID exits or the script ends.
watch_rss() {
	local pid=$1 file=$2
	echo 0 >"$file"
	(
		max=0
		while kill -0 "$pid" 2>/dev/null; do
			v=$(rss_anon_kib "$pid")
			if [ -n "$v" ] && [ "$v" -gt "$max" ]; then
				max=$v
				echo "$max" >"$file"
			fi
			sleep 0.1
		done
	) &
	PIDS+=("$!")
}

# metric_is PORT NAME VALUE [LABELS]: true when the metric equals VALUE.
metric_is() {
	local v
	v=$(metric "$1" "$2" "${4:-}") || return 1
	[ "$v" = "$3" ]
}

# metric_ge PORT NAME VALUE [LABELS]: true when the metric is >= VALUE.
metric_ge() {
	local v
	v=$(metric "$1" "$2" "${4:-}") || return 1
	[ "$v" -ge "$3" ]
}

# --- usage -----------------------------------------------------------------

# usage_json BASE TOKEN [QUERY]: the relay's usage report (GET
# BASE/api/v1/usage?QUERY with the admin token), JSON unless QUERY asks for
# format=csv.
usage_json() {
	curl -s --max-time 10 -H "Authorization: Bearer $2" "$1/api/v1/usage${3:+?$3}"
}

# usage_sum JSON TENANT FIELD: FIELD summed over TENANT's hours in a JSON
# usage report (0 when there are none).
usage_sum() {
	printf '%s' "$1" | jq --arg t "$2" --arg f "$3" \
		'[.usage[] | select(.tenant == $t) | .[$f]] | add // 0'
}

# --- sending ---------------------------------------------------------------

# rwsend ARGS...: runs the sender; its summary line goes to stdout.
rwsend() {
	"$RWSEND" "$@"
}

# send_counted PREFIX REQUESTS: posts REQUESTS requests of 10 series x 5
# samples to $URL, their metric names starting with PREFIX, and adds the
# samples acknowledged to $total; a request not acknowledged is a failure
# named after PREFIX.
send_counted() {
	local out
	out=$(rwsend "$URL" --series 10 --samples-per-series 5 --requests "$2" --name-prefix "$1") ||
		fail "$1: every request acknowledged" "$out"
	total=$((total + $(field "$out" samples_acked)))
}

# field LINE KEY: prints KEY's value from a "k=v k=v" summary line.
field() {
	printf '%s\n' "$1" | tr ' ' '\n' | sed -n "s/^$2=//p"
}

# now_ms: current time in milliseconds.
now_ms() {
	echo $(($(date +%s) * 1000))
}

# --- nginx: a misbehaving upstream -----------------------------------------
#
# An nginx of the test's own (not the system service), on a loopback port,
# with its config, pid, logs and temp files in a directory under $T. What it
# answers is the "mode": a server-block body (locations) in DIR/mode.conf
# that nginx_mode swaps with a reload. DIR/access.log has one line per
# request: "STATUS URI CONNECTION REQUESTS" (REQUESTS: the how-manieth on
# that connection it was).

# _nginx_run DIR PORT HTTP: writes DIR/nginx.conf, whose http block holds
# the temp paths under DIR and then the text HTTP, starts nginx on it and
# waits until PORT answers. Sets NGINX_PID.
_nginx_run() {
	local dir=$1 port=$2 http=$3
	mkdir -p "$dir/tmp"
	cat >"$dir/nginx.conf" <<NGX
daemon off;
worker_processes 1;
pid $dir/nginx.pid;
error_log $dir/error.log warn;
events { worker_connections 256; }
http {
    client_body_temp_path $dir/tmp/body;
    proxy_temp_path $dir/tmp/proxy;
    fastcgi_temp_path $dir/tmp/fastcgi;
    uwsgi_temp_path $dir/tmp/uwsgi;
    scgi_temp_path $dir/tmp/scgi;
$http
}
NGX
	: >"$dir/access.log"
	nginx -p "$dir" -c "$dir/nginx.conf" >>"$dir/error.log" 2>&1 &
	NGINX_PID=$!
	PIDS+=("$NGINX_PID")
	if ! wait_until "$WAIT_CAP" _port_listening "$port"; then
		echo "start_nginx: nginx on port $port did not come up" >&2
		_dump_log "$dir/error.log" 10 >&2
		return 1
	fi
}

# start_nginx DIR PORT MODE: starts nginx on 127.0.0.1:PORT answering as
# MODE says (see nginx_mode) and waits until it answers. Sets NGINX_PID.
start_nginx() {
	local dir=$1 port=$2 mode=$3
	mkdir -p "$dir"
	printf '%s\n' "$mode" >"$dir/mode.conf"
	_nginx_run "$dir" "$port" "    log_format short '\$status \$request_uri \$connection \$connection_requests';
    access_log $dir/access.log short;
    client_max_body_size 64m;
    client_body_buffer_size 64m;
    server {
        listen 127.0.0.1:$port;
        include $dir/mode.conf;
    }"
}

# start_nginx_conf DIR PORT FILE: starts nginx with FILE read inside its
# http block (a file such as ops/nginx-relay.conf, with its listen on
# 127.0.0.1:PORT and its logs under DIR) and waits until PORT accepts.
# Sets NGINX_PID.
start_nginx_conf() {
	_nginx_run "$1" "$2" "    include $3;"
}

# nginx_mode DIR PORT CODE MODE: makes the nginx of DIR answer as MODE says
# (e.g. 'location / { return 404; }') and waits until a request to PORT
# gets CODE. Returns 1 when it does not.
nginx_mode() {
	local dir=$1 port=$2 code=$3 mode=$4
	printf '%s\n' "$mode" >"$dir/mode.conf"
	nginx -p "$dir" -c "$dir/nginx.conf" -s reload 2>>"$dir/error.log" ||
		return 1
	wait_until "$WAIT_CAP" _nginx_answers "$port" "$code"
}

_nginx_answers() {
	[ "$(http_code "http://127.0.0.1:$1/-/probe" -X POST -d x)" = "$2" ]
}

# nginx_proxy_mode VM_PORT: the mode that passes everything to VictoriaMetrics.
nginx_proxy_mode() {
	printf 'location / { proxy_pass http://127.0.0.1:%s; proxy_http_version 1.1; proxy_set_header Connection ""; proxy_request_buffering off; }' "$1"
}

# nginx_requests DIR [STATUS]: how many requests to /api/ the access log
# holds (with that status).
nginx_requests() {
	awk -v st="${2:-}" '$2 ~ /^\/api\// && (st == "" || $1 == st) { n++ } END { print n + 0 }' "$1/access.log"
}

# --- vmalert ---------------------------------------------------------------

# start_vmalert LOG PORT DATASOURCE NOTIFIER [flags...]: starts vmalert on
# 127.0.0.1:PORT querying DATASOURCE (a VictoriaMetrics base URL) and
# sending alerts to NOTIFIER, evaluating every second unless the flags
# (e.g. -rule=FILE, -evaluationInterval=10s) say otherwise, and waits until
# it answers. Sets VMALERT_PID.
start_vmalert() {
	local log=$1 port=$2 ds=$3 notifier=$4
	shift 4
	vmalert -httpListenAddr="127.0.0.1:$port" -datasource.url="$ds" \
		-notifier.url="$notifier" -evaluationInterval=1s \
		-loggerLevel=WARN "$@" >>"$log" 2>&1 &
	VMALERT_PID=$!
	PIDS+=("$VMALERT_PID")
	if ! wait_until "$WAIT_CAP" _http_ok "http://127.0.0.1:$port/health"; then
		echo "start_vmalert: vmalert on port $port did not come up" >&2
		_dump_log "$log" 10 >&2
		return 1
	fi
}

# vmalert_alerts PORT STATE: prints the alerts vmalert on PORT holds in
# STATE (firing or pending), one a line: the name, then the labels as
# name=value, sorted (e.g. "PostgresqlDown job=postgres tenant=acme").
vmalert_alerts() {
	curl -s --max-time 10 "http://127.0.0.1:$1/api/v1/alerts" |
		jq -r --arg s "$2" '.data.alerts // [] | .[] | select(.state == $s) |
			[.name] + ([.labels | to_entries[] |
			select(.key != "alertname") | "\(.key)=\(.value)"] | sort) |
			join(" ")'
}

# vmalert_firing PORT NAME [LABEL=VALUE...]: true when vmalert on PORT has
# alert NAME firing with all those labels.
vmalert_firing() {
	vmalert_state "$1" firing "${@:2}"
}

# vmalert_state PORT STATE NAME [LABEL=VALUE...]: like vmalert_firing, for
# an alert in STATE (pending: its condition holds, its for: has not passed).
vmalert_state() {
	local port=$1 state=$2 name=$3 line l hit
	shift 3
	while IFS= read -r line; do
		[ "${line%% *}" = "$name" ] || continue
		hit=1
		for l in "$@"; do
			case " $line " in *" $l "*) ;; *) hit=0 ;; esac
		done
		[ "$hit" = 1 ] && return 0
	done < <(vmalert_alerts "$port" "$state")
	return 1
}

# vmalert_rules PORT [FIELD]: prints the names of the rules vmalert on PORT
# loaded, one a line, sorted; with FIELD, each name is followed by that
# field of the rule (e.g. health, lastError).
vmalert_rules() {
	curl -s --max-time 10 "http://127.0.0.1:$1/api/v1/rules" |
		jq -r --arg f "${2:-}" '.data.groups[].rules[] |
			if $f == "" then .name else "\(.name) \(.[$f])" end' | sort
}

# vm_query_json PORT QUERY: prints the result of an instant query as
# "labels value" lines (labels as JSON), for diagnostics.
vm_query_json() {
	curl -s --max-time 30 -G --data-urlencode "query=$2" \
		"http://127.0.0.1:$1/api/v1/query" |
		jq -r '.data.result[]? | "\(.metric | tojson) \(.value[1])"'
}
