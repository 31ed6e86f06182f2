#!/bin/bash
# bench/jq_bench.sh [LOOM] [REPEAT] [COUNT]: what a flow.jq stage costs against flow.forward, in one run of
# `loom run` each, interleaved. COUNT records (default 200000) {id: 1234567890123456789, x: 2, name, price:
# 1/3} from source.value -> STAGE -> sink.count, with STAGE one of: flow.forward; flow.jq `.`; flow.jq
# `select(.x > 1)`; flow.jq `{id, total: (.price * .x)}`. Prints one line per run (stage, the run's own
# seconds from "ok in X s", values/s) and at the end the median values/s of each stage.
# Figures: bench/RESULTS.md, "flow.jq".
set -euo pipefail
B=$(realpath "${1:-build/bin/loom}")
N=${2:-5}
COUNT=${3:-200000}
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
stage() {  # NAME NODE-YAML
  cat > "$dir/$1.yaml" <<YAML
graph: jq-bench
nodes:
  src: {kind: source.value, params: {repeat: $COUNT, value: {id: 1234567890123456789, x: 2, name: widget, price: 0.3333333333333333}}}
  stage: $2
  out: {kind: sink.count, params: {expect: $COUNT}}
edges: [src -> stage -> out]
YAML
}
stage forward '{kind: flow.forward}'
stage jq_dot '{kind: flow.jq, params: {program: "."}}'
stage jq_select '{kind: flow.jq, params: {program: "select(.x > 1)"}}'
stage jq_map '{kind: flow.jq, params: {program: "{id, total: (.price * .x)}"}}'
names=(forward jq_dot jq_select jq_map)
for ((i = 0; i < N; i++)); do
  for s in "${names[@]}"; do
    secs=$("$B" run "$dir/$s.yaml" 2>&1 | sed -n 's/.* ok in \([0-9.]*\) s.*/\1/p')
    echo "$s $secs $(python3 -c "print(round($COUNT / $secs))")" | tee -a "$dir/all"
  done
done
echo "median values/s over $N runs:"
for s in "${names[@]}"; do
  echo "  $s $(awk -v s="$s" '$1 == s {print $3}' "$dir/all" | sort -n | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}')"
done
