// runtime/local/node_actor.hpp: the CAF actor that hosts one node instance. It owns the node's input
// queue, the credits of its output links, and the node's own object (made by the kind's factory); it
// calls the node one message at a time and never lets the queue of any edge exceed its capacity.
#pragma once

#include <caf/all.hpp>

#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "runtime/local/messages.hpp"
#include "runtime/local/run_report.hpp"
#include "runtime/registry.hpp"

namespace loom::local {

// One link as the producer sees it: the consumer instance and the consumer's index for this link.
struct out_link_cfg {
  std::uint32_t consumer;  // instance index
  link_id remote;          // the consumer's in_links index
  std::int64_t capacity;
};
// The links of one edge: one per consumer replica; a value goes to one of them.
struct out_edge_cfg {
  std::vector<out_link_cfg> links;
};
// One link as the consumer sees it.
struct in_link_cfg {
  std::size_t port;        // input port index
  std::uint32_t producer;  // instance index
  link_id remote;          // the producer's out-link index, for credits
  std::int64_t capacity;
  std::string label;       // "src.out -> fwd.in", for errors
};

// A tool this node may call: its instances (a call goes to one of them, round robin).
struct tool_cfg {
  std::string name;
  const graph::kind_spec* kind = nullptr;
  std::vector<std::uint32_t> instances;
};

struct instance_cfg {
  std::uint32_t index = 0;  // among all instances of the run
  std::string kind;
  int max_restarts = 0;
  const kind_def* def = nullptr;
  node_init init;
  std::vector<std::string> input_names;
  std::vector<std::vector<out_edge_cfg>> out_ports;  // per output port, its edges
  std::vector<in_link_cfg> in_links;
  std::vector<tool_cfg> tools;
  bool is_tool = false;  // its kind declares a call: it lives until released, serving calls
  node_counters* counters = nullptr;
  caf::actor coordinator;
};

caf::behavior node_actor_behavior(caf::event_based_actor* self, std::shared_ptr<instance_cfg> cfg);

}  // namespace loom::local
