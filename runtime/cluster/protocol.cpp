// runtime/cluster/protocol.cpp: the control endpoint's settings and the counters and edges of the control
// messages, for the driver and the worker alike.
#include "loom/runtime/cluster/protocol.hpp"

namespace loom::cluster {

transport::endpoint_config control_endpoint(std::string name, const std::optional<transport::curve_keypair>& curve,
                                            std::int64_t max_message_bytes) {
  transport::endpoint_config cfg;
  cfg.name = std::move(name);
  cfg.curve = curve;
  cfg.max_part_bytes = max_message_bytes;
  cfg.limits.max_header_bytes = static_cast<std::size_t>(max_message_bytes);
  return cfg;
}

transport::control::counters counters_of(const local::node_stats& s) {
  return transport::control::counters{s.in, s.out, s.busy_ns, s.queue_hwm, s.restarts, s.dropped};
}

void set_counters(local::node_stats& s, const transport::control::counters& c) {
  s.in = c.in, s.out = c.out, s.busy_ns = c.busy_ns;
  s.queue_hwm = c.queue_hwm, s.restarts = c.restarts, s.dropped = c.dropped;
}

transport::control::edge_progress edge_progress_of(const local::edge_stats& e) {
  return {e.from, e.from_node, e.to, e.label, e.blocked_ns, e.blocked};
}

local::edge_stats edge_stats_of(const transport::control::edge_progress& e) {
  return {e.from, e.from_node, e.to, e.label, e.blocked_ns, e.blocked};
}

}  // namespace loom::cluster
