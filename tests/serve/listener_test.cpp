// tests/serve/listener_test.cpp: the doors of `loom serve` that its HTTP listener (runtime/http/listener.hpp)
// keeps, on the real binary over 127.0.0.1: a port in use is not shared, /mcp needs the key as /v1/ does,
// MCP sessions end when idle and the oldest idle one makes room, a body sent slowly is cut off and frees its
// slot, a foreign Host or Origin is refused, refusals close with one Connection header and say Retry-After.
#include <doctest/doctest.h>
#include <arpa/inet.h>
#include <httplib.h>
#include <netinet/in.h>
#include <nlohmann/json.hpp>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

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

// A refusal closes the connection, maybe while an httplib client is still writing its body: httplib's
// client writes without MSG_NOSIGNAL, so the write must fail with EPIPE, not kill the test.
const bool sigpipe_ignored = std::signal(SIGPIPE, SIG_IGN) != SIG_ERR;

std::string chat_body(const std::string& text) {
  return json{{"model", "m"}, {"messages", json::array({{{"role", "user"}, {"content", text}}})}}.dump();
}

const std::string initialize = json{{"jsonrpc", "2.0"}, {"id", 1}, {"method", "initialize"},
                                    {"params", {{"protocolVersion", "2025-03-26"}, {"capabilities", json::object()},
                                                {"clientInfo", {{"name", "t"}, {"version", "1"}}}}}}
                                   .dump();
const std::string list_tools = json{{"jsonrpc", "2.0"}, {"id", 2}, {"method", "tools/list"}}.dump();

httplib::Headers mcp_headers(const std::string& session = "") {
  httplib::Headers h{{"Accept", "application/json, text/event-stream"}};
  if (!session.empty()) h.emplace("Mcp-Session-Id", session);
  return h;
}


// Everything the server sends until it closes the connection (or 10 s pass).
std::string read_to_close(int fd) {
  std::string got;
  char buf[4096];
  for (;;) {
    auto n = recv(fd, buf, sizeof buf, 0);
    if (n <= 0) break;
    got.append(buf, static_cast<std::size_t>(n));
  }
  return got;
}

int status_of(const std::string& got) { return got.size() < 12 ? 0 : std::atoi(got.c_str() + 9); }

std::size_t count_of(const std::string& s, const std::string& needle) {
  std::size_t n = 0;
  for (auto at = s.find(needle); at != std::string::npos; at = s.find(needle, at + 1)) ++n;
  return n;
}

}  // namespace

TEST_CASE("a second loom serve on a port in use fails at start, naming the address, instead of sharing it" *
          doctest::timeout(60)) {
  test::serve_process first{"configs/serve_echo.yaml"};
  test::process_options o;
  o.deadline = 20s;
  auto second = test::run_process({test::loom_binary(), "serve", std::string(LOOM_SOURCE_DIR) + "/configs/serve_echo.yaml",
                                   "--port", std::to_string(first.port())},
                                  o);
  CAPTURE(second.err);
  CHECK_FALSE(second.timed_out);
  CHECK(second.status != 0);
  CHECK(second.err.find("127.0.0.1:" + std::to_string(first.port())) != std::string::npos);
  CHECK(second.err.find("address in use") != std::string::npos);
  // The first one still has the port, whole.
  httplib::Client c{first.host(), first.port()};
  for (int i = 0; i < 8; ++i) {
    auto r = c.Post("/v1/chat/completions", chat_body("mine"), "application/json");
    REQUIRE(r);
    CHECK(r->status == 200);
  }
}

TEST_CASE("--api-key-env guards /mcp as it guards /v1/: no key or a wrong one is a 401 before anything runs" *
          doctest::timeout(60)) {
  setenv("LOOM_LISTENER_TEST_KEY", "k-123", 1);
  test::serve_process s{"configs/serve_echo.yaml", {"--mcp", "--api-key-env", "LOOM_LISTENER_TEST_KEY"}};
  unsetenv("LOOM_LISTENER_TEST_KEY");
  httplib::Client c{s.host(), s.port()};
  auto r = c.Post("/mcp", mcp_headers(), initialize, "application/json");
  REQUIRE(r);
  CHECK(r->status == 401);
  CHECK(r->get_header_value("WWW-Authenticate") == "Bearer");
  CHECK_FALSE(r->has_header("Mcp-Session-Id"));
  auto headers = mcp_headers();
  headers.emplace("Authorization", "Bearer wrong");
  r = c.Post("/mcp", headers, initialize, "application/json");
  REQUIRE(r);
  CHECK(r->status == 401);
  headers = mcp_headers();
  headers.emplace("Authorization", "Bearer k-123");
  r = c.Post("/mcp", headers, initialize, "application/json");
  REQUIRE(r);
  CHECK(r->status == 200);
  CHECK(r->has_header("Mcp-Session-Id"));
  CHECK(c.Get("/health")->status == 200);  // a health check needs no key
  // /mcp's bodies are bounded by --max-body (1 MiB), as /v1/'s are, not by MCP's 16 MiB: refused from the
  // headers, before the body is sent.
  int fd = connect_loopback(s.port());
  send_all(fd, "POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer k-123\r\n"
               "Content-Type: application/json\r\nContent-Length: " + std::to_string(2 << 20) + "\r\n\r\n");
  auto got = read_to_close(fd);
  close(fd);
  CHECK(status_of(got) == 413);
  CHECK(got.find("--max-body") != std::string::npos);
}

TEST_CASE("MCP sessions: many initialize calls never lock a later client out; idle sessions expire; DELETE "
          "ends one" * doctest::timeout(90)) {
  test::serve_process s{"configs/serve_echo.yaml", {"--mcp", "--mcp-session-idle", "1"}};
  httplib::Client c{s.host(), s.port()};
  std::vector<std::string> ids;
  for (int i = 0; i < 80; ++i) {  // more than the table holds (64): the least recently used make room
    auto r = c.Post("/mcp", mcp_headers(), initialize, "application/json");
    REQUIRE(r);
    CAPTURE(i);
    CAPTURE(r->body);
    REQUIRE(r->status == 200);
    ids.push_back(r->get_header_value("Mcp-Session-Id"));
  }
  // The oldest made room; the newest is still there.
  auto r = c.Post("/mcp", mcp_headers(ids.front()), list_tools, "application/json");
  REQUIRE(r);
  CHECK(r->status == 404);
  r = c.Post("/mcp", mcp_headers(ids.back()), list_tools, "application/json");
  REQUIRE(r);
  CHECK(r->status == 200);
  // Idle past --mcp-session-idle: gone, and the client is told to initialize again.
  std::this_thread::sleep_for(1500ms);
  r = c.Post("/mcp", mcp_headers(ids.back()), list_tools, "application/json");
  REQUIRE(r);
  CHECK(r->status == 404);
  CHECK(r->body.find("initialize again") != std::string::npos);
  // DELETE ends a session at once.
  r = c.Post("/mcp", mcp_headers(), initialize, "application/json");
  REQUIRE(r);
  auto id = r->get_header_value("Mcp-Session-Id");
  CHECK(c.Delete("/mcp", mcp_headers(id))->status == 200);
  CHECK(c.Post("/mcp", mcp_headers(id), list_tools, "application/json")->status == 404);
}

// Sends `body` to `path` a byte every 100 ms (each well within the read timeout; the body as a whole far too
// slow) until the server answers; what it answered, and how long that took.
std::pair<std::string, clock_type::duration> trickle(int port, const std::string& path, const std::string& body) {
  int fd = connect_loopback(port);
  send_all(fd, "POST " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
               "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n");
  auto t0 = clock_type::now();
  std::string got;
  for (std::size_t i = 0; i < body.size() && clock_type::now() - t0 < 10s; ++i) {
    if (send(fd, body.data() + i, 1, MSG_NOSIGNAL) <= 0) break;
    char buf[4096];
    auto n = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
    if (n > 0) {
      got.append(buf, static_cast<std::size_t>(n));
      break;
    }
    std::this_thread::sleep_for(100ms);
  }
  got += read_to_close(fd);
  close(fd);
  return {got, clock_type::now() - t0};
}

TEST_CASE("a body sent slowly is cut off at --body-timeout with a 408, and its slot is free again" *
          doctest::timeout(60)) {
  test::serve_process s{"configs/serve_echo.yaml", {"--body-timeout", "1", "--max-concurrent", "1", "--mcp"}};
  // The completions route, /mcp, and a path with no route at all: none reads a body without a deadline.
  for (const char* path : {"/v1/chat/completions", "/mcp", "/v1/nowhere"}) {
    auto [got, took] = trickle(s.port(), path, chat_body("slow"));
    CAPTURE(path);
    CAPTURE(got);
    CHECK(status_of(got) == 408);
    CHECK(got.find("--body-timeout") != std::string::npos);
    CHECK(took < 3s);
  }
  // The only slot is free again.
  httplib::Client c{s.host(), s.port()};
  auto r = c.Post("/v1/chat/completions", chat_body("next"), "application/json");
  REQUIRE(r);
  CHECK(r->status == 200);
}

TEST_CASE("/mcp refuses a Host that is not this server's name and an Origin of another site (DNS rebinding)" *
          doctest::timeout(60)) {
  test::serve_process s{"configs/serve_echo.yaml", {"--mcp", "--allow-host", "loom.internal"}};
  auto port = std::to_string(s.port());
  auto post = [&](const std::string& host, const std::string& origin) {
    httplib::Client c{s.host(), s.port()};
    auto h = mcp_headers();
    h.emplace("Host", host);
    if (!origin.empty()) h.emplace("Origin", origin);
    auto r = c.Post("/mcp", h, initialize, "application/json");
    return r ? r->status : -1;
  };
  CHECK(post("evil.example:" + port, "") == 403);                           // a rebound name
  CHECK(post("evil.example:" + port, "http://evil.example:" + port) == 403);  // its page, same "origin"
  CHECK(post("127.0.0.1:" + port, "http://evil.example") == 403);          // another site's page
  CHECK(post("127.0.0.1:" + port, "http://localhost:" + port) == 403);     // another origin on this host
  CHECK(post("127.0.0.1:" + port, "") == 200);
  CHECK(post("localhost:" + port, "http://localhost:" + port) == 200);     // a page of this server
  CHECK(post("loom.internal:" + port, "") == 200);                         // --allow-host
  // /v1/ is not for browsers: any Host, but never another site's page.
  httplib::Client c{s.host(), s.port()};
  auto r = c.Post("/v1/chat/completions", {{"Host", "serve.example:" + port}}, chat_body("hi"), "application/json");
  REQUIRE(r);
  CHECK(r->status == 200);
  r = c.Post("/v1/chat/completions", {{"Origin", "http://evil.example"}}, chat_body("hi"), "text/plain");
  REQUIRE(r);
  CHECK(r->status == 403);
}

TEST_CASE("a refusal closes the connection with one Connection: close, no Keep-Alive, and a 429 says Retry-After" *
          doctest::timeout(60)) {
  setenv("LOOM_LISTENER_TEST_KEY", "k-123", 1);
  test::serve_process s{"tests/serve/slow.yaml",
                        {"--input", "prompt", "--max-concurrent", "1", "--api-key-env", "LOOM_LISTENER_TEST_KEY"}};
  unsetenv("LOOM_LISTENER_TEST_KEY");
  auto body = chat_body("hi");
  auto raw = [&](const std::string& extra) {
    int fd = connect_loopback(s.port());
    send_all(fd, "POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n" +
                     extra + "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body);
    auto got = read_to_close(fd);  // returns: the server closed the connection (or 10 s passed)
    close(fd);
    return got;
  };
  auto check_closing_head = [](const std::string& got) {
    auto head = got.substr(0, got.find("\r\n\r\n"));
    CAPTURE(head);
    CHECK(count_of(head, "Connection: close") == 1);
    CHECK(head.find("Keep-Alive") == std::string::npos);
  };
  auto got = raw("");
  CHECK(status_of(got) == 401);
  check_closing_head(got);
  // The one slot busy for about a second (a streamed answer that has begun): the next request is a 429
  // that says when to come back.
  auto streamed = json::parse(body);
  streamed["stream"] = true;
  auto stream_body = streamed.dump();
  int busy = connect_loopback(s.port());
  send_all(busy, "POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                 "Authorization: Bearer k-123\r\nContent-Length: " + std::to_string(stream_body.size()) +
                     "\r\n\r\n" + stream_body);
  std::string first;
  char buf[4096];
  while (first.find("data: ") == std::string::npos) {
    auto n = recv(busy, buf, sizeof buf, 0);
    REQUIRE(n > 0);
    first.append(buf, static_cast<std::size_t>(n));
  }
  CHECK(status_of(first) == 200);
  got = raw("Authorization: Bearer k-123\r\n");
  close(busy);
  CAPTURE(got);
  CHECK(status_of(got) == 429);
  CHECK(got.find("Retry-After: 1") != std::string::npos);
  check_closing_head(got);
  // A GET with a body is refused too: only POST takes one.
  int fd = connect_loopback(s.port());
  send_all(fd, "GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 5\r\n\r\nabcde");
  got = read_to_close(fd);
  close(fd);
  CHECK(status_of(got) == 400);
}
