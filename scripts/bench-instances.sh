#!/usr/bin/env bash
# Times the instance commands as a person runs them, whole commands of a compiled magefile (so that
# mage's own compile is not measured): up (a new instance, to its ready text), ps, stop, up again
# (over its kept disk), reset (of a running instance: stop, new disk, up) and rm; and the resident
# memory ps reports for the guest; then up and stop of a 3-guest lab instance (a router between two
# LANs); then what supervising a fleet of idle instances costs the host: resident memory and CPU
# of all their processes (supervisors, kernels and the guests' processes) over 60 s, for 1 and for
# <fleet> guests. Uses dist/'s pair (or SUML_DIST's) and a state folder of its own.
#   scripts/bench-instances.sh [rounds] [fleet]   (defaults 3 and 50)
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-3}
fleet=${2:-50}
work=$(mktemp -d /tmp/suml-bench-inst.XXXXXX)
export SUML_STATE=$work/state SUML_LABS=$work/labs
mkdir "$SUML_LABS"
cp build/pipeline/testdata/labs/trio.toml "$SUML_LABS/"
cleanup() {
  for d in "$SUML_STATE"/instances/*/; do [ -d "$d" ] && "$work/mage" rm "$(basename "$d")" >/dev/null 2>&1; done
  rm -rf "$work"
}
trap cleanup EXIT
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

lab=$(secs "$work/mage" up trio)
labstop=$(secs "$work/mage" stop trio)
"$work/mage" rm trio >/dev/null
printf 'lab instance of 3 guests: up %.2f s (booted, logged in, configured), stop %.2f s\n' "$lab" "$labstop"

# pids of every process running from the state folder: supervisors (a copy of the program in each
# instance's folder), kernels and their helpers (named by their instance's files).
fleet_pids() { pgrep -f "$SUML_STATE/instances/" || true; }
# ticks PIDS... sums the processes' user and system CPU time, in clock ticks.
ticks() { local t=0 p; for p in "$@"; do [ -r "/proc/$p/stat" ] && t=$((t + $(awk '{print $14 + $15}' "/proc/$p/stat"))); done; echo "$t"; }
for n in 1 "$fleet"; do
  start=$(date +%s.%N)
  for i in $(seq "$n"); do "$work/mage" up "idle$i" >/dev/null; done
  took=$(echo "$(date +%s.%N) - $start" | bc)
  sleep 10 # the guests settle after their boot
  mapfile -t pids < <(fleet_pids)
  before=$(ticks "${pids[@]}")
  supervisors_before=$(ticks $(pgrep -f "^$SUML_STATE/instances/[^/]*/simple-uml\$"))
  sleep 60
  after=$(ticks "${pids[@]}")
  # Proportional set size: a kernel and its helpers share the guest's memory file, which a sum of
  # resident sizes would count once for each.
  pss() { for p in "$@"; do awk '/^Pss:/ {print $2}' "/proc/$p/smaps_rollup" 2>/dev/null; done | awk '{s += $1} END {print s / 1024}'; }
  mapfile -t supervisors < <(pgrep -f "^$SUML_STATE/instances/[^/]*/simple-uml\$" || true)
  all=$(pss "${pids[@]}")
  printf '%d idle guests: up one after another %.1f s; %d processes, %.0f MiB in all (PSS; %.1f per guest, of it the supervisor %.1f), CPU %.2f%% of one core over 60 s (the supervisors %.2f%%)\n' \
    "$n" "$took" "${#pids[@]}" "$all" "$(echo "$all / $n" | bc -l)" "$(echo "$(pss "${supervisors[@]}") / $n" | bc -l)" \
    "$(echo "($after - $before) / $(getconf CLK_TCK) / 60 * 100" | bc -l)" "$(echo "($(ticks "${supervisors[@]}") - $supervisors_before) / $(getconf CLK_TCK) / 60 * 100" | bc -l)"
  for i in $(seq "$n"); do "$work/mage" rm "idle$i" >/dev/null; done
done
