#!/usr/bin/env bash
# Times `mage kernel` against the same steps done by hand, on one machine, from a local tarball so
# that the network is not measured. The cold builds run in pairs, by hand and by the pipeline, the
# order alternating from one pair to the next so that neither always runs on a warmer (or busier)
# machine. Prints one line per measurement and the pipeline's overhead per pair; docs/benchmarks.md
# records them. With "profiles" as the third argument it pairs cold `mage kernel` builds of the
# default profile and the lean one instead (kernel.profile), with the files each compiled.
#   scripts/bench-kernel.sh [tarball] [pairs] [hand|profiles]   (defaults: Debian's
#   linux-source-6.12, 2 pairs, hand)
set -euo pipefail
cd "$(dirname "$0")/.."
tarball=${1:-/usr/src/linux-source-6.12.tar.xz}
pairs=${2:-2}
mode=${3:-hand}
work=$(mktemp -d /tmp/suml-bench.XXXXXX)
trap 'rm -rf "$work"; rm -f kconfig/99-bench.config' EXIT
jobs=$(nproc)
go tool mage -l >/dev/null # compile the magefile outside the measurements

# secs CMD... prints CMD's wall time; a failing CMD fails the script (use as t=$(secs ...)).
secs() {
  local s
  s=$(date +%s.%N)
  "$@" || { echo "failed: $*" >&2; tail -20 "$work/pipeline.log" >&2 || true; return 1; }
  echo "$(date +%s.%N) - $s" | bc
}

by_hand() {
  rm -rf "$work/hand"
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

cold_pipeline() {
  rm -rf "$work/cache" "$work/dist"
  pipeline
}

# profile NAME: a cold mage kernel in that profile; compiled counts the files its make compiled.
profile() {
  rm -rf "$work/cache" "$work/dist"
  SUML_KERNEL_PROFILE=$1 pipeline
}
compiled() { cat "$work"/cache/build/*/simple-uml-build.log | grep -c '^  CC '; }

if [ "$mode" = profiles ]; then
  for i in $(seq 1 "$pairs"); do
    order="defconfig lean"
    [ $((i % 2)) -eq 1 ] || order="lean defconfig"
    for p in $order; do
      t=$(secs profile "$p")
      echo "pair $i: $p $t s, $(compiled) files compiled; $(grep -o 'built: .*' "$work/pipeline.log")"
    done
  done
  exit 0
fi

t=$(secs sh -c "mkdir -p $work/t && tar xJf $tarball -C $work/t"); echo "unpack by hand (tar xJf): $t s"
rm -rf "$work/t"
for i in $(seq 1 "$pairs"); do
  if [ $((i % 2)) -eq 1 ]; then
    hand=$(secs by_hand)
    mage=$(secs cold_pipeline)
  else
    mage=$(secs cold_pipeline)
    hand=$(secs by_hand)
  fi
  echo "pair $i ($([ $((i % 2)) -eq 1 ] && echo 'by hand first' || echo 'pipeline first')): by hand $hand s, mage kernel $mage s, overhead $(echo "scale=1; ($mage - $hand) * 100 / $hand" | bc)%"
  echo "  mage kernel's steps: $(grep -o 'built: .*' "$work/pipeline.log")"
done
rm -rf "$work/hand"
t=$(secs pipeline); echo "no-op mage kernel: $t s ($(grep -o 'nothing to do.*' "$work/pipeline.log"), inside the pipeline)"
t=$(secs sh -c 'go tool mage -l >/dev/null'); echo "mage start-up alone (go tool mage -l): $t s"
echo 'CONFIG_CRAMFS=y' >kconfig/99-bench.config
t=$(secs pipeline); echo "one fragment changed (CONFIG_CRAMFS=y), mage kernel: $t s"
rm -f kconfig/99-bench.config
