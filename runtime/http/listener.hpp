// runtime/http/listener.hpp: the one HTTP listener every loom server is built on (`loom serve` and its /mcp,
// the live view, /metrics): a cpp-httplib server whose doors all follow the same rules, set here once:
//   - the port is this process's alone: no SO_REUSEPORT, so a second process on a port in use fails at
//     bind() ("address in use", naming HOST:PORT) instead of taking half the traffic; a deep listen backlog
//   - the bearer key, on every path `needs_key` names (401 before the body is read)
//   - a request from a web page must come from the same origin (an `Origin` that is not this server's is
//     403), and on `browser_facing` paths the `Host` must be one of this server's names (403 otherwise):
//     a page on another site cannot reach it through DNS rebinding
//   - long-lived answers (server-sent events) take one of `max_streams` stream slots, on threads of their
//     own; past them a new stream is 503 with Retry-After, and ordinary requests never wait for streams
//   - read, write and idle timeouts per connection; a request body must arrive whole within body_timeout
//     (read_body(): 408; a POST to a path without a route is read the same way), and only POST carries one
//   - every 429 and 503 says Retry-After; a refusal closes the connection and says only `Connection: close`
// Each server adds its routes to server() and sets only what differs. It must not replace the pre- or
// post-routing handlers (the listener's rules live there).
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace httplib {
class Server;
struct Request;
struct Response;
class ContentReader;
}  // namespace httplib

namespace loom::http {

struct listener_options {
  std::string name = "loom";  // who listens, in messages: "loom serve", "the live view", "metrics"
  std::string host = "127.0.0.1";
  int port = 0;  // 0: any free port (bind() says which)
  // Threads for ordinary requests (an idle keep-alive connection holds one until idle_timeout).
  std::size_t threads = 8;
  // Long-lived answers at once (server-sent events), each on a thread beside `threads`.
  std::size_t max_streams = 0;
  // Request bodies: at most this long (beyond: 413), and whole within body_timeout (beyond: 408). Only
  // POST takes one; 0: no route takes one (any body: 400).
  std::size_t max_body = std::size_t{1} << 20;
  std::chrono::milliseconds body_timeout{30'000};
  // A connection that sends nothing for read_timeout, or takes nothing for write_timeout, is closed; an
  // idle keep-alive connection after idle_timeout.
  std::chrono::seconds read_timeout{5}, write_timeout{5}, idle_timeout{2};
  // The key, and the paths it is checked on.
  std::optional<std::string> api_key;
  std::function<bool(std::string_view path)> needs_key;
  // Paths a browser may load: their `Host` is checked (empty: none).
  std::function<bool(std::string_view path)> browser_facing;
  // Host names besides the bound address, localhost, this machine's name and IP addresses.
  std::vector<std::string> allowed_hosts;
  // The body of a refusal: a JSON error of the server's own style (default: {"error": {"message": ...}}).
  std::function<std::string(int status, std::string_view message)> error_body;
};

// What read_body() found.
struct body {
  enum class status { ok, too_large, too_slow, unreadable } result = status::ok;
  std::string text;
};

class listener {
 public:
  explicit listener(listener_options options);
  ~listener();  // stops serving
  listener(const listener&) = delete;
  listener& operator=(const listener&) = delete;

  httplib::Server& server();
  const listener_options& options() const;

  // Binds (exclusively) and returns the port; call it once the routes are added (it adds the last one: a
  // POST to any other path is read within the limits, then 404). Throws std::runtime_error naming
  // HOST:PORT and the reason.
  int bind();
  // Serves on this thread until stop().
  void run();
  // Serves on a thread of its own (bind() first); returns once it accepts connections.
  void start();
  // From any thread: closes the listener; run() returns (start(): its thread is joined).
  void stop();
  int port() const;

  // The checks made before any route (key, Origin, Host, a body where none belongs): fills `res` with the
  // refusal and returns true, or returns false. A server's own Expect: 100-continue handler calls it first.
  bool refuse_at_door(const httplib::Request& req, httplib::Response& res) const;
  // Answers `status` with error_body(message), Retry-After on 429 and 503, and closes the connection (the
  // rest of a body that was not read cannot be taken for the next request).
  void refuse(httplib::Response& res, int status, std::string_view message) const;
  // Reads a POST body of a content-reader route within max_body and body_timeout.
  http::body read_body(const httplib::ContentReader& reader) const;
  // Refuses what read_body() found unless it is ok (413, 408 or 400): returns true when it did.
  bool refuse_body(httplib::Response& res, const http::body& b) const;

  // Errors without a body of their own (no such route, a malformed HTTP request) are answered with
  // error_body(status, message(req, status)) as JSON; an exception a handler throws becomes a 500 with its
  // what(). `message` nullptr: "HTTP <status> for <METHOD> <path>". Both servers of OpenAI's protocol
  // (`loom serve`, `loom route`) set it, with their own words for 404 and 413.
  void answer_errors_in_json(std::function<std::string(const httplib::Request&, int status)> message = nullptr);

  // A stream slot, held until the stream ends; nullptr when all max_streams are taken (refuse 503).
  std::shared_ptr<void> open_stream();
  std::size_t open_streams() const;

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

// Why HOST:PORT cannot be bound: "address in use (another process listens there)", "not an address of
// this host", or the system's word.
std::string bind_error(const std::string& host, int port);
// "1 MiB", "64 KiB" or "N bytes".
std::string human_bytes(std::size_t n);

}  // namespace loom::http
