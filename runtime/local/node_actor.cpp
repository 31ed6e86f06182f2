// runtime/local/node_actor.cpp: the actor that hosts one node instance, and its turn. Every message goes
// from the behavior below to a handler of node_host (node_host.hpp); input, credits, ends of stream and
// timers then come here, to pump(): it serves queued calls (calls.cpp), runs a due timer, handles queued
// input as attempts (node_host.hpp; a failed one goes to attempts.cpp), pulls a source, flushes the outbox
// and finishes once all input has ended. A slice yields to the mailbox; a pump message to self continues.
// The handlers and the turn share this file so the per-message path inlines as one piece.
#include "loom/runtime/local/node_host.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>

namespace loom::local {

using namespace host_detail;

// -- messages ---------------------------------------------------------------------------------------------

void node_host::on_start() {
  if (!ensure_started()) return;
  pump();
}

void node_host::on_batch(batch_msg& b) {
  if (phase_ == phase::done || !wire()) return;
  if (auto bad = in_.add(self_, b)) return report(instance_end::failed, fmt::format("{}: {}", who(), *bad));
  auto depth = static_cast<std::uint64_t>(in_.depth());
  counters_.queued.store(depth, std::memory_order_relaxed);
  if (depth > counters_.queue_hwm.load(std::memory_order_relaxed))
    counters_.queue_hwm.store(depth, std::memory_order_relaxed);
  pump();
}

void node_host::on_credit(const credit_msg& c) {
  if (phase_ == phase::done || !wire()) return;
  if (!out_.credit(c.link, c.credits))
    return report(instance_end::failed,
                  fmt::format("{}: {} credits on out-link {}, more than it can have", who(), c.credits, c.link));
  pump();
}

void node_host::on_eos(const eos_msg& e) {
  if (phase_ == phase::done || !wire()) return;
  if (auto bad = in_.add_eos(e.link)) return report(instance_end::failed, fmt::format("{}: {}", who(), *bad));
  maybe_send_part();  // an end of stream ends a link's recording (before the node may finish below)
  pump();
}

void node_host::on_resume() {
  paused_ = false;
  pump();
}

// A wake-up is due: on_timer runs from the next turn that may handle input (pump).
void node_host::on_timer_msg(std::uint64_t n) {
  if (n != timer_sent_ || !timer_armed_ || phase_ != phase::running || stopping()) return;
  timer_armed_ = false;
  timer_ready_ = true;
  pump();
}

void node_host::on_pump(std::uint64_t seq) {
  pumps_seen_ = seq;
  pump_sent_ = seq != pumps_sent_;  // a later one is still on its way
  pump();
}

void node_host::on_release() {
  released_ = true;
  pump();
}

// SIGINT, another node's failure, a lost host: drop what is queued, let the node flush (sinks close
// their files on a complete record), report cancelled and quit.
void node_host::on_cancel() {
  if (phase_ == phase::done) return;
  stopping_ = true;
  counters_.dropped.fetch_add(in_.clear(), std::memory_order_relaxed);
  for (auto& s : served_)
    self_->send(s.caller, reply_msg{s.id, false, value{}, fmt::format("tool `{}` has stopped", me_.init.name)});
  served_.clear();
  abandon_attempt();
  if (impl_ && phase_ == phase::running) {
    try {
      impl_->on_finish(*this);
    } catch (...) {
      return report(instance_end::failed,
                    fmt::format("{} failed while stopping: {}", who(), what_of(std::current_exception())));
    }
  }
  report(instance_end::cancelled, {});
}

// The last resort: an exception escaped a handler of this actor (a bug in the runtime, not the node).
void node_host::on_escaped(const std::string& what) {
  report(instance_end::failed, fmt::format("{} stopped: {}", who(), what));
}

// -- the turn ---------------------------------------------------------------------------------------------
// pull, flush and maybe_finish are inline (used only here), so the turn inlines them as it did when the host
// was one class in one file.

void node_host::pump() {
  if (phase_ == phase::done || phase_ == phase::created || !impl_ || paused_ || site_ != site::none) return;
  // The clock is read only once there is work: a pump for a credit that changes nothing costs none.
  // So is a traced run's span id: a slice with no work has no span.
  clock::time_point t0{};
  std::uint64_t span = 0, pulled = 0;
  auto working = [&] {
    if (t0 != clock::time_point{}) return;
    t0 = clock::now();
    if (spans_) {
      span = probe_->new_span();
      probe_->set_current(span);
    }
  };
  std::uint64_t n = 0;
  bool more = false;
  // A kind that handles runs and whose last turn was cheap gets a long one (run_slice_values).
  turn_limit_ = long_turns_ && cheap_ ? run_slice_values : slice_;
  auto slice_over = [&] {
    if (n >= turn_limit_ || (me_.blocking && n > 0 && !impl_->handles_runs()) ||
        (n == slice_values / 4 && (clock::now() - t0) * 4 >= slice_time)) {
      more = true;
      return true;
    }
    return false;
  };
  while (!served_.empty() && served_.front().ready_at <= pumps_seen_ && site_ == site::none &&
         phase_ == phase::running && !slice_over()) {
    working();
    serve(served_.front());
    served_.pop_front();
    ++n;
  }
  // A due timer runs before the input queued: once per turn at most, and checked once per turn, not per
  // value. Then the input goes on (after a failure too: the fresh node handles it).
  if (timer_ready_ && phase_ == phase::running && site_ == site::none && !out_.blocked()) {
    timer_ready_ = false;
    working();
    attempt(site::timer, [&] { impl_->on_timer(*this); });
  }
  // Decisions that arrived (decisions.cpp), in order, before the input: a person's answer should not wait
  // behind a queue.
  while (!decided_.empty() && phase_ == phase::running && site_ == site::none && !out_.blocked() && !slice_over()) {
    working();
    const auto& d = decided_.front();
    ++n;
    if (!attempt(site::decision, [&] { impl_->on_decision(*this, d.id, d.d); })) break;
  }
  while (!paused_ && phase_ == phase::running && site_ == site::none && !out_.blocked()) {
    if (!to_close_.empty()) {
      auto port = to_close_.front();
      working();
      if (!attempt(site::close, [&] { impl_->on_input_closed(*this, port); })) break;
      continue;
    }
    if (in_.empty() || slice_over() || held_by_decisions()) break;
    if (in_.front_is_eos()) {
      if (auto port = in_.pop_eos(self_)) to_close_.push_back(*port);
      continue;
    }
    // One attempt handles a run of the front batch's values: they commit (emissions sent, inputs
    // consumed) or roll back together, so the bookkeeping is per run, not per value. A failure rolls the
    // whole run back and the fresh node handles it again from its first value: exact either way. The run
    // ends where a value makes calls (the attempt then waits for their replies) or asks for a decision (the
    // node may hold no more), where the node is blocked or paused, and at the slice's end.
    working();
    if (!handle_run(n, slice_over)) break;
    if ((n & 63) == 0) flush(true);  // keep the next stage busy during a long batch
  }
  if (phase_ == phase::done) return;
  if (handled_ > 0) {
    counters_.in.fetch_add(handled_, std::memory_order_relaxed);
    handled_ = 0;
  }
  counters_.queued.store(static_cast<std::uint64_t>(in_.depth() + served_.size()), std::memory_order_relaxed);
  // A turn that ended on its value count goes on at once: a link to another host may gather more first.
  flush(more && n >= turn_limit_ && !paused_ && site_ == site::none && !out_.blocked());
  if (is_source_ && !pulled_all_ && !paused_ && site_ == site::none && !out_.blocked() &&
      phase_ == phase::running && !more) {
    working();
    auto before = spans_ ? counters_.out.load(std::memory_order_relaxed) : 0;
    more = pull();
    if (spans_) pulled = counters_.out.load(std::memory_order_relaxed) - before + 1;
  }
  if (t0 != clock::time_point{}) {
    auto t1 = clock::now();
    // Under about 1 us a value (run_slice_values of them in slice_time): the next turn may be long.
    if (long_turns_ && n > 0) cheap_ = (t1 - t0) * run_slice_values < slice_time * n;
    counters_.busy_ns.fetch_add(static_cast<std::uint64_t>(
                                    std::chrono::duration_cast<std::chrono::nanoseconds>(t1 - t0).count()),
                                std::memory_order_relaxed);
    if (spans_) probe_->slice(span, t0, t1, n, pulled);
  } else if (spans_) {
    probe_->set_current(0);
  }
  if (phase_ == phase::done) return;
  if (more) return schedule_pump();
  maybe_finish();  // last: once it reports done, the run may end
}

// Handles values of the front batch in one attempt (see pump). Returns false when the attempt failed or
// waits for its calls.
template <class SliceOver>
bool node_host::handle_run(std::uint64_t& n, SliceOver& slice_over) {
  auto link = in_.front_link();
  auto port = in_.port_of(link);
  auto avail = in_.front_run();
  open_attempt(site::message, link);
  try {
    // A kind that handles runs gets as many values as the slice and its outputs' room allow, in one
    // call (never under fault injection, which fails a chosen value). A blocking kind too (a Python
    // step on its own thread: one hand-off per run instead of per value); one that does not handle runs
    // gets one value per slice, so a stop is seen between its long calls.
    // A movable instance does so only for a kind that gives one output per input, on a single link: its
    // outputs' lineage then follows from the run's (mapped_).
    bool mapped = movable_ && impl_->one_output_per_input() && out_.single_link();
    if (!run_->inject && (!movable_ || mapped) && impl_->handles_runs()) {
      auto k = std::min<std::size_t>({avail, turn_limit_ - std::min<std::uint64_t>(n, turn_limit_ - 1),
                                      std::max<std::size_t>(1, out_.budget())});
      current_ = 0;
      current_len_ = k;
      if (mapped) mapped_ = {true, link, in_.front_index(0)};
      impl_->on_run(*this, port, in_.front_span(k));
      if (mapped) {
        mapped_.on = false;
        auto given = mapped_.next - in_.front_index(0);
        if (given != k || !calls_.empty())
          throw std::logic_error(fmt::format(
              "its kind gives one output per input, but a run of {} inputs gave {} outputs{}", k, given,
              calls_.empty() ? "" : " and made calls"));
      }
      current_len_ = 1;
      taken_ = k;
      n += k;
      if (!calls_.empty()) return false;
      commit();
      return true;
    }
    do {
      current_ = taken_;
      if (movable_) out_.set_input(link, in_.front_index(taken_));
      impl_->on_message(*this, port, in_.front_at(taken_));
      ++taken_;
      if (run_->inject) run_->inject(me_.index, fault_site::message, restarts_);
      ++n;
    } while (taken_ < avail && calls_.empty() && decision_ops_.empty() && !paused_ && !out_.blocked() &&
             !slice_over());
  } catch (...) {
    mapped_.on = false;
    failed_attempt(what_of(std::current_exception()));
    return false;
  }
  if (!calls_.empty()) return false;
  commit();
  return true;
}



// Returns whether the source has more to give right now (then the caller yields and comes back).
inline bool node_host::pull() {
  if (stopping() || out_.budget() == 0) return false;
  pulled_more_ = true;
  if (!attempt(site::pull, [&] { pulled_more_ = impl_->on_pull(*this); })) return false;
  flush();
  return !pulled_all_ && site_ == site::none && !out_.blocked() && !paused_ && out_.budget() > 0;
}

inline void node_host::flush(bool more) {
  counters_.out.fetch_add(out_.flush(self_, more), std::memory_order_relaxed);
  // A movable instance credits its inputs once their outputs have left (effect acknowledgements).
  if (movable_ && !out_.has_pending()) in_.grant_owed(self_);
}

inline void node_host::maybe_finish() {
  if (paused_ || site_ != site::none) return;
  if (phase_ == phase::running) {
    if (!decisions_.empty() || !decided_.empty()) return;  // a person has yet to decide
    bool inputs_done = is_source_ ? pulled_all_ : (in_.closed_ports() == in_.ports() && in_.empty() && to_close_.empty());
    if (me_.is_tool && !(released_ && served_.empty())) inputs_done = false;  // callers may still call
    if (!inputs_done) return;
    if (!attempt(site::finish, [&] { impl_->on_finish(*this); })) return;
    if (phase_ != phase::finishing) return;  // waits for the calls on_finish made
  }
  if (phase_ != phase::finishing) return;
  flush();
  if (out_.has_pending()) return;  // waits for credits to send what on_finish emitted
  out_.close(self_);
  report(instance_end::finished, {});
}

void node_host::report(instance_end end, std::string error) {
  if (phase_ == phase::done) return;
  phase_ = phase::done;
  run_->clear_stop_hook(me_.index);
  if (end == instance_end::finished && me_.stateful && run_->on_last_checkpoint)
    run_->on_last_checkpoint(me_.index, checkpoint_);
  self_->send(run_->coordinator, done_msg{me_.index, end, std::move(error)});
  self_->quit();
}

// -- the actor --------------------------------------------------------------------------------------------

node_state::node_state() = default;
node_state::~node_state() = default;

caf::behavior node_actor_behavior(node_actor* self, std::shared_ptr<const deployment> plan,
                                  std::shared_ptr<run_state> run, std::uint32_t index) {
  self->state.host = std::make_unique<node_host>(self, std::move(plan), std::move(run), index);
  auto* host = self->state.host.get();
  self->set_exception_handler([host](caf::scheduled_actor*, std::exception_ptr& e) -> caf::error {
    host->on_escaped(what_of(e));
    return caf::exit_reason::unhandled_exception;
  });
  return {
      // The hot messages first: CAF 0.17 tries handlers in order.
      [=](batch_msg& b) { host->on_batch(b); },
      [=](const credit_msg& c) { host->on_credit(c); },
      [=](pump_atom, std::uint64_t seq) { host->on_pump(seq); },
      [=](start_atom) { host->on_start(); },
      [=](const eos_msg& e) { host->on_eos(e); },
      [=](resume_atom) { host->on_resume(); },
      [=](timer_atom, std::uint64_t n) { host->on_timer_msg(n); },
      [=](cancel_atom) { host->on_cancel(); },
      [=](call_msg& c) { host->on_call(caf::actor_cast<caf::actor>(self->current_sender()), c); },
      [=](reply_msg& r) { host->on_reply(r); },
      [=](const cancel_call_msg& c) {
        host->on_cancel_call(caf::actor_cast<caf::actor>(self->current_sender()), c.id);
      },
      [=](const call_timeout_msg& t) { host->on_call_timeout(t); },
      [=](release_atom) { host->on_release(); },
      [=](const producer_replaced_msg& m) { host->on_producer_replaced(m); },
      [=](const snapshot_msg& m) { host->on_snapshot(m.epoch); },
      [=](const barrier_msg& b) { host->on_barrier(b); },
      [=](decision_msg& m) { host->on_decision_msg(m); },
  };
}

}  // namespace loom::local
