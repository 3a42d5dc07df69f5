# Thin wrapper over CMake so the README's commands stay short.
#   make            build build/bgremover (release with debug info)
#   make test       set up what the tests need, build, run every test via CTest
#   make test-asan  the same tests in an ASan+UBSan build (build-asan/)
#   make serve      set up, build, install the model, create a demo key, serve :8080
JOBS ?= $(shell nproc)
BUILD ?= build

.PHONY: all build test test-asan setup serve clean models docs

all: build

build:
	@test -f $(BUILD)/CMakeCache.txt || cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo
	cmake --build $(BUILD) -j $(JOBS)

setup:
	scripts/setup

models: build
	$(BUILD)/bgremover models install medium

test: setup
	@test -f $(BUILD)/CMakeCache.txt || cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DBGR_WERROR=ON
	cmake --build $(BUILD) -j $(JOBS)
	$(BUILD)/bgremover models install medium
	cd $(BUILD) && ctest --output-on-failure --timeout 1800

test-asan: setup
	@test -f build-asan/CMakeCache.txt || cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DBGR_SANITIZE=address,undefined
	cmake --build build-asan -j $(JOBS)
	build/bgremover models install medium 2>/dev/null || (cmake --build $(BUILD) -j $(JOBS) && $(BUILD)/bgremover models install medium)
	cd build-asan && ASAN_OPTIONS=detect_leaks=1 LSAN_OPTIONS=suppressions=$(CURDIR)/tests/lsan.supp \
	  BGR_TEST_SLOW=0 ctest --output-on-failure --timeout 3600 -LE slow

serve: setup build
	scripts/serve-demo

clean:
	rm -rf build build-asan

docs: build
	$(BUILD)/tools/gen_errors_md > docs/ERRORS.md
