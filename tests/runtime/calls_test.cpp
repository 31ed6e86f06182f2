// tests/runtime/calls_test.cpp: calls from a node to its tools (the graph's `tools:`): replies come back to
// the caller in order, a tool's error or silence reaches the caller as an error and never fails the run,
// and tools live until their callers are done.
#include <doctest/doctest.h>

#include <caf/all.hpp>

#include <algorithm>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "loom/actors/builtins.hpp"
#include "loom/graph/builder.hpp"
#include "loom/graph/validate.hpp"
#include "loom/runtime/local/executor.hpp"
#include "loom/runtime/local/probes.hpp"
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

namespace {

// A run's probes as the local runtime sees them (probes.hpp), with no observe module behind them: what each
// instance reported, by instance name.
struct recorded {
  std::mutex m;
  std::vector<std::string> instances;
  int served_ok = 0, served_error = 0, timed_out = 0, spans = 0;
  std::string served_tool, timed_out_tool;
};

class recording_probe final : public local::instance_probe {
 public:
  explicit recording_probe(std::shared_ptr<recorded> r) : r_(std::move(r)) {}
  void served(const std::string& tool, bool ok, double seconds) override {
    std::lock_guard lock(r_->m);
    CHECK(seconds >= 0);
    ++(ok ? r_->served_ok : r_->served_error);
    r_->served_tool = tool;
  }
  void rejected(const std::string&) override {}
  void timed_out(const std::string& tool) override {
    std::lock_guard lock(r_->m);
    ++r_->timed_out;
    r_->timed_out_tool = tool;
  }
  observe::span_buffer* spans() override { return nullptr; }  // not traced: no span calls follow
  std::uint64_t new_span() override { return span(); }
  std::uint64_t current() const override { return 0; }
  void set_current(std::uint64_t) override { span(); }
  void slice(std::uint64_t, local::probe_clock::time_point, local::probe_clock::time_point, std::uint64_t,
             std::uint64_t) override {
    span();
  }
  void call_span(std::uint64_t, std::uint64_t, local::probe_clock::time_point, const std::string&, bool,
                 const std::string&) override {
    span();
  }
  void served_span(std::uint64_t, std::uint64_t, local::probe_clock::time_point, local::probe_clock::time_point,
                   const std::string&, bool, const std::string&) override {
    span();
  }

 private:
  std::uint64_t span() {
    std::lock_guard lock(r_->m);
    ++r_->spans;
    return 1;
  }
  std::shared_ptr<recorded> r_;
};

class recording_probes final : public local::run_probes {
 public:
  std::shared_ptr<recorded> r = std::make_shared<recorded>();
  std::unique_ptr<local::instance_probe> instance(std::uint32_t, std::string name) override {
    std::lock_guard lock(r->m);
    r->instances.push_back(std::move(name));
    return std::make_unique<recording_probe>(r);
  }
};

}  // namespace

TEST_CASE("a run's probes hear each instance's served and timed-out calls; an untraced run makes no spans" *
          doctest::timeout(30)) {
  fixture f;
  auto probes = std::make_shared<recording_probes>();
  local::run_options o;
  o.probes = probes;
  auto r = f.run(asking(-2, 4, 0, 2000, 2), o);  // -2, -1: the tool throws; 0, 1: it answers
  REQUIRE(r.result == local::run_report::outcome::ok);
  {
    std::lock_guard lock(probes->r->m);
    auto names = probes->r->instances;
    std::sort(names.begin(), names.end());
    CHECK(names == std::vector<std::string>{"ask", "calc[0]", "calc[1]", "out", "src"});
    CHECK(probes->r->served_ok == 2);
    CHECK(probes->r->served_error == 2);
    CHECK(probes->r->served_tool == "calc");
    CHECK(probes->r->timed_out == 0);
    CHECK(probes->r->spans == 0);
  }
  fixture slow;
  auto late = std::make_shared<recording_probes>();
  o.probes = late;
  r = slow.run(asking(0, 1, 300, 50), o);  // the tool takes 300 ms, the caller waits 50
  REQUIRE(r.result == local::run_report::outcome::ok);
  std::lock_guard lock(late->r->m);
  CHECK(late->r->timed_out == 1);
  CHECK(late->r->timed_out_tool == "calc");
}
