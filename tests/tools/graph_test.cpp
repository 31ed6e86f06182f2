// tests/tools/graph_test.cpp: the tools called through the real runtime (runtime/local), as an agent calls
// them: a node named in `tools:` gets the request checked and its reply back; a missing corpus fails the run
// at start, naming the path.
#include <doctest/doctest.h>

#include <caf/all.hpp>

#include <mutex>
#include <utility>
#include <vector>

#include "loom/actors/builtins.hpp"
#include "loom/graph/builder.hpp"
#include "loom/graph/validate.hpp"
#include "loom/runtime/local/executor.hpp"
#include "tests/support/graph_runner.hpp"

using namespace loom;

namespace {

// For each input {tool, args}: calls that tool with args and emits the reply, or "error: ...".
class asker final : public node {
 public:
  void on_message(context& ctx, std::size_t, const value& v) override {
    ctx.call(v.find("tool")->as_string(), *v.find("args"), std::chrono::seconds(20),
             [](context& c, call_result r) { c.emit(r.ok ? r.reply : value{"error: " + r.error}); });
  }
};

struct fixture : test::graph_runner {
  fixture() {
    graph::kind_spec ask;
    ask.name = "test.asker";
    ask.doc = "Calls the tool each input names.";
    ask.inputs = {{"in", "{tool, args}"}};
    ask.outputs = {{"out", "replies"}};
    kinds.add({ask, [](const node_init&) { return std::make_unique<asker>(); }});
  }
};

graph::config request(const char* tool, graph::config_map args) {
  return graph::config(graph::config_map{{"tool", tool}, {"args", graph::config(std::move(args))}});
}

const std::string food_truck = std::string(LOOM_SOURCE_DIR) + "/configs/data/food_truck";

// Runs src -> ask -> out with the three tools, the one request `req`; what `out` got.
std::vector<value> ask_once(fixture& f, graph::config req, std::string corpus = food_truck) {
  graph::builder b("tools");
  b.node("src", "source.value").param("value", std::move(req));
  b.node("ask", "test.asker").tool("calc").tool("search").tool("forecast");
  b.node("calc", "tool.calculator");
  b.node("search", "tool.retrieve").param("corpus", std::move(corpus));
  b.node("forecast", "tool.monte_carlo").param("device", "cpu");
  b.node("out", "test.collect");
  b.chain({"src", "ask", "out"});
  auto r = f.run(b.build());
  REQUIRE(r.result == local::run_report::outcome::ok);
  std::lock_guard lock(f.sink->m);
  return std::exchange(f.sink->values, {});
}

}  // namespace

TEST_CASE("a node calls tool.calculator, tool.retrieve and tool.monte_carlo through the runtime" *
          doctest::timeout(60)) {
  fixture f;
  auto calc = ask_once(f, request("calc", {{"expression", "2 * (3 + 4)"}}));
  REQUIRE(calc.size() == 1);
  CHECK(calc[0].find("result")->as_int() == 14);

  auto search = ask_once(f, request("search", {{"query", "HACCP hygiene training"}}));
  REQUIRE(search.size() == 1);
  const auto& passages = search[0].find("passages")->as_list();
  REQUIRE(passages.size() == 1);  // only one paragraph mentions them
  CHECK(passages[0].find("source")->as_string() == "permits.md");

  auto forecast = ask_once(f, request("forecast", {{"samples", 1000}}));
  REQUIRE(forecast.size() == 1);
  CHECK(forecast[0].find("device")->as_string() == "cpu");
  CHECK(forecast[0].find("samples")->as_int() == 1000);
}

TEST_CASE("a tool's error reaches the caller as an error and the run goes on" * doctest::timeout(60)) {
  fixture f;
  auto div = ask_once(f, request("calc", {{"expression", "1 / 0"}}));
  REQUIRE(div.size() == 1);
  CHECK(div[0].as_string() == "error: division by zero at column 3");
  auto bad = ask_once(f, request("calc", {{"expr", "1"}}));
  REQUIRE(bad.size() == 1);
  CHECK(bad[0].as_string() == "error: unknown argument `expr`; the arguments are: expression");
}

TEST_CASE("a missing corpus fails the run at start, naming the path" * doctest::timeout(60)) {
  fixture f;
  graph::builder b("tools");
  b.node("src", "source.value").param("value", request("calc", {{"expression", "1"}}));
  b.node("ask", "test.asker").tool("search");
  b.node("search", "tool.retrieve").param("corpus", "/no/such/corpus");
  b.node("out", "test.collect");
  b.chain({"src", "ask", "out"});
  auto r = f.run(b.build());
  CHECK(r.result != local::run_report::outcome::ok);
  INFO(r.error);
  CHECK(r.error.find("/no/such/corpus") != std::string::npos);
}
