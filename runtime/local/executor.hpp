// runtime/local/executor.hpp: runs a validated graph in this process. Every node instance is a CAF actor;
// every edge is bounded by credits (the consumer returns them as it works), so memory is bounded by the
// edge capacities, not by the message count. Values travel in batches: everything a node emits on an edge
// while handling one batch goes out as one CAF message.
//
// A run is a plan (plan.hpp: expand() once, share it, run it any number of times) and a run state
// (run_state.hpp: counters, actors, the stop flag) that lives as long as the last actor of the run.
// A distributed run uses the same code per host: run_slice() runs the instances placed here and lets the
// caller put a stand-in actor (runtime/transport) in place of every instance placed elsewhere.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <vector>

#include "loom/graph/graph.hpp"
#include "loom/runtime/local/messages.hpp"
#include "loom/runtime/local/plan.hpp"
#include "loom/runtime/run_report.hpp"
#include "loom/runtime/local/run_state.hpp"
#include "loom/runtime/local/snapshot.hpp"
#include "loom/runtime/registry.hpp"

namespace caf {
class actor_system;
class actor;
}  // namespace caf

namespace loom::local {

// A decision for pending decision `id` of instance `instance` (node.hpp: context::ask).
struct routed_decision {
  std::uint32_t instance = 0;
  std::uint64_t id = 0;
  decision d;
};

struct run_options {
  // Polled by the coordinator; when it returns true the run stops: sinks flush and the report says
  // interrupted. (The CLI sets it from SIGINT.)
  std::function<bool()> interrupted;
  // Called every `progress_every` with the counts so far.
  std::function<void(const run_report&)> on_progress;
  std::chrono::milliseconds progress_every{500};
  // Tests: throws to inject a failure into a node's attempt (run_state.hpp).
  fault_hook inject;
  // What the run's instances report beyond their counters: a tool's calls, a traced run's spans
  // (probes.hpp; observe::probes_for makes them). Null: nothing (one pointer test per slice).
  std::shared_ptr<run_probes> probes;
  // Consistent snapshots (snapshot.hpp, docs/durability.md): every `snapshot_every` (zero: never) the
  // coordinator takes one and hands it, complete, to `on_snapshot` on its own thread. One at a time: a
  // tick while one is being taken is skipped. A slice of a cluster run takes none this way: its driver
  // starts the epochs (slice_hooks::on_part).
  std::chrono::milliseconds snapshot_every{0};
  std::function<void(std::shared_ptr<const snapshot>)> on_snapshot;
  // A resumed run: every instance starts from its part of this snapshot of the same deployment (a null
  // part: that instance starts fresh).
  std::shared_ptr<const snapshot> restore;
  // Each stateful instance (instance_plan::stateful) that finishes gives its last committed checkpoint here,
  // on its own actor's thread, just before it reports its end (a null value: it took none). `loom serve`
  // keeps a conversation's agents this way (docs/durability.md, "Threads").
  std::function<void(std::uint32_t instance, const value& checkpoint)> on_last_checkpoint;
  // Decisions (docs/durability.md, "People in the loop"): polled by the coordinator about every 50 ms;
  // each goes to its instance (one for an id no longer pending is dropped there, counted as late). An
  // instance that asks for a decision makes the coordinator take a snapshot at once.
  std::function<std::vector<routed_decision>()> poll_decisions;
  // Stop the run (outcome paused) once a snapshot shows it waits for people only: decisions pending, every
  // instance idle (snapshot.hpp). Needs snapshots (snapshot_every); the snapshot is on_snapshot's.
  bool detach_on_pause = false;
};

// How a host takes part in a distributed run. Default-constructed: everything is local.
struct slice_hooks {
  // Which instances run here; unset: all.
  std::function<bool(std::uint32_t instance)> is_local;
  // Makes the stand-in for remote instance `instance`, once the local actors exist (local[i] is set for
  // every local instance).
  std::function<caf::actor(std::uint32_t instance, const std::vector<caf::actor>& local)> stand_in;
  // Called once everything is spawned and wired, before the start: `all[i]` is instance i's local actor
  // or stand-in, `coordinator` takes cancel_atom and release_atom from outside. Returning false cancels.
  std::function<bool(const std::vector<caf::actor>& all, const caf::actor& coordinator)> before_start;
  // Each local instance's end, with its counters. `cancelled`: stopped before its input ended.
  std::function<void(std::uint32_t instance, instance_end end, const std::string& error, const node_stats&)> on_done;
  // A movable instance placed (or adopted) here gets an egress actor for its messages to other hosts;
  // unset: none (everything is local).
  std::function<caf::actor(std::uint32_t instance)> egress;
  // An instance adopted into the running slice (adopt_msg to the coordinator: its host was lost), spawned
  // and not yet started: the host routes its messages to `actor` from now on.
  std::function<void(std::uint32_t instance, const caf::actor& actor)> adopted;
  // A cluster run with --state (docs/durability.md, "Cluster runs"): the coordinator takes snapshot_msg{n}
  // from outside (the worker, at the driver's word) and asks each local instance for its part of epoch n;
  // every part comes here, on the coordinator's thread, as complete (a finished instance's too). An
  // instance that takes its part at a barrier before the driver's word reaches this host gives it all the
  // same. Unset: the slice takes no snapshots (run_options::snapshot_every is for one process).
  std::function<void(std::uint64_t epoch, std::shared_ptr<const instance_part> part)> on_part;
  // A local instance asked for a decision (or took one): the driver takes a snapshot soon, so the decision
  // is in the state file (`loom approve` decides only what a snapshot shows). Called on the coordinator's thread.
  std::function<void()> on_asked;
  // The slice stays up after its own instances are done, until release_atom (or a cancel): a distributed
  // run with movable instances, where this host may yet adopt one (every caller done: none can move).
  bool hold_until_release = false;
  // Whether this host releases its tools once its own callers are done (single process), or waits for
  // release_atom (a distributed run, where callers may be elsewhere).
  bool release_tools_locally = true;
};

// Runs `g` (validated, with defaults applied) to the end: every source done, every sink drained.
// Never throws for a node's failure: the report says which node failed on which input.
run_report run_graph(caf::actor_system& system, const graph::graph& g, const registry& kinds,
                     const run_options& options = {});

// Runs the local instances of `plan` until each is done. The report lists the local instances only.
// Every wait ends: an actor that exits without reporting (an exception the runtime did not catch, a kill)
// fails the run naming its node, kind and reason.
run_report run_slice(caf::actor_system& system, std::shared_ptr<const deployment> plan, const run_options& options,
                     const slice_hooks& hooks = {});

}  // namespace loom::local
