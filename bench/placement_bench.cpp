// bench/placement_bench.cpp: plans a generated graph of 10,000 nodes (chains with fan-outs; some nodes need
// GPUs, some want labels, some are spread) on 1,000 hosts, and prints the median planning time and the
// fraction of links that cross hosts, as markdown. Prints only; bench/RESULTS.md is written by hand.
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "loom/runtime/placement/planner.hpp"

namespace {

using namespace loom;

class bench_catalog : public graph::kind_catalog {
 public:
  bench_catalog() {
    for (const char* name : {"bench.source", "bench.op", "bench.sink"}) {
      graph::kind_spec k;
      k.name = name;
      kinds_.push_back(k);
    }
  }
  const graph::kind_spec* find_kind(std::string_view name) const override {
    for (const auto& k : kinds_)
      if (k.name == name) return &k;
    return nullptr;
  }
  std::vector<std::string> kind_names() const override { return {"bench.op", "bench.sink", "bench.source"}; }

 private:
  std::vector<graph::kind_spec> kinds_;
};

placement::cluster make_cluster(int hosts) {
  placement::cluster c;
  c.name = "bench";
  for (int h = 0; h < hosts; ++h) {
    placement::host x;
    x.name = fmt::format("h{}", h);
    x.address = fmt::format("tcp://10.{}.{}.{}:7101", h / 65536, h / 256 % 256, h % 256);
    x.cpus = 32;
    x.memory = 256ull << 30;
    if (h % 10 == 0) x.gpus.assign(8, placement::gpu{80ull << 30, "H100", {}});
    x.labels = {{"zone", fmt::format("z{}", h % 10)}, {"tier", h % 10 == 0 ? "gpu" : "cpu"}};
    c.hosts.push_back(std::move(x));
  }
  return c;
}

// Pipelines: a source, a chain of 4..12 ops with a fan-out of 2..4 ops in the middle, a sink.
graph::graph make_graph(int nodes, std::mt19937& rng) {
  graph::graph g;
  g.name = "bench";
  auto add = [&](const char* kind, std::string name) {
    graph::node n;
    n.name = std::move(name);
    n.kind = kind;
    n.res.cpus = 1;
    n.res.memory = 1ull << 30;
    g.nodes.push_back(std::move(n));
    return g.nodes.back().name;
  };
  auto edge = [&](const std::string& a, const std::string& b, std::int64_t capacity) {
    graph::edge e;
    e.from.node = a;
    e.to.node = b;
    e.capacity = capacity;
    g.edges.push_back(std::move(e));
  };
  int pipeline = 0;
  while (static_cast<int>(g.nodes.size()) < nodes) {
    std::string p = fmt::format("p{}_", pipeline++);
    std::string prev = add("bench.source", p + "src");
    int length = 4 + static_cast<int>(rng() % 9);
    for (int i = 0; i < length && static_cast<int>(g.nodes.size()) < nodes - 2; ++i) {
      std::string cur = add("bench.op", fmt::format("{}op{}", p, i));
      auto& n = g.nodes.back();
      unsigned roll = rng() % 100;
      if (roll < 8) {  // a GPU kernel
        n.res.gpus = 1;
        n.res.gpu_memory = (10 + rng() % 30) * (1ull << 30);
      } else if (roll < 12) {
        n.place.labels = {{"zone", fmt::format("z{}", rng() % 10)}};
      } else if (roll < 16) {
        n.replicas = 3;
        n.spread = p + "safety";
      }
      edge(prev, cur, 1 << (rng() % 10));
      if (i == length / 2) {  // fan out and back in
        int width = 2 + static_cast<int>(rng() % 3);
        std::string join = add("bench.op", fmt::format("{}join{}", p, i));
        for (int w = 0; w < width; ++w) {
          std::string branch = add("bench.op", fmt::format("{}b{}_{}", p, i, w));
          edge(cur, branch, 64);
          edge(branch, join, 64);
        }
        cur = join;
      }
      prev = cur;
    }
    edge(prev, add("bench.sink", p + "sink"), 256);
  }
  return g;
}

}  // namespace

int main() {
  constexpr int nodes = 10'000, hosts = 1'000, runs = 7;
  std::mt19937 rng(42);
  auto g = make_graph(nodes, rng);
  auto c = make_cluster(hosts);
  bench_catalog catalog;
  std::vector<double> ms;
  placement::plan p;
  for (int r = 0; r < runs; ++r) {
    graph::diagnostics diags;
    auto start = std::chrono::steady_clock::now();
    p = placement::make_plan(g, catalog, c, diags);
    ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count());
    if (diags.has_errors()) {
      std::fprintf(stderr, "%s", diags.str().c_str());
      return 1;
    }
  }
  std::sort(ms.begin(), ms.end());
  std::size_t on_gpu = std::count_if(p.instances.begin(), p.instances.end(), [](const auto& x) { return x.device >= 0; });
  std::printf("## Placement\n\n");
  std::printf("| nodes | instances | edges | links | hosts | GPU instances | plan time (median of %d) | remote links |\n",
              runs);
  std::printf("|---:|---:|---:|---:|---:|---:|---:|---:|\n");
  std::printf("| %zu | %zu | %zu | %zu | %d | %zu | %.1f ms | %.1f%% |\n", g.nodes.size(), p.instances.size(),
              g.edges.size(), p.links.size(), hosts, on_gpu, ms[ms.size() / 2],
              100.0 * static_cast<double>(p.remote_links) / static_cast<double>(p.links.size()));
  return 0;
}
