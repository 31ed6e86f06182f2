// runtime/cluster/driver.hpp: `loom run FILE --cluster C`: plans, deploys each worker's part, starts the
// run, and gathers every instance's end and counters; it is not on the data path (workers link to each
// other directly). Heartbeats find a lost worker within `heartbeat_timeout`: the run then fails with a
// report naming the host and the nodes lost, and the other workers are told to stop.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "loom/graph/graph.hpp"
#include "loom/runtime/run_report.hpp"
#include "loom/runtime/placement/cluster.hpp"
#include "loom/runtime/placement/planner.hpp"
#include "loom/runtime/local/executor.hpp"
#include "loom/runtime/local/snapshot.hpp"
#include "loom/runtime/registry.hpp"
#include "loom/runtime/transport/keys.hpp"

namespace loom::observe {
class tracer;
}

namespace loom::cluster {

struct driver_options {
  const registry* kinds = nullptr;
  std::optional<transport::curve_keypair> curve;  // this driver's client keys (curve only)
  std::string server_key;                          // the workers' shared public key (curve, one shared pair)
  std::map<std::string, std::string> host_keys;    // host name -> its own public key (curve, a pair per host)
  std::string user_keys;  // set: `curve` is the per-user pair at this prefix (for the messages of a refusal)
  std::int64_t max_message_bytes = std::int64_t{64} << 20;  // ZMQ_MAXMSGSIZE
  std::chrono::milliseconds connect_timeout{10000};
  // The window of a link between two hosts: it gets at least this capacity, so that values in flight
  // cover the network's round trip (docs/cluster.md, "Windows across hosts"). 0: every link keeps its
  // edge's capacity.
  std::uint32_t link_window = 65536;
  std::chrono::milliseconds heartbeat_every{500};
  // 5 s: a 2 s network outage plus TCP's retransmission backoff (RTO from 200 ms, doubling) can hold
  // the first heartbeat after it up to ~3.5 s after the last one delivered; that must not count as lost.
  std::chrono::milliseconds heartbeat_timeout{5000};
  std::function<bool()> interrupted;
  std::function<void(const local::run_report&)> on_progress;
  // Set (`--metrics`): every heartbeat asks the workers for their metrics, and each echo's samples (the
  // Prometheus text format) come here with the worker's host; once every instance is done, one more round
  // collects the final values before the run ends.
  std::function<void(const std::string& host, const std::string& samples)> on_samples;
  std::function<void(const std::string&)> log;
  // The run's tracer (--trace, --otlp) or null: its context goes to the workers, their spans come back.
  std::shared_ptr<observe::tracer> trace;
  // Durable runs (docs/durability.md, "Cluster runs"): every `snapshot_every` (zero: never) the driver asks
  // every worker for epoch n; once it holds every instance's part the snapshot goes to `on_snapshot` (on the
  // driver's thread; it must not block long). One epoch at a time; one that a move or a lost worker
  // interrupts is dropped, as is one not complete within max(10 s, 10 intervals).
  std::chrono::milliseconds snapshot_every{0};
  std::function<void(std::shared_ptr<const local::snapshot>)> on_snapshot;
  // Decisions (docs/durability.md, "People in the loop"): polled every ~50 ms; each goes to the worker of its
  // instance (ctl::decide), which hands it on as run_options::poll_decisions does in one process. A worker's
  // word that an instance asked for one (ctl::asked) brings the next snapshot forward, so the pending decision
  // is in the state file at once.
  std::function<std::vector<local::routed_decision>()> poll_decisions;
  // Stop the run (outcome paused) once a snapshot shows it waits for people only (local::is_quiet over the
  // assembled snapshot): every worker is told to cancel, and the state keeps the run.
  bool detach_on_pause = false;
  // A resumed run: every instance starts from its part (deployed with it to the instance's host). A worker
  // still busy with the run that died (it gives it up after its driver's silence) is asked again until the
  // connect timeout.
  std::shared_ptr<const local::snapshot> restore;
};

// Runs `g` (validated, defaults applied; `yaml` is its file text, sent to the workers) as planned.
local::run_report run_distributed(const graph::graph& g, const std::string& yaml, const placement::cluster& c,
                                  const placement::plan& p, const driver_options& options);

}  // namespace loom::cluster
