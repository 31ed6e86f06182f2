// runtime/serve/server.cpp: the HTTP routes, one run per request, streaming and a clean stop.
#include "runtime/serve/server.hpp"

#include <caf/all.hpp>
#include <fmt/format.h>
#include <httplib.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <ctime>
#include <random>
#include <stdexcept>
#include <thread>

#include "runtime/local/executor.hpp"
#include "runtime/serve/capture.hpp"
#include "runtime/serve/openai.hpp"

namespace loom::serve {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;

// Holds one unit of a counter (a concurrency slot, an unfinished request) until destroyed or released.
class counted {
 public:
  counted() = default;
  explicit counted(std::atomic<std::size_t>& n) : n_(&n), count_(++n) {}
  // The counter's value just after this one was taken.
  std::size_t count() const { return count_; }
  counted(counted&& o) noexcept : n_(std::exchange(o.n_, nullptr)), count_(o.count_) {}
  counted& operator=(counted&&) = delete;
  ~counted() { release(); }
  void release() {
    if (n_) --*std::exchange(n_, nullptr);
  }

 private:
  std::atomic<std::size_t>* n_ = nullptr;
  std::size_t count_ = 0;
};

// One request's run: its thread feeds the channel and finishes it when the run has ended.
struct run_handle {
  std::shared_ptr<output_channel> channel = std::make_shared<output_channel>();
  std::shared_ptr<std::atomic<bool>> cancel = std::make_shared<std::atomic<bool>>(false);
  std::jthread thread;
};

registry with_capture(registry kinds, std::shared_ptr<channel_table> table) {
  kinds.add(capture_kind(std::move(table)));
  return kinds;
}

void send_json(httplib::Response& res, int status, const json& body) {
  res.status = status;
  res.set_content(dump(body), "application/json");
}

void send_error(httplib::Response& res, int status, std::string_view message, std::string_view type,
                const std::optional<std::string>& param = std::nullopt) {
  send_json(res, status, error_body(message, type, param));
}

}  // namespace

struct server::impl {
  impl(caf::actor_system& sys, const registry& user_kinds, const graph::graph& g, const endpoints& choice,
       server_options opts)
      : system(sys),
        kinds(with_capture(user_kinds, table)),
        served(g, kinds, choice),
        options(std::move(opts)),
        created(static_cast<std::int64_t>(std::time(nullptr))),
        id_prefix(fmt::format("{:08x}", std::random_device{}())) {}

  caf::actor_system& system;
  std::shared_ptr<channel_table> table = std::make_shared<channel_table>();
  registry kinds;
  served_graph served;
  server_options options;
  std::int64_t created;
  std::string id_prefix;
  std::atomic<std::uint64_t> next_id{0};
  httplib::Server http;
  std::atomic<std::size_t> running{0};  // runs in flight: at most options.max_concurrent
  std::atomic<std::size_t> active{0};   // completions not yet fully answered
  std::atomic<bool> draining{false};    // stop() began: no new completions
  std::atomic<bool> force{false};       // the grace is over: interrupt the runs

  void routes();
  void chat(const httplib::Request& req, httplib::Response& res);
  std::unique_ptr<run_handle> start_run(const std::string& prompt, counted slot);
  completion_head head() {
    return {fmt::format("chatcmpl-{}{:08x}", id_prefix, next_id.fetch_add(1)),
            static_cast<std::int64_t>(std::time(nullptr)), served.name()};
  }
  void fail(httplib::Response& res, const output_channel::end& end) {
    if (force) send_error(res, 503, "the server is stopping; the run was interrupted", "server_error");
    else send_error(res, 500, end.error, "server_error");
  }
};

std::unique_ptr<run_handle> server::impl::start_run(const std::string& prompt, counted slot) {
  auto run = std::make_unique<run_handle>();
  auto id = table->open(run->channel);
  run->thread = std::jthread([this, id, ch = run->channel, cancel = run->cancel, g = served.instantiate(prompt, id),
                              slot = std::move(slot)]() mutable {
    output_channel::end end;
    try {
      local::run_options ro;
      ro.interrupted = [&] { return cancel->load() || force.load(); };
      auto report = local::run_graph(system, g, kinds, ro);
      if (report.result == local::run_report::outcome::failed) end = {false, report.error};
      if (report.result == local::run_report::outcome::interrupted) end = {false, "the run was interrupted"};
    } catch (const std::exception& e) {
      end = {false, e.what()};
    }
    if (!end.ok) spdlog::warn("loom serve: run of graph `{}` failed: {}", served.name(), end.error);
    table->close(id);
    slot.release();  // before finish(): a client that asks again at once finds the slot free
    ch->finish(std::move(end));
  });
  return run;
}

void server::impl::chat(const httplib::Request& req, httplib::Response& res) {
  auto parsed = parse_chat_request(req.body);
  if (auto* e = std::get_if<request_error>(&parsed))
    return send_error(res, e->status, e->message, "invalid_request_error", e->param);
  auto& request = std::get<chat_request>(parsed);
  counted guard{active};  // before the draining check: stop() sees this request or it sees the stop
  if (draining) return send_error(res, 503, "the server is stopping", "server_error");
  counted slot{running};
  if (slot.count() > options.max_concurrent)
    return send_error(res, 429,
                      fmt::format("too many concurrent requests: this server runs at most {} at a time; retry later",
                                  options.max_concurrent),
                      "rate_limit_error");
  auto run = start_run(request.prompt, std::move(slot));
  auto& ch = *run->channel;

  if (!request.stream) {
    std::string content;
    for (bool first = true; auto v = ch.next(); first = false) content += (first ? "" : "\n") + answer_text(*v);
    auto end = *ch.ended();
    run->thread.join();
    if (!end.ok) return fail(res, end);
    return send_json(res, 200, completion(head(), content, request.prompt_tokens));
  }

  // Streaming: wait for the first value (or the end) so that a run that fails at once still gets its 500.
  while (!ch.wait_ready(100ms)) {
  }
  if (!ch.has_value() && ch.ended() && !ch.ended()->ok) {
    auto end = *ch.ended();
    run->thread.join();
    return fail(res, end);
  }
  struct stream_state {
    std::unique_ptr<run_handle> run;
    completion_head head;
    counted guard;
    bool sent_role = false;
  };
  auto st = std::make_shared<stream_state>(stream_state{std::move(run), head(), std::move(guard)});
  res.set_header("Cache-Control", "no-cache");
  res.set_chunked_content_provider(
      "text/event-stream",
      [st](std::size_t, httplib::DataSink& sink) {
        auto write = [&](std::string_view s) { return sink.write(s.data(), s.size()); };
        if (!st->sent_role) {
          st->sent_role = true;
          return write(sse_event(chunk(st->head, {{"role", "assistant"}})));
        }
        auto& ch = *st->run->channel;
        while (!ch.wait_ready(100ms))
          if (!sink.is_writable()) return false;  // the client went away; the releaser cancels the run
        if (auto v = ch.next()) return write(sse_event(chunk(st->head, {{"content", answer_text(*v)}})));
        auto end = *ch.ended();
        bool ok = end.ok ? write(sse_event(chunk(st->head, json::object(), "stop")))
                         : write(sse_event(error_body(end.error, "server_error")));
        ok = ok && write(sse_done);
        sink.done();
        return ok;
      },
      [st](bool success) {
        if (!success) st->run->cancel->store(true);
        if (st->run->thread.joinable()) st->run->thread.join();
        st->guard.release();
      });
}

void server::impl::routes() {
  http.Get("/health", [this](const httplib::Request&, httplib::Response& res) {
    send_json(res, 200, {{"status", draining ? "stopping" : "ok"}, {"graph", served.name()}});
  });
  http.Get("/v1/models", [this](const httplib::Request&, httplib::Response& res) {
    send_json(res, 200, model_list(served.name(), created));
  });
  http.Get("/v1/models/(.+)", [this](const httplib::Request& req, httplib::Response& res) {
    if (req.matches[1] != served.name())
      return send_error(res, 404, fmt::format("the model `{}` does not exist; this server serves `{}`",
                                              std::string(req.matches[1]), served.name()),
                        "invalid_request_error", "model");
    send_json(res, 200, model_list(served.name(), created)["data"][0]);
  });
  http.Post("/v1/chat/completions", [this](const httplib::Request& req, httplib::Response& res) { chat(req, res); });
  // Errors without a body of our own (no such route, a malformed HTTP request) get an OpenAI-style one.
  http.set_error_handler(httplib::Server::HandlerWithResponse([](const httplib::Request& req, httplib::Response& res) {
    if (!res.body.empty() || res.is_chunked_content_provider_) return httplib::Server::HandlerResponse::Unhandled;
    auto message = res.status == 404 ? fmt::format("no route {} {}", req.method, req.path)
                                     : fmt::format("HTTP {} for {} {}", res.status, req.method, req.path);
    send_error(res, res.status, message, "invalid_request_error");
    return httplib::Server::HandlerResponse::Handled;
  }));
  http.set_exception_handler([](const httplib::Request&, httplib::Response& res, std::exception_ptr ep) {
    std::string message = "internal error";
    try {
      std::rethrow_exception(ep);
    } catch (const std::exception& e) {
      message = e.what();
    } catch (...) {
    }
    send_error(res, 500, message, "server_error");
  });
}

server::server(caf::actor_system& system, const registry& kinds, const graph::graph& g, const endpoints& choice,
               server_options options)
    : impl_(std::make_unique<impl>(system, kinds, g, choice, std::move(options))) {
  auto threads = impl_->options.max_concurrent + 8;  // room to answer health checks and 429s while saturated
  // httplib takes ownership of the raw pointer it is given.
  impl_->http.new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
  impl_->http.set_keep_alive_timeout(1);  // an idle connection holds a thread (and a stop) at most this long
  impl_->http.set_payload_max_length(std::size_t{64} << 20);
  impl_->routes();
  if (impl_->options.extra_routes) impl_->options.extra_routes(impl_->http);
}

server::~server() = default;

const served_graph& server::served() const { return impl_->served; }

int server::bind() {
  auto& o = impl_->options;
  int port = o.port;
  if (port == 0) port = impl_->http.bind_to_any_port(o.host);
  else if (!impl_->http.bind_to_port(o.host, port)) port = -1;
  if (port < 0)
    throw std::runtime_error(fmt::format("cannot listen on {}:{} (in use, or not an address of this host)", o.host,
                                         o.port));
  return port;
}

void server::run() { impl_->http.listen_after_bind(); }

void server::stop() {
  auto& i = *impl_;
  i.draining = true;
  auto wait_idle = [&](std::chrono::milliseconds limit) {
    auto until = std::chrono::steady_clock::now() + limit;
    while (i.active.load() > 0 && std::chrono::steady_clock::now() < until) std::this_thread::sleep_for(10ms);
  };
  wait_idle(i.options.grace);
  i.force = true;  // whatever still runs is interrupted: its sinks flush and its request gets a 503
  wait_idle(500ms);
  i.http.stop();
}

}  // namespace loom::serve
