// runtime/cluster/protocol.hpp: what the two ends of a run's control link, the driver and each worker,
// share: the settings of their endpoints (name on the wire, keys, the cluster's message size), and the
// way an instance's counters and an edge's waits travel in the control messages (`done`, `progress`) and
// come back into the run's report. The messages themselves are transport::control (codec.hpp).
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "loom/runtime/run_report.hpp"
#include "loom/runtime/transport/endpoint.hpp"

namespace loom::cluster {

// An endpoint named `name` on the wire, with `curve` (unset: plain TCP), whose sockets refuse parts over
// `max_message_bytes` (ZMQ_MAXMSGSIZE) and whose decoder's header limit is capped to it.
transport::endpoint_config control_endpoint(std::string name, const std::optional<transport::curve_keypair>& curve,
                                            std::int64_t max_message_bytes);

// An instance's counters as a worker sends them (done, progress), and back into the driver's report
// (`queued` is not among them: it travels beside them in progress).
transport::control::counters counters_of(const local::node_stats& s);
void set_counters(local::node_stats& s, const transport::control::counters& c);

// An edge's wait for credit as a worker sends it (progress), and back into the driver's live view.
transport::control::edge_progress edge_progress_of(const local::edge_stats& e);
local::edge_stats edge_stats_of(const transport::control::edge_progress& e);

}  // namespace loom::cluster
