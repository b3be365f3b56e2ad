#!/usr/bin/env bash
# Alternates `tar xJf` with the Go unpacker (host xz decoder, then ulikunitz/xz) on the kernel tarball.
#   scripts/bench-unpack.sh [target-parent-dir] [rounds]    (defaults: /tmp, 2)
set -euo pipefail
cd "$(dirname "$0")/.."
parent=${1:-/tmp}
rounds=${2:-2}
tarball=${SUML_BENCH_TARBALL:-/usr/src/linux-source-6.12.tar.xz}
bin=$(mktemp)
trap 'rm -f "$bin"; rm -rf "$parent/suml-tar-bench"' EXIT
go test -c -o "$bin" ./build/source/
for _ in $(seq "$rounds"); do
  sync; sleep 5
  mkdir -p "$parent/suml-tar-bench"
  start=$(date +%s.%N)
  tar xJf "$tarball" -C "$parent/suml-tar-bench"
  echo "tar xJf         $(echo "$(date +%s.%N) - $start" | bc) s"
  rm -rf "$parent/suml-tar-bench"
  for decoder in host-xz go-xz; do
    sync; sleep 5
    TMPDIR=$parent SUML_BENCH_TARBALL=$tarball "$bin" -test.run xxx -test.bench "UnpackLinuxSource/$decoder" -test.benchtime 1x |
      awk -v d="$decoder" '/ns\/op/ {printf "unpack %-8s %.2f s\n", d, $3/1e9}'
  done
done
