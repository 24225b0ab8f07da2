# clusterfs: one Makefile for the binary, its tests and its benchmarks.
#
#   make            build build/clusterfs
#   make run        install what is missing, build, start a cluster (clusterfs up)
#   make test       install what is missing, build, run every test under prove
#   make asan       the same tests against an address+undefined sanitized build
#                   (without -Werror: gcc 12 warns falsely under -fsanitize)
#   make fuzz       run the libFuzzer targets for a bounded time (FUZZ_SECONDS)

PKGS    := fuse3 yaml-0.1 sqlite3
CC      ?= cc
WERROR  ?= -Werror
CFLAGS  ?= -O2 -g
ALL_CFLAGS = $(CFLAGS) -std=gnu11 -Wall -Wextra -Wstrict-prototypes -Wmissing-declarations \
           -Wwrite-strings -Wno-unused-parameter $(WERROR) -pthread \
           -D_FILE_OFFSET_BITS=64 -Iobjects -Ifs -Icontrollers -Ischeduler -Inodeagent \
           $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
ALL_LDLIBS = $(LDFLAGS) $(shell pkg-config --libs $(PKGS) 2>/dev/null) -pthread
B       ?= build

LIB_SRC := $(wildcard objects/*.c fs/*.c controllers/*.c scheduler/*.c nodeagent/*.c)
LIB_OBJ := $(LIB_SRC:%.c=$(B)/%.o)
CMD_SRC := $(wildcard cmd/*.c)
CMD_OBJ := $(CMD_SRC:%.c=$(B)/%.o)
UNIT    := $(patsubst tests/unit/%.c,$(B)/tests/%,$(wildcard tests/unit/test_*.c))
BENCH   := $(patsubst bench/%.c,$(B)/bench/%,$(wildcard bench/*.c))

all: $(B)/clusterfs $(UNIT) $(BENCH)

$(B)/%.o: %.c $(wildcard */*.h)
	@mkdir -p $(dir $@)
	@echo "  CC      $<"
	@$(CC) $(ALL_CFLAGS) -c -o $@ $<

$(B)/libclusterfs.a: $(LIB_OBJ)
	@rm -f $@
	@ar rcs $@ $^

$(B)/clusterfs: $(CMD_OBJ) $(B)/libclusterfs.a
	@echo "  LD      $@"
	@$(CC) $(ALL_CFLAGS) -o $@ $(CMD_OBJ) $(B)/libclusterfs.a $(ALL_LDLIBS)

$(B)/tests/%: tests/unit/%.c tests/unit/tap.h $(B)/libclusterfs.a
	@mkdir -p $(dir $@)
	@echo "  LD      $@"
	@$(CC) $(ALL_CFLAGS) -Itests/unit -o $@ $< $(B)/libclusterfs.a $(ALL_LDLIBS)

$(B)/bench/%: bench/%.c $(B)/libclusterfs.a
	@mkdir -p $(dir $@)
	@echo "  LD      $@"
	@$(CC) $(ALL_CFLAGS) -o $@ $< $(B)/libclusterfs.a $(ALL_LDLIBS)

deps:
	@scripts/install-deps

# The core suites run twice: on the server's mount, and through a
# `clusterfs mount` of its 9P export (FILE.bats@9p, see tests/tap-run).
REMOTE_E2E := $(addsuffix @9p,tests/e2e/core.bats tests/e2e/bad-input.bats tests/e2e/watch.bats)

test: deps
	$(MAKE) all
	CLUSTERFS=$(abspath $(B)/clusterfs) UNIT_DIR=$(abspath $(B)/tests) \
	  prove --exec tests/tap-run $(UNIT) tests/e2e/*.bats $(REMOTE_E2E)

unit: all
	prove --exec tests/tap-run $(UNIT)

run: deps
	$(MAKE) $(B)/clusterfs
	$(B)/clusterfs up

asan:
	$(MAKE) B=build-asan WERROR= CFLAGS="-O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer" \
	  LDFLAGS="-fsanitize=address,undefined" all
	UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
	  CLUSTERFS=$(abspath build-asan/clusterfs) prove --exec tests/tap-run \
	  $(patsubst $(B)/%,build-asan/%,$(UNIT)) tests/e2e/*.bats

FUZZ_SECONDS ?= 60
FUZZ_FLAGS = -O1 -g -fsanitize=fuzzer-no-link,address,undefined -fno-omit-frame-pointer
fuzz:
	$(MAKE) B=build-fuzz CC=clang WERROR= CFLAGS="$(FUZZ_FLAGS)" build-fuzz/libclusterfs.a
	clang $(FUZZ_FLAGS) -fsanitize=fuzzer -Iobjects $(shell pkg-config --cflags yaml-0.1) \
	  -o build-fuzz/fuzz_yaml tests/fuzz/fuzz_yaml.c build-fuzz/libclusterfs.a \
	  $(shell pkg-config --libs $(PKGS)) -pthread
	mkdir -p build-fuzz/corpus-yaml
	cp tests/fuzz/corpus-yaml/* build-fuzz/corpus-yaml/ 2>/dev/null || true
	build-fuzz/fuzz_yaml -max_total_time=$(FUZZ_SECONDS) -max_len=4096 build-fuzz/corpus-yaml
	clang $(FUZZ_FLAGS) -fsanitize=fuzzer -Ifs \
	  -o build-fuzz/fuzz_p9 tests/fuzz/fuzz_p9.c build-fuzz/libclusterfs.a \
	  $(shell pkg-config --libs $(PKGS)) -pthread
	mkdir -p build-fuzz/corpus-p9
	cp tests/fuzz/corpus-p9/* build-fuzz/corpus-p9/ 2>/dev/null || true
	build-fuzz/fuzz_p9 -max_total_time=$(FUZZ_SECONDS) -max_len=4096 build-fuzz/corpus-p9

valgrind: all
	for t in $(UNIT); do valgrind -q --error-exitcode=1 --leak-check=full $$t || exit 1; done

format:
	clang-format -i $(LIB_SRC) $(CMD_SRC) $(wildcard */*.h tests/unit/*.c bench/*.c)

PREFIX ?= /usr/local
install: $(B)/clusterfs
	install -D -m 755 $(B)/clusterfs $(DESTDIR)$(PREFIX)/bin/clusterfs
	install -D -m 644 docs/clusterfs.1 $(DESTDIR)$(PREFIX)/share/man/man1/clusterfs.1
	install -D -m 644 docs/clusterfs-layout.5 $(DESTDIR)$(PREFIX)/share/man/man5/clusterfs-layout.5

bench: all
	bench/write-path
	bench/pod-start
	bench/remote-view

clean:
	rm -rf build build-asan build-fuzz

.PHONY: all deps test unit run install asan fuzz valgrind format bench clean
