// actors/agents/backend.hpp: what an LLM agent talks to. A backend takes the conversation so far and the
// tools on offer (OpenAI `tools` entries) and returns the model's next turn: text, or tool calls. Two
// implementations: http (any OpenAI-compatible chat-completions server) and scripted (rules from the graph,
// for offline runs and tests). The agent's loop (agent_loop.hpp) is the same for both.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "loom/runtime/value.hpp"

namespace loom::observe {
class span_buffer;
}

namespace loom::agents {

// One tool call the model asked for. `arguments` is the parsed JSON object; when the model sent arguments
// that do not parse, `arguments_error` says why and `raw_arguments` keeps what it sent.
struct tool_call {
  std::string id;
  std::string name;
  nlohmann::ordered_json arguments = nlohmann::ordered_json::object();
  std::string raw_arguments;
  std::string arguments_error;
};

// role: "system", "user", "assistant" (content and/or tool_calls) or "tool" (content, tool_call_id).
struct chat_message {
  std::string role;
  std::string content;
  std::vector<tool_call> tool_calls;
  std::string tool_call_id;
};

struct chat_reply {
  std::string text;
  std::vector<tool_call> tool_calls;
  // What the server said in `usage` and `model`, when it said it (-1, ""): for the trace's GenAI attributes.
  std::int64_t input_tokens = -1, output_tokens = -1;
  std::string response_model;
};

class backend {
 public:
  virtual ~backend() = default;
  // The model's next turn. `tools` is a JSON array (maybe empty). Throws std::runtime_error on failure.
  virtual chat_reply complete(const std::vector<chat_message>& messages, const nlohmann::ordered_json& tools) = 0;
  // Called from another thread when the run stops: abort the request in flight (close its connection) and
  // make complete() throw from now on. Safe to call at any time, more than once.
  virtual void abort() {}
  // A traced run: record each request as a span in `spans` (the node's buffer, used from the node's handlers
  // only) and send its W3C `traceparent`. nullptr: not traced.
  virtual void trace_into(observe::span_buffer* spans) {}
  // The agent's input value for the task about to start: what templates read as {{input.PATH}} (scripted).
  virtual void set_input(const value& input) {}
};

struct http_options {
  std::string base_url = "http://127.0.0.1:8000/v1";  // POSTs to {base_url}/chat/completions
  // Replicas of one model instead of base_url: each request goes to the one a router chooses (runtime/route,
  // the router of `loom route`, in this process: no extra hop), by `route_policy` (prefix, least-loaded or
  // round-robin). The agents of a process that name the same replicas and policy share one router (what
  // was sent where, load, health). A request that fails before its answer is retried on another replica.
  std::vector<std::string> base_urls;
  std::string route_policy = "prefix";
  std::string model = "default";
  double temperature = 0.2;
  std::int64_t max_tokens = 512;
  std::chrono::milliseconds timeout{60000};  // connect, read and write, per attempt
  int retries = 2;                            // extra attempts on connection errors, timeouts, 5xx, 429
  std::chrono::milliseconds backoff{200};     // before retry k (0-based): backoff * 2^k
  std::string api_key_env;                    // the NAME of the variable holding the key; "" = no key
  bool stream = false;                        // ask for server-sent events and accumulate the deltas
  std::string node;                           // the agent's node: the `node` label of its metrics
};

// Throws std::invalid_argument for a base_url (or one of base_urls) it cannot use, a route_policy it does not
// know, or an api_key_env that is not set.
std::unique_ptr<backend> make_http_backend(const http_options& options);

// A 2xx chat-completions reply as the http backend reads it: one JSON body, or server-sent events when
// `sse`; every JSON text in it through the shared reader (runtime/json_reader.hpp). Each tool call gets an
// id when it has none and its arguments parsed (or `arguments_error`: the model is told). Throws
// std::runtime_error for a reply it cannot use (the caller reports "malformed response: ..."). Its own
// entry point so that the fuzzer (tests/fuzz/fuzz_llm_reply.cpp) reaches exactly what a server's reply does.
chat_reply read_chat_reply(const std::string& body, bool sse);

// `rules` is the node's `rules` param (a list of maps; see scripted_backend.cpp). `node` names the node in
// errors; `role` fills {{role}}. Throws std::invalid_argument naming the rule and field for a bad rule.
std::unique_ptr<backend> make_scripted_backend(const value& rules, std::string node, std::string role);

// An agent's prompt template (its `system`) filled for one task: {{input}} (the user message),
// {{input.PATH}} (a field of the input value, as in rules) and {{role}}. Throws std::runtime_error for a path
// the input does not have.
std::string render_prompt(const std::string& text, const value& input, const std::string& message,
                          const std::string& role);
// What is wrong with a prompt template (empty: nothing): its form, a {{tool...}} (no tool has answered when
// it is filled), or a path missing from one of `inputs` (the values the node is known to get).
std::string check_prompt(const std::string& text, const std::vector<value>& inputs = {});

// What validation reports about scripted rules: what make_scripted_backend would refuse, each tool a
// rule calls or reads ({{tool.NAME...}}) that `is_tool` says the node cannot call, and each {{input.PATH}}
// that finds nothing in one of `inputs` (the values the node is known to get; empty: not known). `path` leads from the
// rules list to the value at fault ({"2", "call", "arguments", "query"}); `message` is the runtime's text.
struct rules_problem {
  std::vector<std::string> path;
  std::string message;
  bool unknown_tool = false;  // about a tool the node cannot call
};
std::vector<rules_problem> check_scripted_rules(const value& rules,
                                                const std::function<bool(const std::string&)>& is_tool,
                                                const std::vector<value>& inputs = {});

}  // namespace loom::agents
