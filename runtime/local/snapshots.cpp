// runtime/local/snapshots.cpp: a node instance's part of a consistent snapshot (snapshot.hpp,
// docs/durability.md), and a resumed run's instance made from its part. The part is taken at the first of
// the coordinator's snapshot_msg or a barrier on an in-link; it is complete (sent to the coordinator) once
// every in-link's recording has ended at its barrier or end of stream.
#include <fmt/format.h>

#include "loom/runtime/local/node_host.hpp"
#include "loom/runtime/local/snapshot.hpp"

namespace loom::local {

void node_host::on_snapshot(std::uint64_t epoch) {
  if (phase_ == phase::done || epoch <= part_epoch_ || !wire()) return;
  take_part(epoch);
  maybe_send_part();
}

void node_host::on_barrier(const barrier_msg& b) {
  if (phase_ == phase::done || !wire()) return;
  if (b.epoch > part_epoch_) take_part(b.epoch);
  if (b.epoch == part_epoch_ && part_) {
    if (!in_.end_recording(b.link))
      return report(instance_end::failed, fmt::format("{}: a barrier on link {}, which it does not have", who(), b.link));
    maybe_send_part();
  }
}

// The committed state, now (an open attempt is left out: it is done again on resume); then a barrier on
// every out-link and the recording of every in-link.
void node_host::take_part(std::uint64_t epoch) {
  auto t0 = clock::now();
  if (impl_) {
    try {
      impl_->on_snapshot();
    } catch (...) {
      return report(instance_end::failed, fmt::format("{} failed while a snapshot took its part: {}", who(),
                                                      host_detail::what_of(std::current_exception())));
    }
  }
  part_epoch_ = epoch;
  auto p = std::make_shared<instance_part>();
  p->instance = me_.index;
  p->state = phase_ == phase::finishing ? instance_part::phase::finishing : instance_part::phase::running;
  p->checkpoint = checkpoint_;
  p->replay = replay_;
  p->to_close.assign(to_close_.begin(), to_close_.end());
  p->pulled_all = pulled_all_;
  p->outputs = out_.committed_unsent();
  for (const auto& [id, d] : decisions_) p->pending.push_back(d);
  // Idle: nothing happens here until a decision or a credit comes (a timer then is a decision's deadline).
  p->held = impl_ && held_by_decisions();
  p->idle = phase_ == phase::running && site_ == site::none && (in_.empty() || p->held) && to_close_.empty() &&
            decided_.empty() && calls_.empty() && served_.empty() && !timer_ready_ &&
            (!timer_armed_ || !decisions_.empty()) && (!is_source_ || pulled_all_ || out_.budget() == 0);
  in_.start_recording();
  out_.send_barrier(self_, epoch);
  p->take_ns = static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(clock::now() - t0).count());
  part_ = std::move(p);
}

void node_host::maybe_send_part() {
  if (!part_ || in_.recording()) return;
  part_->inputs = in_.take_records();
  self_->send(run_->coordinator, part_msg{part_epoch_, std::move(part_)});
  part_.reset();
}

// The node made from the part's checkpoint and replay (as a restart makes it), its queues as the snapshot
// kept them. False when it failed (reported).
bool node_host::restore_part(const instance_part& p) {
  checkpoint_ = p.checkpoint;
  replay_ = p.replay;
  to_close_.assign(p.to_close.begin(), p.to_close.end());
  pulled_all_ = p.pulled_all;
  for (const auto& d : p.pending) decisions_.emplace(d.id, d);  // the node asks again in on_start: no change
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
    report(instance_end::failed,
           fmt::format("{} could not be resumed: {}", who(), host_detail::what_of(std::current_exception())));
    return false;
  }
  if (p.state == instance_part::phase::finishing) phase_ = phase::finishing;
  return true;
}

std::shared_ptr<instance_part> finished_part(std::uint32_t instance) {
  auto p = std::make_shared<instance_part>();
  p->instance = instance;
  p->state = instance_part::phase::finished;
  return p;
}

std::vector<std::vector<std::uint32_t>> consumers_by_out_link(const deployment& d) {
  std::vector<std::vector<std::uint32_t>> out(d.instances.size());
  for (const auto& inst : d.instances)
    for (const auto& edges : inst.out_ports)
      for (const auto& edge : edges)
        for (const auto& l : edge.links) out[inst.index].push_back(l.consumer);
  return out;
}

bool is_quiet(const snapshot& s, const std::vector<std::vector<std::uint32_t>>& consumers_of) {
  if (s.pending == 0) return false;
  auto held = [&](std::uint32_t i) { return i < s.parts.size() && s.parts[i] && s.parts[i]->held; };
  for (const auto& p : s.parts) {
    if (!p) return false;
    if (p->state == instance_part::phase::finished) continue;
    if (!p->idle) return false;
    for (const auto& r : p->inputs)
      if (!r.values.empty() && !p->held) return false;
    for (const auto& u : p->outputs)
      if (!u.values.empty() &&
          (p->instance >= consumers_of.size() || u.link >= consumers_of[p->instance].size() ||
           !held(consumers_of[p->instance][u.link])))
        return false;
  }
  return true;
}

}  // namespace loom::local
