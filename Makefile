# dendrite — build with `make`, test with `make test`.
#   make CC=clang            another compiler
#   make asan                the test suite under AddressSanitizer + UndefinedBehaviorSanitizer (clang)
#   make examples            the programs in examples/
#   make test-aarch64        cross-build for aarch64 (BUILD=build-arm) and run the whole suite under qemu-aarch64
#   make test RUN="wrapper"  run every test program (and the programs the tests start) through a wrapper
#   make ONNX=1              with ONNX export/import (docs/onnx.md; needs protobuf-c), built in build-onnx/
#   make MPI=1               data-parallel training on Open MPI (docs/distributed.md; CC=mpicc), built in build-mpi/
#   make test-mpi            the distributed tests (tests/test_mpi.sh) against the MPI build and the default one
CC      ?= cc
ONNX    ?= 0
MPI     ?= 0
ifeq ($(MPI),1)
BUILD   ?= build-mpi
CC      := mpicc
else ifeq ($(ONNX),1)
BUILD   ?= build-onnx
else
BUILD   ?= build
endif
OPT     ?= -O3
CFLAGS  ?= $(OPT) -g
WARN    := -Wall -Wextra -Werror -Wshadow -Wno-unused-parameter
ALLFLAGS = -std=c11 -D_POSIX_C_SOURCE=200809L -fno-math-errno -fno-trapping-math $(WARN) -Iinclude -Isrc -fPIC -fvisibility=hidden $(CFLAGS) $(EXTRA_CFLAGS)
LDLIBS  := -lm -lpthread
RUN     ?=

LIB_SRC  := $(wildcard src/*.c src/kernels/*.c src/ops/*.c src/nn/*.c src/optim/*.c src/data/*.c src/io/*.c src/dist/*.c)
# MPI (an optional part): src/dist/mpi.c built with mpicc; without it src/dist/no_mpi.c is a group of one process.
ifeq ($(MPI),1)
LIB_SRC  := $(filter-out src/dist/no_mpi.c,$(LIB_SRC))
ALLFLAGS += -DDN_MPI=1
else
LIB_SRC  := $(filter-out src/dist/mpi.c,$(LIB_SRC))
endif
# ONNX (an optional part): C code generated from third_party/onnx/onnx.proto by protoc-c at build time, the
# src/io/onnx_*.c files and libprotobuf-c; without it src/io/no_onnx.c answers that the support is not built in.
ifeq ($(ONNX),1)
LIB_SRC  := $(filter-out src/io/no_onnx.c,$(LIB_SRC))
ONNX_GEN := $(BUILD)/gen/onnx.pb-c.c
ALLFLAGS += -DDN_ONNX=1 -I$(BUILD)/gen
LDLIBS   += -lprotobuf-c
ONNX_CHECK_BIN := $(BUILD)/onnx_conformance_run
else
LIB_SRC  := $(filter-out src/io/onnx_%.c,$(LIB_SRC))
ONNX_GEN :=
ONNX_CHECK_BIN :=
endif
LIB_OBJ  := $(LIB_SRC:%.c=$(BUILD)/%.o) $(ONNX_GEN:%.c=%.o)
TEST_SRC := $(wildcard tests/test_*.c) tests/main.c
TEST_SRC := $(filter-out tests/test_gemm_standalone.c,$(TEST_SRC))
TEST_OBJ := $(TEST_SRC:%.c=$(BUILD)/%.o)
EX_SRC   := $(wildcard examples/*.c)
EX_BIN   := $(EX_SRC:examples/%.c=$(BUILD)/examples/%)

.PHONY: test-mpi all test test-data test-aarch64 examples asan clean gradcheck install uninstall docs bench fuzz valgrind check-layers test-onnx onnx-checks
.SECONDARY:
all: $(BUILD)/libdendrite.a $(BUILD)/libdendrite.so $(BUILD)/dendrite

$(BUILD)/%.o: %.c $(wildcard include/*.h src/*.h src/*/*.h tests/*.h tools/*.h fuzz/*.h) | $(ONNX_GEN)
	@mkdir -p $(dir $@)
	$(CC) $(ALLFLAGS) -c $< -o $@

# protoc-c's output is not ours to keep warning-free: it is compiled without -Werror and -Wextra
$(BUILD)/gen/onnx.pb-c.c: third_party/onnx/onnx.proto
	@mkdir -p $(dir $@)
	@command -v protoc-c >/dev/null || { echo "make ONNX=1 needs protoc-c (apt-get install protobuf-c-compiler libprotobuf-c-dev)"; exit 1; }
	protoc-c --c_out=$(BUILD)/gen -Ithird_party/onnx third_party/onnx/onnx.proto

$(BUILD)/gen/onnx.pb-c.o: $(BUILD)/gen/onnx.pb-c.c
	$(CC) -std=c11 -fPIC -fvisibility=hidden $(CFLAGS) $(EXTRA_CFLAGS) -w -c $< -o $@

$(BUILD)/libdendrite.a: $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/libdendrite.so: $(LIB_OBJ)
	$(CC) -shared $(CFLAGS) $(EXTRA_CFLAGS) -o $@ $^ $(LDLIBS)

REPORT_OBJ := $(patsubst %.c,$(BUILD)/%.o,$(wildcard tools/report*.c))
$(BUILD)/dendrite: $(BUILD)/tools/dendrite.o $(REPORT_OBJ) $(BUILD)/libdendrite.a
	$(CC) $(CFLAGS) $(EXTRA_CFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/test_runner: $(TEST_OBJ) $(BUILD)/libdendrite.a
	$(CC) $(CFLAGS) $(EXTRA_CFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/examples/%: $(BUILD)/examples/%.o $(BUILD)/libdendrite.a
	$(CC) $(CFLAGS) $(EXTRA_CFLAGS) -o $@ $^ $(LDLIBS)

examples: $(EX_BIN)

# Speed next to PyTorch (docs/benchmarks.md); run it on an otherwise idle machine.  `make bench ISA=avx2` caps both
# sides at AVX2 (dendrite through DN_ISA, PyTorch through OpenBLAS's and oneDNN's switches).
$(BUILD)/bench/bench: $(BUILD)/bench/bench.o $(BUILD)/libdendrite.a
	$(CC) $(CFLAGS) $(EXTRA_CFLAGS) -o $@ $^ $(LDLIBS) -ldl

bench: $(BUILD)/bench/bench
	ISA=$(ISA) sh bench/run.sh $(BUILD)

# Every example network trains briefly under valgrind memcheck (docs/reliability.md); needs valgrind and MNIST.
valgrind: all examples
	sh tests/valgrind.sh $(BUILD)

# libFuzzer targets for every parser, each for FUZZ_SECONDS (docs/reliability.md); needs clang.
fuzz:
	@$(MAKE) --no-print-directory -C fuzz fuzz

# Resident memory over a 20-epoch MNIST run (docs/reliability.md).
$(BUILD)/soak: $(BUILD)/tools/soak.o $(BUILD)/libdendrite.a
	$(CC) $(CFLAGS) $(EXTRA_CFLAGS) -o $@ $^ $(LDLIBS)

# The GEMM kernel against its reference over thousands of shapes (its own program; --bench times it).
$(BUILD)/test_gemm: $(BUILD)/tests/test_gemm_standalone.o $(BUILD)/libdendrite.a
	$(CC) $(CFLAGS) $(EXTRA_CFLAGS) -o $@ $^ $(LDLIBS)

# The dendrite side of tools/onnx_conformance.py (ONNX's own node test cases; docs/onnx.md, "Conformance").
$(BUILD)/onnx_conformance_run: $(BUILD)/tools/onnx_conformance_run.o $(BUILD)/libdendrite.a
	$(CC) $(CFLAGS) $(EXTRA_CFLAGS) -o $@ $^ $(LDLIBS)

# MNIST for the tests that train on it, fetched (md5-checked, scripts/fetch-mnist.sh) when data/mnist lacks a file.
# If the fetch fails the suite still runs: those tests then report "skip" (a failure for what DN_REQUIRE lists).
MNIST_FILES := $(addprefix data/mnist/,train-images-idx3-ubyte train-labels-idx1-ubyte t10k-images-idx3-ubyte t10k-labels-idx1-ubyte)
test-data:
	@for f in $(MNIST_FILES); do [ -r $$f ] || { bash scripts/fetch-mnist.sh data/mnist || \
		echo "warning: could not fetch MNIST; the tests that need it will be skipped"; break; }; done

# The suite: unit tests, registry-wide gradient check and PyTorch goldens, then the CLI checks.  Each part's last
# line is "N passed, N failed, N skipped"; env DN_REQUIRE=mnist,python3,chromium makes those skips failures.
# RUN (empty by default) prefixes every test program and, through DN_RUN_PREFIX, every program the tests start.
test: all $(BUILD)/test_runner $(BUILD)/test_gemm examples test-data $(ONNX_CHECK_BIN)
	@DN_RUN_PREFIX="$(RUN)" sh tests/test_runner.sh $(BUILD) > $(BUILD)/test_runner_self.log 2>&1 || { cat $(BUILD)/test_runner_self.log; exit 1; }
	@echo "runner: $$(tail -1 $(BUILD)/test_runner_self.log)"
	@$(RUN) $(BUILD)/test_gemm > $(BUILD)/test_gemm.log || { tail -20 $(BUILD)/test_gemm.log; exit 1; }
	@echo "gemm: $$(tail -1 $(BUILD)/test_gemm.log)"
	@DN_RUN_PREFIX="$(RUN)" DN_DATA=data sh tests/test_report.sh $(BUILD) > $(BUILD)/test_report.log 2>&1 || { tail -30 $(BUILD)/test_report.log; exit 1; }
	@echo "report: $$(tail -1 $(BUILD)/test_report.log)"; grep '^skip' $(BUILD)/test_report.log || true
	@DN_RUN_PREFIX="$(RUN)" CC="$(CC)" LDLIBS="$(LDLIBS)" EXTRA_CFLAGS="$(EXTRA_CFLAGS)" DN_DATA=data sh tests/test_docs.sh $(BUILD) > $(BUILD)/test_docs.log 2>&1 || { tail -30 $(BUILD)/test_docs.log; exit 1; }
	@echo "docs: $$(tail -1 $(BUILD)/test_docs.log)"; grep '^skip' $(BUILD)/test_docs.log || true
	@python3 tools/check_header_docs.py > $(BUILD)/header_docs.log || { cat $(BUILD)/header_docs.log; exit 1; }
	@python3 tools/check_floors.py $(BUILD) > $(BUILD)/floors.log || { cat $(BUILD)/floors.log; exit 1; }
	@echo "$$(tail -1 $(BUILD)/floors.log)"
	@sh tests/check_exports.sh $(BUILD) > $(BUILD)/exports.log || { cat $(BUILD)/exports.log; exit 1; }
	@echo "exports: $$(head -1 $(BUILD)/exports.log)"
	@ONNX=$(ONNX) DN_DATA=data sh tests/test_onnx.sh $(BUILD) > $(BUILD)/test_onnx.log 2>&1 || { tail -30 $(BUILD)/test_onnx.log; exit 1; }
	@echo "onnx: $$(tail -1 $(BUILD)/test_onnx.log)"
	DN_RUN_PREFIX="$(RUN)" DN_DATA=data DN_BUILD=$(BUILD) $(RUN) $(BUILD)/test_runner

# The aarch64 build (NEON kernels) and the whole suite under user-mode emulation; needs Debian's
# gcc-aarch64-linux-gnu, libc6-dev-arm64-cross and qemu-user.  Correctness only: emulation says nothing of speed.
AARCH64_CC   ?= aarch64-linux-gnu-gcc
AARCH64_QEMU ?= qemu-aarch64 -L /usr/aarch64-linux-gnu
test-aarch64:
	@$(MAKE) --no-print-directory -j2 CC=$(AARCH64_CC) BUILD=build-arm all build-arm/test_runner build-arm/test_gemm examples
	@$(MAKE) --no-print-directory CC=$(AARCH64_CC) BUILD=build-arm RUN="$(AARCH64_QEMU)" test

# The ONNX checks alone, in the ONNX build (docs/onnx.md): the part of `make test ONNX=1` that the option adds,
# with the export check of its shared library (protobuf-c's generated code must stay hidden).
test-onnx:
	@$(MAKE) --no-print-directory ONNX=1 onnx-checks

onnx-checks: all $(BUILD)/test_runner $(ONNX_CHECK_BIN)
	@sh tests/check_exports.sh $(BUILD) | head -1
	ONNX=$(ONNX) DN_DATA=data sh tests/test_onnx.sh $(BUILD)

# The distributed tests: the default build and the MPI one side by side (tests/test_mpi.sh; skips without mpicc
# unless DN_REQUIRE lists mpi).  As root, export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1.
test-mpi:
	@$(MAKE) --no-print-directory -j2 BUILD=build all
	@if command -v mpicc >/dev/null 2>&1; then $(MAKE) --no-print-directory -j2 MPI=1 all; fi
	DN_DATA=data sh tests/test_mpi.sh build build-mpi

# The floors of docs/design.md: no include or call from a lower floor to a higher one (reads the object files).
check-layers: all
	python3 tools/check_floors.py $(BUILD)

gradcheck: $(BUILD)/dendrite
	$(BUILD)/dendrite gradcheck

asan:
	@$(MAKE) --no-print-directory BUILD=build-asan CC=clang OPT=-O1 EXTRA_CFLAGS="-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer" test

# Installation: header, static and shared libraries, pkg-config file, the command and its man page.
PREFIX  ?= /usr/local
DESTDIR ?=
VERSION := $(shell sed -n 's/^#define DN_VERSION "\([0-9.]*\)".*/\1/p' include/dendrite.h)

install: all
	install -d $(DESTDIR)$(PREFIX)/include $(DESTDIR)$(PREFIX)/lib/pkgconfig $(DESTDIR)$(PREFIX)/bin \
		$(DESTDIR)$(PREFIX)/share/man/man1
	install -m 644 include/dendrite.h $(DESTDIR)$(PREFIX)/include/dendrite.h
	install -m 644 $(BUILD)/libdendrite.a $(DESTDIR)$(PREFIX)/lib/libdendrite.a
	install -m 755 $(BUILD)/libdendrite.so $(DESTDIR)$(PREFIX)/lib/libdendrite.so
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@VERSION@|$(VERSION)|' -e 's|^Libs.private: .*|Libs.private: $(LDLIBS)|' \
		dendrite.pc.in > $(DESTDIR)$(PREFIX)/lib/pkgconfig/dendrite.pc
	install -m 755 $(BUILD)/dendrite $(DESTDIR)$(PREFIX)/bin/dendrite
	install -m 644 man/dendrite.1 $(DESTDIR)$(PREFIX)/share/man/man1/dendrite.1

uninstall:
	rm -f $(DESTDIR)$(PREFIX)/include/dendrite.h $(DESTDIR)$(PREFIX)/lib/libdendrite.a \
		$(DESTDIR)$(PREFIX)/lib/libdendrite.so $(DESTDIR)$(PREFIX)/lib/pkgconfig/dendrite.pc \
		$(DESTDIR)$(PREFIX)/bin/dendrite $(DESTDIR)$(PREFIX)/share/man/man1/dendrite.1

# The API reference (include/dendrite.h) and the guides (docs/*.md) as HTML in $(BUILD)/docs; needs doxygen and python3.
docs:
	@command -v doxygen >/dev/null || { echo "make docs needs doxygen (apt-get install doxygen)"; exit 1; }
	@{ cat Doxyfile; echo "PROJECT_NUMBER = $(VERSION)"; echo "OUTPUT_DIRECTORY = $(BUILD)"; } | doxygen -
	@echo "docs: $(BUILD)/docs/index.html"

clean:
	rm -rf build build-asan build-arm build-onnx build-mpi
