#!/usr/bin/env bash
# t_damaged.sh - a damaged or foreign data directory. The relay buffers 200
# acknowledged requests with its upstream down and is stopped; then copies
# of its data directory are damaged: data.mdb cut to half and to 8 KiB,
# emptied, 64 fixed pseudo-random bytes written over one of the queue's
# leaf pages, another leaf page zeroed. On each the relay refuses to start
# (exit status 1, not a signal) with a message that names the damage and
# `relay salvage`; `relay salvage` copies every intact entry into a new
# directory (all but those on the damaged page; for the cuts, those on
# leaf pages still inside the file, but for the one or two whose own
# overflow pages or tail records the cut took, which it reports damaged);
# a relay on the new directory delivers
# exactly the samples salvage reported to VictoriaMetrics. Last, [storage]
# path that is a regular file, a directory with foreign files, or a shared
# 1777 directory is refused (by the relay and by -n) and left unchanged.
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/../lib.sh"
require_relay

VM_PORT=$(free_port) # nothing listens there until start_vm
RELAY_PORT=$(free_port)
URL=http://127.0.0.1:$RELAY_PORT/api/v1/write
PAGE=4096

write_conf "$T/fill.conf"
start_relay "$T/fill.conf" || { fail setup "relay did not become ready"; exit 1; }
sum=$(rwsend "$URL" --series 100 --requests 200 --name-prefix dmg)
note "fill: $sum"
check "200 requests acknowledged with the upstream down" [ "$(field "$sum" acked)" = 200 ]
stop_relay
check "the store has its identity file" [ -s "$T/data/relay.id" ]
cp -a "$T/data" "$T/orig"

# The queue's tree as the relay's reader sees it: "queue root P depth D",
# "queue leaf P entries N" lines, "main root P".
"$RELAY_BIN" salvage --from "$T/orig" --pages >"$T/pages" 2>&1
TOTAL=$(awk '$2 == "leaf" { n += $5 } END { print n + 0 }' "$T/pages")
check "the reader finds 200 entries on the queue's leaf pages" [ "$TOTAL" = 200 ]
mapfile -t LEAVES < <(awk '$2 == "leaf" && $5 > 0 { print $3 " " $5 }' "$T/pages")
if [ "${#LEAVES[@]}" -lt 3 ]; then
	fail setup "fewer than 3 leaf pages: $(cat "$T/pages")"
	exit 1
fi
read -r -a FLIP <<<"${LEAVES[1]}"
read -r -a ZERO <<<"${LEAVES[$((${#LEAVES[@]} - 1))]}"

# damage_bytes N: N fixed pseudo-random bytes on stdout.
damage_bytes() {
	awk -v n="$1" 'BEGIN { srand(20261206); for (i = 0; i < n; i++) printf "%c", int(rand() * 255) + 1 }' |
		LC_ALL=C head -c "$1"
}

# refuses NAME DIR WANT: the relay on DIR exits 1 (not killed by a signal)
# with a message holding WANT and naming relay salvage.
refuses() {
	local name=$1 dir=$2 want=$3 rc
	write_conf "$T/$name.conf" "storage.path=$dir"
	timeout 30 "$RELAY_BIN" -c "$T/$name.conf" >"$T/$name.out" 2>&1
	rc=$?
	if [ "$rc" = 1 ] && grep -qF -- "$want" "$T/$name.out" &&
		grep -qF "relay salvage" "$T/$name.out"; then
		ok "$name: the relay refuses to start, exit 1: $want"
	else
		fail "$name: refusal" "exit $rc (wanted 1), output: $(tail -c 400 "$T/$name.out")"
	fi
	"$RELAY_BIN" -n -c "$T/$name.conf" >"$T/$name.n.out" 2>&1
	rc=$?
	if [ "$rc" = 1 ] && grep -qF -- "$want" "$T/$name.n.out"; then
		ok "$name: relay -n reports it"
	else
		fail "$name: relay -n" "exit $rc (wanted 1), output: $(tail -c 400 "$T/$name.n.out")"
	fi
}

# refuses_dir NAME PATH WANT: the relay on PATH exits 1 with WANT.
refuses_dir() {
	local name=$1 path=$2 want=$3 rc
	write_conf "$T/$name.conf" "storage.path=$path"
	timeout 30 "$RELAY_BIN" -c "$T/$name.conf" >"$T/$name.out" 2>&1
	rc=$?
	if [ "$rc" = 1 ] && grep -qF -- "$want" "$T/$name.out"; then
		ok "$name: the relay refuses it, exit 1: $want"
	else
		fail "$name: refusal" "exit $rc (wanted 1), output: $(tail -c 400 "$T/$name.out")"
	fi
}

# salvaged NAME DIR WANT: relay salvage accounts for the WANT queue entries
# on DIR's readable leaf pages: it copies each into DIR.new, or reports it
# damaged when its value's own pages (overflow pages, tail records) are
# lost, as the cut to half may do to one or two; then a relay on DIR.new
# delivers all the copied samples.
salvaged() {
	local name=$1 dir=$2 want=$3 rc copied samples damaged
	"$RELAY_BIN" salvage --from "$dir" --to "$dir.new" >"$T/$name.salvage" 2>&1
	rc=$?
	copied=$(sed -n 's/^queue: copied=\([0-9]*\) .*/\1/p' "$T/$name.salvage")
	samples=$(sed -n 's/^queue: copied=[0-9]* samples=\([0-9]*\) .*/\1/p' "$T/$name.salvage")
	damaged=$(sed -n 's/^queue: .* damaged_entries=\([0-9]*\).*/\1/p' "$T/$name.salvage")
	note "$name: $(grep -m1 '^queue' "$T/$name.salvage")"
	if [ "$rc" = 0 ] && [ -n "$copied" ] && [ -n "$damaged" ] &&
		[ $((copied + damaged)) = "$want" ] && [ "$damaged" -le 2 ] &&
		{ [ "$want" = 0 ] || [ "$copied" -gt 0 ]; }; then
		ok "$name: relay salvage copies the intact entries of the $want on readable leaf pages ($copied; $damaged reported damaged)"
	else
		fail "$name: salvage" "exit $rc, copied '$copied' + damaged '$damaged', wanted $want: $(head -c 600 "$T/$name.salvage")"
		return
	fi
	start_vm "$T/vm-$name" "$VM_PORT" || { fail "$name" "victoria-metrics did not start"; return; }
	write_conf "$T/$name.new.conf" "storage.path=$dir.new"
	if ! start_relay "$T/$name.new.conf"; then
		fail "$name: the relay starts on the salvaged directory" "$(tail -n 3 "$RELAY_LOG")"
		stop_vm
		return
	fi
	if [ "$samples" -gt 0 ]; then
		wait_until "$WAIT_CAP" vm_has "$VM_PORT" '{__name__="dmg_metric"}' "$samples"
	fi
	check "$name: VictoriaMetrics gets exactly the $samples salvaged samples" \
		vm_is "$VM_PORT" '{__name__="dmg_metric"}' "$samples"
	stop_relay
	stop_vm
}

# Cut to half: what stays readable are the leaf pages inside the file, when
# the main DB's and the queue's roots are too.
D=$T/half
cp -a "$T/orig" "$D"
size=$(stat -c %s "$D/data.mdb")
truncate -s $((size / 2)) "$D/data.mdb"
in_file=$((size / 2 / PAGE))
want=$(awk -v n="$in_file" '
	$1 == "main" && $3 >= n { lost = 1 }
	$2 == "root" && $3 >= n { lost = 1 }
	$2 == "leaf" && $3 < n { k += $5 }
	END { print lost ? 0 : k + 0 }' "$T/pages")
refuses half "$D" "lies past the end of the file"
salvaged half "$D" "$want"

D=$T/cut8k
cp -a "$T/orig" "$D"
truncate -s 8192 "$D/data.mdb"
refuses cut8k "$D" "lies past the end of the file"
salvaged cut8k "$D" 0

D=$T/empty
cp -a "$T/orig" "$D"
: >"$D/data.mdb"
refuses empty "$D" "data.mdb is empty (0 bytes)"
if "$RELAY_BIN" salvage --from "$D" --to "$D.new" >"$T/empty.salvage" 2>&1; then
	fail "empty: salvage" "exit 0 on an empty data.mdb"
else
	check "empty: relay salvage says there is nothing to read" grep -qF "is empty" "$T/empty.salvage"
fi
rm "$D/data.mdb"
refuses_dir missing "$D" "data.mdb is missing, but"

D=$T/flip
cp -a "$T/orig" "$D"
damage_bytes 64 | dd of="$D/data.mdb" bs=1 seek=$((FLIP[0] * PAGE + 16)) conv=notrunc status=none
refuses flip "$D" "page ${FLIP[0]} of queue"
salvaged flip "$D" $((TOTAL - FLIP[1]))

D=$T/zero
cp -a "$T/orig" "$D"
dd if=/dev/zero of="$D/data.mdb" bs=$PAGE seek="${ZERO[0]}" count=1 conv=notrunc status=none
refuses zero "$D" "page ${ZERO[0]} of queue: its header names page 0"
salvaged zero "$D" $((TOTAL - ZERO[1]))

# --- [storage] path that is not a directory of the relay's own ------------

# not_used NAME PATH WANT: the relay and relay -n refuse PATH with WANT.
not_used() {
	local name=$1 path=$2 want=$3 rc out
	refuses_dir "$name" "$path" "$want"
	out=$("$RELAY_BIN" -n -c "$T/$name.conf" 2>&1)
	rc=$?
	if [ "$rc" = 1 ] && printf '%s' "$out" | grep -qF -- "$want"; then
		ok "$name: relay -n reports it"
	else
		fail "$name: relay -n" "exit $rc, output: $out"
	fi
}

echo "not a directory" >"$T/plainfile"
not_used plainfile "$T/plainfile" "is not a directory: Not a directory (errno 20)"
check "plainfile: left as it was" [ "$(cat "$T/plainfile")" = "not a directory" ]

mkdir -m 0755 "$T/foreign"
echo notes >"$T/foreign/notes.txt"
not_used foreign "$T/foreign" "holds 1 file not the relay's (\"notes.txt\")"
check "foreign: not chmod'ed" [ "$(stat -c %a "$T/foreign")" = 755 ]
check "foreign: nothing added" [ "$(ls -A "$T/foreign")" = notes.txt ]

mkdir "$T/shared"
chmod 1777 "$T/shared"
echo other >"$T/shared/someone-else"
not_used shared "$T/shared" "is writable by others (mode 1777)"
check "shared: not chmod'ed" [ "$(stat -c %a "$T/shared")" = 1777 ]
rm "$T/shared/someone-else"
refuses_dir shared-empty "$T/shared" "is writable by others (mode 1777)"
check "shared-empty: nothing created in it" [ -z "$(ls -A "$T/shared")" ]
