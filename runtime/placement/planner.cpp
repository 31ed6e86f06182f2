// runtime/placement/planner.cpp: make_plan(): one greedy pass over the nodes in topological order, each
// instance on the feasible host that holds most of its upstream traffic, else on the least-loaded one.
// Hard constraints (capacity, placement.host, labels, colocate, spread) are checked before preferences;
// impossible ones are errors that name the node. docs/placement.md has the rules.
#include "loom/runtime/placement/planner.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <map>
#include <queue>
#include <set>
#include <tuple>
#include <unordered_map>

#include "loom/runtime/placement/planner_state.hpp"

namespace loom::placement {

needs needs_of(const graph::node& n, const graph::kind_catalog& catalog) {
  needs out;
  const graph::kind_spec* kind = catalog.find_kind(n.kind);
  if (kind != nullptr) {
    out.cpus = kind->resources.cpus;
    out.memory = kind->resources.memory;
    out.gpus = kind->resources.gpus;
    out.cpu_fallback = kind->resources.cpu_fallback;
  }
  bool has_resources = n.fields.count("resources") > 0 || !(n.res == graph::resources{});
  if (has_resources) {
    int kind_gpus = out.gpus;
    out.cpus = n.res.cpus;
    out.memory = n.res.memory;
    out.gpus = n.res.gpus;
    out.gpu_memory = n.res.gpu_memory;
    if (out.gpus == 0 && out.gpu_memory > 0) out.gpus = std::max(kind_gpus, 1);  // gpu_memory alone asks for a GPU
  }
  return out;
}

std::string labels_text(const std::vector<std::pair<std::string, std::string>>& labels) {
  std::string out;
  for (const auto& [k, v] : labels) out += fmt::format("{}{}={}", out.empty() ? "" : ", ", k, v);
  return out;
}

planner::planner(const graph::graph& g, const graph::kind_catalog& catalog, const cluster& c, graph::diagnostics& diags)
    : g_(g), catalog_(catalog), c_(c), diags_(diags) {
  std::size_t hosts = c.hosts.size();
  cpus_used_.assign(hosts, 0);
  memory_used_.assign(hosts, 0);
  count_.assign(hosts, 0);
  gpu_first_.push_back(0);
  for (const auto& h : c.hosts) gpu_first_.push_back(gpu_first_.back() + static_cast<int>(h.gpus.size()));
  gpu_memory_used_.assign(gpu_first_.back(), 0);
  gpu_users_.assign(gpu_first_.back(), 0);
  gpu_whole_.assign(gpu_first_.back(), 0);
  for (std::size_t h = 0; h < hosts; ++h) {
    by_load_.insert(key(static_cast<int>(h)));
    for (const auto& l : c.hosts[h].labels) label_index_[l].push_back(static_cast<int>(h));
  }
}

plan planner::run() {
  index_nodes();
  for (std::size_t n = 0; n < g_.nodes.size(); ++n) check_node(static_cast<int>(n));
  check_spread_groups();
  for (int n : order())
    if (!facts_[n].failed)
      for (int i = 0; i < g_.nodes[n].replicas; ++i) place(n, i);
  check_colocation();
  make_links();
  plan_.instances_per_host = count_;
  return std::move(plan_);
}

void planner::index_nodes() {
  std::unordered_map<std::string_view, int> index;
  for (std::size_t n = 0; n < g_.nodes.size(); ++n) index.emplace(g_.nodes[n].name, static_cast<int>(n));
  facts_.resize(g_.nodes.size());
  std::map<std::string, int> spread_ids;
  for (std::size_t n = 0; n < g_.nodes.size(); ++n) {
    const auto& node = g_.nodes[n];
    auto& f = facts_[n];
    f.need = needs_of(node, catalog_);
    f.candidates = candidate_list(node);
    if (node.spread) {
      auto [it, added] = spread_ids.emplace(*node.spread, static_cast<int>(spread_names_.size()));
      if (added) spread_names_.push_back(*node.spread);
      f.spread = it->second;
    }
    for (const auto& other : node.colocate)
      if (auto it = index.find(other); it != index.end()) f.colocate.push_back(it->second);
    plan_.first_instance.push_back(static_cast<int>(plan_.instances.size()));
    for (int i = 0; i < node.replicas; ++i) plan_.instances.push_back({static_cast<int>(n), i, -1, -1, {}, {}});
  }
  spread_used_.assign(spread_names_.size(), {});
  for (const auto& e : g_.edges) {
    auto from = index.find(e.from.node), to = index.find(e.to.node);
    if (from == index.end() || to == index.end()) {
      edge_ends_.emplace_back(-1, -1);
      continue;
    }
    edge_ends_.emplace_back(from->second, to->second);
    double weight = static_cast<double>(g_.capacity_of(e));
    facts_[from->second].neighbours.push_back({to->second, weight, false});
    facts_[to->second].neighbours.push_back({from->second, weight, true});
  }
}

// The hosts a node may use by `placement` (host and labels), shared between nodes that ask the same.
const std::string* planner::pin_of(const graph::node& n) const {
  if (!n.place.host) return nullptr;
  // Moving off a lost host (replace): the pin said where the node starts; `recover: replace` lets it go on
  // elsewhere, and only its labels still choose.
  if (!lost_.empty())
    if (int h = c_.find(*n.place.host); h >= 0 && lost_[h]) return nullptr;
  return &*n.place.host;
}

int planner::candidate_list(const graph::node& n) {
  const std::string* pin = pin_of(n);
  if (!pin && n.place.labels.empty()) return -1;
  std::string key = (pin ? *pin : std::string()) + "|" + labels_text(n.place.labels);
  if (auto it = list_ids_.find(key); it != list_ids_.end()) return it->second;
  std::vector<int> pool;
  if (pin) {
    if (int h = c_.find(*pin); h >= 0) pool.push_back(h);
  } else {
    const std::vector<int>* smallest = nullptr;
    for (const auto& l : n.place.labels) {
      auto it = label_index_.find(l);
      if (it == label_index_.end()) {
        smallest = nullptr;
        break;
      }
      if (smallest == nullptr || it->second.size() < smallest->size()) smallest = &it->second;
    }
    if (smallest != nullptr) pool = *smallest;
  }
  host_list list;
  list.has.assign(c_.hosts.size(), 0);
  for (int h : pool) {
    bool match = std::all_of(n.place.labels.begin(), n.place.labels.end(), [&](const auto& l) {
      const std::string* v = c_.hosts[h].label(l.first);
      return v != nullptr && *v == l.second;
    });
    if (!match) continue;
    list.hosts.push_back(h);
    list.has[h] = 1;
  }
  list_ids_.emplace(key, static_cast<int>(lists_.size()));
  lists_.push_back(std::move(list));
  return static_cast<int>(lists_.size()) - 1;
}

const list_maxima& planner::maxima(int list, std::uint64_t gpu_memory) {
  auto [it, added] = maxima_.try_emplace({list, gpu_memory});
  if (!added) return it->second;
  list_maxima& m = it->second;
  auto visit = [&](int h) {
    const auto& host = c_.hosts[h];
    if (m.cpus_host < 0 || host.cpus > c_.hosts[m.cpus_host].cpus) m.cpus_host = h;
    if (m.memory_host < 0 || (c_.hosts[m.memory_host].memory != 0 && (host.memory == 0 || host.memory > c_.hosts[m.memory_host].memory)))
      m.memory_host = h;
    int fitting = static_cast<int>(std::count_if(host.gpus.begin(), host.gpus.end(), [&](const gpu& d) {
      return d.memory == 0 || d.memory >= gpu_memory;
    }));
    if (fitting > m.gpus) {
      m.gpus = fitting;
      m.gpus_host = h;
    }
  };
  if (list < 0)
    for (std::size_t h = 0; h < c_.hosts.size(); ++h) visit(static_cast<int>(h));
  else
    for (int h : lists_[list].hosts) visit(h);
  return m;
}

void planner::check_node(int n) {
  const auto& node = g_.nodes[n];
  auto& f = facts_[n];
  auto fail = [&](const graph::location& where, std::string message, std::string hint = {}) {
    diags_.error(where, std::move(message), std::move(hint));
    f.failed = true;
  };
  const graph::location& place_at = node.field_where("placement");
  if (node.place.host && c_.find(*node.place.host) < 0)
    return fail(place_at, fmt::format("node `{}`: placement.host `{}` is not in the cluster", node.name, *node.place.host),
                graph::suggest(*node.place.host, c_.host_names()));
  if (f.candidates >= 0 && lists_[f.candidates].hosts.empty()) {
    if (node.place.host)
      return fail(place_at, fmt::format("node `{}`: placement.host `{}` does not have the labels {}", node.name,
                                        *node.place.host, labels_text(node.place.labels)),
                  fmt::format("`{}` has labels: {}", *node.place.host,
                              labels_text(c_.hosts[c_.find(*node.place.host)].labels)));
    std::set<std::string> known;
    for (const auto& h : c_.hosts)
      for (const auto& l : h.labels) known.insert(l.first + "=" + l.second);
    return fail(place_at, fmt::format("node `{}`: no host has the labels {}", node.name, labels_text(node.place.labels)),
                known.empty() ? "no host in the cluster has labels"
                              : fmt::format("labels in the cluster: {}", fmt::join(known, ", ")));
  }
  const auto& need = f.need;
  const auto& m = maxima(f.candidates, need.gpu_memory);
  std::string among = f.candidates < 0 ? "a host" : "a host matching its placement";
  const graph::location& res_at = node.field_where("resources");
  if (m.cpus_host >= 0 && need.cpus > c_.hosts[m.cpus_host].cpus + 1e-9)
    return fail(res_at, fmt::format("node `{}` needs {:g} cpus; the most {} offers is {:g} (`{}`)", node.name, need.cpus,
                                    among, c_.hosts[m.cpus_host].cpus, c_.hosts[m.cpus_host].name));
  if (m.memory_host >= 0 && c_.hosts[m.memory_host].memory != 0 && need.memory > c_.hosts[m.memory_host].memory)
    return fail(res_at, fmt::format("node `{}` needs {} of memory; the most {} offers is {} (`{}`)", node.name,
                                    size_text(need.memory), among, size_text(c_.hosts[m.memory_host].memory),
                                    c_.hosts[m.memory_host].name));
  if (need.gpus > m.gpus) {
    std::string what = fmt::format("{} GPU{}{}", need.gpus, need.gpus > 1 ? "s" : "",
                                   need.gpu_memory ? fmt::format(" with {}{}", size_text(need.gpu_memory),
                                                                 need.gpus > 1 ? " each" : "")
                                                   : "");
    std::string best = m.gpus == 0 ? fmt::format("no {} has one", among.substr(2))
                                   : fmt::format("no {} has more than {} ({}: {})", among.substr(2), m.gpus,
                                                 c_.hosts[m.gpus_host].name, gpu_text(m.gpus_host, need.gpu_memory));
    if (need.cpu_fallback) {
      f.gpu_fallback = true;
      f.fallback_why = fmt::format("CPU fallback: needs {}, {}", what, best);
      return;
    }
    return fail(res_at, fmt::format("node `{}` needs {}; {}", node.name, what, best),
                "its kind has no CPU path; add hosts with such GPUs or lower `resources.gpus`/`gpu_memory`");
  }
}

void planner::check_spread_groups() {
  for (std::size_t s = 0; s < spread_names_.size(); ++s) {
    std::vector<int> members;
    int instances = 0;
    bool every_host = false;
    std::vector<char> hosts(c_.hosts.size(), 0);
    for (std::size_t n = 0; n < g_.nodes.size(); ++n) {
      if (facts_[n].spread != static_cast<int>(s)) continue;
      members.push_back(static_cast<int>(n));
      instances += g_.nodes[n].replicas;
      if (facts_[n].candidates < 0) every_host = true;
      else if (!every_host)
        for (int h : lists_[facts_[n].candidates].hosts) hosts[h] = 1;
    }
    int can_take = every_host ? static_cast<int>(c_.hosts.size())
                              : static_cast<int>(std::count(hosts.begin(), hosts.end(), 1));
    if (instances <= can_take) continue;
    std::vector<std::string> parts;
    for (int n : members) parts.push_back(fmt::format("`{}` x{}", g_.nodes[n].name, g_.nodes[n].replicas));
    const auto& first = g_.nodes[members.front()];
    diags_.error(first.field_where("spread"),
                 fmt::format("spread group `{}` has {} instances but only {} host{} can take them", spread_names_[s],
                             instances, can_take, can_take == 1 ? "" : "s"),
                 fmt::format("instances of a spread group never share a host: {}; lower `replicas` or add hosts",
                             fmt::join(parts, ", ")));
    for (int n : members) facts_[n].failed = true;
  }
}

// Topological order of the data edges, first-written first; a node comes after the nodes it colocates with.
std::vector<int> planner::order() const {
  std::size_t count = g_.nodes.size();
  std::vector<std::vector<int>> next(count);
  std::vector<int> waiting(count, 0);
  for (const auto& [from, to] : edge_ends_) {
    if (from < 0) continue;
    next[from].push_back(to);
    ++waiting[to];
  }
  for (std::size_t n = 0; n < count; ++n)
    for (int t : facts_[n].colocate) {
      next[t].push_back(static_cast<int>(n));
      ++waiting[n];
    }
  std::priority_queue<int, std::vector<int>, std::greater<>> ready;
  std::set<int> left;
  for (std::size_t n = 0; n < count; ++n) {
    left.insert(static_cast<int>(n));
    if (waiting[n] == 0) ready.push(static_cast<int>(n));
  }
  std::vector<int> out;
  std::vector<char> done(count, 0);
  auto take = [&](int n) {
    done[n] = 1;
    left.erase(n);
    out.push_back(n);
    for (int m : next[n])
      if (--waiting[m] == 0 && !done[m]) ready.push(m);
  };
  while (!left.empty()) {
    if (!ready.empty()) {
      int n = ready.top();
      ready.pop();
      if (!done[n]) take(n);
      continue;
    }
    // A cycle of colocate against the data edges: take the first node whose colocate targets are placed.
    int pick = *left.begin();
    for (int n : left)
      if (std::all_of(facts_[n].colocate.begin(), facts_[n].colocate.end(), [&](int t) { return done[t] != 0; })) {
        pick = n;
        break;
      }
    take(pick);
  }
  return out;
}

void planner::check_colocation() {
  for (std::size_t n = 0; n < g_.nodes.size(); ++n) {
    if (facts_[n].failed) continue;
    for (int t : facts_[n].colocate) {
      if (facts_[t].failed) continue;
      for (int i = 0; i < g_.nodes[n].replicas; ++i) {
        int mine = plan_.at(static_cast<int>(n), i).host, theirs = plan_.at(t, i % g_.nodes[t].replicas).host;
        if (mine < 0 || theirs < 0 || mine == theirs) continue;
        diags_.error(g_.nodes[n].field_where("colocate"),
                     fmt::format("node `{}` instance {} is on `{}` but must share a host with `{}` instance {} (on `{}`)",
                                 g_.nodes[n].name, i, c_.hosts[mine].name, g_.nodes[t].name, i % g_.nodes[t].replicas,
                                 c_.hosts[theirs].name),
                     "the nodes colocate with each other in a cycle; name the partner in one node's `colocate` only");
        facts_[n].failed = true;
        break;
      }
    }
  }
}

void planner::make_links() {
  for (std::size_t e = 0; e < edge_ends_.size(); ++e) {
    auto [u, v] = edge_ends_[e];
    if (u < 0) continue;
    for (int a = 0; a < g_.nodes[u].replicas; ++a)
      for (int b = 0; b < g_.nodes[v].replicas; ++b) {
        int from = plan_.first_instance[u] + a, to = plan_.first_instance[v] + b;
        const auto& x = plan_.instances[from];
        const auto& y = plan_.instances[to];
        bool local = x.host >= 0 && x.host == y.host;
        plan_.links.push_back({static_cast<int>(e), from, to, local, local && x.device >= 0 && x.device == y.device});
        if (!local) ++plan_.remote_links;
      }
  }
}

plan make_plan(const graph::graph& g, const graph::kind_catalog& catalog, const cluster& c, graph::diagnostics& diags) {
  planner p(g, catalog, c, diags);
  return p.run();
}

plan planner::replace(const plan& current, const std::vector<char>& lost, const std::vector<int>& moving) {
  lost_ = lost;  // before the facts: a pin to a lost host no longer narrows the candidates
  lost_.resize(c_.hosts.size(), 0);
  index_nodes();
  std::vector<char> moves(current.instances.size(), 0);
  for (int k : moving) moves[k] = 1;
  for (std::size_t k = 0; k < current.instances.size() && k < plan_.instances.size(); ++k) {
    const auto& was = current.instances[k];
    if (moves[k] || was.host < 0 || lost_[was.host]) continue;
    commit(was.node, was.instance, choice{was.host, was.gpus, was.reason});
  }
  for (int k : moving) {
    const auto& was = current.instances[k];
    const auto& f = facts_[was.node];
    if (f.failed) continue;
    // A spread group is a wish about where instances start; in recovery it yields rather than fail the
    // run, when every surviving host that could take the instance holds another of its group. A strict
    // group (`spread: {group: G, strict: true}`) does not: the instance fits nowhere, as at the start.
    choice probe;
    bool want_gpu = f.need.gpus > 0 && !f.gpu_fallback, may_cpu = f.need.gpus == 0 || f.need.cpu_fallback;
    bool fits = (want_gpu && pick(was.node, was.instance, true, probe)) ||
                (may_cpu && pick(was.node, was.instance, false, probe));
    if (f.spread < 0 || fits || g_.nodes[static_cast<std::size_t>(was.node)].spread_strict) {
      place(was.node, was.instance);
      continue;
    }
    spread_yields_ = true;
    place(was.node, was.instance);
    spread_yields_ = false;
    if (auto& now = plan_.instances[static_cast<std::size_t>(k)]; now.host >= 0)
      now.reason += fmt::format("; spread group `{}` now shares host `{}` (every surviving host holds one of it)",
                                spread_names_[f.spread], c_.hosts[static_cast<std::size_t>(now.host)].name);
  }
  make_links();
  plan_.instances_per_host = count_;
  return std::move(plan_);
}

plan replace_lost(const graph::graph& g, const graph::kind_catalog& catalog, const cluster& c, const plan& current,
                  const std::vector<char>& lost, const std::vector<int>& moving, graph::diagnostics& diags) {
  planner p(g, catalog, c, diags);
  return p.replace(current, lost, moving);
}

}  // namespace loom::placement
