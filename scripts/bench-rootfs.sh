#!/usr/bin/env bash
# Times root filesystem assembly (resolve + fetch + verify + unpack + image + tarball) for the busybox
# test repository and the largest real fixture set, one download at a time vs four, with the peak
# memory of the largest process; then image creation and read-back per byte of content.
# Prints the lines docs/benchmarks.md records.   scripts/bench-rootfs.sh [runs per case, default 3]
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-3}
work=$(mktemp -d /tmp/suml-bench-rootfs.XXXXXX)
trap 'rm -rf "$work"' EXIT
go test -c -o "$work/pipeline.test" ./build/pipeline
go test -c -o "$work/rootfs.test" ./build/rootfs
for set in busybox encoded14; do
  for n in 1 4; do
    (cd build/pipeline && /usr/bin/time -f "$set downloads=$n: peak RSS %M KiB (largest process)" \
      "$work/pipeline.test" -test.run '^$' -test.bench "BenchmarkRootfs/$set/downloads=$n\$" \
      -test.benchtime "${runs}x") 2>&1 | grep -E '^Benchmark|peak RSS'
  done
done
(cd build/rootfs && "$work/rootfs.test" -test.run '^$' -test.bench 'BenchmarkImage' -test.benchtime "${runs}x") | grep -E '^Benchmark'
