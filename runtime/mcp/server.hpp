// runtime/mcp/server.hpp: the server half of MCP, over any transport. It answers initialize (the client's
// revision when loom speaks it, else the newest), ping, logging/setLevel (accepted; loom sends no log
// messages), tools/list and tools/call; every other request gets method_not_found. Each tools/call runs on a thread of its own (at most max_in_flight at once), so the
// server keeps reading: notifications/cancelled stops a call (its response is then not sent, as the spec
// says), and progress notifications go out while a call runs. Malformed input is answered with a JSON-RPC
// error (parse error, invalid request, invalid params) and never ends the server. Tool failures are results
// with isError: true.
#pragma once

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "loom/runtime/mcp/jsonrpc.hpp"
#include "loom/runtime/mcp/transport.hpp"

namespace loom::mcp {

struct server_tool {
  std::string name;
  std::string description;
  jsonrpc::json input_schema;  // a JSON schema object
};

struct call_control {
  std::function<bool()> cancelled;  // true once the client cancelled the call
  // Sends notifications/progress when the client asked for progress (a no-op otherwise).
  std::function<void(double progress, double total, const std::string& message)> progress;
};

class tool_provider {
 public:
  virtual ~tool_provider() = default;
  virtual std::vector<server_tool> tools() const = 0;
  // Runs a tool; returns the text rendering and, when the reply is an object, the structured content.
  // Throws for a failure of the tool (it becomes an isError result).
  struct reply {
    std::string text;
    jsonrpc::json structured;  // an object, or null
  };
  virtual reply call(const std::string& name, const jsonrpc::json& arguments, const call_control& ctl) = 0;
};

struct server_info {
  std::string name = "loom";
  std::string version = "0.1";
  std::size_t max_in_flight = 8;
};

class server {
 public:
  using sender = std::function<void(const jsonrpc::json&)>;

  server(tool_provider& tools, server_info info);
  ~server();  // cancels and joins the calls in flight
  server(const server&) = delete;
  server& operator=(const server&) = delete;

  // Handles one incoming message. Replies go to `out`, from this thread or a call's thread (never two at
  // once); `out` must stay valid until wait_idle() returns or the server is destroyed.
  void handle(std::string_view text, const sender& out);
  // Serves `t` until its peer closes it; then cancels what is in flight and waits for it.
  void serve(transport& t);
  // Waits until no call is in flight.
  void wait_idle();
  // True while the call with this request id runs (an HTTP stream waits for it).
  bool in_flight(const jsonrpc::json& id);

 private:
  jsonrpc::json initialize(const jsonrpc::json& params);
  void start_call(const jsonrpc::json& id, const jsonrpc::json& params, const sender& out);
  void reap();

  struct call {
    std::atomic<bool> cancelled{false};
    std::atomic<bool> done{false};
    std::thread thread;
  };

  tool_provider& tools_;
  server_info info_;
  std::mutex send_mu_, calls_mu_;
  std::map<std::string, std::shared_ptr<call>> calls_;  // by the request id's JSON text
};

}  // namespace loom::mcp
