// Tests of agent.llm's http backend against a chat-completions server the test runs on 127.0.0.1 (never any
// other address): plain replies, a tool round trip, streamed content and tool calls, retries on 5xx and 429,
// no retry on other 4xx, timeouts, malformed bodies, the API key from an environment variable, and the
// LOOM_LLM_BASE_URL switch.
#include <doctest/doctest.h>
#include <httplib.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdlib>
#include <mutex>
#include <thread>

#include "loom/actors/agents/backend.hpp"
#include "tests/agents/agent_harness.hpp"
#include "tests/agents/chat_server.hpp"
#include "tests/support/graph_runner.hpp"

using loom::value;
using loom::value_list;
using loom::value_map;
using loom::agents::chat_message;
using loom::agents::http_options;
using loom::agents::make_http_backend;
using namespace loom::test;
using ojson = nlohmann::ordered_json;

namespace {

http_options options(const chat_server& s) {
  http_options o;
  o.base_url = s.base_url();
  o.model = "test-model";
  o.timeout = std::chrono::milliseconds(5000);
  o.backoff = std::chrono::milliseconds(1);
  return o;
}

std::vector<chat_message> hello() { return {{"system", "be brief", {}, {}}, {"user", "hello", {}, {}}}; }

void add_calc(tool_context& ctx) {
  using loom::graph::param_spec;
  ctx.add_tool("calc", tool_spec("Adds a and b.", {param_spec::integer("a", "first").require(),
                                                   param_spec::integer("b", "second").def(0)}),
               [](const value& r) { return value{r.find("a")->as_int() + r.find("b")->as_int()}; });
}

// Sets an environment variable for one scope.
class scoped_env {
 public:
  scoped_env(const char* name, const char* v) : name_(name) { ::setenv(name, v, 1); }
  ~scoped_env() { ::unsetenv(name_); }

 private:
  const char* name_;
};

}  // namespace

TEST_SUITE("agent.llm http" * doctest::timeout(30)) {
  TEST_CASE("a plain reply; the request carries model, messages, temperature, max_tokens and stream") {
    chat_server s([](const ojson&, std::size_t, httplib::Response& res) { reply_json(res, message_reply("hi!")); });
    auto o = options(s);
    o.temperature = 0.5;
    o.max_tokens = 64;
    auto b = make_http_backend(o);
    auto r = b->complete(hello(), ojson::array());
    CHECK(r.text == "hi!");
    CHECK(r.tool_calls.empty());
    auto bodies = s.bodies();
    REQUIRE(bodies.size() == 1);
    CHECK(bodies[0]["model"] == "test-model");
    CHECK(bodies[0]["messages"] == ojson::parse(R"([{"role":"system","content":"be brief"},{"role":"user","content":"hello"}])"));
    CHECK(bodies[0]["temperature"] == 0.5);
    CHECK(bodies[0]["max_tokens"] == 64);
    CHECK(bodies[0]["stream"] == false);
    CHECK_FALSE(bodies[0].contains("tools"));
    CHECK(s.auth()[0].empty());
  }

  TEST_CASE("a tool round trip: the server asks for a tool, then answers from the tool message") {
    chat_server s([](const ojson& body, std::size_t n, httplib::Response& res) {
      if (n == 0) {
        reply_json(res, tool_calls_reply({{{"id", "call_a"}, {"type", "function"},
                                           {"function", {{"name", "calc"}, {"arguments", R"({"a": 2, "b": 40})"}}}}}));
        return;
      }
      const auto& m = body["messages"];
      bool ok = m.size() == 4 && m[2]["role"] == "assistant" && m[2]["tool_calls"][0]["id"] == "call_a" &&
                m[2]["tool_calls"][0]["function"]["name"] == "calc" &&
                ojson::parse(m[2]["tool_calls"][0]["function"]["arguments"].get<std::string>()) ==
                    ojson::parse(R"({"a": 2, "b": 40})") &&
                m[3]["role"] == "tool" && m[3]["tool_call_id"] == "call_a" && m[3]["content"] == "42";
      reply_json(res, message_reply(ok ? "The answer is 42." : "unexpected: " + m.dump()));
    });
    agent_under_test a({{"backend", "http"}, {"base_url", s.base_url()}, {"system", "use tools"}}, "solver");
    add_calc(a.ctx);
    a.send(value{"what is 2 + 40?"});
    REQUIRE(a.out().size() == 1);
    CHECK(a.text() == "The answer is 42.");
    CHECK(a.field("tool_calls").as_int() == 1);
    auto bodies = s.bodies();
    REQUIRE(bodies.size() == 2);
    REQUIRE(bodies[0]["tools"].size() == 1);
    CHECK(bodies[0]["tools"][0]["type"] == "function");
    CHECK(bodies[0]["tools"][0]["function"]["name"] == "calc");
    CHECK(bodies[0]["tools"][0]["function"]["parameters"]["properties"]["a"]["type"] == "integer");
  }

  TEST_CASE("malformed tool arguments from the model go back to it as a tool error") {
    chat_server s([](const ojson& body, std::size_t n, httplib::Response& res) {
      if (n == 0) {
        reply_json(res, tool_calls_reply({{{"id", "c"}, {"type", "function"},
                                           {"function", {{"name", "calc"}, {"arguments", "{a: 2"}}}}}));
        return;
      }
      const auto& m = body["messages"];
      reply_json(res, message_reply(m.back()["content"].get<std::string>()));
    });
    agent_under_test a({{"backend", "http"}, {"base_url", s.base_url()}});
    add_calc(a.ctx);
    a.send(value{"add"});
    CHECK(a.text() == R"({"error":"malformed arguments (not JSON): {a: 2"})");
    CHECK(a.ctx.calls_made == 0);
    CHECK(s.bodies()[1]["messages"][1]["tool_calls"][0]["function"]["arguments"] == "{a: 2");
  }

  TEST_CASE("streaming: content deltas and a streamed tool call are accumulated") {
    chat_server s([](const ojson& body, std::size_t n, httplib::Response& res) {
      std::string sse;
      auto event = [&](const ojson& delta) {
        sse += "data: " + ojson{{"choices", {{{"index", 0}, {"delta", delta}}}}}.dump() + "\n\n";
      };
      if (n == 0) {
        event({{"role", "assistant"}, {"content", "Hel"}});
        sse += ": a comment line\n\n";
        event({{"content", "lo, "}});
        event({{"content", "world"}});
      } else {
        event({{"tool_calls", {{{"index", 0}, {"id", "call_s"}, {"type", "function"},
                                {"function", {{"name", "calc"}, {"arguments", ""}}}}}}});
        event({{"tool_calls", {{{"index", 0}, {"function", {{"arguments", "{\"a\": "}}}}}}});
        event({{"tool_calls", {{{"index", 1}, {"id", "call_t"}, {"function", {{"name", "calc"}, {"arguments", "{}"}}}}}}});
        event({{"tool_calls", {{{"index", 0}, {"function", {{"arguments", "7}"}}}}}}});
      }
      sse += "data: [DONE]\n\n";
      res.set_content(sse, "text/event-stream");
    });
    auto o = options(s);
    o.stream = true;
    auto b = make_http_backend(o);
    auto r = b->complete(hello(), ojson::array());
    CHECK(r.text == "Hello, world");
    CHECK(s.bodies()[0]["stream"] == true);
    auto t = b->complete(hello(), ojson::array());
    REQUIRE(t.tool_calls.size() == 2);
    CHECK(t.tool_calls[0].id == "call_s");
    CHECK(t.tool_calls[0].name == "calc");
    CHECK(t.tool_calls[0].arguments == ojson{{"a", 7}});
    CHECK(t.tool_calls[0].arguments_error.empty());
    CHECK(t.tool_calls[1].id == "call_t");
    CHECK(t.tool_calls[1].arguments == ojson::object());
  }

  TEST_CASE("with stream, a server that answers with one JSON body is understood too") {
    chat_server s([](const ojson&, std::size_t, httplib::Response& res) { reply_json(res, message_reply("whole")); });
    auto o = options(s);
    o.stream = true;
    CHECK(make_http_backend(o)->complete(hello(), ojson::array()).text == "whole");
  }

  TEST_CASE("a 500 is retried; after the retries the error names the URL, status and body") {
    chat_server s([](const ojson&, std::size_t, httplib::Response& res) {
      res.status = 500;
      res.set_content("model overloaded", "text/plain");
    });
    auto o = options(s);
    o.retries = 2;
    auto b = make_http_backend(o);
    CHECK_THROWS_WITH_AS(b->complete(hello(), ojson::array()),
                         ("POST " + s.url() + ": HTTP 500: model overloaded (gave up after 3 attempts)").c_str(),
                         std::runtime_error);
    CHECK(s.bodies().size() == 3);
  }

  TEST_CASE("a 500 then a 200 succeeds on the retry; so does a 429") {
    for (int status : {500, 503, 429}) {
      CAPTURE(status);
      chat_server s([status](const ojson&, std::size_t n, httplib::Response& res) {
        if (n == 0) return reply_json(res, {{"error", "busy"}}, status);
        reply_json(res, message_reply("recovered"));
      });
      auto b = make_http_backend(options(s));
      CHECK(b->complete(hello(), ojson::array()).text == "recovered");
      CHECK(s.bodies().size() == 2);
    }
  }

  TEST_CASE("another 4xx fails at once") {
    chat_server s([](const ojson&, std::size_t, httplib::Response& res) {
      reply_json(res, {{"error", {{"message", "unknown model"}}}}, 404);
    });
    auto b = make_http_backend(options(s));
    CHECK_THROWS_WITH(b->complete(hello(), ojson::array()),
                      ("POST " + s.url() + ": HTTP 404: {\"error\":{\"message\":\"unknown model\"}}").c_str());
    CHECK(s.bodies().size() == 1);
  }

  TEST_CASE("a server slower than timeout_ms times out") {
    chat_server* self = nullptr;
    chat_server s([&self](const ojson&, std::size_t, httplib::Response& res) {
      self->hold();
      reply_json(res, message_reply("too late"));
    });
    self = &s;
    auto o = options(s);
    o.timeout = std::chrono::milliseconds(200);
    o.retries = 1;
    auto b = make_http_backend(o);
    auto started = std::chrono::steady_clock::now();
    CHECK_THROWS_WITH(b->complete(hello(), ojson::array()),
                      ("POST " + s.url() + ": timed out after 200 ms (gave up after 2 attempts)").c_str());
    CHECK(std::chrono::steady_clock::now() - started < std::chrono::seconds(5));
    s.release();
  }

  TEST_CASE("a malformed body is an error, not retried") {
    chat_server s([](const ojson&, std::size_t n, httplib::Response& res) {
      if (n == 0) res.set_content("<html>gateway</html>", "text/html");
      if (n == 1) reply_json(res, {{"choices", ojson::array()}});
      if (n == 2) reply_json(res, {{"choices", {{{"index", 0}}}}});
    });
    auto b = make_http_backend(options(s));
    CHECK_THROWS_WITH(b->complete(hello(), ojson::array()),
                      ("POST " + s.url() + ": malformed response: not JSON: <html>gateway</html>").c_str());
    CHECK_THROWS_WITH(b->complete(hello(), ojson::array()),
                      doctest::Contains("malformed response: `choices` is not a non-empty array"));
    CHECK_THROWS_WITH(b->complete(hello(), ojson::array()), doctest::Contains("malformed response: no `message` in choices[0]"));
    CHECK(s.bodies().size() == 3);
  }

  TEST_CASE("the API key comes from the variable api_key_env names, as a bearer token") {
    chat_server s([](const ojson&, std::size_t, httplib::Response& res) { reply_json(res, message_reply("ok")); });
    scoped_env key("LOOM_AGENTS_TEST_KEY", "sk-local-test");
    auto o = options(s);
    o.api_key_env = "LOOM_AGENTS_TEST_KEY";
    make_http_backend(o)->complete(hello(), ojson::array());
    CHECK(s.auth() == std::vector<std::string>{"Bearer sk-local-test"});
  }

  TEST_CASE("an api_key_env that is not set is an error naming the variable") {
    ::unsetenv("LOOM_AGENTS_TEST_MISSING_KEY");
    CHECK_THROWS_WITH_AS(agent_under_test({{"backend", "http"}, {"api_key_env", "LOOM_AGENTS_TEST_MISSING_KEY"}}, "bot"),
                         "agent.llm `bot`: api_key_env: the environment variable `LOOM_AGENTS_TEST_MISSING_KEY` is not "
                         "set (it should hold the API key)",
                         std::invalid_argument);
  }

  TEST_CASE("a server that is not there: connection errors are retried, then reported") {
    std::string url;
    { chat_server gone([](const ojson&, std::size_t, httplib::Response&) {}); url = gone.base_url(); }
    http_options o;
    o.base_url = url;
    o.retries = 1;
    o.backoff = std::chrono::milliseconds(1);
    o.timeout = std::chrono::milliseconds(2000);
    CHECK_THROWS_WITH(make_http_backend(o)->complete(hello(), ojson::array()),
                      ("POST " + url + "/chat/completions: could not connect (gave up after 2 attempts)").c_str());
  }

  TEST_CASE("a base_url it cannot use is refused when the node is built") {
    CHECK_THROWS_WITH(agent_under_test({{"backend", "http"}, {"base_url", "127.0.0.1:8000/v1"}}, "bot"),
                      "agent.llm `bot`: base_url `127.0.0.1:8000/v1`: expected http://host[:port][/path]");
    CHECK_THROWS_WITH(agent_under_test({{"backend", "http"}, {"base_url", "ftp://host/v1"}}, "bot"),
                      doctest::Contains("the scheme must be http or https"));
  }

  TEST_CASE("LOOM_LLM_BASE_URL points every agent.llm at a server, scripted ones too; LOOM_LLM_MODEL names the model") {
    chat_server s([](const ojson& body, std::size_t, httplib::Response& res) {
      reply_json(res, message_reply("from the server, model " + body["model"].get<std::string>()));
    });
    auto url = s.base_url();
    scoped_env base("LOOM_LLM_BASE_URL", url.c_str());
    scoped_env model("LOOM_LLM_MODEL", "env-model");
    agent_under_test a({{"rules", rules({reply_rule("", "scripted")})}, {"model", "yaml-model"}});
    a.send(value{"hi"});
    CHECK(a.text() == "from the server, model env-model");
  }
}

TEST_CASE("a map's other fields reach the model as JSON context after the system prompt" * doctest::timeout(30)) {
  chat_server s([](const ojson& body, std::size_t, httplib::Response& res) {
    reply_json(res, message_reply(body["messages"].dump()));
  });
  agent_under_test a({{"backend", "http"}, {"base_url", s.base_url()}, {"system", "Be brief."}});
  a.send(value{value_map{{"task", "summarize"}, {"source", "wiki"}, {"year", 2024}}});
  CHECK(ojson::parse(a.text()) ==
        ojson::parse(R"([{"role":"system","content":"Be brief.\n\nContext (JSON):\n{\n  \"task\": \"summarize\",\n)"
                     R"(  \"source\": \"wiki\",\n  \"year\": 2024\n}"},{"role":"user","content":"summarize"}])"));
  CHECK(a.field("task").as_string() == "summarize");
}

TEST_CASE("the system prompt is a template over the input's fields, numbers exact" * doctest::timeout(30)) {
  chat_server s([](const ojson& body, std::size_t, httplib::Response& res) {
    reply_json(res, message_reply(body["messages"][0]["content"].get<std::string>()));
  });
  agent_under_test a({{"backend", "http"},
                      {"base_url", s.base_url()},
                      {"role", "pricer"},
                      {"system", "As {{role}}, price order {{input.id}} ({{input.lines[1].qty}} x {{input.ratio}}): {{input}}"}});
  a.send(value{value_map{{"task", "go"},
                         {"id", std::int64_t{1234567890123456789}},
                         {"ratio", 1.0 / 3},
                         {"lines", value_list{value{value_map{{"qty", 1}}}, value{value_map{{"qty", 7}}}}}}});
  CHECK(a.text().rfind("As pricer, price order 1234567890123456789 (7 x 0.3333333333333333): go\n\nContext (JSON):", 0) == 0);
  // A field the input does not have fails the task, naming the node and the path.
  CHECK_THROWS_WITH(a.send(value{value_map{{"task", "go"}}}),
                    doctest::Contains("agent.llm `agent`: system: {{input.id}}: no field `id` in the input"));
  // A prompt cannot read a tool's result (none has answered when it is filled).
  CHECK_THROWS_WITH(agent_under_test({{"backend", "http"}, {"base_url", s.base_url()}, {"system", "{{tool.calc}}"}}),
                    doctest::Contains("agent.llm `agent`: system: {{tool.calc}}: a prompt is filled before any tool"));
  CHECK(loom::agents::check_prompt("{{input.a}}", {value{value_map{{"b", 1}}}}) ==
        "{{input.a}}: no field `a` in the input this node gets: {\"b\":1}");
  CHECK(loom::agents::check_prompt("{{input.b}} {{role}}", {value{value_map{{"b", 1}}}}).empty());
}

TEST_CASE("an agent whose second model call fails is restarted and its task retried: each answer once" *
          doctest::timeout(60)) {
  // Each task: the model asks for the calculator, then answers from its result. The first second call
  // fails (HTTP 400: not retried by the backend), which throws inside the tool-reply handling; the agent
  // (restarts: 1) must get the same task again, and nothing of the failed attempt may reach the sink.
  std::atomic<int> failures{1};
  chat_server server([&](const ojson& body, std::size_t, httplib::Response& res) {
    const auto& messages = body["messages"];
    const auto& last = messages.back();
    if (last["role"] == "tool") {
      if (failures.fetch_sub(1) > 0) return reply_json(res, {{"error", {{"message", "bad request"}}}}, 400);
      return reply_json(res, message_reply("answer " + last["content"].get<std::string>()));
    }
    auto task = last["content"].get<std::string>();
    reply_json(res, tool_calls_reply({{{"id", "c1"}, {"type", "function"},
                                       {"function", {{"name", "calc"}, {"arguments", ojson{{"expression", task + "*10"}}.dump()}}}}}));
  });
  graph_runner runner;
  auto r = runner.run_yaml(R"(graph: retry
nodes:
  tasks: {kind: source.sequence, params: {start: 1, count: 3}}
  agent:
    kind: agent.llm
    restarts: 1
    params: {backend: http, base_url: ")" + server.base_url() + R"(", retries: 0, timeout_ms: 5000}
    tools: [calc]
  calc: {kind: tool.calculator}
  out: {kind: test.collect}
edges: [tasks -> agent, agent -> out]
)");
  INFO(r.error);
  REQUIRE(r.result == loom::local::run_report::outcome::ok);
  std::vector<std::string> texts;
  for (const auto& v : runner.sink->snapshot()) texts.push_back(v.find("text")->as_string());
  std::sort(texts.begin(), texts.end());
  REQUIRE(texts.size() == 3);  // each task answered once: the failed attempt's output was never sent
  CHECK(texts[0] == R"(answer {"expression":"1*10","result":10})");
  CHECK(texts[1] == R"(answer {"expression":"2*10","result":20})");
  CHECK(texts[2] == R"(answer {"expression":"3*10","result":30})");
  std::uint64_t restarts = 0, agent_out = 0, sink_in = 0;
  for (const auto& s : r.nodes) {
    if (s.node == "agent") restarts += s.restarts, agent_out += s.out;
    if (s.node == "out") sink_in += s.in;
  }
  CHECK(restarts == 1);
  CHECK(agent_out == sink_in);
  CHECK(server.bodies().size() == 8);  // 3 tasks x 2 calls, plus the failed task's first call again and its failure
}

TEST_CASE("a model's reply nested 100,000 deep, or tool-call arguments nested so, is refused by the shared reader") {
  std::string deep = std::string(100'000, '[') + std::string(100'000, ']');
  // The whole reply: a malformed response naming the limit, never a crash.
  CHECK_THROWS_WITH_AS(loom::agents::read_chat_reply(R"({"choices": [{"message": {"content": )" + deep + "}}]}", false),
                       doctest::Contains("nested deeper than 64 levels"), std::runtime_error);
  CHECK_THROWS_WITH_AS(loom::agents::read_chat_reply("data: " + deep + "\n\ndata: [DONE]\n\n", true),
                       doctest::Contains("nested deeper than 64 levels"), std::runtime_error);
  // A tool call's arguments: the model is told why (a tool error), the run goes on.
  ojson reply = {{"choices",
                  {{{"message",
                     {{"role", "assistant"},
                      {"tool_calls",
                       {{{"id", "c1"},
                         {"type", "function"},
                         {"function", {{"name", "calc"}, {"arguments", R"({"a": )" + deep + "}"}}}}}}}}}}}};
  auto r = loom::agents::read_chat_reply(reply.dump(), false);
  REQUIRE(r.tool_calls.size() == 1);
  CHECK(r.tool_calls[0].arguments_error.rfind("malformed arguments (arrays and objects are nested deeper than 64 levels)", 0) == 0);
  // An integer above INT64_MAX in the arguments is a double, not a wrapped negative number.
  reply["choices"][0]["message"]["tool_calls"][0]["function"]["arguments"] = R"({"n": 18446744073709551615})";
  auto big = loom::agents::read_chat_reply(reply.dump(), false);
  CHECK(big.tool_calls[0].arguments["n"].is_number_float());
}

TEST_CASE("memory: N sends the last N exchanges, is checkpointed per task, and survives a restart mid-task" *
          doctest::timeout(60)) {
  // The model answers with the number of messages it got. Task 3's first call fails (HTTP 400, not retried):
  // the agent (restarts: 1) is rebuilt from its checkpoint after task 2, so task 3 still sees tasks 1 and 2.
  std::atomic<int> failures{1};
  chat_server server([&](const ojson& body, std::size_t, httplib::Response& res) {
    const auto& messages = body["messages"];
    if (messages.back()["content"] == "3" && failures.fetch_sub(1) > 0)
      return reply_json(res, {{"error", {{"message", "bad request"}}}}, 400);
    reply_json(res, message_reply(std::to_string(messages.size())));
  });
  graph_runner runner;
  std::mutex m;
  std::vector<value> last;
  loom::local::run_options o;
  o.on_last_checkpoint = [&](std::uint32_t, const value& cp) {
    std::lock_guard l(m);
    last.push_back(cp);
  };
  loom::graph::diagnostics d;
  auto g = loom::graph::load_graph_text(R"(graph: memory
nodes:
  tasks: {kind: source.sequence, params: {start: 1, count: 4}}
  agent:
    kind: agent.llm
    restarts: 1
    params: {backend: http, base_url: ")" + server.base_url() + R"(", retries: 0, timeout_ms: 5000, memory: 2}
  out: {kind: test.collect}
edges: [tasks -> agent, agent -> out]
)",
                                  "memory.yaml", d);
  REQUIRE(g);
  auto r = runner.run(*g, o);
  INFO(r.error);
  REQUIRE(r.result == loom::local::run_report::outcome::ok);
  std::vector<std::string> texts;
  for (const auto& v : runner.sink->snapshot()) texts.push_back(v.find("text")->as_string());
  CHECK(texts == std::vector<std::string>{"1", "3", "5", "5"});  // memory: 2 holds at most two exchanges
  auto bodies = server.bodies();
  REQUIRE(bodies.size() == 5);
  CHECK(bodies[3]["messages"][0]["content"] == "1");  // task 3, again after the restart: tasks 1 and 2 first
  CHECK(bodies[3]["messages"][2]["content"] == "2");
  // The stateful agent's last checkpoint comes out of the run (the source's too: it is stateful as well).
  value want = value_map{
      {"memory", value_list{value_map{{"user", "3"}, {"assistant", "5"}}, value_map{{"user", "4"}, {"assistant", "5"}}}}};
  std::lock_guard l(m);
  CHECK(std::find(last.begin(), last.end(), want) != last.end());
}
