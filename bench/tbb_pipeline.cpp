// bench/tbb_pipeline.cpp: the peer a C++ developer would otherwise pick, oneTBB's flow graph (Debian's
// libtbb-dev): the same 4 stages, std::vector<int64_t> batches of 64 per message, each middle stage touching
// every value into a fresh batch (as the batched raw CAF baseline and loom's forward do). Serial stages with
// TBB's default queueing (no flow control, like the CAF baselines), on at most `threads` threads.
#include <oneapi/tbb/flow_graph.h>
#include <oneapi/tbb/global_control.h>

#include <chrono>

#include "bench/bench.hpp"

namespace loom::bench {

throughput tbb_batched_pipeline_throughput(std::int64_t n, unsigned threads) {
  namespace flow = oneapi::tbb::flow;
  using batch = std::vector<std::int64_t>;
  constexpr std::size_t per_message = 64;
  oneapi::tbb::global_control limit(oneapi::tbb::global_control::max_allowed_parallelism, threads);
  flow::graph g;
  std::int64_t next = 0, seen = 0;
  flow::input_node<batch> source(g, [&](oneapi::tbb::flow_control& fc) -> batch {
    if (next >= n) {
      fc.stop();
      return {};
    }
    batch out;
    out.reserve(per_message);
    for (std::size_t i = 0; i < per_message && next < n; ++i) out.push_back(next++);
    return out;
  });
  auto touch = [](const batch& in) {
    batch out;
    out.reserve(in.size());
    for (auto x : in) out.push_back(x);
    return out;
  };
  flow::function_node<batch, batch> a(g, flow::serial, touch), b(g, flow::serial, touch);
  flow::function_node<batch> sink(g, flow::serial, [&](const batch& in) { seen += static_cast<std::int64_t>(in.size()); });
  flow::make_edge(source, a);
  flow::make_edge(a, b);
  flow::make_edge(b, sink);
  auto t0 = std::chrono::steady_clock::now();
  source.activate();
  g.wait_for_all();
  auto seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return {static_cast<std::uint64_t>(seen), seconds};
}

}  // namespace loom::bench
