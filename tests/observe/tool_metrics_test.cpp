// tests/observe/tool_metrics_test.cpp: a tool's calls in the metrics: loom_tool_calls_total by status (ok
// and error where the tool serves them, timeout where the caller gave up) and loom_tool_call_seconds, in the
// real runtime.
#include <doctest/doctest.h>

#include <thread>

#include "loom/graph/builder.hpp"
#include "loom/runtime/observe/metrics.hpp"
#include "loom/runtime/observe/node_probes.hpp"
#include "tests/support/graph_runner.hpp"

using namespace loom;

namespace {

// A tool: returns a; throws for a negative a; sleeps `delay_ms` first.
class echo_tool final : public node {
 public:
  explicit echo_tool(const node_init& i) : delay_(i.params.get_int("delay_ms")) {}
  value on_call(context&, const value& req) override {
    std::this_thread::sleep_for(std::chrono::milliseconds(delay_));
    auto a = req.find("a")->as_int();
    if (a < 0) throw std::runtime_error("negative input");
    return value{a};
  }

 private:
  std::int64_t delay_;
};

// Calls its tool with each input; emits the reply or the error.
class caller final : public node {
 public:
  explicit caller(const node_init& i) : timeout_(i.params.get_int("timeout_ms")) {}
  void on_message(context& ctx, std::size_t, const value& v) override {
    ctx.call(ctx.tools()[0], value{value_map{{"a", v}}}, timeout_,
             [](context& c, call_result r) { c.emit(r.ok ? r.reply : value{"error: " + r.error}); });
  }

 private:
  std::chrono::milliseconds timeout_;
};

struct fixture : test::graph_runner {
  fixture() {
    using graph::param_spec;
    graph::kind_spec tool{"test.echo_tool", "Echoes a.", {}, {}, {param_spec::integer("delay_ms", "").def(0)}, {}, {}};
    tool.call = graph::call_spec{"Echoes a.", {param_spec::integer("a", "value").require()}};
    kinds.add({tool, [](const node_init& i) { return std::make_unique<echo_tool>(i); }});
    kinds.add({{"test.caller", "Calls its tool.", {{"in", "ints"}}, {{"out", "replies"}},
                {param_spec::integer("timeout_ms", "").def(2000)}, {}, {}},
               [](const node_init& i) { return std::make_unique<caller>(i); }});
  }
  graph::graph calling(const std::string& tool, std::int64_t start, std::int64_t count, int delay_ms, int timeout_ms) {
    graph::builder b("tool-metrics");
    b.node("src", "source.sequence").param("start", start).param("count", count);
    b.node("ask", "test.caller").param("timeout_ms", timeout_ms).tool(tool);
    b.node(tool, "test.echo_tool").param("delay_ms", delay_ms);
    b.node("out", "test.collect");
    b.chain({"src", "ask", "out"});
    return b.build();
  }
};

// A run wired as every runner wires it (loom run, workers, loom serve, embedded): the observe side of the
// local runtime's probes.
local::run_options wired() {
  local::run_options o;
  o.probes = observe::probes_for();
  return o;
}

double value_of(const std::string& name, const observe::label_set& labels) {
  for (const auto& f : observe::metrics().collect())
    for (const auto& s : f.samples)
      if (s.name == name && s.labels == labels) return s.value;
  return -1;
}

}  // namespace

TEST_CASE("a tool's calls by status, and their seconds" * doctest::timeout(30)) {
  fixture f;
  auto r = f.run(f.calling("metrics_tool_a", -2, 5, 0, 2000), wired());  // -2, -1: errors; 0, 1, 2: ok
  REQUIRE(r.result == local::run_report::outcome::ok);
  CHECK(value_of("loom_tool_calls_total", {{"tool", "metrics_tool_a"}, {"status", "ok"}}) == 3);
  CHECK(value_of("loom_tool_calls_total", {{"tool", "metrics_tool_a"}, {"status", "error"}}) == 2);
  CHECK(value_of("loom_tool_call_seconds_count", {{"tool", "metrics_tool_a"}}) == 5);
  CHECK(value_of("loom_tool_call_seconds_bucket", {{"tool", "metrics_tool_a"}, {"le", "+Inf"}}) == 5);
}

TEST_CASE("a call the caller gave up on counts as a timeout" * doctest::timeout(30)) {
  fixture f;
  auto r = f.run(f.calling("metrics_tool_b", 0, 2, 300, 50), wired());
  REQUIRE(r.result == local::run_report::outcome::ok);
  auto got = f.sink->snapshot();
  REQUIRE(got.size() == 2);
  CHECK(got[0].as_string() == "error: tool `metrics_tool_b` did not reply within 50 ms");
  CHECK(value_of("loom_tool_calls_total", {{"tool", "metrics_tool_b"}, {"status", "timeout"}}) == 2);
}
