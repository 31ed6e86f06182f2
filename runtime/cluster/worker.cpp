// runtime/cluster/worker.cpp: `loom worker`'s main loop and its I/O thread's handlers: it binds, answers
// heartbeats, takes one run at a time from a driver (hello, deploy, start, cancel, release, adopt, resume,
// run_ended) and abandons it when the driver goes silent. The run itself: worker_run.cpp.
#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include "loom/runtime/cluster/protocol.hpp"
#include "loom/runtime/cluster/worker_state.hpp"
#include "loom/runtime/local/messages.hpp"
#include "loom/runtime/observe/metrics.hpp"

namespace loom::cluster {
namespace detail {

int worker::serve() {
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
  auto cfg = control_endpoint(o_.name.empty() ? "worker@" + o_.listen : o_.name, o_.curve, o_.max_message_bytes);
  // A data link that closed is reported (and fails the run) only if it is not back after 8 s: longer than
  // the driver's 5 s heartbeat timeout plus a move's first step, so a peer worker that died (its
  // connection closes at once) is named by the driver as lost, or its `recover: replace` nodes moved
  // (which drops the link here); a link cut while the driver still hears both ends is named by this worker.
  cfg.link_grace = std::chrono::milliseconds(8000);
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
  sys_cfg.set("scheduler.policy", o_.scheduler == scheduler_policy::sharing ? caf::atom("sharing") : caf::atom("stealing"));
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

void worker::on_message(tr::incoming&& in) {
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

void worker::on_problem(const tr::problem& p) {
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

void worker::handle(event& ev) {
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
        } else if constexpr (std::is_same_v<T, ctl::decide>) {
          // A person's decision: the slice's coordinator hands it to the instance at its next look (50 ms).
          signal(c.run, [&body](run_state& r) { r.decided.push_back({body.instance, body.id, std::move(body.d)}); });
        } else if constexpr (std::is_same_v<T, ctl::snapshot>) {
          // The driver's epoch: the slice's coordinator asks each local instance for its part (worker_run.cpp).
          if (!run_ || run_->id != c.run) return;
          std::unique_lock lock(run_->m);
          auto coordinator = run_->coordinator;
          lock.unlock();
          if (coordinator) caf::anon_send(coordinator, local::snapshot_msg{body.epoch});
        }
      },
      c.body);
}

void worker::move(std::uint64_t run, const ctl::adopt& a) {
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

void worker::deploy(const std::string& driver, std::uint64_t id, ctl::deploy& d) {
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

void worker::watch_driver() {
  auto r = run_;
  if (!r) return;
  auto last = clock::time_point(clock::duration(r->last_heartbeat.load()));
  if (clock::now() - last > o_.driver_silence) abandon("no heartbeat from the driver");
}

void worker::abandon(const std::string& why) {
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

void worker::reap() {
  if (!run_ || !finished_) return;
  if (run_->thread.joinable()) run_->thread.join();
  log(fmt::format("run {}: over; {}", run_->id, o_.once ? "leaving (--once)" : "waiting for the next"));
  std::atomic_store(&run_, std::shared_ptr<run_state>{});
  finished_ = false;
  done_ = o_.once;
}

void worker::refuse(run_state& r, const std::string& why) {
  log(fmt::format("run {}: refused: {}", r.id, why));
  ep_->send_to_name(r.driver, tr::control_msg{r.id, ctl::refused{why}});
}

}  // namespace detail


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
  detail::worker w(options);
  return w.serve();
}

}  // namespace loom::cluster
