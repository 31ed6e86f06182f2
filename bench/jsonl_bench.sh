#!/bin/bash
# bench/jsonl_bench.sh [LOOM] [BASELINE_LOOM] [REPEAT]: source.file reading 300,000 JSON-lines records (five
# fields, two nested) into sink.count: the shared JSON reader (runtime/json_reader.hpp) on the hot path of a
# jsonl source. With BASELINE_LOOM (another build, e.g. one from before a change), the two run interleaved.
# Prints one line per run: the binary, the run's own seconds ("ok in X s") and records per second.
# Figures: bench/RESULTS.md, "JSON lines in".
set -euo pipefail
B=${1:-build/bin/loom}
BASE=${2:-}
N=${3:-5}
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
python3 - "$dir/records.jsonl" <<'PY'
import json, sys
with open(sys.argv[1], "w") as f:
    for i in range(300000):
        f.write(json.dumps({"id": i, "name": "record %d" % i, "tags": ["a", "b", "c"], "price": i / 3,
                            "nested": {"x": [1, 2, {"y": "z"}]}}) + "\n")
PY
cat > "$dir/graph.yaml" <<YAML
graph: jsonl_in
nodes:
  src: {kind: source.file, params: {path: records.jsonl, format: jsonl}}
  count: {kind: sink.count, params: {expect: 300000}}
edges:
  - {from: src, to: count}
YAML
for _ in $(seq "$N"); do
  for b in "$B" $BASE; do
    s=$("$b" run "$dir/graph.yaml" 2>&1 | grep -o "ok in [0-9.]* s" | awk '{print $3}')
    echo "$b $s $(echo "300000 / $s" | bc)"
  done
done
