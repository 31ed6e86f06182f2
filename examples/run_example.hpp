// examples/run_example.hpp: what an example's main() does with the graph it built: validate it against the
// built-in kinds, run it in this process, and print the per-node summary (stderr). Returns the exit status
// `loom run` would: 0, 1 when the run failed, 2 when the graph is invalid.
#pragma once

#include <caf/all.hpp>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <cstdio>

#include "loom/actors/builtins.hpp"
#include "loom/graph/validate.hpp"
#include "loom/runtime/local/executor.hpp"

namespace loom::examples {

inline int run_example(graph::graph g) {
  spdlog::set_default_logger(spdlog::stderr_color_mt("loom"));  // as with `loom`: stdout is the graph's
  registry kinds;
  actors::register_builtins(kinds);
  graph::diagnostics diags;
  graph::validate(g, kinds, diags);
  if (diags.has_errors()) {
    std::fprintf(stderr, "%s", diags.str().c_str());
    return 2;
  }
  graph::apply_defaults(g, kinds);

  caf::actor_system_config cfg;
  caf::actor_system system{cfg};
  auto report = local::run_graph(system, g, kinds);
  std::fflush(stdout);
  std::fprintf(stderr, "%s", report.table().c_str());
  if (report.result != local::run_report::outcome::ok) {
    std::fprintf(stderr, "run failed: %s\n", report.error.c_str());
    return 1;
  }
  return 0;
}

}  // namespace loom::examples
