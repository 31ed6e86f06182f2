// runtime/mcp/server.cpp: the MCP server protocol (see server.hpp).
#include "loom/runtime/mcp/server.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>

#include "loom/runtime/mcp/client.hpp"
#include "loom/runtime/mcp/stdio.hpp"

namespace loom::mcp {

using jsonrpc::json;

server::server(tool_provider& tools, server_info info) : tools_(tools), info_(std::move(info)) {}

server::~server() {
  std::lock_guard lock(calls_mu_);
  for (auto& [id, c] : calls_) c->cancelled = true;
  for (auto& [id, c] : calls_)
    if (c->thread.joinable()) c->thread.join();
}

void server::reap() {
  std::lock_guard lock(calls_mu_);
  for (auto it = calls_.begin(); it != calls_.end();) {
    if (it->second->done) {
      if (it->second->thread.joinable()) it->second->thread.join();
      it = calls_.erase(it);
    } else {
      ++it;
    }
  }
}

void server::wait_idle() {
  for (;;) {
    reap();
    {
      std::lock_guard lock(calls_mu_);
      if (calls_.empty()) return;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

bool server::in_flight(const json& id) {
  std::lock_guard lock(calls_mu_);
  auto it = calls_.find(id.dump());
  return it != calls_.end() && !it->second->done;
}

json server::initialize(const json& params) {
  std::string asked = params.is_object() && params.contains("protocolVersion") && params["protocolVersion"].is_string()
                          ? params["protocolVersion"].get<std::string>()
                          : "";
  bool known = std::find(protocol_versions.begin(), protocol_versions.end(), asked) != protocol_versions.end();
  return json{{"protocolVersion", known ? asked : protocol_versions.front()},
              {"capabilities", {{"tools", {{"listChanged", false}}}, {"logging", json::object()}}},
              {"serverInfo", {{"name", info_.name}, {"version", info_.version}}}};
}

void server::handle(std::string_view text, const sender& out) {
  reap();
  auto send = [&](const json& m) {
    std::lock_guard lock(send_mu_);
    out(m);
  };
  jsonrpc::message m;
  try {
    m = jsonrpc::classify(jsonrpc::parse(text));
  } catch (const jsonrpc::error& e) {
    json id = e.data.is_object() && e.data.contains("id") ? e.data["id"] : json(nullptr);
    return send(jsonrpc::error_response(id, e.code, e.what()));
  }
  if (m.type == jsonrpc::kind::notification) {
    if (m.method == "notifications/cancelled" && m.params.is_object() && m.params.contains("requestId")) {
      std::lock_guard lock(calls_mu_);
      if (auto it = calls_.find(m.params["requestId"].dump()); it != calls_.end()) it->second->cancelled = true;
    }
    return;  // initialized, and anything else: nothing to answer
  }
  if (m.type != jsonrpc::kind::request) return;  // a response to nothing we asked
  try {
    if (m.method == "initialize") return send(jsonrpc::result(m.id, initialize(m.params)));
    if (m.method == "ping") return send(jsonrpc::result(m.id, json::object()));
    // Accepted; loom's server sends no log messages at any level, which the protocol allows.
    if (m.method == "logging/setLevel") return send(jsonrpc::result(m.id, json::object()));
    if (m.method == "tools/list") {
      auto list = json::array();
      for (const auto& t : tools_.tools())
        list.push_back(json{{"name", t.name}, {"description", t.description}, {"inputSchema", t.input_schema}});
      return send(jsonrpc::result(m.id, json{{"tools", std::move(list)}}));
    }
    if (m.method == "tools/call") return start_call(m.id, m.params, out);
    send(jsonrpc::error_response(m.id, jsonrpc::method_not_found, fmt::format("method not found: `{}`", m.method)));
  } catch (const jsonrpc::error& e) {
    send(jsonrpc::error_response(m.id, e.code, e.what()));
  }
}

void server::start_call(const json& id, const json& params, const sender& out) {
  if (!params.is_object() || !params.contains("name") || !params["name"].is_string())
    throw jsonrpc::error(jsonrpc::invalid_params, "tools/call needs params {name: string, arguments?: object}");
  std::string name = params["name"].get<std::string>();
  json arguments = params.contains("arguments") ? params["arguments"] : json::object();
  if (arguments.is_null()) arguments = json::object();
  if (!arguments.is_object()) throw jsonrpc::error(jsonrpc::invalid_params, "tools/call: `arguments` must be an object");
  auto tools = tools_.tools();
  if (std::none_of(tools.begin(), tools.end(), [&](const server_tool& t) { return t.name == name; })) {
    std::string names;
    for (const auto& t : tools) names += (names.empty() ? "" : ", ") + t.name;
    throw jsonrpc::error(jsonrpc::invalid_params, fmt::format("unknown tool `{}`; the tools are: {}", name, names));
  }
  json token = params.contains("_meta") && params["_meta"].is_object() && params["_meta"].contains("progressToken")
                   ? params["_meta"]["progressToken"]
                   : json(nullptr);
  auto c = std::make_shared<call>();
  std::lock_guard lock(calls_mu_);
  std::size_t running = 0;
  for (const auto& [k, other] : calls_) running += other->done ? 0 : 1;
  if (running >= info_.max_in_flight)
    throw jsonrpc::error(jsonrpc::internal_error,
                         fmt::format("too many calls in flight (at most {}); try again later", info_.max_in_flight));
  if (calls_.count(id.dump()) != 0) throw jsonrpc::error(jsonrpc::invalid_request, "a request with this id is in flight");
  calls_[id.dump()] = c;
  c->thread = std::thread([this, c, id, name, arguments, token, out] {
    auto send = [&](const json& m) {
      std::lock_guard lock(send_mu_);
      out(m);
    };
    call_control ctl;
    ctl.cancelled = [c] { return c->cancelled.load(); };
    ctl.progress = [&](double p, double total, const std::string& message) {
      if (token.is_null() || c->cancelled) return;
      json params{{"progressToken", token}, {"progress", p}};
      if (total > 0) params["total"] = total;
      if (!message.empty()) params["message"] = message;
      send(jsonrpc::notification("notifications/progress", std::move(params)));
    };
    json result;
    try {
      auto r = tools_.call(name, arguments, ctl);
      result = json{{"content", json::array({json{{"type", "text"}, {"text", r.text}}})}};
      if (r.structured.is_object()) result["structuredContent"] = r.structured;
    } catch (const std::exception& e) {
      result = json{{"content", json::array({json{{"type", "text"}, {"text", e.what()}}})}, {"isError", true}};
    }
    if (!c->cancelled) send(jsonrpc::result(id, std::move(result)));  // a cancelled request is not answered
    c->done = true;
  });
}

void server::serve(transport& t) {
  sender out = [&t](const json& m) {
    try {
      t.send(m);
    } catch (const transport_error&) {
      // the client has gone; serve() notices on its next read
    }
  };
  for (;;) {
    std::optional<std::string> text;
    try {
      text = t.receive(clock::now() + std::chrono::seconds(1));
    } catch (const message_too_large& e) {
      out(jsonrpc::error_response(nullptr, jsonrpc::invalid_request, e.what()));
      continue;
    } catch (const transport_error&) {
      break;
    }
    if (text) handle(*text, out);
    else reap();
  }
  {
    std::lock_guard lock(calls_mu_);
    for (auto& [id, c] : calls_) c->cancelled = true;
  }
  wait_idle();
}

}  // namespace loom::mcp
