// runtime/local/node_host.hpp: the host of one node instance, the state of its CAF actor (node_actor.hpp).
// It puts the pieces together:
//   inbox   what arrived, credits back, end of stream per port (inbox.hpp)
//   outbox  links, credits, batches, attempts (outbox.hpp)
//   calls   the calls this node made (caller side) and the calls it serves (a tool)
//   phase   created -> running -> finishing -> done
// Every call into the node is an *attempt*: what it emits, the input it consumes and the checkpoint it
// sets are committed together when it returns and its calls have been answered, or discarded together
// when it throws. A failed attempt restarts the node (a fresh one from the factory, given its last
// checkpoint and, for a stateful kind, the inputs since then replayed) and the same input is handled again.
//
// The class is one; its members live in files by what they change for:
//   node_actor.cpp  the actor: each message to its handler, and the turn (pump: slices, timers, finishing)
//   wiring.cpp      links and tools from the run's actor table, making and starting the node
//   context.cpp     the context the node calls: emit, timers, checkpoints, its tools
//   attempts.cpp    failed attempts, rollback, restart from the last checkpoint and replay
//   calls.cpp       calls made (to a tool, their replies and timeouts) and calls served (a tool)
//   decisions.cpp   decisions asked for (context::ask), the decisions that arrive, and what a part shows of them
//   snapshots.cpp   its part of a consistent snapshot, and a resumed instance made from one
// What an instance reports beyond its counters (a tool's calls, a traced run's spans) goes to its probe
// (probes.hpp), which the observe module implements; a run with no probes reports nothing there.
// The hot path of an attempt (open, run, commit) is defined here, inline, for the turn to inline it.
#pragma once

#include <caf/all.hpp>

#include <chrono>
#include <cstdint>
#include <deque>
#include <exception>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "loom/runtime/local/inbox.hpp"
#include "loom/runtime/local/node_actor.hpp"
#include "loom/runtime/local/outbox.hpp"
#include "loom/runtime/local/probes.hpp"
#include "loom/runtime/local/snapshot.hpp"

namespace loom::local {

namespace host_detail {
using clock = std::chrono::steady_clock;

// A handler yields to the mailbox after this many values or about this much time, so cancel, credits and
// replies never wait behind a whole queue. The time is looked at once per slice, after its first quarter
// of values: a slice whose first quarter took a quarter of the time ends there (a clock read costs 20 ns
// here, as much as handling a value; reading it every 16 values was 10 % of a pipeline's time).
constexpr std::uint64_t slice_values = 64;
// A kind that handles runs (one call for many values) whose last turn took under about 1 us a value (this
// many values in slice_time) takes up to this many in its next turn, in runs as long as its queue allows:
// about slice_time at the pace it showed. Each turn costs a message to self, two clock reads and a flush,
// and each run an attempt and a batch sent on; for a cheap kind (flow.forward, sink.count) that was most of
// its time (bench/RESULTS.md, "Long turns"). A slower one (a jq filter on large values) yields after
// slice_values; its first turn does too (its pace is not known yet), and so does every turn of a node that
// has tools (its runs wait for their calls). The pace comes from the clock reads
// the turn makes anyway (its busy time): none is added.
constexpr std::uint64_t run_slice_values = 1024;
// A blocking kind that handles runs (a Python step) has a thread of its own, so it takes no one's turn: it
// takes up to this many values at once, since every hand-off to it wakes its thread. Such a kind looks at
// context::stopping() between values itself.
constexpr std::uint64_t blocking_slice_values = 4096;
constexpr auto slice_time = std::chrono::milliseconds(1);

// A value as a short JSON excerpt for an error message (80 characters at most).
std::string excerpt(const value& v);
// The message of an exception.
std::string what_of(std::exception_ptr e);
}  // namespace host_detail

class node_host final : public context {
  using clock = host_detail::clock;

 public:
  node_host(caf::event_based_actor* self, std::shared_ptr<const deployment> plan, std::shared_ptr<run_state> run,
            std::uint32_t index);
  ~node_host() override;

  // -- context (context.cpp; call() in calls.cpp) ---------------------------------------------------
  void emit(std::size_t port, value v) override;
  void emit_run(std::size_t port, std::span<const value> values) override;
  void check_port(std::size_t port) const;
  bool connected(std::size_t port) const override;
  std::size_t budget() const override;
  void pause_for(std::chrono::nanoseconds d) override;
  void wake_after(std::chrono::nanoseconds d) override;
  std::string_view node_name() const override;
  int instance() const override;
  int replicas() const override;
  bool stopping() const override { return stopping_ || run_->stopping(); }
  void checkpoint(value state) override;
  void set_stop_hook(std::function<void()> hook) override;
  void ask(std::uint64_t id, value shown, std::int64_t deadline_unix_ms) override;  // decisions.cpp
  void settle(std::uint64_t id) override;
  observe::span_buffer* trace() override { return spans_; }
  std::vector<std::string> tools() const override;
  const graph::kind_spec* tool_kind(std::string_view tool) const override;
  void call(std::string_view tool, value request, std::chrono::milliseconds timeout, call_done done) override;

  // -- messages: the turn (node_actor.cpp) -----------------------------------------------------------
  void on_start();
  void on_batch(batch_msg& b);
  void on_credit(const credit_msg& c);
  void on_eos(const eos_msg& e);
  void on_resume();
  void on_timer_msg(std::uint64_t n);
  void on_pump(std::uint64_t seq);
  void on_release();
  void on_cancel();
  void on_escaped(const std::string& what);
  // -- messages: wiring (wiring.cpp) ------------------------------------------------------------------
  void on_producer_replaced(const producer_replaced_msg& m);
  // -- messages: snapshots (snapshots.cpp) -----------------------------------------------------------
  void on_snapshot(std::uint64_t epoch);
  void on_barrier(const barrier_msg& b);
  // -- messages: decisions (decisions.cpp) -----------------------------------------------------------
  void on_decision_msg(decision_msg& m);
  // -- messages: calls (calls.cpp) -----------------------------------------------------------------
  void on_call(caf::actor caller, call_msg& c);
  void on_cancel_call(const caf::actor& caller, std::uint64_t id);
  void on_reply(reply_msg& r);
  void on_call_timeout(const call_timeout_msg& t);

 private:
  enum class phase { created, running, finishing, done };
  // What the open attempt is doing; its commit depends on it.
  enum class site { none, start, message, pull, close, finish, reply, timer, decision };

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
  // close (kept across checkpoints: a port stays closed). A snapshot's part keeps the same list.
  using replayed = instance_part::replayed;

  // -- wiring and start (wiring.cpp) ------------------------------------------------------------------
  // Wires on the first message: the actor table is filled before any actor gets one.
  bool wire() {
    if (wired_) return true;
    return wire_first();
  }
  bool wire_first();
  // Makes and starts the node once; a tool may be called before its start message arrives.
  bool ensure_started();
  std::string who() const;

  // -- attempts (the hot path here; the rest in attempts.cpp) ------------------------------------------
  // Runs `f` as (part of) an attempt. Returns true when the attempt is committed or waits for its calls;
  // false when it failed (the node was restarted, or the run failed).
  template <class F>
  bool attempt(site s, F&& f, link_id input = 0);
  // A new attempt: nothing emitted, dropped or checkpointed yet.
  void open_attempt(site s, link_id input);
  void commit();
  static fault_site to_fault_site(site s);
  // Discards the open attempt: its values, its checkpoint, its outstanding calls.
  void abandon_attempt();
  void failed_attempt(const std::string& error);
  // A fresh node: its last checkpoint, then what it must see again with its emissions discarded.
  void restart();

  // -- calls (calls.cpp) ------------------------------------------------------------------------------
  void answer(pending_call& p, call_result r);
  // A tool serves one call: the request is checked against its call arguments, then on_call.
  void serve(served_call& c);

  // -- decisions (decisions.cpp) -----------------------------------------------------------------------
  // The open attempt's asks and settles, applied at its commit (none: nothing to do there).
  struct decision_op {
    bool ask = true;  // false: settle
    instance_part::pending_decision d;
  };
  // At commit: the attempt's asks and settles; `decided`: it handled the front of decided_, which ends.
  void apply_decision_ops(bool decided);
  // Input waits while the node holds as many pending decisions as it takes (node::max_pending_decisions).
  bool held_by_decisions() const {
    return !decisions_.empty() && decisions_.size() >= impl_->max_pending_decisions();
  }

  // -- the turn (node_actor.cpp) ----------------------------------------------------------------------
  // Serves calls, handles queued input while nothing blocks it, pulls a source, finishes when all input
  // has ended. Yields after a slice; a message to itself continues.
  void pump();
  template <class SliceOver>
  bool handle_run(std::uint64_t& n, SliceOver& slice_over);
  // The turn's size for the kind just made (slice_values, blocking_slice_values, long turns).
  void set_slice() {
    bool runs = impl_->handles_runs();
    slice_ = me_.blocking && runs ? host_detail::blocking_slice_values : host_detail::slice_values;
    // Not a node with tools (flow.call): a run that makes calls commits once all of them are answered, so
    // its outputs would wait for a long run's slowest call, and its turns end with the calls out (their
    // time is not in the turn's).
    long_turns_ = runs && !me_.blocking && me_.tools.empty();
  }
  bool pull();
  void schedule_pump() {
    if (!pump_sent_) send_pump();
  }
  void send_pump() {
    pump_sent_ = true;
    self_->send(self_, pump_atom::value, ++pumps_sent_);
  }
  void flush(bool more = false);
  void maybe_finish();
  void report(instance_end end, std::string error);

  caf::event_based_actor* self_;
  std::shared_ptr<const deployment> plan_;
  std::shared_ptr<run_state> run_;
  const instance_plan& me_;
  node_counters& counters_;
  std::unique_ptr<instance_probe> probe_;  // null: the run has no probes (probes.hpp)
  observe::span_buffer* spans_ = nullptr;  // a traced run: probe_->spans(), the pointer the hot path tests
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
  std::uint64_t slice_ = host_detail::slice_values;  // values per turn (see blocking_slice_values)
  bool long_turns_ = false;  // handles runs, not blocking, no tools: may take run_slice_values a turn once cheap
  bool cheap_ = false;       // its last turn that did work took under about 1 us a value
  std::uint64_t turn_limit_ = host_detail::slice_values;  // this turn's values: slice_, or more (pump)
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
  // A movable instance's run of a one-output-per-input kind (handle_run): each value it emits is the
  // output of in-link `link`'s input `next` (then next counts up).
  struct mapped_run {
    bool on = false;
    link_id link = 0;
    std::uint64_t next = 0;
  } mapped_;
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
  // Decisions (decisions.cpp): pending by id (committed), the open attempt's changes, and the decisions
  // that arrived for pending ids, handled in order between inputs.
  std::map<std::uint64_t, instance_part::pending_decision> decisions_;
  std::vector<decision_op> decision_ops_;
  std::deque<decision_msg> decided_;
  // Snapshots (snapshots.cpp): the last epoch whose part this instance took, and that part while its
  // in-links record.
  void take_part(std::uint64_t epoch);
  void maybe_send_part();
  bool restore_part(const instance_part& p);
  std::uint64_t part_epoch_ = 0;
  std::shared_ptr<instance_part> part_;
};

// -- the hot path of an attempt ------------------------------------------------------------------------

template <class F>
bool node_host::attempt(site s, F&& f, link_id input) {
  if (site_ == site::none) open_attempt(s, input);
  try {
    f();
    if (run_->inject) run_->inject(me_.index, to_fault_site(s), restarts_);
  } catch (...) {
    failed_attempt(host_detail::what_of(std::current_exception()));
    return false;
  }
  if (calls_.empty()) commit();
  return true;
}

inline void node_host::open_attempt(site s, link_id input) {
  site_ = s;
  input_ = input;
  out_.begin();
  attempt_dropped_ = 0;
  pending_checkpoint_.reset();
  decision_ops_.clear();
  taken_ = 0;
  current_len_ = 1;
}

inline fault_site node_host::to_fault_site(site s) {
  switch (s) {
    case site::pull: return fault_site::pull;
    case site::close: return fault_site::close;
    case site::finish: return fault_site::finish;
    case site::reply: return fault_site::reply;
    case site::start: return fault_site::start;
    case site::timer: return fault_site::timer;
    case site::decision: return fault_site::decision;
    default: return fault_site::message;
  }
}

inline void node_host::commit() {
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
  if (!decision_ops_.empty() || s == site::decision) apply_decision_ops(s == site::decision);
  switch (s) {
    case site::message: {
      // A stateful node's inputs are kept for replay, those after its checkpoint (if it took one).
      auto n = taken_;
      if (me_.stateful) {
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

}  // namespace loom::local
