// tests/tools/schema_test.cpp: every tool kind declares a call, and its JSON schema (what an agent offers its
// model) names its arguments and the required ones.
#include <doctest/doctest.h>

#include "loom/runtime/schema.hpp"
#include "tests/actors/harness.hpp"

using namespace loom;

TEST_CASE("each tool's call_spec produces a schema naming its arguments" * doctest::timeout(10)) {
  struct want {
    const char* kind;
    std::vector<std::string> arguments;
    std::vector<std::string> required;
  };
  for (const auto& w : {want{"tool.calculator", {"expression"}, {"expression"}},
                        want{"tool.retrieve", {"query", "top_k"}, {"query"}},
                        want{"tool.monte_carlo",
                             {"days", "customers_per_day", "customers_sd", "avg_ticket", "ticket_sd",
                              "fixed_costs_per_month", "cost_of_goods", "samples", "seed"},
                             {}}}) {
    CAPTURE(w.kind);
    const auto* spec = test::builtins().find_kind(w.kind);
    REQUIRE(spec != nullptr);
    REQUIRE(spec->call.has_value());
    auto s = tool_schema("my_tool", *spec->call);
    CHECK(s["type"] == "function");
    CHECK(s["function"]["name"] == "my_tool");
    CHECK(!s["function"]["description"].get<std::string>().empty());
    const auto& params = s["function"]["parameters"];
    std::vector<std::string> names;
    for (const auto& [k, v] : params["properties"].items()) {
      names.push_back(k);
      CHECK(v.contains("type"));
      CHECK(v.contains("description"));
    }
    CHECK(names == w.arguments);
    std::vector<std::string> required;
    if (params.contains("required")) required = params["required"].get<std::vector<std::string>>();
    CHECK(required == w.required);
  }
}

TEST_CASE("the kernel kinds ask for a GPU and fall back to the cpu" * doctest::timeout(10)) {
  for (const char* kind : {"kernel.gemm", "tool.monte_carlo"}) {
    CAPTURE(kind);
    const auto* spec = test::builtins().find_kind(kind);
    REQUIRE(spec != nullptr);
    CHECK(spec->resources.gpus == 1);
    CHECK(spec->resources.cpu_fallback);
    CHECK(spec->find_param("device") != nullptr);
  }
}
