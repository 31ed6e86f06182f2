// examples/food_truck/food_truck.cpp: the flagship graph (configs/food_truck.yaml) built in C++, validated and
// run in this process. It writes the same file as `loom run configs/food_truck.yaml`.
// Run from the repository root: build/bin/loom_example_food_truck
#include <caf/all.hpp>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <cstdio>

#include "actors/builtins.hpp"
#include "examples/food_truck/food_truck_graph.hpp"
#include "graph/validate.hpp"
#include "runtime/local/executor.hpp"

int main() {
  // Logs go to stderr, as with `loom`: stdout is for the summary.
  spdlog::set_default_logger(spdlog::stderr_color_mt("loom"));

  loom::registry kinds;
  loom::actors::register_builtins(kinds);

  auto g = loom::examples::food_truck_graph();
  loom::graph::diagnostics diags;
  loom::graph::validate(g, kinds, diags);
  if (diags.has_errors()) {
    std::fprintf(stderr, "%s", diags.str().c_str());
    return 2;
  }
  loom::graph::apply_defaults(g, kinds);

  caf::actor_system_config cfg;
  caf::actor_system system{cfg};
  auto report = loom::local::run_graph(system, g, kinds);
  if (report.result != loom::local::run_report::outcome::ok) {
    std::fprintf(stderr, "%s", report.table().c_str());
    std::fprintf(stderr, "run failed: %s\n", report.error.c_str());
    return 1;
  }
  std::printf("%s", report.table().c_str());
  std::printf("launch package: out/launch_package.md\n");
  return 0;
}
