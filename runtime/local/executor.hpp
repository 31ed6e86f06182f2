// runtime/local/executor.hpp: runs a validated graph in this process. Every node instance is a CAF actor;
// every edge is bounded by credits (the consumer returns them as it works), so memory is bounded by the
// edge capacities, not by the message count. Values travel in batches: everything a node emits on an edge
// while handling one batch goes out as one CAF message.
#pragma once

#include <chrono>
#include <functional>

#include "graph/graph.hpp"
#include "runtime/local/run_report.hpp"
#include "runtime/registry.hpp"

namespace caf {
class actor_system;
}

namespace loom::local {

struct run_options {
  // Polled by the coordinator; when it returns true the run stops: sinks flush and the report says
  // interrupted. (The CLI sets it from SIGINT.)
  std::function<bool()> interrupted;
  // Called every `progress_every` with the counts so far.
  std::function<void(const run_report&)> on_progress;
  std::chrono::milliseconds progress_every{500};
};

// Runs `g` (validated, with defaults applied) to the end: every source done, every sink drained.
// Never throws for a node's failure: the report says which node failed on which input.
run_report run_graph(caf::actor_system& system, const graph::graph& g, const registry& kinds,
                     const run_options& options = {});

}  // namespace loom::local
