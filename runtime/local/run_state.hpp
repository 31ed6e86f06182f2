// runtime/local/run_state.hpp: what one run changes while it runs: every instance's counters, the table of
// actors, the stop flag and the stop hooks of blocking kinds. The coordinator and every actor of the run
// hold it by shared_ptr, so it lives as long as the last of them (an actor never touches freed counters,
// whenever it runs after reporting).
#pragma once

#include <caf/all.hpp>

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <vector>

#include "loom/runtime/local/probes.hpp"
#include "loom/runtime/run_report.hpp"
#include "loom/runtime/value.hpp"

namespace loom::local {

struct snapshot;

// Where a test may inject a failure: right after the node's handler returned, before what it did is
// committed (its emissions sent, its input consumed, its checkpoint kept).
enum class fault_site { start, message, pull, reply, close, finish, timer, decision };
// Throws to inject; `attempt` is the instance's restart count so far.
using fault_hook = std::function<void(std::uint32_t instance, fault_site, int attempt)>;

class run_state {
 public:
  run_state(std::size_t instances, std::size_t edges);

  node_counters& counters(std::uint32_t i) { return counters_[i]; }
  const node_counters& counters(std::uint32_t i) const { return counters_[i]; }
  // A producer instance's edge (deployment::edges numbering).
  edge_counters& edge(std::uint32_t id) { return edges_[id]; }
  const edge_counters& edge(std::uint32_t id) const { return edges_[id]; }

  // Instance i's actor, or its stand-in on another host. Filled before any actor gets a message; read-only
  // after, so actors read it without a lock.
  std::vector<caf::actor> actors;
  // Instance i lives on another host (actors[i] is its stand-in). Filled with `actors`.
  std::vector<char> remote;
  // A movable instance's egress on this host (everything it sends to other hosts goes through it, in its
  // order, so that its credits can wait for its outputs' acknowledgements); empty for the others. Set
  // before the instance is spawned.
  std::vector<caf::actor> egress;
  bool distributed = false;  // a slice of a cluster run (some instances live elsewhere)
  caf::actor coordinator;
  fault_hook inject;  // tests only; empty in a real run
  std::shared_ptr<run_probes> probes;  // what instances report beyond their counters (probes.hpp); null: none
  std::shared_ptr<const snapshot> restore;  // a resumed run: each instance's part (snapshot.hpp); else null
  // run_options::on_last_checkpoint: a stateful instance's checkpoint as it finishes; empty: none.
  std::function<void(std::uint32_t instance, const value& checkpoint)> on_last_checkpoint;

  // True once the run is being stopped (SIGINT, a failure): read by ctx.stopping().
  bool stopping() const { return stopping_.load(std::memory_order_relaxed); }
  // Sets the flag and runs every registered stop hook (on the caller's thread), once.
  void stop();
  // A blocking kind's hook to abort in-flight work (an agent closes its HTTP connection); runs on another
  // thread. Cleared before the node it points into is destroyed.
  void set_stop_hook(std::uint32_t instance, std::function<void()> hook);
  void clear_stop_hook(std::uint32_t instance);

 private:
  std::unique_ptr<node_counters[]> counters_;
  std::unique_ptr<edge_counters[]> edges_;
  std::atomic<bool> stopping_{false};
  std::mutex m_;
  std::vector<std::function<void()>> hooks_;
};

}  // namespace loom::local
