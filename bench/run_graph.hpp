// bench/run_graph.hpp: validates, fills defaults and runs a built graph; throws when the run did not succeed
// (a benchmark of a failed run measures nothing).
#pragma once

#include <caf/all.hpp>

#include <cstdint>
#include <stdexcept>

#include "loom/graph/builder.hpp"
#include "loom/graph/validate.hpp"
#include "loom/runtime/local/executor.hpp"

namespace loom::bench {

// The benches' 4-stage pipeline: source.sequence -> flow.forward -> flow.forward -> sink.count, n ints.
inline graph::graph pipeline_graph(std::int64_t n) {
  graph::builder b("bench-pipeline");
  b.node("src", "source.sequence").param("count", n);
  b.node("a", "flow.forward");
  b.node("b", "flow.forward");
  b.node("sink", "sink.count").param("expect", n);
  b.chain({"src", "a", "b", "sink"});
  return b.build();
}

inline local::run_report run_ok(caf::actor_system& sys, const registry& kinds, graph::graph g,
                                const local::run_options& options = {}) {
  graph::diagnostics d;
  graph::validate(g, kinds, d);
  if (d.has_errors()) throw std::runtime_error(d.str());
  graph::apply_defaults(g, kinds);
  auto r = local::run_graph(sys, g, kinds, options);
  if (r.result != local::run_report::outcome::ok) throw std::runtime_error("bench run failed: " + r.error);
  return r;
}

}  // namespace loom::bench
