// bench/pipeline_bench.cpp: the 4-stage pipeline through loom (built-in kinds, the real executor), and the
// timestamped variant for hop latency.
#include <algorithm>
#include <chrono>

#include "loom/actors/builtins.hpp"
#include "bench/bench.hpp"
#include "bench/run_graph.hpp"
#include "loom/graph/builder.hpp"
#include "loom/graph/validate.hpp"
#include "loom/runtime/local/executor.hpp"

namespace loom::bench {
namespace {

using clock = std::chrono::steady_clock;

std::int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(clock::now().time_since_epoch()).count();
}

// Emits the time, one value every interval_us.
class stamp final : public node {
 public:
  explicit stamp(const node_init& i)
      : left_(i.params.get_int("count")), interval_(std::chrono::microseconds(i.params.get_int("interval_us"))) {}
  bool on_pull(context& ctx) override {
    ctx.emit(value{now_ns()});
    ctx.pause_for(interval_);
    return --left_ > 0;
  }

 private:
  std::int64_t left_;
  std::chrono::nanoseconds interval_;
};

class record final : public node {
 public:
  explicit record(std::shared_ptr<std::vector<std::int64_t>> out) : out_(std::move(out)) {}
  void on_message(context&, std::size_t, const value& v) override { out_->push_back(now_ns() - v.as_int()); }

 private:
  std::shared_ptr<std::vector<std::int64_t>> out_;
};

}  // namespace

latency summarize(std::vector<std::int64_t> ns, int hops) {
  latency l;
  if (ns.empty()) return l;
  std::sort(ns.begin(), ns.end());
  auto at = [&](double q) {
    auto i = static_cast<std::size_t>(q * static_cast<double>(ns.size() - 1));
    return static_cast<double>(ns[i]) / 1000.0 / hops;
  };
  l.p50_us = at(0.50);
  l.p99_us = at(0.99);
  l.max_us = static_cast<double>(ns.back()) / 1000.0 / hops;
  l.samples = ns.size();
  return l;
}

throughput loom_pipeline_throughput(caf::actor_system& sys, std::int64_t n) {
  registry kinds;
  actors::register_builtins(kinds);
  auto g = pipeline_graph(n);
  auto t0 = clock::now();
  run_ok(sys, kinds, std::move(g));
  return {static_cast<std::uint64_t>(n), std::chrono::duration<double>(clock::now() - t0).count()};
}

latency loom_pipeline_latency(caf::actor_system& sys, std::int64_t n, int interval_us) {
  auto samples = std::make_shared<std::vector<std::int64_t>>();
  samples->reserve(static_cast<std::size_t>(n));
  registry kinds;
  actors::register_builtins(kinds);
  using graph::param_spec;
  kinds.add({{"bench.stamp", "Emits the time every interval.", {}, {{"out", "ns"}},
              {param_spec::integer("count", "values").def(1000), param_spec::integer("interval_us", "gap").def(100)},
              {}, {}},
             [](const node_init& i) { return std::make_unique<stamp>(i); }});
  kinds.add({{"bench.record", "Records latencies.", {{"in", "ns"}}, {}, {}, {}, {}},
             [samples](const node_init&) { return std::make_unique<record>(samples); }});
  graph::builder b("bench-latency");
  b.node("src", "bench.stamp").param("count", n).param("interval_us", interval_us);
  b.node("a", "flow.forward");
  b.node("b", "flow.forward");
  b.node("sink", "bench.record");
  b.chain({"src", "a", "b", "sink"});
  run_ok(sys, kinds, b.build());
  return summarize(*samples, 3);
}

}  // namespace loom::bench
