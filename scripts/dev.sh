#!/usr/bin/env bash
# scripts/dev.sh: everything a fresh Debian 12 machine needs, in one command each.
#   bash scripts/dev.sh demo   install packages, build, run the flagship graph and show its result
#   bash scripts/dev.sh test   install packages, build (-Werror), run every test, fuzz the loader and wire briefly
#   bash scripts/dev.sh deps   install packages only
# Runs as root, or with sudo when it is available. Set LOOM_FUZZ_SECONDS to change the fuzzing time.
set -euo pipefail
cd "$(dirname "$0")/.."

PACKAGES=(
  build-essential cmake ninja-build pkg-config git
  libcaf-dev libzmq3-dev cppzmq-dev capnproto libcapnp-dev
  doctest-dev libyaml-cpp-dev libcli11-dev libspdlog-dev libfmt-dev nlohmann-json3-dev
  libcpp-httplib-dev libsqlite3-dev
  clang libclang-rt-14-dev
)

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
    echo "scripts/dev.sh: installing packages needs root (or sudo): $*" >&2; exit 2; fi
}

deps() {
  local missing=()
  for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    echo "== installing: ${missing[*]}"
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
  fi
}

build() {  # build PRESET [TARGET...]
  local preset=$1; shift
  local dir; dir=$(preset_dir "$preset")
  [ -f "$dir/build.ninja" ] || cmake --preset "$preset" >/dev/null
  if [ $# -gt 0 ]; then cmake --build --preset "$preset" --target "$@"; else cmake --build --preset "$preset"; fi
}

preset_dir() {
  case "$1" in ci|release) echo build ;; *) echo "build-$1" ;; esac
}

case "${1:-}" in
  deps) deps ;;
  demo)
    deps
    build release loom
    mkdir -p out
    echo "== loom run configs/food_truck.yaml   (planner, five specialists with tools, a writer; offline)"
    build/bin/loom run configs/food_truck.yaml
    echo
    cat out/launch_package.md
    echo
    echo "== the launch package is in out/launch_package.md"
    ;;
  test)
    deps
    build ci
    ctest --preset ci -j2
    echo "== build without CUDA (LOOM_CUDA=OFF)"
    build nocuda loom
    build-nocuda/bin/loom run -q configs/pipeline.yaml
    echo "== fuzzing the graph loader and validator, and the wire decoder, ${LOOM_FUZZ_SECONDS:-60}s each (ASan+UBSan)"
    build fuzz fuzz_graph fuzz_wire
    mkdir -p build-fuzz/corpus-graph build-fuzz/corpus-wire
    cp tests/configs/broken/*.yaml configs/*.yaml build-fuzz/corpus-graph/ 2>/dev/null || true
    for target in graph wire; do
      build-fuzz/bin/fuzz_$target -max_total_time="${LOOM_FUZZ_SECONDS:-60}" -max_len=4096 -timeout=10 \
        -rss_limit_mb=4096 build-fuzz/corpus-$target 2>&1 | tail -n 3
    done
    ;;
  *)
    sed -n '2,7p' "$0" | sed 's/^# \{0,1\}//'
    exit 2
    ;;
esac
