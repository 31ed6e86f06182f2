// Tests of agent.llm's scripted backend, through the kind: which rule answers, templates, tool calls and
// their results in replies, the tasks a planner emits, and how each kind of input becomes the user message.
#include <doctest/doctest.h>

#include "loom/actors/agents/backend.hpp"
#include "tests/agents/agent_harness.hpp"

using loom::value;
using loom::value_list;
using loom::value_map;
using loom::graph::config_map;
using namespace loom::test;

namespace {

// A weather tool: {city} -> {city, temp_c, wind: {kph}}.
void add_weather(tool_context& ctx) {
  using loom::graph::param_spec;
  ctx.add_tool("weather", tool_spec("Current weather in a city.", {param_spec::string("city", "the city").require()}),
               [](const value& req) {
                 return value{value_map{{"city", req.find("city")->as_string()},
                                        {"temp_c", 21.456},
                                        {"wind", value_map{{"kph", 12}}}}};
               });
}

}  // namespace

TEST_SUITE("agent.llm scripted" * doctest::timeout(10)) {
  TEST_CASE("the first matching rule answers; matching ignores case") {
    agent_under_test a({{"rules", rules({reply_rule("HELLO", "hi there"), reply_rule("hello", "second"),
                                         reply_rule("", "fallback")})}});
    a.send(value{"well, Hello world"});
    a.send(value{"something else"});
    REQUIRE(a.out().size() == 2);
    CHECK(a.text(0) == "hi there");
    CHECK(a.text(1) == "fallback");
    CHECK(a.field("agent").as_string() == "agent");
    CHECK(a.field("role").as_string() == "agent");  // no role param: the node name
    CHECK(a.field("task").as_string() == "well, Hello world");
    CHECK(a.field("tool_calls").as_int() == 0);
  }

  TEST_CASE("re: rules search a regex in the message") {
    agent_under_test a({{"rules", rules({reply_rule("re:^sum [0-9]+$", "a sum"), reply_rule("", "other")})},
                        {"role", "math"}});
    a.send(value{"sum 42"});
    a.send(value{"sum 42 please"});
    CHECK(a.text(0) == "a sum");
    CHECK(a.text(1) == "other");
    CHECK(a.field("role").as_string() == "math");
  }

  TEST_CASE("templates fill the input and the role") {
    agent_under_test a({{"rules", rules({reply_rule("", "[{{role}}] you said: {{ input }}")})}, {"role", "echo"}});
    a.send(value{"ping"});
    CHECK(a.text() == "[echo] you said: ping");
  }

  TEST_CASE("no matching rule is an error naming the node and the message") {
    agent_under_test a({{"rules", rules({reply_rule("weather", "sunny")})}}, "forecaster");
    CHECK_THROWS_WITH_AS(a.send(value{"what is the time"}),
                         "agent.llm `forecaster`: no scripted rule matched the message \"what is the time\"",
                         std::runtime_error);
  }

  TEST_CASE("a malformed rule is refused when the node is built, naming the rule and field") {
    auto build = [](loom::graph::config r) { agent_under_test a({{"rules", rules({reply_rule("", "ok"), r})}}); };
    CHECK_THROWS_WITH(build(reply_rule("", "x", "sometimes")),
                      doctest::Contains("rules[1].when: expected `first` or `after_tool`"));
    CHECK_THROWS_WITH(build(loom::graph::config(config_map{{"match", "x"}})),
                      doctest::Contains("rules[1]: needs exactly one of `reply` and `call`"));
    CHECK_THROWS_WITH(build(loom::graph::config(config_map{{"reply", "x"}, {"answer", "y"}})),
                      doctest::Contains("rules[1].answer: unknown field"));
    CHECK_THROWS_WITH(build(loom::graph::config(config_map{{"call", config_map{{"arguments", config_map{}}}}})),
                      doctest::Contains("rules[1].call: expected a map {tool: NAME"));
    CHECK_THROWS_WITH(build(reply_rule("re:([", "x")), doctest::Contains("rules[1].match: bad regex"));
    // std::regex compiles by recursion: a pattern longer than 4096 characters is refused before that.
    CHECK_THROWS_WITH(build(reply_rule("re:" + std::string(100000, 'a'), "x")),
                      doctest::Contains("rules[1].match: a regex of 100000 characters; at most 4096"));
    CHECK_THROWS_WITH(build(reply_rule("", "{{tools.x}}")), doctest::Contains("rules[1].reply: {{tools.x}}: expected"));
    CHECK_THROWS_WITH(build(reply_rule("", "{{input|upper}}")), doctest::Contains("the only filter is |int"));
    CHECK_THROWS_WITH(build(loom::graph::config(42)), doctest::Contains("rules[1]: expected a map"));
    CHECK_THROWS_WITH(build(reply_rule("", "{{input")), doctest::Contains("without a closing"));
  }

  TEST_CASE("a rule calls a tool, and the reply after it uses the tool's result") {
    agent_under_test a({{"rules", rules({call_rule("weather", "weather", {{"city", "{{input}}"}}, "first"),
                                         reply_rule("", "{{tool.weather.city}}: {{tool.weather.temp_c}} C "
                                                        "({{tool.weather.temp_c|int}}), wind {{tool.weather.wind.kph}}; "
                                                        "raw {{tool.weather.wind}}",
                                                    "after_tool")})}});
    add_weather(a.ctx);
    a.send(value{"weather Paris"});
    REQUIRE(a.out().size() == 1);
    CHECK(a.text() == "weather Paris: 21.456 C (21), wind 12; raw {\"kph\":12}");
    CHECK(a.field("tool_calls").as_int() == 1);
    REQUIRE(a.ctx.table["weather"].requests.size() == 1);
    CHECK(a.ctx.table["weather"].requests[0] == value{value_map{{"city", "weather Paris"}}});
  }

  TEST_CASE("numbers in templates keep full precision and are never grouped") {
    using loom::graph::param_spec;
    agent_under_test a({{"rules", rules({call_rule("", "stats", {}, "first"),
                                         reply_rule("", "{{tool.stats.big}} {{tool.stats.half}} {{tool.stats.whole}} "
                                                        "{{tool.stats.neg|int}} {{tool.stats.list.1}} {{tool.stats.list[0]}} "
                                                        "{{tool.stats.third}} {{tool.stats.id}} {{tool.stats}}",
                                                    "after_tool")})}});
    a.ctx.add_tool("stats", tool_spec("stats", {}), [](const value&) {
      return value{value_map{{"big", 1234567.891}, {"half", 0.5}, {"whole", 3.0}, {"neg", -2.6},
                             {"list", value_list{value{"a"}, value{"b"}}}, {"third", 1.0 / 3},
                             {"id", std::int64_t{1234567890123456789}}}};
    });
    a.send(value{"go"});
    CHECK(a.text() ==
          "1234567.891 0.5 3 -3 b a 0.3333333333333333 1234567890123456789 {\"big\":1234567.891,\"half\":0.5,"
          "\"whole\":3.0,\"neg\":-2.6,\"list\":[\"a\",\"b\"],\"third\":0.3333333333333333,\"id\":1234567890123456789}");
  }

  TEST_CASE("{{input.PATH}} reads fields of the input value, a 19-digit integer and 1/3 unchanged") {
    agent_under_test a({{"rules", rules({call_rule("", "weather", {{"city", "{{input.place.city}}"}}, "first"),
                                         reply_rule("", "{{input.id}} {{input.ratio}} {{input.items[1]}} "
                                                        "{{input.items}} {{input.place.city}}={{tool.weather.temp_c}}",
                                                    "after_tool")})}});
    add_weather(a.ctx);
    a.send(value{value_map{{"id", std::int64_t{1234567890123456789}},
                           {"ratio", 1.0 / 3},
                           {"items", value_list{value{"x"}, value{2.5}}},
                           {"place", value{value_map{{"city", "Oslo"}}}}}});
    CHECK(a.text() == "1234567890123456789 0.3333333333333333 2.5 [\"x\",2.5] Oslo=21.456");
    CHECK(a.ctx.table["weather"].requests[0] == value{value_map{{"city", "Oslo"}}});
  }

  TEST_CASE("a string input that is JSON has fields too; {{input}} stays the user message") {
    agent_under_test a({{"rules", rules({reply_rule("", "{{input.n}} of [{{input}}]")})}});
    a.send(value{"{\"n\": 12345678901234567}"});
    CHECK(a.text() == "12345678901234567 of [{\"n\": 12345678901234567}]");
  }

  TEST_CASE("a path the input does not have is an error naming the rule, the step and the input") {
    agent_under_test a({{"rules", rules({reply_rule("", "{{input.items[3]}}")})}});
    CHECK_THROWS_WITH(a.send(value{value_map{{"items", value_list{value{1}}}}}),
                      doctest::Contains("scripted rules[0]: {{input.items[3]}}: no field `[3]` in the input: {\"items\":[1]}"));
  }

  TEST_CASE("a malformed path is refused when the node is built") {
    auto build = [](std::string t) { agent_under_test a({{"rules", rules({reply_rule("", t)})}}); };
    CHECK_THROWS_WITH(build("{{input.}}"), doctest::Contains("rules[0].reply: {{input.}}: an empty field name"));
    CHECK_THROWS_WITH(build("{{input.a[x]}}"), doctest::Contains("an index must be a number, e.g. [0] at `[x]`"));
    CHECK_THROWS_WITH(build("{{input.a[1}}"), doctest::Contains("`[` without `]`"));
    CHECK_THROWS_WITH(build("{{input.a..b}}"), doctest::Contains("an empty field name"));
    CHECK_THROWS_WITH(build("{{tool.x.}}"), doctest::Contains("an empty field name"));
    CHECK_NOTHROW(build("{{input.a.b[0][1].c}} {{tool.x[0].y}}"));
  }

  TEST_CASE("validation checks {{input.PATH}} against the inputs the node is known to get") {
    auto problems = loom::agents::check_scripted_rules(
        loom::to_value(rules({reply_rule("", "{{input.id}} {{input.items[0]}}"), reply_rule("", "{{input.name}}")})),
        [](const std::string&) { return true; }, {value{value_map{{"id", 1}, {"items", value_list{value{"x"}}}}}});
    REQUIRE(problems.size() == 1);
    CHECK(problems[0].path == std::vector<std::string>{"1", "reply"});
    CHECK(problems[0].message.find("rules[1].reply: {{input.name}}: no field `name` in the input this node gets") == 0);
    CHECK(loom::agents::check_scripted_rules(loom::to_value(rules({reply_rule("", "{{input.name}}")})),
                                             [](const std::string&) { return true; })
              .empty());  // inputs not known: not checked
  }

  TEST_CASE("a template naming a missing field is an error naming the rule") {
    agent_under_test a({{"rules", rules({call_rule("", "weather", {{"city", "x"}}, "first"),
                                         reply_rule("", "{{tool.weather.humidity}}", "after_tool")})}});
    add_weather(a.ctx);
    CHECK_THROWS_WITH(a.send(value{"go"}), doctest::Contains("scripted rules[1]: {{tool.weather.humidity}}: no field "
                                                             "`humidity` in the result of tool `weather`"));
  }

  TEST_CASE("max_turns bounds the rounds of tool calls") {
    agent_under_test a({{"rules", rules({call_rule("", "weather", {{"city", "Oslo"}})})}, {"max_turns", 3}});
    add_weather(a.ctx);
    a.send(value{"loop forever"});
    REQUIRE(a.out().size() == 1);
    CHECK(a.field("tool_calls").as_int() == 3);
    CHECK(a.ctx.calls_made == 3);
    CHECK(a.text() == "[stopped: the model still asked for tools after 3 rounds of tool calls (max_turns)]");
  }

  TEST_CASE("a planner's JSON answer becomes one value per task on `tasks`") {
    agent_under_test a(
        {{"rules", rules({reply_rule("plan",
                                     "Here is the plan:\n```json\n{\"tasks\": [{\"role\": \"researcher\", \"task\": "
                                     "\"find facts\"}, {\"role\": \"writer\", \"task\": \"write it\"}, \"review\"]}\n```"),
                          reply_rule("list", "[\"a\", {\"task\": \"b\"}]"), reply_rule("", "no tasks here")})}});
    a.send(value{"plan the report"});
    REQUIRE(a.out(1).size() == 3);
    CHECK(a.out(1)[0] == value{value_map{{"role", "researcher"}, {"task", "find facts"}}});
    CHECK(a.out(1)[1] == value{value_map{{"role", "writer"}, {"task", "write it"}}});
    CHECK(a.out(1)[2] == value{value_map{{"role", ""}, {"task", "review"}}});
    a.send(value{"a list"});
    REQUIRE(a.out(1).size() == 5);
    CHECK(a.out(1)[3] == value{value_map{{"role", ""}, {"task", "a"}}});
    CHECK(a.out(1)[4] == value{value_map{{"role", ""}, {"task", "b"}}});
    a.send(value{"prose"});
    CHECK(a.out(1).size() == 5);
    CHECK(a.out(0).size() == 3);
  }

  TEST_CASE("tasks are not emitted when the tasks port is not connected") {
    agent_under_test a({{"rules", rules({reply_rule("", "[\"a\", \"b\"]")})}});
    a.ctx.wired[1] = false;
    a.send(value{"plan"});
    CHECK(a.out(1).empty());
    CHECK(a.out(0).size() == 1);
  }

  TEST_CASE("a map's task is the user message; the rest of the map is context for the model") {
    agent_under_test a({{"rules", rules({reply_rule("", "did: {{input}}")})}, {"system", "You are terse."}});
    a.send(value{value_map{{"role", "researcher"}, {"task", "find facts"}}});
    CHECK(a.field("task").as_string() == "find facts");
    CHECK(a.text() == "did: find facts");
    a.send(value{value_map{{"text", "from text"}, {"source", "wiki"}}});
    CHECK(a.field("task", 1).as_string() == "from text");
    a.send(value{value_map{{"prompt", "from prompt"}}});
    CHECK(a.field("task", 2).as_string() == "from prompt");
  }

  TEST_CASE("a list (a team's gathered work) becomes one message of sections") {
    agent_under_test a({{"rules", rules({reply_rule("", "{{input}}")})}}, "writer");
    a.send(value{value_list{value{value_map{{"agent", "alice"}, {"role", "research"}, {"text", "facts"}}},
                            value{value_map{{"role", "critic"}, {"text", "too long"}}}, value{"loose note"}}});
    CHECK(a.text() == "## alice\nfacts\n\n## critic\ntoo long\n\n## part 3\nloose note");
    CHECK(a.field("agent").as_string() == "writer");
  }
}
