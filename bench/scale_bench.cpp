// bench/scale_bench.cpp: `build/bin/loom_scale_bench` prints markdown for two cases of the executor at
// scale, both against their own ideal measured in the same process:
//   replicas   N replicas of a blocking node that takes 1 ms per value (the work is waiting, not CPU),
//              N = 1, 2, 4, 8, 32; then the same with one replica 100x slower. Ideal: N x one replica.
//   start-up   a wide graph (source -> forward x (W-2) replicas -> sink) of W = 1,000 .. 10,000
//              instances: expand, spawn, wire, start, run to the end; peak memory per instance.
#include <CLI/CLI.hpp>
#include <caf/all.hpp>
#include <fmt/format.h>

#include <chrono>
#include <cstdio>
#include <thread>

#include "loom/actors/builtins.hpp"
#include "bench/run_graph.hpp"
#include "loom/graph/builder.hpp"
#include "loom/graph/validate.hpp"
#include "loom/runtime/local/executor.hpp"

using namespace loom;
using clock_type = std::chrono::steady_clock;

namespace {

// Forwards after sleeping 1 ms (instance 0: `slow_ms`).
class waiter final : public node {
 public:
  explicit waiter(const node_init& i)
      : ms_(i.instance == 0 ? i.params.get_int("slow_ms") : i.params.get_int("ms")) {}
  void on_message(context& ctx, std::size_t, const value& v) override {
    std::this_thread::sleep_for(std::chrono::milliseconds(ms_));
    ctx.emit(v);
  }

 private:
  std::int64_t ms_;
};

void add_kinds(registry& kinds) {
  actors::register_builtins(kinds);
  using graph::param_spec;
  graph::kind_spec w{"bench.wait", "Sleeps per value.", {{"in", "v"}}, {{"out", "v"}},
                     {param_spec::integer("ms", "").def(1), param_spec::integer("slow_ms", "").def(1)}, {}, {}};
  w.blocking = true;
  kinds.add({w, [](const node_init& i) { return std::make_unique<waiter>(i); }});
}

double replica_rate(caf::actor_system& sys, const registry& kinds, int n, std::int64_t values, int slow_ms) {
  graph::builder b("replicas");
  b.node("src", "source.sequence").param("count", values);
  b.node("work", "bench.wait").param("ms", 1).param("slow_ms", slow_ms).replicas(n);
  b.node("sink", "sink.count").param("expect", values);
  b.edge("src", "work", 2);
  b.edge("work", "sink");
  auto t0 = clock_type::now();
  bench::run_ok(sys, kinds, b.build());
  return static_cast<double>(values) / std::chrono::duration<double>(clock_type::now() - t0).count();
}

struct startup {
  double seconds = 0;
  long rss_kib = 0;
};

long vm_hwm_kib() {
  std::FILE* f = std::fopen("/proc/self/status", "r");
  if (!f) return 0;
  char line[256];
  long kib = 0;
  while (std::fgets(line, sizeof line, f))
    if (std::sscanf(line, "VmHWM: %ld kB", &kib) == 1) break;
  std::fclose(f);
  return kib;
}

startup wide(caf::actor_system& sys, const registry& kinds, int width) {
  graph::builder b("wide");
  b.node("src", "source.sequence").param("count", width);
  b.node("fwd", "flow.forward").replicas(width - 2);
  b.node("sink", "sink.count").param("expect", width);
  b.chain({"src", "fwd", "sink"});
  auto t0 = clock_type::now();
  bench::run_ok(sys, kinds, b.build());
  return {std::chrono::duration<double>(clock_type::now() - t0).count(), vm_hwm_kib()};
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"loom scale benchmarks: replicas of a waiting node, and start-up of a wide graph"};
  int per_replica = 400;
  app.add_option("--values-per-replica", per_replica, "Values per replica in the replica case");
  CLI11_PARSE(app, argc, argv);

  registry kinds;
  add_kinds(kinds);
  caf::actor_system_config cfg;
  cfg.set("scheduler.max-threads", 2);
  caf::actor_system sys{cfg};

  std::printf("## Replicas of a blocking node (1 ms per value)\n\n");
  std::printf("`build/bin/loom_scale_bench`: source -> N replicas (edge capacity 2) -> sink; %d values per "
              "replica. Ideal: N x the rate of one replica, measured in the same run.\n\n",
              per_replica);
  std::printf("| N | values/s | vs N x one | one replica 100x slower: values/s | vs (N-1) x one |\n|---:|---:|---:|---:|---:|\n");
  double one = 0;
  for (int n : {1, 2, 4, 8, 32}) {
    auto values = static_cast<std::int64_t>(per_replica) * n;
    double rate = replica_rate(sys, kinds, n, values, 1);
    if (n == 1) one = rate;
    std::string slow = "-", slow_ratio = "-";
    if (n > 1) {
      double s = replica_rate(sys, kinds, n, values, 100);
      slow = fmt::format("{:.0f}", s);
      slow_ratio = fmt::format("{:.2f}", s / ((n - 1) * one));
    }
    std::printf("| %d | %.0f | %.2f | %s | %s |\n", n, rate, rate / (n * one), slow.c_str(), slow_ratio.c_str());
    std::fflush(stdout);
  }

  std::printf("\n## Start-up of a wide graph\n\n");
  std::printf("source -> forward x (W-2) replicas -> sink, W instances, W values: expand, spawn, wire, start and "
              "run to the end. Peak RSS is the process's (it only grows: read the differences).\n\n");
  std::printf("| instances | seconds | peak RSS | KiB per instance (vs previous row) |\n|---:|---:|---:|---:|\n");
  long last_rss = vm_hwm_kib();
  int last_w = 0;
  for (int w : {1000, 2500, 5000, 10000}) {
    auto s = wide(sys, kinds, w);
    double per = w > last_w ? static_cast<double>(s.rss_kib - last_rss) / (w - last_w) : 0;
    std::printf("| %d | %.3f | %ld KiB | %.1f |\n", w, s.seconds, s.rss_kib, per);
    std::fflush(stdout);
    last_rss = s.rss_kib;
    last_w = w;
  }
  return 0;
}
