#!/bin/bash
# bench/recover_bench.sh [LOOM] [REPEAT] [COUNT]: what `recover: replace` costs on a hot hop. Two workers on
# loopback; numbers (a) -> pass (b, flow.forward) -> tally (a), COUNT values (default 200000), with pass's
# `recover: fail` (runs, credits at once) and `recover: replace` (one value at a time, lineage tags, credits
# fenced behind the outputs' acknowledgements), interleaved. Prints one line per run: mode, the run's own
# seconds ("ok in X s"), and at the end the median of the per-round ratios replace / fail.
# Figures: bench/RESULTS.md, "Moving a lost host's nodes".
set -euo pipefail
B=$(realpath "${1:-build/bin/loom}")
N=${2:-7}
COUNT=${3:-200000}
source "$(dirname "$0")/hop_setup.sh"
"$B" worker --listen "tcp://127.0.0.1:$pa" --name a >"$dir/a.log" 2>&1 & pids+=($!)
"$B" worker --listen "tcp://127.0.0.1:$pb" --name b >"$dir/b.log" 2>&1 & pids+=($!)
sleep 1
ratios=()
for _ in $(seq "$N"); do
  declare -A s
  for mode in fail replace; do
    s[$mode]=$("$B" run "$dir/$mode.yaml" --cluster "$dir/cluster.yaml" 2>&1 | grep -o "ok in [0-9.]* s" | awk '{print $3}')
    echo "$mode ${s[$mode]}"
  done
  ratios+=("$(echo "${s[replace]} / ${s[fail]}" | bc -l)")
done
printf '%s\n' "${ratios[@]}" | sort -g | awk '{a[NR]=$1} END {printf "median replace/fail: %.2f\n", a[int((NR+1)/2)]}'
