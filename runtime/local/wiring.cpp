// runtime/local/wiring.cpp: an instance meets its run. The host is made from its plan (node_host.hpp);
// at its first message it wires its outbox and inbox to the run's actor table (a movable instance routes what
// goes to other hosts through its egress) and finds its tools' actors; then the node is made and started
// (its on_start is the first attempt). A producer replaced on another host is re-wired here. From here a
// message goes on to the turn (node_actor.cpp: pump).
#include "loom/runtime/local/node_host.hpp"
#include "loom/runtime/local/snapshot.hpp"

#include <fmt/format.h>

#include <random>

namespace loom::local {

using namespace host_detail;

node_host::node_host(caf::event_based_actor* self, std::shared_ptr<const deployment> plan,
                     std::shared_ptr<run_state> run, std::uint32_t index)
    : self_(self),
      plan_(std::move(plan)),
      run_(std::move(run)),
      me_(plan_->instances[index]),
      counters_(run_->counters(index)) {
  if (run_->probes) {
    probe_ = run_->probes->instance(index, instance_name(*plan_, index));
    spans_ = probe_->spans();
  }
}

node_host::~node_host() { run_->clear_stop_hook(me_.index); }

// The producer of one of our in-links was lost with its host and replaced elsewhere.
void node_host::on_producer_replaced(const producer_replaced_msg& m) {
  if (phase_ == phase::done || !wire()) return;
  if (!in_.replaced(m.link))
    return report(instance_end::failed, fmt::format("{}: a replaced producer on link {}, which it does not have",
                                                    who(), m.link));
  self_->send(caf::actor_cast<caf::actor>(self_->current_sender()), replaced_ack_msg{in_.remote_of(m.link)});
  pump();
}

// The first message wires the instance (wire(), node_host.hpp): the actor table is filled before any actor
// gets one.
bool node_host::wire_first() {
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

bool node_host::ensure_started() {
  wire();
  if (phase_ == phase::created) {
    phase_ = phase::running;
    // A resumed run: the node as its part of the snapshot kept it (snapshots.cpp).
    const instance_part* part = run_->restore && me_.index < run_->restore->parts.size()
                                    ? run_->restore->parts[me_.index].get()
                                    : nullptr;
    if (part && part->state == instance_part::phase::finished) {
      report(instance_end::finished, {});  // its end of stream is in its consumers' parts already
      return false;
    }
    if (part) {
      if (!restore_part(*part)) return false;
      set_slice();
      return true;
    }
    try {
      impl_ = me_.def->make(me_.init);
      set_slice();
    } catch (...) {
      report(instance_end::failed,
             fmt::format("{} could not be made: {}", who(), what_of(std::current_exception())));
      return false;
    }
    attempt(site::start, [&] { impl_->on_start(*this); });
  }
  return impl_ != nullptr && phase_ != phase::done;
}

std::string node_host::who() const {
  if (me_.init.replicas > 1)
    return fmt::format("node `{}` ({}, instance {})", me_.init.name, me_.kind, me_.init.instance);
  return fmt::format("node `{}` ({})", me_.init.name, me_.kind);
}

}  // namespace loom::local
