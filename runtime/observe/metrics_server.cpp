// runtime/observe/metrics_server.cpp: GET /metrics over cpp-httplib (see metrics_server.hpp).
#include "runtime/observe/metrics_server.hpp"

#include <fmt/format.h>
#include <httplib.h>
#include <sys/socket.h>

#include <chrono>
#include <stdexcept>
#include <thread>

namespace loom::observe {

listen_address parse_listen_address(const std::string& text) {
  auto colon = text.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == text.size())
    throw std::invalid_argument(fmt::format("metrics address `{}`: expected HOST:PORT, e.g. 127.0.0.1:9464", text));
  listen_address a;
  a.host = text.substr(0, colon);
  if (a.host.size() >= 2 && a.host.front() == '[' && a.host.back() == ']') a.host = a.host.substr(1, a.host.size() - 2);
  auto port = text.substr(colon + 1);
  if (port.find_first_not_of("0123456789") != std::string::npos || port.size() > 5 || std::stoi(port) > 65535)
    throw std::invalid_argument(fmt::format("metrics address `{}`: port `{}` is not a number from 0 to 65535", text, port));
  a.port = std::stoi(port);
  return a;
}

struct metrics_server::impl {
  httplib::Server http;
  listen_address at;
  std::thread thread;
};

metrics_server::metrics_server(const std::string& address, registry& source) : impl_(std::make_unique<impl>()) {
  impl_->at = parse_listen_address(address);
  impl_->http.new_task_queue = [] { return new httplib::ThreadPool(2); };
  // SO_REUSEADDR only: httplib's default adds SO_REUSEPORT, which would let a second process share a port
  // that is in use instead of failing.
  impl_->http.set_socket_options([](socket_t sock) {
    int yes = 1;
    ::setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
  });
  impl_->http.Get("/metrics", [&source](const httplib::Request&, httplib::Response& res) {
    res.set_content(source.text(), text_content_type);
  });
  int port = impl_->at.port == 0 ? impl_->http.bind_to_any_port(impl_->at.host)
                                 : (impl_->http.bind_to_port(impl_->at.host, impl_->at.port) ? impl_->at.port : -1);
  if (port < 0)
    throw std::runtime_error(fmt::format("cannot serve metrics on {} (in use, or not an address of this host)", address));
  impl_->at.port = port;
  impl_->thread = std::thread([this] { impl_->http.listen_after_bind(); });
  // stop() before the accept loop has started would not end it: wait for the loop (microseconds).
  for (int i = 0; i < 10000 && !impl_->http.is_running(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(1));
}

metrics_server::~metrics_server() {
  impl_->http.stop();
  if (impl_->thread.joinable()) impl_->thread.join();
}

int metrics_server::port() const { return impl_->at.port; }

std::string metrics_server::address() const {
  return impl_->at.host.find(':') != std::string::npos ? fmt::format("[{}]:{}", impl_->at.host, impl_->at.port)
                                                        : fmt::format("{}:{}", impl_->at.host, impl_->at.port);
}

}  // namespace loom::observe
