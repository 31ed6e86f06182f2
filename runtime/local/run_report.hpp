// runtime/local/run_report.hpp: what a run did, per node instance: messages in and out, busy time, the
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
  std::atomic<std::uint64_t> late{0};      // tool replies that came after their call timed out (dropped)
  std::atomic<std::uint64_t> rejected{0};  // a tool: calls refused (max_pending) or cancelled before they ran
};

struct node_stats {
  std::string node;
  std::string kind;
  int instance = 0;
  int replicas = 1;
  std::uint64_t in = 0, out = 0, busy_ns = 0, queue_hwm = 0, restarts = 0, dropped = 0, late = 0, rejected = 0;
};

struct run_report {
  enum class outcome { ok, failed, interrupted };
  outcome result = outcome::ok;
  std::string error;  // for failed: which node, which input, what
  double seconds = 0;
  std::uint64_t peak_rss_kib = 0;  // the process's peak resident memory (VmHWM): set by `loom run`, not by the executor
  std::vector<node_stats> nodes;

  // The per-node summary table (one row per node; replicas summed, hwm maxed).
  std::string table() const;
  // One line of per-node counts for the progress display.
  std::string progress_line() const;
};

// This process's peak resident set (VmHWM from /proc/self/status; unlike getrusage it starts fresh at
// exec), in KiB; 0 where unknown.
std::uint64_t peak_rss_kib();

}  // namespace loom::local
