# make bench: the load benchmark (tests/bench/, see run.py).
#
# Included at the end of the top-level Makefile (after `all`, so that the
# default goal stays `all`; it uses BIN, PYTHON, CC, WARNINGS, LDFLAGS, Q and
# the release build's objects from there):
#
#   include tests/bench/bench.mk
#
#   make bench                      every scenario, table + build/bench/results.json
#   make bench BENCH_ARGS=--quick   shorter windows, for a smoke run
#   make bench BENCH_ARGS=--perf    also perf-record the stack at 500 viewers

BENCH_DIR := build/bench
BENCH_CFLAGS := -std=c11 -D_GNU_SOURCE $(WARNINGS) -O2 -g
BENCH_TOOLS := $(BENCH_DIR)/loadclient $(BENCH_DIR)/baseline_raw $(BENCH_DIR)/encodebench \
	$(BENCH_DIR)/derivedbench
# What encodebench links: the responder's encoder and test pattern, and what
# those need.
ENCODEBENCH_OBJS := $(addprefix build/release/fcgi/,encode.o source_pattern.o parse.o clock.o log.o)
# derivedbench: the same, and the derived streams' scaler.
DERIVEDBENCH_OBJS := $(ENCODEBENCH_OBJS) build/release/fcgi/scaler.o
BENCH_ARGS ?=
# When make bench starts (before anything is built): run.py reports the
# whole time against the 10-minute target.
ifneq ($(filter bench,$(MAKECMDGOALS)),)
BENCH_T0 := $(shell date +%s)
endif

.PHONY: bench deps-bench bench-tools

# The Debian packages the bench needs beyond make deps (conf/deps.sh bench).
deps-bench: deps
	$(Q)conf/deps.sh bench

bench-tools: $(BENCH_TOOLS)

bench: deps-bench $(BIN) $(BENCH_TOOLS)
	BENCH_T0=$(BENCH_T0) $(PYTHON) tests/bench/run.py $(BENCH_ARGS)

$(BENCH_DIR)/loadclient: tests/bench/loadclient.c
	@mkdir -p $(@D)
	@echo "  CC    $@"
	$(Q)$(CC) $(BENCH_CFLAGS) $(LDFLAGS) -o $@ $< -pthread -lm

$(BENCH_DIR)/baseline_raw: tests/bench/baseline_raw.c
	@mkdir -p $(@D)
	@echo "  CC    $@"
	$(Q)$(CC) $(BENCH_CFLAGS) $(LDFLAGS) -o $@ $<

$(BENCH_DIR)/encodebench: tests/bench/encodebench.c $(ENCODEBENCH_OBJS)
	@mkdir -p $(@D)
	@echo "  CC    $@"
	$(Q)$(CC) $(CPPFLAGS) -Ifcgi $(BENCH_CFLAGS) -pthread $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BENCH_DIR)/derivedbench: tests/bench/derivedbench.c $(DERIVEDBENCH_OBJS)
	@mkdir -p $(@D)
	@echo "  CC    $@"
	$(Q)$(CC) $(CPPFLAGS) -Ifcgi $(BENCH_CFLAGS) -pthread $(LDFLAGS) -o $@ $^ $(LDLIBS)

-include $(BENCH_DIR)/encodebench.d
-include $(BENCH_DIR)/derivedbench.d
