// runtime/serve/openai.cpp: request parsing and response bodies of the chat-completions protocol.
#include "loom/runtime/serve/openai.hpp"

#include <fmt/format.h>

#include <cctype>
#include <utility>

#include "loom/runtime/json.hpp"
#include "loom/runtime/json_reader.hpp"

namespace loom::serve {
namespace {

using nlohmann::json;

request_error bad(std::string message, std::string param) { return {400, std::move(message), std::move(param)}; }

const char* json_type(const json& j) { return j.type_name(); }

// A message's content as text: a string, or an array of parts whose text parts are joined with "\n"
// (other parts, e.g. images, contribute nothing). Null content (an assistant's tool call) is "".
std::variant<std::string, request_error> content_text(const json& content, const std::string& where) {
  if (content.is_null()) return std::string{};
  if (content.is_string()) return content.get<std::string>();
  if (!content.is_array())
    return bad(fmt::format("{} must be a string or an array of content parts, not {}", where, json_type(content)),
               where);
  std::string text;
  bool first = true;
  for (std::size_t i = 0; i < content.size(); ++i) {
    const auto& part = content[i];
    auto part_where = fmt::format("{}[{}]", where, i);
    if (!part.is_object()) return bad(fmt::format("{} must be an object, not {}", part_where, json_type(part)), part_where);
    auto type = part.find("type");
    if (type == part.end() || !type->is_string())
      return bad(fmt::format("{}.type must be a string", part_where), part_where + ".type");
    if (*type != "text") continue;
    auto t = part.find("text");
    if (t == part.end() || !t->is_string())
      return bad(fmt::format("{}.text must be a string", part_where), part_where + ".text");
    if (!first) text += '\n';
    text += t->get<std::string>();
    first = false;
  }
  return text;
}

}  // namespace

std::variant<chat_request, request_error> parse_chat_request(std::string_view body) {
  json_limits limits;
  limits.max_bytes = body.size();  // bounded already, by the listener's --max-body
  json j;
  try {
    j = read_json_unordered(body, "the request body", limits);
  } catch (const json_error& e) {
    if (e.type == json_error::kind::too_deep)
      return request_error{400,
                           fmt::format("the request body nests arrays and objects more than {} deep (at byte {})",
                                       limits.max_depth, e.offset),
                           std::nullopt};
    return request_error{400, "the request body is not valid JSON", std::nullopt};
  }
  if (!j.is_object())
    return request_error{400, fmt::format("the request body must be a JSON object, not {}", json_type(j)),
                         std::nullopt};
  if (auto m = j.find("model"); m != j.end() && !m->is_string() && !m->is_null())
    return bad(fmt::format("`model` must be a string, not {}", json_type(*m)), "model");
  chat_request r;
  if (auto s = j.find("stream"); s != j.end() && !s->is_null()) {
    if (!s->is_boolean()) return bad(fmt::format("`stream` must be a boolean, not {}", json_type(*s)), "stream");
    r.stream = s->get<bool>();
  }
  if (auto u = j.find("user"); u != j.end() && !u->is_null()) {
    if (!u->is_string()) return bad(fmt::format("`user` must be a string, not {}", json_type(*u)), "user");
    r.user = u->get<std::string>();
  }
  auto messages = j.find("messages");
  if (messages == j.end()) return bad("`messages` is required", "messages");
  if (!messages->is_array())
    return bad(fmt::format("`messages` must be an array, not {}", json_type(*messages)), "messages");
  if (messages->empty()) return bad("`messages` must not be empty", "messages");
  std::optional<std::string> last_user;
  for (std::size_t i = 0; i < messages->size(); ++i) {
    const auto& m = (*messages)[i];
    auto where = fmt::format("messages[{}]", i);
    if (!m.is_object()) return bad(fmt::format("{} must be an object, not {}", where, json_type(m)), where);
    auto role = m.find("role");
    if (role == m.end() || !role->is_string())
      return bad(fmt::format("{}.role must be a string", where), where + ".role");
    auto content = m.find("content");
    auto text = content_text(content == m.end() ? json{} : *content, where + ".content");
    if (auto* e = std::get_if<request_error>(&text)) return std::move(*e);
    auto& t = std::get<std::string>(text);
    r.prompt_tokens += count_tokens(t);
    if (*role == "user") last_user = std::move(t);
  }
  if (!last_user) return bad("`messages` has no message with role `user`", "messages");
  r.prompt = std::move(*last_user);
  return r;
}

std::optional<request_error> check_thread_id(std::string_view id, std::string_view from) {
  auto param = from == thread_header ? std::optional<std::string>() : std::optional<std::string>(from);
  if (id.size() > max_thread_id_bytes)
    return request_error{400,
                         fmt::format("the thread id in {} is {} bytes long; at most {} are accepted", from, id.size(),
                                     max_thread_id_bytes),
                         param};
  for (std::size_t i = 0; i < id.size(); ++i) {
    auto c = static_cast<unsigned char>(id[i]);
    if (c < 0x20 || c == 0x7f)
      return request_error{400, fmt::format("the thread id in {} has a control character at byte {}", from, i), param};
  }
  return std::nullopt;
}

json error_body(std::string_view message, std::string_view type, const std::optional<std::string>& param) {
  return {{"error",
           {{"message", message}, {"type", type}, {"param", param ? json(*param) : json(nullptr)}, {"code", nullptr}}}};
}

std::string answer_text(const value& v) {
  if (const auto* text = v.find("text")) return to_text(*text);
  return to_text(v);
}

std::size_t count_tokens(std::string_view text) {
  std::size_t n = 0;
  bool in_word = false;
  for (unsigned char c : text) {
    bool space = std::isspace(c) != 0;
    if (!space && !in_word) ++n;
    in_word = !space;
  }
  return n;
}

json completion(const completion_head& head, const std::string& content, std::size_t prompt_tokens) {
  auto completion_tokens = count_tokens(content);
  return {{"id", head.id},
          {"object", "chat.completion"},
          {"created", head.created},
          {"model", head.model},
          {"choices", json::array({{{"index", 0},
                                    {"message", {{"role", "assistant"}, {"content", content}}},
                                    {"logprobs", nullptr},
                                    {"finish_reason", "stop"}}})},
          {"usage",
           {{"prompt_tokens", prompt_tokens},
            {"completion_tokens", completion_tokens},
            {"total_tokens", prompt_tokens + completion_tokens}}}};
}

json chunk(const completion_head& head, json delta, const std::optional<std::string>& finish_reason) {
  return {{"id", head.id},
          {"object", "chat.completion.chunk"},
          {"created", head.created},
          {"model", head.model},
          {"choices", json::array({{{"index", 0},
                                    {"delta", std::move(delta)},
                                    {"logprobs", nullptr},
                                    {"finish_reason", finish_reason ? json(*finish_reason) : json(nullptr)}}})}};
}

std::string dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

std::string sse_event(const json& j) { return "data: " + dump(j) + "\n\n"; }

json model_list(const std::string& graph_name, std::int64_t created) {
  return {{"object", "list"},
          {"data", json::array({{{"id", graph_name}, {"object", "model"}, {"created", created}, {"owned_by", "loom"}}})}};
}

}  // namespace loom::serve
