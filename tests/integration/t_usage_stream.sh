#!/usr/bin/env bash
# t_usage_stream.sh - the usage report over many records streams with
# bounded memory and pages on request:
#  1. 1,000 tenants x 200 hours (200,000 records, written into the data
#     directory through the store's API by usagefill) read unfiltered as
#     JSON and as CSV: the relay's RssAnon stays within its baseline +
#     16 MiB (the whole JSON answer is about 220 MB), the JSON is valid
#     with every row and every value, the CSV has a line per row;
#  2. paging with limit and after (JSON "next", CSV X-Usage-Next) returns
#     every row exactly once, also with a tenant and a time range;
#  3. a bad limit or cursor gets 400;
#  4. `relay usage` prints the same as the endpoint, and pages too.
. "$(dirname "$0")/../lib.sh"
require_relay

TENANTS=1000
HOURS=200
ROWS=$((TENANTS * HOURS))
# The relay's anonymous memory may grow by this much while it answers.
RSS_BOUND_KIB=16384

if [ ! -x "$USAGEFILL" ]; then
	fail setup "no usagefill at $USAGEFILL (make tools)"
	exit 1
fi
VM_PORT=$(free_port)   # no upstream is needed: nothing is written
RELAY_PORT=$(free_port)
ADMIN_TOKEN=admin-usage-stream-1
# Two days back, so that no record is of an hour the relay still changes.
LAST=$(( ($(date +%s) / 3600 - 48) * 3600 ))
FIRST=$((LAST - (HOURS - 1) * 3600))
out=$("$USAGEFILL" "$T/data" "$TENANTS" "$HOURS" "$LAST") ||
	{ fail setup "usagefill: $out"; exit 1; }
check "usagefill wrote $ROWS records ($out)" [ "$out" = "records=$ROWS" ]
write_conf "$T/relay.conf" "server.admin_token=$ADMIN_TOKEN"
start_relay "$T/relay.conf" || { fail setup "relay did not become ready"; exit 1; }
BASE=http://127.0.0.1:$RELAY_PORT
AUTH="Authorization: Bearer $ADMIN_TOKEN"

# get QUERY FILE: the usage answer into FILE (headers into FILE.h);
# prints the status.
get() {
	curl -s --max-time 300 -H "$AUTH" -D "$2.h" -o "$2" -w '%{http_code}' \
		"$BASE/api/v1/usage${1:+?$1}"
}

# json_page FILE KEYS: parses a JSON usage answer (python3: jq takes a GB
# for the whole one), appends each row's "tenant hour" to KEYS and prints
# "ROWS SAMPLES NEXT" (NEXT - when there is none); fails on invalid JSON.
json_page() {
	python3 - "$1" "$2" <<'PY'
import json, sys
with open(sys.argv[1]) as f:
    d = json.load(f)
rows = d["usage"]
with open(sys.argv[2], "a") as k:
    k.write("".join("%s %s\n" % (r["tenant"], r["hour"]) for r in rows))
print(len(rows), sum(r["samples"] for r in rows), d.get("next", "-"))
PY
}

# --- 1. the whole answer, memory bounded -------------------------------------
# rss_check NAME PEAK: PEAK within the bound over base; skipped when the
# relay was built with AddressSanitizer, whose quarantine of freed memory
# grows RssAnon by itself (seen: 16-18 MiB over the answer).
rss_check() {
	if with_asan "$RELAY_BIN"; then
		skip "$1" "built with AddressSanitizer, whose allocator adds its own memory"
	else
		check "$1" [ "$2" -le $((base + RSS_BOUND_KIB)) ]
	fi
}
base=$(rss_anon_kib "$RELAY_PID")
watch_rss "$RELAY_PID" "$T/rss.max"
t0=$SECONDS
code=$(get "" "$T/all.json")
sleep 0.3   # one more sample after the answer
peak=$(cat "$T/rss.max")
note "JSON: $(stat -c %s "$T/all.json") bytes in $((SECONDS - t0)) s; RssAnon $base KiB before, $peak KiB at most"
check "unfiltered JSON: 200 (got $code)" [ "$code" = 200 ]
rss_check "unfiltered JSON: RssAnon within baseline $base KiB + $RSS_BOUND_KIB KiB (peak $peak KiB)" "$peak"
: >"$T/all.keys"
r=$(json_page "$T/all.json" "$T/all.keys")
check "unfiltered JSON is valid JSON" [ -n "$r" ]
# samples = tenant index + 1 in each of its hours; no next without a limit.
want="$ROWS $((HOURS * TENANTS * (TENANTS + 1) / 2)) -"
check "unfiltered JSON: $ROWS rows, samples adding up, no next (want $want, got $r)" \
	[ "$r" = "$want" ]
n=$(sort -u "$T/all.keys" | wc -l)
check "unfiltered JSON: $ROWS distinct (tenant, hour) (got $n)" [ "$n" = "$ROWS" ]
code=$(get "format=csv" "$T/all.csv")
peak=$(cat "$T/rss.max")
check "unfiltered CSV: 200 (got $code)" [ "$code" = 200 ]
rss_check "unfiltered CSV: RssAnon within baseline + $RSS_BOUND_KIB KiB (peak $peak KiB)" "$peak"
n=$(($(wc -l <"$T/all.csv") - 1))
check "unfiltered CSV: $ROWS lines after the header (got $n)" [ "$n" = "$ROWS" ]

# --- 2. paging ----------------------------------------------------------------
# pages_json QUERY LIMIT: follows "next" from the first page to the last;
# prints "PAGES ROWS" and leaves every row's "tenant hour" in $T/paged.
pages_json() {
	local q=$1 limit=$2 after="" pages=0 code r n next
	: >"$T/paged"
	while :; do
		code=$(get "$q${q:+&}limit=$limit${after:+&after=$after}" "$T/page.json")
		[ "$code" = 200 ] || { echo "status $code"; return 1; }
		pages=$((pages + 1))
		r=$(json_page "$T/page.json" "$T/paged") || { echo "invalid JSON"; return 1; }
		n=${r%% *}
		next=${r##* }
		[ "$n" -le "$limit" ] || { echo "page of $n rows"; return 1; }
		[ "$next" != - ] || break
		[ "$pages" -lt 1000 ] || { echo "no end"; return 1; }
		after=$(python3 -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.argv[1]))' "$next")
	done
	echo "$pages $(wc -l <"$T/paged")"
}
r=$(pages_json "" 30000)
check "JSON limit=30000: 7 pages, $ROWS rows (got $r)" [ "$r" = "7 $ROWS" ]
n=$(sort -u "$T/paged" | wc -l)
check "JSON limit=30000: every row exactly once ($n distinct)" [ "$n" = "$ROWS" ]
check "JSON limit=30000: rows in the unpaged order" cmp -s "$T/paged" "$T/all.keys"
r=$(pages_json "tenant=tenant-00007" $HOURS)
check "JSON tenant=tenant-00007 limit=$HOURS: one page, no next ($r)" [ "$r" = "1 $HOURS" ]

r=$(pages_json "tenant=tenant-00042" 64)
check "JSON tenant=tenant-00042 limit=64: 4 pages, $HOURS rows (got $r)" [ "$r" = "4 $HOURS" ]
check "JSON tenant=tenant-00042: only its rows, once each" \
	[ "$(cut -d' ' -f1 "$T/paged" | sort -u)" = tenant-00042 -a "$(sort -u "$T/paged" | wc -l)" = "$HOURS" ]
# Ten hours of every tenant: 10,000 rows in pages of 3,000.
FROM=$((FIRST + 100 * 3600))
TO=$((FROM + 10 * 3600))
r=$(pages_json "from=$FROM&to=$TO" 3000)
check "JSON ten hours, limit=3000: 4 pages, 10000 rows (got $r)" [ "$r" = "4 10000" ]
n=$(sort -u "$T/paged" | wc -l)
check "JSON ten hours: every row exactly once ($n distinct)" [ "$n" = 10000 ]

# CSV pages: the cursor is the X-Usage-Next header.
after="" pages=0
: >"$T/paged.csv"
while :; do
	code=$(get "format=csv&limit=70000${after:+&after=$after}" "$T/page.csv")
	[ "$code" = 200 ] || break
	pages=$((pages + 1))
	tail -n +2 "$T/page.csv" >>"$T/paged.csv"
	after=$(sed -n 's/^X-Usage-Next: *\([^[:space:]]*\).*/\1/ip' "$T/page.csv.h")
	[ -n "$after" ] && [ "$pages" -lt 100 ] || break
done
check "CSV limit=70000: 3 pages (got $pages)" [ "$pages" = 3 ]
check "CSV pages joined = the unpaged CSV's rows" cmp -s "$T/paged.csv" <(tail -n +2 "$T/all.csv")

# --- 3. bad paging values -----------------------------------------------------
for q in limit=0 limit=-1 limit=x "after=nocolon" "after=acme:x" "limit=5&after=:"; do
	code=$(get "$q" "$T/bad")
	check "?$q: 400 (got $code)" [ "$code" = 400 ]
done

# --- 4. the CLI ---------------------------------------------------------------
"$RELAY_BIN" usage -c "$T/relay.conf" >"$T/cli.json"
check "relay usage prints the same JSON as the endpoint" cmp -s "$T/cli.json" "$T/all.json"
"$RELAY_BIN" usage -c "$T/relay.conf" --csv >"$T/cli.csv"
check "relay usage --csv prints the same CSV as the endpoint" cmp -s "$T/cli.csv" "$T/all.csv"
"$RELAY_BIN" usage -c "$T/relay.conf" --tenant tenant-00999 --limit 150 \
	>"$T/cli1.json" 2>"$T/cli1.err"
next=$(sed -n 's/^next: //p' "$T/cli1.err")
check "relay usage --limit 150: 150 rows and a next cursor ($next)" \
	[ "$(jq '.usage | length' "$T/cli1.json")" = 150 -a "$(jq -r .next "$T/cli1.json")" = "$next" ]
"$RELAY_BIN" usage -c "$T/relay.conf" --tenant tenant-00999 --limit 150 \
	--after "$next" >"$T/cli2.json" 2>"$T/cli2.err"
check "relay usage --after: the other 50 rows, no next" \
	[ "$(jq '.usage | length' "$T/cli2.json")" = 50 -a "$(jq -r 'has("next")' "$T/cli2.json")" = false -a ! -s "$T/cli2.err" ]
"$RELAY_BIN" usage -c "$T/relay.conf" --after nonsense >/dev/null 2>&1
rc=$?
check "relay usage --after nonsense: exit 2 (got $rc)" [ "$rc" = 2 ]

stop_relay
check "relay stopped cleanly" [ $? = 0 ]
