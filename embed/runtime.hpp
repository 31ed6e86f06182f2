// embed/runtime.hpp: loom inside a program. One `loom::runtime` owns what a run needs (the actor system,
// its threads, the kinds) and runs graphs the program builds (graph/builder.hpp) or loads (YAML): to the
// end (`run`), across hosts (`run_cluster`), behind HTTP (`serve`), or kept running while the program
// feeds it and takes its results as they come (`start`, embed/running.hpp). No CAF type appears here.
//
//   loom::runtime rt;                                   // built-in kinds, threads = cores
//   rt.kinds().add(my_kind());                          // the program's own kinds
//   auto report = rt.run(loom::graph::builder("g")...build());
//   if (!report.ok()) std::cerr << report.error;        // names the node, its input and the reason
//
// Errors: a graph that does not validate throws loom::graph_error (every diagnostic, file:line:col); a
// node's failure is the report's (result failed, error naming node, input and reason), never a log line
// only. The runtime must outlive everything it started; its destructor stops runs still going.
// Threads: every member may be called from any thread; runs may overlap.
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "loom/embed/running.hpp"
#include "loom/graph/diagnostics.hpp"
#include "loom/graph/graph.hpp"
#include "loom/runtime/registry.hpp"
#include "loom/runtime/run_report.hpp"

namespace loom {

struct runtime_options {
  // Scheduler threads for the nodes that do not block (blocking kinds get threads of their own);
  // 0: max(2, the machine's cores).
  unsigned threads = 0;
  // Register loom's built-in kinds (source.*, flow.*, sink.*, tool.*, agent.*, kernel.*).
  bool builtins = true;
  // Kind libraries to load (each exports `loom_register(loom::registry&)`, as for `loom run --plugin`).
  std::vector<std::string> plugins;
  // Opt in to Ctrl-C: SIGINT and SIGTERM stop every run in progress (reported as interrupted) and make
  // interrupted() true. The previous handlers come back when the runtime is destroyed. Off: loom leaves
  // the program's signals alone.
  bool handle_interrupts = false;
  // The level of loom's own log lines (stderr): "trace", "debug", "info", "warn", "error", "off".
  std::string log_level = "warn";
};

struct run_options {
  // Overrides, as `loom run --set`: "node.param=value" or "defaults.capacity=N".
  std::vector<std::string> set;
  // Called on a thread of the run's, every `progress_every`, with the counts so far.
  std::function<void(const run_report&)> on_progress;
  std::chrono::milliseconds progress_every{500};
};

struct cluster_options {
  // What `loom run --cluster` takes: a cluster file (YAML), or `slurm` / `slurm:N` inside an allocation.
  std::string cluster;
  // Plain TCP: no CurveZMQ (the workers must run with --insecure too). Default: the user's own keys.
  bool insecure = false;
  std::chrono::milliseconds connect_timeout{10'000};
  // The driver's progress lines ("worker a: ready", a moved instance); unset: none.
  std::function<void(const std::string&)> log;
  // Slurm: what each task runs instead of `loom worker` (e.g. a program of the user's that serves its own
  // kinds, or `python3 -m loom.worker --import MODULE`); the worker options follow it (--listen,
  // --address-file, --name, --once, --key or --insecure). Empty: `loom worker`.
  std::vector<std::string> slurm_worker_command;
};

struct serve_options {
  std::string host = "127.0.0.1";
  int port = 0;  // 0: any free port (server::port() says which)
  // The node requests enter and the node answers leave; empty: the graph's only source / only sink.
  std::string input, output;
  std::size_t max_concurrent = 8;
  // When set, every route but /health needs `Authorization: Bearer <api_key>`.
  std::optional<std::string> api_key;
};

// A graph served over HTTP (OpenAI-compatible chat completions: docs/serve.md) from threads of its own.
class server {
 public:
  server(server&&) noexcept;
  server& operator=(server&&) noexcept;
  ~server();  // stop()
  int port() const;
  // In-flight requests get a grace period, then the listener closes. Idempotent.
  void stop();

 private:
  friend class runtime;
  struct state;
  explicit server(std::unique_ptr<state> s);
  std::unique_ptr<state> s_;
};

// A graph that does not validate (or a file that does not load): every diagnostic, each with its place.
class graph_error : public std::runtime_error {
 public:
  graph_error(std::string what, graph::diagnostics diags)
      : std::runtime_error(std::move(what)), diags_(std::move(diags)) {}
  const graph::diagnostics& diagnostics() const { return diags_; }

 private:
  graph::diagnostics diags_;
};

class runtime {
 public:
  explicit runtime(runtime_options options = {});
  ~runtime();
  runtime(const runtime&) = delete;
  runtime& operator=(const runtime&) = delete;

  // The kinds graphs may use: add the program's own before running a graph that uses them.
  registry& kinds();
  const registry& kinds() const;

  // A graph file (or YAML text), with overrides; throws graph_error naming file:line:col of each mistake.
  graph::graph load(const std::string& path, const std::vector<std::string>& set = {}) const;
  graph::graph load_text(std::string_view yaml, const std::string& name = "<text>",
                         const std::vector<std::string>& set = {}) const;
  // Checks `g` against the kinds; nothing is thrown (the diagnostics may hold warnings only).
  graph::diagnostics validate(const graph::graph& g) const;

  // Runs `g` in this process until its sources are done and its sinks drained (or it fails, or is
  // interrupted); blocks the calling thread. Throws graph_error when `g` does not validate, or when it has
  // program.input/program.output nodes (those need start()).
  run_report run(graph::graph g, const run_options& options = {});
  // Starts `g` and returns at once: the program feeds its program.input nodes and takes from its
  // program.output nodes (embed/running.hpp). Throws graph_error as run() does.
  running start(graph::graph g, const run_options& options = {});
  // Runs `g` across the hosts of a cluster (docs/cluster.md): the workers must know every kind `g` uses
  // (built-ins, or the same plugins). Throws graph_error for an invalid graph, cluster file or plan.
  run_report run_cluster(graph::graph g, const cluster_options& cluster, const run_options& options = {});
  // Serves `g` over HTTP until the server is stopped or destroyed. Throws graph_error when `g` cannot be
  // served (no single input or output), std::runtime_error when the port cannot be bound.
  server serve(graph::graph g, const serve_options& options);

  // Stops every run in progress (reported as interrupted); later runs are not affected.
  void interrupt();
  // True once SIGINT or SIGTERM came (handle_interrupts).
  bool interrupted() const;

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace loom
