// tests/placement/plan_support.hpp: a small kind catalog (the built-ins the example configs use, plus GPU
// kinds) and one-call helpers that load a graph and a cluster from text and plan them.
#pragma once

#include <string>
#include <vector>

#include "loom/graph/load.hpp"
#include "loom/graph/validate.hpp"
#include "loom/runtime/placement/cluster.hpp"
#include "loom/runtime/placement/planner.hpp"

namespace loom::placement::testing {

inline graph::kind_spec kind(std::string name, bool has_input, bool has_output) {
  graph::kind_spec k;
  k.name = std::move(name);
  k.doc = "test kind";
  if (has_input) k.inputs.push_back({"in", ""});
  if (has_output) k.outputs.push_back({"out", ""});
  return k;
}

class catalog : public graph::kind_catalog {
 public:
  catalog() {
    auto seq = kind("source.sequence", false, true);
    seq.params.push_back(graph::param_spec::integer("count", "how many").def(10));
    kinds_.push_back(seq);
    kinds_.push_back(kind("flow.forward", true, true));
    auto count = kind("sink.count", true, false);
    count.params.push_back(graph::param_spec::integer("expect", "how many"));
    kinds_.push_back(count);
    auto gpu = kind("test.gpu", true, true);  // one GPU, with a CPU path
    gpu.resources.cpus = 1;
    gpu.resources.gpus = 1;
    kinds_.push_back(gpu);
    auto gpu_only = kind("test.gpu_only", true, true);  // one GPU, no CPU path
    gpu_only.resources.gpus = 1;
    gpu_only.resources.cpu_fallback = false;
    kinds_.push_back(gpu_only);
    auto worker = kind("test.worker", true, true);  // one cpu
    worker.resources.cpus = 1;
    kinds_.push_back(worker);
  }
  const graph::kind_spec* find_kind(std::string_view name) const override {
    for (const auto& k : kinds_)
      if (k.name == name) return &k;
    return nullptr;
  }
  std::vector<std::string> kind_names() const override {
    std::vector<std::string> names;
    for (const auto& k : kinds_) names.push_back(k.name);
    return names;
  }

 private:
  std::vector<graph::kind_spec> kinds_;
};

struct planned {
  graph::graph g;
  cluster c;
  plan p;
  std::string errors;  // every diagnostic, as printed
  bool ok = false;

  // "host" or "host/gpuN" of instance i of node `name`.
  std::string where(const std::string& name, int i = 0) const {
    for (std::size_t n = 0; n < g.nodes.size(); ++n) {
      if (g.nodes[n].name != name) continue;
      const auto& x = p.at(static_cast<int>(n), i);
      if (x.host < 0) return "-";
      return x.device < 0 ? c.hosts[x.host].name : c.hosts[x.host].name + "/gpu" + std::to_string(x.device);
    }
    return "?";
  }
  const placed_instance& at(const std::string& name, int i = 0) const {
    for (std::size_t n = 0; n < g.nodes.size(); ++n)
      if (g.nodes[n].name == name) return p.at(static_cast<int>(n), i);
    throw std::runtime_error("no node " + name);
  }
};

// Loads both texts (files g.yaml and c.yaml), validates the graph, plans. Load errors fail the test.
inline planned plan_text(const std::string& graph_yaml, const std::string& cluster_yaml) {
  planned out;
  graph::diagnostics diags;
  catalog kinds;
  auto g = graph::load_graph_text(graph_yaml, "g.yaml", diags);
  if (g) graph::validate(*g, kinds, diags);
  auto c = load_cluster_text(cluster_yaml, "c.yaml", diags);
  if (!g || !c || diags.has_errors()) {
    out.errors = "LOAD: " + diags.str();
    return out;
  }
  graph::apply_defaults(*g, kinds);
  out.g = std::move(*g);
  out.c = std::move(*c);
  out.p = make_plan(out.g, kinds, out.c, diags);
  out.errors = diags.str();
  out.ok = !diags.has_errors();
  return out;
}

// A cluster of `n` hosts h0.. with `cpus` each, on ports 7101...
inline std::string hosts_yaml(int n, double cpus, const std::string& extra = "") {
  std::string out = "hosts:\n";
  for (int i = 0; i < n; ++i)
    out += "  - {name: h" + std::to_string(i) + ", address: tcp://127.0.0.1:" + std::to_string(7101 + i) +
           ", cpus: " + std::to_string(cpus) + extra + "}\n";
  return out;
}

}  // namespace loom::placement::testing
