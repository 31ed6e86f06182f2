// actors/agents/http_backend.cpp: the OpenAI-compatible chat-completions protocol (vLLM, NIM, TGI, llama.cpp's
// server, Ollama) over cpp-httplib. POST {base_url}/chat/completions with the model, messages, temperature,
// max_tokens, tools and stream; the reply's choices[0].message gives the text and tool calls. With stream,
// the body is server-sent events (`data: {...}` lines up to `data: [DONE]`) whose deltas are accumulated:
// content concatenated, tool calls by index with their argument fragments concatenated.
// Connection errors, timeouts, 5xx and 429 are retried with exponential backoff; any other 4xx fails at once.
#include <httplib.h>
#include <fmt/format.h>

#include <cstdlib>
#include <stdexcept>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "loom/actors/agents/backend.hpp"
#include "loom/runtime/json_reader.hpp"
#include "loom/runtime/observe/metrics.hpp"
#include "loom/runtime/observe/trace.hpp"

namespace loom::agents {
namespace {

using ojson = nlohmann::ordered_json;

// The most of one reply (a whole body or a whole stream) an agent reads: the shared reader's size limit.
constexpr std::size_t max_reply_bytes = json_limits{}.max_bytes;

std::string excerpt(std::string s, std::size_t n = 200) {
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

struct bad_response : std::runtime_error {
  using std::runtime_error::runtime_error;
};

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

std::string describe(httplib::Error e) {
  switch (e) {
    case httplib::Error::Connection: return "could not connect";
    case httplib::Error::Read: return "the connection failed while reading the reply";
    case httplib::Error::Write: return "the connection failed while sending the request";
    case httplib::Error::SSLConnection: return "TLS connection failed";
    case httplib::Error::SSLServerVerification: return "TLS server verification failed";
    default: return fmt::format("request failed ({})", httplib::to_string(e));
  }
}

struct endpoint {
  std::string origin;  // scheme://host:port
  std::string path;    // prefix + /chat/completions
};

endpoint parse_base_url(const std::string& url) {
  auto scheme_end = url.find("://");
  if (scheme_end == std::string::npos)
    throw std::invalid_argument(fmt::format("base_url `{}`: expected http://host[:port][/path]", url));
  auto scheme = url.substr(0, scheme_end);
  if (scheme != "http" && scheme != "https")
    throw std::invalid_argument(fmt::format("base_url `{}`: the scheme must be http or https", url));
#ifndef CPPHTTPLIB_OPENSSL_SUPPORT
  if (scheme == "https")
    throw std::invalid_argument(
        fmt::format("base_url `{}`: https is not supported by this build (cpp-httplib without OpenSSL)", url));
#endif
  auto host_end = url.find('/', scheme_end + 3);
  endpoint e;
  e.origin = url.substr(0, host_end);
  if (e.origin.size() == scheme_end + 3) throw std::invalid_argument(fmt::format("base_url `{}`: no host", url));
  std::string prefix = host_end == std::string::npos ? "" : url.substr(host_end);
  while (!prefix.empty() && prefix.back() == '/') prefix.pop_back();
  e.path = prefix + "/chat/completions";
  return e;
}

class http_backend final : public backend {
 public:
  explicit http_backend(const http_options& o)
      : o_(o),
        at_(parse_base_url(o.base_url)),
        url_(at_.origin + at_.path),
        seconds_(observe::metrics().get_histogram("loom_agent_llm_request_seconds",
                                                  "Time of one chat-completions request (one attempt) of an agent.",
                                                  {{"node", o.node}})),
        prompt_tokens_(observe::metrics().get_counter("loom_agent_tokens_total",
                                                      "Tokens of an agent's requests, from the server's `usage`.",
                                                      {{"node", o.node}, {"type", "prompt"}})),
        completion_tokens_(observe::metrics().get_counter("loom_agent_tokens_total", "",
                                                          {{"node", o.node}, {"type", "completion"}})) {
    if (!o.api_key_env.empty()) {
      const char* key = std::getenv(o.api_key_env.c_str());
      if (key == nullptr || *key == '\0')
        throw std::invalid_argument(
            fmt::format("api_key_env: the environment variable `{}` is not set (it should hold the API key)",
                        o.api_key_env));
      auth_ = std::string("Bearer ") + key;
    }
  }

  void trace_into(observe::span_buffer* spans) override { spans_ = spans; }

  // A traced run: one span per complete() (its retries included), named and attributed per the
  // OpenTelemetry GenAI conventions; the request carries it as `traceparent`.
  chat_reply complete(const std::vector<chat_message>& messages, const ojson& tools) override {
    if (spans_ == nullptr) return complete_untraced(messages, tools);
    observe::span s;
    s.id = spans_->new_id();
    s.parent = spans_->current;
    s.kind = observe::span_kind::model;
    s.track = spans_->track();
    s.name = "chat " + o_.model;
    s.start_ns = spans_->now_ns();
    traceparent_ = observe::to_traceparent({spans_->owner().trace(), s.id});
    s.attrs.push_back({"gen_ai.operation.name", std::string("chat")});
    s.attrs.push_back({"gen_ai.request.model", o_.model});
    s.attrs.push_back({"server.address", at_.origin});
    auto record = [&](const chat_reply* r, const char* error) {
      s.end_ns = spans_->now_ns();
      if (r != nullptr) {
        if (!r->response_model.empty()) s.attrs.push_back({"gen_ai.response.model", r->response_model});
        if (r->input_tokens >= 0) s.attrs.push_back({"gen_ai.usage.input_tokens", r->input_tokens});
        if (r->output_tokens >= 0) s.attrs.push_back({"gen_ai.usage.output_tokens", r->output_tokens});
      } else {
        s.error = true;
        s.attrs.push_back({"error.type", std::string(error)});
      }
      spans_->add(std::move(s));
    };
    try {
      auto r = complete_untraced(messages, tools);
      record(&r, nullptr);
      return r;
    } catch (const std::exception& e) {
      record(nullptr, e.what());
      throw;
    }
  }

 private:
  chat_reply complete_untraced(const std::vector<chat_message>& messages, const ojson& tools) {
    auto body = request_body(messages, tools).dump();
    std::string failure;
    for (int attempt = 0; attempt <= o_.retries; ++attempt) {
      if (attempt > 0) {
        std::unique_lock lock(m_);
        abort_cv_.wait_for(lock, o_.backoff * (std::int64_t{1} << std::min(attempt - 1, 20)), [&] { return aborted_; });
      }
      if (aborted()) throw std::runtime_error(fmt::format("POST {}: cancelled (the run is stopping)", url_));
      auto outcome = post(body);
      if (aborted()) throw std::runtime_error(fmt::format("POST {}: cancelled (the run is stopping)", url_));
      if (outcome.reply) return std::move(*outcome.reply);
      failure = std::move(outcome.error);
      if (!outcome.retry) throw std::runtime_error(fmt::format("POST {}: {}", url_, failure));
    }
    throw std::runtime_error(fmt::format("POST {}: {} (gave up after {} attempt{})", url_, failure, o_.retries + 1,
                                         o_.retries == 0 ? "" : "s"));
  }

  struct outcome {
    std::optional<chat_reply> reply;
    std::string error;
    bool retry = false;
  };

  ojson request_body(const std::vector<chat_message>& messages, const ojson& tools) const {
    ojson j{{"model", o_.model}, {"messages", ojson::array()}, {"temperature", o_.temperature},
            {"max_tokens", o_.max_tokens}};
    for (const auto& m : messages) j["messages"].push_back(to_wire(m));
    if (tools.is_array() && !tools.empty()) j["tools"] = tools;
    j["stream"] = o_.stream;
    return j;
  }

  void abort() override {
    std::lock_guard lock(m_);
    aborted_ = true;
    if (active_ != nullptr) active_->stop();  // shuts the socket down: the blocked read returns at once
    abort_cv_.notify_all();
  }

  bool aborted() {
    std::lock_guard lock(m_);
    return aborted_;
  }

  outcome post(const std::string& body) {
    httplib::Client client(at_.origin);
    {
      std::lock_guard lock(m_);
      if (aborted_) return {std::nullopt, "cancelled", false};
      active_ = &client;
    }
    struct unregister {
      http_backend* b;
      ~unregister() {
        std::lock_guard lock(b->m_);
        b->active_ = nullptr;
      }
    } done{this};
    auto sec = [](std::chrono::milliseconds d) { return std::pair<time_t, time_t>(d.count() / 1000, d.count() % 1000 * 1000); };
    auto [s, us] = sec(o_.timeout);
    client.set_connection_timeout(s, us);
    client.set_read_timeout(s, us);
    client.set_write_timeout(s, us);
    httplib::Headers headers{{"Accept", o_.stream ? "text/event-stream" : "application/json"}};
    if (!auth_.empty()) headers.emplace("Authorization", auth_);
    if (spans_ != nullptr) headers.emplace("traceparent", traceparent_);
    // The reply is read into a bounded buffer: a server that sends more than the reader's limit is cut off
    // there (one bad reply, never a process that buffers without end).
    httplib::Request req;
    req.method = "POST";
    req.path = at_.path;
    req.headers = std::move(headers);
    req.body = body;
    req.set_header("Content-Type", "application/json");
    std::string reply;
    bool too_big = false;
    req.content_receiver = [&](const char* data, std::size_t n, std::uint64_t, std::uint64_t) {
      if (reply.size() + n > max_reply_bytes) return !(too_big = true);
      reply.append(data, n);
      return true;
    };
    auto started = std::chrono::steady_clock::now();
    auto res = client.send(req);
    seconds_.observe(std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());
    if (res) res->body = std::move(reply);
    auto out = too_big ? outcome{std::nullopt,
                                 fmt::format("malformed response: the reply is longer than {} bytes", max_reply_bytes),
                                 false}
                       : finish(res, started);
    if (too_big) status_ = "malformed";
    // One registry lookup per LLM request (milliseconds to seconds each), not per message.
    observe::metrics()
        .get_counter("loom_agent_llm_requests_total",
                     "Chat-completions requests (attempts) of an agent, by outcome: the HTTP status, or "
                     "timeout, connection, malformed.",
                     {{"node", o_.node}, {"status", status_}})
        .add();
    return out;
  }

  outcome finish(const httplib::Result& res, std::chrono::steady_clock::time_point started) {
    status_ = "connection";
    if (!res) {
      auto took = std::chrono::steady_clock::now() - started;
      auto err = res.error();
      bool timed_out = err == httplib::Error::ConnectionTimeout ||
                       ((err == httplib::Error::Read || err == httplib::Error::Write) && took >= o_.timeout * 9 / 10);
      if (timed_out) status_ = "timeout";
      if (timed_out) return {std::nullopt, fmt::format("timed out after {} ms", o_.timeout.count()), true};
      return {std::nullopt, describe(err), true};
    }
    status_ = std::to_string(res->status);
    if (res->status < 200 || res->status >= 300) {
      bool retry = res->status >= 500 || res->status == 429;
      return {std::nullopt, fmt::format("HTTP {}: {}", res->status, excerpt(res->body)), retry};
    }
    try {
      // A server that ignores `stream` answers with one JSON body; take it as it is.
      bool sse = o_.stream && res->get_header_value("Content-Type").find("application/json") == std::string::npos;
      auto reply = read_chat_reply(res->body, sse);
      if (reply.input_tokens > 0) prompt_tokens_.add(static_cast<std::uint64_t>(reply.input_tokens));
      if (reply.output_tokens > 0) completion_tokens_.add(static_cast<std::uint64_t>(reply.output_tokens));
      return {std::move(reply), {}, false};
    } catch (const bad_response& e) {
      status_ = "malformed";
      return {std::nullopt, fmt::format("malformed response: {}", e.what()), false};
    } catch (const nlohmann::json::exception& e) {
      status_ = "malformed";
      return {std::nullopt, fmt::format("malformed response: {}", e.what()), false};
    }
  }

  http_options o_;
  endpoint at_;
  std::string url_;
  std::string auth_;  // "Bearer <key>", never logged
  observe::histogram& seconds_;
  observe::counter& prompt_tokens_;
  observe::counter& completion_tokens_;
  std::string status_;  // the outcome of the last attempt (complete() runs one attempt at a time)
  std::mutex m_;      // guards active_ and aborted_ (abort() comes from another thread)
  std::condition_variable abort_cv_;
  httplib::Client* active_ = nullptr;
  bool aborted_ = false;
  observe::span_buffer* spans_ = nullptr;  // a traced run
  std::string traceparent_;                // the request in flight's, when traced
};

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

std::unique_ptr<backend> make_http_backend(const http_options& options) {
  return std::make_unique<http_backend>(options);
}

}  // namespace loom::agents
