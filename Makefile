# Prometheus remote-write relay. Targets: all (build/relay), run, test, check,
# bench, fuzz, deps, install, demo, clean. One Makefile, explicit source list.

CC      ?= cc
PREFIX  ?= /usr/local
DESTDIR ?=
# make install: relay.conf goes to SYSCONFDIR/relay/, the systemd unit to
# UNITDIR (both read by systemd for /usr and /usr/local).
SYSCONFDIR ?= $(if $(filter /usr,$(PREFIX)),/etc,$(PREFIX)/etc)
UNITDIR    ?= $(PREFIX)/lib/systemd/system
CONF    ?= relay.conf
OPT     ?= -O2 -g
SAN     ?=
BUILD   ?= build

CFLAGS  = -std=c11 -D_GNU_SOURCE $(OPT) $(SAN) -Wall -Wextra -Wformat=2 -Wshadow \
          -Wmissing-prototypes -Iinclude -I$(BUILD)/gen -MMD -MP
LDFLAGS = $(SAN)
LDLIBS  = -lmicrohttpd -lcurl -llmdb -lsnappy -lprotobuf-c -lcrypto -lgnutls -lyaml -lpcre2-8 -lpthread -lm

# Library sources: everything but main.c, shared by the relay and the tests.
LIB_SRCS = src/buf.c src/clock.c src/err.c src/log.c src/addr.c src/config.c src/config_tenant.c src/wire.c src/wire_emit.c src/wire_series.c src/labels.c src/sblock.c src/sblock_prefix.c \
           src/store.c src/lmdb_read.c src/store_check.c src/store_salvage.c src/salvage_state.c src/salvage_tails.c src/store_queue.c src/store_tail.c src/store_lanes.c src/lanes.c src/store_setaside.c src/store_dedup.c src/store_usage.c src/store_dest.c src/store_ha.c src/store_series.c \
           src/batch.c src/evict.c src/queue.c src/ratelimit.c src/tenant_stats.c src/writer.c src/writer_ops.c src/writer_sweep.c src/ingest.c src/retry.c src/upstream_gate.c \
           src/forward.c src/curl_mem.c src/metrics.c src/http.c src/http_write.c src/listener.c src/admission.c src/tenant.c src/tenant_rows.c src/hll.c src/usage.c src/usage_report.c src/usage_export.c src/upstream_status.c src/status_page.c src/dedup.c src/entries.c src/prealloc.c src/setaside.c src/reload.c src/ha.c
PROTOS   = proto/types.proto proto/remote.proto
PROTO_C  = $(patsubst proto/%.proto,$(BUILD)/gen/%.pb-c.c,$(PROTOS))
PROTO_O  = $(PROTO_C:.c=.o)
# Connection bounds and in-flight accounting around the HTTP server.
LIB_SRCS += src/conn_guard.c src/inflight.c
# Answers streamed part by part (usage reports, set-aside listings).
LIB_SRCS += src/http_stream.c
# Plain-HTTP upstream requests written from the map, without curl's copy.
LIB_SRCS += src/upstream_conn.c
# [tenant] max_series: the exact per-tenant series tables.
LIB_SRCS += src/series_limit.c
# Relabel rules: the engine, the YAML loader, the per-series pass.
LIB_SRCS += src/relabel.c src/relabel_compile.c src/relabel_yaml.c src/relabel_pass.c src/relabel_cache.c
LIB_OBJS = $(patsubst src/%.c,$(BUILD)/obj/%.o,$(LIB_SRCS))
UNIT_SRCS = $(wildcard tests/unit/test_*.c)
UNIT_BINS = $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(UNIT_SRCS))
TOOL_SRCS = $(wildcard bench/*.c)
TOOL_BINS = $(patsubst bench/%.c,$(BUILD)/bin/%,$(TOOL_SRCS))

# make check: sanitizer behaviour. Reports abort the process, so a test (or
# the relay under an integration test) that hits one fails.
CHECK_ASAN_OPTIONS  ?= detect_leaks=1:abort_on_error=1
CHECK_UBSAN_OPTIONS ?= print_stacktrace=1:halt_on_error=1

# make fuzz: clang's libFuzzer with ASan and UBSan; the library code and
# the generated protobuf code are built again, instrumented, in FUZZ_DIR.
FUZZ_CC      ?= clang-14
FUZZ_SECONDS ?= 60
FUZZ_TARGETS ?= decoder config answer
FUZZ_DIR      = build/fuzz
FUZZ_SAN      = -fsanitize=address,undefined -fno-sanitize-recover=undefined
FUZZ_CFLAGS   = -std=c11 -D_GNU_SOURCE -O1 -g -fno-omit-frame-pointer $(FUZZ_SAN) \
                -Wall -Wextra -Wformat=2 -Wshadow -Wmissing-prototypes \
                -Iinclude -I$(FUZZ_DIR)/gen -MMD -MP
FUZZ_PROTO_C  = $(patsubst proto/%.proto,$(FUZZ_DIR)/gen/%.pb-c.c,$(PROTOS))
FUZZ_PROTO_O  = $(FUZZ_PROTO_C:.c=.o)
FUZZ_OBJS     = $(patsubst src/%.c,$(FUZZ_DIR)/obj/%.o,$(LIB_SRCS)) $(FUZZ_PROTO_O)
FUZZ_BINS     = $(patsubst %,$(FUZZ_DIR)/fuzz_%,$(FUZZ_TARGETS))

.PHONY: all run test check bench fuzz fuzz-build deps install clean unit tools demo

# The generated protobuf-c sources are kept, not removed after every run.
.SECONDARY: $(PROTO_C) $(PROTO_C:.c=.h)

all: $(BUILD)/relay

deps:
	@ops/install-deps.sh

run: deps all
	$(BUILD)/relay -c $(CONF)

test: deps all unit tools
	@tests/run.sh $(BUILD)

# The whole suite (unit and integration) built with ASan and UBSan in
# build-san/; any report fails the test that saw it.
check:
	ASAN_OPTIONS=$(CHECK_ASAN_OPTIONS) UBSAN_OPTIONS=$(CHECK_UBSAN_OPTIONS) \
	$(MAKE) BUILD=build-san OPT="-O1 -g -fno-omit-frame-pointer" \
	        SAN="-fsanitize=address,undefined -fno-sanitize-recover=undefined" test

# The relay in its stack on loopback ports (ops/demo.sh); Ctrl-C stops it.
demo: deps all
	@BUILD_DIR=$(abspath $(BUILD)) ops/demo.sh

bench: deps all tools
	@bench/run.sh $(BUILD)

# libFuzzer targets (tests/fuzz/) built with clang in build/fuzz/, each run
# for FUZZ_SECONDS on a scratch copy of its seed corpus.
fuzz:
	@ops/install-deps.sh fuzz
	@$(MAKE) --no-print-directory fuzz-build
	@tests/fuzz/run.sh $(FUZZ_DIR) $(FUZZ_SECONDS) $(FUZZ_TARGETS)

fuzz-build: $(FUZZ_BINS)

unit: $(UNIT_BINS)
tools: $(TOOL_BINS) $(BUILD)/bin/rwsend $(BUILD)/bin/usagefill

$(BUILD)/relay: $(BUILD)/obj/main.o $(LIB_OBJS) $(PROTO_O)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/obj/%.o: src/%.c $(PROTO_C) | $(BUILD)/obj
	$(CC) $(CFLAGS) -c -o $@ $<

$(BUILD)/gen/%.pb-c.c $(BUILD)/gen/%.pb-c.h: proto/%.proto | $(BUILD)/gen
	protoc-c --proto_path=proto --c_out=$(BUILD)/gen $<

$(BUILD)/gen/%.pb-c.o: $(BUILD)/gen/%.pb-c.c
	$(CC) $(CFLAGS) -Wno-missing-prototypes -c -o $@ $<

$(BUILD)/tests/%: tests/unit/%.c $(LIB_OBJS) $(PROTO_O) | $(BUILD)/tests
	$(CC) $(CFLAGS) -Itests/unit -o $@ $< $(LIB_OBJS) $(PROTO_O) $(LDFLAGS) $(LDLIBS)

$(BUILD)/bin/%: bench/%.c $(LIB_OBJS) $(PROTO_O) | $(BUILD)/bin
	$(CC) $(CFLAGS) -o $@ $< $(LIB_OBJS) $(PROTO_O) $(LDFLAGS) $(LDLIBS)

# The integration tests' usage records, written through the store's API.
$(BUILD)/bin/usagefill: tests/tools/usagefill.c $(LIB_OBJS) $(PROTO_O) | $(BUILD)/bin
	$(CC) $(CFLAGS) -o $@ $< $(LIB_OBJS) $(PROTO_O) $(LDFLAGS) $(LDLIBS)

# The integration tests' sender: generated protobuf code only, no relay code.
$(BUILD)/bin/rwsend: tests/tools/rwsend.c $(PROTO_O) | $(BUILD)/bin
	$(CC) $(CFLAGS) -o $@ $< $(PROTO_O) $(LDFLAGS) -lcurl -lsnappy -lprotobuf-c -lpthread -lm

$(BUILD)/obj $(BUILD)/gen $(BUILD)/tests $(BUILD)/bin:
	mkdir -p $@

# Fuzz targets: the library objects get coverage instrumentation only
# (fuzzer-no-link); the target itself links libFuzzer's main.
$(FUZZ_DIR)/fuzz_%: tests/fuzz/fuzz_%.c $(FUZZ_OBJS)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer -o $@ $< $(FUZZ_OBJS) $(LDLIBS)

$(FUZZ_DIR)/obj/%.o: src/%.c $(FUZZ_PROTO_C) | $(FUZZ_DIR)/obj
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -c -o $@ $<

$(FUZZ_DIR)/gen/%.pb-c.c $(FUZZ_DIR)/gen/%.pb-c.h: proto/%.proto | $(FUZZ_DIR)/gen
	protoc-c --proto_path=proto --c_out=$(FUZZ_DIR)/gen $<

$(FUZZ_DIR)/gen/%.pb-c.o: $(FUZZ_DIR)/gen/%.pb-c.c
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -Wno-missing-prototypes -c -o $@ $<

$(FUZZ_DIR)/obj $(FUZZ_DIR)/gen:
	mkdir -p $@

# Reached only through the pattern rules above: keep them between runs.
.SECONDARY: $(FUZZ_OBJS) $(FUZZ_PROTO_C)

# The binary, the systemd unit with this install's paths, and relay.conf
# with the buffer in the unit's state directory; an existing relay.conf is
# left as it is (the new one is put beside it as relay.conf.new).
install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(UNITDIR) $(DESTDIR)$(SYSCONFDIR)/relay
	install -m 0755 $(BUILD)/relay $(DESTDIR)$(PREFIX)/bin/relay
	sed -e 's|@BINDIR@|$(PREFIX)/bin|g' -e 's|@SYSCONFDIR@|$(SYSCONFDIR)|g' \
		ops/relay.service >$(BUILD)/relay.service
	install -m 0644 $(BUILD)/relay.service $(DESTDIR)$(UNITDIR)/relay.service
	sed -e 's|^path = ./data$$|path = /var/lib/relay/data|' $(CONF) >$(BUILD)/relay.conf.install
	if [ -e $(DESTDIR)$(SYSCONFDIR)/relay/relay.conf ]; then \
		install -m 0644 $(BUILD)/relay.conf.install $(DESTDIR)$(SYSCONFDIR)/relay/relay.conf.new; \
	else \
		install -m 0644 $(BUILD)/relay.conf.install $(DESTDIR)$(SYSCONFDIR)/relay/relay.conf; \
	fi

clean:
	rm -rf build build-san

-include $(wildcard $(BUILD)/obj/*.d $(BUILD)/tests/*.d $(BUILD)/bin/*.d)
-include $(wildcard $(FUZZ_DIR)/obj/*.d $(FUZZ_DIR)/*.d)
