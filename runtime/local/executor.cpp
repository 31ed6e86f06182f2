// runtime/local/executor.cpp: from a graph to running actors: expand replicas into instances, edges into
// links, spawn one actor per instance, wire them, start them, and wait until every one is done (or one
// fails, or the user interrupts).
#include "runtime/local/executor.hpp"

#include <caf/all.hpp>
#include <fmt/format.h>

#include <stdexcept>

#include "graph/ports.hpp"
#include "runtime/local/node_actor.hpp"

namespace loom::local {
namespace {

using clock = std::chrono::steady_clock;

struct expanded {
  std::vector<std::shared_ptr<instance_cfg>> instances;
  std::vector<std::unique_ptr<node_counters>> counters;
  std::vector<std::vector<std::uint32_t>> of_node;  // node index -> its instance indices
};

std::size_t port_index(const graph::port_lookup& r, const graph::edge& e) {
  if (!r.ok()) throw std::invalid_argument(fmt::format("{}: edge {} -> {}: {}", e.where.str(), e.from.str(),
                                                       e.to.str(), r.error()));
  return r.index();
}

expanded expand(const graph::graph& g, const registry& kinds, const caf::actor& coordinator) {
  expanded x;
  for (const auto& n : g.nodes) {
    const kind_def* def = kinds.find(n.kind);
    if (!def) throw std::invalid_argument(fmt::format("unknown kind `{}` of node `{}`", n.kind, n.name));
    auto outputs = def->spec.output_ports(n.params);
    x.of_node.emplace_back();
    for (int i = 0; i < n.replicas; ++i) {
      auto c = std::make_shared<instance_cfg>();
      c->index = static_cast<std::uint32_t>(x.instances.size());
      c->kind = n.kind;
      c->max_restarts = n.restarts;
      c->def = def;
      c->init = node_init{n.name, i, n.replicas, loom::params{to_value(n.params).as_map()}, outputs.size()};
      for (const auto& p : def->spec.inputs) c->input_names.push_back(p.name);
      c->is_tool = def->spec.call.has_value();
      c->out_ports.resize(outputs.size());
      x.counters.push_back(std::make_unique<node_counters>());
      c->counters = x.counters.back().get();
      c->coordinator = coordinator;
      x.of_node.back().push_back(c->index);
      x.instances.push_back(std::move(c));
    }
  }
  auto node_index = [&](const std::string& name) {
    for (std::size_t i = 0; i < g.nodes.size(); ++i)
      if (g.nodes[i].name == name) return i;
    throw std::invalid_argument(fmt::format("edge to unknown node `{}`", name));
  };
  for (const auto& e : g.edges) {
    auto a = node_index(e.from.node), b = node_index(e.to.node);
    const auto& from_spec = kinds.find(g.nodes[a].kind)->spec;
    const auto& to_spec = kinds.find(g.nodes[b].kind)->spec;
    auto out_port = port_index(graph::find_output(from_spec, g.nodes[a].params, e.from.port), e);
    auto in_port = port_index(graph::find_input(to_spec, e.to.port), e);
    auto capacity = g.capacity_of(e);
    auto label = fmt::format("{}.{} -> {}.{}", e.from.node, from_spec.output_ports(g.nodes[a].params)[out_port].name,
                             e.to.node, to_spec.inputs[in_port].name);
    for (auto pi : x.of_node[a]) {
      auto& producer = *x.instances[pi];
      out_edge_cfg oe;
      for (auto ci : x.of_node[b]) {
        auto& consumer = *x.instances[ci];
        // Link ids are each side's own index, so every lookup on the hot path is a vector index. The
        // producer's side is numbered below, once its port layout is final.
        oe.links.push_back(out_link_cfg{ci, static_cast<link_id>(consumer.in_links.size()), capacity});
        consumer.in_links.push_back(in_link_cfg{in_port, pi, 0, capacity, label});
      }
      producer.out_ports[out_port].push_back(std::move(oe));
    }
  }
  for (std::size_t a = 0; a < g.nodes.size(); ++a) {
    for (const auto& tool : g.nodes[a].tools) {
      auto t = node_index(tool);
      tool_cfg tc{tool, &kinds.find(g.nodes[t].kind)->spec, x.of_node[t]};
      if (!tc.kind->call) throw std::invalid_argument(fmt::format("node `{}` is not a tool", tool));
      for (auto i : x.of_node[a]) x.instances[i]->tools.push_back(tc);
    }
  }
  // A producer numbers its out-links in port order, then edge order, then replica: as node_host::wire()
  // lays them out.
  for (auto& inst : x.instances) {
    link_id next = 0;
    for (auto& edges : inst->out_ports)
      for (auto& edge : edges)
        for (auto& l : edge.links) x.instances[l.consumer]->in_links[l.remote].remote = next++;
  }
  return x;
}

}  // namespace

run_report run_graph(caf::actor_system& system, const graph::graph& g, const registry& kinds,
                     const run_options& options) {
  caf::scoped_actor self{system};
  auto x = expand(g, kinds, caf::actor{self});

  std::vector<caf::actor> actors;
  actors.reserve(x.instances.size());
  for (auto& inst : x.instances)
    actors.push_back(inst->def->spec.blocking ? system.spawn<caf::detached>(node_actor_behavior, inst)
                                              : system.spawn(node_actor_behavior, inst));
  for (auto& a : actors) self->send(a, wire_msg{actors});
  auto started = clock::now();
  for (auto& a : actors) self->send(a, start_atom::value);

  run_report report;
  auto snapshot = [&] {
    report.nodes.clear();
    for (auto& inst : x.instances) {
      const auto& c = *inst->counters;
      report.nodes.push_back(node_stats{inst->init.name, inst->kind, inst->init.instance, inst->init.replicas,
                                        c.in.load(), c.out.load(), c.busy_ns.load(), c.queue_hwm.load(),
                                        c.restarts.load(), c.dropped.load()});
    }
    report.seconds = std::chrono::duration<double>(clock::now() - started).count();
  };
  auto cancel_all = [&] {
    for (auto& a : actors) self->send(a, cancel_atom::value);
  };

  std::size_t remaining = actors.size();
  // Tools serve calls until every other node is done; then they are released to finish.
  std::size_t callers_left = 0;
  for (auto& inst : x.instances) callers_left += inst->is_tool ? 0 : 1;
  auto release_tools = [&] {
    for (std::size_t i = 0; i < actors.size(); ++i)
      if (x.instances[i]->is_tool) self->send(actors[i], release_atom::value);
  };
  if (callers_left == 0) release_tools();
  bool cancelling = false;
  auto last_progress = clock::now();
  while (remaining > 0) {
    self->receive(
        [&](done_msg& d) {
          --remaining;
          if (!x.instances.at(d.instance)->is_tool && --callers_left == 0) release_tools();
          if (d.failed && report.result != run_report::outcome::failed) {
            report.result = run_report::outcome::failed;
            report.error = std::move(d.error);
          }
          if (d.failed && !cancelling) {
            cancelling = true;
            cancel_all();
          }
        },
        caf::after(std::chrono::milliseconds(50)) >> [&] {});
    if (!cancelling && options.interrupted && options.interrupted()) {
      cancelling = true;
      if (report.result == run_report::outcome::ok) report.result = run_report::outcome::interrupted;
      cancel_all();
    }
    if (options.on_progress && clock::now() - last_progress >= options.progress_every) {
      last_progress = clock::now();
      snapshot();
      options.on_progress(report);
    }
  }
  snapshot();
  report.peak_rss_kib = peak_rss_kib();
  return report;
}

}  // namespace loom::local
