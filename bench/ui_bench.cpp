// bench/ui_bench.cpp: what the live view (runtime/observe/ui) costs: the Graphviz layout made once at start,
// and one progress tick (a run report turned into the JSON snapshot) for chains of N nodes with 2 replicas
// each. Prints a markdown table for bench/RESULTS.md: `build/bin/loom_ui_bench`.
#include <fmt/format.h>

#include <chrono>
#include <cstdio>

#include "loom/graph/builder.hpp"
#include "loom/runtime/observe/ui/ui_server.hpp"

namespace {

using clock_type = std::chrono::steady_clock;

double ms_since(clock_type::time_point t) {
  return std::chrono::duration<double, std::milli>(clock_type::now() - t).count();
}

}  // namespace

int main() {
  std::printf("| nodes (instances) | layout, once (ms) | SVG (KiB) | one tick: snapshot (ms) | snapshot (KiB) |\n");
  std::printf("|---:|---:|---:|---:|---:|\n");
  for (int n : {10, 100, 1000}) {
    loom::graph::builder b("chain");
    b.node("n0", "source.sequence");
    for (int i = 1; i < n; ++i) {
      b.node(fmt::format("n{}", i), "flow.forward").replicas(2);
      b.edge(fmt::format("n{}", i - 1), fmt::format("n{}", i));
    }
    auto g = b.build();
    auto t = clock_type::now();
    loom::observe::ui::ui_server ui(g, {});
    double layout = ms_since(t);
    loom::local::run_report r;
    for (int i = 0; i < n; ++i)
      for (int k = 0; k < (i == 0 ? 1 : 2); ++k) {
        loom::local::node_stats s{fmt::format("n{}", i), i == 0 ? "source.sequence" : "flow.forward", k, i == 0 ? 1 : 2};
        s.in = s.out = 1000u * static_cast<unsigned>(i);
        s.queued = 7;
        r.nodes.push_back(s);
      }
    for (int i = 1; i < n; ++i)
      for (int k = 0; k < (i == 1 ? 1 : 2); ++k)
        r.edges.push_back(loom::local::edge_stats{fmt::format("n{}[{}]", i - 1, k), fmt::format("n{}", i - 1),
                                                  fmt::format("n{}", i),
                                                  fmt::format("n{}.out -> n{}.in", i - 1, i), 1000, k == 0});
    constexpr int ticks = 50;
    t = clock_type::now();
    for (int i = 0; i < ticks; ++i) {
      r.seconds = 0.5 * (i + 1);
      ui.publish(r);
    }
    double tick = ms_since(t) / ticks;
    std::printf("| %d (%zu) | %.1f | %.0f | %.3f | %.0f |\n", n, r.nodes.size(), layout, ui.svg().size() / 1024.0,
                tick, ui.snapshot().size() / 1024.0);
  }
  return 0;
}
