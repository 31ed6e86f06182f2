// runtime/http/listener.cpp: the listener's rules (see listener.hpp) on cpp-httplib 0.11: a socket-options
// hook without SO_REUSEPORT, a thread pool with room for the streams, and pre- and post-routing handlers.
#include "loom/runtime/http/listener.hpp"

#include <arpa/inet.h>
#include <fmt/format.h>
#include <httplib.h>
#include <netdb.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <thread>

namespace loom::http {
namespace {

using clock = std::chrono::steady_clock;

// Compares every byte whatever differs first, so the time taken does not say how much of a key was right.
bool same_secret(std::string_view given, std::string_view key) {
  if (given.size() != key.size()) return false;
  unsigned char diff = 0;
  for (std::size_t i = 0; i < key.size(); ++i) diff |= static_cast<unsigned char>(given[i] ^ key[i]);
  return diff == 0;
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// The name in a Host header value ("name:port", "[v6]:port", "name"), lower case.
std::string host_name(std::string_view host) {
  if (!host.empty() && host.front() == '[') {
    auto close = host.find(']');
    return lower(host.substr(1, close == std::string_view::npos ? std::string_view::npos : close - 1));
  }
  auto colon = host.rfind(':');
  if (colon != std::string_view::npos && host.find(':') == colon) host = host.substr(0, colon);
  return lower(host);
}

bool is_ip_literal(const std::string& name) {
  unsigned char buf[sizeof(in6_addr)];
  return inet_pton(AF_INET, name.c_str(), buf) == 1 || inet_pton(AF_INET6, name.c_str(), buf) == 1;
}

std::string default_error_body(int, std::string_view message) {
  return nlohmann::json{{"error", {{"message", message}}}}.dump();
}

}  // namespace

// Asked of the kernel directly: httplib only says that binding failed.
std::string bind_error(const std::string& host, int port) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE;
  addrinfo* found = nullptr;
  if (int e = getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &found); e != 0)
    return fmt::format("not an address of this host ({})", gai_strerror(e));
  std::string why = "unknown reason";
  for (auto* a = found; a; a = a->ai_next) {
    int fd = ::socket(a->ai_family, a->ai_socktype, a->ai_protocol);
    if (fd < 0) continue;
    int yes = 1;
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
    int rc = ::bind(fd, a->ai_addr, a->ai_addrlen);
    int err = errno;
    ::close(fd);
    if (rc == 0) continue;
    why = err == EADDRINUSE    ? std::string("address in use (another process listens there)")
          : err == EADDRNOTAVAIL ? std::string("not an address of this host")
                                 : std::string(std::strerror(err));
    break;
  }
  freeaddrinfo(found);
  return why;
}

std::string human_bytes(std::size_t n) {
  if (n % (std::size_t{1} << 20) == 0) return fmt::format("{} MiB", n >> 20);
  if (n % 1024 == 0) return fmt::format("{} KiB", n >> 10);
  return fmt::format("{} bytes", n);
}

struct listener::impl {
  listener_options options;
  httplib::Server http;
  std::vector<std::string> names;  // lower case: the Host names accepted on browser-facing paths
  int socket = -1;                 // the listening socket, once bound
  int port = -1;
  std::atomic<std::size_t> streams{0};
  std::thread thread;

  bool host_allowed(const std::string& header) const {
    if (header.empty()) return true;  // HTTP/1.0 without Host: no browser sends that
    auto name = host_name(header);
    if (is_ip_literal(name) || name == "localhost" || name.ends_with(".localhost")) return true;
    return std::find(names.begin(), names.end(), name) != names.end();
  }
};

listener::listener(listener_options options) : impl_(std::make_unique<impl>()) {
  auto& x = *impl_;
  x.options = std::move(options);
  if (!x.options.error_body) x.options.error_body = default_error_body;
  x.names.push_back(lower(x.options.host));
  for (const auto& n : x.options.allowed_hosts) x.names.push_back(lower(n));
  char self[256] = {};
  if (gethostname(self, sizeof self - 1) == 0 && *self) x.names.push_back(lower(self));

  auto& http = x.http;
  // The streams beside the ordinary threads: however many streams are open, `threads` remain for the rest.
  auto pool = x.options.threads + x.options.max_streams;
  http.new_task_queue = [pool] { return new httplib::ThreadPool(pool); };  // httplib owns it
  // SO_REUSEADDR only: httplib's default adds SO_REUSEPORT, which lets a second process bind a port in use
  // (and take half its connections) instead of failing.
  http.set_socket_options([i = &x](socket_t sock) {
    int yes = 1;
    ::setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
    i->socket = sock;
  });
  http.set_tcp_nodelay(true);  // accepted sockets inherit it: no Nagle delay meeting delayed ACKs
  http.set_read_timeout(x.options.read_timeout);
  http.set_write_timeout(x.options.write_timeout);
  http.set_keep_alive_timeout(x.options.idle_timeout.count());
  // Routes that read their body with read_body() bound it themselves; this bounds every other route's.
  http.set_payload_max_length(x.options.max_body);
  http.set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
    return refuse_at_door(req, res) ? httplib::Server::HandlerResponse::Handled
                                    : httplib::Server::HandlerResponse::Unhandled;
  });
  http.set_expect_100_continue_handler([this](const httplib::Request& req, httplib::Response& res) {
    return refuse_at_door(req, res) ? res.status : 100;
  });
  // Last touch before the headers go out: httplib adds Keep-Alive to every answer it does not close for
  // its own reasons, also to the refusals that close; and a 429/503 says when to come back.
  http.set_post_routing_handler([](const httplib::Request&, httplib::Response& res) {
    if ((res.status == 429 || res.status == 503) && !res.has_header("Retry-After")) res.set_header("Retry-After", "1");
    auto closing = res.headers.equal_range("Connection");
    bool close = false;
    for (auto it = closing.first; it != closing.second; ++it) close = close || lower(it->second) == "close";
    if (close) {
      res.headers.erase("Keep-Alive");
      res.headers.erase("Connection");
      res.set_header("Connection", "close");
    }
  });
}

listener::~listener() { stop(); }

httplib::Server& listener::server() { return impl_->http; }

const listener_options& listener::options() const { return impl_->options; }

int listener::bind() {
  auto& x = *impl_;
  auto& o = x.options;
  // Last of the POST routes (httplib tries them in order): a POST to any other path is read within the
  // body's limits and deadline, then answered 404, instead of being read by httplib with no deadline.
  x.http.Post(".*", [this](const httplib::Request&, httplib::Response& res, const httplib::ContentReader& reader) {
    auto b = read_body(reader);
    if (!refuse_body(res, b)) res.status = 404;
  });
  int port = o.port == 0 ? x.http.bind_to_any_port(o.host) : (x.http.bind_to_port(o.host, o.port) ? o.port : -1);
  if (port < 0) {
    auto shown = o.host.find(':') != std::string::npos ? "[" + o.host + "]" : o.host;
    throw std::runtime_error(
        fmt::format("{} cannot listen on {}:{}: {}", o.name, shown, o.port, bind_error(o.host, o.port)));
  }
  // httplib listens with a backlog of 5: a burst of connections beyond it has its SYNs dropped and retried
  // a second later. Listening again on the same socket raises the backlog.
  if (x.socket >= 0) ::listen(x.socket, SOMAXCONN);
  return x.port = port;
}

void listener::run() { impl_->http.listen_after_bind(); }

void listener::start() {
  auto& x = *impl_;
  x.thread = std::thread([&x] { x.http.listen_after_bind(); });
  // stop() before the accept loop has started would not end it: wait for the loop (microseconds).
  for (int i = 0; i < 10000 && !x.http.is_running(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(1));
}

void listener::stop() {
  auto& x = *impl_;
  x.http.stop();
  if (x.thread.joinable()) x.thread.join();
}

int listener::port() const { return impl_->port; }

bool listener::refuse_at_door(const httplib::Request& req, httplib::Response& res) const {
  const auto& x = *impl_;
  const auto& o = x.options;
  // A web page's request names its origin; one from another origin (a page on another site or port) is
  // refused on every path: nothing here is meant to be called from someone else's page.
  auto origin = req.get_header_value("Origin");
  if (!origin.empty()) {
    auto host = req.get_header_value("Host");
    auto o_lower = lower(origin);
    bool same = !host.empty() && (o_lower == "http://" + lower(host) || o_lower == "https://" + lower(host));
    if (!same) {
      refuse(res, 403, fmt::format("cross-origin request refused: Origin `{}` is not this server", origin));
      return true;
    }
  }
  // On the paths a browser loads, the Host a page asked for must be one of ours: a page whose own name
  // was made to resolve to this address (DNS rebinding) sends its own name.
  if (o.browser_facing && o.browser_facing(req.path) && !x.host_allowed(req.get_header_value("Host"))) {
    refuse(res, 403,
           fmt::format("Host `{}` is not a name of this server (allowed: its address, localhost, IP addresses{})",
                       req.get_header_value("Host"), o.allowed_hosts.empty() ? "" : ", the allowed host names"));
    return true;
  }
  if (o.api_key && o.needs_key && o.needs_key(req.path)) {
    static constexpr std::string_view bearer = "Bearer ";
    auto auth = req.get_header_value("Authorization");
    if (!(auth.rfind(bearer, 0) == 0 && same_secret(std::string_view(auth).substr(bearer.size()), *o.api_key))) {
      res.set_header("WWW-Authenticate", "Bearer");
      refuse(res, 401,
             auth.empty() ? "this server needs an API key: send `Authorization: Bearer <key>`"
                          : "the API key is not the one this server was given");
      return true;
    }
  }
  // Only POST takes a body (and none where max_body is 0): httplib would read any other with no deadline.
  bool has_body = req.has_header("Transfer-Encoding") ||
                  (req.has_header("Content-Length") && req.get_header_value("Content-Length") != "0");
  if (has_body && (req.method != "POST" || o.max_body == 0)) {
    refuse(res, 400, fmt::format("{} {} takes no request body", req.method, req.path));
    return true;
  }
  if (req.has_header("Content-Length") &&
      std::strtoull(req.get_header_value("Content-Length").c_str(), nullptr, 10) > o.max_body) {
    refuse(res, 413,
           fmt::format("the request body is larger than this server accepts ({}; --max-body)", human_bytes(o.max_body)));
    return true;
  }
  return false;
}

void listener::refuse(httplib::Response& res, int status, std::string_view message) const {
  auto body = std::make_shared<std::string>(impl_->options.error_body(status, message));
  res.status = status;
  if (status == 429 || status == 503) res.set_header("Retry-After", "1");
  res.set_header("Connection", "close");
  // httplib 0.11 has no way to say "close after this response"; a content provider that writes the whole
  // body and then reports failure makes it close the connection.
  res.set_content_provider(body->size(), "application/json; charset=utf-8",
                           [body](std::size_t offset, std::size_t length, httplib::DataSink& sink) {
                             sink.write(body->data() + offset, length);
                             return false;  // done: close the connection
                           });
}

void listener::answer_errors_in_json(std::function<std::string(const httplib::Request&, int status)> message) {
  auto body_of = impl_->options.error_body;
  auto& http = server();
  http.set_error_handler(httplib::Server::HandlerWithResponse(
      [body_of, message = std::move(message)](const httplib::Request& req, httplib::Response& res) {
        if (!res.body.empty() || res.content_provider_) return httplib::Server::HandlerResponse::Unhandled;
        auto text = message ? message(req, res.status) : fmt::format("HTTP {} for {} {}", res.status, req.method, req.path);
        res.set_content(body_of(res.status, text), "application/json; charset=utf-8");
        return httplib::Server::HandlerResponse::Handled;
      }));
  http.set_exception_handler([body_of](const httplib::Request&, httplib::Response& res, std::exception_ptr ep) {
    std::string text = "internal error";
    try {
      std::rethrow_exception(ep);
    } catch (const std::exception& e) {
      text = e.what();
    } catch (...) {
    }
    res.status = 500;
    res.set_content(body_of(500, text), "application/json; charset=utf-8");
  });
}

body listener::read_body(const httplib::ContentReader& reader) const {
  const auto& o = impl_->options;
  auto deadline = clock::now() + o.body_timeout;
  body b;
  // Each piece arrives within read_timeout or the read fails; a client that sends piece after piece
  // slowly is stopped at the deadline, so a body never holds a thread much longer than body_timeout.
  bool read = reader([&](const char* data, std::size_t length) {
    if (b.text.size() + length > o.max_body) {
      b.result = body::status::too_large;
      return false;  // stop reading: the rest is never buffered
    }
    if (clock::now() > deadline) {
      b.result = body::status::too_slow;
      return false;
    }
    b.text.append(data, length);
    return true;
  });
  if (b.result == body::status::ok && !read) b.result = body::status::unreadable;
  if (b.result != body::status::ok) b.text.clear();
  return b;
}

bool listener::refuse_body(httplib::Response& res, const http::body& b) const {
  const auto& o = impl_->options;
  switch (b.result) {
    case body::status::ok: return false;
    case body::status::too_large:
      refuse(res, 413,
             fmt::format("the request body is larger than this server accepts ({}; --max-body)", human_bytes(o.max_body)));
      return true;
    case body::status::too_slow:
      refuse(res, 408,
             fmt::format("the request body did not arrive within {} ms (--body-timeout)", o.body_timeout.count()));
      return true;
    case body::status::unreadable: refuse(res, 400, "the request body could not be read"); return true;
  }
  return false;
}

std::shared_ptr<void> listener::open_stream() {
  struct slot {
    explicit slot(std::atomic<std::size_t>& n) : open(n) {}  // a constructor: clang 14 (the fuzz build) has no
                                                              // parenthesized aggregate init for make_shared
    std::atomic<std::size_t>& open;
    ~slot() { --open; }
  };
  auto& n = impl_->streams;
  auto max = impl_->options.max_streams;
  for (auto now = n.load(); now < max;)
    if (n.compare_exchange_weak(now, now + 1)) return std::make_shared<slot>(n);
  return nullptr;
}

std::size_t listener::open_streams() const { return impl_->streams.load(); }

}  // namespace loom::http
