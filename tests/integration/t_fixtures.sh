#!/usr/bin/env bash
# t_fixtures.sh - real Prometheus 2.42 requests (tests/fixtures/req*.bin),
# posted as they are: each gets 204, the metadata-only one too, and what
# reaches VictoriaMetrics through the relay is what a VictoriaMetrics fed
# directly stores. req00044 carries stale markers (NaN 0x7ff0000000000002):
# VictoriaMetrics 1.79.5 keeps them and drops the plain NaNs
# (0x7ff8000000000001) of summaries without observations. Its export shows
# a stale marker as a bare NaN, or as null when the block also holds
# numbers. So the honest assertions are: as many samples and series as a
# reference instance fed the same files directly, and one NaN-or-null value
# per stale marker in the fixtures.
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/../lib.sh"
require_relay

FIX=$REPO/tests/fixtures
REF_PORT=$(free_port)
MAIN_PORT=$(free_port)
RELAY_PORT=$(free_port)
# The reference first: start_vm sets VM_PORT to the one started last.
start_vm "$T/ref" "$REF_PORT" || { fail setup "reference victoria-metrics did not start"; exit 1; }
start_vm "$T/vm" "$MAIN_PORT" || { fail setup "victoria-metrics did not start"; exit 1; }
write_conf "$T/relay.conf"
start_relay "$T/relay.conf" || { fail setup "relay did not become ready"; exit 1; }

# Posted as Prometheus would; the relay's answer is kept in $T/resp.
POST_OUT=$T/resp
PROM_HDRS=(-H 'Expect:' -H 'User-Agent: Prometheus/2.42.0')

samples=0 stale=0 plain_nan=0 nfix=0
for f in "$FIX"/req*.bin; do
	name=$(basename "$f" .bin)
	nfix=$((nfix + 1))
	dec=$(rwsend --decode "$f") || { fail "$name decodes" "rwsend --decode failed"; continue; }
	s=$(printf '%s\n' "$dec" | sed -n 's/^total series=[0-9]* samples=\([0-9]*\).*/\1/p')
	samples=$((samples + s))
	stale=$((stale + $(printf '%s\n' "$dec" | grep -o 'NaN(0x7ff0000000000002)' | wc -l)))
	plain_nan=$((plain_nan + $(printf '%s\n' "$dec" | grep -o 'NaN(0x[0-9a-f]*)' | grep -vc 7ff0000000000002)))
	meta=$(printf '%s\n' "$dec" | sed -n 's/.* metadata=\([0-9]*\)$/\1/p')
	code=$(post_rw "http://127.0.0.1:$RELAY_PORT/api/v1/write" "$f" "${PROM_HDRS[@]}")
	what=$name
	[ "$s" = 0 ] && what="$name (metadata only, $meta entries)"
	if [ "$code" = 204 ]; then
		ok "$what -> 204"
	else
		fail "$what -> 204" "got $code: $(head -c 200 "$T/resp")"
	fi
	code=$(post_rw "http://127.0.0.1:$REF_PORT/api/v1/write" "$f" "${PROM_HDRS[@]}")
	[ "${code:0:1}" = 2 ] || note "reference victoria-metrics answered $code for $name"
done
note "fixtures: $nfix files, $samples samples, $stale stale markers, $plain_nan plain NaNs"
check "the fixtures hold stale markers" [ "$stale" -gt 0 ]

ALL='{__name__=~".+"}'
want=$(vm_count "$REF_PORT" "$ALL")
check "reference stores all but the plain NaNs ($want = $samples - $plain_nan)" \
	[ "$want" = $((samples - plain_nan)) ]
if wait_until "$WAIT_CAP" vm_is "$VM_PORT" "$ALL" "$want"; then
	ok "through the relay: $want samples stored, as in the reference"
else
	fail "through the relay" "$(vm_count "$VM_PORT" "$ALL") samples stored, reference has $want"
fi
NONNUM='[.[].values[] | select(. == null or (type == "number" and isnan))] | length'
nan=$(vm_export "$REF_PORT" "$ALL" | jq -s "$NONNUM")
check "reference: one NaN or null per stale marker ($nan = $stale)" [ "$nan" = "$stale" ]
nan=$(vm_export "$VM_PORT" "$ALL" | jq -s "$NONNUM")
check "through the relay: all $stale stale markers stored (found $nan)" \
	[ "$nan" = "$stale" ]
s1=$(vm_series "$REF_PORT" "$ALL")
s2=$(vm_series "$VM_PORT" "$ALL")
check "through the relay: the same number of series as the reference ($s2 = $s1)" \
	[ "$s1" = "$s2" ]
# One stale series by name, as a person would look it up.
line=$(vm_export "$VM_PORT" 'flag{name="promscrape.kubernetes.apiServerTimeout"}')
# (jq prints a NaN as null; a missing sample prints nothing.)
v=$(printf '%s\n' "$line" | jq -c '[.timestamps, .values] | transpose[] | select(.[0] == 1795549952048) | .[1]')
check "req00044's stale marker for flag{name=\"promscrape.kubernetes.apiServerTimeout\"} is stored (value $v)" \
	[ "$v" = null ]
