// cli/serve.cpp: `loom serve FILE --port P`: loads and validates the graph as `loom run` does, prepares it
// for serving (input and output nodes), then answers chat completions until SIGINT or SIGTERM. A first
// signal stops the server cleanly (in-flight requests get a grace period); a second one exits at once.
#include <caf/all.hpp>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <pthread.h>

#include <algorithm>
#include <atomic>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <thread>

#include "cli/commands.hpp"
#include "cli/load.hpp"
#include "cli/metrics.hpp"
#include "cli/ui.hpp"
#include "loom/runtime/observe/ui/run_totals.hpp"
#include "loom/runtime/observe/trace.hpp"
#include "loom/runtime/serve/server.hpp"
#include "loom/runtime/serve/threads.hpp"

namespace loom::cli {
namespace {

sigset_t stop_signals() {
  sigset_t s;
  sigemptyset(&s);
  sigaddset(&s, SIGINT);
  sigaddset(&s, SIGTERM);
  return s;
}

// Waits for SIGINT/SIGTERM on its own thread (they are blocked everywhere else) and stops the server.
class signal_watcher {
 public:
  explicit signal_watcher(serve::server& s)
      : thread_([this, &s](std::stop_token stop) {
          auto set = stop_signals();
          timespec tick{0, 100'000'000};
          while (!stop.stop_requested()) {
            if (sigtimedwait(&set, nullptr, &tick) < 0) continue;
            if (stopper_.joinable()) std::_Exit(interrupted);  // a second signal: leave now
            std::fprintf(stderr, "loom: stopping: finishing the requests in flight\n");
            stopper_ = std::jthread([&s] { s.stop(); });
          }
        }) {}

 private:
  std::jthread stopper_;  // declared first: joined after thread_ has ended
  std::jthread thread_;
};

// A duration as --thread-idle takes it: 24h, 30m, 5s or 250ms.
std::string human_duration(long ms) {
  if (ms % 3'600'000 == 0) return fmt::format("{}h", ms / 3'600'000);
  if (ms % 60'000 == 0) return fmt::format("{}m", ms / 60'000);
  if (ms % 1000 == 0) return fmt::format("{}s", ms / 1000);
  return fmt::format("{}ms", ms);
}

}  // namespace

int serve_command(const common_options& common, const serve_options& options) {
  if (options.max_concurrent < 1) {
    print_error("--max-concurrent must be at least 1");
    return invalid;
  }
  if (options.max_body < 1 || options.max_output < 1) {
    print_error("--max-body and --max-output must be at least 1 byte");
    return invalid;
  }
  std::optional<std::string> api_key;
  if (!options.api_key_env.empty()) {
    const char* key = std::getenv(options.api_key_env.c_str());
    if (!key || !*key) {
      print_error(fmt::format("--api-key-env {}: the environment variable {} is not set or empty",
                              options.api_key_env, options.api_key_env));
      return invalid;
    }
    api_key = key;
  }
  if (!options.otlp.empty())
    if (auto why = observe::check_otlp_url(options.otlp)) {
      print_error(fmt::format("--otlp {}", *why));
      return invalid;
    }
  auto kinds = make_registry(common);
  if (!kinds) return invalid;
  auto g = load(options.file, *kinds, options.sets);
  if (!g) return invalid;

  // Before any thread starts, so that every thread inherits the mask and only the watcher sees them.
  auto signals = stop_signals();
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  auto metrics = start_metrics(options.metrics);  // its thread inherits the mask too
  if (!metrics) return invalid;

  caf::actor_system_config cfg;
  auto threads = options.threads ? options.threads : std::max(2u, std::thread::hardware_concurrency());
  cfg.set("scheduler.max-threads", static_cast<size_t>(threads));
  caf::actor_system system{cfg};

  serve::server_options so;
  so.host = options.host;
  so.port = options.port;
  so.max_concurrent = options.max_concurrent;
  so.max_body = static_cast<std::size_t>(options.max_body);
  so.max_output = static_cast<std::size_t>(options.max_output);
  so.api_key = api_key;
  so.body_timeout = std::chrono::milliseconds(static_cast<std::int64_t>(options.body_timeout * 1000));
  so.allowed_hosts = options.allow_hosts;
  // --ui: the served graph with every request's counts summed (runs finished and in flight).
  bool ui_failed = false;
  auto ui = start_live_view(*g, options.ui, ui_failed);
  if (ui_failed) return invalid;
  observe::ui::run_totals totals;
  if (ui)
    so.on_run = [&totals](std::size_t slot, const local::run_report& r, bool done) {
      if (done) totals.done(slot, r);
      else totals.update(slot, r);
    };
  auto started = std::chrono::steady_clock::now();
  auto publish_totals = [&] {
    auto seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    ui->server().publish(totals.combined(seconds),
                         fmt::format("serving: {} runs done ({} failed), {} in flight", totals.finished(),
                                     totals.failed(), totals.in_flight()));
  };
  so.otlp = options.otlp;
  so.state_dir = options.state;
  so.thread_idle = std::chrono::milliseconds(options.thread_idle_ms);
  so.approval_timeout = std::chrono::milliseconds(options.approval_timeout_ms);
  std::shared_ptr<void> mcp_route;  // --mcp: /mcp beside the OpenAI routes (cli/mcp.cpp); outlives the server
  std::optional<serve::server> server;
  try {
    auto idle = std::chrono::milliseconds(static_cast<std::int64_t>(options.mcp_session_idle * 1000));
    if (options.mcp) mcp_route = add_mcp_route(so, system, *kinds, *g, options.input, options.output, idle);
    server.emplace(system, *kinds, *g, serve::endpoints{options.input, options.output}, so);
  } catch (const serve::setup_error& e) {
    print_error(e.what());
    return invalid;
  }
  int port = 0;
  try {
    port = server->bind();
  } catch (const std::exception& e) {
    print_error(e.what());
    return run_failed;
  }
  std::fprintf(stderr, "loom: serving graph `%s` on http://%s:%d/v1 (input `%s`, output `%s`, at most %zu "
               "requests at a time%s)\n",
               server->served().name().c_str(), options.host.c_str(), port, server->served().input().c_str(),
               server->served().output().c_str(), options.max_concurrent,
               api_key ? ", API key required" : "");
  if (const auto* threads = server->threads()) {
    auto kept = threads->kept();
    if (kept.empty())
      std::fprintf(stderr, "loom: warning: --state %s: no node of graph `%s` keeps memory across requests "
                   "(agent.llm with memory: N), so threads keep nothing\n",
                   options.state.c_str(), server->served().name().c_str());
    else
      std::fprintf(stderr, "loom: threads kept in %s (%s; forgotten after %s idle)\n", threads->file().c_str(),
                   fmt::format("{}", fmt::join(kept, ", ")).c_str(), human_duration(options.thread_idle_ms).c_str());
  }
  if (mcp_route) std::fprintf(stderr, "loom: serving MCP (Streamable HTTP) on http://%s:%d/mcp\n", options.host.c_str(), port);
  std::fflush(stderr);
  {
    signal_watcher watcher{*server};
    std::jthread ticker;  // the live view's tick: the sums are put together twice a second, not per request
    if (ui)
      ticker = std::jthread([&](std::stop_token stop) {
        while (!stop.stop_requested()) {
          publish_totals();
          for (int i = 0; i < 5 && !stop.stop_requested(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(100));
        }
      });
    server->run();
  }
  if (ui) publish_totals();
  std::fprintf(stderr, "loom: stopped serving `%s`\n", g->name.c_str());
  return ok;
}

}  // namespace loom::cli
