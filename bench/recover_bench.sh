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
dir=$(mktemp -d)
pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null || true; rm -rf "$dir"; }
trap cleanup EXIT
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
pa=$(port); pb=$(port)
cat > "$dir/cluster.yaml" <<YAML
name: bench
hosts:
  - {name: a, address: tcp://127.0.0.1:$pa, cpus: 4}
  - {name: b, address: tcp://127.0.0.1:$pb, cpus: 4}
YAML
for mode in fail replace; do
  cat > "$dir/$mode.yaml" <<YAML
graph: hop
nodes:
  numbers: {kind: source.sequence, params: {count: $COUNT}, placement: {host: a}}
  pass: {kind: flow.forward, placement: {host: b}, recover: $mode}
  tally: {kind: sink.count, params: {expect: $COUNT}, placement: {host: a}}
edges:
  - numbers -> pass -> tally
YAML
done
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
