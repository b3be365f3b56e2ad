#!/usr/bin/env bash
# Times what a user waits for on the real Void base system of ../shared/fixtures/void-2021, through
# the targets themselves: `mage rootfs` (its configure boot and the whole build, download cache warm)
# and `mage test` (boot to power-off, and its "ready" time), in a checkout of your choice, so an
# older commit can be measured beside this one on the same machine.
#   scripts/bench-void.sh <kernel dist folder> [runs, default 3] [checkout, default this one]
# The kernel folder holds what `mage kernel` leaves in dist/ (linux, linux.json, ...).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
kernel=$(cd "$1" && pwd)
runs=${2:-3}
checkout=$(cd "${3:-$here}" && pwd)
fixture=$(cd "$here/../shared/fixtures/void-2021/repo" && pwd)
work=$(mktemp -d /tmp/suml-bench-void.XXXXXX)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/recipes" "$work/dist"
cp "$kernel"/linux* "$kernel"/System.map "$work/dist/"
sed -e "s|@FIXTURE@|$fixture|" -e 's|@AUTHORIZED_KEYS@|[]|' "$here/build/pipeline/testdata/void-2021.toml" \
  > "$work/recipes/void-2021.toml"
export SUML_DIST="$work/dist" SUML_CACHE="$work/cache" SUML_RECIPES="$work/recipes" \
  SUML_ROOTFS_RECIPE=void-2021 SUML_ROOTFS_KERNEL="$work/dist/linux"
cd "$checkout"
echo "checkout $(git rev-parse --short HEAD), kernel $kernel"
go tool mage -l >/dev/null # compile the magefile once, outside the times
for _ in $(seq "$runs"); do
  rm -f "$work/dist/void-2021.json"
  out=$(go tool mage rootfs -recipe=void-2021 2>&1) || { echo "$out"; exit 1; }
  echo "rootfs: $(grep -o 'configure boot done in [^ ]*' <<<"$out" | tail -1), $(grep -o 'built: .* in [^ ]*' <<<"$out" | sed 's/.* in /whole build /')"
done
for _ in $(seq "$runs"); do
  start=$(date +%s.%N)
  out=$(go tool mage test 2>&1) || { echo "$out"; exit 1; }
  end=$(date +%s.%N)
  echo "test: $(grep -o 'ready in [^ ]*' <<<"$out" | tail -1), wall $(echo "$end - $start" | bc) s"
done
