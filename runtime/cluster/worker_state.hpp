// runtime/cluster/worker_state.hpp (private): a `loom worker` as one object: its endpoint, the control
// events its I/O thread hands the main thread, and the one run it serves at a time (run_state).
// worker.cpp holds the main loop (deploy, start, cancel, adopt, the driver's silence) and the I/O thread's
// handlers; worker_run.cpp the run thread (this host's slice, its links to the other hosts, moves).
#pragma once

#include <caf/all.hpp>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <unordered_map>

#include "loom/runtime/cluster/worker.hpp"
#include "loom/runtime/local/executor.hpp"
#include "loom/runtime/observe/run_metrics.hpp"
#include "loom/runtime/transport/endpoint.hpp"
#include "loom/runtime/transport/stand_in.hpp"

namespace loom::cluster::detail {

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
  // Decisions the driver routed here (ctl::decide), until the slice's coordinator takes them
  // (run_options::poll_decisions). Guarded by m.
  std::vector<local::routed_decision> decided;
  std::thread thread;
};

class worker {
 public:
  explicit worker(const worker_options& o) : o_(o) {}

  int serve();

 private:
  void log(const std::string& line) {
    if (o_.log) o_.log(line);
  }

  // I/O thread: data goes straight to the local actors; control goes to the main thread.
  void on_message(tr::incoming&& in);
  void on_problem(const tr::problem& p);
  void handle(event& ev);

  // An instance of a lost host moves (the driver's adopt): the host it moves to spawns it into its running
  // slice first; then every host rewires, on the slice's thread, and echoes the adopt.
  void move(std::uint64_t run, const ctl::adopt& a);

  template <class F>
  void signal(std::uint64_t run, F f) {
    if (!run_ || run_->id != run) return;
    {
      std::lock_guard lock(run_->m);
      f(*run_);
    }
    run_->cv.notify_all();
  }

  void deploy(const std::string& driver, std::uint64_t id, ctl::deploy& d);

  // A run ends when the driver says so, or is abandoned when the driver goes silent.
  void watch_driver();
  void abandon(const std::string& why);
  void reap();
  void refuse(run_state& r, const std::string& why);

  // The run thread: load the graph, spawn this host's slice, link to the other hosts, run, report.
  void run(run_state& r, ctl::deploy& d);

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

}  // namespace loom::cluster::detail
