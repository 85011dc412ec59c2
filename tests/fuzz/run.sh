#!/usr/bin/env bash
# tests/fuzz/run.sh FUZZ_DIR SECONDS TARGET... - runs each libFuzzer target
# FUZZ_DIR/fuzz_TARGET for SECONDS on a scratch corpus FUZZ_DIR/corpus/TARGET,
# seeded from tests/fuzz/corpus/TARGET (the repository is never written;
# what the fuzzer adds to the scratch corpus stays there for the next run).
# A crash, leak, timeout or mismatch is written to FUZZ_DIR/artifacts/ and
# the target's log to FUZZ_DIR/log/TARGET.log. Ends with one line per target
# and exits 1 when any target found something.
#
# FUZZ_ARGS adds libFuzzer options, e.g. FUZZ_ARGS="-jobs=4 -workers=4".
set -u

if [ $# -lt 3 ]; then
	echo "usage: $0 FUZZ_DIR SECONDS TARGET..." >&2
	exit 2
fi

REPO=$(cd "$(dirname "$0")/../.." && pwd)
FUZZ_DIR=$(cd "$1" && pwd) || exit 2
SECONDS_EACH=$2
shift 2

# Readable stack traces from clang's sanitizers.
if [ -z "${ASAN_SYMBOLIZER_PATH:-}" ]; then
	for s in /usr/lib/llvm-14/bin/llvm-symbolizer "$(command -v llvm-symbolizer)"; do
		if [ -n "$s" ] && [ -x "$s" ]; then
			export ASAN_SYMBOLIZER_PATH=$s
			break
		fi
	done
fi
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

mkdir -p "$FUZZ_DIR/artifacts" "$FUZZ_DIR/log"
summary=()
failed=0
for target in "$@"; do
	bin=$FUZZ_DIR/fuzz_$target
	corpus=$FUZZ_DIR/corpus/$target
	log=$FUZZ_DIR/log/$target.log
	if [ ! -x "$bin" ]; then
		echo "fuzz: no $bin" >&2
		exit 2
	fi
	mkdir -p "$corpus"
	cp -n "$REPO/tests/fuzz/corpus/$target/"* "$corpus/" 2>/dev/null
	opts=(-max_total_time="$SECONDS_EACH" -timeout=25 -rss_limit_mb=2560
		-print_final_stats=1 -artifact_prefix="$FUZZ_DIR/artifacts/$target-")
	[ -f "$REPO/tests/fuzz/$target.dict" ] &&
		opts+=(-dict="$REPO/tests/fuzz/$target.dict")
	echo "# fuzz_$target: ${SECONDS_EACH}s on $(find "$corpus" -type f | wc -l) inputs" \
		"(log: $log)"
	# shellcheck disable=SC2086 # FUZZ_ARGS is a list of options
	(cd "$FUZZ_DIR" && "$bin" "${opts[@]}" ${FUZZ_ARGS:-} "$corpus") \
		>"$log" 2>&1
	rc=$?
	runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
	took=$(sed -n 's/^Done [0-9]* runs in \([0-9]*\) second.*/\1/p' "$log" | tail -n 1)
	if [ "$rc" -eq 0 ]; then
		summary+=("fuzz_$target: ok, ${runs:-?} runs in ${took:-?}s, corpus $(find "$corpus" -type f | wc -l) inputs")
	else
		failed=1
		found=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -n 1)
		echo "# --- last 60 lines of $log"
		tail -n 60 "$log"
		summary+=("fuzz_$target: FAILED (exit $rc), input: ${found:-none written}")
	fi
done
printf '%s\n' "${summary[@]}"
if [ "$failed" -ne 0 ]; then
	echo "fuzz: keep each input under tests/fuzz/regress/TARGET/ (replayed by" \
		"tests/unit/test_fuzz_regress.c); reproduce with FUZZ_DIR/fuzz_TARGET FILE"
fi
exit "$failed"
