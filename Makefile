# Thin wrapper over CMake so the README's commands stay short.
#   make            build build/bgremover (release with debug info)
#   make test       set up what the tests need (scripts/setup --test), build, run every test via CTest
#   make test-asan  the same tests in an ASan+UBSan build (build-asan/)
#   make test-tsan  queue/worker/webhook tests and part of the API suite under TSan
#   make fuzz       every libFuzzer target for FUZZ_SECONDS each (build-fuzz/)
#   make serve      set up, build, install the model, create a demo key, serve :8080
JOBS ?= $(shell nproc)
BUILD ?= build

.PHONY: all build test test-asan test-tsan fuzz setup setup-test serve clean models docs

all: build

build:
	@test -f $(BUILD)/CMakeCache.txt || cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo
	cmake --build $(BUILD) -j $(JOBS)

setup:
	scripts/setup

setup-test:
	scripts/setup --test

models: build
	$(BUILD)/bgremover models install medium

test: setup-test
	@test -f $(BUILD)/CMakeCache.txt || cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DBGR_WERROR=ON
	cmake --build $(BUILD) -j $(JOBS)
	$(BUILD)/bgremover models install medium
	cd $(BUILD) && ctest --output-on-failure --timeout 1800

# Sanitizer runs write their reports to files (log_path), so reports from
# every process count, servers under the API suite included: any file there
# fails the target. tests/lsan.supp and tests/tsan.supp say why each
# suppression is there (third-party start-up allocations only).
ASAN_BUILD ?= build-asan
TSAN_BUILD ?= build-tsan
FUZZ_BUILD ?= build-fuzz
FUZZ_SECONDS ?= 600
# Per-test time limit (tests/common/runner.h, tests/api/run.py) under the
# sanitizers, which run 2 to 10 times slower than the plain build's 300 s assume.
SAN_TEST_TIMEOUT ?= 900
SAN_CHECK = sh -c 'if ls "$$1"/* >/dev/null 2>&1; then echo "sanitizer reports:"; \
	  head -c 20000 "$$1"/*; exit 1; fi; echo "sanitizers: no reports"' -

# ASan+UBSan: every unit, fuzz-replay and API test (RelWithDebInfo: -O0 would
# make the API suite's model runs far slower without finding more). On
# PostgreSQL (the suite's second run, api_pg) only the tests of what differs
# there (SAN_PG_TESTS): the whole suite twice does not fit CI's time.
SAN_PG_TESTS = test_scaleout T08Batch T06AccountUsage test_idempotency test_usage_exact test_admin
test-asan: setup-test
	@test -f $(ASAN_BUILD)/CMakeCache.txt || cmake -S . -B $(ASAN_BUILD) \
	  -DCMAKE_BUILD_TYPE=RelWithDebInfo -DBGR_SANITIZE=address,undefined -DBGR_WERROR=ON
	cmake --build $(ASAN_BUILD) -j $(JOBS)
	$(ASAN_BUILD)/bgremover models install medium
	rm -rf $(ASAN_BUILD)/san-logs && mkdir -p $(ASAN_BUILD)/san-logs
	cd $(ASAN_BUILD) && \
	  BGR_TEST_TIMEOUT=$(SAN_TEST_TIMEOUT) \
	  ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:log_path=$(CURDIR)/$(ASAN_BUILD)/san-logs/asan \
	  LSAN_OPTIONS=suppressions=$(CURDIR)/tests/lsan.supp:print_suppressions=0 \
	  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1:log_path=$(CURDIR)/$(ASAN_BUILD)/san-logs/ubsan \
	  ctest --output-on-failure --timeout 3600 -E '_pg$$' && \
	  python3 $(CURDIR)/tests/api/run.py --store pg --bin $(CURDIR)/$(ASAN_BUILD)/bgremover \
	    $(SAN_PG_TESTS); rc=$$?; \
	  $(SAN_CHECK) $(CURDIR)/$(ASAN_BUILD)/san-logs && exit $$rc

# TSan: the queue, worker, store and webhook code (unit tests of jobs,
# store, net) and the API tests that drive them through a TSan server
# (concurrent requests, batches with webhooks and retries, kill -9
# recovery, the full queue), then the scale-out suite on PostgreSQL (API
# nodes and workers, the shared queue's listener and renewer threads).
TSAN_API_TESTS = T03Remove.test_concurrent T08Batch T09Webhooks T10Operations.test_service_busy \
  test_kill9_mid_batch test_down_500_slow_receivers test_budget test_s3.T02Results \
  test_hostile_pools
test-tsan: setup-test
	@test -f $(TSAN_BUILD)/CMakeCache.txt || cmake -S . -B $(TSAN_BUILD) \
	  -DCMAKE_BUILD_TYPE=RelWithDebInfo -DBGR_SANITIZE=thread -DBGR_WERROR=ON
	cmake --build $(TSAN_BUILD) -j $(JOBS) --target bgremover test_jobs test_store test_net test_http test_results
	$(TSAN_BUILD)/bgremover models install medium
	rm -rf $(TSAN_BUILD)/san-logs && mkdir -p $(TSAN_BUILD)/san-logs
	cd $(TSAN_BUILD) && \
	  export BGR_TEST_TIMEOUT=$(SAN_TEST_TIMEOUT) && \
	  export TSAN_OPTIONS=suppressions=$(CURDIR)/tests/tsan.supp:second_deadlock_stack=1:log_path=$(CURDIR)/$(TSAN_BUILD)/san-logs/tsan && \
	  ctest --output-on-failure --timeout 1800 -R '^(jobs|store|net|http|results)$$' && \
	  python3 $(CURDIR)/tests/api/run.py --bin $(CURDIR)/$(TSAN_BUILD)/bgremover $(TSAN_API_TESTS) && \
	  python3 $(CURDIR)/tests/api/run.py --store pg --bin $(CURDIR)/$(TSAN_BUILD)/bgremover \
	    test_scaleout T08Batch; \
	  rc=$$?; $(SAN_CHECK) $(CURDIR)/$(TSAN_BUILD)/san-logs && exit $$rc

# libFuzzer (clang, ASan+UBSan): builds every target and runs each for
# FUZZ_SECONDS, one at a time, under nice. Crashes: $(FUZZ_BUILD)/fuzz-artifacts/.
fuzz: setup-test
	@test -f $(FUZZ_BUILD)/CMakeCache.txt || CC=clang CXX=clang++ cmake -S . -B $(FUZZ_BUILD) \
	  -DCMAKE_BUILD_TYPE=RelWithDebInfo -DBGR_FUZZ=ON -DBGR_SANITIZE=address,undefined \
	  -DCMAKE_C_FLAGS=-fsanitize=fuzzer-no-link -DCMAKE_CXX_FLAGS=-fsanitize=fuzzer-no-link
	cmake --build $(FUZZ_BUILD) -j $(JOBS) --target fuzz_http fuzz_api fuzz_params fuzz_image \
	  fuzz_onnx fuzz_config fuzz_removebg
	tests/fuzz/run-fuzz $(FUZZ_BUILD) $(FUZZ_SECONDS)

serve: setup build
	scripts/serve-demo

clean:
	rm -rf build build-asan build-tsan build-fuzz

docs: build
	$(BUILD)/tools/gen_errors_md > docs/ERRORS.md
