// runtime/cluster/worker.hpp: `loom worker`: one per host. It listens, takes one run at a time from a
// driver (deploy: the graph and the plan), runs the instances placed on it with the local executor, puts
// a stand-in in place of every instance placed elsewhere, opens its data links to the other workers
// directly, and reports each instance's end to the driver. When the driver goes silent it abandons the
// run and waits for the next.
#pragma once

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "loom/runtime/registry.hpp"
#include "loom/runtime/transport/keys.hpp"

namespace loom::cluster {

enum class scheduler_policy { sharing, stealing };

struct worker_options {
  std::string listen;  // tcp://HOST:PORT
  std::string name;    // on the wire; default: derived from the address
  std::optional<transport::curve_keypair> curve;  // this host's own CurveZMQ key pair; unset: plain TCP
  // z85 public keys of the drivers allowed to deploy here (curve only; empty: this host's own key, the
  // shared-key setup). The peers of a run are allowed from its deploy on, for data only.
  std::vector<std::string> allowed_clients;
  // Set when `curve` is the per-user pair (transport::user_keypair(), no key options given): its path, for
  // the log. Only drivers of the same user can read it.
  std::string user_keys;
  // Plain TCP, no authentication: without it a worker given no `curve` uses the per-user pair
  // (transport::user_keypair()), so only its own user's drivers get in. With it, it says first that it runs
  // without authentication.
  bool insecure = false;
  std::int64_t max_message_bytes = std::int64_t{64} << 20;  // ZMQ_MAXMSGSIZE of every socket
  const registry* kinds = nullptr;
  std::chrono::milliseconds driver_silence{5000};  // abandon a run after this long without a heartbeat (see driver.hpp)
  std::function<bool()> stopping;                   // polled: true ends the worker (SIGINT)
  std::function<void(const std::string&)> log;      // one line per event
  std::function<void(const std::string&)> on_listening;  // the address bound (PORT 0: the port chosen)
  bool once = false;  // leave after one run (workers a driver started for its own run: Slurm)
  // How the run's actors share the worker's scheduler threads (CAF's policies). `sharing`: one queue under
  // a lock, an idle thread sleeps on a condition variable until work comes: a worker idle between runs
  // wakes for nothing, and a busy one leaves the cores to its endpoint's and ZeroMQ's I/O threads.
  // `stealing`: a queue per thread, an idle thread polls (spinning, then sleeping 50 us at a time): what
  // `loom run` uses, faster within one process, but on a host whose I/O threads compete for the cores the
  // polling takes their time (docs/cluster.md, "A worker's threads sleep when idle").
  scheduler_policy scheduler = scheduler_policy::sharing;
};

// Serves runs until `stopping()`. Returns 0, or 2 when it cannot or may not listen (the error is logged).
int run_worker(const worker_options& options);

// Whether tcp://HOST:PORT names a loopback address (127.0.0.0/8, ::1, localhost): for the INSECURE line,
// which says who can reach a worker without keys.
bool loopback_address(const std::string& address);

}  // namespace loom::cluster
