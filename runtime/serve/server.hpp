// runtime/serve/server.hpp: `loom serve`: a graph behind an OpenAI-compatible HTTP endpoint (cpp-httplib).
//   GET  /health               {"status": "ok", "graph": NAME}
//   GET  /v1/models            the one model: the graph
//   POST /v1/chat/completions  the last user message enters the graph at its input node; what reaches the
//                              output node is the answer, whole or streamed as Server-Sent Events
//   GET  /v1/approvals, GET|POST /v1/threads/{thread}/approvals
//                              the decisions running requests wait for, and a person's decision about one
//                              (a graph with human.approve or approve_tools; runtime/serve/approvals.hpp)
// It listens on loom's HTTP listener (runtime/http/listener.hpp), which keeps the doors: an exclusive port,
// the key, Origin and Host, body size and time, refusals that close.
// The graph is expanded once per concurrency slot at start-up; a request takes a free slot (none: 429,
// before its body is read) and runs that slot's ready deployment (local::run_slice) on the shared actor
// system: a whole answer on the request's own HTTP thread, a streamed one on a thread of its own while the
// HTTP thread writes each value as it comes. Each request's run is its own, and fails on its own.
// The caller owns the actor system and the kinds; the server copies the kinds and adds serve.input and the
// captures.
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "loom/graph/graph.hpp"
#include "loom/runtime/run_report.hpp"
#include "loom/runtime/registry.hpp"
#include "loom/runtime/serve/served_graph.hpp"

namespace caf {
class actor_system;
}
namespace loom::http {
class listener;
}

namespace loom::serve {

struct server_options {
  std::string host = "127.0.0.1";
  int port = 0;  // 0: any free port (bind() says which)
  std::size_t max_concurrent = 8;
  // Request bodies longer than this are answered 413 without being read (Content-Length) or as soon as
  // they pass it (chunked); one that has not arrived whole within body_timeout is answered 408.
  std::size_t max_body = std::size_t{1} << 20;
  std::chrono::milliseconds body_timeout{30'000};
  // A whole (not streamed) answer longer than this stops its run and is answered 500.
  std::size_t max_output = std::size_t{16} << 20;
  // Streamed texts that may wait for a slow client before the output node waits too.
  std::size_t stream_window = 16;
  // When set, every route but /health (the /v1/ routes, /mcp) needs `Authorization: Bearer <api_key>`
  // (else 401, before the body is read).
  std::optional<std::string> api_key;
  // Paths a browser may load (/mcp): their Host must be a name of this server (runtime/http/listener.hpp);
  // allowed_hosts adds names to the address, localhost, this machine's name and IP addresses.
  std::vector<std::string> browser_paths;
  std::vector<std::string> allowed_hosts;
  // Long-lived answers of extra routes (MCP's tools/call streams) at once; past them: 503.
  std::size_t max_streams = 16;
  // On stop(): in-flight requests get this long to finish before their runs are interrupted.
  std::chrono::milliseconds grace{1500};
  // Each request's run: its counts every progress tick (`done` false) and once at its end (`done` true),
  // keyed by its slot; called on the thread that runs it (`loom serve --ui` sums them: runtime/observe/ui).
  std::function<void(std::size_t slot, const local::run_report& report, bool done)> on_run;
  // More routes on the same listener (`loom serve --mcp` adds /mcp: runtime/mcp/http_server.hpp).
  std::function<void(http::listener&)> extra_routes;
  // --otlp URL: each request's run is one trace (under the request's `traceparent` when it has one),
  // queued when the run ends and exported to URL/v1/traces from a thread of its own (observe::otlp_exporter),
  // never on the request's path. Empty: nothing is recorded or sent.
  std::string otlp;
  // --state DIR: conversations (docs/durability.md, "Threads"). A request with a thread id (the
  // `X-Loom-Thread` header, else its `user` field) starts the graph's memory-keeping nodes (agent.llm with
  // `memory: N`) from what the thread's last request left, and keeps what they end with in DIR/state.sqlite.
  // Empty: no threads (the header and `user` are ignored).
  std::string state_dir;
  // A thread not used for this long is forgotten (its row deleted).
  std::chrono::milliseconds thread_idle{24LL * 3600 * 1000};
  // A graph that may wait for people (human.approve, agent.llm with approve_tools; it needs state_dir): a
  // request whose run has waited this long for a decision is stopped (504), and a streamed one says it
  // waits (an SSE comment) again after approval_keepalive without another line (docs/serve.md, "Approvals").
  std::chrono::milliseconds approval_timeout{3600LL * 1000};
  std::chrono::milliseconds approval_keepalive{15'000};
};

class thread_memory;

class server {
 public:
  // Prepares `g` (validated, defaults applied) for serving; throws setup_error when the input or output
  // node cannot be chosen or the rewritten graph is invalid.
  server(caf::actor_system& system, const registry& kinds, const graph::graph& g, const endpoints& choice,
         server_options options);
  ~server();
  server(const server&) = delete;
  server& operator=(const server&) = delete;

  const served_graph& served() const;
  // --state: the threads' store; null without it.
  const thread_memory* threads() const;

  // Binds the listening socket; returns the port. Throws std::runtime_error when it cannot.
  int bind();
  // Serves until stop(); returns once every request has been answered.
  void run();
  // From any thread: new completions get 503; in-flight ones get `grace` to finish, then their runs are
  // interrupted; then the listener closes and run() returns. Blocks until the listener is closed.
  void stop();

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace loom::serve
