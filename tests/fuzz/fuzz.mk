# libFuzzer harnesses, included by the top-level Makefile:
#
#   make fuzz                     build, then fuzz each harness FUZZ_SECONDS (20)
#   make fuzz FUZZ_SECONDS=300    longer
#   make fuzz-regress             run each harness once over its corpus and
#                                 regressions (no fuzzing, seconds)
#
# Each harness links the fcgi/*.c modules it needs, compiled again by clang
# with libFuzzer, ASan and UBSan: the build variant fuzz (build/fuzz/, from
# the top-level Makefile's build_variant; the gcc objects are not used).
# The committed corpus tests/fuzz/corpus/NAME is copied to
# build/fuzz/work/NAME and fuzzed there, so the repository is never
# written; a crash lands in build/fuzz/crashes/NAME/.  A crash that was
# found and minimised is kept in tests/fuzz/regressions/NAME/ and replayed
# at every run.

# The goal of a bare `make` stays the including Makefile's.
FUZZ_SAVED_GOAL := $(.DEFAULT_GOAL)

FUZZ_CC ?= clang
FUZZ_SECONDS ?= 20
FUZZ_DIR := build/fuzz
FUZZ_SRC := tests/fuzz
FUZZ_TARGETS := query jpeg mjpeg config mjpeg_reader sign
FUZZ_BINS := $(FUZZ_TARGETS:%=$(FUZZ_DIR)/fuzz_%)
# UB is fatal (a report alone would not fail the run).
FUZZ_SANITIZE := -fsanitize=address,undefined -fno-sanitize-recover=undefined \
	-fno-omit-frame-pointer
FUZZ_CFLAGS := -g -O1 -std=c11 -Wall -Wextra -Wshadow -pthread $(FUZZ_SANITIZE)
# libFuzzer's limits on one run: seconds per input, memory in MB.
FUZZ_RUN_FLAGS := -timeout=10 -rss_limit_mb=2048 -print_final_stats=1

# The fcgi modules (without .c) and libraries each harness needs.  ingest.c
# reaches the frame bus and streams, and through them the producers:
# fuzz_jpeg links every module but main.c, as the unit tests do.
FUZZ_ALL_MODS := $(filter-out main,$(basename $(notdir $(wildcard fcgi/*.c))))
FUZZ_MODS_query := http sign config cmdline option parse encode log
FUZZ_LIBS_query := -linih -lturbojpeg -lcurl -lcrypto
FUZZ_MODS_jpeg := $(FUZZ_ALL_MODS)
FUZZ_LIBS_jpeg := -lfcgi -lturbojpeg -linih -lcurl -lcrypto -ljansson
FUZZ_MODS_mjpeg := mjpeg_splitter log
FUZZ_LIBS_mjpeg :=
FUZZ_MODS_mjpeg_reader := mjpeg_reader mjpeg_splitter log
FUZZ_LIBS_mjpeg_reader :=
FUZZ_MODS_config := config cmdline option parse encode log
FUZZ_LIBS_config := -linih -lturbojpeg -lcurl
FUZZ_MODS_sign := sign http config cmdline option parse encode log
FUZZ_LIBS_sign := -linih -lturbojpeg -lcurl -lcrypto

.PHONY: fuzz fuzz-build fuzz-regress $(FUZZ_TARGETS:%=fuzz-run-%)

fuzz-build: $(FUZZ_BINS)

# The variant fuzz: modules and harnesses instrumented for coverage,
# without libFuzzer's main; the harnesses linked with it.
fuzz_CC = $(FUZZ_CC)
fuzz_CFLAGS = $(FUZZ_CFLAGS)
fuzz_COMPILE := -fsanitize=fuzzer-no-link
fuzz_LINK := -fsanitize=fuzzer
$(eval $(call build_variant,fuzz))

define fuzz_harness
$(FUZZ_DIR)/fuzz_$(1): $(FUZZ_DIR)/tests/fuzz/fuzz_$(1).o $(FUZZ_MODS_$(1):%=$(FUZZ_DIR)/fcgi/%.o)
	$$(call link_variant,fuzz,$$(FUZZ_LIBS_$(1)) -pthread)
endef
$(foreach t,$(FUZZ_TARGETS),$(eval $(call fuzz_harness,$(t))))

# Every harness runs, even after one crashed; the target fails if any did.
# Per harness: a fresh copy of the corpus, the regressions replayed first
# (read-only, as a second corpus directory), the dictionary when there is
# one, the log in build/fuzz/NAME.log.
# Harnesses run FUZZ_JOBS at a time (one per core): each still gets
# FUZZ_SECONDS of a core of its own, so running them side by side costs no
# coverage, only wall time.  -k: every harness runs even after one fails.
FUZZ_JOBS ?= $(NPROC)

fuzz: $(FUZZ_BINS)
	$(Q)$(MAKE) --no-print-directory -k -j$(FUZZ_JOBS) --output-sync=target \
		$(FUZZ_TARGETS:%=fuzz-run-%) || { echo "fuzzing found crashes (see above)"; exit 1; }

$(FUZZ_TARGETS:%=fuzz-run-%): fuzz-run-%: $(FUZZ_DIR)/fuzz_%
	$(Q)t=$*; \
		work=$(FUZZ_DIR)/work/$$t; crashes=$(FUZZ_DIR)/crashes/$$t; log=$(FUZZ_DIR)/$$t.log; \
		rm -rf $$work $$crashes && mkdir -p $$work $$crashes && \
		cp $(FUZZ_SRC)/corpus/$$t/* $$work/ || exit 1; \
		extra=""; \
		if [ -d $(FUZZ_SRC)/regressions/$$t ]; then extra="$(FUZZ_SRC)/regressions/$$t"; fi; \
		if [ -f $(FUZZ_SRC)/$$t.dict ]; then extra="-dict=$(FUZZ_SRC)/$$t.dict $$extra"; fi; \
		echo "== fuzz_$$t: $(FUZZ_SECONDS) s, log $$log"; \
		if $(FUZZ_DIR)/fuzz_$$t -max_total_time=$(FUZZ_SECONDS) $(FUZZ_RUN_FLAGS) \
			-artifact_prefix=$$crashes/ $$work $$extra >$$log 2>&1; then \
			grep -E '^#[0-9]+[[:space:]]+DONE' $$log | sed 's/^/  /'; \
		else \
			grep -E -A25 '^==[0-9]+==ERROR|runtime error|deadly signal|ERROR: libFuzzer' \
				$$log | grep -v -E 'in fuzzer::|in __libc_start|in _start|in main ' | head -n 40; \
			for c in $$crashes/*; do [ -e "$$c" ] || continue; \
				echo "fuzz_$$t failed on $$c; reproduce with:"; \
				echo "  $(FUZZ_DIR)/fuzz_$$t $$c"; \
				known=""; for r in $(FUZZ_SRC)/regressions/$$t/*; do \
					[ -f "$$r" ] && cmp -s "$$c" "$$r" && known="$$r"; done; \
				if [ -n "$$known" ]; then \
					echo "a known regression, still unfixed: $$known"; \
				else \
					echo "minimise with:"; \
					echo "  $(FUZZ_DIR)/fuzz_$$t -minimize_crash=1 -runs=100000 $$c"; \
					echo "then keep it as a regression in $(FUZZ_SRC)/regressions/$$t/"; \
				fi; \
			done; \
			if ! ls $$crashes/* >/dev/null 2>&1; then \
				echo "fuzz_$$t failed without a crash file: see $$log"; fi; \
			echo "fuzzing found crashes in: fuzz_$$t"; exit 1; \
		fi

# Each harness once over its corpus and regressions: no new inputs, fast.
fuzz-regress: $(FUZZ_BINS)
	$(Q)failed=""; for t in $(FUZZ_TARGETS); do \
		dirs="$(FUZZ_SRC)/corpus/$$t"; \
		if [ -d $(FUZZ_SRC)/regressions/$$t ]; then dirs="$$dirs $(FUZZ_SRC)/regressions/$$t"; fi; \
		echo "== fuzz_$$t: $$dirs"; \
		for d in $$dirs; do for f in $$d/*; do [ -f "$$f" ] || continue; \
			$(FUZZ_DIR)/fuzz_$$t -runs=1 $$f >$(FUZZ_DIR)/$$t.regress.log 2>&1 \
				|| { echo "  FAILED on $$f"; tail -n 30 $(FUZZ_DIR)/$$t.regress.log; \
				     failed="$$failed $$f"; }; \
		done; done; \
	done; \
	if [ -n "$$failed" ]; then echo "fuzz inputs failing:$$failed"; exit 1; fi

.DEFAULT_GOAL := $(FUZZ_SAVED_GOAL)
