# mjpeg-fcgi: build, run, test, install.
#
#   make            build fcgi/mjpeg-fcgi
#   make run        install what is missing, build, serve on http://127.0.0.1:$(PORT)/
#   make start      the same stack in the background; make stop ends it
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
LDLIBS += -lfcgi -lturbojpeg -linih -pthread
PREFIX ?= /usr/local
PORT ?= 8080
CONFIG ?=
WORKERS ?=
# Which web server the stack puts in front: nginx (default), lighttpd,
# apache (plain CGI, as on shared hosting), apache-fcgid, apache-proxy.
SERVER ?=
PYTHON := /usr/bin/python3
# The responder the stack runs: the sanitizer run points it elsewhere.
RESPONDER ?= $(abspath $(BIN))

ifeq ($(V),1)
Q :=
else
Q := @
endif

BIN := fcgi/mjpeg-fcgi
# AddressSanitizer + UndefinedBehaviorSanitizer build, beside the normal one.
ASAN_DIR := build/asan
ASAN_FLAGS := -fsanitize=address,undefined -fno-sanitize-recover=undefined \
	-fno-omit-frame-pointer
ASAN_LOGS := $(abspath $(ASAN_DIR))/logs
ASAN_TESTS := $(addprefix tests/integration/,test_nginx_stack.py test_sources.py \
	test_limits.py test_workers.py test_reload.py test_churn.py test_abort.py \
	test_ingest_reload.py)
# Every module but main.c: the tests link these same objects.
LIB_SRCS := $(filter-out fcgi/main.c,$(wildcard fcgi/*.c))
LIB_OBJS := $(LIB_SRCS:.c=.o)
UNIT_SRCS := $(wildcard tests/unit/test_*.c)
UNIT_BINS := $(UNIT_SRCS:.c=)
ASAN_OBJS := $(patsubst fcgi/%.c,$(ASAN_DIR)/fcgi/%.o,$(LIB_SRCS))
ASAN_UNIT_BINS := $(patsubst tests/unit/%,$(ASAN_DIR)/unit/%,$(UNIT_BINS))

# Debian packages, by what needs them.  Some are checked by the command
# they provide (COMMAND=PACKAGE), since any of several packages will do:
# nginx from any of Debian's nginx flavours, npm from Debian or NodeSource.
DEPS_BUILD := gcc make pkg-config libfcgi-dev libturbojpeg0-dev libinih-dev
DEPS_RUN := curl
DEPS_RUN_CMDS := nginx=nginx-light ps=procps
DEPS_TEST := libcmocka-dev cppcheck valgrind clang libclang-rt-14-dev python3 python3-pytest python3-pytest-xdist python3-pil python3-numpy ffmpeg \
	python3-opencv gstreamer1.0-tools gstreamer1.0-plugins-good chromium chromium-driver \
	python3-selenium lighttpd apache2 libapache2-mod-fcgid spawn-fcgi stress-ng
DEPS_TEST_CMDS := npm=npm

.PHONY: all deps deps-test run start stop test check test-under-load unit integration \
	integration-nginx clean install asan asan-unit asan-integration lint

all: $(BIN)

$(BIN): fcgi/main.o $(LIB_OBJS)
	@echo "  LD    $@"
	$(Q)$(CC) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS)

fcgi/%.o: fcgi/%.c
	@echo "  CC    $@"
	$(Q)$(CC) $(CPPFLAGS) $(ALL_CFLAGS) -c -o $@ $<

# testutil.o: helpers every unit test links (not itself a test: no test_ prefix).
tests/unit/testutil.o: tests/unit/testutil.c
	@echo "  CC    $@"
	$(Q)$(CC) $(CPPFLAGS) -Ifcgi $(ALL_CFLAGS) -c -o $@ $<

tests/unit/test_%: tests/unit/test_%.c tests/unit/testutil.o $(LIB_OBJS)
	@echo "  CC    $@"
	$(Q)$(CC) $(CPPFLAGS) -Ifcgi $(ALL_CFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS) -lcmocka

$(ASAN_DIR)/fcgi/%.o: fcgi/%.c
	@mkdir -p $(@D)
	@echo "  CC    $@"
	$(Q)$(CC) $(CPPFLAGS) $(ALL_CFLAGS) $(ASAN_FLAGS) -c -o $@ $<

$(ASAN_DIR)/mjpeg-fcgi: $(ASAN_DIR)/fcgi/main.o $(ASAN_OBJS)
	@echo "  LD    $@"
	$(Q)$(CC) $(ALL_CFLAGS) $(ASAN_FLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(ASAN_DIR)/unit/testutil.o: tests/unit/testutil.c
	@mkdir -p $(@D)
	@echo "  CC    $@"
	$(Q)$(CC) $(CPPFLAGS) -Ifcgi $(ALL_CFLAGS) $(ASAN_FLAGS) -c -o $@ $<

$(ASAN_DIR)/unit/test_%: tests/unit/test_%.c $(ASAN_DIR)/unit/testutil.o $(ASAN_OBJS)
	@mkdir -p $(@D)
	@echo "  CC    $@"
	$(Q)$(CC) $(CPPFLAGS) -Ifcgi $(ALL_CFLAGS) $(ASAN_FLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS) -lcmocka

# Installs the Debian packages that are missing: as root directly, else
# through sudo; otherwise says which packages to install.
define install_missing
	@installed=$$(dpkg-query -W -f='$${Status} $${Package}\n' $(1) 2>/dev/null \
		| sed -n 's/^install ok installed //p' | tr '\n' ' '); \
	missing=""; \
	for p in $(1); do \
		case " $$installed " in *" $$p "*) ;; *) missing="$$missing $$p" ;; esac; \
	done; \
	for pair in $(2); do \
		PATH="$$PATH:/usr/sbin:/sbin" command -v $${pair%%=*} >/dev/null 2>&1 \
			|| missing="$$missing $${pair#*=}"; \
	done; \
	if [ -n "$$missing" ]; then \
		if [ "$$(id -u)" = 0 ]; then sudo=""; \
		elif command -v sudo >/dev/null 2>&1; then sudo="sudo"; \
		else echo "mjpeg-fcgi: missing Debian packages:$$missing"; \
			echo "  install them as root: apt-get install$$missing"; exit 1; fi; \
		echo "installing:$$missing"; \
		$$sudo apt-get update -q && \
		$$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
			--no-install-recommends $$missing; \
	fi
endef

deps:
	$(call install_missing,$(DEPS_BUILD) $(DEPS_RUN),$(DEPS_RUN_CMDS))

deps-test: deps
	$(call install_missing,$(DEPS_TEST),$(DEPS_TEST_CMDS))

run: deps $(BIN)
	SERVER=$(SERVER) BIN=$(RESPONDER) WORKERS=$(WORKERS) conf/stack.sh run $(PORT) $(CONFIG)

start: deps $(BIN)
	SERVER=$(SERVER) BIN=$(RESPONDER) WORKERS=$(WORKERS) conf/stack.sh start $(PORT) $(CONFIG)

stop:
	conf/stack.sh stop $(PORT)

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

TEST_STAGES := build=all lint=lint unit=unit integration=integration asan=asan fuzz=fuzz
CHECK_STAGES := build=all lint=lint unit=unit integration=integration-nginx

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
TEST_JOBS ?= $(shell echo $$(( 2 * $$(nproc 2>/dev/null || echo 1) )))
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

clean:
	rm -rf $(BIN) fcgi/*.o fcgi/*.d $(UNIT_BINS) tests/unit/*.o tests/unit/*.d build

-include $(wildcard fcgi/*.d tests/unit/*.d $(ASAN_DIR)/fcgi/*.d $(ASAN_DIR)/unit/*.d)

# libFuzzer harnesses: make fuzz, make fuzz-regress
include tests/fuzz/fuzz.mk

# The benchmark: make bench (BENCH_ARGS=--quick for a smoke run)
include tests/bench/bench.mk
