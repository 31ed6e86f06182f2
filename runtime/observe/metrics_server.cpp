// runtime/observe/metrics_server.cpp: GET /metrics over cpp-httplib (see metrics_server.hpp).
#include "loom/runtime/observe/metrics_server.hpp"

#include <fmt/format.h>
#include <httplib.h>

#include <stdexcept>

#include "loom/runtime/http/listener.hpp"

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
  std::unique_ptr<http::listener> door;
  listen_address at;
};

metrics_server::metrics_server(const std::string& address, registry& source) : impl_(std::make_unique<impl>()) {
  impl_->at = parse_listen_address(address);
  // Read-only, for a scraper: no key (bind it where only the scraper reaches), no browser's Host check.
  http::listener_options o;
  o.name = "metrics";
  o.host = impl_->at.host;
  o.port = impl_->at.port;
  o.threads = 2;
  o.max_body = 0;  // nothing here takes a body
  impl_->door = std::make_unique<http::listener>(std::move(o));
  impl_->door->server().Get("/metrics", [&source](const httplib::Request&, httplib::Response& res) {
    res.set_content(source.text(), text_content_type);
  });
  try {
    impl_->at.port = impl_->door->bind();
  } catch (const std::runtime_error&) {
    throw std::runtime_error(
        fmt::format("cannot serve metrics on {}: {}", address, http::bind_error(impl_->at.host, impl_->at.port)));
  }
  impl_->door->start();
}

metrics_server::~metrics_server() { impl_->door->stop(); }

int metrics_server::port() const { return impl_->at.port; }

std::string metrics_server::address() const {
  return impl_->at.host.find(':') != std::string::npos ? fmt::format("[{}]:{}", impl_->at.host, impl_->at.port)
                                                        : fmt::format("{}:{}", impl_->at.host, impl_->at.port);
}

}  // namespace loom::observe
