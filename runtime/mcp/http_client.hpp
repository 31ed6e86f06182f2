// runtime/mcp/http_client.hpp: the client side of MCP's Streamable HTTP transport. Each outgoing message is
// one POST to the endpoint (Accept: application/json, text/event-stream); the reply is a JSON body or an SSE
// stream whose events are messages, read on a thread of the POST's own so that receive() keeps its deadline
// while a long call streams progress. The session id (Mcp-Session-Id) and the negotiated revision
// (MCP-Protocol-Version) go with every later POST; the session is ended with DELETE when the transport goes.
// Not done: the optional GET stream for messages the server sends outside any request.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "loom/runtime/mcp/transport.hpp"

namespace loom::mcp {

struct http_options {
  std::string url;  // http://host:port/path (https when cpp-httplib has OpenSSL)
  std::vector<std::pair<std::string, std::string>> headers;
  std::chrono::milliseconds timeout{60000};  // connect, and the longest silence on a response stream
};

// Throws transport_error for a URL it cannot use.
std::unique_ptr<transport> make_http_client_transport(const http_options& o);

}  // namespace loom::mcp
