// runtime/serve/openai.hpp: the OpenAI chat-completions protocol as loom serve speaks it: parsing a request
// into the text that enters the graph, and building completion, chunk, model-list and error bodies.
// Pure functions of their arguments (no sockets), so they are tested without a server.
//
// Token counts (`usage`) are approximations: loom does not tokenize, it counts whitespace-separated words.
#pragma once

#include <nlohmann/json.hpp>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

#include "loom/runtime/value.hpp"

namespace loom::serve {

struct chat_request {
  std::string prompt;             // the last user message's text (text parts joined with "\n")
  bool stream = false;
  std::size_t prompt_tokens = 0;  // words in every message's text
  std::string user;               // the request's `user` field ("" when absent): a thread id (--state)
};


// What to answer instead: an HTTP status and an OpenAI-style error.
struct request_error {
  int status = 400;
  std::string message;
  std::optional<std::string> param;  // the offending field, e.g. "messages[2].content"
};

// A thread id (`X-Loom-Thread`, else `user`) is at most this many bytes, none of them a control character.
inline constexpr std::size_t max_thread_id_bytes = 256;
inline constexpr const char* thread_header = "X-Loom-Thread";

// What is wrong with `id` as a thread id taken from `from` (the header or `user`); nullopt when it is fine.
std::optional<request_error> check_thread_id(std::string_view id, std::string_view from);

// Parses the body of POST /v1/chat/completions with the shared reader (runtime/json_reader.hpp): arrays and
// objects nested deeper than 64 make it a 400 before any tree that deep exists. The body's size is the
// listener's limit (--max-body), checked before it is read.
std::variant<chat_request, request_error> parse_chat_request(std::string_view body);

// {"error": {"message", "type", "param", "code": null}}
nlohmann::json error_body(std::string_view message, std::string_view type,
                          const std::optional<std::string>& param = std::nullopt);

// The text a captured value contributes to the answer: a map's `text` field when it has one (agents emit
// {agent, role, task, text, ...}), else loom::to_text(v).
std::string answer_text(const value& v);

// Whitespace-separated words: the approximate token count reported in `usage`.
std::size_t count_tokens(std::string_view text);

// What every object of one completion shares.
struct completion_head {
  std::string id;  // "chatcmpl-..."
  std::int64_t created = 0;
  std::string model;
};

// A chat.completion: one assistant message with `content`, finish_reason "stop", usage.
nlohmann::json completion(const completion_head& head, const std::string& content, std::size_t prompt_tokens);

// A chat.completion.chunk with this delta (e.g. {"role": "assistant"} or {"content": "..."}) and a
// finish_reason ("stop") or null.
nlohmann::json chunk(const completion_head& head, nlohmann::json delta,
                     const std::optional<std::string>& finish_reason = std::nullopt);

// Compact JSON; invalid UTF-8 in strings (a node's raw bytes) is replaced, never thrown.
std::string dump(const nlohmann::json& j);

// One Server-Sent Event: "data: <compact json>\n\n".
std::string sse_event(const nlohmann::json& j);
inline constexpr std::string_view sse_done = "data: [DONE]\n\n";

// GET /v1/models: the one model, the graph.
nlohmann::json model_list(const std::string& graph_name, std::int64_t created);

}  // namespace loom::serve
