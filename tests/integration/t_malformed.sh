#!/usr/bin/env bash
# t_malformed.sh - requests the relay must refuse, each with its status, and
# a relay that still serves afterwards: a valid request gets 204 and arrives.
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/../lib.sh"
require_relay

VM_PORT=$(free_port)
RELAY_PORT=$(free_port)
start_vm "$T/vm" "$VM_PORT" || { fail setup "victoria-metrics did not start"; exit 1; }
write_conf "$T/relay.conf" server.max_body_size=64KiB server.max_decoded_size=256KiB
start_relay "$T/relay.conf" || { fail setup "relay did not become ready"; exit 1; }
URL=http://127.0.0.1:$RELAY_PORT/api/v1/write
B=$T/bodies
mkdir -p "$B"

# The bodies.
rwsend --emit "$B/valid.bin" --series 10 --name-prefix mv
# Unsorted (sorted by the relay), but a name twice: refused.
rwsend --emit "$B/unsorted-dup.bin" --series 10 --name-prefix mu --unsorted-labels \
	--label a=1 --label instance=again
rwsend --emit "$B/empty-value.bin" --series 10 --name-prefix me --empty-label-value
rwsend --emit "$B/dup-name.bin" --series 10 --name-prefix md --label instance=again
printf '\x0a\xff\xff\xff\xff\x0f' >"$B/garbage.pb"       # field 1, length past the end
rwsend --compress "$B/garbage.pb" "$B/garbage-proto.bin"
printf '\xff\xff\xff\xff\x0f' >"$B/wiretype7.pb"          # field with wire type 7
rwsend --compress "$B/wiretype7.pb" "$B/wiretype7.bin"
head -c 60 "$B/valid.bin" >"$B/truncated-snappy.bin"      # stated length, data cut
printf '\x64\xff\xff\xff\xff\xff\xff\xff' >"$B/corrupt-snappy.bin" # copy before any literal
head -c 100000 /dev/urandom >"$B/over-body-size.bin"      # > 64KiB compressed
printf '\x80\x80\x80\x40\x00' >"$B/states-128MiB.bin"     # stated length 128MiB
rwsend --emit "$B/decodes-400KB.bin" --series 40 --name-prefix mz --value-bytes 10000
for f in "$B"/*.bin; do
	[ -s "$f" ] || { fail setup "could not build $(basename "$f")"; exit 1; }
done
zsize=$(stat -c %s "$B/decodes-400KB.bin")
[ "$zsize" -lt 65536 ] || { fail setup "decodes-400KB.bin is $zsize bytes compressed, not under 64KiB"; exit 1; }

declare -A want_count=()

# row NAME WANT BODY [curl args...]: posts BODY ("-": none) with the Remote
# Write headers and checks the status. $ct and $enc, when set for the call
# (ct=text/plain row ...), replace Content-Type and Content-Encoding.
row() {
	local name=$1 want=$2 body=$3 got reason
	local -a data=()
	shift 3
	[ "$body" = - ] || data=(--data-binary "@$body")
	got=$(curl -s -o "$T/resp" -w '%{http_code}' --max-time 30 -H 'Expect:' \
		-H "Content-Type: ${ct:-application/x-protobuf}" \
		-H "Content-Encoding: ${enc:-snappy}" \
		-H 'X-Prometheus-Remote-Write-Version: 0.1.0' \
		"${data[@]}" "$@" "$URL")
	reason=$(head -c 200 "$T/resp" | tr '\n' ' ')
	want_count[$want]=$((${want_count[$want]:-0} + 1))
	if [ "$got" = "$want" ]; then
		ok "$name -> $want"
	else
		fail "$name -> $want" "got $got ($reason)"
		return
	fi
	if [ "$want" = 400 ]; then
		if [ -s "$T/resp" ] && [ "$(grep -c '' "$T/resp")" -le 1 ]; then
			ok "$name: a one-line reason ($reason)"
		else
			fail "$name: one-line reason" "body: $(head -c 300 "$T/resp")"
		fi
	fi
}

row "GET on /api/v1/write" 405 -
row "PUT on /api/v1/write" 405 "$B/valid.bin" -X PUT
ct=text/plain row "Content-Type text/plain" 415 "$B/valid.bin"
enc=gzip row "Content-Encoding gzip" 415 "$B/valid.bin"
ct='application/x-protobuf;proto=io.prometheus.write.v2.Request' \
	row "Remote Write 2.0 content type" 415 "$B/valid.bin"
row "truncated snappy" 400 "$B/truncated-snappy.bin"
row "corrupt snappy" 400 "$B/corrupt-snappy.bin"
row "valid snappy, protobuf length past the end" 400 "$B/garbage-proto.bin"
row "valid snappy, protobuf wire type 7" 400 "$B/wiretype7.bin"
row "unsorted label names, one twice" 400 "$B/unsorted-dup.bin"
row "empty label value" 400 "$B/empty-value.bin"
row "duplicate label name" 400 "$B/dup-name.bin"
row "body over max_body_size (100000 > 64KiB)" 413 "$B/over-body-size.bin"
row "snappy stated length 128MiB > max_decoded_size" 413 "$B/states-128MiB.bin"
row "decodes to 400KB > max_decoded_size 256KiB" 413 "$B/decodes-400KB.bin"

# The relay counts what it answered.
for code in 400 405 413 415; do
	check "relay_requests_total{code=\"$code\"} = ${want_count[$code]}" \
		metric_is "$RELAY_PORT" relay_requests_total "${want_count[$code]}" "code=\"$code\""
done

# Still serving: a valid request is taken and arrives; nothing refused did.
check "/-/ready answers 200" [ "$(http_code "http://127.0.0.1:$RELAY_PORT/-/ready")" = 200 ]
row "a valid request afterwards" 204 "$B/valid.bin"
if wait_until "$WAIT_CAP" vm_has "$VM_PORT" '{__name__="mv_metric"}' 10; then
	ok "the valid request's 10 samples arrived"
else
	fail "valid request arrived" "found $(vm_count_distinct "$VM_PORT" '{__name__="mv_metric"}') of 10"
fi
n=$(vm_count "$VM_PORT" '{__name__=~"m[uedz]_metric"}')
check "no refused request reached victoria-metrics ($n samples)" [ "$n" = 0 ]
