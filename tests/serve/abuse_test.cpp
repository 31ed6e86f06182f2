// tests/serve/abuse_test.cpp: `loom serve` holds under abuse, on the real binary over 127.0.0.1 with raw
// sockets where a client must misbehave: sixteen 40 MB bodies at once, a body nested too deep, a streaming
// reader that stops reading, a client that leaves before its answer, a whole answer that never ends, no or
// the wrong API key. And one keep-alive connection is not held back by Nagle's algorithm.
#include <doctest/doctest.h>
#include <fmt/format.h>
#include <arpa/inet.h>
#include <fcntl.h>
#include <httplib.h>
#include <netinet/in.h>
#include <nlohmann/json.hpp>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "loom/runtime/serve/openai.hpp"
#include "tests/cli/process.hpp"
#include "tests/support/raw_socket.hpp"
#include "tests/serve/serve_process.hpp"

namespace {

using nlohmann::json;
using namespace loom;
using namespace std::chrono_literals;
using loom::test::connect_loopback;
using loom::test::send_all;
using clock_type = std::chrono::steady_clock;

std::string chat_body(const std::string& text, bool stream) {
  return json{{"model", "m"}, {"messages", json::array({{{"role", "user"}, {"content", text}}})}, {"stream", stream}}
      .dump();
}

// The server's resident memory in KiB.
long rss_kib(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("VmRSS:", 0) == 0) return std::strtol(line.c_str() + 6, nullptr, 10);
  return -1;
}

// Samples the server's resident memory every 10 ms on a thread of its own; peak() is the highest seen.
class rss_watch {
 public:
  explicit rss_watch(pid_t pid)
      : thread_([this, pid](std::stop_token stop) {
          while (!stop.stop_requested()) {
            peak_ = std::max(peak_.load(), rss_kib(pid));
            std::this_thread::sleep_for(10ms);
          }
        }) {}
  long peak() const { return peak_; }

 private:
  std::atomic<long> peak_{0};
  std::jthread thread_;
};


std::string post_head(std::size_t length, bool chunked, const std::string& extra = "") {
  return "POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n" + extra +
         (chunked ? std::string("Transfer-Encoding: chunked\r\n")
                  : "Content-Length: " + std::to_string(length) + "\r\n") +
         "\r\n";
}

// The status of an HTTP response at the start of `got`, or 0 while the status line is incomplete.
int status_of(const std::string& got) {
  if (got.size() < 12 || got.find("\r\n") == std::string::npos) return 0;
  return std::atoi(got.c_str() + 9);
}

struct upload_result {
  int status = 0;  // -1: the connection ended without a status line
  std::chrono::milliseconds took{0};
  std::string response;
};

// Sends a body of `total` bytes of '[' (chunked, or with its Content-Length) as fast as the server takes it,
// while reading; stops at the response's headers, however much of the body was sent by then.
upload_result upload(int port, std::size_t total, bool chunked, const std::string& extra_headers = "") {
  auto start = clock_type::now();
  int fd = connect_loopback(port);
  send_all(fd, post_head(total, chunked, extra_headers));
  fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
  const std::string piece(64 * 1024, '[');
  std::string frame = chunked ? fmt::format("{:x}\r\n{}\r\n", piece.size(), piece) : piece;
  std::size_t sent = 0, offset = 0;  // body bytes sent; bytes of the current frame sent
  bool sending = true;
  upload_result r;
  while (clock_type::now() - start < 20s) {
    pollfd p{fd, static_cast<short>(POLLIN | (sending ? POLLOUT : 0)), 0};
    if (poll(&p, 1, 100) <= 0) continue;
    if (p.revents & (POLLIN | POLLHUP | POLLERR)) {
      char buf[4096];
      auto n = recv(fd, buf, sizeof buf, 0);
      if (n > 0) {
        r.response.append(buf, static_cast<std::size_t>(n));
        if (r.response.find("\r\n\r\n") != std::string::npos) {
          r.status = status_of(r.response);
          break;
        }
        continue;
      }
      if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
        r.status = status_of(r.response) ? status_of(r.response) : -1;
        break;
      }
    }
    if (sending && (p.revents & POLLOUT)) {
      auto n = send(fd, frame.data() + offset, frame.size() - offset, MSG_NOSIGNAL);
      if (n < 0) {
        if (errno != EAGAIN && errno != EINTR) sending = false;  // refused and closed: now read
        continue;
      }
      offset += static_cast<std::size_t>(n);
      if (offset == frame.size()) {
        offset = 0;
        sent += piece.size();
        if (sent >= total) sending = false;
      }
    }
  }
  r.took = std::chrono::duration_cast<std::chrono::milliseconds>(clock_type::now() - start);
  // Give the rest of a short response a moment to arrive.
  auto until = clock_type::now() + 500ms;
  while (r.response.find('}', r.response.find("\r\n\r\n")) == std::string::npos && clock_type::now() < until) {
    char buf[4096];
    auto n = recv(fd, buf, sizeof buf, 0);
    if (n > 0) r.response.append(buf, static_cast<std::size_t>(n));
    else if (n == 0 || errno != EAGAIN) break;
    else std::this_thread::sleep_for(5ms);
  }
  close(fd);
  return r;
}

// Waits up to `limit` for `needle` to appear `times` times in the server's stderr.
bool wait_for_log(const test::serve_process& s, const std::string& needle, std::size_t times,
                  std::chrono::milliseconds limit) {
  auto until = clock_type::now() + limit;
  while (clock_type::now() < until) {
    auto err = s.err();
    std::size_t n = 0;
    for (auto at = err.find(needle); at != std::string::npos; at = err.find(needle, at + 1)) ++n;
    if (n >= times) return true;
    std::this_thread::sleep_for(20ms);
  }
  return false;
}

}  // namespace

TEST_CASE("a request body nested too deep is a 400 naming the byte, from the shared reader" * doctest::timeout(10)) {
  auto e = serve::parse_chat_request(std::string(100, '[') + std::string(100, ']'));
  REQUIRE(std::holds_alternative<serve::request_error>(e));
  CHECK(std::get<serve::request_error>(e).message == "the request body nests arrays and objects more than 64 deep "
                                                     "(at byte 64)");
}

TEST_CASE("sixteen concurrent 40 MB bodies are each refused within a second while /health answers and memory "
          "stays flat" * doctest::timeout(120)) {
  test::serve_process s{"configs/serve_echo.yaml"};
  auto before = rss_kib(s.pid());
  REQUIRE(before > 0);
  rss_watch rss{s.pid()};

  std::atomic<bool> done{false};
  std::atomic<int> health_bad{0}, health_ok{0};
  std::atomic<long> health_slowest_ms{0};
  std::thread health([&] {
    httplib::Client c{s.host(), s.port()};
    c.set_read_timeout(5, 0);
    while (!done) {
      auto t0 = clock_type::now();
      auto r = c.Get("/health");
      auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(clock_type::now() - t0).count();
      health_slowest_ms = std::max(health_slowest_ms.load(), static_cast<long>(ms));
      (r && r->status == 200 ? health_ok : health_bad)++;
      std::this_thread::sleep_for(20ms);
    }
  });

  constexpr int n = 16;
  std::vector<upload_result> results(n);
  std::vector<std::thread> clients;
  for (int i = 0; i < n; ++i)  // half say their length up front, half send chunks with no length
    clients.emplace_back([&, i] { results[i] = upload(s.port(), std::size_t{40} << 20, i % 2 == 1); });
  for (auto& t : clients) t.join();
  std::this_thread::sleep_for(200ms);  // a health check after the storm too
  done = true;
  health.join();

  for (int i = 0; i < n; ++i) {
    CAPTURE(i);
    CAPTURE(results[i].response);
    // 413 for the size; a chunked body takes a slot while it is read, so beyond eight at once it may be 429.
    CHECK((results[i].status == 413 || results[i].status == 429));
    CHECK(results[i].took < 1000ms);
    if (results[i].status == 413)
      CHECK(results[i].response.find("larger than this server accepts (1 MiB; --max-body)") != std::string::npos);
  }
  CHECK(health_bad == 0);
  CHECK(health_ok > 0);
  CHECK(health_slowest_ms < 1000);
  CAPTURE(before);
  CAPTURE(rss.peak());
  CHECK(rss.peak() - before < 100 * 1024);
  // And the server still answers.
  httplib::Client c{s.host(), s.port()};
  auto r = c.Post("/v1/chat/completions", chat_body("still here", false), "application/json");
  REQUIRE(r);
  CHECK(r->status == 200);
}

TEST_CASE("a client that expects 100-continue is refused before it sends its body" * doctest::timeout(60)) {
  setenv("LOOM_SERVE_TEST_KEY", "sekrit-42", 1);
  test::serve_process s{"configs/serve_echo.yaml", {"--api-key-env", "LOOM_SERVE_TEST_KEY"}};
  unsetenv("LOOM_SERVE_TEST_KEY");
  auto first_response = [&](const std::string& headers) {
    int fd = connect_loopback(s.port());
    send_all(fd, post_head(std::size_t{40} << 20, false, "Expect: 100-continue\r\n" + headers));
    std::string got = loom::test::read_head(fd);
    close(fd);
    return got;
  };
  CHECK(status_of(first_response("")) == 401);  // no key: not even a 100
  CHECK(status_of(first_response("Authorization: Bearer sekrit-42\r\n")) == 413);  // too long: no 100
  // A small body with the key gets its 100 Continue.
  int fd = connect_loopback(s.port());
  auto body = chat_body("hi", false);
  send_all(fd, post_head(body.size(), false, "Expect: 100-continue\r\nAuthorization: Bearer sekrit-42\r\n"));
  char buf[4096];
  auto n = recv(fd, buf, sizeof buf, 0);
  REQUIRE(n > 0);
  CHECK(status_of(std::string(buf, static_cast<std::size_t>(n))) == 100);
  send_all(fd, body);
  std::string got;
  while (got.find("\"content\":\"hi\"") == std::string::npos) {
    n = recv(fd, buf, sizeof buf, 0);
    if (n <= 0) break;
    got.append(buf, static_cast<std::size_t>(n));
  }
  close(fd);
  CHECK(status_of(got) == 200);
}

TEST_CASE("a body nested too deep is a 400 at once, before any JSON is built" * doctest::timeout(60)) {
  test::serve_process s{"configs/serve_echo.yaml", {"--max-body", "64MiB"}};
  auto t0 = clock_type::now();
  auto r = upload(s.port(), std::size_t{40} << 20, false);
  CAPTURE(r.response);
  CHECK(r.status == 400);
  CHECK(r.response.find("nests arrays and objects more than 64 deep (at byte 0)") == std::string::npos);
  CHECK(r.response.find("more than 64 deep (at byte 64)") != std::string::npos);
  CHECK(clock_type::now() - t0 < 2s);
}

TEST_CASE("a small --max-body refuses a chunked body as soon as it passes the limit" * doctest::timeout(60)) {
  test::serve_process s{"configs/serve_echo.yaml", {"--max-body", "100"}};
  httplib::Client c{s.host(), s.port()};
  auto ok = c.Post("/v1/chat/completions", chat_body("short", false), "application/json");
  REQUIRE(ok);
  CHECK(ok->status == 200);
  auto r = upload(s.port(), std::size_t{8} << 20, true);
  CHECK(r.status == 413);
  CHECK(r.response.find("(100 bytes; --max-body)") != std::string::npos);
}

TEST_CASE("a streaming reader that stops reading holds the graph back instead of growing the server" *
          doctest::timeout(120)) {
  test::serve_process s{"tests/serve/endless.yaml", {"--input", "prompt", "--max-concurrent", "1"}};
  int fd = connect_loopback(s.port());
  auto body = chat_body("go", true);
  send_all(fd, post_head(body.size(), false) + body);
  std::string got;
  while (got.size() < 256 * 1024) {  // the stream is flowing: some blobs have arrived
    char buf[65536];
    auto n = recv(fd, buf, sizeof buf, 0);
    REQUIRE(n > 0);
    got.append(buf, static_cast<std::size_t>(n));
  }
  CHECK(status_of(got) == 200);
  auto before = rss_kib(s.pid());
  {
    rss_watch rss{s.pid()};
    std::this_thread::sleep_for(3s);  // not reading: without backpressure the server would queue GBs
    CAPTURE(before);
    CAPTURE(rss.peak());
    CHECK(rss.peak() - before < 64 * 1024);
  }
  close(fd);  // unread data: a reset, so the server's blocked write fails and the run is cancelled

  // The one slot comes free: the next request is served, not refused with 429.
  auto until = clock_type::now() + 10s;
  int status = 0;
  while (clock_type::now() < until) {
    int again = connect_loopback(s.port());
    send_all(again, post_head(body.size(), false) + body);
    std::string head;
    char buf[4096];
    while (head.find("\r\n") == std::string::npos) {
      auto n = recv(again, buf, sizeof buf, 0);
      if (n <= 0) break;
      head.append(buf, static_cast<std::size_t>(n));
    }
    close(again);
    status = status_of(head);
    if (status == 200) break;
    std::this_thread::sleep_for(100ms);
  }
  CHECK(status == 200);
}

TEST_CASE("a client that leaves before its whole answer stops its run and frees its slot" * doctest::timeout(60)) {
  test::serve_process s{"tests/serve/forever.yaml", {"--input", "prompt", "--max-concurrent", "1"}};
  auto body = chat_body("wait", false);
  const std::string gone = "the client closed the connection; its run was stopped";
  for (std::size_t round = 1; round <= 2; ++round) {
    CAPTURE(round);
    int fd = connect_loopback(s.port());
    send_all(fd, post_head(body.size(), false) + body);
    std::this_thread::sleep_for(300ms);
    pollfd p{fd, POLLIN, 0};
    CHECK(poll(&p, 1, 0) == 0);  // no answer yet (in round 2: not a 429, so round 1's slot came free)
    close(fd);
    CHECK(wait_for_log(s, gone, round, 5s));
  }
}

TEST_CASE("a streaming client that leaves before the first value stops its run and frees its slot" *
          doctest::timeout(60)) {
  test::serve_process s{"tests/serve/silent.yaml", {"--input", "prompt", "--max-concurrent", "1"}};
  auto body = chat_body("wait", true);
  const std::string gone = "the client closed the connection; its run was stopped";
  for (std::size_t round = 1; round <= 2; ++round) {
    CAPTURE(round);
    int fd = connect_loopback(s.port());
    send_all(fd, post_head(body.size(), false) + body);
    std::this_thread::sleep_for(300ms);
    pollfd p{fd, POLLIN, 0};
    CHECK(poll(&p, 1, 0) == 0);  // nothing yet (in round 2: not a 429, so round 1's slot came free)
    close(fd);
    CHECK(wait_for_log(s, gone, round, 5s));
  }
}

TEST_CASE("a whole answer longer than --max-output stops its run and is a 500 that says so" * doctest::timeout(60)) {
  test::serve_process s{"tests/serve/endless.yaml", {"--input", "prompt", "--max-output", "1MiB"}};
  httplib::Client c{s.host(), s.port()};
  c.set_read_timeout(20, 0);
  auto r = c.Post("/v1/chat/completions", chat_body("go", false), "application/json");
  REQUIRE(r);
  CHECK(r->status == 500);
  CHECK(r->body.find("longer than this server sends (1 MiB; --max-output)") != std::string::npos);
  auto health = c.Get("/health");
  REQUIRE(health);
  CHECK(health->status == 200);
}

TEST_CASE("--api-key-env: /v1/ needs the bearer token, checked before the body is read; /health does not" *
          doctest::timeout(60)) {
  setenv("LOOM_SERVE_TEST_KEY", "sekrit-42", 1);
  test::serve_process s{"configs/serve_echo.yaml", {"--api-key-env", "LOOM_SERVE_TEST_KEY"}};
  httplib::Client c{s.host(), s.port()};
  auto none = c.Post("/v1/chat/completions", chat_body("hi", false), "application/json");
  REQUIRE(none);
  CHECK(none->status == 401);
  CHECK(json::parse(none->body)["error"]["type"] == "invalid_request_error");
  CHECK(c.Get("/v1/models")->status == 401);
  CHECK(c.Get("/health")->status == 200);

  httplib::Client wrong{s.host(), s.port()};
  wrong.set_bearer_token_auth("sekrit-43");
  CHECK(wrong.Post("/v1/chat/completions", chat_body("hi", false), "application/json")->status == 401);

  httplib::Client right{s.host(), s.port()};
  right.set_bearer_token_auth("sekrit-42");
  auto ok = right.Post("/v1/chat/completions", chat_body("hi", false), "application/json");
  REQUIRE(ok);
  CHECK(ok->status == 200);
  CHECK(json::parse(ok->body)["choices"][0]["message"]["content"] == "hi");

  auto big = upload(s.port(), std::size_t{40} << 20, false);
  CHECK(big.status == 401);
  CHECK(big.took < 1000ms);

  unsetenv("LOOM_SERVE_TEST_KEY");
  auto missing = test::run_process({test::loom_binary(), "serve", std::string(LOOM_SOURCE_DIR) + "/configs/serve_echo.yaml",
                                    "--port", std::to_string(test::free_port()), "--api-key-env",
                                    "LOOM_SERVE_TEST_KEY"});
  CHECK(missing.status == 2);
  CHECK(missing.err.find("the environment variable LOOM_SERVE_TEST_KEY is not set or empty") != std::string::npos);
}

TEST_CASE("one keep-alive connection is not held back by Nagle's algorithm, nor small answers by gzip" * doctest::timeout(60)) {
  // With Nagle on, each response's second write waits for the client's delayed ACK: about 40 ms a request.
  test::serve_process s{"configs/serve_echo.yaml"};
  httplib::Client c{s.host(), s.port()};
  c.set_keep_alive(true);
  c.set_tcp_nodelay(true);  // the client's own writes go at once; what is left to measure is the server's
  REQUIRE(c.Post("/v1/chat/completions", chat_body("warm", false), "application/json"));
  auto t0 = clock_type::now();
  for (int i = 0; i < 20; ++i) {
    auto r = c.Post("/v1/chat/completions", chat_body("ping", false), "application/json");
    REQUIRE(r);
    REQUIRE(r->status == 200);
  }
  CHECK(clock_type::now() - t0 < 400ms);  // about 20 x 40 ms = 800 ms with Nagle's delay
  // Small JSON answers go uncompressed even to a client that accepts gzip (deflate's set-up costs more).
  auto r = c.Post("/v1/chat/completions", {{"Accept-Encoding", "gzip, deflate, br"}}, chat_body("plain", false),
                  "application/json");
  REQUIRE(r);
  CHECK(r->get_header_value("Content-Encoding").empty());
  CHECK(r->get_header_value("Content-Type") == "application/json; charset=utf-8");
}
