#!/bin/bash
# Two builds of the CPU extractor on hio-features-bench's (2, 3000, 250) tuples: whether they give the
# same features (to the last bit: two processes of the new build, its AVX2 and its baseline build; old
# against new: how many differ and by how much), and their thread CPU time per realization in
# interleaved rounds (median of 20 calls per round), which is fairer than one long run on a machine
# shared with other work.
#
#   experiments/features/cpu_compare.sh NEW_BUILD_DIR [OLD_REV [ROUNDS [KINDS]]]
#
# NEW_BUILD_DIR: a build of this tree (its lib/libhio_features.a, e.g. -DHIO_MODULES="common;features").
# OLD_REV: the git revision whose features/ is compiled as the old build (default HEAD). KINDS: among
# counts, real, f8, i4, u2 (default "counts real f8").
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
new_lib=$(cd "$1" && pwd)/lib/libhio_features.a
rev=${2:-HEAD}
rounds=${3:-4}
kinds=${4:-counts real f8}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

fftw=$(pkg-config --libs fftw3)
git -C "$root" archive "$rev" features | tar -x -C "$work"
old_objects=()
for f in npy names extractor pinned_buffer gpu_stub; do
  g++ -O3 -std=c++20 -I"$work/features/include" -I"$work/features/src" -c "$work/features/src/$f.cpp" -o "$work/old_$f.o"
  old_objects+=("$work/old_$f.o")
done
g++ -O2 -std=c++20 -I"$work/features/include" "$here/cpu_time.cpp" "${old_objects[@]}" $fftw -lpthread -o "$work/old"
g++ -O2 -std=c++20 -DHIO_CPU_TIME_BASELINE -I"$root/features/include" "$here/cpu_time.cpp" "$new_lib" $fftw -lpthread \
  -o "$work/new"

echo "load: $(cut -d' ' -f1-3 /proc/loadavg)"
for kind in $kinds; do
  "$work/old" --kind "$kind" --runs 0 --dump "$work/old.txt" > /dev/null
  "$work/new" --kind "$kind" --runs 0 --dump "$work/new.txt" > /dev/null
  "$work/new" --kind "$kind" --runs 0 --dump "$work/again.txt" > /dev/null
  "$work/new" --kind "$kind" --runs 0 --dump "$work/base.txt" --baseline > /dev/null
  if cmp -s "$work/old.txt" "$work/new.txt"; then
    same="old = new to the last bit"
  else
    # Largest |old - new| / max(|old|, |new|) over the features that differ and are above 1e-9 in
    # magnitude, and the largest |old - new| of the others (the tests allow 1e-9 relative + 1e-12).
    same="old vs new: $(paste -d' ' "$work/old.txt" "$work/new.txt" | awk '
      function abs(x) { return x < 0 ? -x : x }
      $2 != $4 { n++; d = abs($2 - $4); m = abs($2) > abs($4) ? abs($2) : abs($4)
                 if (m > 1e-9) { if (d / m > rel) rel = d / m } else if (d > tiny) tiny = d }
      END { printf "%d of %d differ, largest relative difference %.2g, absolute below 1e-9 %.2g", n, NR, rel, tiny }')"
  fi
  cmp -s "$work/new.txt" "$work/again.txt" || same="$same; DIFFERENT between two processes of the new build"
  cmp -s "$work/new.txt" "$work/base.txt" || same="$same; DIFFERENT (AVX2 vs baseline build)"
  old_ms="" new_ms=""
  for _ in $(seq "$rounds"); do
    old_ms="$old_ms $("$work/old" --kind "$kind" --runs 20 | awk '{print $5}')"
    new_ms="$new_ms $("$work/new" --kind "$kind" --runs 20 | awk '{print $5}')"
  done
  echo "$kind: features $same; ms per realization, old:$old_ms; new:$new_ms"
done
echo "load: $(cut -d' ' -f1-3 /proc/loadavg)"
