// runtime/mcp/transport.hpp: how JSON-RPC messages travel, apart from what they mean. A transport sends one
// message and receives the next within a deadline; the protocol (client.hpp, server.hpp) never sees pipes,
// processes or HTTP. Implementations: a child process over stdio (stdio.hpp), a pair of file descriptors
// (the server side of stdio), Streamable HTTP (http_client.hpp).
#pragma once

#include <chrono>
#include <optional>
#include <stdexcept>
#include <string>

#include "loom/runtime/mcp/jsonrpc.hpp"

namespace loom::mcp {

using clock = std::chrono::steady_clock;

// The peer is gone or unusable: it exited, closed its end, sent an oversized message, refused a connection.
struct transport_error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

class transport {
 public:
  virtual ~transport() = default;
  // Sends one message. Throws transport_error.
  virtual void send(const jsonrpc::json& message) = 0;
  // The text of the next message, or nullopt if `deadline` passes first. Throws transport_error when the
  // peer has gone (the message names it and, for a process, the tail of its stderr).
  virtual std::optional<std::string> receive(clock::time_point deadline) = 0;
  // Names the peer in errors: "stdio server `node server.js`", "http server http://127.0.0.1:3001/mcp".
  virtual std::string describe() const = 0;
  // Ends every wait now (the run is being stopped): from any thread, at any time, once or more. A receive()
  // or send() under way or later throws transport_error ("cancelled"); the peer is let go without the
  // polite wait (a child process is terminated at once, HTTP requests are cut and no session is ended).
  virtual void abort() = 0;
};

}  // namespace loom::mcp
