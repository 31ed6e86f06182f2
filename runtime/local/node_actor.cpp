// runtime/local/node_actor.cpp: how one node instance runs. The host puts the pieces together:
//   inbox   what arrived, credits back, end of stream per port (inbox.hpp)
//   outbox  links, credits, batches, attempts (outbox.hpp)
//   calls   the calls this node made (caller side) and the calls it serves (a tool)
//   phase   created -> running -> finishing -> done
// Every call into the node is an *attempt*: what it emits, the input it consumes and the checkpoint it
// sets are committed together when it returns and its calls have been answered, or discarded together
// when it throws. A failed attempt restarts the node (a fresh one from the factory, given its last
// checkpoint and, for a stateful kind, the inputs since then replayed) and the same input is handled again.
#include "loom/runtime/local/node_actor.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <deque>
#include <exception>
#include <optional>
#include <random>
#include <unordered_map>

#include "loom/runtime/json.hpp"
#include "loom/runtime/local/inbox.hpp"
#include "loom/runtime/local/outbox.hpp"
#include "loom/runtime/local/snapshot.hpp"
#include "loom/runtime/observe/metrics.hpp"
#include "loom/runtime/observe/trace.hpp"
#include "loom/runtime/schema.hpp"

namespace loom::local {
namespace {

using clock = std::chrono::steady_clock;

// A handler yields to the mailbox after this many values or about this much time, so cancel, credits and
// replies never wait behind a whole queue. The time is looked at once per slice, after its first quarter
// of values: a slice whose first quarter took a quarter of the time ends there (a clock read costs 20 ns
// here, as much as handling a value; reading it every 16 values was 10 % of a pipeline's time).
constexpr std::uint64_t slice_values = 64;
// A blocking kind that handles runs (a Python step) has a thread of its own, so it takes no one's turn: it
// takes up to this many values at once, since every hand-off to it wakes its thread. Such a kind looks at
// context::stopping() between values itself.
constexpr std::uint64_t blocking_slice_values = 4096;
constexpr auto slice_time = std::chrono::milliseconds(1);

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

}  // namespace

class node_host final : public context {
 public:
  node_host(caf::event_based_actor* self, std::shared_ptr<const deployment> plan, std::shared_ptr<run_state> run,
            std::uint32_t index)
      : self_(self),
        plan_(std::move(plan)),
        run_(std::move(run)),
        me_(plan_->instances[index]),
        counters_(run_->counters(index)) {
    if (run_->trace) trace_ = &run_->trace->buffer(index, instance_name(*plan_, index));
  }

  ~node_host() override { run_->clear_stop_hook(me_.index); }

  // -- context --------------------------------------------------------------------------------------
  void emit(std::size_t port, value v) override {
    check_port(port);
    if (!out_.emit(port, std::move(v))) ++attempt_dropped_;
  }
  void emit_run(std::size_t port, std::span<const value> values) override {
    check_port(port);
    if (!out_.emit_run(port, values)) attempt_dropped_ += values.size();
  }
  void check_port(std::size_t port) const {
    if (port >= out_.ports())
      throw std::out_of_range(
          fmt::format("emit on output port {} of a node with {} outputs", port, out_.ports()));
  }
  bool connected(std::size_t port) const override { return out_.connected(port); }
  std::size_t budget() const override { return out_.budget(); }
  void pause_for(std::chrono::nanoseconds d) override {
    if (d.count() <= 0) return;
    paused_ = true;
    self_->delayed_send(self_, d, resume_atom::value);
  }
  // One delayed message to self per wake-up that is earlier than the one already asked for; each is
  // numbered and only the last sent counts (it is the earliest), so a superseded one arriving later, or
  // one sent before a restart, is dropped.
  void wake_after(std::chrono::nanoseconds d) override {
    if (phase_ == phase::done) return;
    d = std::max(d, std::chrono::nanoseconds{0});
    auto due = clock::now() + d;
    if (timer_armed_ && timer_at_ <= due) return;
    timer_armed_ = true;
    timer_at_ = due;
    self_->delayed_send(self_, d, timer_atom::value, ++timer_sent_);
  }
  std::string_view node_name() const override { return me_.init.name; }
  int instance() const override { return me_.init.instance; }
  int replicas() const override { return me_.init.replicas; }
  bool stopping() const override { return stopping_ || run_->stopping(); }
  void checkpoint(value state) override {
    pending_checkpoint_ = std::move(state);
    // The values of this attempt the state already includes: those before the one being handled, and it.
    checkpoint_after_ = site_ == site::message ? current_ + current_len_ : 0;
  }
  void set_stop_hook(std::function<void()> hook) override { run_->set_stop_hook(me_.index, std::move(hook)); }
  observe::span_buffer* trace() override { return trace_; }

  std::vector<std::string> tools() const override {
    std::vector<std::string> out;
    for (const auto& t : me_.tools) out.push_back(t.name);
    return out;
  }
  const graph::kind_spec* tool_kind(std::string_view tool) const override {
    for (const auto& t : me_.tools)
      if (t.name == tool) return t.kind;
    return nullptr;
  }
  void call(std::string_view tool, value request, std::chrono::milliseconds timeout, call_done done) override {
    tool_ref* t = nullptr;
    for (auto& r : tools_)
      if (r.plan->name == tool) t = &r;
    if (!t || t->actors.empty() || restoring_) {
      done(*this, call_result{false, value{},
                              restoring_ ? std::string("calls are not made while a node is restored")
                                         : fmt::format("`{}` is not a tool of this node", tool)});
      return;
    }
    auto id = next_call_++;
    auto k = t->next++ % t->actors.size();
    auto& target = t->actors[k];
    auto to = t->plan->instances[k];
    pending_call p{std::string(tool), timeout, std::move(done), target};
    p.to = to;
    if (trace_) p.span = {trace_->new_id(), trace_->current, clock::now()};
    auto span = p.span.id;
    calls_.emplace(id, std::move(p));
    self_->send(target, call_msg{id, std::move(request), span, to});
    self_->delayed_send(self_, timeout, call_timeout_msg{id});
  }

  // -- messages -------------------------------------------------------------------------------------
  void on_start() {
    if (!ensure_started()) return;
    pump();
  }

  void on_batch(batch_msg& b) {
    if (phase_ == phase::done || !wire()) return;
    if (auto bad = in_.add(self_, b)) return report(instance_end::failed, fmt::format("{}: {}", who(), *bad));
    auto depth = static_cast<std::uint64_t>(in_.depth());
    counters_.queued.store(depth, std::memory_order_relaxed);
    if (depth > counters_.queue_hwm.load(std::memory_order_relaxed))
      counters_.queue_hwm.store(depth, std::memory_order_relaxed);
    pump();
  }

  void on_credit(const credit_msg& c) {
    if (phase_ == phase::done || !wire()) return;
    if (!out_.credit(c.link, c.credits))
      return report(instance_end::failed,
                    fmt::format("{}: {} credits on out-link {}, more than it can have", who(), c.credits, c.link));
    pump();
  }

  void on_eos(const eos_msg& e) {
    if (phase_ == phase::done || !wire()) return;
    if (auto bad = in_.add_eos(e.link)) return report(instance_end::failed, fmt::format("{}: {}", who(), *bad));
    maybe_send_part();  // an end of stream ends a link's recording (before the node may finish below)
    pump();
  }

  void on_resume() {
    paused_ = false;
    pump();
  }

  // A wake-up is due: on_timer runs from the next turn that may handle input (pump).
  void on_timer_msg(std::uint64_t n) {
    if (n != timer_sent_ || !timer_armed_ || phase_ != phase::running || stopping()) return;
    timer_armed_ = false;
    timer_ready_ = true;
    pump();
  }

  // The producer of one of our in-links was lost with its host and replaced elsewhere.
  void on_producer_replaced(const producer_replaced_msg& m) {
    if (phase_ == phase::done || !wire()) return;
    if (!in_.replaced(m.link))
      return report(instance_end::failed, fmt::format("{}: a replaced producer on link {}, which it does not have",
                                                      who(), m.link));
    self_->send(caf::actor_cast<caf::actor>(self_->current_sender()), replaced_ack_msg{in_.remote_of(m.link)});
    pump();
  }

  void on_pump(std::uint64_t seq) {
    pumps_seen_ = seq;
    pump_sent_ = seq != pumps_sent_;  // a later one is still on its way
    pump();
  }

  void on_release() {
    released_ = true;
    pump();
  }

  // A tool takes a call: queued (at most max_pending), served in turn by pump().
  void on_call(caf::actor caller, call_msg& c) {
    if (phase_ == phase::done || stopping() || !ensure_started()) {
      self_->send(caller, reply_msg{c.id, false, value{}, fmt::format("tool `{}` has stopped", me_.init.name)});
      return;
    }
    if (!me_.is_tool) {
      self_->send(caller, reply_msg{c.id, false, value{}, fmt::format("node `{}` is not a tool", me_.init.name)});
      return;
    }
    if (served_.size() >= me_.max_pending) {
      counters_.rejected.fetch_add(1, std::memory_order_relaxed);
      observe::count_tool_call(me_.init.name, "rejected");
      self_->send(caller, reply_msg{c.id, false, value{},
                                    fmt::format("tool `{}` is busy: {} calls are pending (max_pending {})",
                                                me_.init.name, served_.size(), me_.max_pending)});
      return;
    }
    served_.push_back(served_call{std::move(caller), c.id, std::move(c.request), c.trace_parent, pumps_sent_ + 1});
    auto depth = static_cast<std::uint64_t>(served_.size());
    counters_.queued.store(depth, std::memory_order_relaxed);
    if (depth > counters_.queue_hwm.load(std::memory_order_relaxed))
      counters_.queue_hwm.store(depth, std::memory_order_relaxed);
    // Served from the mailbox's next turn, so a cancel already behind this call is seen first: by a pump
    // message sent now (one already on its way may be ahead of that cancel).
    send_pump();
  }

  // The caller gave up on a call: if it has not started, it never runs.
  void on_cancel_call(const caf::actor& caller, std::uint64_t id) {
    auto it = std::find_if(served_.begin(), served_.end(),
                           [&](const served_call& s) { return s.id == id && s.caller == caller; });
    if (it == served_.end()) return;
    served_.erase(it);
    counters_.rejected.fetch_add(1, std::memory_order_relaxed);
  }

  void on_reply(reply_msg& r) {
    auto it = calls_.find(r.id);
    if (it == calls_.end() || phase_ == phase::done) {
      counters_.late.fetch_add(1, std::memory_order_relaxed);  // timed out or abandoned: dropped
      return;
    }
    auto p = std::move(it->second);
    calls_.erase(it);
    answer(p, call_result{r.ok, std::move(r.reply), std::move(r.error)});
  }

  void on_call_timeout(const call_timeout_msg& t) {
    auto it = calls_.find(t.id);
    if (it == calls_.end() || phase_ == phase::done) return;
    auto p = std::move(it->second);
    calls_.erase(it);
    self_->send(p.target, cancel_call_msg{t.id, p.to});
    observe::count_tool_call(p.tool, "timeout");
    answer(p, call_result{false, value{},
                          fmt::format("tool `{}` did not reply within {} ms", p.tool, p.timeout.count())});
  }

  // -- snapshots (snapshot.hpp) ---------------------------------------------------------------------
  void on_snapshot(std::uint64_t epoch) {
    if (phase_ == phase::done || epoch <= part_epoch_ || !wire()) return;
    take_part(epoch);
    maybe_send_part();
  }

  void on_barrier(const barrier_msg& b) {
    if (phase_ == phase::done || !wire()) return;
    if (b.epoch > part_epoch_) take_part(b.epoch);
    if (b.epoch == part_epoch_ && part_) {
      if (!in_.end_recording(b.link))
        return report(instance_end::failed, fmt::format("{}: a barrier on link {}, which it does not have", who(), b.link));
      maybe_send_part();
    }
  }

  // SIGINT, another node's failure, a lost host: drop what is queued, let the node flush (sinks close
  // their files on a complete record), report cancelled and quit.
  void on_cancel() {
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
  void on_escaped(const std::string& what) {
    report(instance_end::failed, fmt::format("{} stopped: {}", who(), what));
  }

 private:
  enum class phase { created, running, finishing, done };
  // What the open attempt is doing; its commit depends on it.
  enum class site { none, start, message, pull, close, finish, reply, timer };

  struct call_span {  // a traced run: the call's span, its parent and its start
    std::uint64_t id = 0, parent = 0;
    clock::time_point start;
  };
  struct pending_call {
    std::string tool;
    std::chrono::milliseconds timeout;
    call_done done;
    caf::actor target;
    call_span span{};
    std::uint32_t to = 0;  // the tool instance
  };
  struct tool_ref {
    const tool_plan* plan;
    std::vector<caf::actor> actors;
    std::size_t next = 0;
  };
  struct served_call {
    caf::actor caller;
    std::uint64_t id;
    value request;
    std::uint64_t trace_parent = 0;
    // The pump message that may serve it: one sent after the call was queued, so that it sits behind
    // whatever came with the call (its cancel). pump() called from another handler (a credit, a release)
    // leaves it waiting.
    std::uint64_t ready_at = 0;
  };
  // What a restarted stateful node is given again: inputs since its last checkpoint, and every port
  // close (kept across checkpoints: a port stays closed).
  struct replayed {
    bool close;
    std::size_t port;
    value v;
  };

  // -- wiring and start -----------------------------------------------------------------------------
  // Wires on the first message: the actor table is filled before any actor gets one.
  bool wire() {
    if (wired_) return true;
    wired_ = true;
    movable_ = me_.movable && run_->distributed;  // in one process there is no host to lose
    // A movable instance says everything meant for other hosts through its egress, in order (its credits
    // wait there for the acknowledgements of the outputs sent before them).
    std::vector<caf::actor> routed;
    if (movable_) {
      routed = run_->actors;
      auto egress = me_.index < run_->egress.size() ? run_->egress[me_.index] : caf::actor{};
      if (egress)
        for (std::size_t i = 0; i < routed.size() && i < run_->remote.size(); ++i)
          if (run_->remote[i]) routed[i] = egress;
    }
    const auto& actors = movable_ ? routed : run_->actors;
    out_.wire(me_, actors, *run_, pool_);
    in_.wire(me_, actors, pool_);
    for (const auto& t : me_.tools) {
      tool_ref r{&t, {}, 0};
      for (auto i : t.instances) r.actors.push_back(actors[i]);
      tools_.push_back(std::move(r));
    }
    if (movable_) {
      out_.tag_lineage();   // its outputs carry their lineage
      in_.defer_grants();   // its credits wait for its outbox to empty
      // Its calls' ids start at a random point: a late reply to the instance it replaced (after a move)
      // must not match one of its own calls.
      std::random_device rd;
      next_call_ = ((std::uint64_t{rd()} << 32 | rd()) & ~std::uint64_t{0xFFFFFFFF}) | 1;
    }
    for (auto p : in_.initially_closed()) to_close_.push_back(p);
    is_source_ = me_.input_names.empty() && !me_.is_tool;
    return true;
  }

  // Makes and starts the node once; a tool may be called before its start message arrives.
  bool ensure_started() {
    wire();
    if (phase_ == phase::created) {
      phase_ = phase::running;
      const instance_part* part = run_->restore && me_.index < run_->restore->parts.size()
                                      ? run_->restore->parts[me_.index].get()
                                      : nullptr;
      if (part && part->state == instance_part::phase::finished) {
        report(instance_end::finished, {});  // its end of stream is in its consumers' parts already
        return false;
      }
      if (part) {
        if (!restore_part(*part)) return false;
        slice_ = me_.blocking && impl_->handles_runs() ? blocking_slice_values : slice_values;
        return true;
      }
      try {
        impl_ = me_.def->make(me_.init);
        slice_ = me_.blocking && impl_->handles_runs() ? blocking_slice_values : slice_values;
      } catch (...) {
        report(instance_end::failed,
               fmt::format("{} could not be made: {}", who(), what_of(std::current_exception())));
        return false;
      }
      attempt(site::start, [&] { impl_->on_start(*this); });
    }
    return impl_ != nullptr && phase_ != phase::done;
  }

  // -- attempts -------------------------------------------------------------------------------------
  // Runs `f` as (part of) an attempt. Returns true when the attempt is committed or waits for its calls;
  // false when it failed (the node was restarted, or the run failed).
  template <class F>
  bool attempt(site s, F&& f, link_id input = 0) {
    if (site_ == site::none) open_attempt(s, input);
    try {
      f();
      if (run_->inject) run_->inject(me_.index, to_fault_site(s), restarts_);
    } catch (...) {
      failed_attempt(what_of(std::current_exception()));
      return false;
    }
    if (calls_.empty()) commit();
    return true;
  }

  // A new attempt: nothing emitted, dropped or checkpointed yet.
  void open_attempt(site s, link_id input) {
    site_ = s;
    input_ = input;
    out_.begin();
    attempt_dropped_ = 0;
    pending_checkpoint_.reset();
    taken_ = 0;
    current_len_ = 1;
  }

  static fault_site to_fault_site(site s) {
    switch (s) {
      case site::pull: return fault_site::pull;
      case site::close: return fault_site::close;
      case site::finish: return fault_site::finish;
      case site::reply: return fault_site::reply;
      case site::start: return fault_site::start;
      case site::timer: return fault_site::timer;
      default: return fault_site::message;
    }
  }

  void commit() {
    auto s = site_;
    site_ = site::none;
    out_.commit();
    if (attempt_dropped_ > 0) counters_.dropped.fetch_add(attempt_dropped_, std::memory_order_relaxed);
    // The checkpoint is the state after what it covers: inputs before it are not replayed again.
    bool checkpointed = pending_checkpoint_.has_value();
    if (checkpointed) {
      checkpoint_ = std::move(*pending_checkpoint_);
      pending_checkpoint_.reset();
      std::erase_if(replay_, [](const replayed& r) { return !r.close; });
    }
    switch (s) {
      case site::message: {
        // A stateful node's inputs are kept for replay, those after its checkpoint (if it took one).
        auto n = taken_;
        if (me_.def->spec.stateful) {
          auto port = in_.port_of(input_);
          for (auto k = checkpointed ? checkpoint_after_ : 0; k < n; ++k)
            replay_.push_back(replayed{false, port, in_.front_at(k)});
        }
        in_.pop_values(self_, n);
        handled_ += n;
        taken_ = 0;
        break;
      }
      case site::close:
        replay_.push_back(replayed{true, to_close_.front(), value{}});
        to_close_.pop_front();
        break;
      case site::pull:
        if (!pulled_more_) pulled_all_ = true;
        break;
      case site::finish:
        phase_ = phase::finishing;
        break;
      default:
        break;
    }
  }

  // Discards the open attempt: its values, its checkpoint, its outstanding calls.
  void abandon_attempt() {
    if (site_ == site::none) return;
    site_ = site::none;
    taken_ = 0;
    out_.rollback();
    pending_checkpoint_.reset();
    for (auto& [id, p] : calls_) self_->send(p.target, cancel_call_msg{id, p.to});
    calls_.clear();
  }

  void failed_attempt(const std::string& error) {
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

  // -- snapshots -----------------------------------------------------------------------------------
  // The committed state, now (an open attempt is left out: it is done again on resume); then a barrier on
  // every out-link and the recording of every in-link.
  void take_part(std::uint64_t epoch) {
    part_epoch_ = epoch;
    auto p = std::make_shared<instance_part>();
    p->instance = me_.index;
    p->state = phase_ == phase::finishing ? instance_part::phase::finishing : instance_part::phase::running;
    p->checkpoint = checkpoint_;
    p->replay.reserve(replay_.size());
    for (const auto& r : replay_) p->replay.push_back({r.close, r.port, r.v});
    p->to_close.assign(to_close_.begin(), to_close_.end());
    p->pulled_all = pulled_all_;
    p->outputs = out_.committed_unsent();
    in_.start_recording();
    out_.send_barrier(self_, epoch);
    part_ = std::move(p);
  }

  // A part is complete once every in-link's recording ended (its barrier or end of stream came).
  void maybe_send_part() {
    if (!part_ || in_.recording()) return;
    part_->inputs = in_.take_records();
    self_->send(run_->coordinator, part_msg{part_epoch_, std::move(part_)});
    part_.reset();
  }

  // A resumed run (run_state::restore): the node made from the part's checkpoint and replay, its queues
  // as the snapshot kept them. False when it failed (reported).
  bool restore_part(const instance_part& p) {
    checkpoint_ = p.checkpoint;
    replay_.clear();
    for (const auto& r : p.replay) replay_.push_back(replayed{r.close, r.port, r.v});
    to_close_.assign(p.to_close.begin(), p.to_close.end());
    pulled_all_ = p.pulled_all;
    if (auto bad = in_.restore(p.inputs)) {
      report(instance_end::failed, fmt::format("{} cannot be resumed: {}", who(), *bad));
      return false;
    }
    if (!out_.restore(p.outputs)) {
      report(instance_end::failed, fmt::format("{} cannot be resumed: a snapshot's out-link it does not have", who()));
      return false;
    }
    try {
      restart();
    } catch (...) {
      report(instance_end::failed, fmt::format("{} could not be resumed: {}", who(), what_of(std::current_exception())));
      return false;
    }
    if (p.state == instance_part::phase::finishing) phase_ = phase::finishing;
    return true;
  }

  // A fresh node: its last checkpoint, then what it must see again with its emissions discarded.
  void restart() {
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

  void answer(pending_call& p, call_result r) {
    if (trace_ && p.span.id != 0) {
      observe::span s;
      s.id = p.span.id;
      s.parent = p.span.parent;
      s.kind = observe::span_kind::call;
      s.track = me_.index;
      s.start_ns = trace_->unix_ns(p.span.start);
      s.end_ns = trace_->now_ns();
      s.name = "call " + p.tool;
      s.attrs.push_back({"loom.tool", p.tool});
      if (!r.ok) s.attrs.push_back({"loom.error", r.error});
      s.error = !r.ok;
      trace_->add(std::move(s));
      trace_->current = p.span.parent;  // the reply's handler continues where the call was made
    }
    attempt(site::reply, [&] { p.done(*this, std::move(r)); });
    pump();
  }

  // -- the turn -------------------------------------------------------------------------------------
  // Serves calls, handles queued input while nothing blocks it, pulls a source, finishes when all input
  // has ended. Yields after a slice; a message to itself continues.
  void pump() {
    if (phase_ == phase::done || phase_ == phase::created || !impl_ || paused_ || site_ != site::none) return;
    // The clock is read only once there is work: a pump for a credit that changes nothing costs none.
    // So is a traced run's span id: a slice with no work has no span.
    clock::time_point t0{};
    std::uint64_t span = 0, pulled = 0;
    auto working = [&] {
      if (t0 != clock::time_point{}) return;
      t0 = clock::now();
      if (trace_) trace_->current = span = trace_->new_id();
    };
    std::uint64_t n = 0;
    bool more = false;
    auto slice_over = [&] {
      if (n >= slice_ || (me_.blocking && n > 0 && !impl_->handles_runs()) ||
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
    while (!paused_ && phase_ == phase::running && site_ == site::none && !out_.blocked()) {
      if (!to_close_.empty()) {
        auto port = to_close_.front();
        working();
        if (!attempt(site::close, [&] { impl_->on_input_closed(*this, port); })) break;
        continue;
      }
      if (in_.empty() || slice_over()) break;
      if (in_.front_is_eos()) {
        if (auto port = in_.pop_eos(self_)) to_close_.push_back(*port);
        continue;
      }
      // One attempt handles a run of the front batch's values: they commit (emissions sent, inputs
      // consumed) or roll back together, so the bookkeeping is per run, not per value. A failure rolls the
      // whole run back and the fresh node handles it again from its first value: exact either way. The run
      // ends where a value makes calls (the attempt then waits for their replies), where the node is
      // blocked or paused, and at the slice's end.
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
    flush(more && n >= slice_ && !paused_ && site_ == site::none && !out_.blocked());
    if (is_source_ && !pulled_all_ && !paused_ && site_ == site::none && !out_.blocked() &&
        phase_ == phase::running && !more) {
      working();
      auto before = trace_ ? counters_.out.load(std::memory_order_relaxed) : 0;
      more = pull();
      if (trace_) pulled = counters_.out.load(std::memory_order_relaxed) - before + 1;
    }
    if (t0 != clock::time_point{}) {
      auto t1 = clock::now();
      counters_.busy_ns.fetch_add(static_cast<std::uint64_t>(
                                      std::chrono::duration_cast<std::chrono::nanoseconds>(t1 - t0).count()),
                                  std::memory_order_relaxed);
      if (trace_) trace_slice(span, t0, t1, n, pulled);
    } else if (trace_) {
      trace_->current = 0;
    }
    if (phase_ == phase::done) return;
    if (more) return schedule_pump();
    maybe_finish();  // last: once it reports done, the run may end
  }

  // Handles values of the front batch in one attempt (see pump). Returns false when the attempt failed or
  // waits for its calls.
  template <class SliceOver>
  bool handle_run(std::uint64_t& n, SliceOver& slice_over) {
    auto link = in_.front_link();
    auto port = in_.port_of(link);
    auto avail = in_.front_run();
    open_attempt(site::message, link);
    try {
      // A kind that handles runs gets as many values as the slice and its outputs' room allow, in one
      // call (never under fault injection, which fails a chosen value). A blocking kind too (a Python
      // step on its own thread: one hand-off per run instead of per value); one that does not handle runs
      // gets one value per slice, so a stop is seen between its long calls.
      if (!run_->inject && !movable_ && impl_->handles_runs()) {
        auto k = std::min<std::size_t>({avail, slice_ - std::min<std::uint64_t>(n, slice_ - 1),
                                        std::max<std::size_t>(1, out_.budget())});
        current_ = 0;
        current_len_ = k;
        impl_->on_run(*this, port, in_.front_span(k));
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
      } while (taken_ < avail && calls_.empty() && !paused_ && !out_.blocked() && !slice_over());
    } catch (...) {
      failed_attempt(what_of(std::current_exception()));
      return false;
    }
    if (!calls_.empty()) return false;
    commit();
    return true;
  }

  // A traced slice: a batch span when it handled input, a pull span when it pulled (`pulled`: values + 1).
  void trace_slice(std::uint64_t id, clock::time_point t0, clock::time_point t1, std::uint64_t n, std::uint64_t pulled) {
    trace_->current = 0;
    if (n == 0 && pulled == 0) return;
    observe::span s;
    s.id = id;
    s.kind = n > 0 ? observe::span_kind::batch : observe::span_kind::pull;
    s.track = me_.index;
    s.start_ns = trace_->unix_ns(t0);
    s.end_ns = trace_->unix_ns(t1);
    s.count = static_cast<std::int64_t>(n > 0 ? n : pulled - 1);
    trace_->add(std::move(s));
  }

  // A tool serves one call: the request is checked against its call arguments, then on_call. Whatever goes
  // wrong goes back to the caller as an error; a tool's failure to answer one call does not fail the run.
  void serve(served_call& c) {
    auto t0 = clock::now();
    reply_msg r{c.id, true, value{}, {}};
    std::uint64_t span = 0, outer = 0;
    if (trace_) {
      outer = trace_->current;
      trace_->current = span = trace_->new_id();
    }
    out_.begin();
    try {
      r.reply = impl_->on_call(*this, check_call_request(*me_.def->spec.call, c.request));
      out_.commit();
    } catch (...) {
      out_.rollback();
      r.ok = false;
      r.error = what_of(std::current_exception());
    }
    counters_.in.fetch_add(1, std::memory_order_relaxed);
    counters_.out.fetch_add(1, std::memory_order_relaxed);
    auto t1 = clock::now();  // busy time: counted by the turn (pump) that served this call, not here too
    if (!tool_meter_) tool_meter_.emplace(me_.init.name);
    tool_meter_->record(r.ok, std::chrono::duration<double>(t1 - t0).count());
    if (trace_) {
      observe::span s;
      s.id = span;
      s.parent = c.trace_parent;
      s.kind = observe::span_kind::tool;
      s.track = me_.index;
      s.start_ns = trace_->unix_ns(t0);
      s.end_ns = trace_->unix_ns(t1);
      s.name = "tool " + me_.init.name;
      if (!r.ok) s.attrs.push_back({"loom.error", r.error});
      s.error = !r.ok;
      trace_->add(std::move(s));
      trace_->current = outer;
    }
    self_->send(c.caller, std::move(r));
  }

  // Returns whether the source has more to give right now (then the caller yields and comes back).
  bool pull() {
    if (stopping() || out_.budget() == 0) return false;
    pulled_more_ = true;
    if (!attempt(site::pull, [&] { pulled_more_ = impl_->on_pull(*this); })) return false;
    flush();
    return !pulled_all_ && site_ == site::none && !out_.blocked() && !paused_ && out_.budget() > 0;
  }

  void schedule_pump() {
    if (!pump_sent_) send_pump();
  }

  void send_pump() {
    pump_sent_ = true;
    self_->send(self_, pump_atom::value, ++pumps_sent_);
  }

  void flush(bool more = false) {
    counters_.out.fetch_add(out_.flush(self_, more), std::memory_order_relaxed);
    // A movable instance credits its inputs once their outputs have left (effect acknowledgements).
    if (movable_ && !out_.has_pending()) in_.grant_owed(self_);
  }

  void maybe_finish() {
    if (paused_ || site_ != site::none) return;
    if (phase_ == phase::running) {
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

  void report(instance_end end, std::string error) {
    if (phase_ == phase::done) return;
    phase_ = phase::done;
    run_->clear_stop_hook(me_.index);
    self_->send(run_->coordinator, done_msg{me_.index, end, std::move(error)});
    self_->quit();
  }

  std::string who() const {
    if (me_.init.replicas > 1)
      return fmt::format("node `{}` ({}, instance {})", me_.init.name, me_.kind, me_.init.instance);
    return fmt::format("node `{}` ({})", me_.init.name, me_.kind);
  }

  caf::event_based_actor* self_;
  std::shared_ptr<const deployment> plan_;
  std::shared_ptr<run_state> run_;
  const instance_plan& me_;
  node_counters& counters_;
  observe::span_buffer* trace_ = nullptr;  // a traced run: this instance's spans
  std::optional<observe::tool_meter> tool_meter_;  // a tool's calls (made at its first call)
  std::unique_ptr<node> impl_;
  batch_pool pool_;  // before in_ and out_, which use it
  inbox in_;
  outbox out_;
  phase phase_ = phase::created;
  bool wired_ = false;
  bool movable_ = false;  // `recover: replace` in a distributed run (wire())
  bool is_source_ = false;
  bool paused_ = false;
  bool pump_sent_ = false;   // a pump_atom to self is on its way
  std::uint64_t slice_ = slice_values;  // values per turn (see blocking_slice_values)
  std::uint64_t pumps_sent_ = 0, pumps_seen_ = 0;  // pump messages numbered: the last sent, the last handled
  bool pulled_all_ = false;
  bool pulled_more_ = false;
  bool released_ = false;
  bool stopping_ = false;
  bool restoring_ = false;
  // The timer (context::wake_after): a wake-up on its way due at timer_at_, numbered timer_sent_; one that
  // arrived and waits for the node to be free (timer_ready_).
  bool timer_armed_ = false;
  bool timer_ready_ = false;
  clock::time_point timer_at_{};
  std::uint64_t timer_sent_ = 0;
  // The open attempt.
  site site_ = site::none;
  link_id input_ = 0;
  std::uint64_t attempt_dropped_ = 0;
  std::optional<value> pending_checkpoint_;
  std::size_t taken_ = 0;            // a message attempt: the front batch's values it has handled
  std::size_t current_ = 0;          // the one being handled (taken_ before it returns)
  std::size_t current_len_ = 1;      // values handled from current_ on in this step (on_run: the run)
  std::size_t checkpoint_after_ = 0; // the pending checkpoint includes the attempt's first this many values
  std::uint64_t handled_ = 0;
  // Restarts.
  int restarts_ = 0;
  value checkpoint_;
  std::vector<replayed> replay_;
  std::deque<std::size_t> to_close_;  // ports whose links have all ended, on_input_closed not yet committed
  // Calls.
  std::vector<tool_ref> tools_;
  std::unordered_map<std::uint64_t, pending_call> calls_;
  std::uint64_t next_call_ = 1;
  std::deque<served_call> served_;
  // Snapshots: the last epoch whose part this instance took, and that part while its in-links record.
  std::uint64_t part_epoch_ = 0;
  std::shared_ptr<instance_part> part_;
};

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
  };
}

}  // namespace loom::local
