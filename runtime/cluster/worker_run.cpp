// runtime/cluster/worker_run.cpp: one run on a worker, on its own thread: the deployed graph expanded and
// checked against the driver's, data links to every other host of the run, this host's slice on the local
// executor with a stand-in for each instance elsewhere, the moves of instances off lost hosts (adopt,
// rewire, resume), and each instance's end, progress and spans reported to the driver.
#include <fmt/format.h>

#include <algorithm>
#include <optional>
#include <string_view>

#include "loom/graph/load.hpp"
#include "loom/graph/validate.hpp"
#include "loom/runtime/cluster/fingerprint.hpp"
#include "loom/runtime/cluster/protocol.hpp"
#include "loom/runtime/cluster/worker_state.hpp"
#include "loom/runtime/local/executor.hpp"
#include "loom/runtime/local/messages.hpp"
#include "loom/runtime/local/node_actor.hpp"
#include "loom/runtime/local/part_value.hpp"
#include "loom/runtime/observe/node_probes.hpp"
#include "loom/runtime/observe/trace.hpp"

namespace loom::cluster::detail {
namespace {

struct deployment_here {
  std::optional<graph::graph> g;
  std::shared_ptr<const local::deployment> plan;
  std::string refusal;  // set: the run is refused, for this reason
};

// The deployed graph as this worker loads and expands it with its own kinds, checked against the driver's
// (kinds, expansion, the plan's size), with the plan's devices and the link window applied; or why this
// worker refuses the run.
deployment_here expand_deployed(const ctl::deploy& d, const registry& kinds) {
  deployment_here out;
  auto refused = [&](std::string why) {
    out.refusal = std::move(why);
    return out;
  };
  graph::diagnostics diags;
  auto g = graph::load_graph_text(d.graph_yaml, "deployed graph", diags);
  if (g)
    if (auto lack = lacking_kinds(d.kinds, *g, kinds)) return refused(*lack);
  if (g) graph::validate(*g, kinds, diags);
  if (!g || diags.has_errors()) return refused("the graph does not validate here:\n" + diags.str());
  graph::apply_defaults(*g, kinds);
  local::deployment dep;
  try {
    dep = local::expand(*g, kinds);
  } catch (const std::exception& e) {
    return refused(e.what());
  }
  // The same YAML must expand to the same instances and links here as on the driver: a plugin or build
  // that differs between hosts would renumber links silently.
  if (auto diff = first_difference(d.kinds, describe_kinds(kinds, dep), "the kinds of the driver and of this worker"))
    return refused(*diff);
  if (auto diff = first_difference(d.expanded_graph, describe_deployment(dep),
                                   "the graph as the driver and this worker expand it"))
    return refused(*diff);
  if (d.plan.instance_host.size() != dep.instances.size())
    return refused(fmt::format("the plan places {} instances; the graph has {}", d.plan.instance_host.size(),
                               dep.instances.size()));
  for (std::size_t i = 0; i < d.plan.instance_device.size(); ++i)
    dep.instances[i].init.device = d.plan.instance_device[i];  // kernels run where the plan put them
  // Links between two hosts get the driver's window (every host widens the same links the same way).
  widen_remote_links(dep, d.plan.instance_host, d.link_window);
  // From here on the plan is one immutable value, shared by the run and the receive rules.
  out.plan = std::make_shared<const local::deployment>(std::move(dep));
  out.g = std::move(g);
  return out;
}

}  // namespace

void worker::run(run_state& r, ctl::deploy& d) {
  struct finish_guard {
    worker* w;
    ~finish_guard() { w->finished_ = true; }
  } guard{this};
  auto deployed = expand_deployed(d, *o_.kinds);
  if (!deployed.refusal.empty()) return refuse(r, deployed.refusal);
  const auto& g = deployed.g;
  auto plan = deployed.plan;
  int me = -1;
  for (std::size_t h = 0; h < d.plan.hosts.size(); ++h)
    if (d.plan.hosts[h].name == r.host) me = static_cast<int>(h);
  if (me < 0) return refuse(r, fmt::format("host `{}` is not in the plan", r.host));

  // With per-host keys, the other hosts of the run may now connect to us (for data only), until the run
  // ends: the keys of a past run's hosts are not let in by a later one.
  struct run_peers {
    tr::endpoint& ep;
    std::vector<std::string> keys;
    ~run_peers() { ep.disallow(keys); }
  } peer_keys{*ep_, {}};
  if (o_.curve) {
    std::vector<std::string> keys;
    for (std::size_t h = 0; h < d.plan.hosts.size(); ++h)
      if (static_cast<int>(h) != me && !d.plan.hosts[h].public_key.empty()) keys.push_back(d.plan.hosts[h].public_key);
    try {
      ep_->allow(keys);
    } catch (const std::exception& e) {
      return refuse(r, e.what());
    }
    peer_keys.keys = std::move(keys);
  }
  // Data links to every other host of the run, opened by us (each host sends on its own connections).
  std::vector<tr::peer_id> peers(d.plan.hosts.size());
  for (std::size_t h = 0; h < d.plan.hosts.size(); ++h) {
    if (static_cast<int>(h) == me) continue;
    // One connection per peer while it lasts: zmq reconnects a lost one by itself. One the peer refused
    // (closed for good) is replaced; the peer's ROUTER hands our name over to the new one.
    const auto& address = d.plan.hosts[h].data_address;
    bool refused_before;
    {
      std::lock_guard lock(refused_m_);
      refused_before = refused_links_.erase(address) > 0;
    }
    if (auto known = peer_by_address_.find(address); known != peer_by_address_.end()) {
      if (!refused_before) {
        peers[h] = known->second;
        continue;
      }
      ep_->drop(known->second);
      peer_by_address_.erase(known);
    }
    tr::connect_options co;
    co.role = "worker " + d.plan.hosts[h].name;
    if (o_.curve) co.server_key = d.plan.hosts[h].public_key.empty() ? o_.curve->public_key : d.plan.hosts[h].public_key;
    // The peer allows our key once it has its own deploy, which may arrive a moment after ours: a refusal
    // is retried for a few seconds before the run is refused.
    auto until = clock::now() + std::chrono::seconds(5);
    while (true) {
      try {
        peers[h] = peer_by_address_[address] = ep_->connect(address, co);
        std::lock_guard lock(refused_m_);
        refused_links_.erase(address);  // refusals before this one succeeded are over
        break;
      } catch (const std::exception& e) {
        bool refused = std::string_view(e.what()).find("refused this endpoint's curve key") != std::string_view::npos;
        if (!refused || clock::now() > until || r.cancelling) return refuse(r, e.what());
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
      }
    }
  }

  {  // what crosses each data link of this run, for a report if one goes silent
    auto links = std::make_shared<std::unordered_map<std::string, std::string>>();
    for (std::size_t h = 0; h < d.plan.hosts.size(); ++h) {
      if (static_cast<int>(h) == me) continue;
      auto what = links_between(*plan, d.plan.instance_host, static_cast<std::uint32_t>(me), static_cast<std::uint32_t>(h));
      if (what.empty()) continue;
      (*links)[d.plan.hosts[h].data_address] = fmt::format("data link `{}` <-> `{}` ({}): {}", r.host,
                                                            d.plan.hosts[h].name, d.plan.hosts[h].data_address, what);
    }
    std::atomic_store(&r.links, std::shared_ptr<const std::unordered_map<std::string, std::string>>(std::move(links)));
  }
  auto is_local = [&](std::uint32_t i) { return static_cast<int>(d.plan.instance_host[i]) == me; };
  auto on_error = [this, &r](const std::string& err) {
    ep_->send_to_name(r.driver, tr::control_msg{r.id, ctl::cancel{err}});
  };
  // Where each instance lives now (instances of a lost host move), and what moved here.
  std::vector<std::uint32_t> where(d.plan.instance_host.begin(), d.plan.instance_host.end());
  std::vector<caf::actor> adopted(plan->instances.size());
  std::vector<caf::actor> all_actors;  // local actors and stand-ins, as the slice started
  std::vector<char> dropped(d.plan.hosts.size(), 0);
  std::vector<std::uint32_t> epochs(plan->instances.size(), 0);  // each instance's moves so far
  auto senders = std::make_shared<tr::sender_table>();
  std::vector<caf::actor> stand_ins(plan->instances.size());
  local::slice_hooks hooks;
  hooks.is_local = is_local;
  hooks.release_tools_locally = false;
  // A host may adopt an instance of a lost host until every caller is done (the driver's release).
  hooks.hold_until_release = std::any_of(plan->instances.begin(), plan->instances.end(),
                                         [](const local::instance_plan& x) { return x.movable; });
  hooks.stand_in = [&](std::uint32_t i, const std::vector<caf::actor>& local) {
    if (senders->empty())
      for (std::uint32_t k = 0; k < local.size(); ++k)
        if (local[k]) (*senders)[local[k].id()] = k;
    tr::stand_in_config sc{r.id, i, ep_.get(), peers[d.plan.instance_host[i]], senders, on_error, plan,
                           plan->instances[i].movable};
    stand_ins[i] = system_->spawn(tr::stand_in, sc);
    return stand_ins[i];
  };
  // A movable instance's messages to other hosts go through its egress (endpoint::send_fenced).
  hooks.egress = [&](std::uint32_t i) {
    tr::egress_config ec{r.id, i, ep_.get(), std::vector<tr::peer_id>(where.size()), std::vector<char>(where.size()),
                         on_error, epochs[i]};
    for (std::uint32_t x = 0; x < where.size(); ++x) {
      ec.remote[x] = static_cast<int>(where[x]) != me;
      if (ec.remote[x]) ec.peer_of[x] = peers[where[x]];
    }
    return system_->spawn(tr::egress, ec);
  };
  // Instance i moves to host h (on the slice's thread): forget its old streams, route its messages to
  // its new home, tell its local consumers, echo the driver. Its stand-in holds until resume.
  auto moved = [&](std::uint32_t i, std::uint32_t h, std::uint32_t epoch) {
    if (i >= where.size() || h >= d.plan.hosts.size()) return;
    auto old = where[i];
    if (static_cast<int>(old) != me && !dropped[old]) {  // the lost host: what waits for it is let go
      dropped[old] = 1;
      ep_->drop(peers[old]);
      peer_by_address_.erase(d.plan.hosts[old].data_address);
    }
    ep_->forget_sender(r.id, i);  // the new instance numbers its streams from 0
    where[i] = h;
    bool here = static_cast<int>(h) == me;
    caf::actor local = here ? adopted[i] : caf::actor{};
    if (here && !local) return on_error(fmt::format("host `{}` was to adopt instance {}, but did not spawn it", r.host, i));
    if (auto recv = std::atomic_load(&receiver_)) {
      const auto& host = d.plan.hosts[h];
      std::atomic_store(&receiver_, std::make_shared<const tr::receiver>(
                                        recv->moved(i, epoch, host.name, o_.curve ? host.public_key : std::string(),
                                                    local)));
    }
    if (stand_ins[i]) {
      tr::rewire_msg m;
      m.peer = here ? tr::peer_id{0} : peers[h];
      m.local = local;
      for (const auto& port : plan->instances[i].out_ports)  // its consumers that live here
        for (const auto& edge : port)
          for (const auto& l : edge.links) {
            auto c = l.consumer;
            if (static_cast<int>(where[c]) != me) continue;
            auto actor = adopted[c] ? adopted[c] : (c < all_actors.size() ? all_actors[c] : caf::actor{});
            if (actor) m.consumers.push_back({actor, l.remote, plan->instances[c].in_links[l.remote].remote});
          }
      caf::anon_send(stand_ins[i], std::move(m));
    }
    log(fmt::format("run {}: instance {} moved to host `{}`{}", r.id, i, d.plan.hosts[h].name,
                    here ? " (here)" : ""));
    ep_->send_to_name(r.driver, tr::control_msg{r.id, ctl::adopt{i, h, epoch}});
  };
  hooks.before_start = [&](const std::vector<caf::actor>& all, const caf::actor& coordinator) {
    std::vector<caf::actor> locals(all.size());
    for (std::uint32_t i = 0; i < all.size(); ++i)
      if (is_local(i)) locals[i] = all[i];
    all_actors = all;
    auto rules = std::make_shared<tr::run_rules>(make_rules(*plan));
    for (std::uint32_t i = 0; i < d.plan.instance_host.size(); ++i) {
      const auto& host = d.plan.hosts[d.plan.instance_host[i]];
      rules->instance_host.push_back(host.name);
      rules->instance_key.push_back(o_.curve ? host.public_key : std::string());
      rules->movable.push_back(plan->instances[i].movable ? 1 : 0);
    }
    std::atomic_store(&receiver_, std::make_shared<const tr::receiver>(r.id, locals, stand_ins, std::move(rules)));
    {
      std::lock_guard lock(r.m);
      r.coordinator = coordinator;
      r.me = me;
      r.adopt = moved;
      r.prepare = [&](std::uint32_t i, std::uint32_t epoch) {
        if (i < epochs.size()) epochs[i] = epoch;
      };
      r.resume = [&](std::uint32_t i) {
        if (i < stand_ins.size() && stand_ins[i]) caf::anon_send(stand_ins[i], tr::resume_msg{});
      };
    }
    ep_->send_to_name(r.driver, tr::control_msg{r.id, ctl::hello{r.host}});  // ready
    std::unique_lock lock(r.m);
    r.cv.wait(lock, [&] { return r.start || r.cancel; });
    return !r.cancel;
  };
  hooks.on_done = [&](std::uint32_t i, local::instance_end end, const std::string& error,
                      const local::node_stats& s) {
    // A cancelled instance did not finish its work: never reported as a success.
    bool failed = end == local::instance_end::failed;
    bool cancelled = end == local::instance_end::cancelled;
    ctl::done dn{i, failed, error, counters_of(s), cancelled};
    metrics_->update_instance(s);  // before the done: the driver's last look at our samples is exact
    ep_->send_to_name(r.driver, tr::control_msg{r.id, std::move(dn)});
  };
  // This run's node and edge families, until the next run replaces them (the worker's /metrics, and the
  // samples its heartbeat echoes carry to a driver that serves metrics).
  metrics_ = std::make_unique<observe::run_metrics>(g->name, std::to_string(r.id));
  // Every progress tick: this part's counts so far, for the driver's live view and this worker's metrics.
  // The report lists the local instances in index order.
  local::run_options ro;
  std::vector<std::uint32_t> mine;
  for (std::uint32_t i = 0; i < plan->instances.size(); ++i)
    if (is_local(i)) mine.push_back(i);
  hooks.adopted = [&](std::uint32_t i, const caf::actor& a) {
    adopted[i] = a;
    mine.push_back(i);  // reported after the others, as the slice's report lists it
  };
  ro.on_progress = [&](const local::run_report& rep) {
    metrics_->update(rep);
    ctl::progress p;
    for (std::size_t k = 0; k < rep.nodes.size() && k < mine.size(); ++k) {
      const auto& s = rep.nodes[k];
      p.instances.push_back({mine[k], counters_of(s), s.queued});
    }
    for (const auto& e : rep.edges) p.edges.push_back(edge_progress_of(e));
    ep_->send_to_name(r.driver, tr::control_msg{r.id, std::move(p)});
  };
  // A traced run: this host's spans join the driver's trace, under its run span, and go back at the end.
  std::shared_ptr<observe::tracer> trace;
  if (!d.trace.empty()) {
    if (auto parent = observe::parse_traceparent(d.trace))
      trace = std::make_shared<observe::tracer>(r.host, *parent);
    else
      log(fmt::format("run {}: not traced: the deploy's trace context `{}` is not a traceparent", r.id, d.trace));
  }
  ro.probes = observe::probes_for(trace);
  // A run with --state (docs/durability.md, "Cluster runs"): each local instance's part of a snapshot goes
  // to the driver, which holds the run's state; a resumed run starts each instance from the part it sent.
  hooks.on_part = [this, &r](std::uint64_t epoch, std::shared_ptr<const local::instance_part> part) {
    try {
      ep_->send_to_name(r.driver, tr::control_msg{r.id, ctl::snapshot_part{epoch, part->instance, local::to_value(*part)}});
    } catch (const std::exception& e) {
      // A part the wire cannot carry (a tensor on a GPU): that epoch never completes; the run goes on and
      // the driver keeps its last complete snapshot.
      log(fmt::format("run {}: the snapshot part of instance {} could not be sent: {}", r.id, part->instance, e.what()));
    }
  };
  hooks.on_asked = [this, &r] { ep_->send_to_name(r.driver, tr::control_msg{r.id, ctl::asked{}}); };
  ro.poll_decisions = [&r] {
    std::lock_guard lock(r.m);
    return std::exchange(r.decided, {});
  };
  if (!d.restore.empty()) {
    auto snap = std::make_shared<local::snapshot>();
    snap->epoch = d.restore_epoch;
    snap->parts.resize(plan->instances.size());
    for (const auto& sp : d.restore) {
      if (sp.instance >= plan->instances.size() || !is_local(sp.instance))
        return refuse(r, fmt::format("a snapshot part for instance {}, which is not placed on host `{}`", sp.instance, r.host));
      std::string error;
      auto part = local::part_from_value(sp.part, plan->instances[sp.instance], error);
      if (!part) return refuse(r, error);
      snap->parts[sp.instance] = std::move(part);
    }
    ro.restore = std::move(snap);
  }
  auto report = local::run_slice(*system_, plan, ro, hooks);
  metrics_->update(report);
  if (trace) ep_->send_to_name(r.driver, tr::control_msg{r.id, ctl::spans{observe::to_json(trace->finish(g->name))}});
  log(fmt::format("run {}: local part {}", r.id,
                  report.result == local::run_report::outcome::ok       ? std::string("done")
                  : report.result == local::run_report::outcome::failed ? "failed: " + report.error
                                                                        : std::string("cancelled")));
  {
    std::unique_lock lock(r.m);
    r.cv.wait_for(lock, std::chrono::seconds(10), [&] { return r.ended; });
  }
  std::atomic_store(&receiver_, std::shared_ptr<const tr::receiver>{});
  ep_->forget_run(r.id);  // the sequence numbers of this run's streams go with it
  for (auto& s : stand_ins)
    if (s) caf::anon_send_exit(s, caf::exit_reason::user_shutdown);
}

}  // namespace loom::cluster::detail
