// runtime/cluster/session.hpp: one distributed run from the driver's side, start to end, as every caller
// (`loom run FILE --cluster C`, loom::runtime::run_cluster) goes through it: the host source (a cluster
// file, or a Slurm allocation) says which hosts there are; the planner places the graph on them; the
// source makes sure a worker listens for each host (Slurm starts them as a job step) and hands the driver
// its keys; the driver runs the graph (run_distributed, driver.hpp); the source stops what it started. A
// source whose workers go away on their own mid-run (the Slurm step ended) ends the run, which then fails
// naming the source.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "loom/graph/diagnostics.hpp"
#include "loom/runtime/cluster/driver.hpp"
#include "loom/runtime/cluster/hosts.hpp"

namespace loom::cluster {

class session {
 public:
  // `spec`: "slurm" (the current allocation) or a cluster file.
  session(const std::string& spec, const host_source_options& options);
  ~session();  // stops the workers if stop() was not called
  session(const session&) = delete;
  session& operator=(const session&) = delete;

  // For messages: "cluster file c.yaml", "Slurm job 42".
  std::string describe() const { return source_->describe(); }

  // The hosts, their resources and labels; null with the errors in `diags` (about the cluster file or the
  // allocation).
  const placement::cluster* hosts(graph::diagnostics& diags);

  // The plan of `g` (validated, defaults applied) on the hosts; null with the errors in `diags` (about the
  // graph). After hosts().
  const placement::plan* plan(const graph::graph& g, const graph::kind_catalog& kinds, graph::diagnostics& diags);

  // Starts the workers, runs `g` as planned and returns its report. `o` gets its keys and the cluster's
  // message size from the source; its `interrupted` is polled as given and also ends the run once the
  // workers went away on their own (the report then fails: "Slurm job 42: the worker step ended ...").
  // When the workers cannot start, the report fails saying why and started() is false. After plan().
  local::run_report run(const graph::graph& g, driver_options o);
  bool started() const { return started_; }

  // Stops what the source started and removes what it made; idempotent.
  void stop();

 private:
  std::unique_ptr<host_source> source_;
  std::optional<placement::cluster> hosts_;
  std::optional<placement::plan> plan_;
  bool started_ = false;
};

}  // namespace loom::cluster
