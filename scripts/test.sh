#!/usr/bin/env bash
# Sets up, builds and runs every test: the unit tests, the integration tests (real master, workers and
# repository on loopback), the parsers under libFuzzer (scripts/fuzz.sh), then the unit tests again in a
# clang build under AddressSanitizer + UndefinedBehaviorSanitizer.
# Usage: scripts/test.sh [--no-sanitize]
set -euo pipefail
cd "$(dirname "$0")/.."

sanitize=1
for a in "$@"; do
  case "$a" in
    --no-sanitize) sanitize=0 ;;
    *) echo "usage: scripts/test.sh [--no-sanitize]" >&2; exit 2 ;;
  esac
done

bash scripts/setup.sh
# SciPy is the reference for the clustering tests; Debian's package conflicts with Boost 1.81, so it is
# unpacked privately (scripts/scipy-reference.sh).
HIO_SCIPY_PATH=$(bash scripts/scipy-reference.sh build/scipy-ref)
export HIO_SCIPY_PATH
jobs=$(nproc)

echo "== build (RelWithDebInfo)"
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DHIO_WERROR=ON >/dev/null
ninja -C build -j "$jobs"

echo "== tests"
ctest --test-dir build --output-on-failure -j 1 --timeout 600

# A user's default Release build (-O3) must build; here with warnings as errors, since g++ 12 warns at
# -O3 where it does not at -O2 (features/src/names.cpp once stopped a Release build). The features and
# discovery libraries hold the code built at -O3 on purpose. The same tree compiles every public header
# alone (hio-header-check, scripts/cmake/hio_headers.cmake).
echo "== Release build of the -O3 libraries; every public header alone"
cmake -S . -B build-release -G Ninja -DCMAKE_BUILD_TYPE=Release -DHIO_WERROR=ON -DHIO_WITH_CUDA=OFF >/dev/null
ninja -C build-release -j "$jobs" hio_features hio_discovery hio-header-check

# The parsers of bytes from the network and from stored data under libFuzzer, 30 s each from the
# checked-in corpus (tests/fuzz; docs/security.md, "Fuzzing").
echo "== fuzz the parsers"
bash scripts/fuzz.sh 30

if [ "$sanitize" -eq 1 ]; then
  # With clang 19: the clang build of the project, and about twice as fast as g++ 12 at -O0 -fsanitize.
  echo "== unit tests under AddressSanitizer + UndefinedBehaviorSanitizer (clang 19)"
  CC=clang-19 CXX=clang++-19 cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=Debug -DHIO_SANITIZE=ON -DHIO_WITH_CUDA=OFF -DHIO_WERROR=ON >/dev/null
  ninja -C build-asan -j "$jobs" $(ninja -C build-asan -t targets all | grep -o '^hio-[a-z]*-tests' | sort -u)
  # The Python connector test loads the library into /usr/bin/python3, which ASan cannot instrument;
  # it runs in the normal build above.
  ASAN_OPTIONS=detect_leaks=1 LSAN_OPTIONS=suppressions="$PWD/scripts/lsan.supp" UBSAN_OPTIONS=print_stacktrace=1 \
    ctest --test-dir build-asan --output-on-failure -L unit -E "Python package" -j 1 --timeout 600

  # The threads of the data path (receivers, channels, store threads) under ThreadSanitizer.
  echo "== common and worker unit tests under ThreadSanitizer (clang 19)"
  CC=clang-19 CXX=clang++-19 cmake -S . -B build-tsan -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DHIO_TSAN=ON -DHIO_WITH_CUDA=OFF -DHIO_WERROR=ON >/dev/null
  ninja -C build-tsan -j "$jobs" hio-common-tests hio-worker-tests
  TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1" \
    ctest --test-dir build-tsan --output-on-failure -L unit -R "^(common|worker):" -j 1 --timeout 600
fi
