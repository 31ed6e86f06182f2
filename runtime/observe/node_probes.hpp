// runtime/observe/node_probes.hpp: the observe side of a run's probes (runtime/local/probes.hpp, which the
// local runtime owns and calls). Every run: a tool's calls into the metrics registry
// (loom_tool_calls_total{tool,status}, loom_tool_call_seconds{tool}). A traced run: every instance's spans
// (slices, calls, served calls) into its own span_buffer of the run's tracer (trace.hpp).
//
// Whoever starts a run wires it: `run_options::probes = observe::probes_for(tracer)` (tracer null: not
// traced, the tool calls still counted).
#pragma once

#include <memory>
#include <string>

#include "loom/runtime/local/probes.hpp"
#include "loom/runtime/observe/metrics.hpp"
#include "loom/runtime/observe/trace.hpp"

namespace loom::observe {

class node_probes final : public local::run_probes {
 public:
  // `trace` null: not traced. Tool calls count into `r`.
  explicit node_probes(std::shared_ptr<tracer> trace = {}, registry& r = metrics());
  const std::shared_ptr<tracer>& trace() const { return trace_; }
  std::unique_ptr<local::instance_probe> instance(std::uint32_t index, std::string name) override;

 private:
  std::shared_ptr<tracer> trace_;
  registry& registry_;
};

// The probes of a run: its tool calls counted in the process's registry, its spans recorded in `trace`
// when it is set.
std::shared_ptr<local::run_probes> probes_for(std::shared_ptr<tracer> trace = {});

}  // namespace loom::observe
