// tests/runtime/executor_test.cpp: the local executor end to end on CAF, with the test kinds and the
// built-in ones: order, fan-out without copies, merge, replicas, bounded queues, failure, restart, stop.
#include <doctest/doctest.h>

#include <caf/all.hpp>

#include <algorithm>
#include <thread>

#include "loom/actors/builtins.hpp"
#include "loom/graph/builder.hpp"
#include "loom/graph/validate.hpp"
#include "loom/runtime/local/executor.hpp"
#include "tests/runtime/test_kinds.hpp"

using namespace loom;

namespace {

struct fixture : test::graph_runner {
  std::shared_ptr<std::atomic<int>> failures = std::make_shared<std::atomic<int>>(0);
  explicit fixture(std::size_t threads = 2) : graph_runner(threads) { test::register_test_kinds(kinds, failures); }
};

const local::node_stats& stats_of(const local::run_report& r, const std::string& node) {
  for (const auto& s : r.nodes)
    if (s.node == node) return s;
  FAIL("no stats for node " << node);
  return r.nodes.front();
}

}  // namespace

TEST_CASE("a pipeline delivers every value once and in order" * doctest::timeout(30)) {
  for (std::size_t threads : {1, 2, 4}) {
    fixture f(threads);
    graph::builder b("pipe");
    b.node("src", "test.ints").param("count", 100000);
    b.node("a", "flow.forward");
    b.node("b", "flow.forward");
    b.node("out", "test.collect");
    b.chain({"src", "a", "b", "out"});
    auto r = f.run(b.build());
    CHECK(r.result == local::run_report::outcome::ok);
    auto got = f.sink->snapshot();
    REQUIRE(got.size() == 100000);
    for (std::int64_t i = 0; i < 100000; ++i)
      if (got[static_cast<std::size_t>(i)].as_int() != i) FAIL("value " << i << " out of order");
    CHECK(f.sink->finished == 1);
    CHECK(stats_of(r, "a").in == 100000);
    CHECK(stats_of(r, "a").out == 100000);
  }
}

TEST_CASE("fan-out delivers the same value to every edge without copying it" * doctest::timeout(30)) {
  fixture f;
  graph::builder b("fan");
  b.node("src", "source.value").param("value", "a long enough string to live on the heap").param("repeat", 3);
  b.node("out", "test.collect");
  b.edge("src", "out.in");
  b.edge("src", "out.aux");
  auto r = f.run(b.build());
  REQUIRE(r.result == local::run_report::outcome::ok);
  auto got = f.sink->snapshot();
  REQUIRE(got.size() == 6);
  for (const auto& v : got) CHECK(v.shares_payload_with(got[0]));
}

TEST_CASE("several edges into one port merge, and the port closes after all of them end" * doctest::timeout(30)) {
  fixture f;
  graph::builder b("merge");
  b.node("x", "test.ints").param("count", 500);
  b.node("y", "test.ints").param("count", 700);
  b.node("out", "test.collect");
  b.edge("x", "out");
  b.edge("y", "out");
  auto r = f.run(b.build());
  REQUIRE(r.result == local::run_report::outcome::ok);
  CHECK(f.sink->snapshot().size() == 1200);
  CHECK(f.sink->finished == 1);
}

TEST_CASE("replicas share an edge's load and every instance finishes" * doctest::timeout(30)) {
  fixture f;
  graph::builder b("replicas");
  b.node("src", "test.ints").param("count", 10000);
  b.node("work", "flow.forward").replicas(3);
  b.node("out", "test.collect");
  b.chain({"src", "work", "out"});
  auto r = f.run(b.build());
  REQUIRE(r.result == local::run_report::outcome::ok);
  auto got = f.sink->snapshot();
  CHECK(got.size() == 10000);
  std::vector<bool> seen(10000);
  for (const auto& v : got) seen[static_cast<std::size_t>(v.as_int())] = true;
  CHECK(std::count(seen.begin(), seen.end(), true) == 10000);
  int instances = 0;
  for (const auto& s : r.nodes)
    if (s.node == "work") {
      ++instances;
      CHECK(s.in > 0);
    }
  CHECK(instances == 3);
}

TEST_CASE("a slow consumer keeps every queue within its edge capacity" * doctest::timeout(60)) {
  fixture f;
  f.sink->delay_us = 20;
  graph::builder b("slow");
  b.node("src", "source.blob").param("count", 5000).param("size", 4096);
  b.node("fwd", "flow.forward");
  b.node("out", "test.collect");
  b.edge("src", "fwd", 64);
  b.edge("fwd", "out", 32);
  auto r = f.run(b.build());
  REQUIRE(r.result == local::run_report::outcome::ok);
  CHECK(f.sink->snapshot().size() == 5000);
  CHECK(stats_of(r, "fwd").queue_hwm <= 64);
  CHECK(stats_of(r, "out").queue_hwm <= 32);
  CHECK(stats_of(r, "out").queue_hwm > 0);
}

TEST_CASE("a kind's window sizes the unsized edges into and out of it; a capacity the graph sets wins" *
          doctest::timeout(60)) {
  fixture f;
  f.sink->delay_us = 20;
  auto windowed = *f.kinds.find("flow.forward");
  windowed.spec.name = "test.windowed";
  windowed.spec.window = 1000;  // a Python kind's is 4096: its thread wakes once per run
  f.kinds.add(windowed);
  auto pipeline = [&](std::optional<std::int64_t> capacity) {
    graph::builder b("windowed");
    b.node("src", "source.blob").param("count", 5000).param("size", 64);
    b.node("win", "test.windowed");
    b.node("out", "test.collect");
    b.edge("src", "win");
    b.edge("win", "out", capacity);
    return f.run(b.build());
  };
  auto r = pipeline(std::nullopt);
  REQUIRE(r.result == local::run_report::outcome::ok);
  CHECK(f.sink->snapshot().size() == 5000);
  CHECK(stats_of(r, "out").queue_hwm > graph::default_edge_capacity);  // the slow sink's queue grew past 256
  CHECK(stats_of(r, "out").queue_hwm <= 1000);
  {
    std::lock_guard lock(f.sink->m);
    f.sink->values.clear();
  }
  r = pipeline(32);
  REQUIRE(r.result == local::run_report::outcome::ok);
  CHECK(f.sink->snapshot().size() == 5000);
  CHECK(stats_of(r, "out").queue_hwm <= 32);
}

TEST_CASE("a node that throws fails the run, naming the node and the input" * doctest::timeout(30)) {
  fixture f;
  *f.failures = 1000;
  graph::builder b("fail");
  b.node("src", "test.ints").param("count", 100);
  b.node("bad", "test.flaky").param("fail_on", 42);
  b.node("out", "test.collect");
  b.chain({"src", "bad", "out"});
  auto r = f.run(b.build());
  CHECK(r.result == local::run_report::outcome::failed);
  CHECK(r.error.find("node `bad` (test.flaky)") != std::string::npos);
  CHECK(r.error.find("input `in`") != std::string::npos);
  CHECK(r.error.find("src.out -> bad.in") != std::string::npos);
  CHECK(r.error.find("boom") != std::string::npos);
  CHECK(f.sink->finished == 1);  // the sink was still let flush
}

TEST_CASE("a restart policy restarts a failed node and retries its message" * doctest::timeout(30)) {
  fixture f;
  *f.failures = 2;
  graph::builder b("restart");
  b.node("src", "test.ints").param("count", 100);
  b.node("bad", "test.flaky").param("fail_on", 42).restarts(2);
  b.node("out", "test.collect");
  b.chain({"src", "bad", "out"});
  auto r = f.run(b.build());
  REQUIRE(r.result == local::run_report::outcome::ok);
  // Values are handled in runs (one attempt per run of a batch): the failure at 42 rolls back the values
  // of its run handled before it, and the fresh node handles them again. Each value arrives exactly once.
  auto got = f.sink->snapshot();
  REQUIRE(got.size() == 100);
  std::vector<std::int64_t> ints;
  for (const auto& v : got) ints.push_back(v.as_int());
  std::sort(ints.begin(), ints.end());
  for (std::int64_t i = 0; i < 100; ++i) CHECK(ints[static_cast<std::size_t>(i)] == i);
  CHECK(stats_of(r, "bad").restarts == 2);
  CHECK(stats_of(r, "bad").in == 100);
  CHECK(stats_of(r, "bad").out == 100);
}

TEST_CASE("a restart policy gives up after its count and fails the run" * doctest::timeout(30)) {
  fixture f;
  *f.failures = 5;
  graph::builder b("give-up");
  b.node("src", "test.ints").param("count", 100);
  b.node("bad", "test.flaky").param("fail_on", 7).restarts(2);
  b.node("out", "test.collect");
  b.chain({"src", "bad", "out"});
  auto r = f.run(b.build());
  CHECK(r.result == local::run_report::outcome::failed);
  CHECK(r.error.find("after 2 restarts") != std::string::npos);
  CHECK(r.error.find("value 7)") != std::string::npos);  // the value it failed on, not its run's first
}

TEST_CASE("an interrupt stops an endless run and lets the sinks finish" * doctest::timeout(30)) {
  fixture f;
  graph::builder b("endless");
  b.node("src", "test.ints").param("count", std::int64_t{1} << 60);
  b.node("out", "test.collect");
  b.edge("src", "out");
  local::run_options o;
  auto t0 = std::chrono::steady_clock::now();
  o.interrupted = [&] { return std::chrono::steady_clock::now() - t0 > std::chrono::milliseconds(200); };
  auto r = f.run(b.build(), o);
  CHECK(r.result == local::run_report::outcome::interrupted);
  CHECK(f.sink->finished == 1);
  CHECK(f.sink->snapshot().size() > 0);
  CHECK(std::chrono::steady_clock::now() - t0 < std::chrono::seconds(3));
}
