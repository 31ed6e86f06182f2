// The embedding API (embed/runtime.hpp): a program runs graphs through loom::runtime and feeds a running
// graph through program.input / program.output, with no CAF in sight.
#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <csignal>
#include <optional>
#include <chrono>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "loom/loom.hpp"
#include "tests/support/raw_socket.hpp"

#include <unistd.h>

using namespace std::chrono_literals;

namespace {

// The program's own kind: adds `add` to each int; fails on the value `fail_on`.
loom::kind_def adder_kind() {
  using loom::graph::param_spec;
  loom::graph::kind_spec s;
  s.name = "test.add";
  s.doc = "adds `add` to each int";
  s.inputs = {{"in", "ints"}};
  s.outputs = {{"out", "ints"}};
  s.params = {param_spec::integer("add", "added").def(1), param_spec::integer("fail_on", "fails on it").def(-1)};
  struct adder final : loom::node {
    std::int64_t add, fail_on;
    void on_message(loom::context& ctx, std::size_t, const loom::value& v) override {
      if (v.as_int() == fail_on) throw std::runtime_error("refused " + std::to_string(fail_on));
      ctx.emit(loom::value(v.as_int() + add));
    }
  };
  return {std::move(s), [](const loom::node_init& init) {
            auto n = std::make_unique<adder>();
            n->add = init.params.get_int("add");
            n->fail_on = init.params.get_int("fail_on");
            return n;
          }};
}

loom::graph::graph fed_graph(std::int64_t in_capacity = 64, std::int64_t out_capacity = 64, std::int64_t fail_on = -1) {
  loom::graph::builder b("fed");
  b.node("in", "program.input").param("capacity", in_capacity);
  b.node("add", "test.add").param("add", 10).param("fail_on", fail_on);
  b.node("out", "program.output").param("capacity", out_capacity);
  b.chain({"in", "add", "out"});
  return b.build();
}

}  // namespace

TEST_CASE("runtime::run runs a built graph to the end and reports every node's counts") {
  loom::runtime rt({.threads = 2});
  loom::graph::builder b("counted");
  b.node("src", "source.sequence").param("count", 1000);
  b.node("fwd", "flow.forward");
  b.node("out", "sink.count").param("expect", 1000);
  b.chain({"src", "fwd", "out"});
  auto report = rt.run(b.build());
  REQUIRE(report.ok());
  std::uint64_t out_in = 0;
  for (const auto& n : report.nodes)
    if (n.node == "out") out_in += n.in;
  CHECK(out_in == 1000);
  CHECK(std::string(loom::version()) == LOOM_VERSION_STRING);
}

TEST_CASE("runtime: an invalid graph throws graph_error with each diagnostic and its place") {
  loom::runtime rt;
  loom::graph::builder b("bad");
  b.node("src", "source.sequence").param("count", "many");
  b.node("out", "sink.nothing");
  b.chain({"src", "out"});
  try {
    rt.run(b.build());
    FAIL("no graph_error");
  } catch (const loom::graph_error& e) {
    CHECK(e.diagnostics().error_count() >= 2);
    std::string what = e.what();
    CHECK(what.find("sink.nothing") != std::string::npos);
    CHECK(what.find("count") != std::string::npos);
    CHECK(what.find("embed_test.cpp") != std::string::npos);  // the builder call's file
  }
  try {
    rt.load_text("graph: g\nnodes:\n  src: {kind: source.sequence, params: {count: 3}}\n  out: {kind: sink.count}\n"
                 "edges:\n  - src -> nowhere\n", "g.yaml");
    FAIL("no graph_error");
  } catch (const loom::graph_error& e) {
    CHECK(std::string(e.what()).find("g.yaml:6:") != std::string::npos);
  }
}

TEST_CASE("runtime: the program's own kind, and a node's failure in the report naming node and input") {
  loom::runtime rt({.threads = 2});
  rt.kinds().add(adder_kind());
  loom::graph::builder b("own");
  b.node("src", "source.sequence").param("count", 100);
  b.node("add", "test.add").param("add", 5).param("fail_on", 50);
  b.node("out", "sink.count");
  b.chain({"src", "add", "out"});
  auto report = rt.run(b.build());
  REQUIRE(report.result == loom::run_report::outcome::failed);
  CHECK(report.error.find("add") != std::string::npos);
  CHECK(report.error.find("refused 50") != std::string::npos);
}

TEST_CASE("runtime::run refuses program.input/output (they need start) with a graph_error") {
  loom::runtime rt;
  rt.kinds().add(adder_kind());
  CHECK_THROWS_AS(rt.run(fed_graph()), loom::graph_error);
}

TEST_CASE("running: values pushed come out in order, the input's close ends the run ok, counts add up") {
  loom::runtime rt({.threads = 2});
  rt.kinds().add(adder_kind());
  auto run = rt.start(fed_graph());
  auto in = run.input<std::int64_t>("in");
  auto out = run.output<std::int64_t>("out");
  constexpr std::int64_t n = 5000;
  std::thread feeder([&] {
    for (std::int64_t i = 0; i < n; ++i) REQUIRE(in.push(i, 10s));
    in.close();
  });
  std::vector<std::int64_t> got;
  while (auto v = out.take(10s)) got.push_back(*v);
  feeder.join();
  REQUIRE(got.size() == n);
  for (std::int64_t i = 0; i < n; ++i) REQUIRE(got[static_cast<std::size_t>(i)] == i + 10);
  CHECK(out.ended());
  const auto& report = run.wait();
  REQUIRE(report.ok());
  for (const auto& s : report.nodes) {
    if (s.node == "in") CHECK(s.out == n);
    if (s.node == "out") CHECK(s.in == n);
  }
  CHECK_THROWS_AS(in.try_push(1), loom::run_error);  // the run is over
  CHECK_THROWS_AS(run.input("add"), std::invalid_argument);
}

TEST_CASE("running: backpressure the program sees, through the graph back to its input") {
  loom::runtime rt({.threads = 2});
  rt.kinds().add(adder_kind());
  loom::graph::graph g = fed_graph(2, 2);
  g.default_capacity = 4;
  auto run = rt.start(std::move(g));
  auto in = run.input<int>("in");
  auto out = run.output<int>("out");
  // Nobody takes: the output fills, then the edges, then the input. Some push must be refused.
  int pushed = 0;
  auto deadline = std::chrono::steady_clock::now() + 20s;
  while (in.push(pushed, 200ms)) {
    ++pushed;
    REQUIRE(pushed < 10'000);  // bounded: a full graph stops taking
    REQUIRE(std::chrono::steady_clock::now() < deadline);
  }
  CHECK(in.size() == in.capacity());
  CHECK_FALSE(in.try_push(-1));
  // Taking makes room, all the way back: every value pushed comes out.
  in.close();
  int taken = 0;
  while (auto v = out.take(10s)) CHECK(*v == (taken++) + 10);
  CHECK(taken == pushed);
  CHECK(run.wait().ok());
}

TEST_CASE("running: a node's failure reaches the program taking values, as run_error naming the node") {
  loom::runtime rt({.threads = 2});
  rt.kinds().add(adder_kind());
  auto run = rt.start(fed_graph(64, 64, 7));
  auto in = run.input<int>("in");
  auto out = run.output<int>("out");
  for (int i = 0; i < 10; ++i) REQUIRE(in.push(i, 10s));
  std::string error;
  try {
    while (out.take(10s)) {
    }
    FAIL("the output ended without an error");
  } catch (const loom::run_error& e) {
    error = e.what();
    REQUIRE(e.report() != nullptr);
    CHECK(e.report()->result == loom::run_report::outcome::failed);
  }
  CHECK(error.find("add") != std::string::npos);
  CHECK(error.find("refused 7") != std::string::npos);
  CHECK_THROWS_AS(in.push(1, 1s), loom::run_error);
}

TEST_CASE("running: stop() and runtime::interrupt() end a run that is waiting for input, as interrupted") {
  loom::runtime rt({.threads = 2});
  rt.kinds().add(adder_kind());
  {
    auto run = rt.start(fed_graph());
    auto out = run.output<int>("out");
    CHECK_THROWS_AS(out.take(50ms), loom::timeout_error);  // nothing pushed: nothing to take
    run.stop();
    const auto* r = run.wait_for(10s);
    REQUIRE(r != nullptr);
    CHECK(r->result == loom::run_report::outcome::interrupted);
    CHECK_THROWS_AS(out.take(1s), loom::run_error);
  }
  {
    auto run = rt.start(fed_graph());
    rt.interrupt();
    const auto* r = run.wait_for(10s);
    REQUIRE(r != nullptr);
    CHECK(r->result == loom::run_report::outcome::interrupted);
  }
  // A run started after interrupt() is not affected by it.
  auto run = rt.start(fed_graph());
  auto in = run.input<int>("in");
  REQUIRE(in.push(1, 10s));
  in.close();
  CHECK(run.output<int>("out").take(10s) == 11);
  CHECK(run.wait().ok());
}

TEST_CASE("running: a dropped running stops its run; the runtime goes on") {
  loom::runtime rt({.threads = 2});
  rt.kinds().add(adder_kind());
  std::optional<loom::input<int>> kept;
  {
    auto run = rt.start(fed_graph());
    kept.emplace(run.input<int>("in"));
  }  // ~running: stopped and joined
  CHECK_THROWS_AS(kept->push(1, 1s), loom::run_error);
}

TEST_CASE("running: flow.vote decides a question timeout_ms after its first answer while inputs stay open") {
  // Three branches; c never answers id 2. The program's input stays open, so nothing else arrives and no
  // input ends: only the vote's timer can decide id 2.
  loom::runtime rt({.threads = 2});
  loom::graph::builder b("voted");
  b.node("in", "program.input");
  b.node("a", "flow.jq").param("program", ".");
  b.node("b", "flow.jq").param("program", ".");
  b.node("c", "flow.jq").param("program", "select(.id != 2)");
  b.node("vote", "flow.vote")
      .param("branches", 3)
      .param("quorum", 2)
      .param("key", ".id")
      .param("timeout_ms", 100);
  b.node("out", "program.output");
  b.node("split", "program.output");
  for (const char* branch : {"a", "b", "c"}) {
    b.edge("in", branch);
    b.edge(branch, std::string("vote.") + branch);
  }
  b.edge("vote.out", "out");
  b.edge("vote.disagree", "split");
  auto run = rt.start(b.build());
  auto in = run.input("in");
  auto out = run.output("out");
  auto record = [](std::int64_t id) { return loom::value{loom::value_map{{"id", id}}}; };
  auto next = [&]() -> std::optional<loom::value> {
    try {
      return out.take(20s);
    } catch (const loom::timeout_error&) {
      FAIL_CHECK("no decision within 20 s while the inputs stay open");
      return std::nullopt;
    }
  };
  REQUIRE(in.push(record(1), 10s));
  REQUIRE(in.push(record(2), 10s));
  CHECK(next() == record(1));  // all three answered
  CHECK(next() == record(2));  // a and b agree; c's answer never comes
  CHECK_FALSE(run.done());     // decided by the timer, not by an input's end
  CHECK(run.output("split").try_take() == std::nullopt);  // the answers given agreed
  REQUIRE(in.push(record(3), 10s));
  CHECK(next() == record(3));
  in.close();
  CHECK(out.take(20s) == std::nullopt);
  CHECK(run.wait().ok());
}

TEST_CASE("runtime::serve answers /health from the program's process") {
  loom::runtime rt({.threads = 2});
  auto g = rt.load(LOOM_SOURCE_DIR "/configs/serve_echo.yaml");
  auto server = rt.serve(g, {});
  REQUIRE(server.port() > 0);
  int fd = loom::test::connect_loopback(server.port());
  loom::test::send_all(fd, "GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
  auto head = loom::test::read_head(fd);
  ::close(fd);
  CHECK(head.find("200") != std::string::npos);
  server.stop();
}

namespace {
std::atomic<int> program_sigint{0};
extern "C" void program_handler(int) { program_sigint.fetch_add(1); }
}  // namespace

TEST_CASE("handle_interrupts: SIGINT stops the runs in progress; the program's handler comes back after") {
  struct sigaction mine {};
  mine.sa_handler = program_handler;
  sigemptyset(&mine.sa_mask);
  struct sigaction before {};
  sigaction(SIGINT, &mine, &before);
  {
    loom::runtime quiet({.threads = 2});  // not opted in: loom leaves SIGINT alone
    struct sigaction now {};
    sigaction(SIGINT, nullptr, &now);
    CHECK((now.sa_handler == program_handler));
  }
  {
    loom::runtime rt({.threads = 2, .handle_interrupts = true});
    rt.kinds().add(adder_kind());
    auto run = rt.start(fed_graph());
    REQUIRE(run.input<int>("in").push(1, 10s));
    CHECK(run.output<int>("out").take(10s) == 11);  // the run is going
    CHECK_FALSE(rt.interrupted());
    std::raise(SIGINT);
    const auto* r = run.wait_for(10s);
    REQUIRE(r != nullptr);
    CHECK(r->result == loom::run_report::outcome::interrupted);
    CHECK(rt.interrupted());
    CHECK(program_sigint == 0);  // loom's handler took it, not the program's
  }
  struct sigaction after {};
  sigaction(SIGINT, nullptr, &after);
  CHECK((after.sa_handler == program_handler));
  std::raise(SIGINT);
  CHECK(program_sigint == 1);
  sigaction(SIGINT, &before, nullptr);
}

TEST_CASE("every kind's example (loom inspect, docs/kinds.md) is a graph file that loads and validates") {
  loom::runtime rt;
  int examples = 0;
  for (const auto& name : rt.kinds().kind_names()) {
    const auto* spec = rt.kinds().find_kind(name);
    if (spec->example.empty()) continue;
    ++examples;
    INFO("the example of ", name);
    auto g = rt.load_text(spec->example, name + " example");  // throws graph_error naming file:line:col
    CHECK(std::any_of(g.nodes.begin(), g.nodes.end(), [&](const auto& n) { return n.kind == name; }));
    CHECK(rt.validate(g).all().empty());  // no warnings either
  }
  for (const char* kind : {"flow.jq", "flow.call", "flow.vote", "program.input", "program.output"})
    CHECK_MESSAGE(!rt.kinds().find_kind(kind)->example.empty(), kind, " has no example");
  CHECK(examples >= 5);
}
