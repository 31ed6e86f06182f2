// runtime/cluster/driver_snapshots.cpp: the snapshots of a cluster run with --state (docs/durability.md,
// "Cluster runs"). The driver starts epoch n by sending `snapshot{n}` to every worker; each worker's slice
// asks its instances for their parts (a barrier crossing a data link makes the far instance take its part
// too, in order with the link's values: the protocol of runtime/local/snapshot.hpp, unchanged across
// hosts), and sends each part here as it completes. The driver holds the run's state: the snapshot goes to
// driver_options::on_snapshot once every instance's part is in. Decisions recorded in the state file go
// from here to the worker of their instance.
#include <fmt/format.h>

#include <algorithm>

#include "loom/runtime/cluster/driver_state.hpp"
#include "loom/runtime/local/node_actor.hpp"
#include "loom/runtime/local/part_value.hpp"

namespace loom::cluster::detail {

void driver::snapshot_tick() {
  if (!o_.on_snapshot || o_.snapshot_every.count() <= 0) return;
  auto now = clock::now();
  if (building_) {
    // A move rewires the links under the epoch (its barriers may be lost with the host): dropped, and so is
    // one whose parts do not all come (a part the wire cannot carry; a worker that lost it).
    auto limit = std::max<clock::duration>(std::chrono::seconds(10), 10 * o_.snapshot_every);
    bool late = now - epoch_started_ > limit;
    if (cancelling_ || !pending_moves_.empty() || late) {
      if (late) log(fmt::format("snapshot epoch {}: {} parts did not come within {:.0f} s; dropped", building_->epoch,
                                parts_left_, std::chrono::duration<double>(limit).count()));
      building_.reset();
      last_snapshot_ = now;
    }
    return;
  }
  if (cancelling_ || !pending_moves_.empty() || remaining_ == 0 ||
      (now - last_snapshot_ < o_.snapshot_every && !(snapshot_soon_ && now >= soon_at_)))
    return;
  last_snapshot_ = now;
  snapshot_soon_ = false;
  building_ = std::make_shared<local::snapshot>();
  building_->epoch = ++snapshot_epoch_;
  building_->parts.resize(dep_.instances.size());
  parts_left_ = dep_.instances.size();
  epoch_started_ = now;
  for (std::uint32_t i = 0; i < dep_.instances.size(); ++i)
    if (done_[i] && !cancelled_[i]) {
      building_->parts[i] = local::finished_part(i);
      --parts_left_;
    }
  for (auto& w : workers_)
    if (w.ready && !w.lost) send(w, ctl::snapshot{building_->epoch});
}

void driver::route_decisions() {
  if (!o_.poll_decisions || cancelling_) return;
  for (auto& d : o_.poll_decisions()) {
    auto w = std::find_if(workers_.begin(), workers_.end(), [&](const worker_link& x) {
      return !x.lost && std::find(x.instances.begin(), x.instances.end(), d.instance) != x.instances.end();
    });
    // Its host is gone (a move in progress): the decision stays recorded in the state file, and is taken
    // again from there by a resumed run (or once the move is done, by the next poll of a resume).
    if (w == workers_.end() || d.instance >= done_.size() || done_[d.instance]) continue;
    send(*w, ctl::decide{d.instance, d.id, std::move(d.d)});
  }
}

void driver::finished_part(std::uint32_t instance) {
  if (!building_ || instance >= building_->parts.size() || building_->parts[instance]) return;
  building_->parts[instance] = local::finished_part(instance);
  if (--parts_left_ == 0) complete_snapshot();
}

void driver::take_part(const worker_link& w, ctl::snapshot_part& sp) {
  if (!building_ || sp.epoch != building_->epoch) return;  // an epoch dropped or done: late parts are ignored
  auto i = sp.instance;
  if (i >= dep_.instances.size() || std::find(w.instances.begin(), w.instances.end(), i) == w.instances.end()) {
    log(fmt::format("worker `{}` sent a snapshot part of instance {}, which is not placed on it: ignored", w.host, i));
    return;
  }
  if (building_->parts[i]) return;  // finished here already (its done came first)
  std::string error;
  auto part = local::part_from_value(sp.part, dep_.instances[i], error);
  if (!part) {
    log(fmt::format("worker `{}`: {}; snapshot epoch {} dropped", w.host, error, building_->epoch));
    building_.reset();
    return;
  }
  building_->parts[i] = std::move(part);
  if (--parts_left_ == 0) complete_snapshot();
}

void driver::complete_snapshot() {
  building_->took_ns = static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(clock::now() - epoch_started_).count());
  for (const auto& p : building_->parts)
    if (p) building_->pending += p->pending.size();
  if (consumers_of_.empty()) consumers_of_ = local::consumers_by_out_link(dep_);
  building_->quiet = local::is_quiet(*building_, consumers_of_);
  bool detach = o_.detach_on_pause && building_->quiet && !cancelling_;
  // Pending decisions but not quiet yet (a credit on its way): look again soon.
  if (o_.detach_on_pause && building_->pending > 0 && !building_->quiet) {
    snapshot_soon_ = true;
    soon_at_ = clock::now() + std::chrono::milliseconds(100);
  }
  auto pending = building_->pending;
  o_.on_snapshot(std::move(building_));
  building_.reset();
  if (detach) {
    log(fmt::format("the run waits for people only ({} decisions pending): paused", pending));
    if (report_.result == local::run_report::outcome::ok) report_.result = local::run_report::outcome::paused;
    cancel_all("paused: the run waits for decisions (--detach-on-pause)");
  }
}

}  // namespace loom::cluster::detail
