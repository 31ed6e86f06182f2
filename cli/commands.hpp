// cli/commands.hpp: the `loom` subcommands. Each returns the process exit status:
// 0 success, 1 the run failed, 2 invalid config or usage, 130 interrupted (SIGINT).
#pragma once

#include <cstddef>
#include <string>
#include <vector>

namespace loom::cli {

enum exit_code : int { ok = 0, run_failed = 1, invalid = 2, interrupted = 130 };

struct common_options {
  std::vector<std::string> plugins;  // --plugin LIB
};

int validate_command(const common_options& common, const std::vector<std::string>& files);

struct run_options {
  std::string file;
  std::vector<std::string> sets;  // --set node.param=value
  bool quiet = false;             // no progress, no summary
  unsigned threads = 0;           // 0: one per core
  std::string cluster;            // --cluster C: run across the cluster's workers
  double connect_timeout = 10;    // seconds to wait for each worker
};

struct worker_options {
  std::string listen;
  std::string name;
  std::string key;                 // PREFIX of a `loom keygen` pair: CurveZMQ
  std::vector<std::string> allow;  // public key files of drivers allowed in (default: the worker's own)
  bool insecure = false;           // without --key: listen on a non-loopback address anyway
  std::string max_message_size;    // "64 MiB" (default): the largest part of a message accepted
};
int worker_command(const common_options& common, const worker_options& options);
int run_command(const common_options& common, const run_options& options);

int graph_command(const common_options& common, const std::string& file, const std::string& format);

int inspect_command(const common_options& common, const std::string& kind);

// cli/plan.cpp: place the graph on the cluster file's hosts and print the plan.
int plan_command(const common_options& common, const std::string& file, const std::string& cluster_file);
// Writes PREFIX.key (secret, 0600) and PREFIX.pub (z85 public key); never overwrites.
int keygen_command(const std::string& prefix);

// cli/serve.cpp: serve a graph as an OpenAI-compatible chat-completions endpoint until SIGINT/SIGTERM.
struct serve_options {
  std::string file;
  std::vector<std::string> sets;  // --set node.param=value
  std::string host = "127.0.0.1";
  int port = 0;                   // 0: any free port (printed)
  std::string input, output;      // empty: the graph's only source / only sink
  std::size_t max_concurrent = 8;
  unsigned threads = 0;           // 0: one per core
};
int serve_command(const common_options& common, const serve_options& options);

}  // namespace loom::cli
