# mjpeg-fcgi: build, run, test, install.
#
#   make            build fcgi/mjpeg-fcgi
#   make run        install what is missing, build, serve on http://127.0.0.1:$(PORT)/
#   make start      the same stack in the background; make stop ends it
#                   (TLS=1: https with HTTP/2, a self-signed certificate)
#   make cluster    origin, EDGES edges and an nginx balancer on PORT; make cluster-stop
#   make test       install what is missing, build, run every test (stage times at the end)
#   make check      the quick tier: build, lint, unit tests, the nginx stack suite
#   make test-under-load   make test beside two CPU-bound processes
#   make install    PREFIX=/usr/local DESTDIR=

CC ?= cc
CFLAGS ?= -O2 -g
WARNINGS := -Wall -Wextra -Wshadow -Wformat=2 -Wstrict-prototypes -Wmissing-prototypes \
	-Wpointer-arith -Wvla
CPPFLAGS += -D_GNU_SOURCE -MMD -MP
ALL_CFLAGS = -std=c11 $(WARNINGS) -pthread $(CFLAGS)
LDLIBS += -lfcgi -lturbojpeg -linih -lcurl -ljansson -lcrypto -pthread
PREFIX ?= /usr/local
PORT ?= 8080
# make cluster: how many edges behind the balancer.
EDGES ?= 3
# Cores: parallel builds, tests and fuzzing size themselves by it.
NPROC := $(shell nproc 2>/dev/null || echo 1)
CONFIG ?=
WORKERS ?=
# Which web server the stack puts in front: nginx (default), lighttpd,
# apache (plain CGI, as on shared hosting), apache-fcgid, apache-proxy.
SERVER ?=
# TLS=1: https with HTTP/2 on PORT, a self-signed certificate in run/PORT/tls/.
TLS ?=
PYTHON := /usr/bin/python3
# The responder the stack runs: the sanitizer run points it elsewhere.
RESPONDER ?= $(abspath $(BIN))

ifeq ($(V),1)
Q :=
else
Q := @
endif

# The released binary: built at build/release/mjpeg-fcgi, and linked
# (hard) to fcgi/mjpeg-fcgi, the path the stack, the tests and install use.
BIN := fcgi/mjpeg-fcgi
# AddressSanitizer + UndefinedBehaviorSanitizer build, beside the normal one.
ASAN_DIR := build/asan
ASAN_FLAGS := -fsanitize=address,undefined -fno-sanitize-recover=undefined \
	-fno-omit-frame-pointer
ASAN_LOGS := $(abspath $(ASAN_DIR))/logs
ASAN_TESTS := $(addprefix tests/integration/,test_nginx_stack.py test_sources.py \
	test_limits.py test_workers.py test_reload.py test_churn.py test_abort.py \
	test_ingest_reload.py test_relay.py test_cluster.py test_signed.py test_exec.py \
	test_derived.py test_push.py)
# Every module but main.c, by name (fcgi/NAME.c).
LIB_MODS := $(filter-out main,$(basename $(notdir $(wildcard fcgi/*.c))))
UNIT_TESTS := $(patsubst tests/unit/test_%.c,%,$(wildcard tests/unit/test_*.c))
UNIT_BINS := $(UNIT_TESTS:%=build/release/unit/test_%)
ASAN_UNIT_BINS := $(UNIT_TESTS:%=$(ASAN_DIR)/unit/test_%)

# The modules each unit test links (fcgi/NAME.c; testutil is
# tests/unit/testutil.c, which encodes test JPEGs): what the test calls,
# then what those call in turn, as the linker asks for them.  A module
# that starts calling another shows here, in every test that links it.
UNIT_MODS_bus := bus bus_file clock log testutil encode
UNIT_MODS_cmdline := cmdline
UNIT_MODS_command := command clock log
UNIT_MODS_config := config cmdline option parse log testutil encode
UNIT_MODS_deadline := deadline clock log testutil encode
UNIT_MODS_derived := source source_derived scaler source_pattern source_dir source_raw \
	source_mjpeg source_pipe source_http upstream source_exec command cmdline drops mjpeg_reader mjpeg_splitter multipart bus bus_file \
	encode clock log testutil
UNIT_MODS_encode := encode log
# stream.c starts and stops producers: the fan-out test links every source.
UNIT_MODS_fanout := fanout fanout_viewer frame_cache watcher viewer viewer_blocking pace \
	request_input reply record multipart http sign bus bus_file stream producer \
	source source_pattern source_dir source_raw source_mjpeg source_pipe source_http upstream \
	source_exec command source_derived scaler drops mjpeg_reader mjpeg_splitter multipart config \
	cmdline option parse encode clock log testutil
UNIT_MODS_http := http sign config cmdline option parse encode log
UNIT_MODS_mjpeg_reader := mjpeg_reader mjpeg_splitter multipart clock log testutil encode
UNIT_MODS_mjpeg_splitter := mjpeg_splitter log testutil encode
UNIT_MODS_multipart := multipart clock
UNIT_MODS_option := option parse log
UNIT_MODS_origin := origin upstream config cmdline option parse clock log testutil encode
UNIT_MODS_pace := pace
UNIT_MODS_parse := parse
UNIT_MODS_pattern := source source_pattern source_dir source_raw source_mjpeg source_pipe drops \
	source_http upstream source_exec command cmdline source_derived scaler bus bus_file \
	mjpeg_reader mjpeg_splitter multipart encode clock log testutil
UNIT_MODS_record := record log testutil encode
UNIT_MODS_scaler := scaler encode log testutil
UNIT_MODS_sign := sign http config cmdline option parse encode log
UNIT_MODS_viewer := viewer pace multipart config cmdline option parse encode clock log
UNIT_MODS_source_pipe := source source_pattern source_dir source_raw source_mjpeg \
	source_pipe source_http upstream source_exec command cmdline source_derived scaler bus \
	bus_file drops mjpeg_reader mjpeg_splitter multipart encode clock log testutil

.PHONY: all deps deps-test run start stop cluster cluster-stop test check test-under-load unit integration \
	integration-nginx clean install asan asan-unit asan-integration lint check-build \
	test-build

all: $(BIN)

# Build variants: each has its own tree build/VARIANT/, where the object of
# a source lands at the source's path (build/asan/fcgi/bus.o from
# fcgi/bus.c), the programs at the top and the unit tests in unit/.  All
# come from the rules in build_variant; a variant V only sets V_CC (the
# compiler), V_CFLAGS (compile and link), V_COMPILE (compile only) and
# V_LINK (link only).  release: the responder as installed; asan: the
# sanitizer build; fuzz: the libFuzzer harnesses (tests/fuzz/fuzz.mk).
VARIANTS := release asan
release_CC = $(CC)
release_CFLAGS = $(ALL_CFLAGS)
asan_CC = $(CC)
asan_CFLAGS = $(ALL_CFLAGS) $(ASAN_FLAGS)

# Links $^ into $@ in variant $(1), with the libraries $(2).
define link_variant
@mkdir -p $(@D)
@echo "  LD    $@"
$(Q)$($(1)_CC) $($(1)_CFLAGS) $($(1)_LINK) $(LDFLAGS) -o $@ $^ $(2)
endef

# Variant $(1): every object from its source, and the responder.
define build_variant
build/$(1)/%.o: %.c
	@mkdir -p $$(@D)
	@echo "  CC    $$@"
	$$(Q)$$($(1)_CC) $$(CPPFLAGS) -Ifcgi $$($(1)_CFLAGS) $$($(1)_COMPILE) -c -o $$@ $$<

build/$(1)/mjpeg-fcgi: build/$(1)/fcgi/main.o $(LIB_MODS:%=build/$(1)/fcgi/%.o)
	$$(call link_variant,$(1),$$(LDLIBS))

-include $$(wildcard build/$(1)/fcgi/*.d build/$(1)/tests/*/*.d)
endef

# The objects of the modules $(2) (fcgi/NAME.c, or tests/unit/testutil.c)
# in variant $(1).
variant_objs = $(foreach m,$(2),build/$(1)/$(if $(filter testutil,$(m)),tests/unit,fcgi)/$(m).o)

# Unit test $(2) in variant $(1): its own object and its UNIT_MODS_$(2).
define unit_test
build/$(1)/unit/test_$(2): build/$(1)/tests/unit/test_$(2).o $(call variant_objs,$(1),$(UNIT_MODS_$(2)))
	$$(call link_variant,$(1),$$(LDLIBS) -lcmocka)
endef

$(foreach v,$(VARIANTS),$(eval $(call build_variant,$(v))))
$(foreach v,$(VARIANTS),$(foreach t,$(UNIT_TESTS),$(eval $(call unit_test,$(v),$(t)))))

$(BIN): build/release/mjpeg-fcgi
	@echo "  LN    $@"
	$(Q)ln -f $< $@ 2>/dev/null || cp -f $< $@

# The Debian packages, and the apt-get step for those missing: conf/deps.sh.
deps:
	$(Q)conf/deps.sh build run

deps-test: deps
	$(Q)conf/deps.sh test

run: deps $(BIN)
	SERVER=$(SERVER) TLS=$(TLS) BIN=$(RESPONDER) WORKERS=$(WORKERS) conf/stack.sh run $(PORT) $(CONFIG)

start: deps $(BIN)
	SERVER=$(SERVER) TLS=$(TLS) BIN=$(RESPONDER) WORKERS=$(WORKERS) conf/stack.sh start $(PORT) $(CONFIG)

stop:
	conf/stack.sh stop $(PORT)

# The balancer on PORT, the origin (CONFIG) on PORT+1, the edges on PORT+2
# to PORT+1+EDGES: conf/cluster.sh.
cluster: deps $(BIN)
	BIN=$(RESPONDER) WORKERS=$(WORKERS) conf/cluster.sh start $(PORT) $(EDGES) $(CONFIG)

cluster-stop:
	conf/cluster.sh stop $(PORT)

# Runs the stages "NAME=TARGET ..." in order, each `make TARGET`, and
# prints the time of each at the end; at the first stage that fails it
# stops, prints the times so far, names the stage and fails.
define run_stages
	$(Q)total_start=$$(date +%s%N); times=""; failed=""; \
	for stage in $(1); do \
		name=$${stage%%=*}; target=$${stage#*=}; \
		start=$$(date +%s%N); \
		$(MAKE) --no-print-directory $$target || failed=$$name; \
		tenths=$$(( ($$(date +%s%N) - start) / 100000000 )); \
		times="$$times $$name=$$tenths"; \
		[ -z "$$failed" ] || break; \
	done; \
	tenths=$$(( ($$(date +%s%N) - total_start) / 100000000 )); \
	echo "== $(2): time per stage"; \
	for t in $$times; do \
		printf '  %-12s %5d.%d s\n' $${t%%=*} $$(( $${t#*=} / 10 )) $$(( $${t#*=} % 10 )); \
	done; \
	printf '  %-12s %5d.%d s\n' total $$(( tenths / 10 )) $$(( tenths % 10 )); \
	if [ -n "$$failed" ]; then echo "$(2): stage $$failed failed"; exit 1; fi
endef

TEST_STAGES := build=test-build lint=lint unit=unit integration=integration asan=asan fuzz=fuzz
CHECK_STAGES := build=check-build lint=lint unit=unit integration=integration-nginx

# What the stages run, built first, a job per core: the responder, the unit
# tests, and for make test their sanitizer builds and the fuzz harnesses.
CHECK_BUILD := $(BIN) $(UNIT_BINS)
TEST_BUILD := $(CHECK_BUILD) $(ASAN_DIR)/mjpeg-fcgi $(ASAN_UNIT_BINS) fuzz-build

check-build:
	$(Q)$(MAKE) --no-print-directory -j$(NPROC) $(CHECK_BUILD)

test-build:
	$(Q)$(MAKE) --no-print-directory -j$(NPROC) $(TEST_BUILD)

test: deps-test
	$(call run_stages,$(TEST_STAGES),make test)

# The quick tier, for the edit-compile-test loop (under 90 s).
check: deps-test
	$(call run_stages,$(CHECK_STAGES),make check)

# make test while two CPU-bound processes run beside it for the whole run,
# as on a busy machine; they are stopped afterwards, whatever the result
# (--timeout: even if this make is killed outright).
test-under-load: deps-test
	$(Q)stress-ng --cpu 2 --timeout 3600 --quiet & load=$$!; \
	trap 'kill $$load 2>/dev/null; wait $$load 2>/dev/null' EXIT INT TERM; \
	echo "make test beside stress-ng --cpu 2 (pid $$load)"; \
	$(MAKE) --no-print-directory test

# Static analysis: any finding fails.  Then the structure: no include
# cycle between fcgi/ modules, and README.md's option table agrees with
# --help (printed from the option table).
lint: $(BIN)
	cppcheck --quiet --enable=warning,performance,portability --std=c11 --inline-suppr \
		--error-exitcode=1 -D_GNU_SOURCE -Ifcgi fcgi/*.c
	$(PYTHON) tests/check_includes.py fcgi
	$(PYTHON) tests/check_options.py README.md $(BIN)

# Tests run TEST_JOBS at a time: most of their time is spent waiting
# (for a timer, a server, a peer), so twice the cores keeps them busy.
# Each test binary and each pytest worker has its own files, sockets and
# ports (tests/integration/stacks.py), and every bound on time in a test
# leaves room for a machine far busier than this makes it.
TEST_JOBS ?= $(shell echo $$(( 2 * $(NPROC) )))
PYTEST := $(PYTHON) -m pytest -q -p no:cacheprovider -n $(TEST_JOBS)

# Runs the test binaries $(2) TEST_JOBS at a time, each one's output in one
# piece; every binary runs, even after one fails, and the target fails if
# any did (make names each that failed).  $(1): the environment.
define run_unit
	$(Q)$(MAKE) --no-print-directory -k -j$(TEST_JOBS) --output-sync=target \
		UNIT_ENV='$(1)' $(2:%=run-unit/%) || { echo "unit tests failed (see above)"; exit 1; }
endef

run-unit/%: %
	@echo "== $<"
	$(Q)$(UNIT_ENV) ./$<

unit: $(UNIT_BINS)
	$(call run_unit,,$(UNIT_BINS))

integration: $(BIN)
	$(PYTEST) tests/integration

# The default stack's suite (wire format, page, errors) behind nginx only.
integration-nginx: $(BIN)
	MJPEG_TEST_SERVERS=nginx $(PYTEST) \
		tests/integration/test_nginx_stack.py

# The unit and integration tests again, against the sanitizer build.  Any
# report fails the run: the tests' own checks, or a sanitizer log left by a
# responder (leaks are reported when it exits).
asan: asan-unit asan-integration

asan-unit: $(ASAN_UNIT_BINS)
	$(call run_unit,ASAN_OPTIONS=detect_leaks=1,$(ASAN_UNIT_BINS))

asan-integration: $(ASAN_DIR)/mjpeg-fcgi $(BIN)
	$(Q)rm -rf $(ASAN_LOGS) && mkdir -p $(ASAN_LOGS)
	$(Q)MJPEG_TEST_SERVERS=nginx RESPONDER=$(abspath $(ASAN_DIR)/mjpeg-fcgi) \
	ASAN_OPTIONS=detect_leaks=1:log_path=$(ASAN_LOGS)/asan \
	UBSAN_OPTIONS=print_stacktrace=1:log_path=$(ASAN_LOGS)/ubsan \
		$(PYTEST) $(ASAN_TESTS)
	$(Q)if ls $(ASAN_LOGS)/* >/dev/null 2>&1; then \
		echo "sanitizer reports:"; cat $(ASAN_LOGS)/*; exit 1; fi

install: $(BIN)
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/mjpeg-fcgi/html
	install -m 0755 $(BIN) $(DESTDIR)$(PREFIX)/bin/mjpeg-fcgi
	install -d $(DESTDIR)$(PREFIX)/share/mjpeg-fcgi/html/vue
	install -m 0644 html/*.* $(DESTDIR)$(PREFIX)/share/mjpeg-fcgi/html/
	install -m 0644 html/vue/*.js html/vue/*.html html/vue/package*.json \
		$(DESTDIR)$(PREFIX)/share/mjpeg-fcgi/html/vue/

# Also what builds before build/ left in the source tree.
clean:
	rm -rf $(BIN) build
	rm -f fcgi/*.o fcgi/*.d tests/unit/*.o tests/unit/*.d $(UNIT_TESTS:%=tests/unit/test_%)

# libFuzzer harnesses: make fuzz, make fuzz-regress
include tests/fuzz/fuzz.mk

# The benchmark: make bench (BENCH_ARGS=--quick for a smoke run)
include tests/bench/bench.mk
