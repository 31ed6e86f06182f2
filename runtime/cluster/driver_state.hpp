// runtime/cluster/driver_state.hpp (private): the driver of one distributed run as one object: its link to
// each worker (peer, heartbeats, instances, clock offset), the run's report as it fills, and the moves of
// instances off lost hosts. driver.cpp runs the lifecycle (connect, deploy, start, watch, gather, end);
// driver_moves.cpp finds lost workers and moves their `recover: replace` instances.
#pragma once

#include <spdlog/spdlog.h>

#include <chrono>
#include <condition_variable>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "loom/runtime/cluster/driver.hpp"
#include "loom/runtime/local/executor.hpp"
#include "loom/runtime/transport/endpoint.hpp"

namespace loom::cluster::detail {

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
      : g_(g), yaml_(yaml), c_(c), p_(p), o_(o), dep_(local::expand(g, *o.kinds)), now_(p),
        snapshot_epoch_(o.restore ? o.restore->epoch : 0) {}

  local::run_report run();

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

  bool connect();
  void deploy();
  ctl::plan plan_of_deploy() const;
  void deploy_to(worker_link& w, const ctl::plan& plan);
  worker_link* by_peer(const std::string& peer);

  // Waits up to `wait` for messages, then handles what arrived: heartbeat echoes and spans here, the rest
  // with on_control(worker, message). A lost worker's messages are ignored.
  template <class OnControl>
  void drain(std::chrono::milliseconds wait, OnControl&& on_control);
  bool await_ready();

  // Heartbeats go out from the deploy on, so a deploy slower than the workers' timeout does not make them
  // abandon the run, and a worker that dies while it deploys is found as quickly as one that dies later.
  void beat();

  // A heartbeat's echo: the worker's wall clock at the echo against the middle of our send and receive. The
  // sample with the shortest round trip is kept (its error is at most half that round trip).
  void note_clock(worker_link& w, const ctl::heartbeat& h);
  void add_spans(worker_link& w, const ctl::spans& s);

  // A traced run: each worker sends its spans once its part ended; wait for them a little.
  void gather_spans();

  // A worker silent past the heartbeat timeout is lost with every instance it has not reported (or
  // reported as cancelled): those with `recover: replace` move to a surviving host (replace()); otherwise the
  // run fails naming the host and them.
  void check_lost();

  // Moves the unfinished instances of lost worker `w` to surviving hosts, when every one of them may move
  // (`recover: replace`) and its neighbours live elsewhere; else says why not (empty: nothing moves).
  // Each surviving worker gets an adopt per moved instance and echoes it once rewired; then a resume
  // (pending_moves_, watch()).
  bool replace(worker_link& w, const std::vector<std::uint32_t>& moving, std::string& why_not);

  // A worker echoed an adopt: once every one has, the moved instance's producers resend to it.
  void adopted(const worker_link& w, const ctl::adopt& a);

  // Every move has a deadline: a worker that does not rewire in time fails the run naming it.
  void check_moves();

  // The data links that went with a lost worker, naming both ends: "; data links lost: `a` <-> `b`
  // (numbers.out -> pace.in, pace.out -> tally.in)". The driver cannot tell a dead host from a cut link
  // (both are silence), so it names every link the run had across it.
  std::string links_lost(const worker_link& w) const;

  // The instances of `w` that have not finished, for a report ("pace, work#1").
  std::string unfinished(const worker_link& w) const;

  void cancel_all(const std::string& why);
  void watch();

  // Snapshots (driver_options::snapshot_every): start an epoch when one is due, take a worker's part, and
  // drop an epoch a move, a cancel or its deadline interrupts.
  void snapshot_tick();
  void take_part(const worker_link& w, ctl::snapshot_part& p);
  void finished_part(std::uint32_t instance);
  void complete_snapshot();
  // Decisions from driver_options::poll_decisions, each to the worker its instance lives on.
  void route_decisions();

  // --metrics: once every instance has reported, one more heartbeat round brings each worker's final
  // samples (a worker updates its samples before it reports an instance done). Bounded: 2 s.
  void final_samples();
  local::run_report finish();

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
  std::shared_ptr<local::snapshot> building_;  // the epoch being gathered, or null
  std::size_t parts_left_ = 0;
  bool snapshot_soon_ = false;  // the next epoch starts at soon_at_, before its interval: an instance asked
  clock::time_point soon_at_;   // for a decision (now), or a run that would detach looks again (100 ms)
  std::vector<std::vector<std::uint32_t>> consumers_of_;  // the quiet test's table (made at the first need)
  std::uint64_t snapshot_epoch_ = 0;
  clock::time_point last_snapshot_ = clock::now(), epoch_started_;
  clock::time_point next_beat_;
};

}  // namespace loom::cluster::detail
