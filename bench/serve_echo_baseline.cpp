// bench/serve_echo_baseline.cpp: the ceiling for `loom serve`'s echo bench: a bare cpp-httplib server that
// answers POST /v1/chat/completions with the last user message, parsed and answered with nlohmann-json, on
// the same httplib settings loom serve uses (TCP_NODELAY, keep-alive, a thread pool, JSON with a charset so
// that httplib does not gzip it). No graph, no actors.
//   serve_echo_baseline PORT [THREADS]     (PORT 0: any free port; stderr says which)
#include <httplib.h>
#include <nlohmann/json.hpp>

#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <string>

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: serve_echo_baseline PORT [THREADS]\n");
    return 2;
  }
  int port = std::atoi(argv[1]);
  std::size_t threads = argc > 2 ? std::strtoul(argv[2], nullptr, 10) : 32;
  httplib::Server http;
  http.new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
  http.set_tcp_nodelay(true);
  http.set_keep_alive_timeout(1);
  http.Get("/health", [](const httplib::Request&, httplib::Response& res) {
    res.set_content(R"({"status":"ok"})", "application/json; charset=utf-8");
  });
  http.Post("/v1/chat/completions", [](const httplib::Request& req, httplib::Response& res) {
    auto j = nlohmann::json::parse(req.body, nullptr, false);
    std::string prompt;
    if (j.is_object() && j.contains("messages") && j["messages"].is_array())
      for (const auto& m : j["messages"])
        if (m.is_object() && m.value("role", "") == "user" && m.contains("content") && m["content"].is_string())
          prompt = m["content"].get<std::string>();
    nlohmann::json out = {
        {"id", "chatcmpl-baseline"},
        {"object", "chat.completion"},
        {"created", static_cast<std::int64_t>(std::time(nullptr))},
        {"model", "baseline"},
        {"choices", nlohmann::json::array({{{"index", 0},
                                            {"message", {{"role", "assistant"}, {"content", prompt}}},
                                            {"logprobs", nullptr},
                                            {"finish_reason", "stop"}}})},
        {"usage", {{"prompt_tokens", 1}, {"completion_tokens", 1}, {"total_tokens", 2}}}};
    // As loom serve does: with the charset httplib does not gzip the small body.
    res.set_content(out.dump(), "application/json; charset=utf-8");
  });
  if (port == 0) port = http.bind_to_any_port("127.0.0.1");
  else if (!http.bind_to_port("127.0.0.1", port)) port = -1;
  if (port < 0) {
    std::fprintf(stderr, "serve_echo_baseline: cannot listen on 127.0.0.1:%d\n", port);
    return 1;
  }
  std::fprintf(stderr, "serve_echo_baseline: listening on http://127.0.0.1:%d/v1\n", port);
  std::fflush(stderr);
  http.listen_after_bind();
}
