#!/usr/bin/env bash
# t_ops.sh - the alerting rules in ops/ load in Prometheus' own checker, and
# every relay_ metric they use is one the relay exports.
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/../lib.sh"
require_relay
RULES=$REPO/ops/relay-rules.yml

if out=$(promtool check rules "$RULES" 2>&1); then
	ok "promtool accepts ops/relay-rules.yml"
else
	fail "promtool accepts ops/relay-rules.yml" "$(echo "$out" | tr '\n' ' ')"
fi

RELAY_PORT=$(free_port)
write_conf "$T/relay.conf"
start_relay "$T/relay.conf" || { fail setup "relay did not become ready"; exit 1; }
curl -s "http://127.0.0.1:$RELAY_PORT/metrics" >"$T/metrics"
# Every family has a TYPE line, also before its first sample.
exported=$(awk '$1 == "#" && $2 == "TYPE" && $3 ~ /^relay_/ {print $3}' "$T/metrics" | sort -u)
used=$(grep -oE 'relay_[a-z_]+' "$RULES" | sort -u)
[ -n "$used" ] || fail "the rules use relay metrics" "none found in $RULES"
for m in $used; do
	if grep -qx "$m" <<<"$exported"; then
		ok "rules: $m is exported"
	else
		fail "rules: $m is exported" "not in /metrics"
	fi
done

# The exposition itself passes Prometheus' linter (format, HELP, names).
if out=$(promtool check metrics <"$T/metrics" 2>&1); then
	ok "promtool check metrics accepts /metrics"
else
	fail "promtool check metrics accepts /metrics" "$(echo "$out" | head -5 | tr '\n' ' ')"
fi
