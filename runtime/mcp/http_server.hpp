// runtime/mcp/http_server.hpp: the server side of MCP's Streamable HTTP transport, as one route added to a
// cpp-httplib server (`loom serve --mcp` adds it at /mcp beside the OpenAI endpoint). POST carries one
// JSON-RPC message: initialize opens a session (Mcp-Session-Id in the reply; every later POST must carry it),
// a notification or response gets 202, a request gets its answer as application/json, or, for tools/call, as
// an SSE stream that carries progress notifications and ends with the result. A client that goes away
// mid-stream cancels its call. DELETE ends a session. GET (a stream of server-initiated messages) is not
// offered: 405. Malformed messages get HTTP 400 with a JSON-RPC error body.
#pragma once

#include <cstddef>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "runtime/mcp/server.hpp"

namespace httplib {
class Server;
}

namespace loom::mcp {

class http_endpoint {
 public:
  http_endpoint(tool_provider& tools, server_info info, std::size_t max_sessions = 64);
  ~http_endpoint();
  // Adds POST, GET and DELETE handlers for `path` to `http`; this endpoint must outlive the server's run.
  void attach(httplib::Server& http, const std::string& path);

 private:
  struct session;
  std::shared_ptr<session> find(const std::string& id);

  tool_provider& tools_;
  server_info info_;
  std::size_t max_sessions_;
  std::mutex mu_;
  std::map<std::string, std::shared_ptr<session>> sessions_;
};

}  // namespace loom::mcp
