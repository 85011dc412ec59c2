#!/usr/bin/env bash
# bench/run.sh BUILD_DIR - the relay against vmagent on the same load.
#
# `make bench` runs this from the repository root. Everything listens on
# free loopback ports and lives in one temporary directory; every process
# started here is stopped on exit. Per system (relay, vmagent):
#
#   a. buffering: upstream down (a closed port). loadgen posts
#      BENCH_SAMPLES samples in 500-series requests, then as many in
#      2000-series requests, over BENCH_CONNECTIONS connections. Measures
#      samples/s acknowledged, CPU us per acknowledged sample (utime+stime
#      from /proc/PID/stat), peak RssAnon (polled every 200 ms), and after
#      a clean stop the disk bytes per buffered sample (du of the data dir).
#   b. drain: a fresh VictoriaMetrics starts on the very port the system
#      was pointed at (vmagent keys its queue by URL), the system restarts
#      on its backlog, and the clock runs until VM's
#      vm_rows_inserted_total{type="promremotewrite"} reaches the backlog
#      (or stops growing). Measures drain time, CPU us per delivered sample,
#      peak RssAnon, samples lost. Then the same (a's buffering, then the
#      drain) for a backlog BENCH_FLAT_DIVISOR times smaller: whether peak
#      RssAnon stays flat as the backlog grows.
#   c. latency: a fresh instance (upstream down) gets an open-loop load at
#      half of vmagent's top rate from phase a; p50/p99/max ack latency,
#      peak RssAnon.
#   d-g. catch-up with the shipped relay.conf from 8 and 32 shard-like
#      senders, the same requests into VictoriaMetrics alone (the physical
#      limit), ingest over 64 connections, and the delay before delivery
#      resumes after an outage: see bench/catchup.sh.
#   h. relabel rules: the relay alone (upstream down), for one tenant
#      (token; the tenant label set on every series), on the same
#      500-series load with no rules and with the ten typical rules of
#      bench/relabel.yml ([tenancy] relabel), alternating, BENCH_RELABEL_ROUNDS
#      runs of each; CPU us per acknowledged sample of each, and the ratio
#      with rules / without (not relay/vmagent: vmagent does not run here).
#
# Prints a table (relay, vmagent, relay/vmagent, target) and writes it with
# the raw measurements to BUILD_DIR/bench/result.txt. Only ratios from one
# run mean anything: the machine is small and shared. A default run takes
# about 11 minutes; the caps below bound it to about 15 (phase g alone
# waits BENCH_OUTAGE_SECONDS).
#
# Environment (defaults in brackets):
#   BENCH_SAMPLES [20000000]    samples per request size in phase a (backlog = 2x)
#   BENCH_SAMPLES_500, BENCH_SAMPLES_2000   override per size
#   BENCH_CONNECTIONS [8]       loadgen connections
#   BENCH_TARGETS [100]         node_exporter targets the series come from
#   BENCH_MAX_SECONDS [120]     cap on one loadgen run
#   BENCH_SETTLE [2]            seconds after a load before CPU is read
#   BENCH_DISK_SETTLE [3]       before each phase: sync, then this many
#                               seconds, so that neither system pays for
#                               the writeback of the one before it
#   BENCH_DRAIN_TIMEOUT [180]   cap on one drain, seconds
#   BENCH_DRAIN_STALL [30]      a drain ends when VM's count is flat this long
#   BENCH_FLAT_DIVISOR [10]     phase b drains a second backlog this many times
#                               smaller (buffered as in a); 1: no second drain
#   BENCH_LAT_SECONDS [15]      length of the latency run
#   BENCH_LAT_RATE              samples/s for phase c (default: vmagent top / 2)
#   BENCH_LAT_SERIES            series per request in phase c (default: the
#                               size at which vmagent was fastest)
#   BENCH_RELAY_INFLIGHT [4]    the relay's [upstream] inflight_per_tenant, as
#                               many requests at once as vmagent's 4 queues
#   BENCH_CATCHUP_SAMPLES [20000000] backlog of each catch-up row (d, e)
#   BENCH_CATCHUP_SENDERS ["8 32"]   one catch-up row per number of senders
#   BENCH_LIMIT_CONNECTIONS [16] loadgen connections straight into VM (e)
#   BENCH_LIMIT_SENDERS [8]      the catch-up rows phase e runs for
#                                (VM's time barely depends on the sharding)
#   BENCH_WIDE_CONNECTIONS [64]  connections of the wide ingest rows (f)
#   BENCH_WIDE_SAMPLES [10000000] samples per request size there
#   BENCH_OUTAGE_SECONDS [60]    outage before the resume measurement (g)
#   BENCH_RESUME_TIMEOUT [120]   cap on the wait for the first row after it
#   BENCH_RELABEL_SAMPLES [3000000] samples per run of phase h
#   BENCH_RELABEL_ROUNDS [2]     runs with and without rules in phase h
#   BENCH_RELABEL_TENANT [1]     0: phase h without a tenant (no tenant
#                                label: without rules the relay then stores
#                                a one-lane body as it came, no rewrite)
#   BENCH_PHASES ["a b c d e f g h"] phases to run (b needs a)
#   BENCH_SYSTEMS ["relay vmagent"]
#   BENCH_TMP [${TMPDIR:-/tmp}] where the data dirs go (needs a few GB)
#   BENCH_KEEP [0]              1: keep the temporary directory
#   VMAGENT [/usr/bin/vmagent], VICTORIA [/usr/bin/victoria-metrics]

set -u
export LC_ALL=C

BUILD=${1:-build}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
case $BUILD in /*) ;; *) BUILD=$PWD/$BUILD ;; esac

SAMPLES=${BENCH_SAMPLES:-20000000}
SAMPLES_500=${BENCH_SAMPLES_500:-$SAMPLES}
SAMPLES_2000=${BENCH_SAMPLES_2000:-$SAMPLES}
CONNS=${BENCH_CONNECTIONS:-8}
RELAY_INFLIGHT=${BENCH_RELAY_INFLIGHT:-4}
TARGETS=${BENCH_TARGETS:-100}
MAX_SECONDS=${BENCH_MAX_SECONDS:-120}
SETTLE=${BENCH_SETTLE:-2}
DISK_SETTLE=${BENCH_DISK_SETTLE:-3}
DRAIN_TIMEOUT=${BENCH_DRAIN_TIMEOUT:-180}
DRAIN_STALL=${BENCH_DRAIN_STALL:-30}
LAT_SECONDS=${BENCH_LAT_SECONDS:-15}
SYSTEMS=${BENCH_SYSTEMS:-relay vmagent}
CATCHUP_SAMPLES=${BENCH_CATCHUP_SAMPLES:-20000000}
CATCHUP_SENDERS=${BENCH_CATCHUP_SENDERS:-8 32}
LIMIT_CONNS=${BENCH_LIMIT_CONNECTIONS:-16}
LIMIT_SENDERS=" ${BENCH_LIMIT_SENDERS:-8} "
WIDE_CONNS=${BENCH_WIDE_CONNECTIONS:-64}
WIDE_SAMPLES=${BENCH_WIDE_SAMPLES:-10000000}
OUTAGE_SECONDS=${BENCH_OUTAGE_SECONDS:-60}
RESUME_TIMEOUT=${BENCH_RESUME_TIMEOUT:-120}
RELABEL_SAMPLES=${BENCH_RELABEL_SAMPLES:-3000000}
RELABEL_ROUNDS=${BENCH_RELABEL_ROUNDS:-2}
RELABEL_TOKEN=
[ "${BENCH_RELABEL_TENANT:-1}" = 1 ] && RELABEL_TOKEN=bench-relabel-token
FLAT_DIVISOR=${BENCH_FLAT_DIVISOR:-10}
PHASES=" ${BENCH_PHASES:-a b c d e f g h} "
VMAGENT=${VMAGENT:-/usr/bin/vmagent}
VICTORIA=${VICTORIA:-/usr/bin/victoria-metrics}
RELAY=$BUILD/relay
HZ=$(getconf CLK_TCK)

log() { printf '%s bench: %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

WORK=$(mktemp -d "${BENCH_TMP:-${TMPDIR:-/tmp}}/relay-bench.XXXXXX") || die "mktemp failed"
PIDS=()

cleanup() {
	local pid
	for pid in "${PIDS[@]}"; do
		kill -TERM "$pid" 2>/dev/null
	done
	for pid in "${PIDS[@]}"; do
		for _ in $(seq 1 100); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
		kill -KILL "$pid" 2>/dev/null
		wait "$pid" 2>/dev/null
	done
	if [ "${BENCH_KEEP:-0}" = 1 ]; then
		log "kept $WORK"
	else
		rm -rf "$WORK"
	fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

forget_pid() {
	local keep=() p
	for p in "${PIDS[@]}"; do
		[ "$p" = "$1" ] || keep+=("$p")
	done
	PIDS=("${keep[@]}")
}

# ---- tools ----

[ -x "$VMAGENT" ] || die "$VMAGENT not found (apt-get install victoria-metrics)"
[ -x "$VICTORIA" ] || die "$VICTORIA not found (apt-get install victoria-metrics)"
command -v curl >/dev/null || die "curl not found"

LOADGEN=$BUILD/bin/loadgen
if [ ! -x "$LOADGEN" ]; then
	LOADGEN=$WORK/loadgen
	log "building loadgen standalone (no $BUILD/bin/loadgen)"
	cc -std=c11 -D_GNU_SOURCE -O2 -Wall -Wextra -o "$LOADGEN" "$ROOT/bench/loadgen.c" \
		-lsnappy -lcurl -lpthread -lm || die "cannot build loadgen"
fi

want_relay=0
want_vmagent=0
for s in $SYSTEMS; do
	case $s in
	relay)
		if [ -x "$RELAY" ]; then
			want_relay=1
		else
			log "skipping the relay: $RELAY does not exist (run make first)"
		fi ;;
	vmagent) want_vmagent=1 ;;
	*) die "unknown system in BENCH_SYSTEMS: $s" ;;
	esac
done
RUN=()
[ $want_relay = 1 ] && RUN+=(relay)
[ $want_vmagent = 1 ] && RUN+=(vmagent)
[ ${#RUN[@]} -gt 0 ] || die "nothing to measure"

# ---- helpers ----

USED_PORTS=" "
read -r EPH_LO _ </proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || EPH_LO=32768
# A loopback port that no TCP socket uses (listening or connected), below
# the ephemeral range so that no outgoing connection takes it later, and
# not handed out before in this run. free_port VAR: stores it in VAR.
free_port() {
	local p hex span=$((EPH_LO - 12000))
	[ $span -gt 1000 ] || span=1000
	while :; do
		p=$((12000 + (RANDOM * 32768 + RANDOM) % span))
		case $USED_PORTS in *" $p "*) continue ;; esac
		printf -v hex ':%04X ' "$p"
		grep -qF "$hex" /proc/net/tcp /proc/net/tcp6 2>/dev/null && continue
		USED_PORTS="$USED_PORTS$p "
		printf -v "$1" '%s' "$p"
		return
	done
}

now() { date +%s.%N; }
now_us() { echo "${EPOCHREALTIME/./}"; }
fsub() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", a - b }'; }

# utime+stime of a process, in clock ticks.
cpu_ticks() {
	local stat rest
	read -r stat <"/proc/$1/stat" || { echo 0; return; }
	rest=${stat##*) }
	# shellcheck disable=SC2086 # split the fields on purpose
	set -- $rest
	echo $((${12} + ${13}))
}

# cpu_us TICKS SAMPLES: CPU microseconds per sample.
cpu_us() {
	awk -v t="$1" -v hz="$HZ" -v s="$2" 'BEGIN { printf "%.3f", (s > 0 ? t / hz * 1e6 / s : 0) }'
}

# Polls RssAnon of pid every 200 ms; keeps the peak (kB) in file.
rss_watch() {
	local pid=$1 out=$2 max=0 k v _
	echo 0 >"$out"
	while kill -0 "$pid" 2>/dev/null; do
		while read -r k v _; do
			if [ "$k" = "RssAnon:" ]; then
				if [ "$v" -gt "$max" ]; then
					max=$v
					# whole or not at all: a reader never sees it empty
					echo "$max" >"$out.new" && mv "$out.new" "$out"
				fi
				break
			fi
		done <"/proc/$pid/status" 2>/dev/null
		sleep 0.2
	done
}

WATCH_PID=
watch_start() {
	rss_watch "$1" "$2" &
	WATCH_PID=$!
	PIDS+=("$WATCH_PID")
}
watch_stop() {
	kill "$WATCH_PID" 2>/dev/null
	wait "$WATCH_PID" 2>/dev/null
	forget_pid "$WATCH_PID"
}

# wait_http URL PID SECONDS: until URL answers 200 while PID lives.
wait_http() {
	local code
	for _ in $(seq 1 $(($3 * 10))); do
		kill -0 "$2" 2>/dev/null || return 1
		code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 1 "$1")
		[ "$code" = 200 ] && return 0
		sleep 0.1
	done
	return 1
}

# stop_proc PID: SIGTERM, up to 60 s for a clean exit, then SIGKILL.
stop_proc() {
	local pid=$1
	kill -TERM "$pid" 2>/dev/null
	for _ in $(seq 1 600); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$pid" 2>/dev/null; then
		log "pid $pid did not stop within 60 s; killing it"
		kill -KILL "$pid" 2>/dev/null
	fi
	wait "$pid" 2>/dev/null
	forget_pid "$pid"
}

# kv LINE KEY: the value of KEY=value in a loadgen result line.
kv() {
	local w
	for w in $1; do
		case $w in "$2="*) echo "${w#*=}"; return ;; esac
	done
	echo 0
}

# Flushes what earlier phases left dirty and lets the disk go quiet.
settle_disk() {
	sync
	sleep "$DISK_SETTLE"
}

disk_bytes() { du -s -B1 "$1" | awk '{ print $1 }'; }

# sync_probe: milliseconds per 4 KiB write with O_DSYNC over a file that
# exists already (as a commit's writes over zeros ahead of LMDB's end),
# on the disk under $WORK. The relay waits for two such syncs per commit;
# vmagent for none, so its rates do not follow this figure.
sync_probe() {
	local f=$WORK/sync-probe t0 t1
	dd if=/dev/zero of="$f" bs=4k count=200 conv=fsync status=none
	t0=$(now_us)
	dd if=/dev/zero of="$f" bs=4k count=200 conv=notrunc oflag=dsync status=none
	t1=$(now_us)
	rm -f "$f"
	awk -v d=$((t1 - t0)) 'BEGIN { printf "%.3f", d / 200 / 1000 }'
}

declare -A M        # M[system.metric] = value
declare -A UPSTREAM # port each system forwards to; closed until phase b
declare -A DATA     # data directory of each system
RAW=$WORK/raw.txt
: >"$RAW"
raw() { echo "$*" >>"$RAW"; }

# shipped_conf OUT PORT UPSTREAM_PORT DATA_DIR: the shipped relay.conf with
# only the listen address, the data path and the upstream URL changed.
shipped_conf() {
	sed -e "s|^listen = .*|listen = 127.0.0.1:$2|" -e "s|^path = .*|path = $4|" \
		-e "s|^url = .*|url = http://127.0.0.1:$3/api/v1/write|" \
		"$ROOT/relay.conf" >"$1"
}

# start_system SYS HTTP_PORT UPSTREAM_PORT DATA_DIR LOG [CONF]: sets
# SYS_PID. CONF "shipped": the relay runs with the shipped relay.conf
# (vmagent always runs with its defaults); "relabel": the bench's own with
# [tenancy] relabel = bench/relabel.yml; else the bench's own.
SYS_PID=
start_system() {
	local sys=$1 port=$2 up=$3 dir=$4 logf=$5 which=${6:-bench} conf
	mkdir -p "$dir"
	case $sys in
	relay)
		conf=$WORK/relay-$port.conf
		if [ "$which" = shipped ]; then
			shipped_conf "$conf" "$port" "$up" "$dir"
		else
		cat >"$conf" <<-EOF
		[server]
		listen = 127.0.0.1:$port
		threads = 2

		[storage]
		path = $dir
		max_size = 16GiB

		[upstream]
		url = http://127.0.0.1:$up/api/v1/write
		# vmagent sends -remoteWrite.queues (2 x CPUs = 4 here) requests
		# at once, in no per-series order; the relay does the same only
		# when told (its default, 1, keeps every series in order).
		inflight_per_tenant = $RELAY_INFLIGHT
		EOF
		fi
		case $which in relabel*)
			# phase h: one tenant, as the relay runs for tenants
			[ -n "$RELABEL_TOKEN" ] &&
				printf '\n[tenant bench]\ntoken = %s\n' "$RELABEL_TOKEN" >>"$conf" ;;
		esac
		[ "$which" = relabel-rules ] &&
			printf '\n[tenancy]\nrelabel = %s\n' "$ROOT/bench/relabel.yml" >>"$conf"
		"$RELAY" -c "$conf" >>"$logf" 2>&1 &
		SYS_PID=$!
		PIDS+=("$SYS_PID")
		wait_http "http://127.0.0.1:$port/-/ready" "$SYS_PID" 60 ||
			die "relay did not get ready; see $logf: $(tail -3 "$logf")"
		;;
	vmagent)
		"$VMAGENT" -remoteWrite.url="http://127.0.0.1:$up/api/v1/write" \
			-remoteWrite.tmpDataPath="$dir" \
			-remoteWrite.maxDiskUsagePerURL=0 \
			-httpListenAddr="127.0.0.1:$port" -loggerLevel=ERROR >>"$logf" 2>&1 &
		SYS_PID=$!
		PIDS+=("$SYS_PID")
		wait_http "http://127.0.0.1:$port/health" "$SYS_PID" 60 ||
			die "vmagent did not get ready; see $logf: $(tail -3 "$logf")"
		;;
	esac
}

ingest_url() { echo "http://127.0.0.1:$1/api/v1/write"; }

# loadgen_run OUTVAR ARGS...: runs loadgen, puts its result line in OUTVAR.
loadgen_run() {
	local _var=$1 _out
	shift
	_out=$("$LOADGEN" --connections "$CONNS" --targets "$TARGETS" \
		--max-seconds "$MAX_SECONDS" "$@" 2>>"$WORK/loadgen.err" | tail -1)
	case $_out in requests=*) ;; *) die "loadgen failed: $(tail -3 "$WORK/loadgen.err")" ;; esac
	printf -v "$_var" '%s' "$_out"
}

# ---- phase a: buffering with the upstream down ----

# phase_buffer SYS [K DIVISOR]: phase a, or with K (say "s_") the backlog of
# phase b's second drain: BENCH_SAMPLES / DIVISOR samples per size, its
# figures kept under the keys M[SYS.K...], DATA[SYSK] and UPSTREAM[SYSK].
phase_buffer() {
	local sys=$1 k=${2:-} div=${3:-1} port dir line c0 c1 c2=0 acked_total=0 failed=0
	local n samples end_ms
	free_port port
	free_port "UPSTREAM[$sys$k]"
	dir=$WORK/$sys$k-data
	DATA[$sys$k]=$dir
	settle_disk
	M[$sys.${k}sync_ms]=$(sync_probe)
	raw "$sys buffer${k:+ $k} sync_probe_ms=${M[$sys.${k}sync_ms]}"
	log "$sys: buffering${k:+ ($k, 1/$div)} (upstream 127.0.0.1:${UPSTREAM[$sys$k]} is down)"
	start_system "$sys" "$port" "${UPSTREAM[$sys$k]}" "$dir" "$WORK/$sys.log"
	watch_start "$SYS_PID" "$WORK/$sys.rss-buffer"
	c0=$(cpu_ticks "$SYS_PID")
	for n in 500 2000; do
		if [ $n = 500 ]; then
			# ends before the 2000-series run's first scrape round begins
			# (a target has over 500 series), so no sample repeats
			samples=$((SAMPLES_500 / div))
			end_ms=$(( $(date +%s) * 1000 -
				(SAMPLES_2000 / div / (500 * TARGETS) + 10) * 15000 ))
		else
			samples=$((SAMPLES_2000 / div))
			end_ms=$(( $(date +%s) * 1000 ))
		fi
		loadgen_run line --url "$(ingest_url "$port")" --series-per-request $n \
			--samples "$samples" --end-ms "$end_ms"
		sleep "$SETTLE"
		c1=$(cpu_ticks "$SYS_PID")
		raw "$sys buffer${k:+ $k} n=$n cpu_ticks=$((c1 - c0)) $line"
		log "$sys: $n-series: $line"
		M[$sys.${k}rate$n]=$(kv "$line" samples_per_s)
		M[$sys.${k}acked$n]=$(kv "$line" samples_acked)
		M[$sys.${k}failed$n]=$(kv "$line" failed)
		M[$sys.${k}cpu$n]=$(cpu_us $((c1 - c0)) "${M[$sys.${k}acked$n]}")
		acked_total=$((acked_total + M[$sys.${k}acked$n]))
		failed=$((failed + M[$sys.${k}failed$n]))
		c2=$((c2 + c1 - c0))
		c0=$c1
	done
	M[$sys.${k}cpu]=$(cpu_us "$c2" "$acked_total")
	M[$sys.${k}backlog]=$acked_total
	M[$sys.${k}failed]=$failed
	watch_stop
	M[$sys.${k}rss_buffer]=$(awk '{ printf "%.2f", $1 / 1024 }' "$WORK/$sys.rss-buffer")
	stop_proc "$SYS_PID"
	M[$sys.${k}disk]=$(disk_bytes "$dir")
	M[$sys.${k}disk_per_sample]=$(awk -v d="${M[$sys.${k}disk]}" -v s="$acked_total" \
		'BEGIN { printf "%.2f", (s > 0 ? d / s : 0) }')
	raw "$sys buffer${k:+ $k} backlog=$acked_total disk_bytes=${M[$sys.${k}disk]}" \
		"apparent_bytes=$(du -s -b "$dir" | awk '{ print $1 }')" \
		"rss_anon_peak_kb=$(cat "$WORK/$sys.rss-buffer")"
}

# ---- phase b: drain the backlog into a fresh VictoriaMetrics ----

vm_rows() {
	curl -s --max-time 2 "http://127.0.0.1:$1/metrics" |
		awk '/^vm_rows_inserted_total\{type="promremotewrite"\}/ { printf "%.0f\n", $2; f = 1 }
		     END { if (!f) print 0 }'
}

# phase_drain SYS [ROW CONF]: drains the backlog buffered for ROW ("" for
# phase a's; the keys of M, DATA and UPSTREAM carry it) with CONF (see
# start_system).
phase_drain() {
	local sys=$1 k=${2:-} which=${3:-bench}
	local vmport=${UPSTREAM[$1$k]} vmdir=$WORK/$1$k-vm vmpid port t0 t_last rows
	local last=0 t cpu reached=0 target=${M[$1.${k}backlog]}
	local stall_us=$((DRAIN_STALL * 1000000)) timeout_us=$((DRAIN_TIMEOUT * 1000000))
	settle_disk
	mkdir -p "$vmdir"
	"$VICTORIA" -storageDataPath="$vmdir" -httpListenAddr="127.0.0.1:$vmport" \
		-loggerLevel=ERROR >"$WORK/$sys-vm.log" 2>&1 &
	vmpid=$!
	PIDS+=("$vmpid")
	wait_http "http://127.0.0.1:$vmport/health" "$vmpid" 60 ||
		die "victoria-metrics did not start; see $WORK/$sys-vm.log"
	free_port port
	log "$sys: draining $target samples into 127.0.0.1:$vmport"
	t0=$(now_us)
	start_system "$sys" "$port" "$vmport" "${DATA[$sys$k]}" "$WORK/$sys.log" "$which"
	watch_start "$SYS_PID" "$WORK/$sys.rss-drain"
	t_last=$t0
	cpu=$(cpu_ticks "$SYS_PID")
	while :; do
		rows=$(vm_rows "$vmport")
		t=$(now_us)
		if [ "$rows" -gt "$last" ]; then
			last=$rows
			t_last=$t
			cpu=$(cpu_ticks "$SYS_PID")
		fi
		if [ "$rows" -ge "$target" ]; then
			reached=1
			break
		fi
		[ $((t - t_last)) -ge $stall_us ] && break
		[ $((t - t0)) -ge $timeout_us ] && break
		kill -0 "$SYS_PID" 2>/dev/null || { log "$sys exited during the drain"; break; }
		sleep 0.25
	done
	watch_stop
	M[$sys.${k}delivered]=$last
	M[$sys.${k}drain_s]=$(awk -v d=$((t_last - t0)) 'BEGIN { printf "%.2f", d / 1e6 }')
	M[$sys.${k}drain_rate]=$(awk -v d=$((t_last - t0)) -v n="$last" \
		'BEGIN { printf "%.3f", (d > 0 ? n / d : 0) }')
	M[$sys.${k}drain_cpu]=$(cpu_us "$cpu" "$last")
	M[$sys.${k}lost]=$(awk -v g="$target" -v d="$last" 'BEGIN { printf "%.0f", (g > d ? g - d : 0) }')
	M[$sys.${k}rss_drain]=$(awk '{ printf "%.2f", $1 / 1024 }' "$WORK/$sys.rss-drain")
	M[$sys.${k}rss_drain_kb]=$(cat "$WORK/$sys.rss-drain")
	[ $reached = 1 ] || log "$sys: drain${k:+ $k} stopped at $last of $target samples"
	raw "$sys drain${k:+ $k} conf=$which backlog=$target delivered=$last" \
		"seconds=${M[$sys.${k}drain_s]} cpu_ticks=$cpu reached=$reached" \
		"rss_anon_peak_kb=$(cat "$WORK/$sys.rss-drain")"
	log "$sys: drained${k:+ ($k)} $last samples in ${M[$sys.${k}drain_s]} s"
	stop_proc "$SYS_PID"
	stop_proc "$vmpid"
	rm -rf "$vmdir" "${DATA[$sys$k]}"
}

# ---- phase c: ack latency under a fixed rate ----

phase_latency() {
	local sys=$1 rate=$2 n=$3 port up dir line samples
	free_port port
	free_port up
	dir=$WORK/$sys-lat
	settle_disk
	samples=$(awk -v r="$rate" -v s="$LAT_SECONDS" 'BEGIN { printf "%.0f", r * s }')
	log "$sys: latency at $rate samples/s, $n series per request"
	start_system "$sys" "$port" "$up" "$dir" "$WORK/$sys.log"
	watch_start "$SYS_PID" "$WORK/$sys.rss-lat"
	loadgen_run line --url "$(ingest_url "$port")" --series-per-request "$n" \
		--samples "$samples" --rate "$rate"
	watch_stop
	M[$sys.rss_lat]=$(awk '{ printf "%.2f", $1 / 1024 }' "$WORK/$sys.rss-lat")
	raw "$sys latency rate=$rate n=$n $line rss_anon_peak_kb=$(cat "$WORK/$sys.rss-lat")"
	log "$sys: latency: $line"
	M[$sys.p50]=$(kv "$line" p50_ms)
	M[$sys.p99]=$(kv "$line" p99_ms)
	M[$sys.pmax]=$(kv "$line" max_ms)
	M[$sys.lat_rate]=$(kv "$line" samples_per_s)
	stop_proc "$SYS_PID"
	rm -rf "$dir"
}

# ---- phase h: the cost of relabel rules ----

# phase_relabel: the relay with no rules and with bench/relabel.yml, on the
# same load, alternating; CPU ticks and acked samples summed per kind.
phase_relabel() {
	local i k port up dir line c0 c1 ticks acked
	declare -A T=([none]=0 [rules]=0) A=([none]=0 [rules]=0)
	for i in $(seq 1 "$RELABEL_ROUNDS"); do
		for k in none rules; do
			free_port port
			free_port up
			dir=$WORK/relabel-$k
			settle_disk
			start_system relay "$port" "$up" "$dir" "$WORK/relay.log" \
				"relabel-$k"
			c0=$(cpu_ticks "$SYS_PID")
			loadgen_run line --url "$(ingest_url "$port")" \
				${RELABEL_TOKEN:+--token "$RELABEL_TOKEN"} \
				--series-per-request 500 --samples "$RELABEL_SAMPLES"
			sleep "$SETTLE"
			c1=$(cpu_ticks "$SYS_PID")
			ticks=$((c1 - c0))
			acked=$(kv "$line" samples_acked)
			raw "relay relabel rules=$k round=$i cpu_ticks=$ticks $line"
			log "relay: relabel $k, round $i: $(cpu_us "$ticks" "$acked") us/sample; $line"
			T[$k]=$((T[$k] + ticks))
			A[$k]=$((A[$k] + acked))
			M[relay.relabel_failed]=$((${M[relay.relabel_failed]:-0} + $(kv "$line" failed)))
			stop_proc "$SYS_PID"
			rm -rf "$dir"
		done
	done
	M[relay.relabel_none]=$(cpu_us "${T[none]}" "${A[none]}")
	M[relay.relabel_rules]=$(cpu_us "${T[rules]}" "${A[rules]}")
}

# shellcheck source=bench/catchup.sh
. "$ROOT/bench/catchup.sh"

# ---- run ----

phase() { case $PHASES in *" $1 "*) return 0 ;; esac; return 1; }

START=$(now)
free_kb=$(df -Pk "$WORK" | awk 'NR == 2 { print $4 }')
[ "${free_kb:-0}" -lt $((6 * 1024 * 1024)) ] &&
	log "warning: only $((free_kb / 1024)) MiB free under $WORK; the default run writes about 2 GiB per system"
log "work dir $WORK; systems: ${RUN[*]}; $SAMPLES_500 + $SAMPLES_2000 samples per system"
if phase a; then
	for sys in "${RUN[@]}"; do phase_buffer "$sys"; done
	if phase b; then
		for sys in "${RUN[@]}"; do phase_drain "$sys"; done
		# the same again for a backlog FLAT_DIVISOR times smaller
		if [ "$FLAT_DIVISOR" -gt 1 ]; then
			for sys in "${RUN[@]}"; do
				phase_buffer "$sys" s_ "$FLAT_DIVISOR"
				phase_drain "$sys" s_
			done
		fi
	fi
fi
for n in $CATCHUP_SENDERS; do
	if phase d; then
		for sys in "${RUN[@]}"; do
			phase_backlog "$sys" "$n"
			phase_drain "$sys" "cu${n}_" shipped
		done
	fi
	case $LIMIT_SENDERS in *" $n "*) phase e && phase_limit "$n" ;; esac
done
if phase f; then
	for sys in "${RUN[@]}"; do phase_wide "$sys"; done
fi

LAT_RATE=${BENCH_LAT_RATE:-}
LAT_SERIES=${BENCH_LAT_SERIES:-}
if [ -n "${M[vmagent.rate500]:-}" ]; then
	if awk -v a="${M[vmagent.rate500]}" -v b="${M[vmagent.rate2000]}" 'BEGIN { exit !(a > b) }'; then
		top=${M[vmagent.rate500]}
		LAT_SERIES=${LAT_SERIES:-500}
	else
		top=${M[vmagent.rate2000]}
		LAT_SERIES=${LAT_SERIES:-2000}
	fi
	LAT_RATE=${LAT_RATE:-$(awk -v t="$top" 'BEGIN { printf "%.0f", t / 2 }')}
fi
LAT_SERIES=${LAT_SERIES:-2000}
if ! phase c; then
	:
elif [ -n "$LAT_RATE" ]; then
	for sys in "${RUN[@]}"; do phase_latency "$sys" "$LAT_RATE" "$LAT_SERIES"; done
else
	log "no vmagent rate and no BENCH_LAT_RATE: skipping the latency phase"
fi
phase g && phase_resume "${RUN[@]}"
if phase h && [ $want_relay = 1 ]; then
	phase_relabel
fi

# ---- report ----

val() { echo "${M[$1]:--}"; }
# ratio KEY: relay/vmagent of M[*.KEY], or "-".
ratio() {
	local a=${M[relay.$1]:-} b=${M[vmagent.$1]:-}
	if [ -z "$a" ] || [ -z "$b" ]; then echo "-"; return; fi
	awk -v a="$a" -v b="$b" 'BEGIN { if (b == 0) print "-"; else printf "%.3f", a / b }'
}
# over KEY DIVISOR: M[KEY] / DIVISOR, or "-".
over() {
	local a=${M[$1]:-}
	if [ -z "$a" ] || [ -z "$2" ]; then echo "-"; return; fi
	awk -v a="$a" -v b="$2" 'BEGIN { if (b == 0) print "-"; else printf "%.3f", a / b }'
}
# met RATIO OP LIMIT: yes/no, or "" without a ratio.
met() {
	[ "$1" = "-" ] && { echo ""; return; }
	awk -v r="$1" -v op="$2" -v l="$3" 'BEGIN {
		ok = (op == "<=") ? r <= l : r >= l; print ok ? "yes" : "NO" }'
}

TABLE=$WORK/table.txt
{
	printf '%-44s %12s %12s %9s %9s %4s\n' metric relay vmagent ratio target met
	row() { # row LABEL KEY [OP LIMIT]: the target applies to the ratio
		local r
		r=$(ratio "$2")
		printf '%-44s %12s %12s %9s %9s %4s\n' "$1" "$(val "relay.$2")" \
			"$(val "vmagent.$2")" "$r" "${3:+$3 $4}" \
			"$([ -n "${3:-}" ] && met "$r" "$3" "$4")"
	}
	row "samples/s acked, 500-series x$CONNS conns" rate500 ">=" 1.5
	row "samples/s acked, 2000-series x$CONNS conns" rate2000 ">=" 1.5
	row "samples/s acked, 500-series x$WIDE_CONNS conns" rate500_w ">=" 1.5
	row "samples/s acked, 2000-series x$WIDE_CONNS conns" rate2000_w ">=" 1.5
	row "CPU us/sample acked, upstream down" cpu "<=" 0.33
	row "  500-series requests" cpu500
	row "  2000-series requests" cpu2000
	row "CPU us/sample acked, 500-series x$WIDE_CONNS" cpu500_w "<=" 0.33
	row "CPU us/sample acked, 2000-series x$WIDE_CONNS" cpu2000_w "<=" 0.33
	row "RssAnon peak MiB, x$WIDE_CONNS conns" rss_wide "<=" 0.5
	row "RssAnon peak MiB, buffering" rss_buffer "<=" 0.5
	row "disk bytes per buffered sample" disk_per_sample "<=" 1.05
	row "backlog samples (acked in a)" backlog
	row "drain time s (backlog into VM)" drain_s "<=" 1.0
	row "CPU us/sample delivered, drain" drain_cpu "<=" 0.33
	row "RssAnon peak MiB, drain" rss_drain "<=" 0.5
	row "RssAnon peak MiB, drain of a 1/$FLAT_DIVISOR backlog" s_rss_drain "<=" 0.5
	# flat as the backlog grows: each system's own peak over its peak for
	# the smaller backlog; the aim is the relay's
	r=$(over relay.rss_drain_kb "${M[relay.s_rss_drain_kb]:-}")
	printf '%-44s %12s %12s %9s %9s %4s\n' "  RssAnon drain, backlog ${FLAT_DIVISOR}x / 1x" \
		"$r" "$(over vmagent.rss_drain_kb "${M[vmagent.s_rss_drain_kb]:-}")" - \
		"relay<=1.1" "$([ "$r" != - ] && met "$r" "<=" 1.1)"
	row "samples delivered" delivered
	row "samples lost (backlog - delivered)" lost
	row "failed requests, phase a" failed
	row "p50 ack ms @ ${LAT_RATE:--} samples/s, ${LAT_SERIES}-series" p50
	# the latency aim is absolute: the relay's own p99
	printf '%-44s %12s %12s %9s %9s %4s\n' "p99 ack ms" "$(val relay.p99)" \
		"$(val vmagent.p99)" "$(ratio p99)" "relay<=10" \
		"$([ -n "${M[relay.p99]:-}" ] && met "${M[relay.p99]}" "<=" 10)"
	row "max ack ms" pmax
	row "RssAnon peak MiB, latency run" rss_lat "<=" 0.5
	for n in $CATCHUP_SENDERS; do
		k=cu${n}_
		row "catch-up, $n senders, shipped conf: M samples/s" "${k}drain_rate" ">=" 1.0
		row "  CPU us/sample delivered" "${k}drain_cpu" "<=" 0.33
		row "  RssAnon peak MiB, buffering" "${k}rss_buffer" "<=" 0.5
		row "  RssAnon peak MiB, drain" "${k}rss_drain" "<=" 0.5
		row "  backlog samples" "${k}backlog"
		row "  drain time s" "${k}drain_s"
		lim=${M[limit.${k}s]:-}
		r=$(over "relay.${k}drain_s" "$lim")
		printf '%-44s %12s %12s %9s %9s %4s\n' "  drain time / VM alone (${lim:--} s)" \
			"$r" "$(over "vmagent.${k}drain_s" "$lim")" - "relay<=1.1" \
			"$([ "$r" != - ] && met "$r" "<=" 1.1)"
	done
	row "s to first row after a ${OUTAGE_SECONDS} s outage" resume_s
	# phase h: both figures are the relay's (vmagent column: the relay
	# without rules); ratio = with the rules of bench/relabel.yml / without
	r=$(over relay.relabel_rules "${M[relay.relabel_none]:-}")
	printf '%-44s %12s %12s %9s %9s %4s\n' \
		"CPU us/sample acked, 10 relabel rules / none" \
		"$(val relay.relabel_rules)" "$(val relay.relabel_none)" "$r" "<= 2.0" \
		"$([ "$r" != - ] && met "$r" "<=" 2.0)"
	printf '%-44s\n' "  (the relay, $([ -n "$RELABEL_TOKEN" ] && echo one || echo no) tenant: with the rules | without)"
	[ "${M[relay.relabel_failed]:-0}" != 0 ] &&
		echo "! relay answered ${M[relay.relabel_failed]} requests with an error in phase h"
	for sys in "${RUN[@]}"; do
		for n in $CATCHUP_SENDERS; do
			k=cu${n}_
			[ "${M[$sys.${k}lost]:-0}" != 0 ] &&
				echo "! $sys delivered ${M[$sys.${k}delivered]} of ${M[$sys.${k}backlog]}" \
					"samples in the $n-sender catch-up"
			[ "${M[$sys.${k}failed]:-0}" != 0 ] &&
				echo "! $sys answered ${M[$sys.${k}failed]} requests with an error building the $n-sender backlog"
		done
		[ "${M[$sys.failed_w]:-0}" != 0 ] &&
			echo "! $sys answered ${M[$sys.failed_w]} requests with an error over $WIDE_CONNS connections"
		[ "${M[$sys.s_lost]:-0}" != 0 ] &&
			echo "! $sys delivered ${M[$sys.s_delivered]} of ${M[$sys.s_backlog]} samples" \
				"of the 1/$FLAT_DIVISOR backlog"
		[ "${M[$sys.lost]:-0}" != 0 ] &&
			echo "! $sys delivered ${M[$sys.delivered]} of ${M[$sys.backlog]} buffered samples;" \
				"its drain figures cover only what arrived"
		[ "${M[$sys.failed]:-0}" != 0 ] &&
			echo "! $sys answered ${M[$sys.failed]} requests with an error in phase a (not retried)"
	done
	for sys in "${RUN[@]}"; do
		phase a || continue
		[ "${M[$sys.backlog]:-0}" -lt 10000000 ] &&
			echo "! $sys buffered ${M[$sys.backlog]:-0} samples, fewer than the 10 million" \
				"the drain target is defined for"
	done
	[ ${#RUN[@]} = 2 ] || echo "! only ${RUN[*]} measured: no ratios"
} >"$TABLE"

mkdir -p "$BUILD/bench"
{
	echo "# make bench, $(date -u '+%Y-%m-%d %H:%M:%S UTC'), $(uname -m), nproc=$(nproc)"
	echo "# vmagent: $VMAGENT (victoria-metrics $(dpkg-query -W -f '${Version}' victoria-metrics 2>/dev/null || echo '?'))"
	[ $want_relay = 1 ] && echo "# relay: $RELAY ($(git -C "$ROOT" describe --always --dirty 2>/dev/null || echo no git))"
	echo "# load: $CONNS connections, $TARGETS targets, $SAMPLES_500 samples in 500-series + $SAMPLES_2000 in 2000-series requests"
	echo "# catch-up: $CATCHUP_SAMPLES samples in 500-series requests from $CATCHUP_SENDERS shard-like senders; relay: shipped relay.conf; VM alone over $LIMIT_CONNS connections; wide ingest: $WIDE_SAMPLES samples per size over $WIDE_CONNS connections; phases:$PHASES"
	echo "# disk: ms per 4 KiB O_DSYNC write just before phase a:$(for sys in "${RUN[@]}"; do printf ' %s %s' "$sys" "${M[$sys.sync_ms]:-?}"; done)"
	echo "# ratio = relay/vmagent; targets apply to the ratio; total $(fsub "$(now)" "$START") s"
	cat "$TABLE"
	echo
	echo "# raw"
	cat "$RAW"
} >"$BUILD/bench/result.txt"

cat "$TABLE"
log "written $BUILD/bench/result.txt"
