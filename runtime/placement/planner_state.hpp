// runtime/placement/planner_state.hpp (private): the planner's working state: per-node facts computed once
// (needs, candidate hosts, spread group, colocate targets) and per-host load kept in flat arrays, so that
// placing an instance costs about its edges plus the hosts it has to skip, never nodes x hosts x edges.
#pragma once

#include <map>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "loom/runtime/placement/planner.hpp"

namespace loom::placement {

// "k=v, k2=v2": a node's placement.labels in a message.
std::string labels_text(const std::vector<std::pair<std::string, std::string>>& labels);

struct neighbour {
  int node = 0;
  double weight = 0;  // the edge's capacity: the traffic proxy
  bool upstream = false;
};

struct node_facts {
  needs need;
  int candidates = -1;  // index in planner::lists_; -1: every host
  int spread = -1;      // spread group, or -1
  std::vector<int> colocate;
  std::vector<neighbour> neighbours;  // over edges in either direction
  bool gpu_fallback = false;  // no host could ever give it its GPUs: every instance runs on the CPU
  std::string fallback_why;
  bool failed = false;        // an error was reported; its instances are not placed
};

// A set of hosts: in order, and as a bitmap for membership.
struct host_list {
  std::vector<int> hosts;
  std::vector<char> has;
};

// The most a set of hosts offers one instance: the host with the most cpus, the most memory, and the most
// GPUs of a given memory.
struct list_maxima {
  int cpus_host = -1;
  int memory_host = -1;
  int gpus = 0;
  int gpus_host = -1;
};

// A host and why it was chosen.
struct choice {
  int host = -1;
  std::vector<int> gpus;
  std::string reason;
};

class planner {
 public:
  planner(const graph::graph& g, const graph::kind_catalog& catalog, const cluster& c, graph::diagnostics& diags);
  plan run();
  plan replace(const plan& current, const std::vector<char>& lost, const std::vector<int>& moving);

 private:
  // planner.cpp: facts, order, static checks, links.
  void index_nodes();
  int candidate_list(const graph::node& n);
  const std::string* pin_of(const graph::node& n) const;  // its placement.host, unless that host is lost
  const list_maxima& maxima(int list, std::uint64_t gpu_memory);
  void check_node(int n);
  void check_spread_groups();
  std::vector<int> order() const;
  void make_links();
  void check_colocation();

  // place.cpp: one instance at a time.
  void place(int n, int i);
  bool forced_host(int n, int i, int& host, std::string& reason);
  bool try_host(int n, int h, bool with_gpus, int preferred_device, std::vector<int>& gpus) const;
  bool allowed(int n, int h) const;
  bool pick(int n, int i, bool with_gpus, choice& out);
  void commit(int n, int i, const choice& ch);
  std::string why_not(int n, int i, int only) const;
  std::string gpu_text(int h, std::uint64_t at_least) const;
  int preferred_device(int n, int h) const;

  double load(int h) const { return cpus_used_[h] / c_.hosts[h].cpus; }
  std::tuple<double, int, int> key(int h) const { return {load(h), count_[h], h}; }

  const graph::graph& g_;
  const graph::kind_catalog& catalog_;
  const cluster& c_;
  graph::diagnostics& diags_;
  plan plan_;

  std::vector<node_facts> facts_;
  std::vector<host_list> lists_;
  std::map<std::string, int> list_ids_;  // "host|labels" -> index in lists_
  std::map<std::pair<std::string, std::string>, std::vector<int>> label_index_;  // label -> hosts, in order
  std::map<std::pair<int, std::uint64_t>, list_maxima> maxima_;
  std::vector<std::string> spread_names_;
  std::vector<std::vector<char>> spread_used_;  // per group, per host
  std::vector<std::pair<int, int>> edge_ends_;  // per edge: (from node, to node)

  std::vector<double> cpus_used_;
  std::vector<std::uint64_t> memory_used_;
  std::vector<int> count_;
  std::vector<int> gpu_first_;  // host h's GPUs are gpu_*_[gpu_first_[h] .. gpu_first_[h + 1])
  std::vector<std::uint64_t> gpu_memory_used_;
  std::vector<int> gpu_users_;
  std::vector<char> gpu_whole_;  // given whole to one instance
  std::set<std::tuple<double, int, int>> by_load_;  // (cpu load, instances, host): every host
  std::vector<char> lost_;  // replace(): hosts that take nothing
  // replace(): a moving instance whose spread group leaves it no host may share one (recovery keeps the run
  // going; the plan's reason and the run's summary say so).
  bool spread_yields_ = false;
};

}  // namespace loom::placement
