// agent.llm in the real runtime (local::run_graph on CAF), from YAML: an agent calls a tool node and emits
// from the tool's reply; a planner's tasks fan out to worker agents whose work is gathered for a writer.
#include <doctest/doctest.h>

#include <caf/all.hpp>

#include <algorithm>
#include <cstdlib>
#include <memory>
#include <mutex>

#include "loom/actors/builtins.hpp"
#include "loom/graph/load.hpp"
#include "loom/graph/validate.hpp"
#include "loom/runtime/local/executor.hpp"
#include "tests/support/graph_runner.hpp"

using namespace loom;

namespace {

// A tool: {city} -> {city, temp_c}; throws for an unknown city.
class weather final : public node {
 public:
  value on_call(context&, const value& req) override {
    const auto& city = req.find("city")->as_string();
    if (city == "Atlantis") throw std::runtime_error("no such city");
    return value{value_map{{"city", city}, {"temp_c", city == "Paris" ? 21.5 : 9.25}}};
  }
};

struct fixture : test::graph_runner {
  fixture() {
    using graph::param_spec;
    graph::kind_spec w;
    w.name = "test.weather";
    w.doc = "Weather by city.";
    w.call = graph::call_spec{"Current weather in a city.", {param_spec::string("city", "the city").require()}};
    kinds.add({w, [](const node_init&) { return std::make_unique<weather>(); }});
  }

  local::run_report run(const std::string& yaml) { return run_yaml(yaml, "agents.yaml"); }

  std::vector<std::string> texts() {
    std::vector<std::string> out;
    for (const auto& v : sink->snapshot()) out.push_back(v.find("text")->as_string());
    return out;
  }
};

}  // namespace

TEST_CASE("an agent calls its tool node and answers from the reply, in the runtime" * doctest::timeout(30)) {
  fixture f;
  auto r = f.run(R"(
nodes:
  paris:
    kind: source.value
    params: {value: Paris}
  lost:
    kind: source.value
    params: {value: Atlantis}
  forecaster:
    kind: agent.llm
    tools: [weather]
    params:
      system: You forecast the weather.
      rules:
        - {when: first, call: {tool: weather, arguments: {city: "{{input}}"}}}
        - {when: after_tool, match: "Atlantis", reply: "cannot: {{tool.weather.error}}"}
        - {when: after_tool, reply: "{{tool.weather.city}} is {{tool.weather.temp_c}} C"}
  weather:
    kind: test.weather
  out:
    kind: test.collect
edges:
  - paris -> forecaster
  - lost -> forecaster
  - forecaster -> out
)");
  INFO(r.error);
  REQUIRE(r.result == local::run_report::outcome::ok);
  auto got = f.texts();
  std::sort(got.begin(), got.end());
  CHECK(got == std::vector<std::string>{"Paris is 21.5 C", "cannot: no such city"});
  for (const auto& v : f.sink->snapshot()) CHECK(v.find("tool_calls")->as_int() == 1);
}

TEST_CASE("a planner's tasks fan out to workers and a writer gathers their work" * doctest::timeout(30)) {
  fixture f;
  auto r = f.run(R"(
nodes:
  brief:
    kind: source.value
    params: {value: "weather report for Paris and Oslo"}
  planner:
    kind: agent.llm
    params:
      rules:
        - reply: '{"tasks": [{"role": "paris", "task": "Paris"}, {"role": "oslo", "task": "Oslo"}]}'
  worker:
    kind: agent.llm
    replicas: 2
    tools: [weather]
    params:
      rules:
        - {when: first, call: {tool: weather, arguments: {city: "{{input}}"}}}
        - {when: after_tool, reply: "{{tool.weather.city}}: {{tool.weather.temp_c|int}} C"}
  team:
    kind: flow.gather
    params: {count: 2}
  writer:
    kind: agent.llm
    params:
      rules:
        - {match: "re:## \\w+\\n\\w+: \\d+ C", reply: "REPORT\n{{input}}"}
  weather:
    kind: test.weather
  out:
    kind: test.collect
edges:
  - brief -> planner
  - planner.tasks -> worker -> team -> writer -> out
)");
  INFO(r.error);
  REQUIRE(r.result == local::run_report::outcome::ok);
  auto got = f.texts();
  REQUIRE(got.size() == 1);
  // The workers run in parallel, so the sections come in either order.
  bool paris_first = got[0].find("Paris") < got[0].find("Oslo");
  auto paris = std::string("## worker\nParis: 22 C"), oslo = std::string("## worker\nOslo: 9 C");
  CHECK(got[0] == "REPORT\n" + (paris_first ? paris + "\n\n" + oslo : oslo + "\n\n" + paris));
}

TEST_CASE("an agent holds a thread of its own only when its backend waits on the network") {
  fixture f;
  graph::diagnostics d;
  auto g = graph::load_graph_text(R"(
graph: threads
nodes:
  src: {kind: source.sequence, params: {count: 1}}
  scripted: {kind: agent.llm}
  remote: {kind: agent.llm, params: {backend: http}}
  out: {kind: sink.count}
edges:
  - src -> scripted
  - scripted -> remote
  - remote -> out
)",
                                  "threads.yaml", d);
  INFO(d.str());
  REQUIRE(g.has_value());
  graph::validate(*g, f.kinds, d);
  REQUIRE_FALSE(d.has_errors());
  graph::apply_defaults(*g, f.kinds);
  ::unsetenv("LOOM_LLM_BASE_URL");
  auto x = local::expand(*g, f.kinds);
  auto blocking = [&](const std::string& node) {
    for (const auto& i : x.instances)
      if (i.init.name == node) return i.blocking;
    FAIL("no node " << node);
    return false;
  };
  CHECK_FALSE(blocking("scripted"));  // answers from its rules at once: the shared scheduler runs it
  CHECK(blocking("remote"));          // waits on a model server: its own thread
  CHECK_FALSE(blocking("src"));
  ::setenv("LOOM_LLM_BASE_URL", "http://127.0.0.1:9/v1", 1);  // every agent.llm talks to a server now
  auto y = local::expand(*g, f.kinds);
  ::unsetenv("LOOM_LLM_BASE_URL");
  for (const auto& i : y.instances)
    if (i.kind == "agent.llm") CHECK(i.blocking);
}
