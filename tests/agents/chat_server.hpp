// tests/agents/chat_server.hpp: a chat-completions server on 127.0.0.1 (never any other address) whose
// answers the test writes, for agent.llm's http backend (http_test.cpp, replicas_test.cpp, observe/agent_metrics_test.cpp).
#pragma once

#include <doctest/doctest.h>
#include <httplib.h>

#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

namespace loom::test {

using ojson = nlohmann::ordered_json;

// A chat-completions endpoint at http://127.0.0.1:<free port>/v1 whose answers the test writes. `answer`
// gets the request body and which request this is (0-based) and fills the response.
class chat_server {
 public:
  using answer_fn = std::function<void(const ojson& body, std::size_t n, httplib::Response& res)>;

  explicit chat_server(answer_fn answer) : answer_(std::move(answer)) {
    // What a router's health probe asks (agent.llm with base_urls).
    server_.Get("/v1/models", [](const httplib::Request&, httplib::Response& res) {
      res.set_content(R"({"object":"list","data":[{"id":"test-model","object":"model"}]})", "application/json");
    });
    server_.Post("/v1/chat/completions", [this](const httplib::Request& req, httplib::Response& res) {
      std::size_t n;
      auto body = ojson::parse(req.body, nullptr, false);
      {
        std::lock_guard lock(m_);
        n = bodies_.size();
        bodies_.push_back(body);
        auth_.push_back(req.get_header_value("Authorization"));
      }
      answer_(body, n, res);
    });
    port_ = server_.bind_to_any_port("127.0.0.1");
    REQUIRE(port_ > 0);
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    // stop() before the accept loop has started would not end it: wait for the loop (microseconds).
    for (int i = 0; i < 10000 && !server_.is_running(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    REQUIRE(server_.is_running());
  }
  ~chat_server() {
    release();
    server_.stop();
    thread_.join();
  }

  std::string base_url() const { return "http://127.0.0.1:" + std::to_string(port_) + "/v1"; }
  std::string url() const { return base_url() + "/chat/completions"; }
  std::vector<ojson> bodies() {
    std::lock_guard lock(m_);
    return bodies_;
  }
  std::vector<std::string> auth() {
    std::lock_guard lock(m_);
    return auth_;
  }
  // Blocks a handler until the test releases it (or 10 s pass): a server that does not answer in time.
  void hold() {
    std::unique_lock lock(m_);
    cv_.wait_for(lock, std::chrono::seconds(10), [this] { return released_; });
  }
  void release() {
    std::lock_guard lock(m_);
    released_ = true;
    cv_.notify_all();
  }

 private:
  answer_fn answer_;
  httplib::Server server_;
  int port_ = 0;
  std::thread thread_;
  std::mutex m_;
  std::condition_variable cv_;
  bool released_ = false;
  std::vector<ojson> bodies_;
  std::vector<std::string> auth_;
};

inline void reply_json(httplib::Response& res, const ojson& j, int status = 200) {
  res.status = status;
  res.set_content(j.dump(), "application/json");
}

inline ojson message_reply(const std::string& text) {
  return {{"id", "x"}, {"object", "chat.completion"},
          {"choices", {{{"index", 0}, {"message", {{"role", "assistant"}, {"content", text}}}, {"finish_reason", "stop"}}}}};
}

inline ojson tool_calls_reply(const ojson& calls) {
  return {{"choices", {{{"index", 0},
                        {"message", {{"role", "assistant"}, {"content", nullptr}, {"tool_calls", calls}}},
                        {"finish_reason", "tool_calls"}}}}};
}

}  // namespace loom::test
