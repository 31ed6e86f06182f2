// cli/commands.hpp: the `loom` subcommands. Each returns the process exit status:
// 0 success, 1 the run failed, 2 invalid config or usage, 3 paused (it waits for a decision: loom approve),
// 130 interrupted (SIGINT).
#pragma once

#include <chrono>
#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace CLI {
class App;
}

namespace loom::cli {

enum exit_code : int { ok = 0, run_failed = 1, invalid = 2, paused = 3, interrupted = 130 };

struct common_options {
  std::vector<std::string> plugins;  // --plugin LIB
};

int validate_command(const common_options& common, const std::vector<std::string>& files);

struct run_options {
  std::string file;
  std::vector<std::string> sets;  // --set node.param=value
  bool quiet = false;             // no progress, no summary
  unsigned threads = 0;           // 0: one per core
  std::string cluster;            // --cluster C: run across the cluster file's workers; `slurm`: the allocation's
  std::vector<std::string> plugins;  // the --plugin libraries, passed on to workers the driver starts
  double connect_timeout = 10;    // seconds to wait for each worker
  std::string ui;                 // --ui ADDR: serve the live view there (cli/ui.cpp)
  std::string trace;              // --trace FILE: Chrome trace-event JSON of the run (docs/tracing.md)
  std::string otlp;               // --otlp URL: the run's spans as OTLP/HTTP JSON to URL/v1/traces
  std::string metrics;            // --metrics HOST:PORT: serve GET /metrics
  double metrics_hold = 0;        // --metrics-hold: seconds to keep serving it after the run
  bool insecure = false;          // --insecure: a cluster file without keys means plain TCP, not the per-user keys
  std::string state;              // --state DIR: keep the run's snapshots in DIR/state.sqlite (cli/state.cpp)
  long checkpoint_every_ms = 1000;  // --checkpoint-every: between snapshots
  std::size_t keep = 2;           // --keep: complete snapshots kept
  bool detach_on_pause = false;   // --detach-on-pause: exit 3 once the run waits for people only
};

struct worker_options {
  std::string listen;
  std::string name;
  std::string key;                 // PREFIX of a `loom keygen` pair: CurveZMQ
  std::vector<std::string> allow;  // public key files of clients allowed in (default: the worker's own)
  std::string address_file;        // write the bound address (and the Slurm node) here; `%t`: the task rank
  bool once = false;               // leave after one run
  bool insecure = false;           // without --key: plain TCP, no authentication (default: the per-user keys)
  std::string max_message_size;    // "64 MiB" (default): the largest part of a message accepted
  std::string metrics;             // --metrics HOST:PORT: serve GET /metrics (this worker's own samples)
  std::string scheduler = "sharing";  // --scheduler: sharing or stealing (cluster::worker_options::scheduler)
};
int worker_command(const common_options& common, const worker_options& options);
int run_command(const common_options& common, const run_options& options);

// cli/state.cpp: `loom resume DIR`: a run kept with --state, continued from its latest snapshot.
struct resume_options {
  std::string dir;
  bool quiet = false;
  unsigned threads = 0;
  long checkpoint_every = 0;  // ms; 0: as the run had it
  std::size_t keep = 0;       // 0: as the run had it
  bool detach_on_pause = false;  // also when the run had it off
};
int resume_command(const common_options& common, const resume_options& options);
// cli/approve.cpp: `loom approve DIR NODE`: records a decision for a pending one in the state file; a live run
// takes it within a second, a stopped one is resumed (unless no_resume).
struct approve_options {
  std::string dir, node;
  std::vector<std::uint64_t> ids;  // --id (repeatable); empty: the node's only pending decision
  bool all = false;                // --all: every pending decision of the node
  bool reject = false;
  std::string reason;
  std::string value;  // --value JSON: an edit
  bool no_resume = false;
  bool quiet = false;
};
int approve_command(const common_options& common, const approve_options& options);
// `loom runs DIR [--json]`: what a state file holds (read only).
int runs_command(const std::string& dir, bool json);
// "50ms", "1s", "1.5s", "2m" (a bare number: seconds) as milliseconds; nullopt when it is none of these.
std::optional<long> parse_duration_ms(const std::string& text);

int graph_command(const common_options& common, const std::string& file, const std::string& format);

int inspect_command(const common_options& common, const std::string& kind);
// `loom inspect --graph FILE NODE`: a node that lists its tools (tool.mcp) is started and its tools printed
// with their arguments, as the agents will offer them (cli/mcp.cpp); any other node: its kind.
int inspect_node_command(const common_options& common, const std::string& file, const std::string& node);

// cli/plan.cpp: place the graph on the cluster file's hosts and print the plan.
// `--cluster slurm`: the hosts of the current Slurm allocation.
int plan_command(const common_options& common, const std::string& file, const std::string& cluster_file);
// cli/slurm.cpp: `loom slurm FILE [sbatch options]`: an sbatch script for the graph, printed, written or
// submitted.
struct slurm_options {
  std::string file;
  std::vector<std::string> sets;   // --set, passed on to loom run
  std::vector<std::string> extra;  // sbatch options
  std::string output;              // write the script here (default: stdout)
  bool submit = false;             // hand it to sbatch
};
int slurm_command(const common_options& common, const slurm_options& options);

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
  std::uint64_t max_body = std::uint64_t{1} << 20;     // request bytes; beyond: 413
  std::uint64_t max_output = std::uint64_t{16} << 20;  // bytes of a whole answer; beyond: 500
  std::string api_key_env;        // set: /v1/ needs `Authorization: Bearer $NAME`
  bool mcp = false;               // also serve MCP (Streamable HTTP) at /mcp
  double mcp_session_idle = 600;  // seconds an MCP session lives without a request
  double body_timeout = 30;       // seconds a request body may take to arrive; beyond: 408
  std::vector<std::string> allow_hosts;  // Host names accepted on /mcp besides the address and localhost
  std::string ui;                 // --ui ADDR: serve the live view there (cli/ui.cpp)
  std::string otlp;               // --otlp URL: each request's run as an OTLP trace (docs/tracing.md)
  std::string metrics;            // --metrics HOST:PORT: serve GET /metrics
  std::string state;              // --state DIR: keep conversations (threads) in DIR/state.sqlite
  long thread_idle_ms = 24L * 3600 * 1000;  // --thread-idle: a thread unused this long is forgotten
  long approval_timeout_ms = 3600L * 1000;  // --approval-timeout: a request waits this long for a decision
};
int serve_command(const common_options& common, const serve_options& options);

struct mcp_options {
  std::string file;
  std::vector<std::string> sets;  // --set node.param=value
  std::string input, output;      // as for serve: the graph tool's input and output nodes
};

// `loom mcp FILE`: the graph as an MCP server over stdio (cli/mcp.cpp).
int mcp_command(const common_options& common, const mcp_options& options);

}  // namespace loom::cli

namespace caf {
class actor_system;
}
namespace loom {
class registry;
}
namespace loom::graph {
struct graph;
}
namespace loom::serve {
struct server_options;
}

namespace loom::cli {

// `loom serve --mcp`: adds the /mcp route to `so` (cli/mcp.cpp). The result keeps the route's state alive:
// hold it until the server has stopped. Throws serve::setup_error as the server itself would.
std::shared_ptr<void> add_mcp_route(serve::server_options& so, caf::actor_system& system, const registry& kinds,
                                    const graph::graph& g, const std::string& input, const std::string& output,
                                    std::chrono::milliseconds session_idle);

// cli/route.cpp: `loom route`, a model router in front of OpenAI-compatible replicas (docs/route.md). Its
// options are registered on the app; route_command() runs it once they are parsed.
CLI::App* add_route_command(CLI::App& app);
int route_command();

}  // namespace loom::cli
