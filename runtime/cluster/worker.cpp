// runtime/cluster/worker.cpp: the worker's loop (control messages from the driver) and one run (a slice of
// the graph on the local executor, stand-ins for the instances elsewhere).
#include "loom/runtime/cluster/worker.hpp"

#include <caf/all.hpp>
#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <set>
#include <thread>
#include <unordered_map>

#include "loom/graph/load.hpp"
#include "loom/graph/validate.hpp"
#include "loom/runtime/local/executor.hpp"
#include "loom/runtime/local/messages.hpp"
#include "loom/runtime/cluster/fingerprint.hpp"
#include "loom/runtime/local/node_actor.hpp"
#include "loom/runtime/observe/node_probes.hpp"
#include "loom/runtime/observe/run_metrics.hpp"
#include "loom/runtime/observe/trace.hpp"
#include "loom/runtime/transport/endpoint.hpp"
#include "loom/runtime/transport/stand_in.hpp"

namespace loom::cluster {
namespace {

using clock = std::chrono::steady_clock;
namespace tr = transport;
namespace ctl = transport::control;

// What the I/O thread hands the worker's main thread: a control message and who sent it.
struct event {
  std::string peer;
  tr::control_msg msg;
};

// One run on this worker: created by deploy, ended by run_ended or by the driver's silence.
struct run_state {
  std::uint64_t id = 0;
  std::string driver;  // the driver's name on our bound socket
  std::string host;    // which host of the plan we are
  std::mutex m;
  std::condition_variable cv;
  bool start = false, cancel = false, ended = false;
  // Set once this run is being cancelled here (the driver's cancel, an abandon, the worker stopping): an
  // instance that ends after that was cancelled, not finished, and is reported so.
  std::atomic<bool> cancelling{false};
  std::atomic<bool> refused_data{false};  // a message was refused at the boundary (reported once)
  // Another host's data address -> what this run sends between it and us, for a link found silent:
  // "data link `a` <-> `b` (tcp://...): numbers.out -> pace.in". Set once at deploy (atomic_load/store).
  std::shared_ptr<const std::unordered_map<std::string, std::string>> links;
  caf::actor coordinator;
  int me = -1;  // our index among the plan's hosts
  // Set by the run thread before it says ready; run on the slice's thread (local::on_slice_msg): an
  // instance of a lost host moves to host `host` (adopt), then its producers resend to it (resume).
  std::function<void(std::uint32_t instance, std::uint32_t epoch)> prepare;  // before the adopting spawn
  std::function<void(std::uint32_t instance, std::uint32_t host, std::uint32_t epoch)> adopt;
  std::function<void(std::uint32_t instance)> resume;
  std::atomic<clock::rep> last_heartbeat{clock::now().time_since_epoch().count()};
  std::thread thread;
};

class worker {
 public:
  explicit worker(const worker_options& o) : o_(o) {}

  int serve() {
    // run_worker() gave a worker without keys the per-user pair unless `insecure` was asked for.
    if (!o_.curve)
      log(fmt::format("INSECURE: plain TCP on {}, no authentication, no encryption: {} can run graphs here, as "
                      "uid {} (--insecure)",
                      o_.listen,
                      loopback_address(o_.listen) ? "every user of this host" : "anyone who reaches this port",
                      ::geteuid()));
    else if (!o_.user_keys.empty())
      log(fmt::format("keys: the per-user pair of uid {} ({}.key): only drivers run by this user are let in",
                      ::geteuid(), o_.user_keys));
    tr::endpoint_config cfg;
    cfg.name = o_.name.empty() ? "worker@" + o_.listen : o_.name;
    cfg.curve = o_.curve;
    cfg.max_part_bytes = o_.max_message_bytes;
    // A data link that closed is reported (and fails the run) only if it is not back after 8 s: longer than
    // the driver's 5 s heartbeat timeout plus a move's first step, so a peer worker that died (its
    // connection closes at once) is named by the driver as lost, or its `recover: replace` nodes moved
    // (which drops the link here); a link cut while the driver still hears both ends is named by this worker.
    cfg.link_grace = std::chrono::milliseconds(8000);
    cfg.limits.max_header_bytes = static_cast<std::size_t>(o_.max_message_bytes);
    cfg.allowed_clients = o_.allowed_clients;
    if (o_.curve && cfg.allowed_clients.empty()) cfg.allowed_clients.push_back(o_.curve->public_key);
    driver_keys_.insert(cfg.allowed_clients.begin(), cfg.allowed_clients.end());
    ep_ = std::make_unique<tr::endpoint>(
        cfg, tr::endpoint_callbacks{[this](tr::incoming&& in) { on_message(std::move(in)); },
                                    [this](const tr::problem& p) { on_problem(p); }});
    try {
      auto bound = ep_->bind(o_.listen);
      log(fmt::format("listening on {}{}", bound, o_.curve ? " (CurveZMQ)" : " (plain TCP: trusted networks only)"));
      if (o_.on_listening) o_.on_listening(bound);
    } catch (const std::exception& e) {
      log(fmt::format("cannot listen on {}: {}", o_.listen, e.what()));
      return 2;
    }
    caf::actor_system_config sys_cfg;
    sys_cfg.set("scheduler.max-threads", static_cast<size_t>(std::max(2u, std::thread::hardware_concurrency())));
    system_ = std::make_unique<caf::actor_system>(sys_cfg);

    while (!done_ && !(o_.stopping && o_.stopping())) {
      std::optional<event> ev;
      {
        std::unique_lock lock(m_);
        cv_.wait_for(lock, std::chrono::milliseconds(100), [&] { return !events_.empty(); });
        if (!events_.empty()) {
          ev = std::move(events_.front());
          events_.pop_front();
        }
      }
      if (ev) handle(*ev);
      watch_driver();
      reap();
    }
    if (run_) {
      // A worker stopped mid-run (SIGTERM from Slurm's scancel, SIGINT) fails the run: tell the driver first,
      // so the run fails naming this host at once (not a heartbeat timeout later).
      bool ended;
      {
        std::lock_guard lock(run_->m);
        ended = run_->ended;
      }
      if (!run_->driver.empty() && !ended)
        ep_->send_to_name(run_->driver, tr::control_msg{run_->id, ctl::cancel{"the worker is stopping (SIGTERM or SIGINT)"}});
      abandon("the worker is stopping");
      if (run_->thread.joinable()) run_->thread.join();
    }
    std::atomic_store(&run_, std::shared_ptr<run_state>{});
    system_.reset();
    ep_.reset();
    return 0;
  }

 private:
  void log(const std::string& line) {
    if (o_.log) o_.log(line);
  }

  // I/O thread: data goes straight to the local actors; control goes to the main thread.
  void on_message(tr::incoming&& in) {
    if (auto* env = std::get_if<tr::envelope>(&in.msg)) {
      auto r = std::atomic_load(&receiver_);
      if (!r) return;  // no run: a late message of an ended run
      if (r->stale(*env)) {  // from an instance's lost host that came back after it moved: dropped
        if (stale_.fetch_add(1) == 0)
          log(fmt::format("dropped a message from {}: instance {} has moved since it was sent (its old host came "
                          "back)",
                          in.peer, env->from));
        return;
      }
      auto run = env->run;
      if (auto err = r->deliver(std::move(*env), in.peer_key)) {
        log(fmt::format("refused a message from {}: {}", in.peer, *err));
        auto st = std::atomic_load(&run_);
        if (st && st->id == run && !st->driver.empty() && !st->refused_data.exchange(true))
          ep_->send_to_name(st->driver, tr::control_msg{st->id, ctl::cancel{"refused a message: " + *err}});
      }
      return;
    }
    auto& c = std::get<tr::control_msg>(in.msg);
    if (o_.curve && !driver_keys_.contains(in.peer_key)) {  // a peer worker may send data, never control
      log(fmt::format("ignored a control message from {} (curve key {}): that key is not an allowed driver's",
                      in.peer, in.peer_key));
      return;
    }
    if (auto* h = std::get_if<ctl::heartbeat>(&c.body)) {  // answered here, so a busy main thread is no excuse
      auto r = std::atomic_load(&run_);
      if (r && r->id == c.run) r->last_heartbeat = clock::now().time_since_epoch().count();
      // Our wall clock now: the driver puts this host's trace spans on its own clock with it.
      h->echo_unix_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
                            std::chrono::system_clock::now().time_since_epoch())
                            .count();
      if (h->samples == "?") h->samples = observe::metrics().text();  // a driver with --metrics asks
      ep_->send_to_name(in.peer, c);
      return;
    }
    std::lock_guard lock(m_);
    events_.push_back(event{in.peer, std::move(c)});
    cv_.notify_one();
  }

  void on_problem(const tr::problem& p) {
    // The endpoint logs none itself: once here, in the worker's log, or a warning when there is none. The
    // text names the peer (p.peer may be a stray client's binary routing id).
    if (o_.log) log(p.text);
    else spdlog::warn("worker: {}", p.text);
    if (p.what == tr::problem::kind::refused && p.peer.starts_with("tcp://")) {
      // A connection of ours that a peer refused is closed for good (a restarted peer that does not let our
      // key in until its next deploy): the next run opens a new one instead of sending into a closed one.
      // (Refused clients of our own socket are named by key or IP, not by address: they are not kept.)
      std::lock_guard lock(refused_m_);
      refused_links_.insert(p.peer);
    }
    if (p.what == tr::problem::kind::sequence || p.what == tr::problem::kind::decode) {
      // A lost or damaged message of a run: the driver fails the run and says which stream.
      auto r = std::atomic_load(&run_);
      if (p.stream && (!r || p.stream->run != r->id)) return;  // a late resend of an ended run: not this run's loss
      if (r && !r->driver.empty()) ep_->send_to_name(r->driver, tr::control_msg{r->id, ctl::cancel{p.text}});
    } else if (p.what == tr::problem::kind::silent) {
      // A data link of this run is gone past its timeout: the run fails naming both ends and what crossed it.
      auto r = std::atomic_load(&run_);
      if (!r || r->driver.empty() || r->cancelling) return;
      auto links = std::atomic_load(&r->links);
      if (!links) return;
      auto it = links->find(p.peer);
      if (it == links->end()) return;  // not a host this run sends to
      ep_->send_to_name(r->driver, tr::control_msg{r->id, ctl::cancel{fmt::format(
                                                         "{}: the connection closed (silent past the heartbeat "
                                                         "timeout, or reset) and did not come back",
                                                         it->second)}});
    }
  }

  void handle(event& ev) {
    auto& c = ev.msg;
    std::visit(
        [&](auto& body) {
          using T = std::decay_t<decltype(body)>;
          if constexpr (std::is_same_v<T, ctl::hello>) {
            pending_host_[ev.peer] = body.worker;  // the host we are for the run that follows
          } else if constexpr (std::is_same_v<T, ctl::deploy>) {
            deploy(ev.peer, c.run, body);
          } else if constexpr (std::is_same_v<T, ctl::start>) {
            signal(c.run, [](run_state& r) { r.start = true; });
          } else if constexpr (std::is_same_v<T, ctl::cancel>) {
            signal(c.run, [](run_state& r) { r.cancel = true, r.cancelling = true; });
            if (run_ && run_->id == c.run && run_->coordinator) caf::anon_send(run_->coordinator, local::cancel_atom::value);
          } else if constexpr (std::is_same_v<T, ctl::release>) {
            if (run_ && run_->id == c.run && run_->coordinator) caf::anon_send(run_->coordinator, local::release_atom::value);
          } else if constexpr (std::is_same_v<T, ctl::run_ended>) {
            signal(c.run, [](run_state& r) { r.ended = true; });
            // A slice held open for adopts (hold_until_release) ends with the run.
            if (run_ && run_->id == c.run && run_->coordinator)
              caf::anon_send(run_->coordinator, local::release_atom::value);
          } else if constexpr (std::is_same_v<T, ctl::adopt>) {
            move(c.run, body);
          } else if constexpr (std::is_same_v<T, ctl::resume>) {
            if (!run_ || run_->id != c.run) return;
            std::unique_lock lock(run_->m);
            auto coordinator = run_->coordinator;
            auto f = run_->resume;
            lock.unlock();
            if (coordinator && f)
              caf::anon_send(coordinator, local::on_slice_msg{[f, i = body.instance] { f(i); }});
          }
        },
        c.body);
  }

  // An instance of a lost host moves (the driver's adopt): the host it moves to spawns it into its running
  // slice first; then every host rewires, on the slice's thread, and echoes the adopt.
  void move(std::uint64_t run, const ctl::adopt& a) {
    if (!run_ || run_->id != run) return;
    std::unique_lock lock(run_->m);
    auto coordinator = run_->coordinator;
    auto prepare = run_->prepare;
    auto f = run_->adopt;
    bool here = static_cast<int>(a.host) == run_->me;
    lock.unlock();
    if (!coordinator || !f || !prepare) return;
    caf::anon_send(coordinator, local::on_slice_msg{[prepare, a] { prepare(a.instance, a.epoch); }});
    if (here) caf::anon_send(coordinator, local::adopt_msg{a.instance});
    caf::anon_send(coordinator, local::on_slice_msg{[f, a] { f(a.instance, a.host, a.epoch); }});
  }

  template <class F>
  void signal(std::uint64_t run, F f) {
    if (!run_ || run_->id != run) return;
    {
      std::lock_guard lock(run_->m);
      f(*run_);
    }
    run_->cv.notify_all();
  }

  void deploy(const std::string& driver, std::uint64_t id, ctl::deploy& d) {
    if (run_) {
      ep_->send_to_name(driver, tr::control_msg{id, ctl::refused{fmt::format("busy with run {}", run_->id)}});
      return;
    }
    auto it = pending_host_.find(driver);
    if (it == pending_host_.end()) {
      ep_->send_to_name(driver, tr::control_msg{id, ctl::refused{"deploy without hello: which host am I?"}});
      return;
    }
    auto r = std::make_shared<run_state>();
    r->id = id;
    r->driver = driver;
    r->host = it->second;
    pending_host_.erase(it);
    std::atomic_store(&run_, r);
    log(fmt::format("run {}: deployed as host `{}`", id, r->host));
    r->thread = std::thread([this, r, d = std::move(d)]() mutable { run(*r, d); });
  }

  // A run ends when the driver says so, or is abandoned when the driver goes silent.
  void watch_driver() {
    auto r = run_;
    if (!r) return;
    auto last = clock::time_point(clock::duration(r->last_heartbeat.load()));
    if (clock::now() - last > o_.driver_silence) abandon("no heartbeat from the driver");
  }

  void abandon(const std::string& why) {
    auto r = run_;
    if (!r) return;
    bool first;
    {
      std::lock_guard lock(r->m);
      first = !r->ended;
      r->cancel = r->ended = true;
      r->cancelling = true;
    }
    r->cv.notify_all();
    if (first) log(fmt::format("run {}: abandoned: {}", r->id, why));
    if (r->coordinator) caf::anon_send(r->coordinator, local::cancel_atom::value);
  }

  void reap() {
    if (!run_ || !finished_) return;
    if (run_->thread.joinable()) run_->thread.join();
    log(fmt::format("run {}: over; {}", run_->id, o_.once ? "leaving (--once)" : "waiting for the next"));
    std::atomic_store(&run_, std::shared_ptr<run_state>{});
    finished_ = false;
    done_ = o_.once;
  }

  void refuse(run_state& r, const std::string& why) {
    log(fmt::format("run {}: refused: {}", r.id, why));
    ep_->send_to_name(r.driver, tr::control_msg{r.id, ctl::refused{why}});
  }

  // The run thread: load the graph, spawn this host's slice, link to the other hosts, run, report.
  void run(run_state& r, ctl::deploy& d) {
    struct finish_guard {
      worker* w;
      ~finish_guard() { w->finished_ = true; }
    } guard{this};
    graph::diagnostics diags;
    auto g = graph::load_graph_text(d.graph_yaml, "deployed graph", diags);
    if (g)
      if (auto lack = lacking_kinds(d.kinds, *g, *o_.kinds)) return refuse(r, *lack);
    if (g) graph::validate(*g, *o_.kinds, diags);
    if (!g || diags.has_errors()) return refuse(r, "the graph does not validate here:\n" + diags.str());
    graph::apply_defaults(*g, *o_.kinds);
    local::deployment dep;
    try {
      dep = local::expand(*g, *o_.kinds);
    } catch (const std::exception& e) {
      return refuse(r, e.what());
    }
    // The same YAML must expand to the same instances and links here as on the driver: a plugin or build
    // that differs between hosts would renumber links silently.
    if (auto diff = first_difference(d.kinds, describe_kinds(*o_.kinds, dep), "the kinds of the driver and of this worker"))
      return refuse(r, *diff);
    if (auto diff = first_difference(d.expanded_graph, describe_deployment(dep),
                                     "the graph as the driver and this worker expand it"))
      return refuse(r, *diff);
    if (d.plan.instance_host.size() != dep.instances.size())
      return refuse(r, fmt::format("the plan places {} instances; the graph has {}", d.plan.instance_host.size(),
                                   dep.instances.size()));
    for (std::size_t i = 0; i < d.plan.instance_device.size(); ++i)
      dep.instances[i].init.device = d.plan.instance_device[i];  // kernels run where the plan put them
    // Links between two hosts get the driver's window (every host widens the same links the same way).
    widen_remote_links(dep, d.plan.instance_host, d.link_window);
    // From here on the plan is one immutable value, shared by the run and the receive rules.
    auto plan = std::make_shared<const local::deployment>(std::move(dep));
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
      ctl::done dn{i, failed, error, ctl::counters{s.in, s.out, s.busy_ns, s.queue_hwm, s.restarts, s.dropped},
                   cancelled};
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
        p.instances.push_back({mine[k], ctl::counters{s.in, s.out, s.busy_ns, s.queue_hwm, s.restarts, s.dropped},
                               s.queued});
      }
      for (const auto& e : rep.edges) p.edges.push_back({e.from, e.from_node, e.to, e.label, e.blocked_ns, e.blocked});
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

  const worker_options& o_;
  std::unique_ptr<tr::endpoint> ep_;
  std::unique_ptr<caf::actor_system> system_;
  std::mutex m_;
  std::condition_variable cv_;
  std::deque<event> events_;
  std::map<std::string, std::string> pending_host_;  // driver -> the host it said we are
  std::map<std::string, tr::peer_id> peer_by_address_;  // used by the run thread only, one run at a time
  std::mutex refused_m_;
  std::set<std::string> refused_links_;  // addresses whose connection of ours was refused (I/O thread -> run thread)
  std::shared_ptr<run_state> run_;  // written by the main thread; read by the I/O thread with atomic_load
  std::atomic<bool> finished_{false};
  bool done_ = false;  // `once`: the run is over
  std::shared_ptr<const tr::receiver> receiver_;
  std::set<std::string> driver_keys_;  // written before the endpoint runs; read-only after
  std::atomic<std::uint64_t> stale_{0};  // envelopes dropped as sent before their instance moved
  std::unique_ptr<observe::run_metrics> metrics_;  // the run thread's; serves through the registry
};

}  // namespace

bool loopback_address(const std::string& address) {
  std::string_view a = address;
  if (a.starts_with("tcp://")) a.remove_prefix(6);
  auto colon = a.rfind(':');
  auto host = a.substr(0, colon == std::string_view::npos ? a.size() : colon);
  if (host.starts_with('[') && host.ends_with(']')) host = host.substr(1, host.size() - 2);
  return host == "localhost" || host == "::1" || (host.starts_with("127.") && host.find_first_not_of("0123456789.") == std::string_view::npos);
}

int run_worker(const worker_options& given) {
  // Secure by default for every caller, not only the command line: no keys and no `insecure` means the
  // per-user pair (made on first use), so only this user's drivers are let in.
  worker_options options = given;
  if (!options.curve && !options.insecure) {
    try {
      auto mine = transport::user_keypair();
      options.curve = mine.keys;
      options.user_keys = mine.prefix;
    } catch (const std::exception& e) {
      if (options.log) options.log(e.what());
      return 2;
    }
  }
  worker w(options);
  return w.serve();
}

}  // namespace loom::cluster
