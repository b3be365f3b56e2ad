#!/usr/bin/env bash
# Times the instance commands as a person runs them, whole commands of a compiled magefile (so that
# mage's own compile is not measured): up (a new instance, to its ready text), ps, stop, up again
# (over its kept disk), reset (of a running instance: stop, new disk, up) and rm; and the resident
# memory ps reports for the guest. Uses dist/'s pair (or SUML_DIST's) and a state folder of its own.
#   scripts/bench-instances.sh [rounds]   (default 3)
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-3}
work=$(mktemp -d /tmp/suml-bench-inst.XXXXXX)
export SUML_STATE=$work/state
trap 'rm -rf "$work"' EXIT
go tool mage -compile "$work/mage"

# secs CMD... prints CMD's wall time in seconds.
secs() {
  local s
  s=$(date +%s.%N)
  "$@" >"$work/out" 2>&1 || { cat "$work/out" >&2; return 1; }
  echo "$(date +%s.%N) - $s" | bc
}

for round in $(seq "$rounds"); do
  up=$(secs "$work/mage" up bench)
  ps=$(secs "$work/mage" ps)
  mem=$("$work/mage" ps | awk '$1 == "bench" { print $6, $7 }')
  stop=$(secs "$work/mage" stop bench)
  again=$(secs "$work/mage" up bench)
  reset=$(secs "$work/mage" reset bench)
  rm=$(secs "$work/mage" rm bench)
  printf 'round %d: up %.2f s, ps %.2f s, stop %.2f s, up again %.2f s, reset %.2f s, rm %.2f s; guest memory %s\n' \
    "$round" "$up" "$ps" "$stop" "$again" "$reset" "$rm" "$mem"
done
