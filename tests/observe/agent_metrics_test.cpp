// tests/observe/agent_metrics_test.cpp: agent.llm's http backend counts its requests by status, their
// time, and the tokens of the server's `usage` (whole and streamed replies), against a chat-completions
// server the test runs on 127.0.0.1.
#include <doctest/doctest.h>
#include <httplib.h>

#include <atomic>
#include <chrono>
#include <thread>

#include "loom/actors/agents/backend.hpp"
#include "loom/runtime/observe/metrics.hpp"
#include "tests/agents/chat_server.hpp"

using namespace loom;

namespace {

using test::chat_server;  // tests/agents/chat_server.hpp

double counter_value(const std::string& name, const observe::label_set& labels) {
  for (const auto& f : observe::metrics().collect())
    for (const auto& s : f.samples)
      if (s.name == name && s.labels == labels) return s.value;
  return -1;
}

}  // namespace

TEST_CASE("agent.llm counts requests by status, their seconds and the server's usage tokens" * doctest::timeout(30)) {
  chat_server server{[](const test::ojson&, std::size_t n, httplib::Response& res) {
    if (n == 0) {  // a failure first: retried
      res.status = 500;
      res.set_content("{\"error\":\"busy\"}", "application/json");
      return;
    }
    res.set_content(R"({"choices":[{"message":{"role":"assistant","content":"hi"}}],)"
                    R"("usage":{"prompt_tokens":12,"completion_tokens":3,"total_tokens":15}})",
                    "application/json");
  }};
  agents::http_options o;
  o.base_url = server.base_url();
  o.node = "metrics_agent_whole";
  o.retries = 1;
  o.backoff = std::chrono::milliseconds(1);
  auto b = agents::make_http_backend(o);
  auto reply = b->complete({{"user", "hello", {}, {}}}, nlohmann::ordered_json::array());
  CHECK(reply.text == "hi");
  CHECK(counter_value("loom_agent_llm_requests_total", {{"node", o.node}, {"status", "500"}}) == 1);
  CHECK(counter_value("loom_agent_llm_requests_total", {{"node", o.node}, {"status", "200"}}) == 1);
  CHECK(counter_value("loom_agent_tokens_total", {{"node", o.node}, {"type", "prompt"}}) == 12);
  CHECK(counter_value("loom_agent_tokens_total", {{"node", o.node}, {"type", "completion"}}) == 3);
  CHECK(counter_value("loom_agent_llm_request_seconds_count", {{"node", o.node}}) == 2);
}

TEST_CASE("a streamed reply's usage (in its last event) is counted too; a dead server is `connection`" *
          doctest::timeout(30)) {
  chat_server server{[](const test::ojson&, std::size_t, httplib::Response& res) {
    res.set_content("data: {\"choices\":[{\"delta\":{\"content\":\"a\"}}]}\n\n"
                    "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":7,\"completion_tokens\":1}}\n\n"
                    "data: [DONE]\n\n",
                    "text/event-stream");
  }};
  agents::http_options o;
  o.base_url = server.base_url();
  o.node = "metrics_agent_stream";
  o.stream = true;
  auto b = agents::make_http_backend(o);
  CHECK(b->complete({{"user", "hello", {}, {}}}, nlohmann::ordered_json::array()).text == "a");
  CHECK(counter_value("loom_agent_tokens_total", {{"node", o.node}, {"type", "prompt"}}) == 7);
  CHECK(counter_value("loom_agent_tokens_total", {{"node", o.node}, {"type", "completion"}}) == 1);

  agents::http_options gone;
  gone.base_url = "http://127.0.0.1:1/v1";  // nothing listens on port 1
  gone.node = "metrics_agent_gone";
  gone.retries = 0;
  auto g = agents::make_http_backend(gone);
  CHECK_THROWS(g->complete({{"user", "hello", {}, {}}}, nlohmann::ordered_json::array()));
  CHECK(counter_value("loom_agent_llm_requests_total", {{"node", gone.node}, {"status", "connection"}}) == 1);
}
