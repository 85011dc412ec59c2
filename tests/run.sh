#!/usr/bin/env bash
# tests/run.sh BUILD_DIR - runs every unit test binary BUILD_DIR/tests/test_*
# and then every tests/integration/t_*.sh, prints their output as it comes,
# counts the "ok - " and "FAIL - " lines of all of them and ends with the
# line "N passed, M failed". Exits 1 when anything failed.
#
# A binary or script that exits non-zero without printing a FAIL line counts
# as one failure named after it; so does one that outlives its time limit
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
export REPO BUILD_DIR RELAY_BIN

passed=0
failed=0
failures=()
out=$(mktemp "${TMPDIR:-/tmp}/relay-tests.XXXXXX")
cur= # the running test's timeout process: its own process group
trap 'rm -f "$out"' EXIT
trap '[ -n "$cur" ] && kill -TERM "$cur" 2>/dev/null; exit 130' INT
trap '[ -n "$cur" ] && kill -TERM "$cur" 2>/dev/null; exit 143' TERM

# run_one NAME CMD...: runs CMD under the time limit, shows and counts its
# output.
run_one() {
	local name=$1 rc p f start tailpid
	shift
	echo "# --- $name"
	start=$SECONDS
	# timeout puts the test in a process group of its own and, when the
	# time is up or it is told to stop, signals the whole group. It runs
	# in the background so that an interrupt here reaches it.
	: >"$out"
	timeout -k 10 "$TEST_TIMEOUT" "$@" </dev/null >"$out" 2>&1 &
	cur=$!
	tail -s 0.2 -n +1 -f --pid="$cur" "$out" &
	tailpid=$!
	wait "$cur"
	rc=$?
	cur=
	wait "$tailpid"
	p=$(grep -c '^ok - ' "$out")
	f=$(grep -c '^FAIL - ' "$out")
	passed=$((passed + p))
	failed=$((failed + f))
	while IFS= read -r line; do
		failures+=("$line")
	done < <(grep '^FAIL - ' "$out")
	if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
		echo "FAIL - $name: killed after ${TEST_TIMEOUT}s time limit"
		failures+=("FAIL - $name: killed after ${TEST_TIMEOUT}s time limit")
		failed=$((failed + 1))
	elif [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
		echo "FAIL - $name: exited with status $rc"
		failures+=("FAIL - $name: exited with status $rc")
		failed=$((failed + 1))
	fi
	echo "# $name: $((SECONDS - start))s"
}

if [ "${UNIT:-1}" != 0 ]; then
	for bin in "$BUILD_DIR"/tests/test_*; do
		[ -x "$bin" ] || continue
		case $bin in *.d | *.o) continue ;; esac
		run_one "$(basename "$bin")" "$bin"
	done
fi

if [ "${INTEGRATION:-1}" != 0 ]; then
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
		run_one "$name" bash "$script"
	done
fi

if [ ${#failures[@]} -gt 0 ]; then
	echo "# failures:"
	printf '#   %s\n' "${failures[@]}"
fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
