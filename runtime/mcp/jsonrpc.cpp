// runtime/mcp/jsonrpc.cpp: JSON-RPC 2.0 messages (see jsonrpc.hpp).
#include "loom/runtime/mcp/jsonrpc.hpp"

#include <fmt/format.h>

#include "loom/runtime/json_reader.hpp"

namespace loom::jsonrpc {

json request(const json& id, const std::string& method, json params) {
  json m{{"jsonrpc", "2.0"}, {"id", id}, {"method", method}};
  if (!params.is_null()) m["params"] = std::move(params);
  return m;
}

json notification(const std::string& method, json params) {
  json m{{"jsonrpc", "2.0"}, {"method", method}};
  if (!params.is_null()) m["params"] = std::move(params);
  return m;
}

json result(const json& id, json r) { return json{{"jsonrpc", "2.0"}, {"id", id}, {"result", std::move(r)}}; }

json error_response(const json& id, int code, const std::string& message, const json& data) {
  json e{{"code", code}, {"message", message}};
  if (!data.is_null()) e["data"] = data;
  return json{{"jsonrpc", "2.0"}, {"id", id}, {"error", std::move(e)}};
}

message classify(const json& m) {
  json id = m.is_object() && m.contains("id") ? m["id"] : json(nullptr);
  if (!id.is_null() && !id.is_string() && !id.is_number_integer()) id = nullptr;
  auto bad = [&](const std::string& why) { return error(invalid_request, "invalid JSON-RPC message: " + why); };
  auto bad_with_id = [&](const std::string& why) {
    error e = bad(why);
    e.data = json{{"id", id}};
    return e;
  };
  if (!m.is_object()) throw bad(fmt::format("expected an object, found {}", m.type_name()));
  if (!m.contains("jsonrpc") || m["jsonrpc"] != "2.0") throw bad_with_id("`jsonrpc` must be \"2.0\"");
  bool has_id = m.contains("id");
  if (has_id && !m["id"].is_string() && !m["id"].is_number_integer())
    throw bad("`id` must be a string or an integer");
  if (m.contains("method")) {
    if (!m["method"].is_string()) throw bad_with_id("`method` must be a string");
    json params = m.contains("params") ? m["params"] : json(nullptr);
    if (!params.is_null() && !params.is_object() && !params.is_array())
      throw bad_with_id("`params` must be an object or an array");
    return message{has_id ? kind::request : kind::notification, id, m["method"].get<std::string>(), params, nullptr};
  }
  if (!has_id) throw bad("a message with no `method` must be a response, with an `id`");
  if (m.contains("result")) return message{kind::response, id, {}, nullptr, m["result"]};
  if (m.contains("error")) {
    const json& e = m["error"];
    if (!e.is_object() || !e.contains("code") || !e["code"].is_number_integer() || !e.contains("message") ||
        !e["message"].is_string())
      throw bad_with_id("`error` must be an object with an integer `code` and a string `message`");
    return message{kind::error_response, id, {}, nullptr, e};
  }
  throw bad_with_id("a response needs `result` or `error`");
}

json parse(std::string_view text) {
  // The shared reader: its depth limit (64) and this transport's size limit, checked while parsing.
  json_limits limits;
  limits.max_bytes = max_message_bytes;
  try {
    return read_json(text, "message", limits);
  } catch (const json_error& e) {
    if (e.type == json_error::kind::too_big)
      throw error(parse_error, fmt::format("message of {} bytes is over the limit of {} bytes", text.size(),
                                           max_message_bytes));
    if (e.type == json_error::kind::syntax) throw error(parse_error, "parse error: the message is not valid JSON");
    throw error(parse_error, "parse error: in the message, " + e.reason);
  }
}

}  // namespace loom::jsonrpc
