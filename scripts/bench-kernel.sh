#!/usr/bin/env bash
# Times `mage kernel` against the same steps done by hand, on one machine, from a local tarball so
# that the network is not measured. Prints one line per measurement; docs/benchmarks.md records them.
#   scripts/bench-kernel.sh [tarball]     (default: Debian's /usr/src/linux-source-6.12.tar.xz)
set -euo pipefail
cd "$(dirname "$0")/.."
tarball=${1:-/usr/src/linux-source-6.12.tar.xz}
work=$(mktemp -d /tmp/suml-bench.XXXXXX)
trap 'rm -rf "$work"' EXIT
jobs=$(nproc)
go tool mage -l >/dev/null # compile the magefile outside the measurements

secs() { local s=$(date +%s.%N); "$@"; echo "$(date +%s.%N) - $s" | bc; }

by_hand() {
  mkdir -p "$work/hand"
  tar xJf "$tarball" -C "$work/hand"
  src=$(echo "$work"/hand/*/)
  make -s -C "$src" O="$work/hand/out" ARCH=um SUBARCH=x86_64 defconfig >/dev/null
  cat kconfig/*.config >>"$work/hand/out/.config"
  make -s -C "$src" O="$work/hand/out" ARCH=um SUBARCH=x86_64 olddefconfig >/dev/null
  make -s -C "$src" O="$work/hand/out" ARCH=um SUBARCH=x86_64 -j"$jobs" linux >/dev/null
  strip -o "$work/hand/linux" "$work/hand/out/linux"
}

pipeline() {
  SUML_KERNEL_TARBALL=$tarball SUML_CACHE="$work/cache" SUML_DIST="$work/dist" go tool mage kernel >"$work/pipeline.log" 2>&1
}

echo "unpack by hand (tar xJf): $(secs sh -c "mkdir -p $work/t && tar xJf $tarball -C $work/t") s"
rm -rf "$work/t"
echo "cold kernel by hand: $(secs by_hand) s"
rm -rf "$work/hand"
echo "cold mage kernel: $(secs pipeline) s"
echo "no-op mage kernel: $(secs pipeline) s ($(grep -o 'nothing to do.*' "$work/pipeline.log"), inside the pipeline)"
echo "mage start-up alone (go tool mage -l): $(secs sh -c 'go tool mage -l >/dev/null') s"
echo 'CONFIG_UML_RTC=y' >kconfig/99-bench.config
trap 'rm -rf "$work"; rm -f kconfig/99-bench.config' EXIT
echo "one fragment changed, mage kernel: $(secs pipeline) s"
rm -f kconfig/99-bench.config
