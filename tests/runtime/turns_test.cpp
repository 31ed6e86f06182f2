// Turns: how many values a node handles before it yields to its mailbox (runtime/local/node_host.hpp:
// slice_values, run_slice_values). Read from a traced run's batch spans: one per turn that handled input,
// its count the values the turn handled.
#include <doctest/doctest.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <numeric>
#include <span>
#include <thread>

#include "loom/graph/builder.hpp"
#include "loom/runtime/observe/node_probes.hpp"
#include "loom/runtime/observe/trace.hpp"
#include "tests/support/graph_runner.hpp"

using namespace loom;

namespace {

// Handles runs: its first run waits `hold_ms` (so its input queues up to the edge's capacity), then each
// value costs `spin_ns` of busy work. Emits what it gets.
class paced final : public node {
 public:
  explicit paced(const node_init& init)
      : hold_ms_(init.params.get_int("hold_ms")), spin_ns_(init.params.get_int("spin_ns")) {}
  void on_message(context& ctx, std::size_t port, const value& v) override { on_run(ctx, port, {&v, 1}); }
  bool handles_runs() const override { return true; }
  void on_run(context& ctx, std::size_t, std::span<const value> values) override {
    if (hold_ms_ > 0) {
      std::this_thread::sleep_for(std::chrono::milliseconds(hold_ms_));
      hold_ms_ = 0;
    }
    if (spin_ns_ > 0) {
      auto until = std::chrono::steady_clock::now() + std::chrono::nanoseconds(spin_ns_ * std::ssize(values));
      while (std::chrono::steady_clock::now() < until) {
      }
    }
    ctx.emit_run(0, values);
  }

 private:
  std::int64_t hold_ms_;
  std::int64_t spin_ns_;
};

struct fixture : test::graph_runner {
  fixture() {
    using graph::param_spec;
    kinds.add({{"test.paced", "Handles runs at a set pace.", {{"in", "values"}}, {{"out", "the same"}},
                {param_spec::integer("hold_ms", "").def(0), param_spec::integer("spin_ns", "").def(0)}, {}, {}},
               [](const node_init& i) { return std::make_unique<paced>(i); }});
  }

  // The values each turn of node `pass` handled, in a run of `count` ints through it (edges of capacity
  // 4096, so a turn is never cut short by room).
  std::vector<std::int64_t> turns(std::int64_t count, std::int64_t hold_ms, std::int64_t spin_ns) {
    graph::builder b("turns");
    b.default_capacity(4096);
    b.node("src", "source.sequence").param("count", count);
    b.node("pass", "test.paced").param("hold_ms", hold_ms).param("spin_ns", spin_ns);
    b.node("out", "sink.count").param("expect", count);
    b.chain({"src", "pass", "out"});
    return traced(b.build(), "pass");
  }
  // The same through a flow.call of a calculator.
  std::vector<std::int64_t> call_turns(std::int64_t count) {
    graph::builder b("turns");
    b.default_capacity(4096);
    b.node("src", "source.sequence").param("count", count);
    b.node("calc", "tool.calculator");
    b.node("pass", "flow.call").param("args", "{expression: \"\\(.) + 1\"}").param("max_in_flight", 8).tool("calc");
    b.node("out", "sink.count").param("expect", count);
    b.chain({"src", "pass", "out"});
    return traced(b.build(), "pass");
  }
  std::vector<std::int64_t> traced(graph::graph g, const std::string& node) {
    auto trace = std::make_shared<observe::tracer>();
    local::run_options o;
    o.probes = observe::probes_for(trace);
    auto r = run(std::move(g), o);
    REQUIRE(r.result == local::run_report::outcome::ok);
    auto spans = trace->finish("turns");
    std::uint32_t track = 0xffffffffu;
    for (const auto& [t, name] : spans.tracks)
      if (name == node) track = t;
    std::vector<std::int64_t> out;
    for (const auto& s : spans.spans)
      if (s.track == track && s.kind == observe::span_kind::batch) out.push_back(s.count);
    return out;
  }
};

}  // namespace

TEST_CASE("a cheap kind that handles runs takes up to 1024 values a turn; a slower one, or one with tools, 64" *
          doctest::timeout(60)) {
  fixture f;
  // Cheap: the held first turn (64 values, slow) fills the queue to 4096; the next (64, quick) shows the
  // pace, and the turns after it take up to 1024.
  auto cheap = f.turns(20000, 50, 0);
  REQUIRE(!cheap.empty());
  CHECK(std::accumulate(cheap.begin(), cheap.end(), std::int64_t{0}) == 20000);
  auto most = *std::max_element(cheap.begin(), cheap.end());
  CHECK(most > 64);
  CHECK(most <= 1024);
  // 3 us a value, past about 1 us: every turn ends at 64.
  auto slow = f.turns(2000, 50, 3000);
  REQUIRE(!slow.empty());
  CHECK(std::accumulate(slow.begin(), slow.end(), std::int64_t{0}) == 2000);
  CHECK(*std::max_element(slow.begin(), slow.end()) <= 64);
  // A node with tools: 64, however cheap its turns (they end with its calls out).
  auto calls = f.call_turns(5000);
  REQUIRE(!calls.empty());
  CHECK(std::accumulate(calls.begin(), calls.end(), std::int64_t{0}) >= 5000);
  CHECK(*std::max_element(calls.begin(), calls.end()) <= 64);
}
