#!/usr/bin/env bash
# t_cli.sh - the command line: -n on good and bad configs, -h, -V, a missing
# config file, and a clean stop on SIGTERM and SIGINT.
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/../lib.sh"
require_relay

RELAY_PORT=$(free_port)
VM_PORT=$(free_port) # nothing listens there: no upstream is needed here

# -n on a good config
write_conf "$T/good.conf"
out=$("$RELAY_BIN" -n -c "$T/good.conf" 2>&1)
rc=$?
if [ "$rc" -eq 0 ] && printf '%s\n' "$out" | grep -qx 'configuration OK'; then
	ok "-n on a good config prints 'configuration OK', exit 0"
else
	fail "-n on a good config" "exit $rc, output: $out"
fi

# -n on bad configs: FILE:LINE: reason, exit 1. Each case puts its mistake
# on a known line.
bad_case() {
	local name=$1 line=$2 file=$T/bad-$3.conf out rc
	cat >"$file"
	out=$("$RELAY_BIN" -n -c "$file" 2>&1)
	rc=$?
	if [ "$rc" -eq 1 ] && printf '%s\n' "$out" | grep -q "^$file:$line: ."; then
		ok "-n on $name: FILE:$line: reason, exit 1"
	else
		fail "-n on $name" "exit $rc, wanted 1 and '$file:$line: reason', got: $out"
	fi
}

bad_case "an unknown key" 4 unknown <<CONF
[server]
listen = 127.0.0.1:$RELAY_PORT
# a comment
no_such_key = 1
CONF

bad_case "a bad size" 5 size <<CONF
[server]
listen = 127.0.0.1:$RELAY_PORT
[storage]
path = $T/data
max_size = lots
CONF

bad_case "an unknown section" 3 section <<CONF
[server]
listen = 127.0.0.1:$RELAY_PORT
[nonsense]
x = 1
CONF

bad_case "a line without '='" 2 syntax <<CONF
[upstream]
url http://127.0.0.1:1/api/v1/write
CONF

bad_case "a bad duration" 3 duration <<CONF
[upstream]
url = http://127.0.0.1:$VM_PORT/api/v1/write
min_backoff = soon
CONF

bad_case "a listen port out of range" 3 port <<CONF
[server]
# 99999 is no port: refused, not bound as some other one
listen = 127.0.0.1:99999
CONF

bad_case "an IPv6 listen address without brackets" 2 ipv6 <<CONF
[server]
listen = ::1:$RELAY_PORT
CONF

# A missing file is an error that names the file.
out=$("$RELAY_BIN" -n -c "$T/missing.conf" 2>&1)
rc=$?
if [ "$rc" -ne 0 ] && printf '%s\n' "$out" | grep -q "$T/missing.conf"; then
	ok "-n on a missing file: names it, non-zero exit"
else
	fail "-n on a missing file" "exit $rc, output: $out"
fi

# -h: usage mentioning -c, exit 0
out=$("$RELAY_BIN" -h 2>&1)
rc=$?
if [ "$rc" -eq 0 ] && printf '%s\n' "$out" | grep -qi 'usage' &&
	printf '%s\n' "$out" | grep -q -- '-c'; then
	ok "-h prints usage, exit 0"
else
	fail "-h" "exit $rc, output: $out"
fi

# -V: a version with a digit in it, exit 0
out=$("$RELAY_BIN" -V 2>&1)
rc=$?
if [ "$rc" -eq 0 ] && printf '%s\n' "$out" | grep -q '[0-9]'; then
	ok "-V prints a version, exit 0"
else
	fail "-V" "exit $rc, output: $out"
fi

# An unknown option is refused.
"$RELAY_BIN" --no-such-option >/dev/null 2>&1
rc=$?
check "an unknown option exits non-zero" [ "$rc" -ne 0 ]

# SIGTERM and SIGINT stop a running relay with exit 0.
for sig in TERM INT; do
	write_conf "$T/run.conf" "storage.path=$T/data-$sig"
	if ! start_relay "$T/run.conf"; then
		fail "SIG$sig stop" "relay did not become ready"
		continue
	fi
	check "/-/healthy answers 200 (before SIG$sig)" [ "$(http_code "http://127.0.0.1:$RELAY_PORT/-/healthy")" = 200 ]
	kill -"$sig" "$RELAY_PID"
	if wait_until "$WAIT_CAP" _gone "$RELAY_PID"; then
		wait "$RELAY_PID"
		rc=$?
		_forget_pid "$RELAY_PID"
		RELAY_PID=
		check "SIG$sig stops the relay with exit 0 (got $rc)" [ "$rc" -eq 0 ]
	else
		fail "SIG$sig stop" "still running after ${WAIT_CAP}s"
		kill9_relay
	fi
done
