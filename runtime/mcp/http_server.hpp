// runtime/mcp/http_server.hpp: the server side of MCP's Streamable HTTP transport, as one route added to a
// loom HTTP listener (runtime/http/listener.hpp; `loom serve --mcp` adds it at /mcp beside the OpenAI
// endpoint, under the same key, body limits and Host/Origin checks). POST carries one JSON-RPC message:
// initialize opens a session (Mcp-Session-Id in the reply; every later POST must carry it), a notification
// or response gets 202, a request gets its answer as application/json, or, for tools/call, as an SSE stream
// (one of the listener's stream slots; none free: 503) that carries progress notifications and ends with
// the result. A client that goes away mid-stream cancels its call. DELETE ends a session. GET (a stream of
// server-initiated messages) is not offered: 405. Malformed messages get HTTP 400 with a JSON-RPC error body.
// Sessions end after `session_idle` without a request (a later request gets 404: initialize again); when
// the table is full, a new initialize ends the least recently used idle session. Only when every session
// has a call in flight is initialize refused (503, Retry-After).
#pragma once

#include <chrono>
#include <cstddef>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "loom/runtime/mcp/server.hpp"

namespace loom::http {
class listener;
}

namespace loom::mcp {

struct http_endpoint_options {
  std::size_t max_sessions = 64;
  std::chrono::milliseconds session_idle = std::chrono::minutes(10);
};

class http_endpoint {
 public:
  http_endpoint(tool_provider& tools, server_info info, http_endpoint_options options = {});
  ~http_endpoint();
  // Adds POST, GET and DELETE handlers for `path` to the listener's server; this endpoint must outlive the
  // server's run.
  void attach(http::listener& l, const std::string& path);

 private:
  struct session;
  struct use;
  // The session `id`, in use from now on, or nullptr when there is none or it expired.
  std::shared_ptr<use> find(const std::string& id);
  // Takes the sessions idle past session_idle out of the table (mu_ held); with `room`, also the least
  // recently used idle one while the table is full. The caller destroys them outside the lock.
  std::vector<std::shared_ptr<session>> sweep(bool room);

  tool_provider& tools_;
  server_info info_;
  http_endpoint_options options_;
  std::mutex mu_;
  std::map<std::string, std::shared_ptr<session>> sessions_;
};

}  // namespace loom::mcp
