#!/usr/bin/env bash
# Times what a kernel hacker repeats: a changed patch, a reverted one, and a rebuild with ccache warm
# after the build folder is gone, each against a cold build. From a local tarball (no network).
# Prints one line per measurement; docs/benchmarks.md records them.
#   scripts/bench-incremental.sh [tarball]     (default: Debian's /usr/src/linux-source-6.12.tar.xz)
set -euo pipefail
cd "$(dirname "$0")/.."
tarball=${1:-/usr/src/linux-source-6.12.tar.xz}
work=$(mktemp -d /tmp/suml-bench.XXXXXX)
trap 'rm -rf "$work"' EXIT
command -v ccache >/dev/null || { echo "ccache is not installed (apt-get install ccache)" >&2; exit 1; }
go tool mage -l >/dev/null # compile the magefile outside the measurements
export SUML_KERNEL_TARBALL=$tarball SUML_CACHE=$work/cache SUML_DIST=$work/dist SUML_PATCHES=$work/patches
mkdir -p "$work/patches"
: >"$work/patches/series"

secs() {
  local s
  s=$(date +%s.%N)
  "$@" >"$work/pipeline.log" 2>&1 || { echo "failed: $*" >&2; tail -20 "$work/pipeline.log" >&2; return 1; }
  echo "$(date +%s.%N) - $s" | bc
}
kernel() { go tool mage kernel; }

# A one-line patch to one C file, made against the tarball's own copy.
file=fs/hostfs/hostfs_kern.c
top=$(set +o pipefail; tar tJf "$tarball" 2>/dev/null | head -1 | cut -d/ -f1)
tar xJf "$tarball" -C "$work" "$top/$file"
cp "$work/$top/$file" "$work/orig.c"
sed '1a \ * simple-uml benchmark: a one-line change' "$work/orig.c" >"$work/new.c"
(cd "$work" && diff -u --label "a/$file" --label "b/$file" orig.c new.c >patches/0001-bench.patch || true)

t=$(secs kernel); echo "cold mage kernel (no ccache): $t s"
t=$(secs kernel); echo "no-op mage kernel: $t s"
echo 0001-bench.patch >"$work/patches/series"
t=$(secs kernel); echo "one patch added (one C file), mage kernel: $t s ($(grep -c ' CC ' "$work/cache/build/"*/simple-uml-build.log) objects compiled)"
: >"$work/patches/series"
t=$(secs kernel); echo "that patch removed again, mage kernel: $t s ($(grep -c ' CC ' "$work/cache/build/"*/simple-uml-build.log) objects compiled)"

export SUML_KERNEL_CC_WRAPPER=ccache CCACHE_DIR=$work/ccache CCACHE_MAXSIZE=5G
ccache -z >/dev/null
rm -rf "$work/cache/build" "$work/dist/linux.json"
t=$(secs kernel); echo "cold mage kernel with ccache, empty cache: $t s"
rm -rf "$work/cache/build" "$work/dist/linux.json"
ccache -z >/dev/null
t=$(secs kernel); echo "mage kernel with ccache warm, build folder removed: $t s ($(ccache -s | grep -iE 'hits|misses' | tr -s ' ' | tr '\n' ';'))"
