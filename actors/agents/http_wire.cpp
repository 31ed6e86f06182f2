// actors/agents/http_wire.cpp: the OpenAI-compatible chat-completions wire format (http_wire.hpp): messages
// as the request's JSON, and the reply read back: choices[0].message's text and tool calls, or with stream
// the server-sent events (`data: {...}` lines up to `data: [DONE]`) whose deltas are accumulated: content
// concatenated, tool calls by index with their argument fragments concatenated. Every reply goes through the
// shared JSON reader (runtime/json_reader.hpp); the HTTP calls are http_backend.cpp.
#include "loom/actors/agents/http_wire.hpp"

#include <fmt/format.h>

#include <cstdint>
#include <string>

#include "loom/actors/agents/backend.hpp"
#include "loom/runtime/json_reader.hpp"

namespace loom::agents {

using ojson = nlohmann::ordered_json;

namespace detail {

std::string excerpt(std::string s, std::size_t n) {
  for (auto& c : s)
    if (c == '\n' || c == '\r') c = ' ';
  return s.size() <= n ? s : s.substr(0, n) + "...";
}

ojson to_wire(const chat_message& m) {
  ojson j{{"role", m.role}};
  if (m.role == "assistant" && !m.tool_calls.empty()) {
    j["content"] = m.content.empty() ? ojson(nullptr) : ojson(m.content);
    auto calls = ojson::array();
    for (const auto& c : m.tool_calls)
      calls.push_back({{"id", c.id},
                       {"type", "function"},
                       {"function", {{"name", c.name}, {"arguments", c.arguments_error.empty() ? c.arguments.dump()
                                                                                              : c.raw_arguments}}}});
    j["tool_calls"] = std::move(calls);
  } else {
    j["content"] = m.content;
  }
  if (m.role == "tool") j["tool_call_id"] = m.tool_call_id;
  return j;
}

}  // namespace detail

namespace {

using namespace detail;

// Parses a call's JSON-string arguments; a model that sends bad JSON gets the reason back as a tool error.
void parse_arguments(tool_call& c) {
  if (c.raw_arguments.find_first_not_of(" \t\r\n") == std::string::npos) c.raw_arguments = "{}";
  ojson parsed;
  try {
    parsed = read_json(c.raw_arguments, "the tool call's arguments");
  } catch (const json_error& e) {
    c.arguments_error = e.type == json_error::kind::syntax
                            ? fmt::format("malformed arguments (not JSON): {}", excerpt(c.raw_arguments, 120))
                            : fmt::format("malformed arguments ({}): {}", e.reason, excerpt(c.raw_arguments, 120));
    return;
  }
  if (!parsed.is_object())
    c.arguments_error = fmt::format("malformed arguments (not a JSON object): {}", excerpt(c.raw_arguments, 120));
  else
    c.arguments = std::move(parsed);
}

// message.content is a string, null, or (some servers) a list of {type: text, text} parts.
std::string content_text(const ojson& content) {
  if (content.is_string()) return content.get<std::string>();
  std::string text;
  if (content.is_array())
    for (const auto& part : content)
      if (part.is_object() && part.contains("text") && part["text"].is_string()) text += part["text"].get<std::string>();
  return text;
}


const ojson& field(const ojson& j, const char* name, const char* where) {
  if (!j.is_object() || !j.contains(name)) throw bad_response(fmt::format("no `{}` in {}", name, where));
  return j[name];
}

// `usage` (prompt_tokens, completion_tokens) and `model`, for the trace and loom_agent_tokens_total; absent or
// odd fields are ignored.
void read_usage(const ojson& j, chat_reply& r) {
  if (j.contains("model") && j["model"].is_string()) r.response_model = j["model"].get<std::string>();
  if (!j.contains("usage") || !j["usage"].is_object()) return;
  const auto& u = j["usage"];
  if (u.contains("prompt_tokens") && u["prompt_tokens"].is_number_integer())
    r.input_tokens = u["prompt_tokens"].get<std::int64_t>();
  if (u.contains("completion_tokens") && u["completion_tokens"].is_number_integer())
    r.output_tokens = u["completion_tokens"].get<std::int64_t>();
}

// A reply or one event of a stream, through the shared reader (its depth and size limits); what the model
// server sent wrong becomes a bad_response: "not JSON: <excerpt>" or the limit it broke.
ojson read_reply(const std::string& text, const char* not_json) {
  try {
    return read_json(text, "the reply");
  } catch (const json_error& e) {
    if (e.type == json_error::kind::syntax) throw bad_response(fmt::format("{}: {}", not_json, excerpt(text)));
    throw bad_response(e.what());
  }
}

chat_reply parse_completion(const std::string& body) {
  auto j = read_reply(body, "not JSON");
  const auto& choices = field(j, "choices", "the reply");
  if (!choices.is_array() || choices.empty()) throw bad_response("`choices` is not a non-empty array");
  const auto& message = field(choices[0], "message", "choices[0]");
  chat_reply r;
  read_usage(j, r);
  if (message.contains("content")) r.text = content_text(message["content"]);
  if (message.contains("tool_calls") && message["tool_calls"].is_array()) {
    for (const auto& c : message["tool_calls"]) {
      const auto& fn = field(c, "function", "a tool call");
      tool_call call;
      call.id = c.contains("id") && c["id"].is_string() ? c["id"].get<std::string>() : "";
      const auto& name = field(fn, "name", "a tool call's function");
      if (!name.is_string()) throw bad_response("a tool call's function name is not a string");
      call.name = name.get<std::string>();
      if (fn.contains("arguments"))
        call.raw_arguments = fn["arguments"].is_string() ? fn["arguments"].get<std::string>() : fn["arguments"].dump();
      r.tool_calls.push_back(std::move(call));
    }
  }
  return r;
}

chat_reply parse_stream(const std::string& body) {
  chat_reply r;
  bool done = false, any = false;
  std::size_t from = 0;
  while (from < body.size() && !done) {
    auto end = body.find('\n', from);
    if (end == std::string::npos) end = body.size();
    std::string line = body.substr(from, end - from);
    from = end + 1;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.rfind("data:", 0) != 0) continue;  // blank lines, comments, event: and id: fields
    auto data = line.substr(line.size() > 5 && line[5] == ' ' ? 6 : 5);
    if (data == "[DONE]") {
      done = true;
      break;
    }
    auto j = read_reply(data, "an event is not JSON");
    if (j.contains("error")) throw bad_response(fmt::format("the stream reported an error: {}", excerpt(j["error"].dump())));
    any = true;
    read_usage(j, r);  // the last event has it, when the server sends it
    if (!j.contains("choices") || !j["choices"].is_array() || j["choices"].empty()) continue;  // e.g. usage
    const auto& delta = j["choices"][0].contains("delta") ? j["choices"][0]["delta"] : ojson::object();
    if (delta.contains("content")) r.text += content_text(delta["content"]);
    if (!delta.contains("tool_calls") || !delta["tool_calls"].is_array()) continue;
    for (const auto& c : delta["tool_calls"]) {
      std::size_t index = c.contains("index") && c["index"].is_number_unsigned() ? c["index"].get<std::size_t>()
                                                                                  : r.tool_calls.size();
      if (index > 1024) throw bad_response("a streamed tool call index is out of range");
      if (index >= r.tool_calls.size()) r.tool_calls.resize(index + 1);
      auto& call = r.tool_calls[index];
      if (c.contains("id") && c["id"].is_string()) call.id = c["id"].get<std::string>();
      if (!c.contains("function")) continue;
      const auto& fn = c["function"];
      if (fn.contains("name") && fn["name"].is_string()) call.name += fn["name"].get<std::string>();
      if (fn.contains("arguments") && fn["arguments"].is_string()) call.raw_arguments += fn["arguments"].get<std::string>();
    }
  }
  if (!any && !done) throw bad_response(fmt::format("no `data:` events in the stream: {}", excerpt(body)));
  for (const auto& c : r.tool_calls)
    if (c.name.empty()) throw bad_response("a streamed tool call has no function name");
  return r;
}

}  // namespace

chat_reply read_chat_reply(const std::string& body, bool sse) {
  auto reply = sse ? parse_stream(body) : parse_completion(body);
  for (std::size_t i = 0; i < reply.tool_calls.size(); ++i) {
    auto& c = reply.tool_calls[i];
    if (c.id.empty()) c.id = fmt::format("call_{}", i);
    parse_arguments(c);
  }
  return reply;
}

}  // namespace loom::agents
