// bench/state_bench.cpp: what consistent snapshots cost a running graph (issue 23; docs/durability.md),
// in one process, the snapshots kept in memory (the disk is bench/state_bench.sh's part):
//   1. the 4-stage pipeline (20 M ints) with no snapshots, one every second (loom run --state's default)
//      and one every 100 ms, interleaved, --repeat times each: the run's seconds and the ratio to none;
//   2. a graph of 1,000 nodes (10 chains: source.sequence -> 98 flow.forward -> sink.count) with a snapshot
//      every 50 ms: how long a snapshot takes from its first message to its last part (nothing waits for
//      it), the longest any node's actor spent taking its part (the only pause a snapshot makes, and only
//      to that node), and the run's seconds against the same graph without snapshots.
// Prints markdown. `build/bin/loom_state_bench [--messages N] [--repeat R]`.
#include <CLI/CLI.hpp>
#include <caf/all.hpp>
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <mutex>
#include <vector>

#include "bench/run_graph.hpp"
#include "loom/actors/builtins.hpp"
#include "loom/runtime/local/snapshot.hpp"

using namespace loom;

namespace {

struct kept {
  std::mutex m;
  std::vector<std::uint64_t> took_ns;   // per snapshot
  std::uint64_t max_take_ns = 0;        // over every part of every snapshot
  std::size_t parts = 0;
  std::size_t values = 0;               // recorded in flight and unsent, over all snapshots
};

local::run_options with_snapshots(std::chrono::milliseconds every, kept& k) {
  local::run_options o;
  if (every.count() == 0) return o;
  o.snapshot_every = every;
  o.on_snapshot = [&k](std::shared_ptr<const local::snapshot> s) {
    std::lock_guard lock(k.m);
    k.took_ns.push_back(s->took_ns);
    for (const auto& p : s->parts) {
      if (!p) continue;
      ++k.parts;
      k.max_take_ns = std::max(k.max_take_ns, p->take_ns);
      for (const auto& r : p->inputs) k.values += r.values.size();
      for (const auto& u : p->outputs) k.values += u.values.size();
    }
  };
  return o;
}

graph::graph chains(int chains, int forwards, std::int64_t n) {
  graph::builder b("bench-wide");
  for (int c = 0; c < chains; ++c) {
    std::vector<std::string> names{fmt::format("src{}", c)};
    b.node(names[0], "source.sequence").param("count", n);
    for (int f = 0; f < forwards; ++f) {
      names.push_back(fmt::format("f{}_{}", c, f));
      b.node(names.back(), "flow.forward");
    }
    names.push_back(fmt::format("sink{}", c));
    b.node(names.back(), "sink.count").param("expect", n);
    for (std::size_t k = 0; k + 1 < names.size(); ++k) b.edge(names[k], names[k + 1]);
  }
  return b.build();
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"loom state bench: what consistent snapshots cost a running graph"};
  std::int64_t messages = 20'000'000;
  int repeat = 5;
  app.add_option("--messages", messages, "Ints through the 4-stage pipeline");
  app.add_option("--repeat", repeat, "Runs of each case (medians reported)");
  CLI11_PARSE(app, argc, argv);

  registry kinds;
  actors::register_builtins(kinds);
  caf::actor_system_config cfg;
  caf::actor_system sys{cfg};

  using ms = std::chrono::milliseconds;
  std::printf("### The 4-stage pipeline, %lld ints, snapshots kept in memory (medians of %d, interleaved)\n\n",
              static_cast<long long>(messages), repeat);
  std::printf("| snapshots | run | values/s | / none | snapshots taken | median snapshot | longest part |\n|---|---:|---:|---:|---:|---:|---:|\n");
  std::vector<ms> intervals{ms(0), ms(1000), ms(100)};
  std::vector<std::vector<double>> secs(intervals.size());
  std::vector<kept> ks(intervals.size());
  for (int r = 0; r < repeat; ++r)
    for (std::size_t i = 0; i < intervals.size(); ++i) {
      auto rep = bench::run_ok(sys, kinds, bench::pipeline_graph(messages), with_snapshots(intervals[i], ks[i]));
      secs[i].push_back(rep.seconds);
    }
  for (std::size_t i = 0; i < intervals.size(); ++i) {
    std::vector<double> took;
    for (auto t : ks[i].took_ns) took.push_back(static_cast<double>(t) / 1e6);
    std::printf("| %s | %.3f s | %.1f M | %.2f | %zu | %s | %s |\n",
                intervals[i].count() ? fmt::format("every {} ms", intervals[i].count()).c_str() : "none",
                median(secs[i]), static_cast<double>(messages) / median(secs[i]) / 1e6, median(secs[0]) / median(secs[i]),
                ks[i].took_ns.size(), took.empty() ? "-" : fmt::format("{:.2f} ms", median(took)).c_str(),
                took.empty() ? "-" : fmt::format("{:.3f} ms", static_cast<double>(ks[i].max_take_ns) / 1e6).c_str());
  }

  const int n_chains = 10, forwards = 98;
  const std::int64_t per_chain = 200'000;
  std::printf("\n### 1,000 nodes (%d chains of a source, %d flow.forward and a sink; %lld ints each), a snapshot every 50 ms (medians of %d)\n\n",
              n_chains, forwards, static_cast<long long>(per_chain), repeat);
  kept none, every;
  std::vector<double> s_none, s_every;
  for (int r = 0; r < repeat; ++r) {
    s_none.push_back(bench::run_ok(sys, kinds, chains(n_chains, forwards, per_chain), with_snapshots(ms(0), none)).seconds);
    s_every.push_back(bench::run_ok(sys, kinds, chains(n_chains, forwards, per_chain), with_snapshots(ms(50), every)).seconds);
  }
  std::vector<double> took;
  for (auto t : every.took_ns) took.push_back(static_cast<double>(t) / 1e6);
  std::sort(took.begin(), took.end());
  std::printf("| run without | run with | / without | snapshots | parts | values kept | snapshot median | p90 | slowest | longest part (any node's pause) |\n");
  std::printf("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
  std::printf("| %.3f s | %.3f s | %.2f | %zu | %zu | %zu | %.2f ms | %.2f ms | %.2f ms | %.3f ms |\n", median(s_none),
              median(s_every), median(s_none) / median(s_every), every.took_ns.size(), every.parts, every.values,
              took.empty() ? 0.0 : took[took.size() / 2], took.empty() ? 0.0 : took[took.size() * 9 / 10],
              took.empty() ? 0.0 : took.back(), static_cast<double>(every.max_take_ns) / 1e6);
  return 0;
}
