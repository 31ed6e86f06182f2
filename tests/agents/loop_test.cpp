// Tests of the agent loop (actors/agents/agent_loop.hpp) with a backend that records what the model was
// sent and answers from a list: tool calls go through the context, their replies and errors come back to the
// model as `tool` messages in order, whether replies come at once or later and in any order.
#include <doctest/doctest.h>

#include <functional>

#include "loom/actors/agents/agent_loop.hpp"
#include "tests/agents/agent_harness.hpp"

using loom::value;
using loom::value_map;
using loom::agents::chat_message;
using loom::agents::chat_reply;
using loom::agents::tool_call;
using namespace loom::test;
using ojson = nlohmann::ordered_json;

namespace {

// Answers with `replies` in turn and records every request.
class recorded_backend final : public loom::agents::backend {
 public:
  explicit recorded_backend(std::vector<chat_reply> replies) : replies_(std::move(replies)) {}
  chat_reply complete(const std::vector<chat_message>& messages, const ojson& tools) override {
    seen.push_back(messages);
    tools_seen.push_back(tools);
    if (next_ >= replies_.size()) throw std::runtime_error("the model has nothing more to say");
    return replies_[next_++];
  }
  std::vector<std::vector<chat_message>> seen;
  std::vector<ojson> tools_seen;

 private:
  std::vector<chat_reply> replies_;
  std::size_t next_ = 0;
};

tool_call call(std::string id, std::string name, ojson args) {
  tool_call c{std::move(id), std::move(name), std::move(args), {}, {}};
  c.raw_arguments = c.arguments.dump();
  return c;
}

void add_calc(tool_context& ctx) {
  using loom::graph::param_spec;
  ctx.add_tool("calc", tool_spec("Adds a and b.", {param_spec::integer("a", "first").require(),
                                                   param_spec::integer("b", "second").def(0)}),
               [](const value& r) {
                 if (r.find("a")->as_int() < 0) throw std::runtime_error("negative input");
                 return value{r.find("a")->as_int() + r.find("b")->as_int()};
               });
}

using replies = std::vector<chat_reply>;

struct run {
  recorded_backend model;
  tool_context ctx{2};
  loom::agents::agent_loop loop;
  std::vector<loom::agents::loop_result> results;

  explicit run(std::vector<chat_reply> replies, int max_turns = 6)
      : model(std::move(replies)), loop(model, {max_turns, std::chrono::milliseconds(1234)}) {
    add_calc(ctx);
  }
  void start(std::string user = "task") {
    loop.start(ctx, {{"system", "be brief", {}, {}}, {"user", std::move(user), {}, {}}},
               [this](loom::context&, loom::agents::loop_result r) { results.push_back(std::move(r)); });
  }
  // The tool messages of the model's request `i`, as (tool_call_id, content).
  std::vector<std::pair<std::string, std::string>> tool_messages(std::size_t i) {
    std::vector<std::pair<std::string, std::string>> out;
    for (const auto& m : model.seen.at(i))
      if (m.role == "tool") out.emplace_back(m.tool_call_id, m.content);
    return out;
  }
};

}  // namespace

TEST_SUITE("agent loop" * doctest::timeout(10)) {
  TEST_CASE("the model is offered the node's tools, with schemas from their call specs") {
    run r(replies{{"done", {}}});
    r.start();
    REQUIRE(r.results.size() == 1);
    CHECK(r.results[0].text == "done");
    REQUIRE(r.model.tools_seen[0].size() == 1);
    CHECK(r.model.tools_seen[0][0]["function"]["name"] == "calc");
    CHECK(r.model.tools_seen[0][0]["function"]["description"] == "Adds a and b.");
    CHECK(r.model.tools_seen[0][0]["function"]["parameters"]["required"] == ojson::array({"a"}));
    REQUIRE(r.model.seen[0].size() == 2);
    CHECK(r.model.seen[0][0].role == "system");
    CHECK(r.model.seen[0][1].content == "task");
  }

  TEST_CASE("tool results go back to the model in the order of its calls, then it answers") {
    for (bool queued : {false, true}) {
      for (bool reverse : {false, true}) {
        CAPTURE(queued);
        CAPTURE(reverse);
        run r(replies{{"", {call("c1", "calc", {{"a", 1}, {"b", 2}}), call("c2", "calc", {{"a", 10}})}}, {"thirteen", {}}});
        r.ctx.queue_calls = queued;
        r.start();
        if (queued) {
          CHECK(r.results.empty());
          CHECK(r.loop.busy());
          r.ctx.run_queued(reverse);
        }
        REQUIRE(r.results.size() == 1);
        CHECK_FALSE(r.loop.busy());
        CHECK(r.results[0].text == "thirteen");
        CHECK(r.results[0].tool_calls == 2);
        REQUIRE(r.model.seen.size() == 2);
        const auto& second = r.model.seen[1];
        REQUIRE(second.size() == 5);
        CHECK(second[2].role == "assistant");
        CHECK(second[2].tool_calls.size() == 2);
        CHECK(r.tool_messages(1) == std::vector<std::pair<std::string, std::string>>{{"c1", "3"}, {"c2", "10"}});
        CHECK(r.ctx.timeouts == std::vector<std::chrono::milliseconds>(2, std::chrono::milliseconds(1234)));
      }
    }
  }

  TEST_CASE("a failed call, an unknown tool and malformed arguments reach the model as errors") {
    tool_call bad = call("c4", "calc", {});
    bad.arguments_error = "malformed arguments (not JSON): {a:";
    run r(replies{{"", {call("c1", "calc", {{"a", -1}}), call("c2", "nope", {}), call("c3", "calc", {{"a", "x"}}), bad}},
           {"sorry", {}}});
    r.start();
    REQUIRE(r.results.size() == 1);
    CHECK(r.results[0].text == "sorry");
    CHECK(r.results[0].tool_calls == 4);
    CHECK(r.ctx.calls_made == 2);  // the unknown tool and the malformed call never reach the context
    auto tools = r.tool_messages(1);
    REQUIRE(tools.size() == 4);
    CHECK(tools[0].second == R"({"error":"negative input"})");
    CHECK(tools[1].second == R"({"error":"unknown tool `nope`; the tools are: calc"})");
    CHECK(tools[2].second == R"({"error":"argument `a`: expected integer, found string"})");
    CHECK(tools[3].second == R"({"error":"malformed arguments (not JSON): {a:"})");
  }

  TEST_CASE("after max_turns rounds the model's next request for tools ends the task") {
    run r(replies{{"", {call("c1", "calc", {{"a", 1}})}}, {"", {call("c2", "calc", {{"a", 2}})}},
           {"partial", {call("c3", "calc", {{"a", 3}})}}},
          2);
    r.start();
    REQUIRE(r.results.size() == 1);
    CHECK(r.results[0].text ==
          "partial\n\n[stopped: the model still asked for tools after 2 rounds of tool calls (max_turns)]");
    CHECK(r.results[0].tool_calls == 2);
    CHECK(r.ctx.calls_made == 2);
  }

  TEST_CASE("a backend error propagates and the loop takes the next task") {
    run r(replies{{"", {call("c1", "calc", {{"a", 1}})}}});
    r.ctx.queue_calls = true;
    r.start();
    CHECK_THROWS_WITH(r.ctx.run_queued(), "the model has nothing more to say");
    CHECK_FALSE(r.loop.busy());
  }

  TEST_CASE("a reply that arrives after the loop is gone is dropped") {
    tool_context ctx(2);
    add_calc(ctx);
    ctx.queue_calls = true;
    {
      recorded_backend model(replies{{"", {call("c1", "calc", {{"a", 1}})}}});
      loom::agents::agent_loop loop(model, {});
      loop.start(ctx, {{"user", "x", {}, {}}}, [](loom::context&, loom::agents::loop_result) { FAIL("finished"); });
    }
    ctx.run_queued();
  }
}

TEST_SUITE("agent.llm with tools" * doctest::timeout(10)) {
  TEST_CASE("the node emits its result from the callback of its last tool reply") {
    agent_under_test a({{"rules", rules({call_rule("", "calc", {{"a", 2}, {"b", 3}}, "first"),
                                         reply_rule("", "sum={{tool.calc}}", "after_tool")})}});
    add_calc(a.ctx);
    a.ctx.queue_calls = true;
    a.send(value{"add"});
    CHECK(a.out().empty());
    a.ctx.run_queued();
    REQUIRE(a.out().size() == 1);
    CHECK(a.text() == "sum=5");
    CHECK(a.field("tool_calls").as_int() == 1);
  }

  TEST_CASE("a tool error reaches the scripted model as its result") {
    agent_under_test a({{"rules", rules({call_rule("", "calc", {{"a", -5}}, "first"),
                                         reply_rule("", "got {{tool.calc.error}}", "after_tool")})}});
    add_calc(a.ctx);
    a.send(value{"add"});
    CHECK(a.text() == "got negative input");
  }

  TEST_CASE("the node's tool timeout is the tool_timeout_ms param") {
    agent_under_test a({{"rules", rules({call_rule("", "calc", {{"a", 1}}, "first"), reply_rule("", "ok", "after_tool")})},
                        {"tool_timeout_ms", 777}});
    add_calc(a.ctx);
    a.send(value{"x"});
    CHECK(a.ctx.timeouts == std::vector<std::chrono::milliseconds>{std::chrono::milliseconds(777)});
  }
}
