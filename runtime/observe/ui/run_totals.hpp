// runtime/observe/ui/run_totals.hpp: the counts of many runs of one graph as one report, for the live view
// of `loom serve` (each request is its own short run): the runs that finished, summed, plus the latest
// counts of each run in flight (one per slot). Thread-safe; update() and done() only add numbers, the
// report is put together when asked (the live view's tick), not per request.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "loom/runtime/run_report.hpp"

namespace loom::observe::ui {

class run_totals {
 public:
  // The latest progress of the run in `slot`.
  void update(std::size_t slot, const local::run_report& r);
  // The run in `slot` ended with these counts: they join the totals.
  void done(std::size_t slot, const local::run_report& r);
  // Every node's counts over the finished runs and those in flight (queue depths and credit waits: the runs
  // in flight only); `seconds` is the report's time.
  local::run_report combined(double seconds) const;
  std::uint64_t finished() const;
  std::uint64_t failed() const;
  std::size_t in_flight() const;

 private:
  void add(std::vector<local::node_stats>& into, const local::node_stats& s, bool with_gauges) const;
  mutable std::mutex m_;
  std::vector<local::node_stats> totals_;  // per node, in first-seen order
  std::map<std::string, local::edge_stats> edges_;  // per edge label, finished runs: credit waits summed
  std::map<std::size_t, local::run_report> running_;
  std::uint64_t finished_ = 0, failed_ = 0;
};

}  // namespace loom::observe::ui
