#!/usr/bin/env bash
# t_diskfull.sh - the filesystem under the store fills up before [storage]
# max_size does: writes get 503 with Retry-After, the relay does not crash
# and loses nothing it acknowledged (also across a restart on the full
# disk); once space returns it takes writes again, and once upstream is back
# it drains. Then: LMDB reuses the pages freed by delivery (a second fill of
# the same size barely grows data.mdb).
#
# The data directory is a small tmpfs mounted for this test (root needed).
# It fills memory-backed space and mounts and unmounts filesystems: it runs
# with no other test beside it.
# serial
. "$(dirname "$0")/../lib.sh"
require_relay

MOUNTS=()
_diskfull_exit() {
	local rc=$? i m
	# The relay must be gone before its store can be unmounted.
	for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do
		_stop_pid "${PIDS[$i]}"
	done
	PIDS=()
	for m in "${MOUNTS[@]}"; do
		umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null
	done
	(exit "$rc")
	_cleanup
}
trap _diskfull_exit EXIT

# mount_tmpfs DIR SIZE: mounts a tmpfs of SIZE on DIR.
mount_tmpfs() {
	mkdir -p "$1"
	mount -t tmpfs -o "size=$2,mode=0755" tmpfs "$1" 2>"$T/mount.err" || return 1
	MOUNTS+=("$1")
}

FS=$T/fs
if ! mount_tmpfs "$FS" 5m; then
	skip "disk full" "cannot mount a tmpfs: $(head -n 1 "$T/mount.err")"
	exit 0
fi

VM_PORT=$(free_port)
RELAY_PORT=$(free_port)
URL=http://127.0.0.1:$RELAY_PORT/api/v1/write
SERIES=1000
K=10 # samples per series per request: about 54 KB per request

# send PREFIX REQUESTS: prints rwsend's summary line.
send() {
	rwsend "$URL" --series "$SERIES" --samples-per-series "$K" --requests "$2" \
		--name-prefix "$1" --concurrency 2 --quiet
}

drained() {
	metric_is "$RELAY_PORT" relay_buffer_samples 0
}

# arrived PREFIX WANT: ok/fail on every acknowledged sample being in VM.
arrived() {
	local sel="{__name__=\"$1_metric\"}" n
	n=$(vm_count_distinct "$VM_PORT" "$sel")
	if [ "${n:-0}" -ge "$2" ]; then
		ok "$1: all $2 acknowledged samples are in victoria-metrics ($n)"
	else
		fail "$1 arrived" "found ${n:-0} of $2"
	fi
}

# A ballast file takes 2 of the 5 MiB; the store gets the rest.
dd if=/dev/zero of="$FS/ballast" bs=1M count=2 2>/dev/null
write_conf "$T/relay.conf" storage.path="$FS/data" storage.max_size=64MiB
start_relay "$T/relay.conf" || { fail setup "relay did not become ready"; exit 1; }

# --- 1. fill the filesystem, upstream down --------------------------------
sum=$(send da 100)
note "fill: $sum"
note "filesystem: $(df -k "$FS" | tail -n 1)"
a_acked=$(field "$sum" samples_acked)
s5=$(field "$sum" status_5xx)
check "some writes were taken before the disk filled ($a_acked samples)" [ "${a_acked:-0}" -gt 0 ]
check "a full disk answers 503 ($s5 of 100 requests)" [ "${s5:-0}" -gt 0 ]
check "nothing else was refused ($sum)" \
	[ "$(field "$sum" status_4xx)$(field "$sum" errors)" = 00 ]
check "the relay did not crash" kill -0 "$RELAY_PID"
check "/-/healthy answers 200 on a full disk" \
	[ "$(http_code "http://127.0.0.1:$RELAY_PORT/-/healthy")" = 200 ]
check "/-/ready answers 200 on a full disk" \
	[ "$(http_code "http://127.0.0.1:$RELAY_PORT/-/ready")" = 200 ]

# One request alone may still fit where the fill's last commit, which held
# two, did not: then it is taken (204, counted as acknowledged) and the
# next one, with other samples (the same body would be a duplicate), tries.
x_acked=0
for try in 1 2 3 4 5; do
	rwsend --emit "$T/one.bin" --series "$SERIES" --samples-per-series "$K" \
		--name-prefix dx --start-ts "$(($(now_ms) - 7200000 + try * 100000))"
	code=$(curl -s -D "$T/headers" -o "$T/resp" -w '%{http_code}' --max-time 30 \
		-H 'Expect:' -H 'Content-Type: application/x-protobuf' \
		-H 'Content-Encoding: snappy' --data-binary "@$T/one.bin" "$URL")
	[ "$code" = 204 ] || break
	note "request $try after the fill still fit: 204"
	x_acked=$((x_acked + SERIES * K))
done
check "still full: 503 (got $code: $(head -c 80 "$T/resp"))" [ "$code" = 503 ]
ra=$(sed -n 's/^[Rr]etry-[Aa]fter:[[:space:]]*\([0-9]*\).*/\1/p' "$T/headers")
check "the 503 carries Retry-After (${ra:-none})" [ -n "$ra" ]
check "relay_requests_total{code=\"503\"} > 0" \
	metric_ge "$RELAY_PORT" relay_requests_total 1 'code="503"'
line=$(grep -m 1 'commit failed' "$RELAY_LOG")
note "log: $line"
check "the log has a line about the failed commit" [ -n "$line" ]
check "the log says that the disk is full (no space left)" \
	grep -qiE 'commit failed.*(no space|ENOSPC|disk full|filesystem full)' "$RELAY_LOG"
n=$(metric "$RELAY_PORT" relay_buffer_samples)
check "the buffer holds exactly the acknowledged samples ($n of $a_acked + $x_acked)" \
	[ "$n" = $((a_acked + x_acked)) ]

# --- 2. restart on the full disk ------------------------------------------
stop_relay
rc=$?
check "SIGTERM on a full disk: clean exit (status $rc)" [ "$rc" = 0 ]
if start_relay "$T/relay.conf"; then
	ok "the relay restarts on the full disk"
else
	fail "restart on a full disk" "not ready: $(tail -n 3 "$RELAY_LOG")"
	exit 1
fi
n=$(metric "$RELAY_PORT" relay_buffer_samples)
check "after the restart the buffer still holds every acknowledged sample ($n of $a_acked + $x_acked)" \
	[ "$n" = $((a_acked + x_acked)) ]
sum=$(send db 3)
note "still full: $sum"
check "still full after the restart: 503 ($sum)" [ "$(field "$sum" status_5xx)" = 3 ]

# --- 3. space returns, upstream still down --------------------------------
rm -f "$FS/ballast"
sum=$(send dc 20)
note "space back: $sum"
c_acked=$(field "$sum" samples_acked)
check "once space returns, writes get 204 again, upstream still down ($sum)" \
	[ "$(field "$sum" acked)" = 20 ]

# --- 4. upstream back: drain, deliver, accept ------------------------------
start_vm "$T/vm" "$VM_PORT" || { fail setup "victoria-metrics did not start"; exit 1; }
if wait_until 120 drained; then
	ok "upstream back: the buffer drains"
else
	fail "buffer drains" "relay_buffer_samples=$(metric "$RELAY_PORT" relay_buffer_samples)"
fi
arrived da "$a_acked"
[ "$x_acked" = 0 ] || arrived dx "$x_acked"
arrived dc "$c_acked"
sum=$(send dd 10)
check "after draining, new writes get 204 ($sum)" [ "$(field "$sum" acked)" = 10 ]
wait_until 60 drained
arrived dd "$(field "$sum" samples_acked)"
check "the relay never crashed" kill -0 "$RELAY_PID"
note "data.mdb after the drain: $(stat -c %s "$FS/data/data.mdb") bytes; $(df -k "$FS" | tail -n 1)"
stop_relay

# --- 5. freed pages are reused ----------------------------------------------
# A roomy store: fill it with N requests, drain, fill it again with N.
# The file's size stands for the pages LMDB uses, so no zeros ahead of it.
FS2=$T/fs2
mount_tmpfs "$FS2" 64m || { fail setup "cannot mount a second tmpfs"; exit 1; }
stop_vm
write_conf "$T/reuse.conf" storage.path="$FS2/data" storage.max_size=64MiB \
	storage.preallocate=0
start_relay "$T/reuse.conf" || { fail setup "relay did not become ready"; exit 1; }
N=60
sum=$(send ra "$N")
check "reuse: first fill of $N requests acknowledged ($sum)" [ "$(field "$sum" acked)" = "$N" ]
r1=$(field "$sum" samples_acked)
s1=$(stat -c %s "$FS2/data/data.mdb")
start_vm "$T/vm" "$VM_PORT" || { fail setup "victoria-metrics did not start"; exit 1; }
wait_until 120 drained || fail "reuse: first drain" "relay_buffer_samples=$(metric "$RELAY_PORT" relay_buffer_samples)"
stop_vm
sum=$(send rb "$N")
check "reuse: second fill of $N requests acknowledged ($sum)" [ "$(field "$sum" acked)" = "$N" ]
r2=$(field "$sum" samples_acked)
s2=$(stat -c %s "$FS2/data/data.mdb")
note "data.mdb after the first fill: $s1 bytes, after drain + second fill: $s2 bytes"
check "LMDB reuses freed pages: the second fill grows data.mdb by less than half ($s1 -> $s2 bytes)" \
	[ "$s2" -le $((s1 * 3 / 2)) ]
start_vm "$T/vm" "$VM_PORT" || { fail setup "victoria-metrics did not start"; exit 1; }
wait_until 120 drained || fail "reuse: second drain" "relay_buffer_samples=$(metric "$RELAY_PORT" relay_buffer_samples)"
arrived ra "$r1"
arrived rb "$r2"
