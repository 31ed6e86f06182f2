// runtime/placement/place.cpp: placing one instance: a forced host (placement.host, colocate) if any, else
// the feasible host holding most of its neighbours' traffic, else the least-loaded feasible host; GPUs
// first, then the CPU path where the kind has one. On failure, an error that says what every host lacked.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <array>

#include "loom/runtime/placement/planner_state.hpp"

namespace loom::placement {

namespace {

constexpr double epsilon = 1e-9;

struct affinity {
  int host = 0;
  double weight = 0;
  int node = 0;      // the neighbour with the largest share of `weight`
  double share = 0;
  bool upstream = false;
};

}  // namespace

bool planner::allowed(int n, int h) const {
  if (!lost_.empty() && lost_[h]) return false;
  const auto& f = facts_[n];
  if (f.candidates >= 0 && !lists_[f.candidates].has[h]) return false;
  return f.spread < 0 || spread_yields_ || spread_used_[f.spread].empty() || !spread_used_[f.spread][h];
}

bool planner::try_host(int n, int h, bool with_gpus, int preferred, std::vector<int>& gpus) const {
  const auto& need = facts_[n].need;
  const auto& host = c_.hosts[h];
  if (cpus_used_[h] + need.cpus > host.cpus + epsilon) return false;
  if (host.memory != 0 && memory_used_[h] + need.memory > host.memory) return false;
  gpus.clear();
  if (!with_gpus) return true;
  auto usable = [&](int k) {
    int g = gpu_first_[h] + k;
    std::uint64_t size = host.gpus[k].memory;
    if (size != 0 && size < need.gpu_memory) return false;
    if (need.gpu_memory == 0 || size == 0) return gpu_users_[g] == 0;  // taken whole
    return !gpu_whole_[g] && gpu_memory_used_[g] + need.gpu_memory <= size;
  };
  int count = static_cast<int>(host.gpus.size());
  if (preferred >= 0 && preferred < count && usable(preferred)) gpus.push_back(preferred);
  for (int k = 0; k < count && static_cast<int>(gpus.size()) < need.gpus; ++k)
    if (k != preferred && usable(k)) gpus.push_back(k);
  return static_cast<int>(gpus.size()) >= need.gpus;
}

// The GPU of the heaviest neighbour instance on host h that runs on one, or -1.
int planner::preferred_device(int n, int h) const {
  int device = -1;
  double best = 0;
  for (const auto& nb : facts_[n].neighbours)
    for (int j = 0; j < g_.nodes[nb.node].replicas; ++j) {
      const auto& other = plan_.at(nb.node, j);
      if (other.host == h && other.device >= 0 && nb.weight > best) {
        best = nb.weight;
        device = other.device;
      }
    }
  return device;
}

bool planner::forced_host(int n, int i, int& host, std::string& reason) {
  const auto& node = g_.nodes[n];
  host = -1;
  if (const std::string* pin = pin_of(node)) {
    host = c_.find(*pin);
    reason = "pinned by placement.host";
  }
  for (int t : facts_[n].colocate) {
    int ti = i % g_.nodes[t].replicas;
    int th = plan_.at(t, ti).host;
    if (th < 0) continue;  // not placed (yet): check_colocation() looks again at the end
    if (host >= 0 && host != th) {
      diags_.error(node.field_where("colocate"),
                   fmt::format("node `{}` instance {} must share a host with `{}` instance {} (on `{}`), but is {} `{}`",
                               node.name, i, g_.nodes[t].name, ti, c_.hosts[th].name,
                               pin_of(node) ? "pinned to" : "bound by another colocate to", c_.hosts[host].name));
      return false;
    }
    host = th;
    reason = fmt::format("colocated with `{}`", g_.nodes[t].name);
  }
  return true;
}

bool planner::pick(int n, int i, bool with_gpus, choice& out) {
  const auto& f = facts_[n];
  // Hosts of the placed neighbours, weighted by edge capacity spread over the neighbour's instances.
  std::vector<affinity> near;
  for (const auto& nb : f.neighbours) {
    int replicas = g_.nodes[nb.node].replicas;
    for (int j = 0; j < replicas; ++j)
      if (int h = plan_.at(nb.node, j).host; h >= 0)
        near.push_back({h, nb.weight / replicas, nb.node, nb.weight / replicas, nb.upstream});
  }
  std::sort(near.begin(), near.end(), [](const affinity& a, const affinity& b) { return a.host < b.host; });
  std::vector<affinity> merged;
  for (const auto& a : near) {
    if (merged.empty() || merged.back().host != a.host) {
      merged.push_back(a);
      continue;
    }
    auto& m = merged.back();
    m.weight += a.weight;
    if (a.share > m.share) {
      m.share = a.share;
      m.node = a.node;
      m.upstream = a.upstream;
    }
  }
  std::stable_sort(merged.begin(), merged.end(), [](const affinity& a, const affinity& b) { return a.weight > b.weight; });
  for (const auto& a : merged) {
    if (!allowed(n, a.host) || !try_host(n, a.host, with_gpus, with_gpus ? preferred_device(n, a.host) : -1, out.gpus))
      continue;
    out.host = a.host;
    out.reason = fmt::format("near {} `{}`", a.upstream ? "upstream" : "downstream", g_.nodes[a.node].name);
    return true;
  }
  // The least-loaded feasible host: (cpu load, instances, host order).
  out.host = -1;
  std::vector<int> gpus;
  if (f.candidates < 0) {
    for (const auto& [load, count, h] : by_load_)
      if (allowed(n, h) && try_host(n, h, with_gpus, -1, out.gpus)) {
        out.host = h;
        break;
      }
  } else {
    for (int h : lists_[f.candidates].hosts)
      if (allowed(n, h) && (out.host < 0 || key(h) < key(out.host)) && try_host(n, h, with_gpus, -1, gpus)) {
        out.host = h;
        out.gpus = gpus;
      }
  }
  if (out.host < 0) return false;
  out.reason = f.spread >= 0 ? fmt::format("least loaded; spread group `{}`", spread_names_[f.spread]) : "least loaded";
  return true;
}

void planner::commit(int n, int i, const choice& ch) {
  const auto& f = facts_[n];
  int h = ch.host;
  by_load_.erase(key(h));
  cpus_used_[h] += f.need.cpus;
  memory_used_[h] += f.need.memory;
  ++count_[h];
  by_load_.insert(key(h));
  for (int k : ch.gpus) {
    int g = gpu_first_[h] + k;
    ++gpu_users_[g];
    gpu_memory_used_[g] += f.need.gpu_memory;
    if (f.need.gpu_memory == 0 || c_.hosts[h].gpus[k].memory == 0) gpu_whole_[g] = 1;
  }
  if (f.spread >= 0) {
    auto& used = spread_used_[f.spread];
    if (used.empty()) used.assign(c_.hosts.size(), 0);
    used[h] = 1;
  }
  auto& inst = plan_.instances[plan_.first_instance[n] + i];
  inst.host = h;
  inst.gpus = ch.gpus;
  inst.device = ch.gpus.empty() ? -1 : ch.gpus.front();
  inst.reason = ch.reason;
}

void planner::place(int n, int i) {
  auto& f = facts_[n];
  const auto& node = g_.nodes[n];
  bool want_gpu = f.need.gpus > 0 && !f.gpu_fallback;
  bool may_cpu = f.need.gpus == 0 || f.need.cpu_fallback;
  std::string fallback = f.gpu_fallback ? f.fallback_why : "CPU fallback: no GPU free";
  choice ch;
  std::string reason;
  int forced = -1;
  if (!forced_host(n, i, forced, reason)) {
    f.failed = true;
    return;
  }
  if (forced >= 0) {
    ch.host = forced;
    ch.reason = reason;
    bool ok = allowed(n, forced);
    if (ok && want_gpu && try_host(n, forced, true, preferred_device(n, forced), ch.gpus)) return commit(n, i, ch);
    if (ok && may_cpu && try_host(n, forced, false, -1, ch.gpus)) {
      if (f.need.gpus > 0) ch.reason += "; " + fallback;
      return commit(n, i, ch);
    }
    diags_.error(node.field_where(node.place.host && reason.rfind("pinned", 0) == 0 ? "placement" : "colocate"),
                 fmt::format("node `{}` instance {} must run on `{}` ({}), but {}", node.name, i, c_.hosts[forced].name,
                             reason, why_not(n, i, forced)));
    f.failed = true;
    return;
  }
  if (want_gpu && pick(n, i, true, ch)) return commit(n, i, ch);
  if (may_cpu && pick(n, i, false, ch)) {
    if (f.need.gpus > 0) ch.reason += "; " + fallback;
    return commit(n, i, ch);
  }
  diags_.error(node.field_where(node.spread ? "spread" : "resources"),
               fmt::format("node `{}` instance {} of {} cannot be placed: {}", node.name, i, node.replicas, why_not(n, i, -1)));
  f.failed = true;
}

// What excluded each host for instance i of node n: every host of the cluster, or only `only`. Each host is
// named under the first constraint that excludes it (lost, placement, spread group, cpus, memory, GPUs),
// so that a user sees which host to fix or add: "of 4 hosts, `h1` and `h3` are lost (out of the run),
// `h2` has too few free cpus (needs 1), `h0` does not match its placement (labels role=relay)".
std::string planner::why_not(int n, int i, int only) const {
  (void)i;
  const auto& f = facts_[n];
  const auto& node = g_.nodes[n];
  const auto& need = f.need;
  bool want_gpu = need.gpus > 0 && !f.gpu_fallback && !need.cpu_fallback;
  enum reason { lost, placement, spread, cpus, memory, gpus, reasons };
  std::array<std::vector<int>, reasons> by;
  auto visit = [&](int h) {
    std::vector<int> picked;
    if (!lost_.empty() && lost_[h]) by[lost].push_back(h);
    else if (f.candidates >= 0 && !lists_[f.candidates].has[h]) by[placement].push_back(h);
    else if (!allowed(n, h)) by[spread].push_back(h);
    else if (cpus_used_[h] + need.cpus > c_.hosts[h].cpus + epsilon) by[cpus].push_back(h);
    else if (c_.hosts[h].memory != 0 && memory_used_[h] + need.memory > c_.hosts[h].memory) by[memory].push_back(h);
    else if (want_gpu && !try_host(n, h, true, -1, picked)) by[gpus].push_back(h);
  };
  int hosts = only >= 0 ? 1 : static_cast<int>(c_.hosts.size());
  if (only >= 0) visit(only);
  else
    for (int h = 0; h < hosts; ++h) visit(h);
  std::string placement_text;
  if (const std::string* pin = pin_of(node)) placement_text = fmt::format("placement.host `{}`", *pin);
  if (!node.place.labels.empty())
    placement_text += fmt::format("{}labels {}", placement_text.empty() ? "" : ", ", labels_text(node.place.labels));
  // Each constraint for one host ("it" or "`a`") and for several.
  std::string limit = fmt::format("too few free cpus (needs {:g})", need.cpus);
  std::string mem = fmt::format("too little free memory (needs {})", size_text(need.memory));
  std::string gpu = fmt::format("no free GPU{}{}", need.gpus > 1 ? "s" : "",
                                need.gpu_memory ? " with " + size_text(need.gpu_memory) : std::string());
  std::string group = f.spread >= 0 ? fmt::format("another instance of spread group `{}`", spread_names_[f.spread]) : "";
  std::array<std::pair<std::string, std::string>, reasons> what{{
      {"is lost (out of the run)", "are lost (out of the run)"},
      {fmt::format("does not match its placement ({})", placement_text),
       fmt::format("do not match its placement ({})", placement_text)},
      {"holds " + group, "hold " + group},
      {"has " + limit, "have " + limit},
      {"has " + mem, "have " + mem},
      {"has " + gpu, "have " + gpu},
  }};
  std::vector<std::string> parts;
  for (std::size_t r = 0; r < reasons; ++r) {
    const auto& list = by[r];
    if (list.empty()) continue;
    std::string who;
    constexpr std::size_t shown = 8;  // a big cluster: the first few, then a count
    for (std::size_t k = 0; k < list.size() && k < shown; ++k)
      who += fmt::format("{}`{}`", k == 0 ? "" : (k + 1 == list.size() ? " and " : ", "), c_.hosts[list[k]].name);
    if (list.size() > shown) who += fmt::format(" and {} more", list.size() - shown);
    parts.push_back(only >= 0 ? "it " + what[r].first
                              : who + " " + (list.size() == 1 ? what[r].first : what[r].second));
  }
  if (parts.empty()) return hosts == 0 ? "the cluster has no hosts" : "no host fits";
  std::string head = only >= 0 ? "" : fmt::format("of {} host{}, ", hosts, hosts == 1 ? "" : "s");
  return head + fmt::format("{}", fmt::join(parts, "; "));
}

std::string planner::gpu_text(int h, std::uint64_t at_least) const {
  std::vector<std::pair<std::uint64_t, int>> sizes;  // memory -> count, fitting GPUs only
  for (const auto& d : c_.hosts[h].gpus) {
    if (d.memory != 0 && d.memory < at_least) continue;
    auto it = std::find_if(sizes.begin(), sizes.end(), [&](const auto& s) { return s.first == d.memory; });
    if (it == sizes.end()) sizes.emplace_back(d.memory, 1);
    else ++it->second;
  }
  std::vector<std::string> parts;
  for (const auto& [memory, count] : sizes)
    parts.push_back(memory == 0 ? fmt::format("{} GPU{}", count, count > 1 ? "s" : "")
                                : fmt::format("{} x {}", count, size_text(memory)));
  return fmt::format("{}", fmt::join(parts, ", "));
}

}  // namespace loom::placement
