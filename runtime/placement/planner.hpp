// runtime/placement/planner.hpp: the plan of a graph on a cluster: every node instance on a host and a
// device, every link between instances local (same host) or remote. make_plan() is deterministic and
// names the node and the constraint when no plan exists; explain() prints the plan and why.
// The rules are in docs/placement.md.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "loom/graph/diagnostics.hpp"
#include "loom/graph/graph.hpp"
#include "loom/graph/kind_spec.hpp"
#include "loom/runtime/placement/cluster.hpp"

namespace loom::placement {

// What one instance of a node asks for: node.res when the node has `resources`, else its kind's.
struct needs {
  double cpus = 0;
  std::uint64_t memory = 0;
  int gpus = 0;
  std::uint64_t gpu_memory = 0;  // per GPU; 0: each GPU is taken whole
  bool cpu_fallback = true;      // with gpus > 0: may run on the CPU when no GPU fits
};
needs needs_of(const graph::node& n, const graph::kind_catalog& catalog);

struct placed_instance {
  int node = 0;            // index in graph.nodes
  int instance = 0;        // 0 .. replicas-1
  int host = -1;           // index in cluster.hosts; -1 only in a plan with errors
  int device = -1;         // -1: CPU, else the first of `gpus`
  std::vector<int> gpus;   // GPU indexes on the host, empty on the CPU
  std::string reason;      // why here: "pinned by placement.host", "near upstream `a`", "least loaded", ...
};

// One producer instance -> consumer instance pair of an edge: the runtime makes a link for each.
struct planned_link {
  int edge = 0;  // index in graph.edges
  int from = 0;  // index in plan.instances
  int to = 0;
  bool local = false;        // both on one host
  bool same_device = false;  // both on one GPU
};

struct plan {
  std::vector<placed_instance> instances;  // by node, then instance
  std::vector<int> first_instance;         // per node: its instance 0 in `instances`
  std::vector<planned_link> links;         // by edge, then producer, then consumer instance
  std::vector<int> instances_per_host;
  std::size_t remote_links = 0;

  const placed_instance& at(int node, int instance) const { return instances[first_instance[node] + instance]; }
};

// Plans `g` (validated, defaults applied) on `c`. Every constraint that cannot hold is an error in `diags`
// naming the node; the plan is complete only when no error was added.
plan make_plan(const graph::graph& g, const graph::kind_catalog& catalog, const cluster& c, graph::diagnostics& diags);

// Where instances go when hosts are lost mid-run: each of `moving` (indexes into current.instances) is
// placed by the same rules (placement, resources, spread, affinity to its neighbours) on a host not marked
// in `lost`, with every other instance of a surviving host kept where it is and counted. A spread group
// yields here (an instance may share a host with its group when no surviving host is free of it; its reason
// says so) unless its node's spread is strict. An instance that fits nowhere is an error in `diags` naming
// it; its host stays -1.
plan replace_lost(const graph::graph& g, const graph::kind_catalog& catalog, const cluster& c, const plan& current,
                  const std::vector<char>& lost, const std::vector<int>& moving, graph::diagnostics& diags);

// A readable table: node[instance] -> host / device and why; the links, local or remote; per-host totals.
std::string explain(const plan& p, const graph::graph& g, const cluster& c);

}  // namespace loom::placement
