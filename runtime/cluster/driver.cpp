// runtime/cluster/driver.cpp: deploy, start, watch (heartbeats), gather, end.
#include "loom/runtime/cluster/driver.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <condition_variable>
#include <algorithm>
#include <deque>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <string_view>

#include "loom/graph/diagnostics.hpp"
#include "loom/runtime/cluster/fingerprint.hpp"
#include "loom/runtime/local/executor.hpp"
#include "loom/runtime/local/node_actor.hpp"
#include "loom/runtime/observe/trace.hpp"
#include "loom/runtime/transport/endpoint.hpp"

namespace loom::cluster {
namespace {

using clock = std::chrono::steady_clock;
namespace tr = transport;
namespace ctl = transport::control;

struct inbox {
  std::mutex m;
  std::condition_variable cv;
  std::deque<tr::incoming> messages;
  std::deque<tr::problem> problems;
};

struct worker_link {
  std::string host;
  std::string address;
  tr::peer_id peer = 0;
  bool ready = false;
  bool lost = false;  // silent past the heartbeat timeout: nothing more is sent to it
  clock::time_point last_seen = clock::now();
  std::vector<std::uint32_t> instances;
  // A traced run: its clock's offset from ours (its wall clock minus ours), from the heartbeat echo with
  // the shortest round trip; and whether its spans have come.
  std::int64_t clock_offset_ns = 0;
  std::int64_t best_rtt_ns = -1;
  bool spans_in = false;
  std::uint64_t echoed = 0;  // heartbeats below this one came back
};

class driver {
 public:
  driver(const graph::graph& g, const std::string& yaml, const placement::cluster& c, const placement::plan& p,
         const driver_options& o)
      : g_(g), yaml_(yaml), c_(c), p_(p), o_(o), dep_(local::expand(g, *o.kinds)), now_(p) {}

  local::run_report run() {
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

 private:
  void log(const std::string& line) {
    if (o_.log) o_.log(line);
  }
  // A problem the endpoint reported (it logs none itself): in the driver's log, or a warning when there is
  // none (quiet), so it is printed once either way.
  void warn(const std::string& line) {
    if (o_.log) o_.log(line);
    else spdlog::warn("driver: {}", line);
  }

  void fail(const std::string& why) {
    if (report_.result != local::run_report::outcome::failed) {
      report_.result = local::run_report::outcome::failed;
      report_.error = why;
    }
  }

  template <class Body>
  void send(const worker_link& w, Body body) {
    ep_->send(w.peer, tr::control_msg{run_id_, std::move(body)});
  }

  bool connect() {
    tr::endpoint_config cfg;
    cfg.name = fmt::format("driver-{}", getpid());
    cfg.curve = o_.curve;
    cfg.max_part_bytes = o_.max_message_bytes;
    cfg.limits.max_header_bytes = static_cast<std::size_t>(o_.max_message_bytes);
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

  void deploy() {
    ctl::plan plan;
    for (auto& w : workers_) {
      auto key = o_.host_keys.find(w.host);
      plan.hosts.push_back(ctl::host{w.host, w.address, key != o_.host_keys.end() ? key->second : std::string()});
    }
    plan.instance_host.resize(p_.instances.size());
    for (std::uint32_t k = 0; k < workers_.size(); ++k)
      for (auto i : workers_[k].instances) plan.instance_host[i] = k;
    for (const auto& placed : p_.instances) plan.instance_device.push_back(placed.device);
    for (auto& w : workers_) {
      send(w, ctl::hello{w.host});
      send(w, ctl::deploy{yaml_, plan, expanded_, kinds_,
                          o_.trace ? observe::to_traceparent(o_.trace->root_context()) : std::string(),
                          o_.link_window});
      w.last_seen = clock::now();  // the heartbeat clock starts at the deploy, on both sides
    }
  }

  worker_link* by_peer(const std::string& peer) {
    for (auto& w : workers_)
      if (w.address == peer || w.host == peer) return &w;
    return nullptr;
  }

  // Handles what arrived; returns false when waiting should stop.
  template <class OnControl>
  void drain(std::chrono::milliseconds wait, OnControl&& on_control) {
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

  bool await_ready() {
    auto deadline = clock::now() + o_.connect_timeout + std::chrono::seconds(10);
    std::size_t ready = 0;
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
      drain(std::chrono::milliseconds(50), [&](worker_link& w, tr::control_msg& c) {
        if (std::holds_alternative<ctl::hello>(c.body) && !w.ready) {
          w.ready = true;
          ++ready;
        } else if (auto* r = std::get_if<ctl::refused>(&c.body)) {
          fail(fmt::format("worker `{}` refused the run: {}", w.host, r->reason));
        }
      });
    }
    if (report_.result != local::run_report::outcome::ok) {
      for (auto& w : workers_) send(w, ctl::cancel{report_.error});
      return false;
    }
    return true;
  }

  // Heartbeats go out from the deploy on, so a deploy slower than the workers' timeout does not make them
  // abandon the run, and a worker that dies while it deploys is found as quickly as one that dies later.
  void beat() {
    if (clock::now() < next_beat_) return;
    for (auto& w : workers_)
      if (!w.lost) send(w, ctl::heartbeat{beat_, clock::now().time_since_epoch().count(), o_.on_samples ? "?" : ""});
    ++beat_;
    next_beat_ = clock::now() + o_.heartbeat_every;
  }

  // A heartbeat's echo: the worker's wall clock at the echo against the middle of our send and receive. The
  // sample with the shortest round trip is kept (its error is at most half that round trip).
  void note_clock(worker_link& w, const ctl::heartbeat& h) {
    if (!o_.trace || h.echo_unix_ns == 0) return;
    auto now = clock::now().time_since_epoch().count();
    auto rtt = now - h.time_ns;
    if (rtt < 0 || (w.best_rtt_ns >= 0 && rtt >= w.best_rtt_ns)) return;
    w.best_rtt_ns = rtt;
    auto mid_unix = h.time_ns + rtt / 2 + o_.trace->unix_minus_steady_ns();
    w.clock_offset_ns = h.echo_unix_ns - mid_unix;
  }

  void add_spans(worker_link& w, const ctl::spans& s) {
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

  // A traced run: each worker sends its spans once its part ended; wait for them a little.
  void gather_spans() {
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

  // A worker silent past the heartbeat timeout is lost with every instance it has not reported (or
  // reported as cancelled): those with `recover: replace` move to a surviving host (replace()); otherwise the
  // run fails naming the host and them.
  void check_lost() {
    for (auto& w : workers_) {
      if (w.instances.empty() || w.lost || clock::now() - w.last_seen <= o_.heartbeat_timeout) continue;
      std::vector<std::uint32_t> unfinished_ones;
      for (auto i : w.instances)
        if (!done_[i] || cancelled_[i]) unfinished_ones.push_back(i);
      if (unfinished_ones.empty()) continue;
      auto silent = std::chrono::duration<double>(clock::now() - w.last_seen).count();
      std::string why_not;
      if (replace(w, unfinished_ones, why_not)) continue;
      fail(fmt::format("worker `{}` at {} lost: no heartbeat for {:.1f} s; nodes lost: {}{}{}", w.host, w.address, silent,
                       unfinished(w), links_lost(w), why_not.empty() ? "" : "; " + why_not));
      for (auto i : w.instances)
        if (!done_[i]) done_[i] = true, --remaining_;
      w.instances.clear();
      w.lost = true;
      ep_->drop(w.peer);  // what is queued for it would only hold up the driver's exit
      cancel_all(report_.error);
    }
  }

  // Moves the unfinished instances of lost worker `w` to surviving hosts, when every one of them may move
  // (`recover: replace`) and its neighbours live elsewhere; else says why not (empty: nothing moves).
  // Each surviving worker gets an adopt per moved instance and echoes it once rewired; then a resume
  // (pending_moves_, watch()).
  bool replace(worker_link& w, const std::vector<std::uint32_t>& moving, std::string& why_not) {
    if (cancelling_ || report_.result != local::run_report::outcome::ok) return false;
    bool any = false;
    for (auto i : moving) any = any || dep_.instances[i].movable;
    if (!any) return false;
    auto worker_of = [&](std::uint32_t i) -> worker_link* {
      for (auto& x : workers_)
        if (std::find(x.instances.begin(), x.instances.end(), i) != x.instances.end()) return &x;
      return nullptr;
    };
    for (auto i : moving) {
      const auto& inst = dep_.instances[i];
      auto name = local::instance_name(dep_, i);
      if (!inst.movable) {
        why_not = fmt::format("`{}` cannot move (it does not have `recover: replace`)", name);
        return false;
      }
      auto neighbour_lost = [&](std::uint32_t j) {
        auto* x = worker_of(j);
        return x == nullptr || x == &w || x->lost;
      };
      for (const auto& l : inst.in_links)
        if (neighbour_lost(l.producer)) {
          why_not = fmt::format("`{}` cannot move: its producer `{}` was on the lost host too", name,
                                local::instance_name(dep_, l.producer));
          return false;
        }
      for (const auto& port : inst.out_ports)
        for (const auto& e : port)
          for (const auto& l : e.links)
            if (neighbour_lost(l.consumer)) {
              why_not = fmt::format("`{}` cannot move: its consumer `{}` was on the lost host too", name,
                                    local::instance_name(dep_, l.consumer));
              return false;
            }
    }
    // The planner places them on the hosts still in the run, by the rules it placed everything with.
    std::vector<char> unavailable(c_.hosts.size(), 1);
    for (const auto& x : workers_)
      if (&x != &w && !x.lost && x.ready)
        if (auto h = c_.find(x.host); h >= 0) unavailable[static_cast<std::size_t>(h)] = 0;
    graph::diagnostics diags;
    auto next = placement::replace_lost(g_, *o_.kinds, c_, now_, unavailable,
                                        std::vector<int>(moving.begin(), moving.end()), diags);
    if (diags.has_errors()) {
      why_not = "no surviving host fits: " + diags.str();
      return false;
    }
    w.lost = true;
    ep_->drop(w.peer);
    std::vector<std::uint32_t> stay;
    for (auto i : w.instances)
      if (std::find(moving.begin(), moving.end(), i) == moving.end()) stay.push_back(i);
    w.instances = stay;
    for (auto i : moving) {
      const auto& target = c_.hosts[static_cast<std::size_t>(next.instances[i].host)].name;
      std::uint32_t k = 0;
      while (k < workers_.size() && workers_[k].host != target) ++k;
      workers_[k].instances.push_back(i);
      now_.instances[i] = next.instances[i];
      cancelled_[i] = false;
      done_[i] = false;
      // The summary's counts for it are the replacement's; the line keeps what the lost one had reported.
      auto& s = report_.nodes[i];
      auto line = fmt::format("{} (host `{}` -> `{}`; {} values handled on `{}` before)", local::instance_name(dep_, i),
                              w.host, target, s.in, w.host);
      // A spread group that had to share a host in this move says so in the summary too.
      if (auto at = next.instances[i].reason.find("; spread group "); at != std::string::npos)
        line.insert(line.size() - 1, next.instances[i].reason.substr(at));
      s.in = s.out = s.busy_ns = s.queue_hwm = s.restarts = s.dropped = s.queued = 0;
      log(fmt::format("worker `{}` lost; moving {}: {}", w.host, line, next.instances[i].reason));
      report_.moved.push_back(line);
      ++epoch_[i];
      pending_move m{i, {}, clock::now() + std::chrono::seconds(10)};
      for (std::uint32_t x = 0; x < workers_.size(); ++x)
        if (!workers_[x].lost && workers_[x].ready) {
          m.waiting.insert(x);
          send(workers_[x], ctl::adopt{i, k, epoch_[i]});
        }
      pending_moves_.push_back(std::move(m));
    }
    return true;
  }

  // A worker echoed an adopt: once every one has, the moved instance's producers resend to it.
  void adopted(const worker_link& w, const ctl::adopt& a) {
    auto x = static_cast<std::uint32_t>(&w - workers_.data());
    for (auto it = pending_moves_.begin(); it != pending_moves_.end(); ++it) {
      if (it->instance != a.instance) continue;
      it->waiting.erase(x);
      if (!it->waiting.empty()) return;
      for (auto& v : workers_)
        if (!v.lost && v.ready) send(v, ctl::resume{a.instance});
      pending_moves_.erase(it);
      return;
    }
  }

  // Every move has a deadline: a worker that does not rewire in time fails the run naming it.
  void check_moves() {
    for (const auto& m : pending_moves_) {
      if (clock::now() < m.deadline || cancelling_) continue;
      std::string names;
      for (auto x : m.waiting) names += (names.empty() ? "" : ", ") + workers_[x].host;
      fail(fmt::format("moving {} off a lost host: worker(s) {} did not rewire within 10 s",
                       local::instance_name(dep_, m.instance), names));
      cancel_all(report_.error);
    }
  }

  // The data links that went with a lost worker, naming both ends: "; data links lost: `a` <-> `b`
  // (numbers.out -> pace.in, pace.out -> tally.in)". The driver cannot tell a dead host from a cut link
  // (both are silence), so it names every link the run had across it.
  std::string links_lost(const worker_link& w) const {
    std::vector<std::uint32_t> instance_host(now_.instances.size());
    for (std::uint32_t i = 0; i < now_.instances.size(); ++i) instance_host[i] = static_cast<std::uint32_t>(now_.instances[i].host);
    if (w.instances.empty()) return {};
    auto mine = instance_host[w.instances.front()];
    std::string out;
    for (const auto& other : workers_) {
      if (&other == &w || other.instances.empty()) continue;
      auto theirs = instance_host[other.instances.front()];
      auto links = links_between(dep_, instance_host, theirs, mine);
      if (!links.empty()) out += fmt::format("{}`{}` <-> `{}` ({})", out.empty() ? "" : ", ", other.host, w.host, links);
    }
    return out.empty() ? out : "; data links lost: " + out;
  }

  // The instances of `w` that have not finished, for a report ("pace, work#1").
  std::string unfinished(const worker_link& w) const {
    std::string names;
    for (auto i : w.instances)
      if (!done_[i] || cancelled_[i]) names += (names.empty() ? "" : ", ") + local::instance_name(dep_, i);
    return names;
  }

  void cancel_all(const std::string& why) {
    if (cancelling_) return;
    cancelling_ = true;
    cancel_deadline_ = clock::now() + std::chrono::seconds(3);
    for (auto& w : workers_)  // spares too: they hold their slice open for an adopt
      if (!w.lost) send(w, ctl::cancel{why});
  }

  void watch() {
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
          auto& s = report_.nodes[d->instance];
          s.in = d->counters.in, s.out = d->counters.out, s.busy_ns = d->counters.busy_ns;
          s.queue_hwm = d->counters.queue_hwm, s.restarts = d->counters.restarts, s.dropped = d->counters.dropped;
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
            s.in = x.counters.in, s.out = x.counters.out, s.busy_ns = x.counters.busy_ns;
            s.queue_hwm = x.counters.queue_hwm, s.restarts = x.counters.restarts, s.dropped = x.counters.dropped;
            s.queued = x.queued;
          }
          auto& edges = live_edges_[w.host];
          edges.clear();
          for (const auto& e : pr->edges) edges.push_back({e.from, e.from_node, e.to, e.label, e.blocked_ns, e.blocked});
        } else if (auto* a = std::get_if<ctl::adopt>(&c.body)) {
          adopted(w, *a);
        } else if (auto* x = std::get_if<ctl::cancel>(&c.body)) {  // lost or damaged messages, or a stopping worker
          auto names = unfinished(w);
          fail(fmt::format("host `{}`: {}{}", w.host, x->reason, names.empty() ? "" : "; its nodes not done: " + names));
          cancel_all(x->reason);
        }
      });
      check_lost();
      check_moves();
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

  // --metrics: once every instance has reported, one more heartbeat round brings each worker's final
  // samples (a worker updates its samples before it reports an instance done). Bounded: 2 s.
  void final_samples() {
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

  local::run_report finish() {
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

  const graph::graph& g_;
  const std::string& yaml_;
  const placement::cluster& c_;
  const placement::plan& p_;
  const driver_options& o_;
  local::deployment dep_;
  local::run_report report_;
  std::map<std::string, std::vector<local::edge_stats>> live_edges_;  // per host: its latest progress's edges
  std::unique_ptr<tr::endpoint> ep_;
  std::vector<worker_link> workers_;
  inbox in_;
  std::uint64_t run_id_ = 0;
  bool cancelling_ = false;
  clock::time_point cancel_deadline_, started_;
  std::vector<bool> done_, cancelled_;  // per instance: reported; reported as cancelled
  placement::plan now_;                 // the plan as it is now (instances moved off lost hosts)
  struct pending_move {
    std::uint32_t instance;
    std::set<std::uint32_t> waiting;  // workers (indexes) that have not echoed its adopt
    clock::time_point deadline;
  };
  std::vector<pending_move> pending_moves_;
  std::map<std::uint32_t, std::uint32_t> epoch_;  // per moved instance: its moves so far
  std::size_t remaining_ = 0;           // instances not reported yet
  std::uint64_t beat_ = 0;
  std::string expanded_, kinds_;  // what every worker must expand the same way (fingerprint.hpp)
  clock::time_point next_beat_;
};

}  // namespace

local::run_report run_distributed(const graph::graph& g, const std::string& yaml, const placement::cluster& c,
                                  const placement::plan& p, const driver_options& options) {
  driver d(g, yaml, c, p, options);
  return d.run();
}

}  // namespace loom::cluster
