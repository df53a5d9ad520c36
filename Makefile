# tollgate — the two commands: `make run` and `make test`.
# Both install the Debian packages they need (as root) and build with CMake.

BUILD     ?= build
BUILD_SAN ?= build-san
BUILD_FUZZ?= build-fuzz
JOBS      ?= $(shell nproc)
CTEST_JOBS?= $(shell nproc)

# Debian 12 packages: building, running, testing.
PKGS_BUILD = build-essential cmake pkg-config libevent-dev libhiredis-dev libjansson-dev \
             libjwt-dev libpq-dev libssl-dev libcmocka-dev
PKGS_RUN   = postgresql redis-server tzdata ca-certificates openssl curl
PKGS_TEST  = jq procps iproute2 python3 nginx-light wrk chromium faketime strace
PKGS_BENCH = nginx-light wrk
PKGS_FUZZ  = clang libclang-rt-14-dev

.PHONY: all build run test test-san deps deps-test deps-bench fuzz bench format format-check \
        env-example clean install-node install-npm

all: build

# Installs what is missing (dpkg tells what is there); never upgrades what is installed.
define install_missing
	@missing=""; for p in $(1); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" != 0 ]; then echo "missing Debian packages:$$missing (run as root, or: apt-get install$$missing)"; exit 1; fi; \
	  echo "installing:$$missing"; \
	  export DEBIAN_FRONTEND=noninteractive; \
	  apt-get update -qq && apt-get install -y -qq --no-install-recommends $$missing >/dev/null || exit 1; \
	fi
endef

deps:
	$(call install_missing,$(PKGS_BUILD) $(PKGS_RUN))

# Node.js and npm only when the commands are missing: a machine may have them from elsewhere
# (e.g. NodeSource's nodejs bundles npm, and Debian's npm package would conflict with it).
deps-test: deps
	$(call install_missing,$(PKGS_TEST))
	@command -v node >/dev/null 2>&1 || { $(MAKE) --no-print-directory install-node; }
	@command -v npm >/dev/null 2>&1 || { $(MAKE) --no-print-directory install-npm; }

install-node:
	$(call install_missing,nodejs)

install-npm:
	$(call install_missing,npm)

deps-bench: deps
	$(call install_missing,$(PKGS_BENCH))

build: deps
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	@cmake --build $(BUILD) -j$(JOBS)

# The whole suite through ctest: unit tests, fuzz-corpus replays, integration tests against
# real PostgreSQL and Redis (started by the suite on free loopback ports) and the fake upstream.
test: deps-test build
	@tests/node/install.sh
	@cd $(BUILD) && ctest --output-on-failure -j$(CTEST_JOBS) --timeout 900

# The same suite under AddressSanitizer + UndefinedBehaviorSanitizer.
test-san: deps-test
	@cmake -S . -B $(BUILD_SAN) -DCMAKE_BUILD_TYPE=Debug -DSANITIZE=ON >/dev/null
	@cmake --build $(BUILD_SAN) -j$(JOBS)
	@tests/node/install.sh
	@cd $(BUILD_SAN) && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  ctest --output-on-failure -j$(CTEST_JOBS) --timeout 1800

# Starts PostgreSQL, Redis (data under .run/), the demo upstream when UPSTREAM_URL is unset,
# and tollgate in the foreground. Ctrl-C stops everything.
run: build
	@scripts/run.sh $(BUILD)

# libFuzzer targets (clang): FUZZ_SECONDS each.
FUZZ_SECONDS ?= 60
fuzz:
	$(call install_missing,$(PKGS_BUILD) $(PKGS_FUZZ))
	@cmake -S . -B $(BUILD_FUZZ) -DCMAKE_C_COMPILER=clang -DFUZZ=ON -DCMAKE_BUILD_TYPE=Debug >/dev/null
	@cmake --build $(BUILD_FUZZ) -j$(JOBS)
	@for f in $(BUILD_FUZZ)/tests/fuzz/fuzz_*; do \
	  name=$$(basename $$f | sed 's/^fuzz_//'); \
	  mkdir -p $(BUILD_FUZZ)/corpus/$$name; \
	  echo "== $$name ($(FUZZ_SECONDS) s)"; \
	  $$f -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 $(BUILD_FUZZ)/corpus/$$name \
	      tests/fuzz/corpus/$$name || exit 1; \
	done

# Benchmarks (nginx + wrk + the fake upstream); figures go to bench/results/.
bench: deps-bench build
	@bench/run.sh $(BUILD)

format:
	@clang-format -i $$(git ls-files '*.c' '*.h')

format-check:
	@clang-format --dry-run --Werror $$(git ls-files '*.c' '*.h')

env-example: build
	@$(BUILD)/proxy/tollgate --print-env-example > .env.example

clean:
	rm -rf $(BUILD) $(BUILD_SAN) $(BUILD_FUZZ)
