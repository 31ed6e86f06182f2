// runtime/local/probes.hpp: what a node instance reports as it runs, beyond the counters of its run
// (node_counters, run_state.hpp): the calls a tool serves, and the spans of a traced run. The local runtime
// owns this interface and calls it; the observe module above it implements it (observe/node_probes.hpp:
// tool calls into the process's metrics registry, spans into the run's tracer), and whoever starts a run
// hands it over in run_options::probes. Null probes: nothing is reported.
//
// Costs on the hot path: a run not traced pays one pointer test per slice, as before; a traced slice makes
// three virtual calls (never one per value); a served call one or two.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

namespace loom::observe {
class span_buffer;  // the node's own spans (runtime/node.hpp: context::trace), passed through untouched
}

namespace loom::local {

using probe_clock = std::chrono::steady_clock;

// One node instance's reports. Made once per instance as its actor is made; used only from that actor's
// thread (one at a time), so an implementation needs no lock.
class instance_probe {
 public:
  virtual ~instance_probe() = default;

  // -- calls (every run) --------------------------------------------------------------------------------
  // This instance, tool `tool`, served one call (ok: it answered; not ok: it threw) in `seconds`.
  virtual void served(const std::string& tool, bool ok, double seconds) = 0;
  // A call to tool `tool` that never reached the tool's code: the tool was busy (counted by the tool).
  virtual void rejected(const std::string& tool) = 0;
  // A call to tool `tool` the caller gave up on (counted by the caller).
  virtual void timed_out(const std::string& tool) = 0;

  // -- spans (a traced run only: spans() is not null) ---------------------------------------------------
  // The buffer the node itself records into (context::trace: a model request's span); null: not traced.
  virtual observe::span_buffer* spans() = 0;
  // A fresh span id.
  virtual std::uint64_t new_span() = 0;
  // The span the node is inside now (a slice, a served call): what its own spans and calls are children
  // of. 0: the run's span.
  virtual std::uint64_t current() const = 0;
  virtual void set_current(std::uint64_t span) = 0;
  // A slice of the turn ended (then no span is current): a batch span when it handled `handled` values,
  // else a pull span when it pulled (`pulled`: values + 1), else nothing.
  virtual void slice(std::uint64_t span, probe_clock::time_point t0, probe_clock::time_point t1,
                     std::uint64_t handled, std::uint64_t pulled) = 0;
  // A call to `tool` made in span `parent` at `start` was answered now (ok, or `error`); the call's span
  // ends and `parent` is current again (the reply's handler continues where the call was made).
  virtual void call_span(std::uint64_t span, std::uint64_t parent, probe_clock::time_point start,
                         const std::string& tool, bool ok, const std::string& error) = 0;
  // This instance, tool `tool`, served a call from t0 to t1 under the caller's span `parent`.
  virtual void served_span(std::uint64_t span, std::uint64_t parent, probe_clock::time_point t0,
                           probe_clock::time_point t1, const std::string& tool, bool ok,
                           const std::string& error) = 0;
};

// A run's probes: one instance_probe per node instance. Shared by the run's actors (instance() may be
// called from several threads at once).
class run_probes {
 public:
  virtual ~run_probes() = default;
  // Instance `index` of the plan, named `name` ("node", "node[1]").
  virtual std::unique_ptr<instance_probe> instance(std::uint32_t index, std::string name) = 0;
};

}  // namespace loom::local
