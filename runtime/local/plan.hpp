// runtime/local/plan.hpp: a graph expanded for running: one instance per node replica, with its links,
// tools and kind. The plan is one immutable value, built once and shared (shared_ptr<const deployment>)
// by every actor of a run and by every run of it (`loom serve` expands once). What a run changes while it
// runs (counters, the actor table, the stop flag) is the run's state, `run_state.hpp`, never the plan.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "loom/graph/graph.hpp"
#include "loom/runtime/registry.hpp"
#include "loom/runtime/value.hpp"

namespace loom::local {

using link_id = std::uint32_t;  // a link is one edge between one producer and one consumer instance

// What a value weighs against a link's byte budget: the 16 bytes of the value, plus its payload's bytes
// (string, bytes, tensor data; lists and maps summed). Scalars cost no more than the tag check.
inline std::int64_t link_bytes(const value& v) {
  return v.kind() < value::type::string ? 16 : 16 + static_cast<std::int64_t>(v.payload_size());
}
// The link_bytes of a run of values, summed.
inline std::int64_t link_bytes(std::span<const value> vs) {
  std::int64_t b = 0;
  for (const auto& v : vs) b += link_bytes(v);
  return b;
}

// One link as the producer sees it: the consumer instance and the consumer's index for this link.
struct out_link_plan {
  std::uint32_t consumer;  // instance index
  link_id remote;          // the consumer's in_links index
  std::int64_t capacity;
  // A byte budget (0: none): the values held for this link (queued to go and sent, not yet credited) stop
  // taking more once their estimated bytes (link_bytes) reach it. Links across hosts get one with their
  // window (cluster::widen_remote_links), so a window of many values never holds as many large ones.
  std::int64_t bytes = 0;
};
// The links of one edge: one per consumer replica; a value goes to one of them.
struct out_edge_plan {
  std::vector<out_link_plan> links;
  std::uint32_t id = 0;  // this producer instance's edge among all of the run (deployment::edges)
  // The graph file sets this edge's capacity (on the edge, or `defaults.capacity`): a bound the user chose,
  // which a link across hosts keeps too (else it gets the run's window, docs/cluster.md).
  bool sized = false;
};
// One link as the consumer sees it.
struct in_link_plan {
  std::size_t port;        // input port index
  std::uint32_t producer;  // instance index
  link_id remote;          // the producer's out-link index, for credits
  std::int64_t capacity;
  std::string label;       // "src.out -> fwd.in", for errors
  std::int64_t bytes = 0;  // the link's byte budget (out_link_plan::bytes): credits go back by half of it too
};
// A tool a node may call: its instances (a call goes to one of them, round robin).
struct tool_plan {
  std::string name;
  const graph::kind_spec* kind = nullptr;
  std::vector<std::uint32_t> instances;
};

struct instance_plan {
  std::uint32_t index = 0;  // among all instances of the run
  std::string kind;
  int max_restarts = 0;
  const kind_def* def = nullptr;
  node_init init;
  std::vector<std::string> input_names;
  std::vector<std::vector<out_edge_plan>> out_ports;  // per output port, its edges
  std::vector<in_link_plan> in_links;
  std::vector<tool_plan> tools;
  bool is_tool = false;         // its kind declares a call: it lives until released, serving calls
  // `recover: replace`: may move to another host mid-run. Its outputs carry lineage tags, its credits are
  // effect acknowledgements, and its producers keep what it has not credited (docs/cluster.md).
  bool movable = false;
  bool blocking = false;        // its own thread (kind_spec::blocks for its params), one value per slice
  bool stateful = false;        // holds state across values (kind_spec::holds_state for its params)
  std::size_t max_pending = 0;  // a tool: the calls it holds at most, queued and running
};

// One producer instance's edge, for counters and views (out_edge_plan::id indexes these).
struct edge_plan {
  std::uint32_t producer = 0;  // instance index
  std::string to_node;         // the consumer node
  std::string label;           // "src.out -> fwd.in"
};

// The whole run's plan, numbered the same on every host of a distributed run.
struct deployment {
  std::vector<instance_plan> instances;
  std::vector<std::vector<std::uint32_t>> of_node;  // node index -> its instance indexes
  std::vector<edge_plan> edges;                     // every producer instance's edges
};

// Throws std::invalid_argument for a graph that did not pass validate().
deployment expand(const graph::graph& g, const registry& kinds);

// The name "node" or "node[i]" of an instance, for reports.
std::string instance_name(const deployment& d, std::uint32_t instance);

}  // namespace loom::local
