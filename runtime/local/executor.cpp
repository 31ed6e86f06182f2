// runtime/local/executor.cpp: from a graph to running actors: expand replicas into instances, edges into
// links, spawn one actor per instance, wire them, start them, and wait until every one is done (or one
// fails, or the user interrupts).
#include "runtime/local/executor.hpp"

#include <caf/all.hpp>
#include <fmt/format.h>

#include <stdexcept>
#include <string_view>
#include <unordered_map>

#include "graph/ports.hpp"
#include "runtime/local/node_actor.hpp"

namespace loom::local {
namespace {

using clock = std::chrono::steady_clock;

node_stats stats_of(const instance_cfg& inst) {
  const auto& c = *inst.counters;
  return node_stats{inst.init.name, inst.kind, inst.init.instance, inst.init.replicas, c.in.load(), c.out.load(),
                    c.busy_ns.load(), c.queue_hwm.load(), c.restarts.load(), c.dropped.load()};
}

std::size_t port_index(const graph::port_lookup& r, const graph::edge& e) {
  if (!r.ok()) throw std::invalid_argument(fmt::format("{}: edge {} -> {}: {}", e.where.str(), e.from.str(),
                                                       e.to.str(), r.error()));
  return r.index();
}

}  // namespace

deployment::deployment() = default;
deployment::deployment(deployment&&) noexcept = default;
deployment& deployment::operator=(deployment&&) noexcept = default;
deployment::~deployment() = default;

deployment expand(const graph::graph& g, const registry& kinds) {
  deployment x;
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
      x.of_node.back().push_back(c->index);
      x.instances.push_back(std::move(c));
    }
  }
  // Name -> index once, so expanding a graph of thousands of nodes does not scan them per edge.
  std::unordered_map<std::string_view, std::size_t> by_name;
  for (std::size_t i = 0; i < g.nodes.size(); ++i) by_name.emplace(g.nodes[i].name, i);
  auto node_index = [&](const std::string& name) {
    auto it = by_name.find(name);
    if (it == by_name.end()) throw std::invalid_argument(fmt::format("edge to unknown node `{}`", name));
    return it->second;
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

std::string instance_name(const deployment& d, std::uint32_t instance) {
  const auto& init = d.instances.at(instance)->init;
  return init.replicas > 1 ? fmt::format("{}[{}]", init.name, init.instance) : init.name;
}

run_report run_graph(caf::actor_system& system, const graph::graph& g, const registry& kinds,
                     const run_options& options) {
  auto d = expand(g, kinds);
  return run_slice(system, d, options, slice_hooks{});
}

run_report run_slice(caf::actor_system& system, deployment& x, const run_options& options, const slice_hooks& hooks) {
  caf::scoped_actor self{system};
  auto local = [&](std::uint32_t i) { return !hooks.is_local || hooks.is_local(i); };
  std::vector<std::uint32_t> mine;
  for (std::uint32_t i = 0; i < x.instances.size(); ++i)
    if (local(i)) mine.push_back(i);

  std::vector<caf::actor> actors(x.instances.size());
  for (auto i : mine) {
    auto& inst = x.instances[i];
    inst->coordinator = caf::actor{self};
    actors[i] = inst->def->spec.blocking ? system.spawn<caf::detached>(node_actor_behavior, inst)
                                         : system.spawn(node_actor_behavior, inst);
  }
  if (mine.size() < x.instances.size()) {
    if (!hooks.stand_in) throw std::invalid_argument("run_slice: remote instances but no stand_in hook");
    auto locals = actors;
    for (std::uint32_t i = 0; i < x.instances.size(); ++i)
      if (!local(i)) actors[i] = hooks.stand_in(i, locals);
  }
  for (auto i : mine) self->send(actors[i], wire_msg{actors});

  run_report report;
  auto snapshot = [&](clock::time_point started) {
    report.nodes.clear();
    for (auto i : mine) report.nodes.push_back(stats_of(*x.instances[i]));
    report.seconds = std::chrono::duration<double>(clock::now() - started).count();
  };
  auto cancel_all = [&] {
    for (auto i : mine) self->send(actors[i], cancel_atom::value);
  };
  auto release_tools = [&] {
    for (auto i : mine)
      if (x.instances[i]->is_tool) self->send(actors[i], release_atom::value);
  };

  bool cancelling = false;
  if (hooks.before_start && !hooks.before_start(actors, caf::actor{self})) {
    cancelling = true;
    report.result = run_report::outcome::failed;
    report.error = "the run was cancelled before it started";
    cancel_all();
  } else {
    for (auto i : mine) self->send(actors[i], start_atom::value);
  }
  auto started = clock::now();

  std::size_t remaining = mine.size();
  // Tools serve calls until every other node is done; then they are released to finish.
  std::size_t callers_left = 0;
  for (auto i : mine) callers_left += x.instances[i]->is_tool ? 0 : 1;
  if (callers_left == 0 && hooks.release_tools_locally) release_tools();
  auto last_progress = clock::now();
  while (remaining > 0) {
    self->receive(
        [&](done_msg& d) {
          --remaining;
          auto& inst = *x.instances.at(d.instance);
          if (hooks.on_done) hooks.on_done(d.instance, d.failed, d.error, stats_of(inst));
          if (!inst.is_tool && --callers_left == 0 && hooks.release_tools_locally) release_tools();
          if (d.failed && report.result != run_report::outcome::failed) {
            report.result = run_report::outcome::failed;
            report.error = std::move(d.error);
          }
          if (d.failed && !cancelling) {
            cancelling = true;
            cancel_all();
          }
        },
        [&](cancel_atom) {
          if (!cancelling) {
            cancelling = true;
            if (report.result == run_report::outcome::ok) report.result = run_report::outcome::interrupted;
            cancel_all();
          }
        },
        [&](release_atom) { release_tools(); },
        caf::after(std::chrono::milliseconds(50)) >> [&] {});
    if (!cancelling && options.interrupted && options.interrupted()) {
      cancelling = true;
      if (report.result == run_report::outcome::ok) report.result = run_report::outcome::interrupted;
      cancel_all();
    }
    if (options.on_progress && clock::now() - last_progress >= options.progress_every) {
      last_progress = clock::now();
      snapshot(started);
      options.on_progress(report);
    }
  }
  snapshot(started);
  report.peak_rss_kib = peak_rss_kib();
  return report;
}

}  // namespace loom::local
