// runtime/cluster/driver.cpp: the driver's side of a distributed run, start to end: connect to every
// worker (spares too when nodes may move), deploy, wait until each is ready, start, watch (heartbeats,
// each instance's end, progress, cancels), gather the spans and final samples, and end the run on every
// worker. Lost workers and moves: driver_moves.cpp; the object's state: driver_state.hpp.
#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <random>
#include <string_view>

#include "loom/runtime/cluster/driver_state.hpp"
#include "loom/runtime/cluster/fingerprint.hpp"
#include "loom/runtime/cluster/protocol.hpp"
#include "loom/runtime/local/node_actor.hpp"
#include "loom/runtime/local/part_value.hpp"
#include "loom/runtime/observe/trace.hpp"

namespace loom::cluster {
namespace detail {

local::run_report driver::run() {
  report_.nodes.resize(dep_.instances.size());
  done_.assign(dep_.instances.size(), false);
  cancelled_.assign(dep_.instances.size(), false);
  remaining_ = dep_.instances.size();
  for (std::uint32_t i = 0; i < dep_.instances.size(); ++i) {
    const auto& inst = dep_.instances[i];
    report_.nodes[i] = local::node_stats{inst.init.name, inst.kind, inst.init.instance, inst.init.replicas};
  }
  expanded_ = describe_deployment(dep_);
  kinds_ = describe_kinds(*o_.kinds, dep_);
  log(fmt::format("graph {}, kinds {}", fingerprint(expanded_), fingerprint(kinds_)));
  if (!connect()) return finish();
  run_id_ = std::random_device{}() | (std::uint64_t{std::random_device{}()} << 32);
  deploy();
  if (!await_ready()) return finish();
  started_ = clock::now();
  for (auto& w : workers_) send(w, ctl::start{});
  log(fmt::format("run {} started on {} workers", run_id_, workers_.size()));
  watch();
  gather_spans();
  final_samples();
  return finish();
}

bool driver::connect() {
  auto cfg = control_endpoint(fmt::format("driver-{}", getpid()), o_.curve, o_.max_message_bytes);
  ep_ = std::make_unique<tr::endpoint>(cfg, tr::endpoint_callbacks{[this](tr::incoming&& in) {
                                                                       std::lock_guard lock(in_.m);
                                                                       in_.messages.push_back(std::move(in));
                                                                       in_.cv.notify_one();
                                                                     },
                                                                     [this](const tr::problem& p) {
                                                                       std::lock_guard lock(in_.m);
                                                                       in_.problems.push_back(p);
                                                                       in_.cv.notify_one();
                                                                     }});
  std::map<int, std::size_t> by_host;
  for (std::uint32_t i = 0; i < p_.instances.size(); ++i) {
    int h = p_.instances[i].host;
    auto [it, fresh] = by_host.emplace(h, workers_.size());
    if (fresh) workers_.push_back(worker_link{c_.hosts.at(h).name, c_.hosts.at(h).address});
    workers_[it->second].instances.push_back(i);
  }
  // A graph with `recover: replace` nodes runs on every host of the cluster: a host with no instance of its
  // own is a spare that may adopt one of a lost host. A spare that cannot be reached is left out.
  bool movable = std::any_of(dep_.instances.begin(), dep_.instances.end(),
                             [](const local::instance_plan& x) { return x.movable; });
  std::set<std::string> spares;
  if (movable)
    for (const auto& h : c_.hosts)
      if (std::none_of(workers_.begin(), workers_.end(), [&](const worker_link& w) { return w.host == h.name; })) {
        workers_.push_back(worker_link{h.name, h.address});
        spares.insert(h.name);
      }
  for (auto it = workers_.begin(); it != workers_.end();) {
    auto& w = *it;
    tr::connect_options co;
    co.timeout = o_.connect_timeout;
    co.role = fmt::format("worker `{}`", w.host);
    auto own = o_.host_keys.find(w.host);
    co.server_key = own != o_.host_keys.end() ? own->second : o_.server_key;
    log(fmt::format("connecting to {}worker `{}` at {}", spares.contains(w.host) ? "spare " : "", w.host, w.address));
    try {
      w.peer = ep_->connect(w.address, co);
    } catch (const std::exception& e) {
      if (spares.contains(w.host)) {
        log(fmt::format("spare worker `{}` at {} left out of the run: {}", w.host, w.address, e.what()));
        it = workers_.erase(it);
        continue;
      }
      std::string hint;
      if (!o_.user_keys.empty() && std::string_view(e.what()).find("handshake") != std::string_view::npos)
        hint = fmt::format(". This driver used the per-user keys of uid {} ({}.key), as the cluster file has no "
                           "`security`: a worker started without key options lets in only drivers run by its own "
                           "user. Run the driver as that user, or give the hosts keys (docs/cluster.md, Security)",
                           ::geteuid(), o_.user_keys);
      fail(fmt::format("worker `{}` at {}: {}{}", w.host, w.address, e.what(), hint));
      return false;
    }
    ++it;
  }
  return true;
}

void driver::deploy() {
  auto plan = plan_of_deploy();
  for (auto& w : workers_) deploy_to(w, plan);
}

ctl::plan driver::plan_of_deploy() const {
  ctl::plan plan;
  for (auto& w : workers_) {
    auto key = o_.host_keys.find(w.host);
    plan.hosts.push_back(ctl::host{w.host, w.address, key != o_.host_keys.end() ? key->second : std::string()});
  }
  plan.instance_host.resize(p_.instances.size());
  for (std::uint32_t k = 0; k < workers_.size(); ++k)
    for (auto i : workers_[k].instances) plan.instance_host[i] = k;
  for (const auto& placed : p_.instances) plan.instance_device.push_back(placed.device);
  return plan;
}

void driver::deploy_to(worker_link& w, const ctl::plan& plan) {
  ctl::deploy d{yaml_, plan, expanded_, kinds_,
                o_.trace ? observe::to_traceparent(o_.trace->root_context()) : std::string(), o_.link_window};
  if (o_.restore) {  // a resumed run: each worker gets the parts of its own instances
    d.restore_epoch = o_.restore->epoch;
    for (auto i : w.instances)
      if (i < o_.restore->parts.size() && o_.restore->parts[i])
        d.restore.push_back({o_.restore->epoch, i, local::to_value(*o_.restore->parts[i])});
  }
  send(w, ctl::hello{w.host});
  send(w, std::move(d));
  w.last_seen = clock::now();  // the heartbeat clock starts at the deploy, on both sides
}

worker_link* driver::by_peer(const std::string& peer) {
  for (auto& w : workers_)
    if (w.address == peer || w.host == peer) return &w;
  return nullptr;
}

template <class OnControl>
void driver::drain(std::chrono::milliseconds wait, OnControl&& on_control) {
  std::deque<tr::incoming> msgs;
  std::deque<tr::problem> probs;
  {
    std::unique_lock lock(in_.m);
    in_.cv.wait_for(lock, wait, [&] { return !in_.messages.empty() || !in_.problems.empty(); });
    msgs.swap(in_.messages);
    probs.swap(in_.problems);
  }
  for (auto& p : probs) {
    warn(p.text);  // it names the peer
    if (p.what == tr::problem::kind::refused) fail(fmt::format("refused by {}: {}", p.peer, p.text));
  }
  for (auto& in : msgs) {
    auto* c = std::get_if<tr::control_msg>(&in.msg);
    auto* w = by_peer(in.peer);
    // A lost worker is out of the run: what it says if it comes back (SIGCONT) changes nothing.
    if (!c || !w || w->lost || (c->run != run_id_ && c->run != 0)) continue;
    w->last_seen = clock::now();
    if (auto* hb = std::get_if<ctl::heartbeat>(&c->body)) {
      note_clock(*w, *hb);
      if (o_.on_samples && !hb->samples.empty()) o_.on_samples(w->host, hb->samples);
      w->echoed = std::max(w->echoed, hb->seq + 1);
      continue;
    }
    if (auto* s = std::get_if<ctl::spans>(&c->body)) {
      add_spans(*w, *s);
      continue;
    }
    on_control(*w, *c);
  }
}

bool driver::await_ready() {
  auto deadline = clock::now() + o_.connect_timeout + std::chrono::seconds(10);
  std::size_t ready = 0;
  std::vector<clock::time_point> redeploy(workers_.size(), clock::time_point::max());
  std::vector<char> told(workers_.size(), 0);  // "still busy" logged once per worker
  while (ready < workers_.size() && report_.result == local::run_report::outcome::ok) {
    if (clock::now() > deadline) {
      std::string waiting;
      for (auto& w : workers_)
        if (!w.ready) waiting += (waiting.empty() ? "" : ", ") + w.host;
      fail(fmt::format("workers not ready in time: {}", waiting));
      break;
    }
    beat();
    check_lost();
    for (std::size_t k = 0; k < workers_.size(); ++k)
      if (clock::now() >= redeploy[k]) {
        redeploy[k] = clock::time_point::max();
        deploy_to(workers_[k], plan_of_deploy());
      }
    drain(std::chrono::milliseconds(50), [&](worker_link& w, tr::control_msg& c) {
      if (std::holds_alternative<ctl::hello>(c.body) && !w.ready) {
        w.ready = true;
        ++ready;
      } else if (auto* r = std::get_if<ctl::refused>(&c.body)) {
        // A resumed run finds its workers still in the run whose driver died, until they give it up after
        // its silence (worker_options::driver_silence): asked again every 250 ms until the deadline.
        bool busy = o_.restore && r->reason.starts_with("busy with run ") && clock::now() + std::chrono::seconds(1) < deadline;
        if (busy) {
          auto k = static_cast<std::size_t>(&w - workers_.data());
          if (!std::exchange(told[k], 1))
            log(fmt::format("worker `{}` is still {} (its driver died): asking again until it gives that run up",
                            w.host, r->reason));
          redeploy[k] = clock::now() + std::chrono::milliseconds(250);
        } else {
          fail(fmt::format("worker `{}` refused the run: {}", w.host, r->reason));
        }
      }
    });
  }
  if (report_.result != local::run_report::outcome::ok) {
    for (auto& w : workers_) send(w, ctl::cancel{report_.error});
    return false;
  }
  return true;
}

void driver::beat() {
  if (clock::now() < next_beat_) return;
  for (auto& w : workers_)
    if (!w.lost) send(w, ctl::heartbeat{beat_, clock::now().time_since_epoch().count(), o_.on_samples ? "?" : ""});
  ++beat_;
  next_beat_ = clock::now() + o_.heartbeat_every;
}

void driver::note_clock(worker_link& w, const ctl::heartbeat& h) {
  if (!o_.trace || h.echo_unix_ns == 0) return;
  auto now = clock::now().time_since_epoch().count();
  auto rtt = now - h.time_ns;
  if (rtt < 0 || (w.best_rtt_ns >= 0 && rtt >= w.best_rtt_ns)) return;
  w.best_rtt_ns = rtt;
  auto mid_unix = h.time_ns + rtt / 2 + o_.trace->unix_minus_steady_ns();
  w.clock_offset_ns = h.echo_unix_ns - mid_unix;
}

void driver::add_spans(worker_link& w, const ctl::spans& s) {
  if (!o_.trace || w.spans_in) return;
  w.spans_in = true;
  try {
    auto h = observe::host_spans_from_json(s.json);
    h.host = w.host;
    h.offset_ns = w.clock_offset_ns;
    log(fmt::format("worker `{}`: {} spans, clock offset {:.3f} ms (+/- {:.3f} ms)", w.host, h.spans.size(),
                    static_cast<double>(w.clock_offset_ns) / 1e6, static_cast<double>(w.best_rtt_ns) / 2e6));
    o_.trace->add_host(std::move(h));
  } catch (const std::exception& e) {
    log(fmt::format("worker `{}`: its spans are left out: {}", w.host, e.what()));
  }
}

void driver::gather_spans() {
  if (!o_.trace || started_ == clock::time_point{}) return;
  auto deadline = clock::now() + std::chrono::seconds(5);
  auto missing = [&] {
    for (auto& w : workers_)
      if (w.ready && !w.lost && !w.spans_in) return true;
    return false;
  };
  while (missing() && clock::now() < deadline) drain(std::chrono::milliseconds(50), [](worker_link&, tr::control_msg&) {});
  for (auto& w : workers_)
    if (w.ready && !w.lost && !w.spans_in) log(fmt::format("worker `{}` sent no spans within 5 s", w.host));
}

void driver::cancel_all(const std::string& why) {
  if (cancelling_) return;
  cancelling_ = true;
  cancel_deadline_ = clock::now() + std::chrono::seconds(3);
  for (auto& w : workers_)  // spares too: they hold their slice open for an adopt
    if (!w.lost) send(w, ctl::cancel{why});
}

void driver::watch() {
  std::size_t callers_left = 0;
  for (auto& inst : dep_.instances) callers_left += inst.is_tool ? 0 : 1;
  auto last_progress = clock::now();
  auto release = [&] {
    for (auto& w : workers_)
      if (!w.lost) send(w, ctl::release{});
  };
  if (callers_left == 0) release();
  while (remaining_ > 0) {
    beat();
    drain(std::chrono::milliseconds(50), [&](worker_link& w, tr::control_msg& c) {
      if (auto* d = std::get_if<ctl::done>(&c.body)) {
        if (d->instance >= done_.size() || done_[d->instance]) return;
        if (std::find(w.instances.begin(), w.instances.end(), d->instance) == w.instances.end()) {
          log(fmt::format("worker `{}` reported instance {}, which is not placed on it: ignored", w.host,
                          d->instance));
          return;
        }
        done_[d->instance] = true;
        cancelled_[d->instance] = d->cancelled;
        --remaining_;
        if (!d->failed && !d->cancelled) finished_part(d->instance);
        auto& s = report_.nodes[d->instance];
        set_counters(s, d->counters);
        s.queued = 0;
        if (!dep_.instances[d->instance].is_tool && --callers_left == 0) release();
        // Once the run is being cancelled, instances end failed or cancelled because of it: the first
        // cause (an interrupt, a failure, a lost host) stays the run's outcome.
        if (d->failed && !cancelling_) {
          fail(fmt::format("{} (on host `{}`)", d->error, w.host));
          cancel_all(d->error);
        } else if (d->cancelled && !cancelling_) {
          // Nobody here asked for it: the worker stopped (SIGINT) or gave the run up. Never a success.
          fail(fmt::format("worker `{}` at {} cancelled node {} mid-run{}", w.host, w.address,
                           local::instance_name(dep_, d->instance), d->error.empty() ? "" : ": " + d->error));
          cancel_all(report_.error);
        }
      } else if (auto* pr = std::get_if<ctl::progress>(&c.body)) {  // the counts so far, for on_progress
        for (const auto& x : pr->instances) {
          if (x.instance >= done_.size() || done_[x.instance]) continue;
          if (std::find(w.instances.begin(), w.instances.end(), x.instance) == w.instances.end()) continue;
          auto& s = report_.nodes[x.instance];
          set_counters(s, x.counters);
          s.queued = x.queued;
        }
        auto& edges = live_edges_[w.host];
        edges.clear();
        for (const auto& e : pr->edges) edges.push_back(edge_stats_of(e));
      } else if (auto* a = std::get_if<ctl::adopt>(&c.body)) {
        adopted(w, *a);
      } else if (auto* sp = std::get_if<ctl::snapshot_part>(&c.body)) {
        take_part(w, *sp);
      } else if (std::holds_alternative<ctl::asked>(c.body)) {
        snapshot_soon_ = true;
        soon_at_ = clock::now();
      } else if (auto* x = std::get_if<ctl::cancel>(&c.body)) {  // lost or damaged messages, or a stopping worker
        auto names = unfinished(w);
        fail(fmt::format("host `{}`: {}{}", w.host, x->reason, names.empty() ? "" : "; its nodes not done: " + names));
        cancel_all(x->reason);
      }
    });
    check_lost();
    check_moves();
    snapshot_tick();
    route_decisions();
    if (!cancelling_ && o_.interrupted && o_.interrupted()) {
      report_.result = local::run_report::outcome::interrupted;
      cancel_all("interrupted");
    }
    if (cancelling_ && clock::now() > cancel_deadline_) {
      std::string missing;
      for (auto& w : workers_)
        for (auto i : w.instances)
          if (!done_[i]) missing += (missing.empty() ? "" : ", ") + local::instance_name(dep_, i);
      log(fmt::format("workers did not all report within 3 s of the cancel (not reported: {}); ending the run",
                      missing));
      break;
    }
    if (o_.on_progress && clock::now() - last_progress > std::chrono::milliseconds(500)) {
      last_progress = clock::now();
      report_.seconds = std::chrono::duration<double>(clock::now() - started_).count();
      report_.edges.clear();
      for (const auto& [host, edges] : live_edges_) report_.edges.insert(report_.edges.end(), edges.begin(), edges.end());
      o_.on_progress(report_);
    }
  }
}

void driver::final_samples() {
  if (!o_.on_samples) return;
  auto seq = beat_++;
  for (auto& w : workers_)
    if (w.ready && !w.lost) send(w, ctl::heartbeat{seq, clock::now().time_since_epoch().count(), "?"});
  auto deadline = clock::now() + std::chrono::seconds(2);
  auto all_back = [&] {
    for (auto& w : workers_)
      if (w.ready && !w.lost && w.echoed <= seq) return false;
    return true;
  };
  while (!all_back() && clock::now() < deadline) drain(std::chrono::milliseconds(20), [](worker_link&, tr::control_msg&) {});
}

local::run_report driver::finish() {
  report_.edges.clear();  // the edges as last reported, nobody waiting any more
  for (const auto& [host, edges] : live_edges_)
    for (auto e : edges) {
      e.blocked = false;
      report_.edges.push_back(std::move(e));
    }
  if (started_ != clock::time_point{})
    report_.seconds = std::chrono::duration<double>(clock::now() - started_).count();
  if (ep_) {
    bool ok = report_.result == local::run_report::outcome::ok;
    for (auto& w : workers_)
      if (w.ready && !w.lost) send(w, ctl::run_ended{ok, report_.error});
  }
  ep_.reset();  // flushes what is queued (linger) before it goes
  return std::move(report_);
}

}  // namespace detail

local::run_report run_distributed(const graph::graph& g, const std::string& yaml, const placement::cluster& c,
                                  const placement::plan& p, const driver_options& options) {
  detail::driver d(g, yaml, c, p, options);
  return d.run();
}

}  // namespace loom::cluster
