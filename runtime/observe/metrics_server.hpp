// runtime/observe/metrics_server.hpp: `--metrics ADDR`: GET /metrics on its own listener (cpp-httplib), in
// the Prometheus text format, from a registry (default: the process-wide one). Anything else is a 404. It
// listens on a loom HTTP listener (runtime/http/listener.hpp): a port in use is an error, not shared.
#pragma once

#include <memory>
#include <string>

#include "loom/runtime/observe/metrics.hpp"

namespace loom::observe {

struct listen_address {
  std::string host;
  int port = 0;
};
// "HOST:PORT" ("127.0.0.1:9464", "[::1]:9464", "0.0.0.0:0"). Throws std::invalid_argument saying what is wrong.
listen_address parse_listen_address(const std::string& text);

class metrics_server {
 public:
  // Listens on `address` and serves from a thread of its own until destroyed. Throws
  // std::invalid_argument for a malformed address, std::runtime_error when it cannot listen.
  explicit metrics_server(const std::string& address, registry& source = metrics());
  ~metrics_server();
  metrics_server(const metrics_server&) = delete;
  metrics_server& operator=(const metrics_server&) = delete;

  int port() const;
  // "HOST:PORT" as bound.
  std::string address() const;

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace loom::observe
