// tests/runtime/calls_test.cpp: calls from a node to its tools (the graph's `tools:`): replies come back to
// the caller in order, a tool's error or silence reaches the caller as an error and never fails the run,
// and tools live until their callers are done.
#include <doctest/doctest.h>

#include <caf/all.hpp>

#include <thread>

#include "loom/actors/builtins.hpp"
#include "loom/graph/builder.hpp"
#include "loom/graph/validate.hpp"
#include "loom/runtime/local/executor.hpp"
#include "tests/runtime/test_kinds.hpp"

using namespace loom;

namespace {

// A tool: adds a and b; throws for a negative a; sleeps `delay_ms` first.
class adder final : public node {
 public:
  explicit adder(const node_init& i) : delay_(i.params.get_int("delay_ms")) {}
  value on_call(context&, const value& req) override {
    std::this_thread::sleep_for(std::chrono::milliseconds(delay_));
    auto a = req.find("a")->as_int();
    if (a < 0) throw std::runtime_error("negative input");
    return value{a + req.find("b")->as_int()};
  }

 private:
  std::int64_t delay_;
};

// Calls its tool with each input value and emits the reply, or "error: ..." for a failed call.
class asker final : public node {
 public:
  explicit asker(const node_init& i) : timeout_(i.params.get_int("timeout_ms")) {}
  void on_message(context& ctx, std::size_t, const value& v) override {
    REQUIRE(ctx.tools().size() == 1);
    ctx.call(ctx.tools()[0], value{value_map{{"a", v}, {"b", 100}}}, timeout_, [](context& c, call_result r) {
      c.emit(r.ok ? r.reply : value{"error: " + r.error});
    });
  }

 private:
  std::chrono::milliseconds timeout_;
};

struct fixture : test::graph_runner {
  fixture() {
    using graph::param_spec;
    graph::kind_spec add{"test.adder", "Adds a and b.", {}, {}, {param_spec::integer("delay_ms", "").def(0)}, {}, {}};
    add.call = graph::call_spec{"Adds two integers.",
                                {param_spec::integer("a", "first").require(), param_spec::integer("b", "second").def(0)}};
    kinds.add({add, [](const node_init& i) { return std::make_unique<adder>(i); }});
    kinds.add({{"test.asker", "Asks its tool.", {{"in", "ints"}}, {{"out", "replies"}},
                {param_spec::integer("timeout_ms", "").def(2000)}, {}, {}},
               [](const node_init& i) { return std::make_unique<asker>(i); }});
  }
};

graph::graph asking(std::int64_t start, std::int64_t count, int delay_ms, int timeout_ms, int replicas = 1) {
  graph::builder b("calls");
  b.node("src", "source.sequence").param("start", start).param("count", count);
  b.node("ask", "test.asker").param("timeout_ms", timeout_ms).tool("calc");
  b.node("calc", "test.adder").param("delay_ms", delay_ms).replicas(replicas);
  b.node("out", "test.collect");
  b.chain({"src", "ask", "out"});
  return b.build();
}

}  // namespace

TEST_CASE("a node's calls to its tool come back in order" * doctest::timeout(30)) {
  fixture f;
  auto r = f.run(asking(0, 200, 0, 2000, 2));
  REQUIRE(r.result == local::run_report::outcome::ok);
  auto got = f.sink->snapshot();
  REQUIRE(got.size() == 200);
  for (std::size_t i = 0; i < got.size(); ++i) CHECK(got[i].as_int() == static_cast<std::int64_t>(i) + 100);
}

TEST_CASE("a tool's busy time is counted once: no instance is busier than the run is long" * doctest::timeout(30)) {
  fixture f;
  // 10 calls of 40 ms each, one after the other (the asker waits for each reply): the tool is busy about
  // 400 ms of a run that lasts at least that long. Counted twice (its call, and the turn that served it) it
  // would be busier than the run is long.
  auto r = f.run(asking(0, 10, 40, 5000));
  REQUIRE(r.result == local::run_report::outcome::ok);
  const auto wall_ns = static_cast<std::uint64_t>(r.seconds * 1e9);
  std::uint64_t calc = 0, ask = 0;
  for (const auto& n : r.nodes) {
    INFO(n.node << " busy " << n.busy_ns << " ns of a " << wall_ns << " ns run");
    CHECK(n.busy_ns <= wall_ns);
    if (n.node == "calc") calc = n.busy_ns;
    if (n.node == "ask") ask = n.busy_ns;
  }
  CHECK(calc >= 400'000'000);  // each call counted
  CHECK(ask < calc);           // a caller is not busy while it waits for a reply
}

TEST_CASE("a tool that throws answers with an error and the run goes on" * doctest::timeout(30)) {
  fixture f;
  auto r = f.run(asking(-2, 4, 0, 2000));
  REQUIRE(r.result == local::run_report::outcome::ok);
  auto got = f.sink->snapshot();
  REQUIRE(got.size() == 4);
  CHECK(got[0].as_string() == "error: negative input");
  CHECK(got[1].as_string() == "error: negative input");
  CHECK(got[2].as_int() == 100);
  CHECK(got[3].as_int() == 101);
}

TEST_CASE("a tool that does not answer in time gives the caller a timeout error" * doctest::timeout(30)) {
  fixture f;
  auto r = f.run(asking(0, 2, 300, 50));
  REQUIRE(r.result == local::run_report::outcome::ok);
  auto got = f.sink->snapshot();
  REQUIRE(got.size() == 2);
  CHECK(got[0].as_string() == "error: tool `calc` did not reply within 50 ms");
}

TEST_CASE("a request that does not fit the tool's arguments is refused with a message for the model" *
          doctest::timeout(30)) {
  fixture f;
  graph::builder b("bad-args");
  b.node("src", "source.value").param("value", "not a number");
  b.node("ask", "test.asker").tool("calc");
  b.node("calc", "test.adder");
  b.node("out", "test.collect");
  b.chain({"src", "ask", "out"});
  auto r = f.run(b.build());
  REQUIRE(r.result == local::run_report::outcome::ok);
  auto got = f.sink->snapshot();
  REQUIRE(got.size() == 1);
  CHECK(got[0].as_string() == "error: argument `a`: expected integer, found string");
}
