#!/bin/bash
# bench/recover_cpu.sh [LOOM] [MODE] [RUNS] [COUNT]: the CPU each worker spends on a hot movable hop. Two
# workers on loopback, each under `perf stat -e task-clock`; numbers (a) -> pass (b, flow.forward, `recover:
# MODE`, fail or replace) -> tally (a), COUNT ints (default 10 M), RUNS runs (default 3). Prints each run's
# "ok in X s", then the milliseconds of CPU of host a and host b over all runs. Needs perf.
# Figures: bench/RESULTS.md, "Movable hops: tags as runs, credits that follow their outputs".
set -euo pipefail
B=$(realpath "${1:-build/bin/loom}")
MODE=${2:-replace}
case $MODE in fail|replace) ;; *) echo "recover_cpu.sh: MODE is fail or replace, not '$MODE'" >&2; exit 2 ;; esac
RUNS=${3:-3}
COUNT=${4:-10000000}
source "$(dirname "$0")/hop_setup.sh"
perf stat -x, -e task-clock -o "$dir/a.stat" "$B" worker --listen "tcp://127.0.0.1:$pa" --name a >"$dir/a.log" 2>&1 & pids+=($!)
perf stat -x, -e task-clock -o "$dir/b.stat" "$B" worker --listen "tcp://127.0.0.1:$pb" --name b >"$dir/b.log" 2>&1 & pids+=($!)
sleep 1
for _ in $(seq "$RUNS"); do
  "$B" run "$dir/$MODE.yaml" --cluster "$dir/cluster.yaml" 2>&1 | grep -o "ok in [0-9.]* s"
done
for p in "${pids[@]}"; do pkill -INT -P "$p" || true; done  # the workers (perf's children); perf then writes
wait "${pids[@]}" 2>/dev/null || true
pids=()
echo "$MODE: CPU ms host a $(grep task-clock "$dir/a.stat" | cut -d, -f1) host b $(grep task-clock "$dir/b.stat" | cut -d, -f1)"
