#!/usr/bin/env bash
# Sets up, builds and runs a local hio cluster (repository, master, 2 workers) with streaming sources:
# two `hio stream` sources sending files and a Python source sending NumPy realizations, while the
# cluster's status is printed. Stops the cluster at the end (keep it running with --keep).
# Usage: scripts/demo.sh [--keep] [--rounds N]
set -euo pipefail
cd "$(dirname "$0")/.."
keep=0
rounds=3
while [ $# -gt 0 ]; do
  case "$1" in
    --keep) keep=1 ;;
    --rounds) rounds="$2"; shift ;;
    *) echo "usage: scripts/demo.sh [--keep] [--rounds N]" >&2; exit 2 ;;
  esac
  shift
done

bash scripts/setup.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
ninja -C build -j "$(nproc)"

bin=$PWD/build/bin
demo=${HIO_DEMO_DIR:-$PWD/hio-data/demo}
port=${HIO_DEMO_PORT:-8080}
rm -rf "$demo"
mkdir -p "$demo/files"

"$bin/hio" --data-dir "$demo" up --workers 2 --channels 2 --processor checksum --port "$port" \
  >"$demo/up.log" 2>&1 &
up_pid=$!
stop() {
  if kill -0 "$up_pid" 2>/dev/null; then
    kill -TERM "$up_pid"
    wait "$up_pid" || true
  fi
}
trap stop EXIT
for _ in $(seq 1 300); do
  grep -q "hio is up" "$demo/up.log" 2>/dev/null && break
  kill -0 "$up_pid" 2>/dev/null || { cat "$demo/up.log"; exit 1; }
  sleep 0.1
done
cat "$demo/up.log"
master=http://127.0.0.1:$port

echo "== generating realizations (files of 1 to 6 MB)"
/usr/bin/python3 - "$demo/files" <<'PY'
import os, random, sys
rng = random.Random(7)
for i in range(60):
    with open(os.path.join(sys.argv[1], f"realization-{i:03d}.bin"), "wb") as f:
        f.write(rng.randbytes(rng.randint(1 << 20, 6 << 20)))
PY

for r in $(seq 1 "$rounds"); do
  echo "== round $r: two file sources and one Python source stream at once"
  "$bin/hio" stream --master "$master" --source "files-a" "$demo"/files/realization-0[0-2]*.bin &
  a=$!
  "$bin/hio" stream --master "$master" --source "files-b" "$demo"/files/realization-0[3-5]*.bin &
  b=$!
  HIO_CONNECTOR_LIB=$PWD/build/lib/libhio_connector.so PYTHONPATH=$PWD/connector/python /usr/bin/python3 - "$master" <<'PY' &
import sys, numpy as np, hio
rng = np.random.default_rng(1)
with hio.Client(sys.argv[1], source="python-sim") as c:
    for i in range(20):
        realization = rng.poisson(5.0, size=(2, 200, 64)).astype(np.float32)  # (species, timepoints, voxels)
        c.send(realization, metadata={"params": {"k": float(i)}})
print("python source: 20 realizations sent")
PY
  p=$!
  sleep 1
  "$bin/hio" --data-dir "$demo" status
  wait $a $b $p
done

echo "== after $rounds rounds"
"$bin/hio" --data-dir "$demo" status
echo "== the first stored tuples (hio features --format jsonl)"
"$bin/hio" --data-dir "$demo" features --limit 3

if [ "$keep" -eq 1 ]; then
  echo "The cluster keeps running at $master (Ctrl-C to stop)."
  wait "$up_pid"
fi
