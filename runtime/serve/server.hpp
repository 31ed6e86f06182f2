// runtime/serve/server.hpp: `loom serve`: a graph behind an OpenAI-compatible HTTP endpoint (cpp-httplib).
//   GET  /health               {"status": "ok", "graph": NAME}
//   GET  /v1/models            the one model: the graph
//   POST /v1/chat/completions  the last user message enters the graph at its input node; what reaches the
//                              output node is the answer, whole or streamed as Server-Sent Events
// Every request is its own run of the graph (its own run_graph on the shared actor system, in its own
// thread), so requests run concurrently, at most `max_concurrent` at a time (beyond: 429).
// The caller owns the actor system and the kinds; the server copies the kinds and adds serve.capture.
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <string>

#include "graph/graph.hpp"
#include "runtime/registry.hpp"
#include "runtime/serve/served_graph.hpp"

namespace caf {
class actor_system;
}
namespace httplib {
class Server;
}

namespace loom::serve {

struct server_options {
  std::string host = "127.0.0.1";
  int port = 0;  // 0: any free port (bind() says which)
  std::size_t max_concurrent = 8;
  // On stop(): in-flight requests get this long to finish before their runs are interrupted.
  std::chrono::milliseconds grace{1500};
  // More routes on the same listener (`loom serve --mcp` adds /mcp: runtime/mcp/http_server.hpp).
  std::function<void(httplib::Server&)> extra_routes;
};

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
