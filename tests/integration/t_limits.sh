#!/usr/bin/env bash
# t_limits.sh - the relay's resources stay bounded: at most max_connections
# client connections are taken at once (the others wait, nothing crashes);
# a connection that sends half a header and stops is closed after
# idle_timeout; a huge header gets a 4xx; a body announced over
# max_body_size gets 413 before it is sent; series over the label limits
# get 400 with a reason. After each, the relay still serves.
. "$(dirname "$0")/../lib.sh"
require_relay
command -v ss >/dev/null || { fail setup "no ss (iproute2) to count the relay's connections"; exit 1; }

VM_PORT=$(free_port)
RELAY_PORT=$(free_port)
URL=http://127.0.0.1:$RELAY_PORT/api/v1/write
start_vm "$T/vm" "$VM_PORT" || { fail setup "victoria-metrics did not start"; exit 1; }

# clients_of PID PORT: how many client connections to PORT the process has
# accepted (connections still in the listen backlog belong to no process):
# established sockets on local port PORT whose inode is one of its fds, each
# counted once. ss asks the kernel over netlink, which filters by state and
# port and answers in one pass. /proc/net/tcp will not do: it is read a
# page at a time, and while other processes open and close connections the
# walk can list one socket several times (or skip one).
clients_of() {
	local inodes
	inodes=$(for f in /proc/"$1"/fd/*; do readlink "$f"; done 2>/dev/null |
		sed -n 's/^socket:\[\([0-9]*\)\]$/\1/p')
	ss -tnHe state established "( sport = :$2 )" 2>/dev/null | awk -v inodes="$inodes" '
		BEGIN { n = split(inodes, a, "\n"); for (i = 1; i <= n; i++) own[a[i]] = 1 }
		match($0, / ino:[0-9]+/) {
			ino = substr($0, RSTART + 5, RLENGTH - 5)
			if ((ino in own) && !seen[ino]++) c++
		}
		END { print c + 0 }'
}

healthy() {
	[ "$(http_code "http://127.0.0.1:$RELAY_PORT/-/healthy")" = 200 ]
}

# post_one PREFIX [rwsend options]: one small write; prints its summary.
post_one() {
	local p=$1
	shift
	rwsend "$URL" --series 5 --samples-per-series 1 --name-prefix "$p" "$@" 2>"$T/rwsend.err"
}

# --- 1. connection limit ----------------------------------------------------
write_conf "$T/limit.conf" server.max_connections=8 server.idle_timeout=60s \
	server.threads=2
start_relay "$T/limit.conf" || { fail setup "relay did not become ready"; exit 1; }
fds=()
for ((i = 0; i < 20; i++)); do
	exec {fd}<>"/dev/tcp/127.0.0.1/$RELAY_PORT" || break
	fds+=("$fd")
done
check "20 idle TCP connections opened" [ "${#fds[@]}" = 20 ]
# Give the relay time to accept whatever it is going to accept.
maxheld=0
for ((i = 0; i < 15; i++)); do
	n=$(clients_of "$RELAY_PID" "$RELAY_PORT")
	[ "$n" -gt "$maxheld" ] && maxheld=$n
	sleep 0.1
done
note "idle connections the relay holds: $maxheld of ${#fds[@]}"
check "the relay holds at most max_connections=8 client sockets (held $maxheld)" \
	[ "$maxheld" -le 8 ]
check "... and does take connections up to the limit (held $maxheld)" \
	[ "$maxheld" -ge 1 ]
# A request made now waits for a slot (or is refused cleanly); once the idle
# connections are closed it must be served. (The background job must not
# keep copies of the idle sockets open.)
(
	for fd in "${fds[@]}"; do
		exec {fd}<&-
	done
	curl -s -o /dev/null -w '%{http_code}' --max-time 30 \
		"http://127.0.0.1:$RELAY_PORT/-/healthy" >"$T/waiting.code" 2>/dev/null
) &
waiter=$!
sleep 1
check "the relay is alive with every slot taken" kill -0 "$RELAY_PID"
for fd in "${fds[@]}"; do
	exec {fd}<&-
done
wait "$waiter"
code=$(cat "$T/waiting.code")
note "request made while the slots were taken: ${code:-none}"
case $code in
200 | 000) ok "a request made at the limit waited or was refused cleanly ($code)" ;;
*) fail "request at the limit" "got $code" ;;
esac
if wait_until 20 healthy; then
	ok "after the idle connections closed, requests are served again"
else
	fail "served after closing" "/-/healthy gives $(http_code "http://127.0.0.1:$RELAY_PORT/-/healthy")"
fi
sum=$(post_one lc)
check "a write after the connection flood is acknowledged ($sum)" \
	[ "$(field "$sum" acked)" = 1 ]
no_clients() {
	[ "$(clients_of "$RELAY_PID" "$RELAY_PORT")" = 0 ]
}
if wait_until 10 no_clients; then
	ok "the relay released the closed connections"
else
	fail "connections released" "relay holds $(clients_of "$RELAY_PID" "$RELAY_PORT") client connections"
fi
stop_relay

# --- 2. slowloris, huge header, huge body, label limits -------------------
write_conf "$T/relay.conf" server.max_connections=8 server.idle_timeout=2s \
	server.max_body_size=1MiB limits.max_labels_per_series=5 \
	limits.max_label_name_length=16 limits.max_label_value_length=64
start_relay "$T/relay.conf" || { fail setup "relay did not become ready"; exit 1; }

# Half a header, then silence: closed after idle_timeout (cap 20 s).
exec {fd}<>"/dev/tcp/127.0.0.1/$RELAY_PORT"
printf 'POST /api/v1/write HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Ty' >&"$fd"
s=$SECONDS
timeout 20 cat <&"$fd" >"$T/slow.out" 2>/dev/null
rc=$?
exec {fd}<&-
note "half-header connection: cat exit $rc after $((SECONDS - s))s"
check "a connection that stops mid-header is closed by the relay (idle_timeout=2s, cap 20s)" \
	[ "$rc" = 0 ]
# The same with several at once: the slots come back.
sfds=()
for ((i = 0; i < 8; i++)); do
	exec {fd}<>"/dev/tcp/127.0.0.1/$RELAY_PORT" || break
	printf 'GET /-/hea' >&"$fd"
	sfds+=("$fd")
done
closed=0
for fd in "${sfds[@]}"; do
	timeout 20 cat <&"$fd" >/dev/null 2>&1 && closed=$((closed + 1))
	exec {fd}<&-
done
check "8 stalled connections (all the slots) are all closed ($closed of 8)" [ "$closed" = 8 ]
check "the relay serves after the stalled connections" wait_until 20 healthy

# A 100 KB header: a 4xx, and the relay goes on.
big=$(head -c 100000 /dev/zero | tr '\0' a)
code=$(http_code "$URL" -H "X-Big: $big" -H 'Content-Type: application/x-protobuf' \
	-H 'Content-Encoding: snappy' -H 'Expect:' --data-binary 'x')
check "a request with a 100 KB header gets a 4xx (got $code)" [ "${code:0:1}" = 4 ]
code=$(http_code "http://127.0.0.1:$RELAY_PORT/-/healthy" -H "X-Big: $big")
check "a GET with a 100 KB header gets a 4xx too (got $code)" [ "${code:0:1}" = 4 ]
check "the relay serves after huge headers" healthy

# Content-Length far over max_body_size: 413 before any body byte is sent.
exec {fd}<>"/dev/tcp/127.0.0.1/$RELAY_PORT"
printf 'POST /api/v1/write HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-protobuf\r\nContent-Encoding: snappy\r\nContent-Length: 1000000000\r\n\r\n' >&"$fd"
timeout 20 cat <&"$fd" >"$T/big.out" 2>/dev/null
exec {fd}<&-
status=$(head -n 1 "$T/big.out" | tr -d '\r')
note "announced 1 GB body, no byte sent: ${status:-no answer}"
check "a body announced over max_body_size gets 413 before it is sent (${status:-no answer})" \
	grep -q '^HTTP/1\.[01] 413' "$T/big.out"
check "... with a reason" grep -qi 'limit' "$T/big.out"
# The same with Expect: 100-continue (what curl does): 413, not 100.
head -c 2000000 /dev/urandom >"$T/big.bin"
code=$(http_code "$URL" -H 'Content-Type: application/x-protobuf' \
	-H 'Content-Encoding: snappy' -H 'Expect: 100-continue' --data-binary "@$T/big.bin")
check "a 2 MB body with Expect: 100-continue gets 413 (got $code)" [ "$code" = 413 ]
# Chunked, no length up front: refused once it passes the limit.
code=$(http_code "$URL" -H 'Content-Type: application/x-protobuf' \
	-H 'Content-Encoding: snappy' -H 'Expect:' -H 'Transfer-Encoding: chunked' \
	--data-binary "@$T/big.bin")
check "a 2 MB chunked body gets 413 (got $code)" [ "$code" = 413 ]
check "relay_requests_total{code=\"413\"} >= 3" metric_ge "$RELAY_PORT" relay_requests_total 3 'code="413"'
check "the relay serves after oversized bodies" healthy

# Label limits: 3 labels of rwsend's own + extras.
sum=$(post_one ll1 --label a=1 --label b=2)
check "5 labels (the limit) are taken ($sum)" [ "$(field "$sum" acked)" = 1 ]
sum=$(post_one ll2 --label a=1 --label b=2 --label c=3)
reason=$(cat "$T/rwsend.err")
check "6 labels (over max_labels_per_series=5) get 400 ($sum)" [ "$(field "$sum" status_4xx)" = 1 ]
note "reason: $reason"
check "... with a reason that names labels (\"$reason\")" grep -qi 'label' "$T/rwsend.err"
sum=$(post_one ll3 --label abcdefghijklmnopq=1)
reason=$(cat "$T/rwsend.err")
check "a 17-byte label name (over max_label_name_length=16) gets 400 ($sum)" \
	[ "$(field "$sum" status_4xx)" = 1 ]
note "reason: $reason"
check "... with a reason (\"$reason\")" grep -qi 'label\|name' "$T/rwsend.err"
sum=$(post_one ll4 --label abcdefghijklmnop=1)
check "a 16-byte label name is taken ($sum)" [ "$(field "$sum" acked)" = 1 ]
sum=$(post_one ll5 --value-bytes 65)
reason=$(cat "$T/rwsend.err")
check "a 65-byte label value (over max_label_value_length=64) gets 400 ($sum)" \
	[ "$(field "$sum" status_4xx)" = 1 ]
note "reason: $reason"
check "... with a reason (\"$reason\")" grep -qi 'label\|value' "$T/rwsend.err"
sum=$(post_one ll6 --value-bytes 64)
check "a 64-byte label value is taken ($sum)" [ "$(field "$sum" acked)" = 1 ]
for p in ll1:5 ll4:5 ll6:5 ll2:0 ll3:0 ll5:0; do
	name=${p%%:*}
	want=${p#*:}
	sel="{__name__=\"${name}_metric\"}"
	if [ "$want" -gt 0 ]; then
		if wait_until "$WAIT_CAP" vm_has "$VM_PORT" "$sel" "$want"; then
			ok "$name: the accepted series arrived"
		else
			fail "$name arrived" "found $(vm_count "$VM_PORT" "$sel") of $want"
		fi
	fi
done
wait_until "$WAIT_CAP" metric_is "$RELAY_PORT" relay_buffer_samples 0
for name in ll2 ll3 ll5; do
	n=$(vm_count "$VM_PORT" "{__name__=\"${name}_metric\"}")
	check "$name: nothing of the refused request was stored ($n)" [ "$n" = 0 ]
done
check "the relay process is still the one started (no crash)" kill -0 "$RELAY_PID"
