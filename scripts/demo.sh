#!/usr/bin/env bash
# Sets up, builds and runs a local hio cluster (repository, master, 2 workers extracting features,
# discovery every 5 s) and streams a parameter sweep into it: the C++ Hes1 simulation (hio-sim-source)
# and a smaller Python one (NumPy + the Python connector) at the same time. Prints the status while they
# run, then the clusters of behaviour that discovery found. The dashboard is at http://127.0.0.1:8080/.
# Stops the cluster at the end (keep it running with --keep).
# Usage: scripts/demo.sh [--keep] [--points N]
set -euo pipefail
cd "$(dirname "$0")/.."
keep=0
points=24
while [ $# -gt 0 ]; do
  case "$1" in
    --keep) keep=1 ;;
    --points) points="$2"; shift ;;
    *) echo "usage: scripts/demo.sh [--keep] [--points N]" >&2; exit 2 ;;
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
mkdir -p "$demo"

"$bin/hio" --data-dir "$demo" up --workers 2 --channels 2 --processor features --discovery-interval 5 --port "$port" \
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
export HIO_DATA_DIR=$demo  # where the sources below find the cluster's source token

echo "== dashboard: $master/"
echo "== streaming a sweep: $points parameter points x 3 realizations (C++), 6 x 2 (Python)"
"$bin/hio-sim-source" --master "$master" --source hes1-cpp --points "$points" --realizations 3 \
  --timepoints 1500 --voxels 200 --rate 6 --truth "$demo/truth.csv" &
a=$!
HIO_CONNECTOR_LIB=$PWD/build/lib/libhio_connector.so PYTHONPATH=$PWD/connector/python \
  /usr/bin/python3 experiments/sources/hes1_source.py --master "$master" --source hes1-python \
  --points 6 --realizations 2 &
b=$!
while kill -0 "$a" 2>/dev/null || kill -0 "$b" 2>/dev/null; do
  sleep 5
  "$bin/hio" --data-dir "$demo" status
done
wait "$a" "$b"

echo "== waiting for discovery to cluster everything"
sleep 12
"$bin/hio" --data-dir "$demo" knowledge
echo "== the true regime of each parameter point: $demo/truth.csv"
echo "== the first stored tuples (hio features --format jsonl)"
"$bin/hio" --data-dir "$demo" features --limit 2 | cut -c1-300

if [ "$keep" -eq 1 ]; then
  echo "The cluster keeps running at $master (Ctrl-C to stop)."
  wait "$up_pid"
fi
