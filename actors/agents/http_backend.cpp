// actors/agents/http_backend.cpp: the OpenAI-compatible chat-completions protocol (vLLM, NIM, TGI, llama.cpp's
// server, Ollama) over cpp-httplib. POST {base_url}/chat/completions with the model, messages, temperature,
// max_tokens, tools and stream; the reply's choices[0].message gives the text and tool calls, or with stream
// server-sent events (the wire format, request and reply, is http_wire.cpp).
// Connection errors, timeouts, 5xx and 429 are retried with exponential backoff; any other 4xx fails at once.
// With base_urls, each attempt goes to the replica a router chooses (runtime/route, shared by the agents of
// the process that name the same replicas and policy; docs/route.md): a retry goes to a replica not yet
// tried for this request at once, and waits its backoff only once every healthy replica was tried.
#include <httplib.h>
#include <fmt/format.h>

#include <algorithm>
#include <condition_variable>
#include <cstdlib>
#include <map>
#include <mutex>
#include <stdexcept>
#include <stop_token>
#include <thread>

#include "loom/actors/agents/backend.hpp"
#include "loom/actors/agents/http_wire.hpp"
#include "loom/runtime/json_reader.hpp"
#include "loom/runtime/observe/metrics.hpp"
#include "loom/runtime/observe/trace.hpp"
#include "loom/runtime/route/prompt.hpp"
#include "loom/runtime/route/router.hpp"

namespace loom::agents {
namespace {

using namespace detail;

using ojson = nlohmann::ordered_json;

// The most of one reply (a whole body or a whole stream) an agent reads: the shared reader's size limit.
constexpr std::size_t max_reply_bytes = json_limits{}.max_bytes;

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
  std::string prefix;  // the base URL's path, without a trailing `/` ("/v1")
  std::string path;    // prefix + /chat/completions
};

// `field` names the URL in errors: "base_url", "base_urls[1]".
endpoint parse_base_url(const std::string& url, const std::string& field = "base_url") {
  auto scheme_end = url.find("://");
  if (scheme_end == std::string::npos)
    throw std::invalid_argument(fmt::format("{} `{}`: expected http://host[:port][/path]", field, url));
  auto scheme = url.substr(0, scheme_end);
  if (scheme != "http" && scheme != "https")
    throw std::invalid_argument(fmt::format("{} `{}`: the scheme must be http or https", field, url));
#ifndef CPPHTTPLIB_OPENSSL_SUPPORT
  if (scheme == "https")
    throw std::invalid_argument(
        fmt::format("{} `{}`: https is not supported by this build (cpp-httplib without OpenSSL)", field, url));
#endif
  auto host_end = url.find('/', scheme_end + 3);
  endpoint e;
  e.origin = url.substr(0, host_end);
  if (e.origin.size() == scheme_end + 3) throw std::invalid_argument(fmt::format("{} `{}`: no host", field, url));
  e.prefix = host_end == std::string::npos ? "" : url.substr(host_end);
  while (!e.prefix.empty() && e.prefix.back() == '/') e.prefix.pop_back();
  e.path = e.prefix + "/chat/completions";
  return e;
}

// Replicas shared by the agents of this process that name the same base_urls and route_policy: one router
// (what was sent where, each replica's load and health), one prober (GET {base}/models every
// `probe_interval`: failures count toward ejection, a success lets an ejected replica back in, as in `loom
// route`), and the router's loom_route_* metrics in the process registry while the pool lives.
class replica_pool {
 public:
  static constexpr std::chrono::seconds probe_interval{2};

  replica_pool(std::vector<endpoint> replicas, route::router_options ro)
      : replicas_(std::move(replicas)), router_(urls(replicas_), std::move(ro)) {
    collector_ = observe::metrics().add_collector([this](std::vector<observe::family>& out) {
      for (auto& f : router_.metrics_families()) out.push_back(std::move(f));
    });
    prober_ = std::jthread([this](std::stop_token stop) { probe_loop(stop); });
  }
  ~replica_pool() {
    prober_.request_stop();
    {
      std::lock_guard lock(m_);
      if (probing_ != nullptr) probing_->stop();
    }
    cv_.notify_all();
    if (prober_.joinable()) prober_.join();
    observe::metrics().remove_collector(collector_);
  }
  replica_pool(const replica_pool&) = delete;
  replica_pool& operator=(const replica_pool&) = delete;

  route::router& router() { return router_; }
  const endpoint& replica(std::size_t i) const { return replicas_.at(i); }
  std::size_t size() const { return replicas_.size(); }
  // A healthy replica that is not in `tried`.
  bool untried(const std::vector<std::size_t>& tried) const {
    for (std::size_t i = 0; i < replicas_.size(); ++i)
      if (std::find(tried.begin(), tried.end(), i) == tried.end() && router_.view(i).healthy) return true;
    return false;
  }

  // The pool of these replicas and policy: the one other agents of the process hold, or a new one.
  static std::shared_ptr<replica_pool> shared(std::vector<endpoint> replicas, route::policy how) {
    std::string key = route::policy_name(how);
    for (const auto& r : replicas) key += "\n" + r.origin + r.prefix;
    static std::mutex m;
    static std::map<std::string, std::weak_ptr<replica_pool>> pools;
    std::lock_guard lock(m);
    for (auto it = pools.begin(); it != pools.end();) it = it->second.expired() ? pools.erase(it) : std::next(it);
    if (auto p = pools[key].lock()) return p;
    route::router_options ro;
    ro.how = how;
    // No admission limit in-process: the agent is the client, and a replica's own queue holds the excess
    // (a refusal here would only spend the agent's retries).
    ro.max_in_flight = std::size_t{1} << 20;
    auto p = std::make_shared<replica_pool>(std::move(replicas), std::move(ro));
    pools[key] = p;
    return p;
  }

 private:
  static std::vector<std::string> urls(const std::vector<endpoint>& replicas) {
    std::vector<std::string> out;
    for (const auto& r : replicas) out.push_back(r.origin + r.prefix);
    return out;
  }

  void probe_loop(std::stop_token stop) {
    while (!stop.stop_requested()) {
      for (std::size_t i = 0; i < replicas_.size() && !stop.stop_requested(); ++i) {
        httplib::Client c(replicas_[i].origin);
        c.set_connection_timeout(1, 0);
        c.set_read_timeout(2, 0);
        {
          std::lock_guard lock(m_);
          if (stop.stop_requested()) return;
          probing_ = &c;
        }
        auto r = c.Get(replicas_[i].prefix + "/models");
        {
          std::lock_guard lock(m_);
          probing_ = nullptr;
        }
        if (stop.stop_requested()) return;
        router_.probed(i, r && r->status == 200);
      }
      std::unique_lock lock(m_);
      cv_.wait_for(lock, stop, probe_interval, [] { return false; });
    }
  }

  std::vector<endpoint> replicas_;
  route::router router_;
  std::uint64_t collector_ = 0;
  std::mutex m_;  // probing_
  std::condition_variable_any cv_;
  httplib::Client* probing_ = nullptr;
  std::jthread prober_;  // last: stopped and joined first
};

class http_backend final : public backend {
 public:
  explicit http_backend(const http_options& o)
      : o_(o),
        at_(o.base_urls.empty() ? parse_base_url(o.base_url) : endpoint{}),
        url_(at_.origin + at_.path),
        seconds_(observe::metrics().get_histogram("loom_agent_llm_request_seconds",
                                                  "Time of one chat-completions request (one attempt) of an agent.",
                                                  {{"node", o.node}})),
        prompt_tokens_(observe::metrics().get_counter("loom_agent_tokens_total",
                                                      "Tokens of an agent's requests, from the server's `usage`.",
                                                      {{"node", o.node}, {"type", "prompt"}})),
        completion_tokens_(observe::metrics().get_counter("loom_agent_tokens_total", "",
                                                          {{"node", o.node}, {"type", "completion"}})) {
    if (!o.base_urls.empty()) {
      auto how = route::parse_policy(o.route_policy);
      if (!how)
        throw std::invalid_argument(fmt::format(
            "route_policy `{}`: expected prefix, least-loaded or round-robin", o.route_policy));
      std::vector<endpoint> replicas;
      for (std::size_t i = 0; i < o.base_urls.size(); ++i)
        replicas.push_back(parse_base_url(o.base_urls[i], fmt::format("base_urls[{}]", i)));
      if (replicas.size() > route::prefix_index::max_replicas)
        throw std::invalid_argument(fmt::format("base_urls: at most {} replicas ({} given)",
                                                route::prefix_index::max_replicas, replicas.size()));
      pool_ = replica_pool::shared(std::move(replicas), *how);
    }
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
  // OpenTelemetry GenAI conventions; the request carries it as `traceparent`. With base_urls,
  // `server.address` is the replica that answered (or was tried last) and `loom.route.reason` why the
  // router chose it.
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
    auto record = [&](const chat_reply* r, const char* error) {
      s.end_ns = spans_->now_ns();
      if (!pool_ || !served_by_.empty()) s.attrs.push_back({"server.address", pool_ ? served_by_ : at_.origin});
      if (pool_ && !route_reason_.empty()) s.attrs.push_back({"loom.route.reason", route_reason_});
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
    auto request = request_body(messages, tools);
    auto body = request.dump();
    // The router's key: the prompt as `loom route` renders it (tools, then each message).
    std::string prompt = pool_ ? route::prompt_text(request) : std::string();
    std::vector<std::size_t> tried;  // replicas this request went to since the last backoff
    std::string failure, url = url_;
    served_by_.clear();
    route_reason_.clear();
    int backoffs = 0;
    for (int attempt = 0; attempt <= o_.retries; ++attempt) {
      // With replicas, a retry goes at once to one not tried yet; once every healthy one was tried, it
      // waits its backoff and may try them all again.
      bool fresh = pool_ && attempt > 0 && pool_->untried(tried);
      if (attempt > 0 && !fresh) {
        tried.clear();
        std::unique_lock lock(m_);
        abort_cv_.wait_for(lock, o_.backoff * (std::int64_t{1} << std::min(backoffs++, 20)), [&] { return aborted_; });
      }
      if (aborted()) throw std::runtime_error(fmt::format("POST {}: cancelled (the run is stopping)", url));
      route::lease lease;
      const endpoint* to = &at_;
      if (pool_) {
        auto picked = pool_->router().pick(prompt, tried);
        if (auto* why = std::get_if<route::refusal>(&picked)) {
          pool_->router().count_refusal(*why);
          failure = *why == route::refusal::all_full
                        ? "every replica is at its limit of requests in flight"
                        : fmt::format("no replica of {} is healthy (every one ejected after failures; a probe "
                                      "lets one back in)",
                                      pool_->size());
          url = "base_urls";
          continue;
        }
        lease = std::move(std::get<route::lease>(picked));
        if (!tried.empty()) pool_->router().count_retry(false);
        tried.push_back(lease.replica());
        to = &pool_->replica(lease.replica());
        url = to->origin + to->path;
        served_by_ = to->origin + to->prefix;
        route_reason_ = route::reason_name(lease.why());
      }
      auto outcome = post(*to, body, pool_ ? &lease : nullptr);
      if (lease) lease.finish(outcome.verdict);
      if (aborted()) throw std::runtime_error(fmt::format("POST {}: cancelled (the run is stopping)", url));
      if (outcome.reply) return std::move(*outcome.reply);
      failure = std::move(outcome.error);
      if (!outcome.retry) throw std::runtime_error(fmt::format("POST {}: {}", url, failure));
    }
    throw std::runtime_error(fmt::format("POST {}: {} (gave up after {} attempt{})", url, failure, o_.retries + 1,
                                         o_.retries == 0 ? "" : "s"));
  }

  struct outcome {
    std::optional<chat_reply> reply;
    std::string error;
    bool retry = false;
    route::lease::outcome verdict = route::lease::outcome::failed;  // for the router, with base_urls
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

  // One attempt at `to`. With `lease` (base_urls), the time to the reply's first byte goes to the router
  // as the replica's time to first token when the reply is good.
  outcome post(const endpoint& to, const std::string& body, route::lease* lease) {
    httplib::Client client(to.origin);
    {
      std::lock_guard lock(m_);
      if (aborted_) return {std::nullopt, "cancelled", false, route::lease::outcome::abandoned};
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
    req.path = to.path;
    req.headers = std::move(headers);
    req.body = body;
    req.set_header("Content-Type", "application/json");
    std::string reply;
    bool too_big = false;
    std::optional<std::chrono::steady_clock::time_point> first_byte;
    req.content_receiver = [&](const char* data, std::size_t n, std::uint64_t, std::uint64_t) {
      if (!first_byte) first_byte = std::chrono::steady_clock::now();
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
                                 false, route::lease::outcome::failed}
                       : finish(res, started);
    if (too_big) status_ = "malformed";
    if (lease != nullptr && out.reply && first_byte)
      lease->first_token(std::chrono::duration<double>(*first_byte - started).count());
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
    using verdict = route::lease::outcome;
    status_ = "connection";
    if (!res) {
      if (aborted()) return {std::nullopt, "cancelled", false, verdict::abandoned};
      auto took = std::chrono::steady_clock::now() - started;
      auto err = res.error();
      bool timed_out = err == httplib::Error::ConnectionTimeout ||
                       ((err == httplib::Error::Read || err == httplib::Error::Write) && took >= o_.timeout * 9 / 10);
      if (timed_out) status_ = "timeout";
      if (timed_out) return {std::nullopt, fmt::format("timed out after {} ms", o_.timeout.count()), true, verdict::failed};
      return {std::nullopt, describe(err), true, verdict::failed};
    }
    status_ = std::to_string(res->status);
    if (res->status < 200 || res->status >= 300) {
      bool retry = res->status >= 500 || res->status == 429;
      // A 429 is the replica's queue, not its failure; another 4xx is the request's fault.
      auto v = res->status == 429 ? verdict::busy : retry ? verdict::failed : verdict::abandoned;
      return {std::nullopt, fmt::format("HTTP {}: {}", res->status, excerpt(res->body)), retry, v};
    }
    try {
      // A server that ignores `stream` answers with one JSON body; take it as it is.
      bool sse = o_.stream && res->get_header_value("Content-Type").find("application/json") == std::string::npos;
      auto reply = read_chat_reply(res->body, sse);
      if (reply.input_tokens > 0) prompt_tokens_.add(static_cast<std::uint64_t>(reply.input_tokens));
      if (reply.output_tokens > 0) completion_tokens_.add(static_cast<std::uint64_t>(reply.output_tokens));
      return {std::move(reply), {}, false, verdict::ok};
    } catch (const bad_response& e) {
      status_ = "malformed";
      return {std::nullopt, fmt::format("malformed response: {}", e.what()), false, verdict::failed};
    } catch (const nlohmann::json::exception& e) {
      status_ = "malformed";
      return {std::nullopt, fmt::format("malformed response: {}", e.what()), false, verdict::failed};
    }
  }

  http_options o_;
  endpoint at_;        // base_url (without base_urls)
  std::string url_;
  std::shared_ptr<replica_pool> pool_;  // base_urls: the replicas and their router, shared
  std::string served_by_, route_reason_;  // base_urls: the replica of the last attempt, and why it was chosen
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

std::unique_ptr<backend> make_http_backend(const http_options& options) {
  return std::make_unique<http_backend>(options);
}

}  // namespace loom::agents
