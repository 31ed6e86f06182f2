// runtime/cluster/hosts.hpp: where the hosts of a distributed run come from. A host source says which
// hosts there are (their CPUs, memory, GPUs and labels: what the planner needs), and, once a plan exists,
// makes sure a `loom worker` listens for each host and says where (its address) and with which keys.
// Implementations: a cluster file (workers started by hand; `file_hosts`) and a Slurm allocation (workers
// started as a job step with srun; runtime/cluster/slurm.hpp). Kubernetes would be one more.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "loom/graph/diagnostics.hpp"
#include "loom/runtime/cluster/driver.hpp"
#include "loom/runtime/placement/cluster.hpp"
#include "loom/runtime/placement/planner.hpp"

namespace loom::cluster {

class host_source {
 public:
  virtual ~host_source() = default;

  // For messages: "cluster file c.yaml", "Slurm job 42".
  virtual std::string describe() const = 0;

  // The hosts, their resources and labels, and the file the errors are about (for print_diagnostics).
  // Addresses may be placeholders until start_workers(). nullopt (errors in `diags`) when there are none.
  virtual std::optional<placement::cluster> hosts(graph::diagnostics& diags) = 0;

  // Called once a plan exists: makes sure a worker listens for every host of `c`, sets each host's
  // address, and the driver's keys in `o`. Returns an empty string, or why the workers cannot run.
  virtual std::string start_workers(placement::cluster& c, const placement::plan& p, driver_options& o) = 0;

  // Polled during the run: why the workers went away on their own (empty while they are there).
  virtual std::string workers_gone() { return {}; }

  // Stops what start_workers() started and removes what it made; idempotent, also run by the destructor.
  virtual void stop_workers() {}
};

// What a source that starts workers needs to know.
struct host_source_options {
  std::string loom;                  // the loom binary the workers run (default: this process's)
  std::vector<std::string> plugins;  // --plugin LIB, passed on to every worker
  // The command each worker task runs instead of `LOOM worker` (a Python driver's: `python3 -m loom.worker
  // --import MODULE`); the worker options follow it (--listen, --address-file, --name, --once, --key or
  // --insecure), the plugins do not. Empty: `LOOM worker`.
  std::vector<std::string> worker_command;
  std::string keys_parent;           // where the per-job key folder goes (Slurm; default: the working directory)
  std::chrono::milliseconds start_timeout{30000};  // for every worker to report its address
  std::function<void(const std::string&)> log;
  std::function<bool()> interrupted;  // polled while the workers start (SIGINT)
  // A cluster file without `security`: false, the per-user keys (transport::user_keypair(), as a worker
  // started without key options uses); true (`loom run --insecure`), plain TCP.
  bool insecure = false;
};

// `--cluster FILE`: the hosts of a cluster file; their workers were started by hand.
std::unique_ptr<host_source> file_hosts(const std::string& path, bool insecure = false);

// "slurm": the current Slurm allocation; anything else: a cluster file.
std::unique_ptr<host_source> make_host_source(const std::string& spec, const host_source_options& options);

}  // namespace loom::cluster
