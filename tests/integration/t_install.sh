#!/usr/bin/env bash
# t_install.sh - `make install` puts the binary, the systemd unit and
# relay.conf where PREFIX, DESTDIR and SYSCONFDIR say, with the unit's paths
# matching; the unit passes `systemd-analyze verify` (offline, on the file:
# no running systemd is needed) and its offline security review; an edited
# relay.conf survives a second install.
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/../lib.sh"
require_relay

if ! command -v systemd-analyze >/dev/null; then
	skip "systemd unit" "no systemd-analyze (ops/install-deps.sh installs systemd)"
	exit 0
fi

minstall() {
	make -s -C "$REPO" BUILD="$BUILD_DIR" install "$@" >"$T/make.log" 2>&1
}

# --- a staged install: DESTDIR, the default PREFIX and sysconfdir -------------
D=$T/dest
check "make install DESTDIR=... succeeds" minstall DESTDIR="$D"
check "the binary is installed executable" test -x "$D/usr/local/bin/relay"
check "the installed binary is the one built" cmp -s "$RELAY_BIN" "$D/usr/local/bin/relay"
U=$D/usr/local/lib/systemd/system/relay.service
C=$D/usr/local/etc/relay/relay.conf
check "the unit is installed" test -f "$U"
check "relay.conf is installed under the sysconfdir" test -f "$C"
checkx "the unit starts /usr/local/bin/relay with /usr/local/etc/relay/relay.conf" \
	'grep -qx "ExecStart=/usr/local/bin/relay -c /usr/local/etc/relay/relay.conf" "$U"'
checkx "no placeholder is left in the unit" '! grep -qE "@[A-Z]+@" "$U"'
checkx "the installed relay.conf keeps its buffer in the unit's StateDirectory" \
	'grep -qx "path = /var/lib/relay/data" "$C" && grep -qx "StateDirectory=relay" "$U"'
checkx "the installed relay.conf is valid (relay -n)" '"$RELAY_BIN" -n -c "$C" >/dev/null'

# PREFIX=/usr puts relay.conf in /etc.
check "make install PREFIX=/usr succeeds" minstall DESTDIR="$T/usr" PREFIX=/usr
checkx "PREFIX=/usr: /usr/bin/relay, /usr/lib/systemd/system, /etc/relay/relay.conf" \
	'[ -x "$T/usr/usr/bin/relay" ] && [ -f "$T/usr/etc/relay/relay.conf" ] &&
	 grep -qx "ExecStart=/usr/bin/relay -c /etc/relay/relay.conf" "$T/usr/usr/lib/systemd/system/relay.service"'
check "SYSCONFDIR= overrides the sysconfdir" \
	minstall DESTDIR="$T/sc" SYSCONFDIR=/opt/conf
checkx "SYSCONFDIR=/opt/conf: the unit reads /opt/conf/relay/relay.conf" \
	'[ -f "$T/sc/opt/conf/relay/relay.conf" ] &&
	 grep -q " -c /opt/conf/relay/relay.conf$" "$T/sc/usr/local/lib/systemd/system/relay.service"'

# --- a second install keeps an edited relay.conf --------------------------------
echo "# edited by the operator" >>"$C"
check "a second make install succeeds" minstall DESTDIR="$D"
checkx "an edited relay.conf is kept" 'tail -n 1 "$C" | grep -q "edited by the operator"'
check "the new relay.conf is put beside it" test -f "$C.new"

# --- systemd-analyze: a real install, so the unit's paths exist ------------------
P=$T/prefix
check "make install PREFIX=$P succeeds" minstall PREFIX="$P"
PU=$P/lib/systemd/system/relay.service
out=$(systemd-analyze verify "$PU" 2>&1)
rc=$?
checkx "systemd-analyze verify accepts the unit, without a warning" '[ "$rc" = 0 ] && [ -z "$out" ]'
[ -z "$out" ] || note "$out"
# verify exits 0 on settings it ignores: check that it does complain.
sed 's/^NoNewPrivileges=yes/NoNewPrivileges=maybe/' "$PU" >"$T/bad.service"
checkx "systemd-analyze verify reports a broken setting (control)" \
	'[ -n "$(systemd-analyze verify "$T/bad.service" 2>&1)" ]'

# Hardening: the settings asked of the unit, and the offline review's score.
for kv in DynamicUser=yes StateDirectory=relay ProtectSystem=strict ProtectHome=yes \
	PrivateTmp=yes NoNewPrivileges=yes CapabilityBoundingSet= Restart=on-failure \
	SystemCallFilter=@system-service 'ExecReload=/bin/kill -HUP $MAINPID'; do
	check "unit: $kv" grep -qxF -- "$kv" "$PU"
done
checkx "unit: RestrictAddressFamilies is IP and Unix only" \
	'grep -qx "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX" "$PU"'
# LimitNOFILE fits the default max_connections plus the relay's 64 spare
# descriptors; TimeoutStopSec is above the longest shutdown_timeout default.
nofile=$(sed -n 's/^LimitNOFILE=//p' "$PU")
maxconn=$(sed -n 's/^max_connections = //p' "$REPO/relay.conf")
checkx "unit: LimitNOFILE ($nofile) >= max_connections ($maxconn) + 64" \
	'[ "${nofile:-0}" -ge $((maxconn + 64)) ]'
stop=$(sed -n 's/^TimeoutStopSec=\([0-9]*\)s$/\1/p' "$PU")
shut=$(sed -n 's/^shutdown_timeout = \([0-9]*\)s$/\1/p' "$REPO/relay.conf")
checkx "unit: TimeoutStopSec (${stop}s) > shutdown_timeout (${shut}s)" \
	'[ "${stop:-0}" -gt "${shut:-9999}" ]'
score=$(systemd-analyze security --offline=yes "$PU" 2>/dev/null |
	sed -n 's/.*Overall exposure level for relay.service: \([0-9.]*\).*/\1/p')
checkx "systemd-analyze security rates the unit's exposure at most 2.0 (got ${score:-none})" \
	'[ -n "$score" ] && awk -v s="$score" "BEGIN { exit !(s <= 2.0) }"'
