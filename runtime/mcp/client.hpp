// runtime/mcp/client.hpp: an MCP client over any transport (the protocol half; stdio.hpp and http_client.hpp
// carry the bytes). It initializes (offering the newest revision it speaks and accepting any it knows that the
// server answers with), lists tools across pages, and calls them with a deadline: on timeout it sends
// notifications/cancelled and gives up on the request. While it waits it answers the server's pings, refuses
// the server's other requests (sampling, roots, elicitation: not offered), passes progress notifications to the
// caller and remembers notifications/tools/list_changed.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "loom/runtime/mcp/jsonrpc.hpp"
#include "loom/runtime/mcp/transport.hpp"

namespace loom::mcp {

// The revisions loom speaks, newest first; the newest is what @modelcontextprotocol/sdk 1.32 speaks.
extern const std::vector<std::string> protocol_versions;

struct tool_info {
  std::string name;
  std::string description;
  jsonrpc::json input_schema;  // a JSON schema object
};

struct call_outcome {
  bool is_error = false;       // the tool's own failure (isError): the model should see it
  std::string text;            // the text content blocks, joined by newlines; other blocks described briefly
  jsonrpc::json structured;    // structuredContent, or null
};

// The server answered with a JSON-RPC error, or not at all in time.
struct protocol_error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

class client {
 public:
  using progress_fn = std::function<void(double progress, double total, const std::string& message)>;

  explicit client(std::unique_ptr<transport> t) : t_(std::move(t)) {}

  // Runs the initialize handshake. Throws protocol_error or transport_error.
  void initialize(std::chrono::milliseconds timeout);
  const std::string& protocol_version() const { return version_; }
  const std::string& server_name() const { return server_name_; }

  // Every tool of the server (follows nextCursor; at most 100 pages).
  std::vector<tool_info> list_tools(std::chrono::milliseconds timeout);
  // Calls a tool. Throws protocol_error (a JSON-RPC error, or a timeout: then the request is cancelled).
  call_outcome call_tool(const std::string& name, const jsonrpc::json& arguments, std::chrono::milliseconds timeout,
                         const progress_fn& progress = {});

  // Handles what the server has sent meanwhile (notifications, its requests) without waiting.
  void poll();
  // True once the server has said its tools changed since the last list_tools().
  bool tools_changed() const { return tools_changed_; }
  transport& connection() { return *t_; }

 private:
  jsonrpc::json request(const std::string& method, jsonrpc::json params, std::chrono::milliseconds timeout,
                        const progress_fn& progress = {}, const jsonrpc::json& progress_token = nullptr);
  void handle_incoming(const jsonrpc::message& m, const progress_fn& progress, const jsonrpc::json& token);

  std::unique_ptr<transport> t_;
  std::int64_t next_id_ = 1;
  std::string version_, server_name_;
  bool tools_changed_ = false;
};

}  // namespace loom::mcp
