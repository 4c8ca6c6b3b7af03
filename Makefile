# es: event sourcing from the shell.
#   make            build build/libes.a and every program (warnings are errors)
#   make check      build, then run the unit tests, the bats suite and the man lint
#   make demo       install missing packages, build, run scripts/demo
#   make bench      scripts/bench (BENCH_N=100000 for a quick run)
#   make torture    the long reliability families
#   make fuzz       libFuzzer targets for a bounded time (clang)
#   make install    PREFIX=/usr/local DESTDIR= (RELEASE=1: no fault hooks, static)
#   SANITIZE=address,undefined make check    the same suite under ASan+UBSan

CC      ?= cc
PREFIX  ?= /usr/local
ifdef SANITIZE
BUILD   ?= build/san
else
BUILD   ?= build
endif
VERSION := 0.1.0

PKGS    := jansson libzstd lmdb libcrypto
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null || echo -ljansson -lzstd -llmdb -lcrypto)

WARN    := -Wall -Wextra -Werror -Wstrict-prototypes -Wmissing-prototypes \
           -Wvla -Wwrite-strings -Wshadow -Wno-unused-parameter \
           -Wno-format-truncation  # messages are cut to their buffers on purpose
CFLAGS  ?= -O2 -g
ALL_CFLAGS := -std=c11 -D_GNU_SOURCE -DES_VERSION='"$(VERSION)"' $(WARN) \
           -Ilib $(PKG_CFLAGS) $(CFLAGS)
LDLIBS  := $(PKG_LIBS) -lpthread
ifdef SANITIZE
ALL_CFLAGS += -fsanitize=$(SANITIZE) -fno-omit-frame-pointer -fno-sanitize-recover=all
LDFLAGS += -fsanitize=$(SANITIZE)
endif
# Test builds carry the fault hooks (ES_FAULT, ES_CRASH); `make RELEASE=1` drops them.
RELEASE_ON := $(filter-out 0 no,$(RELEASE))
ifeq ($(RELEASE_ON),)
ALL_CFLAGS += -DES_TEST_HOOKS
endif
# Release builds link statically (STATIC=0 keeps shared libraries): a program
# that starts for one event spends most of its time in the dynamic loader
# (single es-append p50 2.9 ms shared, 1.9 ms static; see README). The cost:
# a security update of jansson, zstd, LMDB or libcrypto needs a rebuild.
ifneq ($(RELEASE_ON),)
ifndef SANITIZE
STATIC ?= 1
endif
endif
ifeq ($(STATIC),1)
LDFLAGS += -static
LDLIBS  := $(shell pkg-config --static --libs $(PKGS) 2>/dev/null || echo -ljansson -lzstd -llmdb -lcrypto -ldl) -lpthread
endif

LIB_SRC  := $(sort $(wildcard lib/*.c))
LIB_OBJ  := $(LIB_SRC:lib/%.c=$(BUILD)/lib/%.o)
PROGS    := $(sort $(patsubst bin/%.c,%,$(wildcard bin/es-*.c)))
BINS     := $(PROGS:%=$(BUILD)/%)
UNIT_SRC := $(sort $(wildcard tests/unit/test_*.c))
UNITS    := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/unit/%)
MANS     := $(sort $(wildcard man/*.[157]))

all: $(BUILD)/libes.a $(BINS) $(BUILD)/gen-events

$(BUILD)/lib/%.o: lib/%.c $(wildcard lib/*.h) | $(BUILD)/lib
	$(CC) $(ALL_CFLAGS) -c -o $@ $<

$(BUILD)/libes.a: $(LIB_OBJ)
	rm -f $@ && ar rcs $@ $^

$(BUILD)/es-%: bin/es-%.c $(BUILD)/libes.a $(wildcard lib/*.h)
	$(CC) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $< $(BUILD)/libes.a $(LDLIBS)

$(BUILD)/unit/%: tests/unit/%.c tests/unit/unit.h $(BUILD)/libes.a | $(BUILD)/unit
	$(CC) $(ALL_CFLAGS) -Itests/unit $(LDFLAGS) -o $@ $< $(BUILD)/libes.a $(LDLIBS)

$(BUILD)/gen-events: scripts/gen-events.c | $(BUILD)
	$(CC) $(ALL_CFLAGS) -ffp-contract=off $(LDFLAGS) -o $@ $<

$(BUILD) $(BUILD)/lib $(BUILD)/unit:
	mkdir -p $@

check: all $(UNITS)
	@set -e; for t in $(UNITS); do echo "unit: $$t"; $$t; done
	mandoc -Tlint -Wwarning $(MANS)
	ES_BIN=$(abspath $(BUILD)) bats tests/*.bats

demo:
	scripts/install-deps
	$(MAKE) all
	scripts/demo

bench: all
	scripts/bench

torture: all
	scripts/torture

fuzz:
	$(MAKE) -C tests/fuzz

install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/man/man1 \
	    $(DESTDIR)$(PREFIX)/share/man/man5 $(DESTDIR)$(PREFIX)/share/man/man7
	install -m 755 $(BINS) $(DESTDIR)$(PREFIX)/bin/
	install -m 644 $(wildcard man/*.1) $(DESTDIR)$(PREFIX)/share/man/man1/
	install -m 644 $(wildcard man/*.5) $(DESTDIR)$(PREFIX)/share/man/man5/
	install -m 644 $(wildcard man/*.7) $(DESTDIR)$(PREFIX)/share/man/man7/

clean:
	rm -rf $(BUILD)

.PHONY: all check demo bench torture fuzz install clean
