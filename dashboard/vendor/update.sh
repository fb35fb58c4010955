#!/usr/bin/env bash
# Fetches the charting library the dashboard bundles, from the npm registry with `npm pack`, and records
# its name, version and sha256 in VERSION. The fetched file is committed: builds and CI never need the
# network for it. Change `version` below and run this script to update.
set -euo pipefail
pkg=chart.js
version=4.6.1
file=chart.umd.min.js

here=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && npm pack --silent "$pkg@$version" >/dev/null)
tar -xzf "$tmp/$pkg-$version.tgz" -C "$tmp"
cp "$tmp/package/dist/$file" "$here/$file"
cp "$tmp/package/LICENSE.md" "$here/LICENSE.chart.js.md"
sha=$(sha256sum "$here/$file" | cut -d' ' -f1)
tgz_sha=$(sha256sum "$tmp/$pkg-$version.tgz" | cut -d' ' -f1)
cat > "$here/VERSION" <<END
name    $pkg
version $version
file    $file
sha256  $sha
tarball sha256 $tgz_sha (npm pack $pkg@$version)
END
echo "vendored $pkg $version: $file sha256 $sha"
