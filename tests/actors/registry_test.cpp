// Tests of the built-ins as a whole: every kind registers, with the ports and params the docs promise.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "tests/actors/harness.hpp"

using loom::graph::param_type;

TEST_CASE("register_builtins adds every built-in kind" * doctest::timeout(10)) {
  CHECK(loom::test::builtins().kind_names() ==
        std::vector<std::string>{"agent.llm", "flow.batch", "flow.call", "flow.forward", "flow.gather", "flow.jq",
                                 "flow.router", "flow.throttle", "flow.vote", "human.approve", "kernel.gemm", "sink.count", "sink.file", "sink.stdout",
                                 "source.blob", "source.file", "source.sequence", "source.value", "tool.calculator",
                                 "tool.mcp", "tool.monte_carlo", "tool.retrieve"});
}

TEST_CASE("sources have only an out port, sinks only an in port, tools none; an arbiter inputs a..e" *
          doctest::timeout(10)) {
  for (const auto& name : loom::test::builtins().kind_names()) {
    CAPTURE(name);
    const auto& spec = *loom::test::builtins().find_kind(name);
    if (name.starts_with("tool.")) {  // tools are called, not wired: no ports, a call
      CHECK((spec.inputs.empty() && spec.outputs.empty() && spec.call.has_value()));
      continue;
    }
    bool source = name.starts_with("source."), sink = name.starts_with("sink.");
    // agent.llm: out, tasks; flow.call: out, errors; flow.vote: out, disagree; human.approve: out, rejected
    bool two = name == "agent.llm" || name == "flow.call" || name == "flow.vote" || name == "human.approve";
    CHECK(spec.outputs.size() == (sink ? 0u : two ? 2u : 1u));
    if (name == "flow.vote") {  // one input per branch
      CHECK(spec.inputs.size() == 5u);
      CHECK(spec.inputs[0].name == "a");
      continue;
    }
    CHECK(spec.inputs.size() == (source ? 0u : 1u));
    if (!source) CHECK(spec.inputs[0].name == "in");
    CHECK_FALSE(spec.doc.empty());
  }
}

TEST_CASE("params declare their types, defaults, bounds and choices" * doctest::timeout(10)) {
  const auto& r = loom::test::builtins();
  const auto* count = r.find_kind("source.sequence")->find_param("count");
  REQUIRE(count != nullptr);
  CHECK(count->type == param_type::integer);
  CHECK(count->default_value == loom::graph::config(10));
  CHECK(count->min == 0.0);

  const auto* size = r.find_kind("source.blob")->find_param("size");
  REQUIRE(size != nullptr);
  CHECK(size->max == 1073741824.0);

  const auto* rate = r.find_kind("flow.throttle")->find_param("rate");
  REQUIRE(rate != nullptr);
  CHECK(rate->type == param_type::floating);
  CHECK(rate->required);

  const auto* format = r.find_kind("sink.file")->find_param("format");
  REQUIRE(format != nullptr);
  CHECK(format->choices == std::vector<std::string>{"jsonl", "text"});

  const auto* expect = r.find_kind("sink.count")->find_param("expect");
  REQUIRE(expect != nullptr);
  CHECK_FALSE(expect->required);
  CHECK_FALSE(expect->default_value.has_value());

  CHECK(r.find_kind("source.value")->find_param("value")->type == param_type::any);
  CHECK(r.find_kind("flow.router")->find_param("routes")->type == param_type::map);
}
