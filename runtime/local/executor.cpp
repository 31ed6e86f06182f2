// runtime/local/executor.cpp: from a graph to running actors: expand replicas into instances, edges into
// links, spawn one actor per instance, wire them, start them, and wait until every one is done (or one
// fails, or the user interrupts).
#include "loom/runtime/local/executor.hpp"

#include <caf/all.hpp>
#include <fmt/format.h>

#include <stdexcept>
#include <string_view>
#include <unordered_map>

#include "loom/graph/ports.hpp"
#include "loom/runtime/local/node_actor.hpp"

namespace loom::local {
namespace {

using clock = std::chrono::steady_clock;

node_stats stats_of(const instance_plan& inst, const node_counters& c) {
  return node_stats{inst.init.name, inst.kind, inst.init.instance, inst.init.replicas, c.in.load(), c.out.load(),
                    c.busy_ns.load(), c.queue_hwm.load(), c.restarts.load(), c.dropped.load(), c.late.load(),
                    c.rejected.load(), c.queued.load()};
}

edge_stats edge_stats_of(const deployment& x, std::uint32_t id, const edge_counters& c, std::int64_t now_ns) {
  const auto& e = x.edges[id];
  edge_stats s{instance_name(x, e.producer), x.instances[e.producer].init.name, e.to_node, e.label,
               c.blocked_ns.load(std::memory_order_relaxed), false};
  auto since = c.blocked_since_ns.load(std::memory_order_relaxed);
  if (since != 0) {
    s.blocked = true;
    if (now_ns > since) s.blocked_ns += static_cast<std::uint64_t>(now_ns - since);
  }
  return s;
}

std::size_t port_index(const graph::port_lookup& r, const graph::edge& e) {
  if (!r.ok()) throw std::invalid_argument(fmt::format("{}: edge {} -> {}: {}", e.where.str(), e.from.str(),
                                                       e.to.str(), r.error()));
  return r.index();
}

}  // namespace

const char* to_string(instance_end e) {
  switch (e) {
    case instance_end::finished: return "finished";
    case instance_end::failed: return "failed";
    case instance_end::cancelled: return "cancelled";
  }
  return "?";
}

deployment expand(const graph::graph& g, const registry& kinds) {
  deployment x;
  for (const auto& n : g.nodes) {
    const kind_def* def = kinds.find(n.kind);
    if (!def) throw std::invalid_argument(fmt::format("unknown kind `{}` of node `{}`", n.kind, n.name));
    auto outputs = def->spec.output_ports(n.params);
    x.of_node.emplace_back();
    auto params = loom::params{to_value(n.params).as_map()};
    for (int i = 0; i < n.replicas; ++i) {
      instance_plan c;
      c.index = static_cast<std::uint32_t>(x.instances.size());
      c.kind = n.kind;
      c.max_restarts = n.restarts;
      c.def = def;
      c.init = node_init{n.name, i, n.replicas, params, outputs.size()};
      for (const auto& p : def->spec.inputs) c.input_names.push_back(p.name);
      c.is_tool = def->spec.call.has_value();
      c.movable = n.replace;
      c.blocking = def->spec.blocks(n.params);
      c.stateful = def->spec.holds_state(n.params);
      if (c.is_tool) c.max_pending = static_cast<std::size_t>(params.get_int("max_pending"));
      c.out_ports.resize(outputs.size());
      x.of_node.back().push_back(c.index);
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
    // An edge the graph does not size takes the larger window of a kind at either end (kind_spec::window).
    bool sized = e.capacity.has_value() || g.default_capacity != graph::default_edge_capacity;
    if (!sized) capacity = std::max({capacity, from_spec.window, to_spec.window});
    auto label = fmt::format("{}.{} -> {}.{}", e.from.node, from_spec.output_ports(g.nodes[a].params)[out_port].name,
                             e.to.node, to_spec.inputs[in_port].name);
    for (auto pi : x.of_node[a]) {
      auto& producer = x.instances[pi];
      out_edge_plan oe;
      oe.id = static_cast<std::uint32_t>(x.edges.size());
      oe.sized = sized;
      x.edges.push_back(edge_plan{pi, e.to.node, label});
      for (auto ci : x.of_node[b]) {
        auto& consumer = x.instances[ci];
        // Link ids are each side's own index, so every lookup on the hot path is a vector index. The
        // producer's side is numbered below, once its port layout is final.
        oe.links.push_back(out_link_plan{ci, static_cast<link_id>(consumer.in_links.size()), capacity});
        consumer.in_links.push_back(in_link_plan{in_port, pi, 0, capacity, label});
      }
      producer.out_ports[out_port].push_back(std::move(oe));
    }
  }
  for (std::size_t a = 0; a < g.nodes.size(); ++a) {
    for (const auto& tool : g.nodes[a].tools) {
      auto t = node_index(tool);
      tool_plan tc{tool, &kinds.find(g.nodes[t].kind)->spec, x.of_node[t]};
      if (!tc.kind->call) throw std::invalid_argument(fmt::format("node `{}` is not a tool", tool));
      for (auto i : x.of_node[a]) x.instances[i].tools.push_back(tc);
    }
  }
  // A producer numbers its out-links in port order, then edge order, then replica: as node_host::wire()
  // lays them out.
  for (auto& inst : x.instances) {
    link_id next = 0;
    for (auto& edges : inst.out_ports)
      for (auto& edge : edges)
        for (auto& l : edge.links) x.instances[l.consumer].in_links[l.remote].remote = next++;
  }
  return x;
}

std::string instance_name(const deployment& d, std::uint32_t instance) {
  const auto& init = d.instances.at(instance).init;
  return init.replicas > 1 ? fmt::format("{}[{}]", init.name, init.instance) : init.name;
}

run_report run_graph(caf::actor_system& system, const graph::graph& g, const registry& kinds,
                     const run_options& options) {
  return run_slice(system, std::make_shared<const deployment>(expand(g, kinds)), options);
}

run_report run_slice(caf::actor_system& system, std::shared_ptr<const deployment> plan, const run_options& options,
                     const slice_hooks& hooks) {
  const auto& x = *plan;
  caf::scoped_actor self{system};
  auto run = std::make_shared<run_state>(x.instances.size(), x.edges.size());
  run->coordinator = caf::actor{self};
  run->inject = options.inject;
  run->probes = options.probes;
  run->restore = options.restore;
  run->on_last_checkpoint = options.on_last_checkpoint;
  if (options.restore && options.restore->parts.size() != x.instances.size())
    throw std::invalid_argument(fmt::format("a snapshot of {} instances cannot resume a run of {}",
                                            options.restore->parts.size(), x.instances.size()));
  auto local = [&](std::uint32_t i) { return !hooks.is_local || hooks.is_local(i); };
  std::vector<std::uint32_t> mine;
  for (std::uint32_t i = 0; i < x.instances.size(); ++i)
    if (local(i)) mine.push_back(i);

  // Spawned lazily: no actor gets a message before the table below is complete (each wires itself from
  // it at its first message, so nothing copies the table per instance).
  auto& actors = run->actors;
  actors.resize(x.instances.size());
  std::unordered_map<caf::actor_addr, std::uint32_t> by_addr;
  by_addr.reserve(mine.size());
  std::vector<char> here(x.instances.size(), 0);  // its actor is in this process (adopted ones too)
  run->remote.assign(x.instances.size(), 0);
  run->distributed = static_cast<bool>(hooks.stand_in);
  run->egress.resize(x.instances.size());
  for (std::uint32_t i = 0; i < x.instances.size(); ++i) run->remote[i] = local(i) ? 0 : 1;
  auto spawn = [&](std::uint32_t i) {
    if (x.instances[i].movable && hooks.egress) run->egress[i] = hooks.egress(i);
    auto a = x.instances[i].blocking ? system.spawn<caf::detached + caf::lazy_init>(node_actor_behavior, plan, run, i)
                                     : system.spawn<caf::lazy_init>(node_actor_behavior, plan, run, i);
    self->monitor(a);
    by_addr.emplace(a.address(), i);
    here[i] = 1;
    return a;
  };
  for (auto i : mine) actors[i] = spawn(i);
  if (mine.size() < x.instances.size()) {
    if (!hooks.stand_in) throw std::invalid_argument("run_slice: remote instances but no stand_in hook");
    auto locals = actors;
    for (std::uint32_t i = 0; i < x.instances.size(); ++i)
      if (!local(i)) actors[i] = hooks.stand_in(i, locals);
  }

  run_report report;
  auto fill_report = [&](clock::time_point started) {
    report.nodes.clear();
    for (auto i : mine) report.nodes.push_back(stats_of(x.instances[i], run->counters(i)));
    report.edges.clear();
    auto now_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(clock::now().time_since_epoch()).count();
    for (auto i : mine)
      for (const auto& port : x.instances[i].out_ports)
        for (const auto& e : port) report.edges.push_back(edge_stats_of(x, e.id, run->edge(e.id), now_ns));
    report.seconds = std::chrono::duration<double>(clock::now() - started).count();
  };
  bool cancelling = false;
  auto cancel_all = [&] {
    cancelling = true;
    run->stop();  // blocking kinds abort their in-flight work now, not after their current message
    for (auto i : mine) self->send(actors[i], cancel_atom::value);
  };
  auto release_tools = [&] {
    for (auto i : mine)
      if (x.instances[i].is_tool) self->send(actors[i], release_atom::value);
  };
  auto fail = [&](std::string error) {
    if (report.result != run_report::outcome::failed) {
      report.result = run_report::outcome::failed;
      report.error = std::move(error);
    }
    if (!cancelling) cancel_all();
  };

  if (hooks.before_start && !hooks.before_start(actors, caf::actor{self})) {
    report.result = run_report::outcome::failed;
    report.error = "the run was cancelled before it started";
    cancel_all();
  } else {
    for (auto i : mine) self->send(actors[i], start_atom::value);
  }
  auto started = clock::now();

  // Snapshots: one epoch at a time; an instance gives its part, or is finished (its done_msg first).
  bool snapshots = options.snapshot_every.count() > 0 && options.on_snapshot && !run->distributed;
  std::uint64_t epoch = options.restore ? options.restore->epoch : 0;
  std::shared_ptr<snapshot> building;
  std::size_t parts_left = 0;
  auto last_snapshot = clock::now();
  std::vector<bool> finished(x.instances.size());
  clock::time_point epoch_started{};
  // A snapshot_msg soon: an instance asked for a decision, or a run that would detach looks again.
  bool snapshot_soon = false;
  auto snapshot_soon_at = clock::time_point::max();
  // Each instance's out-links as consumer instances, for the quiet test (snapshot.hpp); only a run that
  // takes snapshots needs it.
  auto consumers_of = snapshots ? consumers_by_out_link(x) : std::vector<std::vector<std::uint32_t>>{};
  auto part_done = [&] {
    if (--parts_left > 0) return;
    building->took_ns = static_cast<std::uint64_t>(
        std::chrono::duration_cast<std::chrono::nanoseconds>(clock::now() - epoch_started).count());
    for (const auto& p : building->parts)
      if (p) building->pending += p->pending.size();
    building->quiet = !run->distributed && hooks.is_local == nullptr && is_quiet(*building, consumers_of);
    bool detach = options.detach_on_pause && building->quiet && !cancelling;
    if (options.detach_on_pause && building->pending > 0 && !building->quiet) {
      snapshot_soon = true;  // look again soon: the run may be about to wait for people only
      snapshot_soon_at = clock::now() + std::chrono::milliseconds(100);
    }
    options.on_snapshot(std::move(building));
    building.reset();
    if (detach) {
      if (report.result == run_report::outcome::ok) report.result = run_report::outcome::paused;
      cancel_all();
    }
  };
  auto start_epoch = [&] {
    building = std::make_shared<snapshot>();
    epoch_started = clock::now();
    building->epoch = ++epoch;
    building->parts.resize(x.instances.size());
    parts_left = 1;  // held until every message is sent
    for (auto i : mine) {
      if (finished[i]) {
        building->parts[i] = finished_part(i);
      } else {
        ++parts_left;
        self->send(actors[i], snapshot_msg{epoch});
      }
    }
    part_done();
  };
  // A cluster run's snapshots (slice_hooks::on_part): the driver's latest epoch, and per instance the
  // latest epoch whose part went out.
  std::uint64_t driver_epoch = epoch;
  std::vector<std::uint64_t> given(x.instances.size(), epoch);
  auto give = [&](std::uint64_t e, std::shared_ptr<const instance_part> p) {
    auto i = p->instance;
    if (i >= given.size() || e <= given[i]) return;
    given[i] = e;
    hooks.on_part(e, std::move(p));
  };
  std::vector<bool> ended(x.instances.size());
  std::size_t remaining = mine.size();
  // Tools serve calls until every other node is done; then they are released to finish.
  std::size_t callers_left = 0;
  for (auto i : mine) callers_left += x.instances[i].is_tool ? 0 : 1;
  if (callers_left == 0 && hooks.release_tools_locally) release_tools();
  auto end_of = [&](std::uint32_t i, instance_end end, std::string error) {
    if (ended[i]) return;
    ended[i] = true;
    --remaining;
    const auto& inst = x.instances[i];
    if (hooks.on_done) hooks.on_done(i, end, error, stats_of(inst, run->counters(i)));
    if (!inst.is_tool && --callers_left == 0 && hooks.release_tools_locally) release_tools();
    if (end == instance_end::finished) {
      finished[i] = true;
      if (hooks.on_part && driver_epoch > given[i]) give(driver_epoch, finished_part(i));
      if (building && !building->parts[i]) {
        building->parts[i] = finished_part(i);
        part_done();
      }
    } else {
      building.reset();  // an epoch cannot complete without this instance: dropped
    }
    if (end == instance_end::failed) fail(std::move(error));
  };
  auto last_progress = clock::now();
  bool released = false;
  while (remaining > 0 || (hooks.hold_until_release && !released && !cancelling)) {
    self->receive(
        [&](done_msg& d) {
          if (d.instance < ended.size() && here[d.instance]) end_of(d.instance, d.end, std::move(d.error));
        },
        // Its host was lost: instance a.instance runs here from now on (actors[] keeps its stand-in, which
        // forwards to it). Its producers resend what it had not credited.
        [&](adopt_msg& a) {
          auto i = a.instance;
          if (i >= x.instances.size() || here[i] || cancelling) return;
          auto actor = spawn(i);
          mine.push_back(i);
          ++remaining;
          if (!x.instances[i].is_tool) ++callers_left;
          if (hooks.adopted) hooks.adopted(i, actor);
          self->send(actor, start_atom::value);
        },
        [&](on_slice_msg& m) {
          if (m.fn) m.fn();
        },
        [&](const asked_msg&) {
          snapshot_soon = true;
          snapshot_soon_at = clock::now();
          if (hooks.on_asked) hooks.on_asked();
        },
        // A cluster run's epoch, at the driver's word: each local instance gives its part (once per epoch).
        [&](const snapshot_msg& m) {
          if (!hooks.on_part || cancelling || m.epoch <= driver_epoch) return;
          driver_epoch = m.epoch;
          for (auto i : mine) {
            if (given[i] >= m.epoch || (ended[i] && !finished[i])) continue;
            if (finished[i])
              give(m.epoch, finished_part(i));
            else
              self->send(actors[i], snapshot_msg{m.epoch});
          }
        },
        [&](part_msg& m) {
          if (hooks.on_part) {
            if (m.part && m.part->instance < x.instances.size() && here[m.part->instance])
              give(m.epoch, std::move(m.part));
            return;
          }
          if (!building || m.epoch != building->epoch || !m.part || m.part->instance >= x.instances.size() ||
              building->parts[m.part->instance])
            return;
          building->parts[m.part->instance] = std::move(m.part);
          part_done();
        },
        // An actor that exits without a report: an exception the runtime did not catch, a kill.
        [&](caf::down_msg& dm) {
          auto it = by_addr.find(dm.source);
          if (it == by_addr.end() || ended[it->second]) return;
          const auto& inst = x.instances[it->second];
          end_of(it->second, instance_end::failed,
                 fmt::format("node `{}` ({}) stopped without reporting: {}", instance_name(x, it->second), inst.kind,
                             system.render(dm.reason)));
        },
        [&](cancel_atom) {
          if (!cancelling) {
            if (report.result == run_report::outcome::ok) report.result = run_report::outcome::interrupted;
            cancel_all();
          }
        },
        [&](release_atom) {
          released = true;
          release_tools();
        },
        caf::after(std::chrono::milliseconds(50)) >> [&] {});
    if (!cancelling && options.interrupted && options.interrupted()) {
      if (report.result == run_report::outcome::ok) report.result = run_report::outcome::interrupted;
      cancel_all();
    }
    if (options.poll_decisions && !cancelling)
      for (auto& d : options.poll_decisions())
        if (d.instance < x.instances.size() && here[d.instance] && !ended[d.instance])
          self->send(actors[d.instance], decision_msg{d.id, std::move(d.d)});
    if (snapshots && !building && !cancelling && remaining > 0 &&
        (clock::now() - last_snapshot >= options.snapshot_every || (snapshot_soon && clock::now() >= snapshot_soon_at))) {
      last_snapshot = clock::now();
      snapshot_soon = false;
      start_epoch();
    }
    if (options.on_progress && clock::now() - last_progress >= options.progress_every) {
      last_progress = clock::now();
      fill_report(started);
      options.on_progress(report);
    }
  }
  fill_report(started);
  return report;
}

}  // namespace loom::local
