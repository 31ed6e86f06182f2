// runtime/local/attempts.cpp: what happens when an attempt does not commit. An attempt (opened, run and
// committed in node_host.hpp) that throws is abandoned: its emissions rolled back, its checkpoint and its
// calls dropped. Then the node restarts: a fresh one from the factory, given its last checkpoint and the
// inputs since then replayed with their emissions discarded, and the turn (node_actor.cpp) hands it the same
// input again; past max_restarts the instance reports the failure to the coordinator.
#include "loom/runtime/local/node_host.hpp"

#include <fmt/format.h>

#include "loom/runtime/json.hpp"

namespace loom::local {

namespace host_detail {

std::string excerpt(const value& v) {
  auto s = to_json_line(v);
  if (s.size() > 80) s = s.substr(0, 77) + "...";
  return s;
}

std::string what_of(std::exception_ptr e) {
  try {
    std::rethrow_exception(std::move(e));
  } catch (const std::exception& x) {
    return x.what();
  } catch (...) {
    return "an exception that is not a std::exception";
  }
}

}  // namespace host_detail

using namespace host_detail;

// Discards the open attempt: its values, its checkpoint, its outstanding calls.
void node_host::abandon_attempt() {
  if (site_ == site::none) return;
  site_ = site::none;
  taken_ = 0;
  out_.rollback();
  pending_checkpoint_.reset();
  for (auto& [id, p] : calls_) self_->send(p.target, cancel_call_msg{id, p.to});
  calls_.clear();
}

void node_host::failed_attempt(const std::string& error) {
  auto s = site_;
  auto input = input_;
  auto failing = s == site::message ? in_.front_at(current_) : value{};
  auto run_len = current_len_;  // a run kind fails a whole run: name its first value and its length
  abandon_attempt();
  if (stopping()) return on_cancel();  // an aborted blocking call: the run is stopping anyway
  std::string where;
  switch (s) {
    case site::message:
      where = fmt::format("on input `{}` (edge {}, value {}{})", me_.input_names[in_.port_of(input)],
                          in_.label_of(input), excerpt(failing),
                          run_len > 1 ? fmt::format(" and the {} after it, handled as one run", run_len - 1)
                                      : std::string{});
      break;
    case site::start: where = "while starting"; break;
    case site::pull: where = "while producing"; break;
    case site::close: where = fmt::format("while closing input `{}`", me_.input_names[to_close_.front()]); break;
    case site::finish: where = "while finishing"; break;
    case site::timer: where = "on its timer"; break;
    case site::decision:
      where = decided_.empty() ? "on a decision" : fmt::format("on the decision about {}", decided_.front().id);
      break;
    default: where = "while handling a tool reply"; break;
  }
  std::string last = error;
  while (restarts_ < me_.max_restarts) {
    ++restarts_;
    counters_.restarts.fetch_add(1, std::memory_order_relaxed);
    try {
      restart();
      if (s == site::timer) timer_ready_ = true;  // the fresh node gets on_timer again, as it gets an input
      schedule_pump();  // the same input again, from the mailbox's turn
      return;
    } catch (...) {
      last = fmt::format("{}; restart {} failed: {}", error, restarts_, what_of(std::current_exception()));
    }
  }
  auto attempts = me_.max_restarts > 0 ? fmt::format(" (after {} restarts: {} attempts)", restarts_, restarts_ + 1)
                                       : std::string{};
  report(instance_end::failed, fmt::format("{} failed {}{}: {}", who(), where, attempts, last));
}

// A fresh node: its last checkpoint, then what it must see again with its emissions discarded.
void node_host::restart() {
  run_->clear_stop_hook(me_.index);
  impl_.reset();
  timer_armed_ = timer_ready_ = false;  // the wake-up on its way (if any) is the old node's: dropped
  ++timer_sent_;
  node_init init = me_.init;
  init.attempt = restarts_;
  init.restored = checkpoint_;
  impl_ = me_.def->make(init);
  restoring_ = true;
  out_.begin();
  try {
    impl_->on_start(*this);
    for (const auto& r : replay_) {
      if (r.close)
        impl_->on_input_closed(*this, r.port);
      else
        impl_->on_message(*this, r.port, r.v);
    }
  } catch (...) {
    out_.rollback();
    restoring_ = false;
    throw;
  }
  out_.rollback();
  restoring_ = false;
}

}  // namespace loom::local
