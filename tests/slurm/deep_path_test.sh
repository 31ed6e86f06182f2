#!/usr/bin/env bash
# tests/slurm/deep_path_test.sh: slurm_cluster.sh works from a checkout in a deep folder. A socket's path has
# at most 107 bytes (sun_path), so the cluster must not put its sockets under DIR: here DIR is over 150
# bytes long. Starts the cluster there, runs a job step (munged's socket authenticates it, slurmd's spool
# holds the step's socket), checks every socket the daemons made has a short path, stops the cluster and
# checks that nothing is left. Its first try's slurmd port is held by a listener here, so the cluster
# starts only if slurm_cluster.sh starts its daemons again on new ports when one cannot bind.
#   bash tests/slurm/deep_path_test.sh BUILD_DIR
set -euo pipefail
build=${1:?usage: deep_path_test.sh BUILD_DIR}
here=$(cd "$(dirname "$0")" && pwd)
deep="$build/slurm-deep/$(printf 'a%.0s' $(seq 1 100))/cluster"
[ ${#deep} -gt 150 ] || deep="$deep/$(printf 'b%.0s' $(seq 1 $((151 - ${#deep}))))"
export LOOM_SLURM_LIFETIME=120  # the daemons end by themselves if this script is killed

holder=""
cleanup() {
  bash "$here/slurm_cluster.sh" stop "$deep" || true; rm -rf "$build/slurm-deep"
  [ -z "$holder" ] || kill "$holder" 2>/dev/null || true
}
trap cleanup EXIT

# A port already listened on, for slurmd's first try.
portfile=$(mktemp)
python3 -c '
import socket, sys, time
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen()
open(sys.argv[1], "w").write(str(s.getsockname()[1])); time.sleep(120)' "$portfile" &
holder=$!
for _ in $(seq 1 100); do [ -s "$portfile" ] && break; sleep 0.05; done
held=$(cat "$portfile"); rm -f "$portfile"
[ -n "$held" ] || { echo "deep_path_test: the port holder did not start" >&2; exit 1; }

started=$(LOOM_SLURM_FIRST_PORT=$held bash "$here/slurm_cluster.sh" start "$deep" 2>&1) || {
  echo "$started" >&2; echo "deep_path_test: the cluster did not start with its first port held ($held)" >&2; exit 1; }
grep -q "could not bind its port (try 1 of 3)" <<<"$started" || {
  echo "$started" >&2; echo "deep_path_test: slurmd's first try did not meet the held port $held" >&2; exit 1; }
run=$(cat "$deep/run_dir")
out=$(SLURM_CONF="$deep/slurm.conf" timeout 60 srun -N1 -n1 --quiet /bin/echo step-ran)
[ "$out" = step-ran ] || { echo "deep_path_test: the step printed \`$out\`" >&2; exit 1; }
# Every socket the daemons made is in the run folder and short.
sockets=$(find "$run" -type s)
[ -n "$sockets" ] || { echo "deep_path_test: no socket in $run" >&2; exit 1; }
while read -r s; do
  if [ ${#s} -gt 107 ]; then echo "deep_path_test: socket path of ${#s} bytes: $s" >&2; exit 1; fi
done <<<"$sockets"
bash "$here/slurm_cluster.sh" stop "$deep"
for gone in "$deep" "$run"; do
  [ ! -e "$gone" ] || { echo "deep_path_test: $gone is left after stop" >&2; exit 1; }
done
echo "deep_path_test: a cluster in a folder of ${#deep} bytes ran a step; its sockets in $run"
