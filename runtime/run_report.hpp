// runtime/run_report.hpp: what a run did, per node instance: messages in and out, busy time, the
// high-water mark of its input queue, restarts. Printed as the summary table at the end of `loom run`.
#pragma once

#include <atomic>
#include <cstdint>
#include <string>
#include <vector>

namespace loom::local {

// Live counters of one node instance: written by its actor only (relaxed), read by the progress display.
struct node_counters {
  std::atomic<std::uint64_t> in{0};
  std::atomic<std::uint64_t> out{0};
  std::atomic<std::uint64_t> busy_ns{0};
  std::atomic<std::uint64_t> queue_hwm{0};
  std::atomic<std::uint64_t> restarts{0};
  std::atomic<std::uint64_t> dropped{0};  // emitted on an unconnected port, or discarded by a stop
  std::atomic<std::uint64_t> late{0};      // tool replies after their call timed out, decisions after theirs ended (dropped)
  std::atomic<std::uint64_t> rejected{0};  // a tool: calls refused (max_pending) or cancelled before they ran
  std::atomic<std::uint64_t> queued{0};    // values (or a tool's calls) waiting in its inbox now: a gauge
};

// Live counters of one producer instance's edge (written by the producer only, relaxed): how long the edge
// was full (no link of it with credit left) while its producer ran, i.e. how long the producer could not
// place a value there. Backpressure made visible.
struct edge_counters {
  std::atomic<std::uint64_t> blocked_ns{0};      // finished waits, summed
  std::atomic<std::int64_t> blocked_since_ns{0};  // steady-clock ns when the current wait began; 0: not waiting
};

struct node_stats {
  std::string node;
  std::string kind;
  int instance = 0;
  int replicas = 1;
  std::uint64_t in = 0, out = 0, busy_ns = 0, queue_hwm = 0, restarts = 0, dropped = 0, late = 0, rejected = 0;
  std::uint64_t queued = 0;
};

// One edge as one producer instance sees it (a node with replicas has one per replica).
struct edge_stats {
  std::string from;       // the producer instance, "node" or "node[i]"
  std::string from_node;  // the producer's node
  std::string to;         // the consumer node
  std::string label;      // "src.out -> fwd.in"
  std::uint64_t blocked_ns = 0;  // waited for credit so far, the current wait included
  bool blocked = false;          // waiting now
};

struct run_report {
  // paused: stopped while it waited for people only (run_options::detach_on_pause); its state file resumes it.
  enum class outcome { ok, failed, interrupted, paused };
  outcome result = outcome::ok;
  std::string error;  // for failed: which node, which input, what
  double seconds = 0;
  std::uint64_t peak_rss_kib = 0;  // the process's peak resident memory (VmHWM): set by `loom run`, not by the executor
  std::vector<node_stats> nodes;
  std::vector<edge_stats> edges;  // the local producers' edges
  // A distributed run: the instances that moved off a lost host, "pace (host `b` -> `a`)", in order.
  std::vector<std::string> moved;

  bool ok() const { return result == outcome::ok; }

  // The per-node summary table (one row per node; replicas summed, hwm maxed).
  std::string table() const;
  // One line of per-node counts for the progress display.
  std::string progress_line() const;
};

// This process's peak resident set (VmHWM from /proc/self/status; unlike getrusage it starts fresh at
// exec), in KiB; 0 where unknown.
std::uint64_t peak_rss_kib();

}  // namespace loom::local

namespace loom {
// The names a program embedding loom uses (embed/runtime.hpp).
using run_report = local::run_report;
using node_stats = local::node_stats;
using edge_stats = local::edge_stats;
}  // namespace loom
