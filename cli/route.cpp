// cli/route.cpp: `loom route --backend URL [--backend URL]... --port P [--policy prefix|least-loaded|round-robin]`:
// an OpenAI-compatible front for a fleet of OpenAI-compatible replicas (vLLM, NIM, TGI, llama.cpp's server),
// docs/route.md. The decisions are runtime/route's router; this file is the command (its options, start-up
// and signals) and the HTTP front around the router:
//   - POST /v1/chat/completions, streamed or not: the request is checked here and handed to a completion_job
//     (cli/route_job.cpp), which takes it through the replicas: retried on another replica before its first
//     token, continued on another one when a stream is cut short mid-answer, so the client gets one answer,
//     nothing repeated or lost. A client that asked for a whole answer gets the chunks put together.
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
#include <mutex>
#include <random>
#include <thread>

#include "cli/commands.hpp"
#include "cli/route_job.hpp"
#include "loom/runtime/http/listener.hpp"
#include "loom/runtime/json_reader.hpp"
#include "loom/runtime/observe/metrics.hpp"
#include "loom/runtime/route/router.hpp"

namespace loom::cli {

using namespace routing;

namespace {

using namespace std::chrono_literals;

route_options& parsed() {
  static route_options o;
  return o;
}

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
