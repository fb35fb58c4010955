#!/usr/bin/env bash
# Makes SciPy importable by /usr/bin/python3 for the discovery unit tests, without installing Debian's
# python3-scipy (it depends, through python3-pythran, on libboost-dev 1.74, which conflicts with the
# Boost 1.81 hio builds with). Installs NumPy and the BLAS/LAPACK/Fortran runtimes SciPy's extensions
# load, then unpacks python3-scipy and python3-decorator into DEST (default: build/scipy-ref).
# Idempotent: nothing is installed or fetched when SciPy already imports from DEST.
# Prints the directory to put on PYTHONPATH (export it as HIO_SCIPY_PATH for the tests) on stdout;
# everything else goes to stderr.
# Usage: scripts/scipy-reference.sh [DEST]
set -euo pipefail
cd "$(dirname "$0")/.."

dest="${1:-build/scipy-ref}"
mkdir -p "$dest"
dest="$(cd "$dest" && pwd)"
site="$dest/usr/lib/python3/dist-packages"
python=/usr/bin/python3

imports() { PYTHONPATH="$site" "$python" -c 'import scipy.cluster.hierarchy' 2>/dev/null; }

if [ -x "$python" ] && imports; then
  echo "scipy-reference: SciPy already unpacked in $dest" >&2
  echo "$site"
  exit 0
fi

sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
export DEBIAN_FRONTEND=noninteractive

runtime=(python3 python3-numpy libblas3 liblapack3 libgfortran5)
missing=()
for p in "${runtime[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
updated=0
if [ ${#missing[@]} -gt 0 ]; then
  echo "scipy-reference: installing ${missing[*]}" >&2
  $sudo apt-get update -qq >&2
  updated=1
  $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
fi

# apt-get download writes into the current directory; as root it would warn that the _apt user cannot
# write there, so the download runs unsandboxed on purpose.
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
fetch() { (cd "$work" && apt-get download -o APT::Sandbox::User=root python3-scipy python3-decorator) >&2; }
if ! fetch; then
  [ "$updated" -eq 1 ] || $sudo apt-get update -qq >&2
  fetch
fi
for deb in "$work"/*.deb; do
  echo "scipy-reference: unpacking $(basename "$deb")" >&2
  dpkg-deb -x "$deb" "$dest"
done

if ! imports; then
  echo "scipy-reference: SciPy unpacked in $dest but 'import scipy.cluster.hierarchy' fails:" >&2
  PYTHONPATH="$site" "$python" -c 'import scipy.cluster.hierarchy' >&2 || true
  exit 1
fi
echo "scipy-reference: SciPy $(PYTHONPATH="$site" "$python" -c 'import scipy; print(scipy.__version__)') ready in $dest" >&2
echo "$site"
