#!/usr/bin/env bash
# Builds the libFuzzer targets of tests/fuzz with clang (folder build-fuzz) and runs each for SECONDS
# (default 30), $(nproc) at a time, from a copy of its checked-in corpus (tests/fuzz/corpus/<target>/).
# Fails when a target crashes, leaks, hangs or breaks an invariant, and names the input that does it.
# Usage: scripts/fuzz.sh [SECONDS]    (needs clang-19 and libclang-rt-19-dev: scripts/setup.sh)
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${1:-30}
case "$seconds" in
  ''|*[!0-9]*) echo "usage: scripts/fuzz.sh [SECONDS]" >&2; exit 2 ;;
esac
targets=(frame_header record_batch npy lease_body metadata)
start=$(date +%s)

echo "== fuzz: build (clang, libFuzzer + AddressSanitizer + UndefinedBehaviorSanitizer)"
CC=clang-19 CXX=clang++-19 cmake -S . -B build-fuzz -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DHIO_FUZZ=ON \
  -DHIO_MODULES= -DHIO_BUILD_TESTS=OFF -DHIO_WITH_CUDA=OFF -DHIO_WITH_UCX=OFF -DHIO_WERROR=ON >/dev/null
ninja -C build-fuzz hio-fuzzers

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
artifacts="$PWD/build-fuzz/artifacts"
rm -rf "$artifacts"

# One target: its own corpus copy (libFuzzer adds what it finds there), its log, its exit status.
run_one() {
  local t=$1
  mkdir -p "$work/$t" "$artifacts/$t"
  cp -r "tests/fuzz/corpus/$t" "$work/$t/corpus"
  set +e
  UBSAN_OPTIONS=print_stacktrace=1 "build-fuzz/bin/${t}_fuzz" -max_total_time="$seconds" -timeout=10 \
    -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$artifacts/$t/" "$work/$t/corpus" \
    >"$work/$t/log" 2>&1
  echo $? >"$work/$t/rc"
}

echo "== fuzz: ${#targets[@]} targets, ${seconds} s each, $(nproc) at a time"
for t in "${targets[@]}"; do
  while [ "$(jobs -rp | wc -l)" -ge "$(nproc)" ]; do wait -n || true; done
  run_one "$t" &
done
wait

failed=0
for t in "${targets[@]}"; do
  rc=$(cat "$work/$t/rc")
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/$t/log" | tail -1)
  if [ "$rc" -eq 0 ]; then
    echo "fuzz: $t: ${runs:-?} executions, no crash"
    continue
  fi
  failed=1
  echo "fuzz: $t FAILED (exit $rc); its log ends:"
  tail -n 40 "$work/$t/log" | sed 's/^/    /'
  for f in "$artifacts/$t"/*; do
    [ -e "$f" ] || continue
    echo "fuzz: $t: reproducer $f"
    echo "      rerun: build-fuzz/bin/${t}_fuzz $f"
  done
done
echo "fuzz: $(( $(date +%s) - start )) s in all"
if [ "$failed" -ne 0 ]; then
  echo "fuzz: fix the crash, add a unit test that reproduces it, and put the reproducer in tests/fuzz/corpus/<target>/" >&2
  exit 1
fi
