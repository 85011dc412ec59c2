# Prometheus remote-write relay. Targets: all (build/relay), run, test, check,
# bench, fuzz, deps, install, clean. One Makefile, explicit source list.

CC      ?= cc
PREFIX  ?= /usr/local
DESTDIR ?=
CONF    ?= relay.conf
OPT     ?= -O2 -g
SAN     ?=
BUILD   ?= build

CFLAGS  = -std=c11 -D_GNU_SOURCE $(OPT) $(SAN) -Wall -Wextra -Wformat=2 -Wshadow \
          -Wmissing-prototypes -Iinclude -I$(BUILD)/gen -MMD -MP
LDFLAGS = $(SAN)
LDLIBS  = -lmicrohttpd -lcurl -llmdb -lsnappy -lprotobuf-c -lcrypto -lpthread -lm

# Library sources: everything but main.c, shared by the relay and the tests.
LIB_SRCS = src/buf.c src/log.c src/config.c src/wire.c src/sblock.c \
           src/store.c src/queue.c src/writer.c src/ingest.c src/retry.c \
           src/forward.c src/metrics.c src/http.c src/tenant.c src/usage.c src/dedup.c
PROTOS   = proto/types.proto proto/remote.proto
PROTO_C  = $(patsubst proto/%.proto,$(BUILD)/gen/%.pb-c.c,$(PROTOS))
PROTO_O  = $(PROTO_C:.c=.o)
LIB_OBJS = $(patsubst src/%.c,$(BUILD)/obj/%.o,$(LIB_SRCS))
UNIT_SRCS = $(wildcard tests/unit/test_*.c)
UNIT_BINS = $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(UNIT_SRCS))
TOOL_SRCS = $(wildcard bench/*.c)
TOOL_BINS = $(patsubst bench/%.c,$(BUILD)/bin/%,$(TOOL_SRCS))

.PHONY: all run test check bench fuzz deps install clean unit tools

all: $(BUILD)/relay

deps:
	@ops/install-deps.sh

run: deps all
	$(BUILD)/relay -c $(CONF)

test: deps all unit tools
	@tests/run.sh $(BUILD)

check:
	$(MAKE) BUILD=build-san OPT="-O1 -g -fno-omit-frame-pointer" \
	        SAN="-fsanitize=address,undefined -fno-sanitize-recover=undefined" test

bench: deps all tools
	@bench/run.sh $(BUILD)

fuzz: deps
	@tests/fuzz/run.sh

unit: $(UNIT_BINS)
tools: $(TOOL_BINS) $(BUILD)/bin/rwsend

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

# The integration tests' sender: generated protobuf code only, no relay code.
$(BUILD)/bin/rwsend: tests/tools/rwsend.c $(PROTO_O) | $(BUILD)/bin
	$(CC) $(CFLAGS) -o $@ $< $(PROTO_O) $(LDFLAGS) -lcurl -lsnappy -lprotobuf-c -lpthread -lm

$(BUILD)/obj $(BUILD)/gen $(BUILD)/tests $(BUILD)/bin:
	mkdir -p $@

install: all
	install -d $(DESTDIR)$(PREFIX)/bin
	install -m 0755 $(BUILD)/relay $(DESTDIR)$(PREFIX)/bin/relay

clean:
	rm -rf build build-san

-include $(wildcard $(BUILD)/obj/*.d $(BUILD)/tests/*.d $(BUILD)/bin/*.d)
