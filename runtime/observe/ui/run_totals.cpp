// runtime/observe/ui/run_totals.cpp: many runs of one graph summed into one report.
#include "loom/runtime/observe/ui/run_totals.hpp"

#include <algorithm>

namespace loom::observe::ui {

void run_totals::add(std::vector<local::node_stats>& into, const local::node_stats& s, bool with_gauges) const {
  auto it = std::find_if(into.begin(), into.end(), [&](const auto& t) { return t.node == s.node; });
  if (it == into.end()) {
    local::node_stats fresh{s.node, s.kind, 0, s.replicas};
    into.push_back(fresh);
    it = into.end() - 1;
  }
  it->in += s.in, it->out += s.out, it->busy_ns += s.busy_ns, it->restarts += s.restarts;
  it->dropped += s.dropped, it->late += s.late, it->rejected += s.rejected;
  it->queue_hwm = std::max(it->queue_hwm, s.queue_hwm);
  if (with_gauges) it->queued += s.queued;
}

void run_totals::update(std::size_t slot, const local::run_report& r) {
  std::lock_guard lock{m_};
  running_[slot] = r;
}

void run_totals::done(std::size_t slot, const local::run_report& r) {
  std::lock_guard lock{m_};
  running_.erase(slot);
  for (const auto& s : r.nodes) add(totals_, s, false);
  for (const auto& e : r.edges) {
    auto [it, fresh] = edges_.try_emplace(e.label, e);
    if (!fresh) it->second.blocked_ns += e.blocked_ns;
    it->second.blocked = false;  // it ended: nobody waits now
  }
  ++finished_;
  if (r.result != local::run_report::outcome::ok) ++failed_;
}

local::run_report run_totals::combined(double seconds) const {
  std::lock_guard lock{m_};
  local::run_report out;
  out.seconds = seconds;
  out.nodes = totals_;
  std::unordered_map<std::string, std::size_t> edge_at;
  auto add_edge = [&](const local::edge_stats& e, std::uint64_t blocked_ns, bool blocked) {
    auto [it, fresh] = edge_at.try_emplace(e.label, out.edges.size());
    if (fresh) {
      out.edges.push_back(e);
      out.edges.back().blocked_ns = 0;
      out.edges.back().blocked = false;
    }
    auto& x = out.edges[it->second];
    x.blocked_ns += blocked_ns;
    x.blocked = x.blocked || blocked;
  };
  for (const auto& [label, e] : edges_) add_edge(e, e.blocked_ns, false);
  for (const auto& [slot, r] : running_) {
    for (const auto& s : r.nodes) add(out.nodes, s, true);
    for (const auto& e : r.edges) add_edge(e, e.blocked_ns, e.blocked);
  }
  return out;
}

std::uint64_t run_totals::finished() const {
  std::lock_guard lock{m_};
  return finished_;
}

std::uint64_t run_totals::failed() const {
  std::lock_guard lock{m_};
  return failed_;
}

std::size_t run_totals::in_flight() const {
  std::lock_guard lock{m_};
  return running_.size();
}

}  // namespace loom::observe::ui
