// runtime/mcp/client.cpp: the MCP client protocol (see client.hpp).
#include "loom/runtime/mcp/client.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>

namespace loom::mcp {

using jsonrpc::json;

const std::vector<std::string> protocol_versions = {"2025-11-25", "2025-06-18", "2025-03-26", "2024-11-05"};

void client::handle_incoming(const jsonrpc::message& m, const progress_fn& progress, const json& token) {
  if (m.type == jsonrpc::kind::request) {
    // The server's own requests: ping is answered; sampling, roots and elicitation are not offered.
    if (m.method == "ping") return t_->send(jsonrpc::result(m.id, json::object()));
    return t_->send(jsonrpc::error_response(m.id, jsonrpc::method_not_found,
                                            fmt::format("loom's MCP client does not offer `{}`", m.method)));
  }
  if (m.type != jsonrpc::kind::notification) return;  // a late response to a request given up on
  if (m.method == "notifications/tools/list_changed") {
    tools_changed_ = true;
  } else if (m.method == "notifications/progress") {
    if (progress && m.params.is_object() && !token.is_null() && m.params.value("progressToken", json()) == token) {
      double p = m.params.value("progress", 0.0), total = m.params.value("total", 0.0);
      progress(p, total, m.params.value("message", std::string()));
    }
  } else if (m.method == "notifications/message") {
    spdlog::debug("{}: log: {}", t_->describe(), m.params.dump());
  }
}

json client::request(const std::string& method, json params, std::chrono::milliseconds timeout,
                     const progress_fn& progress, const json& token) {
  json id = next_id_++;
  t_->send(jsonrpc::request(id, method, std::move(params)));
  auto deadline = clock::now() + timeout;
  std::string refused;  // why the last message that was not JSON-RPC was ignored: the answer may have been it
  for (;;) {
    auto text = t_->receive(deadline);
    if (!text) {
      // Abandoned: tell the server, so it can stop the work (not for initialize, which may not be cancelled).
      bool cancel = method != "initialize";
      if (cancel)
        t_->send(jsonrpc::notification("notifications/cancelled",
                                       json{{"requestId", id}, {"reason", fmt::format("timed out after {} ms",
                                                                                      timeout.count())}}));
      throw protocol_error(fmt::format("{}: `{}` timed out after {} ms{}{}", t_->describe(), method, timeout.count(),
                                       cancel ? " (cancelled)" : "",
                                       refused.empty() ? "" : "; the server sent a message loom refused: " + refused));
    }
    jsonrpc::message m;
    try {
      m = jsonrpc::classify(jsonrpc::parse(*text));
    } catch (const jsonrpc::error& e) {
      spdlog::warn("{}: ignoring a message that is not JSON-RPC ({}): {}", t_->describe(), e.what(),
                   text->substr(0, 200));
      refused = e.what();
      continue;
    }
    if ((m.type == jsonrpc::kind::response || m.type == jsonrpc::kind::error_response) && m.id == id) {
      if (m.type == jsonrpc::kind::response) return m.payload;
      throw protocol_error(fmt::format("{}: `{}` failed: {} (code {})", t_->describe(), method,
                                       m.payload.value("message", std::string("?")),
                                       m.payload.value("code", 0)));
    }
    handle_incoming(m, progress, token);
  }
}

void client::poll() {
  for (int i = 0; i < 1000; ++i) {
    auto text = t_->receive(clock::now());
    if (!text) return;
    try {
      handle_incoming(jsonrpc::classify(jsonrpc::parse(*text)), {}, nullptr);
    } catch (const jsonrpc::error&) {
      // not JSON-RPC: ignored, as while waiting for a response
    }
  }
}

void client::initialize(std::chrono::milliseconds timeout) {
  json params{{"protocolVersion", protocol_versions.front()},
              {"capabilities", json::object()},
              {"clientInfo", {{"name", "loom"}, {"version", "0.1"}}}};
  json r = request("initialize", std::move(params), timeout);
  if (!r.is_object() || !r.contains("protocolVersion") || !r["protocolVersion"].is_string())
    throw protocol_error(t_->describe() + ": the initialize result has no protocolVersion");
  std::string v = r["protocolVersion"].get<std::string>();
  if (std::find(protocol_versions.begin(), protocol_versions.end(), v) == protocol_versions.end())
    throw protocol_error(fmt::format("{}: speaks protocol revision {}, which loom does not (loom speaks {})",
                                     t_->describe(), v, fmt::join(protocol_versions, ", ")));
  version_ = v;
  if (r.contains("serverInfo") && r["serverInfo"].is_object())
    server_name_ = r["serverInfo"].value("name", std::string());
  t_->send(jsonrpc::notification("notifications/initialized", nullptr));
}

std::vector<tool_info> client::list_tools(std::chrono::milliseconds timeout) {
  std::vector<tool_info> tools;
  tools_changed_ = false;
  json cursor = nullptr;
  for (int page = 0; page < 100; ++page) {
    json params = json::object();
    if (!cursor.is_null()) params["cursor"] = cursor;
    json r = request("tools/list", std::move(params), timeout);
    if (!r.is_object() || !r.contains("tools") || !r["tools"].is_array())
      throw protocol_error(t_->describe() + ": the tools/list result has no `tools` array");
    for (const auto& t : r["tools"]) {
      if (!t.is_object() || !t.contains("name") || !t["name"].is_string()) continue;
      tool_info info;
      info.name = t["name"].get<std::string>();
      info.description = t.value("description", std::string());
      info.input_schema = t.contains("inputSchema") && t["inputSchema"].is_object()
                              ? t["inputSchema"]
                              : json{{"type", "object"}, {"properties", json::object()}};
      tools.push_back(std::move(info));
    }
    if (!r.contains("nextCursor") || !r["nextCursor"].is_string()) return tools;
    cursor = r["nextCursor"];
  }
  throw protocol_error(t_->describe() + ": tools/list went on for more than 100 pages");
}

call_outcome client::call_tool(const std::string& name, const json& arguments, std::chrono::milliseconds timeout,
                               const progress_fn& progress) {
  json token = fmt::format("loom-{}", next_id_);
  json params{{"name", name}, {"arguments", arguments.is_object() ? arguments : json::object()}};
  if (progress) params["_meta"] = {{"progressToken", token}};
  json r = request("tools/call", std::move(params), timeout, progress, token);
  if (!r.is_object()) throw protocol_error(t_->describe() + ": the tools/call result is not an object");
  call_outcome out;
  out.is_error = r.value("isError", false);
  if (r.contains("structuredContent") && r["structuredContent"].is_object()) out.structured = r["structuredContent"];
  if (r.contains("content") && r["content"].is_array())
    for (const auto& block : r["content"]) {
      if (!block.is_object()) continue;
      std::string type = block.value("type", std::string());
      std::string piece;
      if (type == "text") piece = block.value("text", std::string());
      else if (type == "resource" && block.contains("resource") && block["resource"].is_object())
        piece = block["resource"].value("text", fmt::format("[resource {}]", block["resource"].value("uri", "")));
      else if (type == "resource_link") piece = fmt::format("[resource link {}]", block.value("uri", ""));
      else piece = fmt::format("[{} content, {}]", type, block.value("mimeType", "no mime type"));
      out.text += (out.text.empty() ? "" : "\n") + piece;
    }
  return out;
}

}  // namespace loom::mcp
