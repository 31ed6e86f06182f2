#!/bin/bash
# bench/state_bench.sh [LOOM] [ROUNDS] [COUNT]: `loom run --state` against the same run without it, one
# process each, interleaved per round: source.sequence -> flow.batch(16) -> flow.forward -> sink.file, COUNT
# ints (default 10000000), at the default interval (1 s) and at 100 ms, the snapshots written to the state
# file on disk (SQLite, WAL, synchronous=FULL). Prints the run's own seconds ("ok in X s") per run and the
# median ratio of each to the run without. Figures: bench/RESULTS.md, "Durable runs".
set -euo pipefail
B=$(realpath "${1:-build/bin/loom}")
N=${2:-3}
COUNT=${3:-10000000}
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
cat > "$dir/g.yaml" <<YAML
graph: durable_bench
nodes:
  src: {kind: source.sequence, params: {count: $COUNT}}
  batch: {kind: flow.batch, params: {size: 16}}
  fwd: {kind: flow.forward}
  out: {kind: sink.file, params: {path: $dir/out.jsonl}}
edges: [src -> batch -> fwd -> out]
YAML
secs() { grep -o "ok in [0-9.]* s" | awk '{print $3}'; }
declare -a r1 r2
for round in $(seq "$N"); do
  plain=$("$B" run "$dir/g.yaml" 2>&1 | secs)
  rm -rf "$dir/s1" "$dir/s2"
  def=$("$B" run "$dir/g.yaml" --state "$dir/s1" 2>&1 | secs)
  fast=$("$B" run "$dir/g.yaml" --state "$dir/s2" --checkpoint-every 100ms 2>&1 | secs)
  snaps=$("$B" runs "$dir/s2" --json | python3 -c 'import json,sys; print(len(json.load(sys.stdin).get("snapshots",[])))' 2>/dev/null || echo "?")
  r1+=("$(echo "$plain / $def" | bc -l)"); r2+=("$(echo "$plain / $fast" | bc -l)")
  printf 'round %s: without %s s | --state (1 s) %s s | --state --checkpoint-every 100ms %s s (snapshots kept at the end: %s)\n' \
    "$round" "$plain" "$def" "$fast" "$snaps"
done
printf '%s\n' "${r1[@]}" | sort -g | awk '{a[NR]=$1} END {printf "median throughput with --state (1 s) / without: %.2f\n", a[int((NR+1)/2)]}'
printf '%s\n' "${r2[@]}" | sort -g | awk '{a[NR]=$1} END {printf "median throughput with --state --checkpoint-every 100ms / without: %.2f\n", a[int((NR+1)/2)]}'
