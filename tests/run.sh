#!/usr/bin/env bash
# tests/run.sh BUILD_DIR - runs every unit test binary BUILD_DIR/tests/test_*
# and then every tests/integration/t_*.sh, counts the "ok - " and "FAIL - "
# lines of all of them and ends with the line "N passed, M failed" (followed
# by ", K skipped" when some checks were skipped). Exits 1 when anything
# failed.
#
# Unit binaries run one after the other. Integration scripts run TEST_JOBS
# at a time (3 by default); a script with a line "# serial" runs alone,
# before the others, with nothing else running. The others start longest
# first, by the times of the last run (BUILD_DIR/tests/.durations; in name
# order when there is none). Each test's output is kept until it ends and
# then printed whole, between "# --- NAME" and "# NAME: Ns", so the log
# reads as if the tests had run one at a time.
#
# A line "ok - NAME # SKIP REASON" counts as skipped, not passed. A binary or
# script that exits non-zero without printing a FAIL line counts as one
# failure named after it; so does one that outlives its time limit
# (TEST_TIMEOUT seconds, 300 by default). Arguments after BUILD_DIR select
# integration scripts by name (e.g. "t_forward"); UNIT=0 skips the unit
# binaries, INTEGRATION=0 the scripts.
set -u

if [ $# -lt 1 ]; then
	echo "usage: $0 BUILD_DIR [t_name ...]" >&2
	exit 2
fi

REPO=$(cd "$(dirname "$0")/.." && pwd)
BUILD_DIR=$(cd "$1" && pwd) || exit 2
shift
RELAY_BIN=$BUILD_DIR/relay
TEST_TIMEOUT=${TEST_TIMEOUT:-300}
TEST_JOBS=${TEST_JOBS:-3}
case $TEST_JOBS in '' | *[!0-9]* | 0) TEST_JOBS=1 ;; esac
export REPO BUILD_DIR RELAY_BIN

passed=0
failed=0
skipped=0
failures=()
outdir=$(mktemp -d "${TMPDIR:-/tmp}/relay-tests.XXXXXX")
declare -A job_name=() job_start=() # by pid of the test's timeout process
durations=$BUILD_DIR/tests/.durations   # "NAME SECONDS" lines of the last run
declare -A took=()                      # this run's times, for the next one

# Every running test's timeout process leads a process group of its own:
# the whole group is told to stop.
stop_all() {
	local pid
	for pid in "${!job_name[@]}"; do
		kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null
	done
	wait
}
trap 'rm -rf "$outdir"' EXIT
trap 'stop_all; exit 130' INT
trap 'stop_all; exit 143' TERM

# start_one NAME CMD...: starts CMD in the background under the time limit,
# its output going to a file of its own.
start_one() {
	local name=$1
	shift
	timeout -k 10 "$TEST_TIMEOUT" "$@" </dev/null >"$outdir/$name.out" 2>&1 &
	job_name[$!]=$name
	job_start[$!]=$SECONDS
}

# finish_one PID RC: prints the output of the test that ran as PID, which
# exited with RC, and counts its lines.
finish_one() {
	local pid=$1 rc=$2 name out p f s line
	name=${job_name[$pid]}
	out=$outdir/$name.out
	echo "# --- $name"
	cat "$out"
	s=$(grep -c '^ok - .*# SKIP' "$out")
	p=$(($(grep -c '^ok - ' "$out") - s))
	f=$(grep -c '^FAIL - ' "$out")
	passed=$((passed + p))
	failed=$((failed + f))
	skipped=$((skipped + s))
	while IFS= read -r line; do
		failures+=("$line")
	done < <(grep '^FAIL - ' "$out")
	if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
		line="FAIL - $name: killed after ${TEST_TIMEOUT}s time limit"
	elif [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
		line="FAIL - $name: exited with status $rc"
	else
		line=
	fi
	if [ -n "$line" ]; then
		echo "$line"
		failures+=("$line")
		failed=$((failed + 1))
	fi
	took[$name]=$((SECONDS - ${job_start[$pid]}))
	echo "# $name: ${took[$name]}s"
	unset "job_name[$pid]" "job_start[$pid]"
	rm -f "$out"
}

# reap_one: waits for any running test to end and reports it.
reap_one() {
	local pid rc
	wait -n -p pid
	rc=$?
	[ -n "${pid:-}" ] || return 1
	finish_one "$pid" "$rc"
}

# run_pool JOBS IDX...: runs the tests queued as q_name[IDX] (a unit binary
# or an integration script q_path[IDX]) at most JOBS at a time and returns
# when all of them have ended.
q_name=()
q_path=()
run_pool() {
	local jobs=$1 i
	shift
	for i in "$@"; do
		while [ "${#job_name[@]}" -ge "$jobs" ]; do
			reap_one || break
		done
		case ${q_path[$i]} in
		*.sh) start_one "${q_name[$i]}" bash "${q_path[$i]}" ;;
		*) start_one "${q_name[$i]}" "${q_path[$i]}" ;;
		esac
	done
	while [ "${#job_name[@]}" -gt 0 ]; do
		reap_one || break
	done
}

if [ "${UNIT:-1}" != 0 ]; then
	units=()
	for bin in "$BUILD_DIR"/tests/test_*; do
		[ -x "$bin" ] || continue
		case $bin in *.d | *.o) continue ;; esac
		q_name+=("$(basename "$bin")")
		q_path+=("$bin")
		units+=($((${#q_name[@]} - 1)))
	done
	run_pool 1 "${units[@]}"
fi

if [ "${INTEGRATION:-1}" != 0 ]; then
	serial=()
	parallel=()
	for script in "$REPO"/tests/integration/t_*.sh; do
		[ -e "$script" ] || continue
		name=$(basename "$script" .sh)
		if [ $# -gt 0 ]; then
			want=0
			for sel in "$@"; do
				[ "$sel" = "$name" ] && want=1
			done
			[ "$want" = 1 ] || continue
		fi
		q_name+=("$name")
		q_path+=("$script")
		if grep -q '^# serial\b' "$script"; then
			serial+=($((${#q_name[@]} - 1)))
		else
			parallel+=($((${#q_name[@]} - 1)))
		fi
	done
	run_pool 1 "${serial[@]}"
	# longest first: the pool ends soonest when the long ones start early
	if [ -r "$durations" ] && [ ${#parallel[@]} -gt 0 ]; then
		mapfile -t parallel < <(
			for i in "${parallel[@]}"; do
				t=$(awk -v n="${q_name[$i]}" '$1 == n { print $2 }' "$durations")
				echo "${t:-0} $i"
			done | sort -s -k1,1nr | cut -d' ' -f2)
	fi
	run_pool "$TEST_JOBS" "${parallel[@]}"
	if [ -d "$BUILD_DIR/tests" ]; then
		{
			for name in "${!took[@]}"; do
				echo "$name ${took[$name]}"
			done
			# keep the times of scripts this run did not select
			if [ -r "$durations" ]; then
				while read -r name t; do
					[ -n "${took[$name]+x}" ] || echo "$name $t"
				done <"$durations"
			fi
		} >"$durations.new"
		mv -f "$durations.new" "$durations" 2>/dev/null
	fi
fi

if [ ${#failures[@]} -gt 0 ]; then
	echo "# failures:"
	printf '#   %s\n' "${failures[@]}"
fi
if [ "$skipped" -gt 0 ]; then
	echo "$passed passed, $failed failed, $skipped skipped"
else
	echo "$passed passed, $failed failed"
fi
[ "$failed" -eq 0 ]
