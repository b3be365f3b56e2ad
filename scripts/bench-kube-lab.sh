#!/usr/bin/env bash
# Times a lab on pods as `podman kube play` runs `mage kube -lab`'s manifests, against the same lab
# as an instance on one host: the 3-guest trio lab (a router between two LANs, build/pipeline/
# testdata/labs/trio.toml). For the pods: `podman kube play` to every guest ready, each container's
# memory (podman stats), and until the lab's checks have passed in every pod; then for both: the
# throughput of a 32 MiB HTTP download from c to a through r (busybox httpd and wget, timed in the
# guest). Needs podman as root (runc, the limits in docs/containers.md), and dist/'s pair (or
# SUML_DIST's, with SUML_BOOT_RECIPE). Uses a state folder and a podman network of its own.
#   scripts/bench-kube-lab.sh [rounds]   (default 3)
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-3}
work=$(mktemp -d /tmp/suml-bench-kube.XXXXXX)
export SUML_STATE=$work/state SUML_LABS=$PWD/build/pipeline/testdata/labs
export CONTAINERS_CONF=$work/containers.conf
cat >"$CONTAINERS_CONF" <<'CONF'
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=4096:4096"]
[engine]
runtime = "runc"
CONF
network=suml-bench-$$
manifests=
cleanup() {
  if [ -n "$manifests" ]; then podman kube down "$manifests" >/dev/null 2>&1 || true; fi
  for g in a r c; do podman volume rm -f "trio-$g-disk" >/dev/null 2>&1 || true; done
  podman network rm -f "$network" >/dev/null 2>&1 || true
  if [ -x "$work/mage" ]; then "$work/mage" rm trio >/dev/null 2>&1 || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
go tool mage -compile "$work/mage"
"$work/mage" image >"$work/out"
podman load -q -i "$(sed -n 's/.* written to \(.*\.oci\.tar\) .*/\1/p' "$work/out")" >/dev/null
manifests=$("$work/mage" kube -lab=trio | sed -n 's/.* written to //p')
podman network create "$network" >/dev/null

# now prints seconds since the epoch, with nanoseconds.
now() { date +%s.%N; }

# console NAME CMD... types each CMD into guest NAME's console (a container, or "instance/<guest>")
# and prints what the console showed, once it has shown this call's end marker.
calls=0
console() {
  local name=$1
  shift
  calls=$((calls + 1))
  rm -f "$work/done"
  {
    sleep 1
    for c in "$@"; do
      echo "$c"
      sleep 0.5
    done
    echo "echo bench-$calls''-done"
    for _ in $(seq 180); do # stdin stays open until the console has shown bench-done
      [ -e "$work/done" ] && break
      sleep 0.5
    done
  } | if [[ $name == instance/* ]]; then
    timeout 100 "$work/mage" console "trio/${name#instance/}"
  else
    timeout 100 podman exec -i "$name" /usr/bin/simple-uml-guest console
  fi 2>&1 | {
    sed "/bench-$calls-done/q" # the typed line reads bench-N''-done; a console may replay older output
    touch "$work/done"
  } || true
}

# download NAME... serves 32 MiB from c and times a's download, in seconds (busybox time's "real").
download() {
  console "$2" "dd if=/dev/zero of=/srv.big bs=1M count=32 2>/dev/null; mkdir -p /www; mv /srv.big /www/big; httpd -p 80 -h /www" >/dev/null
  console "$1" "time wget -q -O /dev/null http://10.9.2.1/big" | sed -n 's/^real[[:space:]]*\([0-9]*\)m \([0-9.]*\)s.*/\1 \2/p' | awk '{print $1*60+$2}'
}

for round in $(seq "$rounds"); do
  start=$(now)
  podman kube play --network "$network" "$manifests" >/dev/null
  for g in a r c; do
    until podman exec "trio-$g-pod-0-guest" /usr/bin/simple-uml-guest ready >/dev/null 2>&1; do sleep 0.1; done
  done
  ready=$(echo "$(now) - $start" | bc)
  for g in a r c; do
    until status=0; podman exec "trio-$g-pod-0-guest" /usr/bin/simple-uml-guest checks >/dev/null 2>&1 || status=$?; [ "$status" != 2 ]; do sleep 0.2; done
  done
  checked=$(echo "$(now) - $start" | bc)
  memory=$(podman stats --no-stream --format '{{.Name}} {{.MemUsage}}' | grep trio- | awk '{print $2}' | tr '\n' ' ')
  pods=$(download trio-a-pod-0-guest trio-c-pod-0-guest)
  printf 'round %s: pods: all ready %.1f s, checks passed %.1f s; containers %s; a<-c 32 MiB across pods %s s\n' "$round" "$ready" "$checked" "$memory" "$pods"
  podman kube down "$manifests" >/dev/null
  for g in a r c; do podman volume rm -f "trio-$g-disk" >/dev/null; done
done

"$work/mage" up trio >/dev/null
for round in $(seq "$rounds"); do
  printf 'round %s: one host (an instance): a<-c 32 MiB %s s\n' "$round" "$(download instance/a instance/c)"
done
