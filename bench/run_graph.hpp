// bench/run_graph.hpp: validates, fills defaults and runs a built graph; throws when the run did not succeed
// (a benchmark of a failed run measures nothing).
#pragma once

#include <caf/all.hpp>

#include <stdexcept>

#include "graph/validate.hpp"
#include "runtime/local/executor.hpp"

namespace loom::bench {

inline local::run_report run_ok(caf::actor_system& sys, const registry& kinds, graph::graph g) {
  graph::diagnostics d;
  graph::validate(g, kinds, d);
  if (d.has_errors()) throw std::runtime_error(d.str());
  graph::apply_defaults(g, kinds);
  auto r = local::run_graph(sys, g, kinds);
  if (r.result != local::run_report::outcome::ok) throw std::runtime_error("bench run failed: " + r.error);
  return r;
}

}  // namespace loom::bench
