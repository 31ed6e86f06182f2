// runtime/placement/explain.cpp: a plan as text: where each instance runs and why, each edge's links local
// or remote, and the instances per host.
#include <fmt/format.h>

#include <algorithm>

#include "loom/runtime/placement/planner.hpp"

namespace loom::placement {

namespace {

std::string instance_name(const graph::graph& g, const placed_instance& x) {
  const auto& n = g.nodes[x.node];
  return n.replicas > 1 ? fmt::format("{}[{}]", n.name, x.instance) : n.name;
}

std::string where_text(const cluster& c, const placed_instance& x) {
  if (x.host < 0) return "(not placed)";
  if (x.gpus.empty()) return fmt::format("{} / cpu", c.hosts[x.host].name);
  std::string gpus;
  for (int k : x.gpus) gpus += fmt::format("{}{}", gpus.empty() ? "" : ",", k);
  return fmt::format("{} / gpu {}", c.hosts[x.host].name, gpus);
}

}  // namespace

std::string explain(const plan& p, const graph::graph& g, const cluster& c) {
  std::size_t name_width = 4, where_width = 13;
  for (const auto& x : p.instances) {
    name_width = std::max(name_width, instance_name(g, x).size());
    where_width = std::max(where_width, where_text(c, x).size());
  }
  std::string out = fmt::format("plan of graph `{}` on cluster `{}`: {} instances on {} hosts\n\n", g.name, c.name,
                                p.instances.size(), c.hosts.size());
  out += fmt::format("{:<{}}  {:<{}}  {}\n", "node", name_width, "host / device", where_width, "why");
  for (const auto& x : p.instances)
    out += fmt::format("{:<{}}  {:<{}}  {}\n", instance_name(g, x), name_width, where_text(c, x), where_width, x.reason);

  out += fmt::format("\nlinks: {} local, {} remote\n", p.links.size() - p.remote_links, p.remote_links);
  for (const auto& l : p.links) {
    const auto& from = p.instances[l.from];
    const auto& to = p.instances[l.to];
    std::string hosts = l.local ? (from.host >= 0 ? c.hosts[from.host].name : "?")
                                : fmt::format("{} -> {}", from.host >= 0 ? c.hosts[from.host].name : "?",
                                              to.host >= 0 ? c.hosts[to.host].name : "?");
    out += fmt::format("  {} -> {}  {}{} ({})\n", instance_name(g, from), instance_name(g, to),
                       l.local ? "local" : "remote", l.same_device ? ", same GPU" : "", hosts);
  }

  out += "\nper host:\n";
  for (std::size_t h = 0; h < c.hosts.size(); ++h) {
    int count = h < p.instances_per_host.size() ? p.instances_per_host[h] : 0;
    out += fmt::format("  {:<{}}  {} instance{}  ({})\n", c.hosts[h].name, name_width, count, count == 1 ? "" : "s",
                       c.hosts[h].address);
  }
  return out;
}

}  // namespace loom::placement
