// runtime/observe/run_metrics.hpp: a run's node and edge families, from the snapshots the executor already
// makes (run_options::on_progress, every progress_every, and the final report): nothing on the hot path.
//   loom_node_messages_in_total, _out_total, _dropped_total, _restarts_total, loom_node_busy_seconds_total
//   {graph,node,kind,instance}; loom_node_queue_depth (gauge); loom_edge_blocked_seconds_total
//   {graph,from,to,edge}; loom_run_info{graph,run} 1.
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "loom/runtime/run_report.hpp"
#include "loom/runtime/observe/metrics.hpp"

namespace loom::observe {

// Appends the families of `report` (instances as they are in it: one sample per node instance).
void append_run_families(std::vector<family>& out, const local::run_report& report, const std::string& graph,
                         const std::string& run);

// Keeps the latest report of a run and serves it through a collector of `r` while it lives.
class run_metrics {
 public:
  run_metrics(std::string graph, std::string run, registry& r = metrics());
  ~run_metrics();
  run_metrics(const run_metrics&) = delete;
  run_metrics& operator=(const run_metrics&) = delete;
  // From the progress callback, and once with the final report.
  void update(const local::run_report& report);
  // One instance's final counters (a worker's on_done): replaces that instance's entry.
  void update_instance(const local::node_stats& s);

 private:
  registry& registry_;
  std::string graph_, run_;
  std::mutex mutex_;
  local::run_report latest_;
  std::uint64_t collector_ = 0;
};

// The driver's view of a cluster run: each worker's latest samples (pushed with its heartbeat echoes),
// served through a collector of `r` with a `host` label added, while it lives. Samples that cannot be read
// are dropped with a warning naming the host.
class cluster_view {
 public:
  explicit cluster_view(registry& r = metrics());
  ~cluster_view();
  cluster_view(const cluster_view&) = delete;
  cluster_view& operator=(const cluster_view&) = delete;
  void set(const std::string& host, std::string samples);

 private:
  registry& registry_;
  std::mutex mutex_;
  std::map<std::string, std::vector<family>> by_host_;
  std::uint64_t collector_ = 0;
};

// A random 64-bit run id in hex, for a run that has none of its own (a local run).
std::string new_run_id();

}  // namespace loom::observe
