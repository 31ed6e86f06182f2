// examples/builder/triage.cpp: build a graph in C++, validate it, run it in this process, print the summary.
// Run from the repository root: build/bin/loom_example_triage
#include <caf/all.hpp>

#include <cstdio>

#include "actors/builtins.hpp"
#include "examples/builder/triage_graph.hpp"
#include "graph/validate.hpp"
#include "runtime/local/executor.hpp"

int main() {
  loom::registry kinds;
  loom::actors::register_builtins(kinds);

  auto g = loom::examples::triage_graph();
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
  std::fflush(stdout);
  std::fprintf(stderr, "%s", report.table().c_str());
  if (report.result != loom::local::run_report::outcome::ok) {
    std::fprintf(stderr, "run failed: %s\n", report.error.c_str());
    return 1;
  }
  return 0;
}
