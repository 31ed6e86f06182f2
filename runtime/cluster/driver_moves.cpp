// runtime/cluster/driver_moves.cpp: the driver finds a worker lost (silent past the heartbeat timeout)
// and either moves its unfinished `recover: replace` instances to surviving hosts (the planner's
// replace_lost, an adopt to every worker, a resume once all have rewired) or fails the run naming the host,
// its nodes and the data links that went with it.
#include <fmt/format.h>

#include <algorithm>

#include "loom/graph/diagnostics.hpp"
#include "loom/runtime/cluster/driver_state.hpp"
#include "loom/runtime/cluster/fingerprint.hpp"
#include "loom/runtime/cluster/protocol.hpp"
#include "loom/runtime/local/node_actor.hpp"

namespace loom::cluster::detail {

void driver::check_lost() {
  for (auto& w : workers_) {
    if (w.instances.empty() || w.lost || clock::now() - w.last_seen <= o_.heartbeat_timeout) continue;
    std::vector<std::uint32_t> unfinished_ones;
    for (auto i : w.instances)
      if (!done_[i] || cancelled_[i]) unfinished_ones.push_back(i);
    if (unfinished_ones.empty()) continue;
    auto silent = std::chrono::duration<double>(clock::now() - w.last_seen).count();
    std::string why_not;
    if (replace(w, unfinished_ones, why_not)) continue;
    fail(fmt::format("worker `{}` at {} lost: no heartbeat for {:.1f} s; nodes lost: {}{}{}", w.host, w.address, silent,
                     unfinished(w), links_lost(w), why_not.empty() ? "" : "; " + why_not));
    for (auto i : w.instances)
      if (!done_[i]) done_[i] = true, --remaining_;
    w.instances.clear();
    w.lost = true;
    ep_->drop(w.peer);  // what is queued for it would only hold up the driver's exit
    cancel_all(report_.error);
  }
}

bool driver::replace(worker_link& w, const std::vector<std::uint32_t>& moving, std::string& why_not) {
  if (cancelling_ || report_.result != local::run_report::outcome::ok) return false;
  bool any = false;
  for (auto i : moving) any = any || dep_.instances[i].movable;
  if (!any) return false;
  auto worker_of = [&](std::uint32_t i) -> worker_link* {
    for (auto& x : workers_)
      if (std::find(x.instances.begin(), x.instances.end(), i) != x.instances.end()) return &x;
    return nullptr;
  };
  for (auto i : moving) {
    const auto& inst = dep_.instances[i];
    auto name = local::instance_name(dep_, i);
    if (!inst.movable) {
      why_not = fmt::format("`{}` cannot move (it does not have `recover: replace`)", name);
      return false;
    }
    auto neighbour_lost = [&](std::uint32_t j) {
      auto* x = worker_of(j);
      return x == nullptr || x == &w || x->lost;
    };
    for (const auto& l : inst.in_links)
      if (neighbour_lost(l.producer)) {
        why_not = fmt::format("`{}` cannot move: its producer `{}` was on the lost host too", name,
                              local::instance_name(dep_, l.producer));
        return false;
      }
    for (const auto& port : inst.out_ports)
      for (const auto& e : port)
        for (const auto& l : e.links)
          if (neighbour_lost(l.consumer)) {
            why_not = fmt::format("`{}` cannot move: its consumer `{}` was on the lost host too", name,
                                  local::instance_name(dep_, l.consumer));
            return false;
          }
  }
  // The planner places them on the hosts still in the run, by the rules it placed everything with.
  std::vector<char> unavailable(c_.hosts.size(), 1);
  for (const auto& x : workers_)
    if (&x != &w && !x.lost && x.ready)
      if (auto h = c_.find(x.host); h >= 0) unavailable[static_cast<std::size_t>(h)] = 0;
  graph::diagnostics diags;
  auto next = placement::replace_lost(g_, *o_.kinds, c_, now_, unavailable,
                                      std::vector<int>(moving.begin(), moving.end()), diags);
  if (diags.has_errors()) {
    why_not = "no surviving host fits: " + diags.str();
    return false;
  }
  w.lost = true;
  ep_->drop(w.peer);
  std::vector<std::uint32_t> stay;
  for (auto i : w.instances)
    if (std::find(moving.begin(), moving.end(), i) == moving.end()) stay.push_back(i);
  w.instances = stay;
  for (auto i : moving) {
    const auto& target = c_.hosts[static_cast<std::size_t>(next.instances[i].host)].name;
    std::uint32_t k = 0;
    while (k < workers_.size() && workers_[k].host != target) ++k;
    workers_[k].instances.push_back(i);
    now_.instances[i] = next.instances[i];
    cancelled_[i] = false;
    done_[i] = false;
    // The summary's counts for it are the replacement's; the line keeps what the lost one had reported.
    auto& s = report_.nodes[i];
    auto line = fmt::format("{} (host `{}` -> `{}`; {} values handled on `{}` before)", local::instance_name(dep_, i),
                            w.host, target, s.in, w.host);
    // A spread group that had to share a host in this move says so in the summary too.
    if (auto at = next.instances[i].reason.find("; spread group "); at != std::string::npos)
      line.insert(line.size() - 1, next.instances[i].reason.substr(at));
    set_counters(s, {});
    s.queued = 0;
    log(fmt::format("worker `{}` lost; moving {}: {}", w.host, line, next.instances[i].reason));
    report_.moved.push_back(line);
    ++epoch_[i];
    pending_move m{i, {}, clock::now() + std::chrono::seconds(10)};
    for (std::uint32_t x = 0; x < workers_.size(); ++x)
      if (!workers_[x].lost && workers_[x].ready) {
        m.waiting.insert(x);
        send(workers_[x], ctl::adopt{i, k, epoch_[i]});
      }
    pending_moves_.push_back(std::move(m));
  }
  return true;
}

void driver::adopted(const worker_link& w, const ctl::adopt& a) {
  auto x = static_cast<std::uint32_t>(&w - workers_.data());
  for (auto it = pending_moves_.begin(); it != pending_moves_.end(); ++it) {
    if (it->instance != a.instance) continue;
    it->waiting.erase(x);
    if (!it->waiting.empty()) return;
    for (auto& v : workers_)
      if (!v.lost && v.ready) send(v, ctl::resume{a.instance});
    pending_moves_.erase(it);
    return;
  }
}

void driver::check_moves() {
  for (const auto& m : pending_moves_) {
    if (clock::now() < m.deadline || cancelling_) continue;
    std::string names;
    for (auto x : m.waiting) names += (names.empty() ? "" : ", ") + workers_[x].host;
    fail(fmt::format("moving {} off a lost host: worker(s) {} did not rewire within 10 s",
                     local::instance_name(dep_, m.instance), names));
    cancel_all(report_.error);
  }
}

std::string driver::links_lost(const worker_link& w) const {
  std::vector<std::uint32_t> instance_host(now_.instances.size());
  for (std::uint32_t i = 0; i < now_.instances.size(); ++i) instance_host[i] = static_cast<std::uint32_t>(now_.instances[i].host);
  if (w.instances.empty()) return {};
  auto mine = instance_host[w.instances.front()];
  std::string out;
  for (const auto& other : workers_) {
    if (&other == &w || other.instances.empty()) continue;
    auto theirs = instance_host[other.instances.front()];
    auto links = links_between(dep_, instance_host, theirs, mine);
    if (!links.empty()) out += fmt::format("{}`{}` <-> `{}` ({})", out.empty() ? "" : ", ", other.host, w.host, links);
  }
  return out.empty() ? out : "; data links lost: " + out;
}

std::string driver::unfinished(const worker_link& w) const {
  std::string names;
  for (auto i : w.instances)
    if (!done_[i] || cancelled_[i]) names += (names.empty() ? "" : ", ") + local::instance_name(dep_, i);
  return names;
}

}  // namespace loom::cluster::detail
