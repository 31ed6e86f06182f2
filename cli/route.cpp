// cli/route.cpp: `loom route --backend URL [--backend URL]... --port P [--policy prefix|least-loaded|round-robin]`:
// an OpenAI-compatible front for a fleet of OpenAI-compatible replicas (vLLM, NIM, TGI, llama.cpp's server),
// docs/route.md. The decisions are runtime/route's router; this file is the HTTP around it:
//   - POST /v1/chat/completions, streamed or not. Upstream, the router always asks for a stream: its first
//     token times the replica (TTFT), and a replica that dies mid-answer is noticed at the token. A request
//     that fails before its first token goes to another replica; a stream cut short mid-answer is
//     continued on another replica with the text so far as an assistant message at the end of the
//     conversation (the replica goes on from it), so the client gets one answer, nothing repeated or lost.
//     A client that asked for a whole answer gets the chunks put together.
//   - every replica full (its --max-in-flight): 429 with Retry-After; none healthy: 503.
//   - GET /v1/models (the first replica that answers), /health, /metrics (the router's, Prometheus text).
//   - a prober asks every replica for GET URL/models each --probe-interval: failures eject, a success lets in.
#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <httplib.h>
#include <nlohmann/json.hpp>

#include <atomic>
#include <condition_variable>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <mutex>
#include <random>
#include <thread>

#include "cli/commands.hpp"
#include "loom/runtime/http/listener.hpp"
#include "loom/runtime/json_reader.hpp"
#include "loom/runtime/observe/metrics.hpp"
#include "loom/runtime/route/prompt.hpp"
#include "loom/runtime/route/router.hpp"

namespace loom::cli {
namespace {

using ojson = nlohmann::ordered_json;
using namespace std::chrono_literals;
using steady = std::chrono::steady_clock;

struct route_options {
  std::vector<std::string> backends;
  std::string host = "127.0.0.1";
  int port = 0;
  std::string policy = "prefix";
  std::size_t max_in_flight = 32;
  double probe_interval = 2;
  int eject_after = 3;
  int max_attempts = 3;
  double timeout = 120;  // seconds an upstream may stay silent
  std::size_t max_body = std::size_t{1} << 20;
  std::size_t max_streams = 256;
  std::string api_key_env;       // the key clients must send
  std::string backend_key_env;   // the key sent to the replicas
  bool continue_final_message = false;  // vLLM: say that the last assistant message is to be continued
};

route_options& parsed() {
  static route_options o;
  return o;
}

// The most of one replica's reply the router reads (a whole body, or one stream): the reader's limit.
constexpr std::size_t max_reply_bytes = json_limits{}.max_bytes;

std::string excerpt(std::string s, std::size_t n = 200) {
  for (auto& c : s)
    if (c == '\n' || c == '\r') c = ' ';
  return s.size() <= n ? s : s.substr(0, n) + "...";
}

struct backend {
  std::string url;     // as given
  std::string origin;  // scheme://host:port
  std::string prefix;  // "/v1"
};

backend parse_backend(const std::string& url) {
  auto scheme_end = url.find("://");
  if (scheme_end == std::string::npos || url.substr(0, scheme_end) != "http")
    throw std::invalid_argument(fmt::format("--backend `{}`: expected http://HOST:PORT[/PATH] (e.g. "
                                            "http://127.0.0.1:8000/v1; without a path, /v1)", url));
  auto host_end = url.find('/', scheme_end + 3);
  backend b{url, url.substr(0, host_end), host_end == std::string::npos ? "" : url.substr(host_end)};
  if (b.origin.size() == scheme_end + 3) throw std::invalid_argument(fmt::format("--backend `{}`: no host", url));
  while (!b.prefix.empty() && b.prefix.back() == '/') b.prefix.pop_back();
  if (b.prefix.empty()) b.prefix = "/v1";
  return b;
}

void send_json(httplib::Response& res, int status, const ojson& body) {
  res.status = status;
  res.set_content(body.dump(-1, ' ', false, ojson::error_handler_t::replace), "application/json; charset=utf-8");
}

ojson error_body(std::string_view message, std::string_view type, const std::optional<std::string>& param = {}) {
  return {{"error", {{"message", message}, {"type", type}, {"param", param ? ojson(*param) : ojson(nullptr)},
                     {"code", nullptr}}}};
}

const char* error_type(int status) {
  return status == 429 ? "rate_limit_error" : status >= 500 ? "server_error" : "invalid_request_error";
}

// What a request failed with, for the client: the status and message.
struct failure {
  int status = 502;
  std::string message;
  std::string body;  // a replica's own error body (a 4xx passed on), or empty
};

// One chat completion's way through the replicas, on a thread of its own when streamed. It always streams
// from the replica; its events (rewritten: the router's id, one role delta) go into `events`.
class completion_job {
 public:
  completion_job(route::router& r, const std::vector<backend>& backends, const route_options& o, ojson request,
                 std::string id)
      : router_(r), backends_(backends), o_(o), request_(std::move(request)), id_(std::move(id)),
        created_(static_cast<std::int64_t>(std::time(nullptr))) {
    if (!o.backend_key_env.empty())
      if (const char* k = std::getenv(o.backend_key_env.c_str()); k && *k) auth_ = std::string("Bearer ") + k;
  }

  // Runs until the answer is complete or failed (or cancel()).
  void run() {
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
  void cancel() {
    std::lock_guard lock(m_);
    cancelled_ = true;
    if (active_) active_->stop();
    cv_.notify_all();
  }

  // Waits until an event is queued or the job ended; false past `deadline`.
  bool wait_ready(std::chrono::milliseconds deadline) {
    std::unique_lock lock(m_);
    return cv_.wait_for(lock, deadline, [&] { return !events_.empty() || ended_; });
  }
  // The events queued so far (moved out), and whether the job has ended.
  std::pair<std::string, bool> take() {
    std::lock_guard lock(m_);
    std::string out;
    for (auto& e : events_) out += e;
    events_.clear();
    return {std::move(out), ended_};
  }
  // The job ended before any event: why.
  std::optional<failure> failed_at_once() {
    std::lock_guard lock(m_);
    if (ended_ && !any_event_ && failure_) return failure_;
    return std::nullopt;
  }

  // The whole answer for a client that did not ask for a stream (after run()): a chat.completion.
  std::variant<ojson, failure> whole() {
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

 private:
  enum class result { done, failed, busy, client_error };

  void push(std::string event) {
    std::lock_guard lock(m_);
    events_.push_back(std::move(event));
    any_event_ = true;
    cv_.notify_all();
  }
  void end_ok() {
    push("data: [DONE]\n\n");
    std::lock_guard lock(m_);
    ended_ = true;
    cv_.notify_all();
  }
  void fail(failure f) {
    std::lock_guard lock(m_);
    if (any_event_)  // mid-stream: the client learns it in the stream
      events_.push_back("data: " + error_body(f.message, error_type(f.status)).dump() + "\n\ndata: [DONE]\n\n");
    failure_ = std::move(f);
    ended_ = true;
    cv_.notify_all();
  }

  // One event of the replica's stream: parsed with the shared reader, folded into the answer so far,
  // rewritten and queued. False: the replica sent something that is not an event of a chat stream.
  bool on_event(std::string_view data, route::lease& lease, steady::time_point started) {
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

  void merge_tool_calls(const ojson& calls) {
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

  result attempt_on(route::lease& lease, const ojson& body) {
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
  result whole_reply(const std::string& raw, route::lease& lease, steady::time_point started) {
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

  route::router& router_;
  const std::vector<backend>& backends_;
  const route_options& o_;
  ojson request_;
  std::string id_;
  std::int64_t created_;
  std::string auth_;

  std::mutex m_;
  std::condition_variable cv_;
  std::deque<std::string> events_;
  bool any_event_ = false, ended_ = false;
  std::optional<failure> failure_;
  std::atomic<bool> cancelled_{false};
  httplib::Client* active_ = nullptr;

  // The answer so far, across replicas.
  std::string partial_, content_;
  std::vector<ojson> tool_calls_;
  ojson finish_reason_ = "stop", usage_;
  std::string model_;
  bool sent_role_ = false, tool_calls_begun_ = false;
  // This attempt.
  bool saw_done_ = false, saw_finish_ = false, first_token_ = false;
  std::string attempt_error_;
  failure client_failure_;
};

class front {
 public:
  front(const route_options& o, std::vector<backend> backends, route::router_options ro)
      : o_(o),
        backends_(std::move(backends)),
        router_(urls(backends_), std::move(ro)),
        door_(listener_options()),
        id_prefix_(fmt::format("{:08x}", std::random_device{}())) {
    routes();
  }

  int bind() { return door_.bind(); }
  void run() {
    std::jthread prober([this](std::stop_token stop) { probe_loop(stop); });
    door_.run();
  }
  void stop() { door_.stop(); }

 private:
  static std::vector<std::string> urls(const std::vector<backend>& b) {
    std::vector<std::string> out;
    for (const auto& x : b) out.push_back(x.url);
    return out;
  }

  http::listener_options listener_options() {
    http::listener_options l;
    l.name = "loom route";
    l.host = o_.host;
    l.port = o_.port;
    // A whole (not streamed) answer holds a thread while it is made: room for every replica's admission
    // limit, and for health checks and refusals beside them.
    l.threads = std::min<std::size_t>(backends_.size() * o_.max_in_flight, 1024) + 16;
    l.max_streams = o_.max_streams;
    l.max_body = o_.max_body;
    l.idle_timeout = 1s;
    if (!o_.api_key_env.empty()) l.api_key = std::getenv(o_.api_key_env.c_str());
    l.needs_key = [](std::string_view path) { return path != "/health" && path != "/metrics"; };
    l.error_body = [](int status, std::string_view message) {
      return error_body(message, error_type(status)).dump(-1, ' ', false, ojson::error_handler_t::replace);
    };
    return l;
  }

  void probe_loop(std::stop_token stop) {
    auto interval = std::chrono::milliseconds(static_cast<std::int64_t>(o_.probe_interval * 1000));
    std::mutex m;
    std::condition_variable_any cv;
    while (!stop.stop_requested()) {
      for (std::size_t i = 0; i < backends_.size() && !stop.stop_requested(); ++i) {
        httplib::Client c(backends_[i].origin);
        c.set_connection_timeout(1s);
        c.set_read_timeout(2s);
        auto r = c.Get(backends_[i].prefix + "/models");
        router_.probed(i, r && r->status == 200);
      }
      std::unique_lock lock(m);
      cv.wait_for(lock, stop, interval, [] { return false; });
    }
  }

  void refuse_full(httplib::Response& res, const failure& f) {
    send_json(res, f.status, error_body(f.message, error_type(f.status)));
    if (f.status == 429 || f.status == 503) res.set_header("Retry-After", std::to_string(router_.retry_after_seconds()));
  }

  void chat(const httplib::Request&, httplib::Response& res, const httplib::ContentReader& reader) {
    auto body = door_.read_body(reader);
    if (door_.refuse_body(res, body)) return;
    ojson request;
    try {
      request = read_json(body.text, "request body");
    } catch (const json_error& e) {
      return send_json(res, 400, error_body(e.what(), "invalid_request_error"));
    }
    if (!request.is_object()) return send_json(res, 400, error_body("the request body must be a JSON object", "invalid_request_error"));
    if (!request.contains("messages") || !request["messages"].is_array() || request["messages"].empty())
      return send_json(res, 400, error_body("`messages` must be a non-empty array", "invalid_request_error", "messages"));
    for (std::size_t i = 0; i < request["messages"].size(); ++i) {
      const auto& m = request["messages"][i];
      if (!m.is_object() || !m.contains("role") || !m["role"].is_string())
        return send_json(res, 400, error_body(fmt::format("messages[{}] must be an object with a string `role`", i),
                                              "invalid_request_error", fmt::format("messages[{}].role", i)));
    }
    if (request.contains("stream") && !request["stream"].is_boolean())
      return send_json(res, 400, error_body("`stream` must be true or false", "invalid_request_error", "stream"));
    bool stream = request.value("stream", false);
    auto id = fmt::format("chatcmpl-route-{}{:08x}", id_prefix_, next_id_.fetch_add(1));
    auto job = std::make_shared<completion_job>(router_, backends_, o_, std::move(request), std::move(id));
    if (!stream) {
      job->run();
      auto whole = job->whole();
      if (auto* f = std::get_if<failure>(&whole)) {
        if (!f->body.empty()) {
          res.status = f->status;
          return res.set_content(f->body, "application/json");
        }
        return refuse_full(res, *f);
      }
      return send_json(res, 200, std::get<ojson>(whole));
    }
    auto slot = door_.open_stream();
    if (!slot) return door_.refuse(res, 503, "too many streams at once; retry later");
    struct state {
      std::shared_ptr<completion_job> job;
      std::shared_ptr<void> slot;
      std::jthread worker;
    };
    auto st = std::make_shared<state>();
    st->job = job;
    st->slot = std::move(slot);
    st->worker = std::jthread([job] { job->run(); });
    while (!job->wait_ready(100ms)) {
    }
    if (auto f = job->failed_at_once()) {
      st->worker.join();
      if (!f->body.empty()) {
        res.status = f->status;
        return res.set_content(f->body, "application/json");
      }
      return refuse_full(res, *f);
    }
    res.set_header("Cache-Control", "no-cache");
    res.set_chunked_content_provider(
        "text/event-stream",
        [st](std::size_t, httplib::DataSink& sink) {
          while (!st->job->wait_ready(100ms))
            if (!sink.is_writable()) return false;
          auto [text, ended] = st->job->take();
          if (!text.empty() && !sink.write(text.data(), text.size())) return false;
          if (ended) {
            auto [rest, _] = st->job->take();
            if (!rest.empty() && !sink.write(rest.data(), rest.size())) return false;
            sink.done();
          }
          return true;
        },
        [st](bool success) {
          if (!success) st->job->cancel();
          if (st->worker.joinable()) st->worker.join();
          st->slot.reset();
        });
  }

  void routes() {
    auto& http = door_.server();
    http.Get("/health", [this](const httplib::Request&, httplib::Response& res) {
      auto replicas = ojson::array();
      bool any = false;
      for (std::size_t i = 0; i < router_.size(); ++i) {
        auto v = router_.view(i);
        any = any || v.healthy;
        replicas.push_back({{"url", v.url}, {"healthy", v.healthy}, {"in_flight", v.in_flight}});
      }
      send_json(res, any ? 200 : 503, {{"status", any ? "ok" : "no healthy replica"},
                                       {"policy", route::policy_name(router_.options().how)},
                                       {"replicas", replicas}});
    });
    http.Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
      res.set_content(router_.metrics_text(), observe::text_content_type);
    });
    http.Get("/v1/models", [this](const httplib::Request&, httplib::Response& res) {
      for (std::size_t i = 0; i < backends_.size(); ++i) {
        if (!router_.view(i).healthy) continue;
        httplib::Client c(backends_[i].origin);
        c.set_connection_timeout(1s);
        c.set_read_timeout(5s);
        auto r = c.Get(backends_[i].prefix + "/models");
        if (!r || r->status != 200) continue;
        try {
          auto j = read_json(r->body, "a replica's model list");
          if (j.is_object() && j.contains("data") && j["data"].is_array()) return send_json(res, 200, j);
        } catch (const json_error&) {
        }
      }
      send_json(res, 503, error_body("no replica listed its models; retry later", "server_error"));
    });
    http.Post("/v1/chat/completions",
              [this](const httplib::Request& req, httplib::Response& res, const httplib::ContentReader& reader) {
                chat(req, res, reader);
              });
    door_.answer_errors_in_json();  // error_body() in the route's style: "HTTP <status> for <METHOD> <path>"
  }

  const route_options& o_;
  std::vector<backend> backends_;
  route::router router_;
  http::listener door_;
  std::string id_prefix_;
  std::atomic<std::uint64_t> next_id_{0};
};

}  // namespace

CLI::App* add_route_command(CLI::App& app) {
  auto& o = parsed();
  auto* cmd = app.add_subcommand("route", "Route OpenAI-compatible chat completions across model replicas by "
                                          "prefix and load; survive a replica's death (docs/route.md)");
  cmd->add_option("--backend", o.backends, "A replica's base URL, http://HOST:PORT[/PATH] (no path: /v1); repeatable")
      ->required();
  cmd->add_option("--port", o.port, "TCP port (0: any free port, printed)")->required()->check(CLI::Range(0, 65535));
  cmd->add_option("--host", o.host, "Address to listen on")->capture_default_str();
  cmd->add_option("--policy", o.policy, "prefix, least-loaded or round-robin")
      ->check(CLI::IsMember({"prefix", "least-loaded", "round-robin"}))
      ->capture_default_str();
  cmd->add_option("--max-in-flight", o.max_in_flight, "Requests per replica at once; all full: 429")
      ->capture_default_str()->check(CLI::PositiveNumber);
  cmd->add_option("--probe-interval", o.probe_interval, "Seconds between health probes (GET URL/models)")
      ->capture_default_str()->check(CLI::PositiveNumber);
  cmd->add_option("--eject-after", o.eject_after, "Failures in a row (requests or probes) that eject a replica")
      ->capture_default_str()->check(CLI::PositiveNumber);
  cmd->add_option("--max-attempts", o.max_attempts, "Replicas one request may try (retries and continuations)")
      ->capture_default_str()->check(CLI::PositiveNumber);
  cmd->add_option("--timeout", o.timeout, "Seconds a replica may stay silent mid-request")
      ->capture_default_str()->check(CLI::PositiveNumber);
  cmd->add_option("--max-body", o.max_body, "Largest request body (bytes, or 64KiB, 1MiB...); beyond: 413")
      ->transform(CLI::AsSizeValue(false))->default_str("1MiB");
  cmd->add_option("--api-key-env", o.api_key_env, "Environment variable holding the key clients must send (Bearer)");
  cmd->add_option("--backend-key-env", o.backend_key_env, "Environment variable holding the key sent to the replicas");
  cmd->add_flag("--continue-final-message", o.continue_final_message,
                "A continued answer also says continue_final_message=true, add_generation_prompt=false (vLLM)");
  return cmd;
}

int route_command() {
  const auto& o = parsed();
  std::vector<backend> backends;
  try {
    for (const auto& b : o.backends) backends.push_back(parse_backend(b));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "loom route: %s\n", e.what());
    return invalid;
  }
  if (!o.api_key_env.empty() && (!std::getenv(o.api_key_env.c_str()) || !*std::getenv(o.api_key_env.c_str()))) {
    std::fprintf(stderr, "loom route: --api-key-env %s: the environment variable is not set or empty\n",
                 o.api_key_env.c_str());
    return invalid;
  }
  route::router_options ro;
  ro.how = *route::parse_policy(o.policy);
  ro.max_in_flight = o.max_in_flight;
  ro.eject_after = o.eject_after;
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  std::unique_ptr<front> f;
  int port = 0;
  try {
    f = std::make_unique<front>(o, std::move(backends), std::move(ro));
    port = f->bind();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "loom route: %s\n", e.what());
    return invalid;
  }
  std::fprintf(stderr, "loom route: listening on http://%s:%d/v1 (%zu replicas, policy %s)\n", o.host.c_str(), port,
               o.backends.size(), o.policy.c_str());
  std::printf("%d\n", port);
  std::fflush(stdout);
  std::jthread watcher([&](std::stop_token stop) {
    timespec tick{0, 100'000'000};
    while (!stop.stop_requested())
      if (sigtimedwait(&signals, nullptr, &tick) >= 0) {
        f->stop();
        return;
      }
  });
  f->run();
  watcher.request_stop();
  return ok;
}

}  // namespace loom::cli
