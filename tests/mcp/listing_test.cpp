// tests/mcp/listing_test.cpp: the contract between an agent and a node that lists its tools at run time
// (call_spec::lists_tools, as tool.mcp declares it), with a fake listing tool and no MCP at all: the agent
// asks for the list at the start of each task, offers NODE__TOOL with the listed schema, and sends the
// model's call as {tool, arguments} to the node.
#include <doctest/doctest.h>

#include "loom/actors/agents/agent_loop.hpp"
#include "tests/agents/agent_harness.hpp"

using loom::value;
using loom::value_list;
using loom::value_map;
using loom::agents::chat_message;
using loom::agents::chat_reply;
using loom::agents::tool_call;
using namespace loom::test;
using ojson = nlohmann::ordered_json;

namespace {

class scripted_model final : public loom::agents::backend {
 public:
  explicit scripted_model(std::vector<chat_reply> r) : replies_(std::move(r)) {}
  chat_reply complete(const std::vector<chat_message>& messages, const ojson& tools) override {
    seen.push_back(messages);
    tools_seen.push_back(tools);
    if (next_ >= replies_.size()) throw std::runtime_error("no more replies");
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

// A node offering `read.file` and `stat` (listed), like tool.mcp.
loom::graph::kind_spec listing_spec() {
  using loom::graph::param_spec;
  auto spec = tool_spec("Calls one tool of a server.",
                        {param_spec::string("tool", "the tool"),
                         param_spec::map("arguments", "its arguments").def(loom::graph::config(loom::graph::config_map{}))});
  spec.call->lists_tools = true;
  return spec;
}

value listing_reply(int listed) {
  value_list tools;
  value schema{value_map{{"type", "object"}, {"required", value{value_list{value{"path"}}}}}};
  tools.emplace_back(value_map{{"name", "read.file"}, {"description", "Reads a file."}, {"input_schema", schema}});
  if (listed > 1) tools.emplace_back(value_map{{"name", "stat"}, {"description", "Stats a file."}});
  return value{value_map{{"tools", std::move(tools)}}};
}

}  // namespace

TEST_CASE("an agent offers a listing node's tools as NODE__TOOL and calls them as {tool, arguments}") {
  scripted_model model({chat_reply{"", {call("c1", "fs__read_file", {{"path", "a.txt"}})}}, chat_reply{"done", {}}});
  tool_context ctx{2};
  int lists = 0;
  std::vector<value> calls;
  ctx.add_tool("fs", listing_spec(), [&](const value& r) {
    if (r.find("tool") == nullptr) return listing_reply(++lists);
    calls.push_back(r);
    return value{value_map{{"text", "contents of a.txt"}}};
  });
  loom::agents::agent_loop loop(model, {6, std::chrono::milliseconds(1000)});
  std::vector<std::string> answers;
  loop.start(ctx, {{"user", "read a.txt", {}, {}}},
             [&](loom::context&, loom::agents::loop_result r) { answers.push_back(r.text); });
  REQUIRE(answers == std::vector<std::string>{"done"});
  CHECK(lists == 1);
  const ojson& tools = model.tools_seen.at(0);
  REQUIRE(tools.size() == 1);
  CHECK(tools[0]["function"]["name"] == "fs__read_file");
  CHECK(tools[0]["function"]["description"] == "Reads a file.");
  CHECK(tools[0]["function"]["parameters"]["required"][0] == "path");
  REQUIRE(calls.size() == 1);
  CHECK(calls[0].find("tool")->as_string() == "read.file");
  CHECK(calls[0].find("arguments")->find("path")->as_string() == "a.txt");
  // The reply went back to the model as the tool message.
  CHECK(model.seen.at(1).back().content.find("contents of a.txt") != std::string::npos);

  // The next task lists again and sees the changed list; the node's own name is not a tool.
  scripted_model model2({chat_reply{"", {call("c2", "fs", {}), call("c3", "fs__stat", {})}}, chat_reply{"ok", {}}});
  loom::agents::agent_loop loop2(model2, {6, std::chrono::milliseconds(1000)});
  loop2.start(ctx, {{"user", "again", {}, {}}}, [&](loom::context&, loom::agents::loop_result r) { answers.push_back(r.text); });
  CHECK(lists == 2);
  CHECK(model2.tools_seen.at(0).size() == 2);
  CHECK(model2.seen.at(1)[2].content.find("unknown tool `fs`; the tools are: fs__read_file, fs__stat") != std::string::npos);
  CHECK(calls.back().find("tool")->as_string() == "stat");
}

TEST_CASE("a listing node that fails to list offers no tools; the task goes on") {
  scripted_model model({chat_reply{"no tools today", {}}});
  tool_context ctx{2};
  ctx.add_tool("fs", listing_spec(), [](const value&) -> value { throw std::runtime_error("server down"); });
  loom::agents::agent_loop loop(model, {6, std::chrono::milliseconds(1000)});
  std::vector<std::string> answers;
  loop.start(ctx, {{"user", "x", {}, {}}}, [&](loom::context&, loom::agents::loop_result r) { answers.push_back(r.text); });
  CHECK(answers == std::vector<std::string>{"no tools today"});
  CHECK(model.tools_seen.at(0).empty());
}
