#!/usr/bin/env bash
# ops/install-deps.sh - installs the Debian 12 packages the relay needs to
# build and test: compiler, libraries, VictoriaMetrics and Prometheus as test
# peers, curl, jq, ss (iproute2) and python3 (test clients) for the
# integration tests, nginx (a misbehaving upstream: wrong URL, 401, 503 with
# Retry-After; the load balancer of a fleet; an alert receiver), faketime
# (wall-clock steps under libfaketime) for the upstream and clock tests,
# chromium (headless) to open the status page in a test; PostgreSQL, Redis
# and the Prometheus postgres, redis and node exporters for `make demo` and
# its test; systemd for `systemd-analyze verify` of ops/relay.service (it
# needs no running systemd). Idempotent: when everything
# is installed it only asks dpkg and exits.
#
# "ops/install-deps.sh fuzz" (used by make fuzz) also installs clang with
# its libFuzzer and sanitizer runtimes, and llvm-symbolizer for readable
# stack traces.
#
# The victoria-metrics, prometheus, nginx, postgresql, redis-server and exporter
# packages try to start their system services on install; where policy-rc.d
# refuses that, the refusal is harmless. The tests and the demo never use
# those services: they start their own instances, as the current user, on
# free loopback ports.
set -eu

PACKAGES=(
	build-essential
	pkg-config
	libprotobuf-c-dev
	protobuf-c-compiler
	libsnappy-dev
	libcurl4-openssl-dev
	libssl-dev
	libmicrohttpd-dev
	libgnutls28-dev
	liblmdb-dev
	libyaml-dev
	libpcre2-dev
	lmdb-utils
	curl
	jq
	iproute2
	python3
	victoria-metrics
	prometheus
	nginx
	faketime
	chromium
	postgresql
	prometheus-postgres-exporter
	redis-server
	prometheus-redis-exporter
	prometheus-node-exporter
	systemd
)

# Only for make fuzz: clang 14 is Debian 12's default clang; the fuzzer,
# ASan and UBSan runtimes for it are in libclang-rt-14-dev.
FUZZ_PACKAGES=(
	clang-14
	libclang-rt-14-dev
	llvm-14
)

case "${1:-}" in
"") ;;
fuzz) PACKAGES+=("${FUZZ_PACKAGES[@]}") ;;
*)
	echo "usage: $0 [fuzz]" >&2
	exit 2
	;;
esac

missing=()
for pkg in "${PACKAGES[@]}"; do
	status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
	[ "$status" = "install ok installed" ] || missing+=("$pkg")
done

if [ ${#missing[@]} -eq 0 ]; then
	exit 0
fi

echo "install-deps: installing ${missing[*]}" >&2
SUDO=
if [ "$(id -u)" -ne 0 ]; then
	SUDO=sudo
fi
$SUDO apt-get update -q
$SUDO env DEBIAN_FRONTEND=noninteractive \
	apt-get install -y -q --no-install-recommends "${missing[@]}"
