// tests/route/route_test.cpp: `loom route` with real processes on 127.0.0.1: simulated replicas
// (tests/support/replica_sim.py) behind the real binary, asked with httplib. Answers through the router
// equal the simulator's; a replica killed mid-stream still gives the client the whole answer once; a
// replica that fails before its first token is retried; a slow replica gets fewer requests; every replica
// full is 429 with Retry-After; a dead replica is ejected and let back in; /metrics passes promtool.
#include <doctest/doctest.h>

#include <fcntl.h>
#include <httplib.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <functional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "loom/runtime/observe/metrics.hpp"

using nlohmann::json;
using namespace std::chrono_literals;

namespace {

// A child process whose first stdout line names its port; stderr goes to a file printed on failure.
class child {
 public:
  // `port_of` reads the port from the first stdout line.
  child(std::vector<std::string> argv, const std::function<int(const std::string&)>& port_of) {
    static int n = 0;
    err_file_ = std::string(LOOM_BINARY_DIR) + "/route-test-" + std::to_string(getpid()) + "-" + std::to_string(n++) + ".err";
    int out[2];
    if (pipe(out) != 0) throw std::runtime_error("pipe failed");
    pid_ = fork();
    if (pid_ < 0) throw std::runtime_error("fork failed");
    if (pid_ == 0) {
      int err = open(err_file_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      int devnull = open("/dev/null", O_RDONLY);
      dup2(devnull, 0);
      dup2(out[1], 1);
      dup2(err, 2);
      close(out[0]);
      std::vector<char*> a;
      for (auto& s : argv) a.push_back(s.data());
      a.push_back(nullptr);
      execv(a[0], a.data());
      _exit(127);
    }
    close(out[1]);
    out_ = out[0];
    std::string line;
    auto until = std::chrono::steady_clock::now() + 30s;
    while (line.find('\n') == std::string::npos) {
      pollfd p{out_, POLLIN, 0};
      if (std::chrono::steady_clock::now() > until) throw std::runtime_error("no port printed in 30 s:\n" + err());
      if (poll(&p, 1, 100) <= 0) continue;
      char c[256];
      auto got = read(out_, c, sizeof c);
      if (got <= 0) throw std::runtime_error(argv[0] + " exited before it printed its port:\n" + err());
      line.append(c, static_cast<std::size_t>(got));
    }
    port_ = port_of(line.substr(0, line.find('\n')));
  }
  ~child() {
    if (pid_ > 0) {
      kill(pid_, SIGTERM);
      if (!wait(10s)) {
        kill(pid_, SIGKILL);
        waitpid(pid_, nullptr, 0);
      }
    }
    if (out_ >= 0) close(out_);
    std::remove(err_file_.c_str());
  }
  child(const child&) = delete;
  child& operator=(const child&) = delete;

  int port() const { return port_; }
  // Waits for the exit: its status (128+N for signal N), or nullopt past the deadline.
  std::optional<int> wait(std::chrono::milliseconds deadline) {
    auto until = std::chrono::steady_clock::now() + deadline;
    for (;;) {
      int status = 0;
      if (pid_ > 0 && waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        status_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      }
      if (pid_ <= 0) return status_;
      if (std::chrono::steady_clock::now() >= until) return std::nullopt;
      std::this_thread::sleep_for(10ms);
    }
  }
  std::string err() const {
    std::ifstream in{err_file_};
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
  }

 private:
  pid_t pid_ = -1;
  int out_ = -1;
  int port_ = 0;
  std::optional<int> status_;
  std::string err_file_;
};

std::unique_ptr<child> sim(std::vector<std::string> args = {}, int port = 0) {
  std::vector<std::string> argv{LOOM_PYTHON, std::string(LOOM_SOURCE_DIR) + "/tests/support/replica_sim.py", "--port",
                                std::to_string(port)};
  argv.insert(argv.end(), args.begin(), args.end());
  return std::make_unique<child>(argv, [](const std::string& line) { return std::stoi(line.substr(line.rfind(':') + 1)); });
}

std::unique_ptr<child> route(const std::vector<const child*>& replicas, std::vector<std::string> args = {}) {
  std::vector<std::string> argv{std::string(LOOM_BINARY_DIR) + "/bin/loom", "route", "--port", "0"};
  for (const auto* r : replicas) {
    argv.push_back("--backend");
    argv.push_back("http://127.0.0.1:" + std::to_string(r->port()) + "/v1");
  }
  argv.insert(argv.end(), args.begin(), args.end());
  return std::make_unique<child>(argv, [](const std::string& line) { return std::stoi(line); });
}

httplib::Client client_of(int port) {
  httplib::Client c("127.0.0.1", port);
  c.set_connection_timeout(5s);
  c.set_read_timeout(30s);
  return c;
}

json request(const std::string& user, bool stream, const std::string& system = "You are a helpful agent.") {
  return {{"model", "sim"},
          {"stream", stream},
          {"messages", json::array({{{"role", "system"}, {"content", system}}, {{"role", "user"}, {"content", user}}})}};
}

// The simulator's answer, asked of a replica directly.
std::string answer_of(int port, const json& req) {
  auto body = req;
  body["stream"] = false;
  auto c = client_of(port);
  auto r = c.Post("/v1/chat/completions", body.dump(), "application/json");
  REQUIRE(r);
  REQUIRE(r->status == 200);
  return json::parse(r->body)["choices"][0]["message"]["content"].get<std::string>();
}

struct streamed {
  int status = 0;
  std::string text;                 // the contents, concatenated
  std::vector<json> chunks;
  bool done = false;                // saw [DONE]
  std::string raw;
  std::string retry_after;
};

streamed stream_through(int port, const json& req) {
  auto c = client_of(port);
  streamed s;
  httplib::Request r;
  r.method = "POST";
  r.path = "/v1/chat/completions";
  r.body = req.dump();
  r.set_header("Content-Type", "application/json");
  r.content_receiver = [&](const char* d, std::size_t n, std::uint64_t, std::uint64_t) {
    s.raw.append(d, n);
    return true;
  };
  auto res = c.send(r);
  REQUIRE(res);
  s.status = res->status;
  s.retry_after = res->get_header_value("Retry-After");
  if (s.status != 200) return s;
  std::istringstream in(s.raw);
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("data: ", 0) != 0) continue;
    auto data = line.substr(6);
    if (data == "[DONE]") {
      s.done = true;
      continue;
    }
    auto j = json::parse(data);
    s.chunks.push_back(j);
    if (j.contains("choices") && !j["choices"].empty() && j["choices"][0]["delta"].contains("content"))
      s.text += j["choices"][0]["delta"]["content"].get<std::string>();
  }
  return s;
}

double metric(int port, const std::string& name, const loom::observe::label_set& labels) {
  auto c = client_of(port);
  auto r = c.Get("/metrics");
  REQUIRE(r);
  for (const auto& f : loom::observe::parse_text(r->body))
    for (const auto& s : f.samples)
      if (s.name == name && s.labels == labels) return s.value;
  FAIL("no sample " << name);
  return -1;
}

json stats(int port) {
  auto c = client_of(port);
  auto r = c.Get("/stats");
  REQUIRE(r);
  return json::parse(r->body);
}

void control(int port, const json& faults) {
  auto c = client_of(port);
  auto r = c.Post("/control", faults.dump(), "application/json");
  REQUIRE(r);
  REQUIRE(r->status == 200);
}

std::string url(const child& c) { return "http://127.0.0.1:" + std::to_string(c.port()) + "/v1"; }

// Polls until `ok` or 30 s.
bool eventually(const std::function<bool()>& ok) {
  auto until = std::chrono::steady_clock::now() + 30s;
  while (std::chrono::steady_clock::now() < until) {
    if (ok()) return true;
    std::this_thread::sleep_for(20ms);
  }
  return false;
}

}  // namespace

TEST_CASE("whole and streamed answers through the router equal the simulator's") {
  auto a = sim();
  auto b = sim();
  auto r = route({a.get(), b.get()});
  auto req = request("tell me about routers", false);
  auto expected = answer_of(a->port(), req);
  REQUIRE(expected.size() > 20);

  auto c = client_of(r->port());
  auto whole = c.Post("/v1/chat/completions", req.dump(), "application/json");
  REQUIRE(whole);
  CHECK(whole->status == 200);
  auto j = json::parse(whole->body);
  CHECK(j["object"] == "chat.completion");
  CHECK(j["choices"][0]["message"]["content"] == expected);
  CHECK(j["choices"][0]["finish_reason"] == "stop");
  CHECK(j["id"].get<std::string>().rfind("chatcmpl-route-", 0) == 0);
  CHECK(j["usage"]["completion_tokens"] == 24);

  auto s = stream_through(r->port(), request("tell me about routers", true));
  REQUIRE(s.status == 200);
  CHECK(s.text == expected);
  CHECK(s.done);
  REQUIRE(!s.chunks.empty());
  CHECK(s.chunks.front()["choices"][0]["delta"]["role"] == "assistant");
  for (const auto& ch : s.chunks) CHECK(ch["id"] == s.chunks.front()["id"]);

  auto models = c.Get("/v1/models");
  REQUIRE(models);
  CHECK(models->status == 200);
  CHECK(json::parse(models->body)["data"][0]["id"] == "sim");
  auto health = c.Get("/health");
  REQUIRE(health);
  CHECK(health->status == 200);
  CHECK(json::parse(health->body)["replicas"].size() == 2);

  auto bad = c.Post("/v1/chat/completions", R"({"messages": []})", "application/json");
  REQUIRE(bad);
  CHECK(bad->status == 400);
  CHECK(json::parse(bad->body)["error"]["param"] == "messages");
  auto not_json = c.Post("/v1/chat/completions", "{nope", "application/json");
  REQUIRE(not_json);
  CHECK(not_json->status == 400);
}

TEST_CASE("a replica killed mid-stream: the client gets the whole answer once, continued on another replica") {
  auto a = sim();
  auto b = sim();
  auto r = route({a.get(), b.get()}, {"--policy", "round-robin"});  // the first request goes to a
  auto req = request("a long question that deserves a long answer", true);
  auto expected = answer_of(b->port(), req);
  control(a->port(), {{"die_after_tokens", 5}});

  auto s = stream_through(r->port(), req);
  REQUIRE(s.status == 200);
  CHECK(s.text == expected);
  CHECK(s.done);
  // Exactly one role delta, one finish; every chunk has the router's id.
  int roles = 0, finishes = 0;
  for (const auto& ch : s.chunks) {
    CHECK(ch["id"] == s.chunks.front()["id"]);
    if (ch["choices"].empty()) continue;
    roles += ch["choices"][0]["delta"].contains("role");
    finishes += !ch["choices"][0]["finish_reason"].is_null();
  }
  CHECK(roles == 1);
  CHECK(finishes == 1);
  // a really died, mid-answer (the simulator exits with 3 when asked to)
  CHECK(a->wait(10s) == 3);
  CHECK(stats(b->port())["continued"] == 1);
  CHECK(metric(r->port(), "loom_route_retries_total", {{"when", "mid_stream"}}) == 1);
  CHECK(metric(r->port(), "loom_route_requests_total", {{"replica", url(*a)}, {"outcome", "failed"}}) == 1);

  // A whole answer whose replica dies is retried elsewhere as well.
  auto c = sim();
  auto d = sim();
  auto r2 = route({c.get(), d.get()}, {"--policy", "round-robin"});
  control(c->port(), {{"die_after_tokens", 3}});
  auto cl = client_of(r2->port());
  auto whole = cl.Post("/v1/chat/completions", request("a long question that deserves a long answer", false).dump(),
                       "application/json");
  REQUIRE(whole);
  CHECK(whole->status == 200);
  CHECK(json::parse(whole->body)["choices"][0]["message"]["content"] == expected);
}

TEST_CASE("a replica that fails before its first token: the request is retried on another") {
  auto a = sim({"--fail-5xx", "1"});
  auto b = sim();
  auto r = route({a.get(), b.get()}, {"--policy", "round-robin"});
  auto req = request("retry me", true);
  auto expected = answer_of(b->port(), req);
  auto s = stream_through(r->port(), req);
  REQUIRE(s.status == 200);
  CHECK(s.text == expected);
  CHECK(stats(a->port())["failed_5xx"] == 1);
  CHECK(metric(r->port(), "loom_route_retries_total", {{"when", "before_first_token"}}) == 1);
}

TEST_CASE("a slow replica gets fewer requests") {
  // Prefill costs 2 ms a token on both; the slow one takes 20 times as long.
  auto fast = sim({"--prefill-ms", "2"});
  auto slow = sim({"--prefill-ms", "2", "--slow", "20"});
  for (const char* policy : {"least-loaded", "prefix"}) {
    CAPTURE(policy);
    auto before_fast = stats(fast->port())["requests"].get<int>();
    auto before_slow = stats(slow->port())["requests"].get<int>();
    auto r = route({fast.get(), slow.get()}, {"--policy", policy});
    for (int i = 0; i < 16; ++i) {
      auto s = stream_through(r->port(), request("question number " + std::to_string(i) + " on its own topic", true,
                                                 "system prompt " + std::to_string(i)));
      REQUIRE(s.status == 200);
    }
    auto to_fast = stats(fast->port())["requests"].get<int>() - before_fast;
    auto to_slow = stats(slow->port())["requests"].get<int>() - before_slow;
    CHECK(to_fast + to_slow == 16);
    CHECK(to_slow <= 2);  // once measured, it is chosen only when the fast one is loaded
  }
}

TEST_CASE("every replica full: 429 with Retry-After") {
  auto a = sim({"--decode-ms", "300", "--answer-tokens", "10"});
  auto r = route({a.get()}, {"--max-in-flight", "1"});
  streamed first;
  std::thread holder([&] { first = stream_through(r->port(), request("hold the replica", true)); });
  REQUIRE(eventually([&] { return metric(r->port(), "loom_route_in_flight", {{"replica", url(*a)}}) == 1; }));
  auto second = stream_through(r->port(), request("another", true));
  CHECK(second.status == 429);
  CHECK(!second.retry_after.empty());
  CHECK(std::stoi(second.retry_after) >= 1);
  auto c = client_of(r->port());
  auto whole = c.Post("/v1/chat/completions", request("another", false).dump(), "application/json");
  REQUIRE(whole);
  CHECK(whole->status == 429);
  CHECK(whole->has_header("Retry-After"));
  CHECK(json::parse(whole->body)["error"]["type"] == "rate_limit_error");
  holder.join();
  CHECK(first.status == 200);
  CHECK(first.done);
  CHECK(metric(r->port(), "loom_route_refusals_total", {{"reason", "all_full"}}) == 2);
}

TEST_CASE("a dead replica is ejected by the probes and let back in when it answers again") {
  auto a = sim();
  auto b = sim();
  int a_port = a->port();
  auto r = route({a.get(), b.get()}, {"--probe-interval", "0.1", "--eject-after", "2", "--policy", "round-robin"});
  auto a_url = url(*a);
  a.reset();  // SIGTERM: gone
  REQUIRE(eventually([&] { return metric(r->port(), "loom_route_replica_healthy", {{"replica", a_url}}) == 0; }));
  // Every request goes to b meanwhile, none fails.
  for (int i = 0; i < 4; ++i) CHECK(stream_through(r->port(), request("while a is down", true)).status == 200);
  CHECK(stats(b->port())["requests"] == 4);
  a = sim({}, a_port);
  REQUIRE(eventually([&] { return metric(r->port(), "loom_route_replica_healthy", {{"replica", a_url}}) == 1; }));
  CHECK(metric(r->port(), "loom_route_readmissions_total", {{"replica", a_url}}) == 1);
  CHECK(metric(r->port(), "loom_route_ejections_total", {{"replica", a_url}}) == 1);
  for (int i = 0; i < 4; ++i) CHECK(stream_through(r->port(), request("a is back", true)).status == 200);
  CHECK(stats(a->port())["requests"].get<int>() >= 1);
  // None healthy: 503.
  a.reset();
  b.reset();
  REQUIRE(eventually([&] {
    auto c = client_of(r->port());
    auto h = c.Get("/health");
    return h && h->status == 503;
  }));
  CHECK(stream_through(r->port(), request("nobody home", true)).status == 503);
}

TEST_CASE("/metrics passes promtool check metrics (or, without promtool, loom's own reader)") {
  auto a = sim();
  auto r = route({a.get()});
  stream_through(r->port(), request("count me", true));
  auto c = client_of(r->port());
  auto m = c.Get("/metrics");
  REQUIRE(m);
  CHECK(m->get_header_value("Content-Type").rfind("text/plain; version=0.0.4", 0) == 0);
  CHECK_NOTHROW(loom::observe::parse_text(m->body));
  CHECK(m->body.find("loom_route_decisions_total{policy=\"prefix\",reason=\"no_prefix\"} 1") != std::string::npos);
  if (access("/usr/bin/promtool", X_OK) != 0) {
    MESSAGE("promtool is not installed: checked with loom's own reader only");
    return;
  }
  auto file = std::string(LOOM_BINARY_DIR) + "/route-test-metrics-" + std::to_string(getpid()) + ".txt";
  std::ofstream(file) << m->body;
  auto out = file + ".out";
  int status = std::system(("/usr/bin/promtool check metrics < " + file + " > " + out + " 2>&1").c_str());
  std::ifstream in(out);
  std::stringstream said;
  said << in.rdbuf();
  CHECK_MESSAGE(status == 0, said.str());
  std::remove(file.c_str());
  std::remove(out.c_str());
}

TEST_CASE("a client that leaves mid-stream: its replica's request is stopped and counted abandoned") {
  auto a = sim({"--decode-ms", "100", "--answer-tokens", "40"});
  auto r = route({a.get()});
  auto c = client_of(r->port());
  httplib::Request req;
  req.method = "POST";
  req.path = "/v1/chat/completions";
  req.body = request("I will not wait for the end", true).dump();
  req.set_header("Content-Type", "application/json");
  std::string got;
  req.content_receiver = [&](const char* d, std::size_t n, std::uint64_t, std::uint64_t) {
    got.append(d, n);
    // Leave at the first token: a `"content":"` that is not empty.
    for (auto at = got.find("\"content\":\""); at != std::string::npos; at = got.find("\"content\":\"", at + 1))
      if (at + 11 < got.size() && got[at + 11] != '"') return false;
    return true;
  };
  c.send(req);
  CHECK(got.find("chatcmpl-route-") != std::string::npos);
  REQUIRE(eventually([&] {
    return metric(r->port(), "loom_route_requests_total", {{"replica", url(*a)}, {"outcome", "abandoned"}}) == 1;
  }));
  CHECK(metric(r->port(), "loom_route_in_flight", {{"replica", url(*a)}}) == 0);
  CHECK(metric(r->port(), "loom_route_requests_total", {{"replica", url(*a)}, {"outcome", "failed"}}) == 0);
  // The replica's request ended long before its 40 tokens (4 s): the router closed its socket.
  REQUIRE(eventually([&] { return stats(a->port())["decoding"] == 0; }));
  CHECK(stats(a->port())["completion_tokens"].get<int>() < 40);
}
