#!/bin/bash
# bench/xhost_bench.sh [ROUNDS] [COUNT] [LOOM...]: a graph across two hosts against raw ZeroMQ, in one run.
# Two `loom worker`s on loopback per LOOM binary (default build/bin/loom); numbers (a) -> pass (b,
# flow.forward) -> tally (a, sink.count with `expect`), COUNT ints (default 20000000); and the raw anchor
# `zmq_pipeline_batched` (build/bin/loom_zmq_pipeline: the same three stages in two processes, batches of
# 64 ints). Each round runs the anchor, then the graph on each binary's workers (so a before and an after
# binary are compared in the same run). Prints one line per run (the run's own seconds, "ok in X s", and
# values/s), then per binary the median of its per-round ratios to the anchor. By default the workers use
# the per-user keys (CurveZMQ: every byte encrypted, as loom runs unless told otherwise); INSECURE=1 runs
# them with --insecure (plain TCP, like the anchor). With keys, each round also runs the anchor with
# CurveZMQ (`--curve 1`, encrypted like the workers) and prints the medians against it too.
# Figures: bench/RESULTS.md, "Across hosts against raw ZeroMQ".
set -euo pipefail
N=${1:-3}
COUNT=${2:-20000000}
shift 2 || true
bins=("$@")
[ ${#bins[@]} -gt 0 ] || bins=(build/bin/loom)
ANCHOR=${ANCHOR:-build/bin/loom_zmq_pipeline}
flags=()
[ "${INSECURE:-0}" = 1 ] && flags=(--insecure)
dir=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$dir"; }
trap cleanup EXIT
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
cat > "$dir/graph.yaml" <<YAML
graph: xhost
nodes:
  numbers: {kind: source.sequence, params: {count: $COUNT}, placement: {host: a}}
  pass: {kind: flow.forward, placement: {host: b}}
  tally: {kind: sink.count, params: {expect: $COUNT}, placement: {host: a}}
edges:
  - numbers -> pass -> tally
YAML
for i in "${!bins[@]}"; do
  bins[$i]=$(realpath "${bins[$i]}")
  pa=$(port); pb=$(port)
  cat > "$dir/cluster$i.yaml" <<YAML
name: bench
hosts:
  - {name: a, address: tcp://127.0.0.1:$pa, cpus: 4}
  - {name: b, address: tcp://127.0.0.1:$pb, cpus: 4}
YAML
  "${bins[$i]}" worker --listen "tcp://127.0.0.1:$pa" --name a ${flags[@]+"${flags[@]}"} >"$dir/a$i.log" 2>&1 & pids+=($!)
  "${bins[$i]}" worker --listen "tcp://127.0.0.1:$pb" --name b ${flags[@]+"${flags[@]}"} >"$dir/b$i.log" 2>&1 & pids+=($!)
done
sleep 1
declare -A ratios cratios
for round in $(seq "$N"); do
  line=$("$ANCHOR" --count "$COUNT" --batch 64)
  anchor=$(echo "$line" | grep -o '[0-9.]* M values/s' | awk '{print $1}')
  echo "round $round: $line"
  canchor=
  if [ "${INSECURE:-0}" != 1 ]; then
    cline=$("$ANCHOR" --count "$COUNT" --batch 64 --curve 1)
    canchor=$(echo "$cline" | grep -o '[0-9.]* M values/s' | awk '{print $1}')
    echo "round $round: $cline"
  fi
  for i in "${!bins[@]}"; do
    out=$("${bins[$i]}" run "$dir/graph.yaml" --cluster "$dir/cluster$i.yaml" ${flags[@]+"${flags[@]}"} 2>&1) || { echo "$out"; exit 1; }
    secs=$(echo "$out" | grep -o "ok in [0-9.]* s" | awk '{print $3}')
    rate=$(echo "$COUNT / $secs / 1000000" | bc -l)
    ratio=$(echo "$rate / $anchor" | bc -l)
    ratios[$i]="${ratios[$i]:-} $ratio"
    [ -n "$canchor" ] && cratios[$i]="${cratios[$i]:-} $(echo "$rate / $canchor" | bc -l)"
    printf 'round %s: loom %s: ok in %s s: %.2f M values/s: %.3fx the anchor\n' "$round" "${bins[$i]}" "$secs" "$rate" "$ratio"
  done
done
for i in "${!bins[@]}"; do
  printf '%s\n' ${ratios[$i]} | sort -g | awk -v b="${bins[$i]}" '{a[NR]=$1} END {printf "median loom / zmq_pipeline_batched (%s): %.3f\n", b, a[int((NR+1)/2)]}'
  if [ -n "${cratios[$i]:-}" ]; then
    printf '%s\n' ${cratios[$i]} | sort -g | awk -v b="${bins[$i]}" '{a[NR]=$1} END {printf "median loom / zmq_pipeline_batched with CurveZMQ (%s): %.3f\n", b, a[int((NR+1)/2)]}'
  fi
done
