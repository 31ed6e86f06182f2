// runtime/observe/run_metrics.cpp: run_report snapshots as Prometheus families (see run_metrics.hpp).
#include "loom/runtime/observe/run_metrics.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <random>

namespace loom::observe {

void append_run_families(std::vector<family>& out, const local::run_report& report, const std::string& graph,
                         const std::string& run) {
  auto node_family = [&](const char* name, const char* help, metric_type type, auto value) {
    family f{name, help, type, {}};
    for (const auto& n : report.nodes)
      f.samples.push_back({name,
                           {{"graph", graph}, {"node", n.node}, {"kind", n.kind}, {"instance", std::to_string(n.instance)}},
                           value(n)});
    out.push_back(std::move(f));
  };
  using ns = local::node_stats;
  node_family("loom_node_messages_in_total", "Values a node instance received.", metric_type::counter,
              [](const ns& n) { return static_cast<double>(n.in); });
  node_family("loom_node_messages_out_total", "Values a node instance emitted.", metric_type::counter,
              [](const ns& n) { return static_cast<double>(n.out); });
  node_family("loom_node_dropped_total", "Values emitted on an unconnected port or discarded by a stop.",
              metric_type::counter, [](const ns& n) { return static_cast<double>(n.dropped); });
  node_family("loom_node_restarts_total", "Times a node instance was restarted after a failure.", metric_type::counter,
              [](const ns& n) { return static_cast<double>(n.restarts); });
  node_family("loom_node_busy_seconds_total", "Time a node instance spent handling values.", metric_type::counter,
              [](const ns& n) { return static_cast<double>(n.busy_ns) / 1e9; });
  node_family("loom_node_queue_depth", "Values (or a tool's calls) waiting in a node instance's inbox now.",
              metric_type::gauge, [](const ns& n) { return static_cast<double>(n.queued); });
  family edges{"loom_edge_blocked_seconds_total",
               "Time a producer instance waited for credit on an edge (the edge was full): backpressure.",
               metric_type::counter,
               {}};
  for (const auto& e : report.edges)
    edges.samples.push_back({edges.name,
                             {{"graph", graph}, {"from", e.from}, {"to", e.to}, {"edge", e.label}},
                             static_cast<double>(e.blocked_ns) / 1e9});
  out.push_back(std::move(edges));
  out.push_back({"loom_run_info", "The run this process serves metrics for.", metric_type::gauge,
                 {{"loom_run_info", {{"graph", graph}, {"run", run}}, 1}}});
}

run_metrics::run_metrics(std::string graph, std::string run, registry& r)
    : registry_(r), graph_(std::move(graph)), run_(std::move(run)) {
  collector_ = registry_.add_collector([this](std::vector<family>& out) {
    std::lock_guard lock{mutex_};
    append_run_families(out, latest_, graph_, run_);
  });
}

run_metrics::~run_metrics() { registry_.remove_collector(collector_); }

void run_metrics::update(const local::run_report& report) {
  std::lock_guard lock{mutex_};
  latest_.nodes = report.nodes;
  latest_.edges = report.edges;
}

void run_metrics::update_instance(const local::node_stats& s) {
  std::lock_guard lock{mutex_};
  for (auto& n : latest_.nodes)
    if (n.node == s.node && n.instance == s.instance) {
      n = s;
      return;
    }
  latest_.nodes.push_back(s);
}

cluster_view::cluster_view(registry& r) : registry_(r) {
  collector_ = registry_.add_collector([this](std::vector<family>& out) {
    std::lock_guard lock{mutex_};
    for (const auto& [host, families] : by_host_) merge(out, families);
  });
}

cluster_view::~cluster_view() { registry_.remove_collector(collector_); }

void cluster_view::set(const std::string& host, std::string samples) {
  std::vector<family> parsed;
  try {
    parsed = parse_text(samples, {{"host", host}});  // parsed here, on arrival: a scrape only merges
  } catch (const std::exception& e) {
    spdlog::warn("metrics of host `{}` dropped: {}", host, e.what());
    return;
  }
  std::lock_guard lock{mutex_};
  by_host_[host] = std::move(parsed);
}

std::string new_run_id() {
  std::random_device rd;
  std::uint64_t v = (static_cast<std::uint64_t>(rd()) << 32) ^ rd();
  return fmt::format("{:016x}", v);
}

}  // namespace loom::observe
