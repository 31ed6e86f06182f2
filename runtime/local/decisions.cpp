// runtime/local/decisions.cpp: a node that waits for a person (docs/durability.md, "People in the loop").
// The node asks (context::ask) inside an attempt; the ask is kept when the attempt commits, and the
// coordinator hears of it (asked_msg: the run pauses there, a snapshot is taken at once; so it does after a
// decision is taken). A decision
// arrives from the coordinator (decision_msg: `loom approve`, the state file's poller) and waits in
// decided_ until the turn (node_actor.cpp: pump) hands it to node::on_decision as an attempt; that attempt's
// commit ends the decision. Pending decisions are committed state: a restart keeps them, a snapshot's part
// carries them, a resumed instance starts with them.
#include "loom/runtime/local/node_host.hpp"

namespace loom::local {

void node_host::ask(std::uint64_t id, value shown, std::int64_t deadline_unix_ms) {
  instance_part::pending_decision d{id, std::move(shown), unix_ms_now(), deadline_unix_ms};
  // A restarted or resumed node asks again from on_start for what it holds: that is its committed state
  // already, not a new ask.
  if (restoring_) {
    decisions_.try_emplace(id, std::move(d));
    return;
  }
  decision_ops_.push_back({true, std::move(d)});
}

void node_host::settle(std::uint64_t id) {
  if (restoring_) {
    decisions_.erase(id);
    return;
  }
  decision_ops_.push_back({false, {id, value{}, 0, 0}});
}

void node_host::apply_decision_ops(bool decided) {
  bool changed = decided;
  if (decided && !decided_.empty()) {
    decisions_.erase(decided_.front().id);
    decided_.pop_front();
  }
  for (auto& op : decision_ops_) {
    if (op.ask)
      changed |= decisions_.try_emplace(op.d.id, std::move(op.d)).second;
    else
      decisions_.erase(op.d.id);
  }
  decision_ops_.clear();
  // A queued decision whose id was settled meanwhile (a timeout) has nothing left to decide.
  std::erase_if(decided_, [&](const decision_msg& m) { return !decisions_.contains(m.id); });
  if (changed) self_->send(run_->coordinator, asked_msg{me_.index});
}

void node_host::on_decision_msg(decision_msg& m) {
  if (phase_ == phase::done || !wire()) return;
  bool queued = false;
  for (const auto& q : decided_) queued |= q.id == m.id;
  if (!decisions_.contains(m.id) || queued) {
    // Decided twice, or after it was settled (a timeout): the first one counts.
    counters_.late.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  decided_.push_back(std::move(m));
  pump();
}

}  // namespace loom::local
