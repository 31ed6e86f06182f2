// runtime/mcp/jsonrpc.hpp: JSON-RPC 2.0 messages, independent of any transport and of MCP itself (an A2A
// endpoint can use the same pieces). A message is an nlohmann::ordered_json value; these helpers build the
// four shapes and classify an incoming one, rejecting anything malformed with the JSON-RPC error it earns.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <stdexcept>
#include <string>

namespace loom::jsonrpc {

using json = nlohmann::ordered_json;

// The standard error codes.
inline constexpr int parse_error = -32700;
inline constexpr int invalid_request = -32600;
inline constexpr int method_not_found = -32601;
inline constexpr int invalid_params = -32602;
inline constexpr int internal_error = -32603;

// The largest message read or accepted (bytes): a bigger one is refused, never buffered without bound.
inline constexpr std::size_t max_message_bytes = 16u << 20;

// An error to answer a request with (the code and message go back to the peer).
struct error : std::runtime_error {
  error(int c, const std::string& what, json d = nullptr) : std::runtime_error(what), code(c), data(std::move(d)) {}
  int code;
  json data;
};

json request(const json& id, const std::string& method, json params);
json notification(const std::string& method, json params);
json result(const json& id, json result);
json error_response(const json& id, int code, const std::string& message, const json& data = nullptr);

enum class kind { request, notification, response, error_response };

// What one incoming message is. Throws jsonrpc::error (invalid_request) for anything that is not a valid
// JSON-RPC 2.0 message; `id` is then whatever id could be read (null if none), for the error reply.
struct message {
  kind type;
  json id;          // request, response, error_response
  std::string method;  // request, notification
  json params;      // request, notification (null when absent)
  json payload;     // response: result; error_response: the error object
};
message classify(const json& m);

// Parses one message's text. Throws jsonrpc::error(parse_error) for text that is not JSON or is too big.
json parse(std::string_view text);

}  // namespace loom::jsonrpc
