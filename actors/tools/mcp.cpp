// tool.mcp: one MCP server's tools as loom tools. The node starts (stdio: `command`) or reaches (`url`) the
// server, initializes, and lists its tools; an agent with `tools: [NODE]` offers each of them to its model as
// NODE__TOOL (call_spec::lists_tools: see graph/kind_spec.hpp and docs/mcp.md).
//   call:    {} or {arguments: {}}: list -> {server, tools: [{name, description, input_schema}]}
//            {tool: NAME, arguments: {...}}: tools/call -> {text, structured?}; isError -> a tool error
//   params:  command (list of strings), env (map NAME: value), cwd (string), url (string), headers (map
//            HEADER: NAME of the environment variable holding its value), allow (list of tool names; empty:
//            all), timeout_ms (integer, 25000: below agent.llm's tool_timeout_ms), init_timeout_ms (integer,
//            30000), server_restarts (integer, 2)
// A server that exits is started again on the next call, up to server_restarts times; the call that saw it
// exit fails with the server's name and the tail of its stderr. A call that takes longer than timeout_ms is
// cancelled (notifications/cancelled) and fails. Blocking: each instance gets its own thread; a stopped run
// ends its wait at once (stop hook: the transport is aborted, the server terminated).
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstdlib>
#include <memory>
#include <mutex>

#include "loom/actors/kinds.hpp"
#include "loom/runtime/json.hpp"
#include "loom/runtime/mcp/client.hpp"
#include "loom/runtime/mcp/http_client.hpp"
#include "loom/runtime/mcp/stdio.hpp"
#include "loom/runtime/schema.hpp"

namespace loom::actors {
namespace {

using graph::param_spec;

graph::call_spec mcp_call() {
  graph::call_spec c{"Calls one tool of an MCP server, or lists them when `tool` is absent.",
                     {param_spec::string("tool", "the server's tool name; absent: list the tools"),
                      param_spec::map("arguments", "the tool's arguments").def(graph::config(graph::config_map{}))}};
  c.lists_tools = true;
  return c;
}

std::string fail_prefix(const std::string& node) { return fmt::format("tool.mcp `{}`", node); }

class mcp_tool final : public node {
 public:
  explicit mcp_tool(const node_init& init)
      : name_(init.name),
        timeout_(init.params.get_int("timeout_ms")),
        init_timeout_(init.params.get_int("init_timeout_ms")),
        restarts_left_(init.params.get_int("server_restarts")) {
    const auto& p = init.params;
    const value& cmd = p.get("command");
    for (const auto& a : cmd.as_list()) {
      if (!a.is_string()) throw std::invalid_argument(fmt::format("{}: `command` must be a list of strings", fail_prefix(name_)));
      proc_.command.push_back(a.as_string());
    }
    for (const auto& [k, v] : p.get("env").as_map()) proc_.env[k] = to_text(v);
    proc_.cwd = p.get_string("cwd");
    http_.url = p.get_string("url");
    for (const auto& [header, var] : p.get("headers").as_map()) {
      if (!var.is_string())
        throw std::invalid_argument(fmt::format(
            "{}: headers.{}: expected the NAME of an environment variable (a string)", fail_prefix(name_), header));
      const char* v = std::getenv(var.as_string().c_str());
      if (v == nullptr)
        throw std::invalid_argument(fmt::format("{}: headers.{}: the environment variable `{}` is not set",
                                                fail_prefix(name_), header, var.as_string()));
      http_.headers.emplace_back(header, v);
    }
    for (const auto& a : p.get("allow").as_list()) allow_.push_back(to_text(a));
    if (proc_.command.empty() == http_.url.empty())
      throw std::invalid_argument(fmt::format(
          "{}: give exactly one of `command` (a stdio server) and `url` (a Streamable HTTP server)", fail_prefix(name_)));
    http_.timeout = timeout_;
  }

  // A stop (SIGINT, another node's failure) ends the wait for the server in flight (starting, a call) at
  // once: the transport is aborted, the call fails and the server process is terminated.
  void on_start(context& ctx) override {
    ctx.set_stop_hook([this] { stop(); });
    connect();
  }

  value on_call(context&, const value& request) override {
    value req = check_call_request(mcp_call(), request);
    const value* tool = req.find("tool");
    ensure_connected();
    if (tool == nullptr) return list();
    const std::string& name = tool->as_string();
    if (!allowed(name))
      throw std::runtime_error(fmt::format("{}: tool `{}` is not in this node's `allow` list", fail_prefix(name_), name));
    mcp::call_outcome out;
    try {
      out = client_->call_tool(name, to_json(*req.find("arguments")), timeout_,
                               [this, &name](double p, double total, const std::string& msg) {
                                 spdlog::debug("node={} kind=tool.mcp tool={}: progress {}/{} {}", name_, name, p,
                                               total, msg);
                               });
    } catch (const mcp::transport_error& e) {
      drop_client();  // gone (or the run is stopping): the next call starts it again while restarts remain
      throw std::runtime_error(fmt::format("{}: {}", fail_prefix(name_), e.what()));
    } catch (const mcp::protocol_error& e) {
      throw std::runtime_error(fmt::format("{}: {}", fail_prefix(name_), e.what()));
    }
    if (out.is_error)
      throw std::runtime_error(fmt::format("{}: tool `{}` failed: {}", fail_prefix(name_), name,
                                           out.text.empty() ? "(no message)" : out.text));
    if (out.structured.is_null()) return value{value_map{{"text", out.text}}};
    return value{value_map{{"text", out.text}, {"structured", from_json(out.structured)}}};
  }

 private:
  bool allowed(const std::string& tool) const {
    return allow_.empty() || std::find(allow_.begin(), allow_.end(), tool) != allow_.end();
  }

  void connect() {
    try {
      std::unique_ptr<mcp::transport> t;
      if (!proc_.command.empty()) t = std::make_unique<mcp::child_transport>(proc_);
      else t = mcp::make_http_client_transport(http_);
      set_client(std::make_unique<mcp::client>(std::move(t)));
      client_->initialize(init_timeout_);
      tools_ = client_->list_tools(init_timeout_);
    } catch (const std::exception& e) {
      drop_client();
      throw std::runtime_error(fmt::format("{}: cannot start the MCP server: {}", fail_prefix(name_), e.what()));
    }
    spdlog::info("node={} kind=tool.mcp: {} speaks MCP {}, {} tools", name_, client_->connection().describe(),
                 client_->protocol_version(), tools_.size());
  }

  // The stop hook reaches the transport of client_ from another thread: it is swapped under live_m_, and a
  // transport made after the stop is aborted at once.
  void set_client(std::unique_ptr<mcp::client> c) {
    drop_client();
    std::lock_guard lock(live_m_);
    client_ = std::move(c);
    if (stopped_) client_->connection().abort();
  }
  void drop_client() {
    std::unique_ptr<mcp::client> old;
    {
      std::lock_guard lock(live_m_);
      old = std::move(client_);
    }
    // destroyed outside the lock: ending a server can take a moment, and the stop hook must not wait for it
  }
  void stop() {
    std::lock_guard lock(live_m_);
    stopped_ = true;
    if (client_) client_->connection().abort();
  }

  void ensure_connected() {
    if (client_) return;
    if (restarts_left_ <= 0)
      throw std::runtime_error(fmt::format("{}: the MCP server has stopped and its restarts (server_restarts) are spent",
                                           fail_prefix(name_)));
    --restarts_left_;
    spdlog::warn("node={} kind=tool.mcp: starting the MCP server again ({} restarts left)", name_, restarts_left_);
    connect();
  }

  value list() {
    try {
      client_->poll();  // a notifications/tools/list_changed sent after the last call is read now
    } catch (const mcp::transport_error& e) {
      drop_client();
      throw std::runtime_error(fmt::format("{}: {}", fail_prefix(name_), e.what()));
    }
    if (client_->tools_changed()) {
      try {
        tools_ = client_->list_tools(init_timeout_);
      } catch (const mcp::transport_error& e) {
        drop_client();
        throw std::runtime_error(fmt::format("{}: {}", fail_prefix(name_), e.what()));
      }
    }
    value_list tools;
    for (const auto& t : tools_)
      if (allowed(t.name))
        tools.emplace_back(value_map{{"name", t.name}, {"description", t.description},
                                     {"input_schema", from_json(t.input_schema)}});
    return value{value_map{{"server", client_->connection().describe()}, {"tools", std::move(tools)}}};
  }

  std::string name_;
  mcp::process_options proc_;
  mcp::http_options http_;
  std::vector<std::string> allow_;
  std::chrono::milliseconds timeout_, init_timeout_;
  std::int64_t restarts_left_;
  std::mutex live_m_;  // guards client_'s replacement and stopped_ against the stop hook
  bool stopped_ = false;
  std::unique_ptr<mcp::client> client_;  // read without the lock on the node's own thread, which alone replaces it
  std::vector<mcp::tool_info> tools_;
};

}  // namespace

kind_def mcp_kind() {
  graph::kind_spec s;
  s.name = "tool.mcp";
  s.doc = "the tools of one MCP server (stdio or Streamable HTTP) as loom tools";
  s.params = {
      param_spec::list("command", "stdio server: program and arguments").def(graph::config(graph::config_list{})),
      param_spec::map("env", "stdio server: environment variables added for it").def(graph::config(graph::config_map{})),
      param_spec::string("cwd", "stdio server: its working folder (relative: to the graph file's folder; empty: loom's)").def("").file_path(),
      param_spec::string("url", "Streamable HTTP server: its MCP endpoint").def(""),
      param_spec::map("headers", "HTTP server: header -> NAME of the environment variable holding its value")
          .def(graph::config(graph::config_map{})),
      param_spec::list("allow", "the server's tools to offer (empty: all)").def(graph::config(graph::config_list{})),
      param_spec::integer("timeout_ms", "how long one tools/call may take before it is cancelled").def(25000).at_least(1),
      param_spec::integer("init_timeout_ms", "how long starting, initialize and tools/list may take")
          .def(30000).at_least(1),
      param_spec::integer("server_restarts", "how many times a server that exits is started again").def(2).at_least(0),
  };
  s.call = mcp_call();
  s.blocking = true;
  return {std::move(s), [](const node_init& init) { return std::make_unique<mcp_tool>(init); }};
}

}  // namespace loom::actors
