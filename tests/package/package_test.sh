#!/usr/bin/env bash
# tests/package/package_test.sh BUILD SOURCE MODE: loom as a library, the way a user gets it.
#   install   cmake --install BUILD to a fresh prefix; examples/embed, copied out of the tree, configured with
#             only find_package(loom) against that prefix, built and run; a program built with pkg-config's
#             flags alone, run
#   deb       cpack -G DEB: the loom and loom-dev packages (their Depends named), extracted with dpkg -x, and
#             the same consumer built and run against the extracted files
#   subdir    a consumer that adds loom's source tree with add_subdirectory, built and run
set -euo pipefail
build=$(cd "$1" && pwd) source=$(cd "$2" && pwd) mode=$3
work=$(mktemp -d /tmp/loom-package.XXXXXX)
trap 'rm -rf "$work"' EXIT
launcher=()
command -v ccache >/dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
export CCACHE_BASEDIR=$work CCACHE_NOHASHDIR=1

consumer() {  # consumer PREFIX LIBDIR: examples/embed from a copy outside the tree, against PREFIX
  local prefix=$1 libdir=$2
  cp -r "$source/examples/embed" "$work/embed"
  cmake -S "$work/embed" -B "$work/embed-build" -G Ninja -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_PREFIX_PATH="$prefix" "${launcher[@]}" > "$work/configure.log" || { cat "$work/configure.log"; exit 1; }
  cmake --build "$work/embed-build"
  # The program finds libloom.so through the package's paths only (no loom build folder on any path).
  LD_LIBRARY_PATH="$libdir" "$work/embed-build/embed_example"
  rm -rf "$work/embed" "$work/embed-build"
}

case $mode in
  install)
    cmake --install "$build" --prefix "$work/prefix" > "$work/install.log"
    for f in bin/loom lib/libloom.so include/loom/loom.hpp include/loom/version.hpp include/loom/embed/runtime.hpp \
             include/loom/runtime/node.hpp include/loom/graph/builder.hpp lib/cmake/loom/loomConfig.cmake \
             lib/cmake/loom/loomConfigVersion.cmake lib/pkgconfig/loom.pc; do
      [ -e "$work/prefix/$f" ] || { echo "the install lacks $f"; exit 1; }
    done
    # Internal headers stay out: every subfolder of runtime/, graph/detail, actors/, kernels/.
    for d in include/loom/runtime/local include/loom/runtime/transport include/loom/graph/detail include/loom/actors \
             include/loom/kernels; do
      [ ! -e "$work/prefix/$d" ] || { echo "the install has internal headers: $d"; exit 1; }
    done
    ! grep -rl 'caf/' "$work/prefix/include/loom" || { echo "a public header names CAF"; exit 1; }
    "$work/prefix/bin/loom" --version | grep -q "loom $(sed -n 's/#define LOOM_VERSION_STRING "\(.*\)"/\1/p' "$work/prefix/include/loom/version.hpp")"
    consumer "$work/prefix" "$work/prefix/lib"
    # A kind library (examples/plugin) built against the install with loom::headers, loaded by the installed
    # loom with --plugin: it resolves loom's symbols from the process.
    cp -r "$source/examples/plugin" "$work/plugin"
    cat > "$work/plugin/CMakeLists.txt" <<'CMAKE'
cmake_minimum_required(VERSION 3.25)
project(upper_plugin LANGUAGES CXX)
find_package(loom 0.2 CONFIG REQUIRED)
add_library(upper SHARED upper.cpp)
target_link_libraries(upper PRIVATE loom::headers)
CMAKE
    cmake -S "$work/plugin" -B "$work/plugin-build" -G Ninja -DCMAKE_PREFIX_PATH="$work/prefix" "${launcher[@]}" \
      > "$work/configure.log" || { cat "$work/configure.log"; exit 1; }
    cmake --build "$work/plugin-build"
    "$work/prefix/bin/loom" run "$work/plugin/upper.yaml" --plugin "$work/plugin-build/libupper.so" -q | tee "$work/upper.out"
    [ "$(grep -c "upper says: HELLO FROM A PLUGIN" "$work/upper.out")" = 3 ] || { echo "the plugin did not run"; exit 1; }
    # pkg-config alone: a one-file program.
    cat > "$work/pc.cpp" <<'CPP'
#include <loom/loom.hpp>
#include <cstdio>
int main() {
  loom::runtime rt;
  loom::graph::builder b("pc");
  b.node("src", "source.sequence").param("count", 10);
  b.node("out", "sink.count").param("expect", 10);
  b.chain({"src", "out"});
  auto r = rt.run(b.build());
  std::printf("pkg-config program: %s, loom %s\n", r.ok() ? "ok" : r.error.c_str(), loom::version());
  return r.ok() ? 0 : 1;
}
CPP
    flags=$(PKG_CONFIG_PATH="$work/prefix/lib/pkgconfig" pkg-config --cflags --libs loom)
    # shellcheck disable=SC2086
    g++ "$work/pc.cpp" -o "$work/pc" $flags
    LD_LIBRARY_PATH="$work/prefix/lib" "$work/pc"
    ;;
  deb)
    (cd "$work" && cpack -G DEB --config "$build/CPackConfig.cmake" -B "$work/deb" > "$work/cpack.log") ||
      { cat "$work/cpack.log"; exit 1; }
    ls "$work/deb"/*.deb
    runtime_deb=$(ls "$work/deb"/loom_*.deb) dev_deb=$(ls "$work/deb"/loom-dev_*.deb)
    dpkg-deb -f "$runtime_deb" Depends | tee "$work/depends"
    grep -q libcaf "$work/depends" && grep -q libzmq "$work/depends" || { echo "loom's Depends miss CAF or ZeroMQ"; exit 1; }
    dpkg-deb -f "$dev_deb" Depends | grep -q "loom (= " || { echo "loom-dev does not depend on loom"; exit 1; }
    dpkg -x "$runtime_deb" "$work/root"
    dpkg -x "$dev_deb" "$work/root"
    [ -x "$work/root/usr/bin/loom" ] || { echo "the loom package has no /usr/bin/loom"; exit 1; }
    # The package config's paths are relative to itself: it works where the files were extracted.
    consumer "$work/root/usr" "$work/root/usr/lib"
    ;;
  subdir)
    mkdir -p "$work/sub"
    cp "$source/examples/embed/main.cpp" "$work/sub/"
    cat > "$work/sub/CMakeLists.txt" <<CMAKE
cmake_minimum_required(VERSION 3.25)
project(loom_subdir_consumer LANGUAGES CXX)
add_subdirectory("$source" loom)
add_executable(embed_example main.cpp)
target_link_libraries(embed_example PRIVATE loom::loom)
CMAKE
    cmake -S "$work/sub" -B "$work/sub-build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DLOOM_CUDA=OFF "${launcher[@]}" \
      > "$work/configure.log" || { cat "$work/configure.log"; exit 1; }
    cmake --build "$work/sub-build" --target embed_example > "$work/build.log" || { tail -40 "$work/build.log"; exit 1; }
    "$work/sub-build/embed_example"
    ;;
  *) echo "mode: install, deb or subdir" >&2; exit 2 ;;
esac
