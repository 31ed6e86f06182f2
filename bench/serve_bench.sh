#!/usr/bin/env bash
# bench/serve_bench.sh: `loom serve configs/serve_echo.yaml` against a bare cpp-httplib + nlohmann-json echo
# server (bench/serve_echo_baseline.cpp, the ceiling), with `hey` (keep-alive, the same JSON request), at 1
# and 16 connections, one after the other in this one run. Prints a markdown table. LOOM=path measures another loom binary (e.g. an older build) instead.
#   bash bench/serve_bench.sh [BUILD_DIR] [SECONDS]     (needs: hey; LOOM=path overrides the loom binary)
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
secs=${2:-5}
loom=${LOOM:-$build/bin/loom}
baseline=$build/bin/serve_echo_baseline
command -v hey >/dev/null || { echo "serve_bench: needs hey (apt-get install hey)" >&2; exit 2; }
body='{"model":"serve_echo","messages":[{"role":"user","content":"hello from the bench"}]}'
pids=()

logs=$(mktemp -d)
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$logs"' EXIT
# The port a server started with port 0 printed on stderr ("http://127.0.0.1:PORT/v1").
port_of() {
  for _ in $(seq 100); do
    local p; p=$(grep -o '127\.0\.0\.1:[0-9]*' "$1" 2>/dev/null | head -1 | cut -d: -f2)
    [ -n "$p" ] && { echo "$p"; return; }
    sleep 0.1
  done
  echo "serve_bench: no port in $1: $(cat "$1")" >&2; exit 1
}

# One hey run: prints "requests/s | p50 ms | p99 ms | non-200".
measure() {
  local port=$1 conns=$2 out
  out=$(hey -z "${secs}s" -c "$conns" -m POST -T application/json -d "$body" "http://127.0.0.1:$port/v1/chat/completions")
  local rps p50 p99 total ok
  rps=$(awk '/Requests\/sec/ {printf "%.0f", $2}' <<<"$out")
  p50=$(awk '/ 50% in/ {printf "%.2f", $3*1000}' <<<"$out")
  p99=$(awk '/ 99% in/ {printf "%.2f", $3*1000}' <<<"$out")
  ok=$(awk '$1 == "[200]" && $3 == "responses" {n += $2} END {print n+0}' <<<"$out")
  total=$(awk '$1 ~ /^\[[0-9]+\]$/ && $3 == "responses" {n += $2} END {print n+0}' <<<"$out")
  echo "$rps | $p50 | $p99 | $((total - ok))"
}

# Both servers start on port 0 and say which port they got once they listen.
"$loom" serve configs/serve_echo.yaml --port 0 --max-concurrent 32 2>"$logs/loom" & pids+=($!)
"$baseline" 0 48 2>"$logs/baseline" & pids+=($!)
lport=$(port_of "$logs/loom")
bport=$(port_of "$logs/baseline")

echo "| server | connections | requests/s | p50 ms | p99 ms | non-200 |"
echo "|---|---|---|---|---|---|"
for c in 1 16; do
  b=$(measure "$bport" "$c")
  l=$(measure "$lport" "$c")
  echo "| bare cpp-httplib + nlohmann-json | $c | $b |"
  echo "| loom serve (echo graph) | $c | $l |"
done
