#!/usr/bin/env bash
# Installs the Debian 12 packages hio needs to build, test and run. Idempotent: packages already
# present are not touched, and nothing is fetched when everything is installed.
set -euo pipefail

packages=(
  build-essential cmake ninja-build ccache pkg-config git curl
  libboost1.81-dev
  libzmq3-dev cppzmq-dev
  libzstd-dev libcereal-dev libhwloc-dev libspdlog-dev libfmt-dev
  doctest-dev nlohmann-json3-dev libcli11-dev
  libsqlite3-dev libxxhash-dev xxhash
  postgresql libpq-dev
  libfftw3-dev
  libhdf5-dev python3-h5py
  libucx-dev
  iperf3 wrk python3 python3-numpy python3-zmq python3-pytest
  ucx-utils python3-matplotlib python3-pandas
  chromium
  procps iproute2
  slurm-wlm munge libcurl4-openssl-dev openssl python3-yaml
  clang-19 libclang-rt-19-dev
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "setup: all ${#packages[@]} packages present"
  exit 0
fi

echo "setup: installing ${missing[*]}"
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "setup: done"
