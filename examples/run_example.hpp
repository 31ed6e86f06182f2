// examples/run_example.hpp: what an example's main() does with the graph it built: run it in this process
// with a loom::runtime (which validates it against the built-in kinds first) and print the per-node summary
// (stderr). Returns the exit status `loom run` would: 0, 1 when the run failed, 2 when the graph is invalid.
#pragma once

#include <cstdio>

#include "loom/loom.hpp"

namespace loom::examples {

inline int run_example(graph::graph g) {
  loom::runtime rt({.log_level = "info"});
  try {
    auto report = rt.run(std::move(g));
    std::fflush(stdout);
    std::fprintf(stderr, "%s", report.table().c_str());
    if (!report.ok()) {
      std::fprintf(stderr, "run failed: %s\n", report.error.c_str());
      return 1;
    }
    return 0;
  } catch (const loom::graph_error& e) {
    std::fprintf(stderr, "%s", e.diagnostics().str().c_str());
    return 2;
  }
}

}  // namespace loom::examples
