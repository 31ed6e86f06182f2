// cli/route_job.cpp: one chat completion's way through the replicas for `loom route` (docs/route.md;
// cli/route.cpp is the command and its HTTP front). Upstream it always asks for a stream: the first token
// times the replica, a request that fails before it goes to another replica, and a stream cut short
// mid-answer is continued on another replica with the text so far as an assistant message. The replica's
// events are read with the shared JSON reader, folded into the answer, rewritten and queued for the client.
#include "cli/route_job.hpp"

#include <fmt/format.h>

#include <cstdlib>
#include <ctime>

#include "loom/runtime/route/prompt.hpp"

namespace loom::cli::routing {

using namespace std::chrono_literals;

std::string excerpt(std::string s, std::size_t n) {
  for (auto& c : s)
    if (c == '\n' || c == '\r') c = ' ';
  return s.size() <= n ? s : s.substr(0, n) + "...";
}

ojson error_body(std::string_view message, std::string_view type, const std::optional<std::string>& param) {
  return {{"error", {{"message", message}, {"type", type}, {"param", param ? ojson(*param) : ojson(nullptr)},
                     {"code", nullptr}}}};
}

const char* error_type(int status) {
  return status == 429 ? "rate_limit_error" : status >= 500 ? "server_error" : "invalid_request_error";
}

completion_job::completion_job(route::router& r, const std::vector<backend>& backends, const route_options& o,
                               ojson request, std::string id)
    : router_(r), backends_(backends), o_(o), request_(std::move(request)), id_(std::move(id)),
      created_(static_cast<std::int64_t>(std::time(nullptr))) {
  if (!o.backend_key_env.empty())
    if (const char* k = std::getenv(o.backend_key_env.c_str()); k && *k) auth_ = std::string("Bearer ") + k;
}

// Runs until the answer is complete or failed (or cancel()).
void completion_job::run() {
  std::vector<std::size_t> tried;
  std::string last_error;
  bool all_busy = true;  // every replica tried said 429: the client hears 429 too
  for (int attempt = 0; attempt < o_.max_attempts; ++attempt) {
    ojson body = request_;
    body["stream"] = true;
    if (!partial_.empty()) {
      body["messages"].push_back({{"role", "assistant"}, {"content", partial_}});
      if (o_.continue_final_message) {
        body["continue_final_message"] = true;
        body["add_generation_prompt"] = false;
      }
    }
    auto picked = router_.pick(route::prompt_text(body), tried);
    if (auto* why = std::get_if<route::refusal>(&picked)) {
      if (tried.empty()) router_.count_refusal(*why);
      if (tried.empty() && *why == route::refusal::all_full)
        return fail({429, fmt::format("every replica is at its limit of {} requests in flight; retry later",
                                      o_.max_in_flight)});
      if (tried.empty()) return fail({503, "no replica is healthy (all ejected after failures); retry later"});
      break;  // no other replica to try
    }
    auto lease = std::move(std::get<route::lease>(picked));
    if (!tried.empty()) router_.count_retry(!partial_.empty());
    tried.push_back(lease.replica());
    auto r = attempt_on(lease, body);
    if (cancelled_) return lease.finish(route::lease::outcome::abandoned);
    switch (r) {
      case result::done:
        lease.finish(route::lease::outcome::ok);
        return end_ok();
      case result::client_error:
        lease.finish(route::lease::outcome::abandoned);
        return fail(client_failure_);
      case result::busy:
        lease.finish(route::lease::outcome::busy);
        break;
      case result::failed:
        lease.finish(route::lease::outcome::failed);
        all_busy = false;
        break;
    }
    last_error = fmt::format("{}: {}", backends_[lease.replica()].url, attempt_error_);
    if (tool_calls_begun_) {
      last_error += " (mid tool call: an answer cut short there cannot be continued)";
      break;
    }
  }
  if (all_busy && !tried.empty() && partial_.empty())
    return fail({429, fmt::format("every replica tried is busy; the last: {}", last_error)});
  fail({502, fmt::format("no replica completed the answer; the last failure: {}", last_error)});
}

// From any thread: stop at once (the client left).
void completion_job::cancel() {
  std::lock_guard lock(m_);
  cancelled_ = true;
  if (active_) active_->stop();
  cv_.notify_all();
}

// Waits until an event is queued or the job ended; false past `deadline`.
bool completion_job::wait_ready(std::chrono::milliseconds deadline) {
  std::unique_lock lock(m_);
  return cv_.wait_for(lock, deadline, [&] { return !events_.empty() || ended_; });
}

// The events queued so far (moved out), and whether the job has ended.
std::pair<std::string, bool> completion_job::take() {
  std::lock_guard lock(m_);
  std::string out;
  for (auto& e : events_) out += e;
  events_.clear();
  return {std::move(out), ended_};
}

// The job ended before any event: why.
std::optional<failure> completion_job::failed_at_once() {
  std::lock_guard lock(m_);
  if (ended_ && !any_event_ && failure_) return failure_;
  return std::nullopt;
}

// The whole answer for a client that did not ask for a stream (after run()): a chat.completion.
std::variant<ojson, failure> completion_job::whole() {
  std::lock_guard lock(m_);
  if (failure_) return *failure_;
  ojson message{{"role", "assistant"}, {"content", content_}};
  if (!tool_calls_.empty()) {
    auto calls = ojson::array();
    for (auto& c : tool_calls_) calls.push_back(c);
    message["tool_calls"] = calls;
    if (content_.empty()) message["content"] = nullptr;
  }
  ojson j{{"id", id_}, {"object", "chat.completion"}, {"created", created_}, {"model", model_},
          {"choices", ojson::array({{{"index", 0}, {"message", message}, {"finish_reason", finish_reason_}}})}};
  if (!usage_.is_null()) j["usage"] = usage_;
  return j;
}

void completion_job::push(std::string event) {
  std::lock_guard lock(m_);
  events_.push_back(std::move(event));
  any_event_ = true;
  cv_.notify_all();
}

void completion_job::end_ok() {
  push("data: [DONE]\n\n");
  std::lock_guard lock(m_);
  ended_ = true;
  cv_.notify_all();
}

void completion_job::fail(failure f) {
  std::lock_guard lock(m_);
  if (any_event_)  // mid-stream: the client learns it in the stream
    events_.push_back("data: " + error_body(f.message, error_type(f.status)).dump() + "\n\ndata: [DONE]\n\n");
  failure_ = std::move(f);
  ended_ = true;
  cv_.notify_all();
}

// One event of the replica's stream: parsed with the shared reader, folded into the answer so far,
// rewritten and queued. False: the replica sent something that is not an event of a chat stream.
bool completion_job::on_event(std::string_view data, route::lease& lease, steady::time_point started) {
  if (data == "[DONE]") {
    saw_done_ = true;
    return true;
  }
  ojson j;
  try {
    j = read_json(data, "a replica's stream event");
  } catch (const json_error& e) {
    attempt_error_ = fmt::format("malformed stream event: {}", e.what());
    return false;
  }
  if (!j.is_object()) {
    attempt_error_ = "malformed stream event: not a JSON object";
    return false;
  }
  if (j.contains("error")) {
    attempt_error_ = fmt::format("the stream reported an error: {}", excerpt(j["error"].dump()));
    return false;
  }
  if (model_.empty() && j.contains("model") && j["model"].is_string()) model_ = j["model"].get<std::string>();
  if (j.contains("usage") && j["usage"].is_object()) usage_ = j["usage"];
  bool keep = j.contains("usage") && !j["usage"].is_null();
  if (j.contains("choices") && j["choices"].is_array() && !j["choices"].empty() && j["choices"][0].is_object()) {
    auto& choice = j["choices"][0];
    if (choice.contains("delta") && choice["delta"].is_object()) {
      auto& delta = choice["delta"];
      if (delta.contains("role")) {
        if (sent_role_) delta.erase("role");
        sent_role_ = true;
      }
      if (delta.contains("content") && delta["content"].is_string()) {
        auto text = delta["content"].get<std::string>();
        if (!text.empty() && !first_token_) {
          first_token_ = true;
          lease.first_token(
              std::chrono::duration<double>(steady::now() - started).count());
        }
        std::lock_guard lock(m_);
        partial_ += text;
        content_ += text;
        if (text.empty() && delta.size() == 1 && (!delta.contains("role"))) delta.erase("content");
      }
      if (delta.contains("tool_calls") && delta["tool_calls"].is_array()) {
        tool_calls_begun_ = true;
        if (!first_token_) {
          first_token_ = true;
          lease.first_token(
              std::chrono::duration<double>(steady::now() - started).count());
        }
        merge_tool_calls(delta["tool_calls"]);
      }
      keep = keep || !delta.empty();
    }
    if (choice.contains("finish_reason") && !choice["finish_reason"].is_null()) {
      finish_reason_ = choice["finish_reason"];
      saw_finish_ = true;
      keep = true;
    }
  }
  if (!keep) return true;
  j["id"] = id_;
  j["created"] = created_;
  push("data: " + j.dump(-1, ' ', false, ojson::error_handler_t::replace) + "\n\n");
  return true;
}

void completion_job::merge_tool_calls(const ojson& calls) {
  std::lock_guard lock(m_);
  for (const auto& c : calls) {
    if (!c.is_object()) continue;
    std::size_t index = c.contains("index") && c["index"].is_number_unsigned() ? c["index"].get<std::size_t>()
                                                                                : tool_calls_.size();
    if (index > 1024) continue;
    if (index >= tool_calls_.size()) tool_calls_.resize(index + 1, ojson{{"type", "function"}, {"function", {{"name", ""}, {"arguments", ""}}}});
    auto& call = tool_calls_[index];
    if (c.contains("id") && c["id"].is_string()) call["id"] = c["id"];
    if (!c.contains("function") || !c["function"].is_object()) continue;
    const auto& fn = c["function"];
    if (fn.contains("name") && fn["name"].is_string())
      call["function"]["name"] = call["function"]["name"].get<std::string>() + fn["name"].get<std::string>();
    if (fn.contains("arguments") && fn["arguments"].is_string())
      call["function"]["arguments"] =
          call["function"]["arguments"].get<std::string>() + fn["arguments"].get<std::string>();
  }
}

auto completion_job::attempt_on(route::lease& lease, const ojson& body) -> result {
  const auto& b = backends_[lease.replica()];
  httplib::Client client(b.origin);
  {
    std::lock_guard lock(m_);
    if (cancelled_) return result::failed;
    active_ = &client;
  }
  struct unregister {
    completion_job* j;
    ~unregister() {
      std::lock_guard lock(j->m_);
      j->active_ = nullptr;
    }
  } done{this};
  auto timeout = std::chrono::milliseconds(static_cast<std::int64_t>(o_.timeout * 1000));
  client.set_connection_timeout(2s);
  client.set_read_timeout(timeout);
  client.set_write_timeout(timeout);
  httplib::Request req;
  req.method = "POST";
  req.path = b.prefix + "/chat/completions";
  req.set_header("Accept", "text/event-stream");
  req.set_header("Content-Type", "application/json");
  if (!auth_.empty()) req.set_header("Authorization", auth_);
  req.body = body.dump(-1, ' ', false, ojson::error_handler_t::replace);
  int status = 0;
  bool sse = true;
  std::string raw, line;
  std::size_t total = 0;
  bool bad = false;
  saw_done_ = saw_finish_ = first_token_ = false;
  req.response_handler = [&](const httplib::Response& r) {
    status = r.status;
    sse = r.get_header_value("Content-Type").find("application/json") == std::string::npos;
    return true;
  };
  auto started = steady::now();
  req.content_receiver = [&](const char* data, std::size_t n, std::uint64_t, std::uint64_t) {
    if (cancelled_) return false;
    total += n;
    if (total > max_reply_bytes) {
      attempt_error_ = fmt::format("the reply is longer than {} bytes", max_reply_bytes);
      return !(bad = true);
    }
    if (status < 200 || status >= 300 || !sse) {
      raw.append(data, n);
      return true;
    }
    for (std::size_t i = 0; i < n; ++i) {
      if (data[i] != '\n') {
        line.push_back(data[i]);
        continue;
      }
      if (!line.empty() && line.back() == '\r') line.pop_back();
      if (line.rfind("data:", 0) == 0) {
        std::string_view d(line);
        d.remove_prefix(line.size() > 5 && line[5] == ' ' ? 6 : 5);
        if (!on_event(d, lease, started)) return !(bad = true);
      }
      line.clear();
    }
    return true;
  };
  auto res = client.send(req);
  if (cancelled_) return result::failed;
  if (bad) return result::failed;
  if (!res) {
    if (saw_done_ || saw_finish_) return result::done;  // complete, only the close was untidy
    attempt_error_ = first_token_ || !partial_.empty()
                         ? fmt::format("the stream was cut short ({})", httplib::to_string(res.error()))
                         : fmt::format("no answer ({})", httplib::to_string(res.error()));
    return result::failed;
  }
  if (status == 429) {
    attempt_error_ = "the replica is busy (429)";
    return result::busy;
  }
  if (status < 200 || status >= 300) {
    attempt_error_ = fmt::format("HTTP {}: {}", status, excerpt(raw));
    if (status >= 500) return result::failed;
    client_failure_ = {status, fmt::format("the replica refused the request: HTTP {}: {}", status, excerpt(raw)), raw};
    return result::client_error;
  }
  if (!sse) return whole_reply(raw, lease, started);
  if (saw_done_ || saw_finish_) return result::done;
  attempt_error_ = "the stream ended before its answer did (no finish_reason, no [DONE])";
  return result::failed;
}

// A replica that ignored `stream` and answered with one body: taken as one event.
auto completion_job::whole_reply(const std::string& raw, route::lease& lease, steady::time_point started)
    -> result {
  ojson j;
  try {
    j = read_json(raw, "a replica's reply");
  } catch (const json_error& e) {
    attempt_error_ = fmt::format("malformed reply: {}", e.what());
    return result::failed;
  }
  if (!j.is_object() || !j.contains("choices") || !j["choices"].is_array() || j["choices"].empty() ||
      !j["choices"][0].is_object() || !j["choices"][0].contains("message")) {
    attempt_error_ = "malformed reply: no choices[0].message";
    return result::failed;
  }
  lease.first_token(std::chrono::duration<double>(steady::now() - started).count());
  auto message = j["choices"][0]["message"];
  ojson delta = ojson::object();
  if (message.contains("content") && message["content"].is_string()) delta["content"] = message["content"];
  if (message.contains("tool_calls")) delta["tool_calls"] = message["tool_calls"];
  ojson chunk{{"choices", ojson::array({{{"index", 0}, {"delta", delta}, {"finish_reason", "stop"}}})}};
  if (j.contains("model")) chunk["model"] = j["model"];
  if (j.contains("usage")) chunk["usage"] = j["usage"];
  auto text = chunk.dump();
  return on_event(text, lease, started) ? result::done : result::failed;
}

}  // namespace loom::cli::routing
