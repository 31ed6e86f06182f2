// runtime/local/run_report.cpp: the summary table and the progress line.
#include "loom/runtime/run_report.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <fstream>
#include <map>

namespace loom::local {
namespace {

// One row per node: replicas summed, high-water marks maxed, in first-seen order.
std::vector<node_stats> per_node(const std::vector<node_stats>& instances) {
  std::vector<node_stats> rows;
  std::map<std::string, std::size_t> at;
  for (const auto& s : instances) {
    auto [it, fresh] = at.emplace(s.node, rows.size());
    if (fresh) {
      rows.push_back(s);
      continue;
    }
    auto& r = rows[it->second];
    r.in += s.in;
    r.out += s.out;
    r.busy_ns += s.busy_ns;
    r.queue_hwm = std::max(r.queue_hwm, s.queue_hwm);
    r.restarts += s.restarts;
    r.dropped += s.dropped;
    r.late += s.late;
    r.rejected += s.rejected;
  }
  return rows;
}

std::string busy(std::uint64_t ns) {
  if (ns >= 10'000'000'000ULL) return fmt::format("{:.1f}s", ns / 1e9);
  if (ns >= 10'000'000ULL) return fmt::format("{:.0f}ms", ns / 1e6);
  return fmt::format("{:.2f}ms", ns / 1e6);
}

}  // namespace

std::string run_report::table() const {
  auto rows = per_node(nodes);
  std::size_t wn = 4, wk = 4;
  for (const auto& r : rows) {
    wn = std::max(wn, r.node.size() + (r.replicas > 1 ? 4 : 0));
    wk = std::max(wk, r.kind.size());
  }
  std::string out = fmt::format("{:<{}}  {:<{}}  {:>10}  {:>10}  {:>9}  {:>9}  {:>8}\n", "node", wn, "kind", wk,
                                "in", "out", "busy", "queue hwm", "restarts");
  for (const auto& r : rows) {
    auto name = r.replicas > 1 ? fmt::format("{} x{}", r.node, r.replicas) : r.node;
    out += fmt::format("{:<{}}  {:<{}}  {:>10}  {:>10}  {:>9}  {:>9}  {:>8}", name, wn, r.kind, wk, r.in, r.out,
                       busy(r.busy_ns), r.queue_hwm, r.restarts);
    if (r.dropped > 0) out += fmt::format("  ({} dropped)", r.dropped);
    if (r.rejected > 0) out += fmt::format("  ({} calls refused or cancelled)", r.rejected);
    if (r.late > 0) out += fmt::format("  ({} late replies dropped)", r.late);
    out += "\n";
  }
  for (const auto& m : moved) out += fmt::format("moved: {}\n", m);
  return out;
}

std::uint64_t peak_rss_kib() {
  std::ifstream in("/proc/self/status");
  for (std::string line; std::getline(in, line);)
    if (line.rfind("VmHWM:", 0) == 0) return std::stoull(line.substr(6));
  return 0;
}

std::string run_report::progress_line() const {
  std::string out = fmt::format("[{:6.1f}s]", seconds);
  for (const auto& r : per_node(nodes)) out += fmt::format(" {}:{}/{}", r.node, r.in, r.out);
  return out;
}

}  // namespace loom::local
