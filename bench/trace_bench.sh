#!/bin/bash
# bench/trace_bench.sh [LOOM] [REPEAT]: the 4-stage pipeline (configs/pipeline.yaml, 2,000,000 values) with
# tracing off and with `--trace`, interleaved. Prints one line per run: mode, the run's own seconds (from
# "ok in X s": spawn to the last report, without the trace file) and the whole command's wall seconds
# (with writing the trace file). Figures: bench/RESULTS.md, "Tracing".
set -euo pipefail
B=${1:-build/bin/loom}
N=${2:-9}
out=$(mktemp --suffix=.json)
trap 'rm -f "$out"' EXIT
for _ in $(seq "$N"); do
  for mode in off on; do
    extra=()
    [ "$mode" = on ] && extra=(--trace "$out")
    t0=$(date +%s.%N)
    s=$("$B" run configs/pipeline.yaml --set src.count=2000000 --set count.expect=2000000 "${extra[@]}" 2>&1 |
        grep -o "ok in [0-9.]* s" | awk '{print $3}')
    t1=$(date +%s.%N)
    echo "$mode $s $(echo "$t1 - $t0" | bc)"
  done
done
