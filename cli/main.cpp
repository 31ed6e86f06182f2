// cli/main.cpp: `loom` — validate, run, graph, inspect and plan dataflow graphs. Parses the command line with
// CLI11 and hands each subcommand to cli/commands.cpp.
#include <CLI/CLI.hpp>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include "loom/runtime/allocator.hpp"
#include "loom/version.hpp"
#include "cli/commands.hpp"
#include "cli/runs_admin.hpp"

int main(int argc, char** argv) {
  using namespace loom::cli;
  // Before anything allocates: keep freed batches' memory for reuse (runtime/allocator.hpp).
  loom::tune_allocator();
  // Logs go to stderr: stdout belongs to the graph (sink.stdout).
  spdlog::set_default_logger(spdlog::stderr_color_mt("loom"));
  CLI::App app{"loom: a dataflow actor framework for AI factories", "loom"};
  app.require_subcommand(1);
  app.set_version_flag("--version", std::string("loom ") + loom::version());

  common_options common;
  auto add_plugin = [&](CLI::App* sub) {
    sub->add_option("--plugin", common.plugins, "Load actor kinds from this shared library (repeatable)")
        ->check(CLI::ExistingFile);
  };

  std::vector<std::string> validate_files;
  auto* validate = app.add_subcommand("validate", "Check graph files; print every error with FILE:LINE:COL");
  validate->add_option("files", validate_files, "Graph files")->required();
  add_plugin(validate);

  run_options run;
  auto* run_cmd = app.add_subcommand("run", "Run a graph in this process until every sink has drained");
  run_cmd->add_option("file", run.file, "Graph file")->required();
  run_cmd->add_option("--set", run.sets, "Override a param: node.param=value (repeatable)");
  run_cmd->add_flag("-q,--quiet", run.quiet, "No progress line and no summary table");
  run_cmd->add_option("--threads", run.threads, "Scheduler threads (default: one per core)");
  // A cluster file, or `slurm`: the hosts of the current Slurm allocation.
  auto cluster_check = CLI::Validator(
      [](std::string& v) { return v == "slurm" ? std::string() : CLI::ExistingFile(v); }, "FILE|slurm");
  run_cmd->add_option("--cluster", run.cluster,
                      "Run across the workers of this cluster file (this process drives); `slurm`: start one worker "
                      "per task of the current Slurm allocation")
      ->check(cluster_check);
  run_cmd->add_option("--trace", run.trace, "Write the run's spans to this file (Chrome trace-event JSON: Perfetto)");
  run_cmd->add_option("--otlp", run.otlp, "Export the run's spans as OpenTelemetry (OTLP/HTTP JSON) to URL/v1/traces");
  run_cmd->add_option("--connect-timeout", run.connect_timeout, "Seconds to keep retrying a worker that is not up")
      ->check(CLI::PositiveNumber);
  run_cmd->add_flag("--insecure", run.insecure,
                    "With --cluster: a cluster file without `security` means plain TCP to workers started with "
                    "--insecure (default: this user's per-user keys)");
  run_cmd->add_option("--ui", run.ui, "Serve a live view of the run at ADDR: PORT, :PORT or HOST:PORT (0: any port)");
  run_cmd->add_option("--metrics", run.metrics,
                      "Serve GET /metrics (Prometheus text format) on HOST:PORT, e.g. 127.0.0.1:9464 (port 0: any, printed)");
  run_cmd->add_option("--metrics-hold", run.metrics_hold,
                      "Seconds to keep serving /metrics after the run ends, so that a scraper sees the final values")
      ->check(CLI::NonNegativeNumber);
  std::string checkpoint_every = "1s";
  auto duration_check = CLI::Validator(
      [](std::string& v) {
        return parse_duration_ms(v) ? std::string() : "`" + v + "` is not a duration such as 50ms, 1s, 2m";
      },
      "DURATION");
  run_cmd->add_option("--state", run.state,
                      "Keep the run's state in DIR/state.sqlite: consistent snapshots, so that `loom resume DIR` "
                      "continues it after the process dies (docs/durability.md)");
  run_cmd->add_option("--checkpoint-every", checkpoint_every, "With --state: time between snapshots (50ms, 1s, 2m)")
      ->capture_default_str()
      ->check(duration_check);
  run_cmd->add_option("--keep", run.keep, "With --state: the complete snapshots kept (older ones are pruned)")
      ->capture_default_str()
      ->check(CLI::Range(std::size_t{1}, std::size_t{1000}));
  run_cmd->add_flag("--detach-on-pause", run.detach_on_pause,
                    "With --state: exit (status 3) once the run waits only for decisions (human.approve); "
                    "`loom approve DIR NODE` resumes it");
  add_plugin(run_cmd);

  resume_options resume;
  std::string resume_every;
  auto* resume_cmd = app.add_subcommand("resume", "Continue a run kept with --state DIR from its latest snapshot");
  resume_cmd->add_option("dir", resume.dir, "The run's state directory (loom run --state DIR)")->required();
  resume_cmd->add_flag("-q,--quiet", resume.quiet, "No progress line and no summary table");
  resume_cmd->add_option("--threads", resume.threads, "Scheduler threads (default: one per core)");
  resume_cmd->add_option("--checkpoint-every", resume_every, "Time between snapshots (default: as the run had it)")
      ->check(duration_check);
  resume_cmd->add_option("--keep", resume.keep, "The complete snapshots kept (default: as the run had it)")
      ->check(CLI::Range(std::size_t{1}, std::size_t{1000}));
  resume_cmd->add_flag("--detach-on-pause", resume.detach_on_pause,
                       "Exit (status 3) once the run waits only for decisions (default: as the run had it)");
  add_plugin(resume_cmd);

  approve_options approve;
  auto* approve_cmd = app.add_subcommand(
      "approve", "Decide about a value a run holds for a person (human.approve): approve it, --reject it, or "
                 "--value JSON to edit it; a stopped run is resumed");
  approve_cmd->add_option("dir", approve.dir, "The run's state directory (loom run --state DIR)")->required();
  approve_cmd->add_option("node", approve.node, "The node that holds it (node, or node[i] for one replica)")
      ->required();
  approve_cmd->add_option("--id", approve.ids, "The decision's id (`loom runs DIR` lists them; repeatable); "
                                               "default: the node's only pending one");
  approve_cmd->add_flag("--all", approve.all, "Every decision the node has pending");
  auto* reject_flag = approve_cmd->add_flag("--reject", approve.reject, "Reject it: it goes to the node's `rejected` port");
  approve_cmd->add_option("--reason", approve.reason, "With --reject: why (given to `rejected` with the value)")
      ->needs(reject_flag);
  approve_cmd->add_option("--value", approve.value, "Approve this JSON value instead of the one held (an edit)")
      ->excludes(reject_flag);
  approve_cmd->add_flag("--no-resume", approve.no_resume, "Only record it; a stopped run is not resumed");
  approve_cmd->add_flag("-q,--quiet", approve.quiet, "The resumed run without progress and summary");
  add_plugin(approve_cmd);

  std::string runs_dir;
  bool runs_json = false;
  auto* runs_cmd = app.add_subcommand(
      "runs", "Show what a run's state directory holds: status, snapshots, progress; or fork, pin or drop it");
  runs_cmd->add_option("dir", runs_dir, "The run's state directory (loom run --state DIR)")->required();
  runs_cmd->add_flag("--json", runs_json, "As one JSON object");
  runs_admin_options runs_admin;  // --fork, --pin, --unpin, --drop (cli/runs_admin.cpp)
  add_runs_admin_options(*runs_cmd, runs_admin);
  add_plugin(runs_cmd);

  std::string graph_file, format = "dot";
  auto* graph_cmd = app.add_subcommand("graph", "Print a graph as Graphviz DOT or a Mermaid flowchart");
  graph_cmd->add_option("file", graph_file, "Graph file")->required();
  graph_cmd->add_option("--format", format, "dot or mermaid")->check(CLI::IsMember({"dot", "mermaid"}));
  add_plugin(graph_cmd);

  std::string kind;
  auto* inspect = app.add_subcommand("inspect", "List the actor kinds, or describe one: ports, params, resources");
  inspect->add_option("kind", kind, "Kind name, e.g. source.sequence (with --graph: a node name)");
  std::string inspect_graph;
  inspect->add_option("--graph", inspect_graph,
                      "Describe node KIND of this graph; a node with tools found at run time (tool.mcp) is started "
                      "and its tools are listed");
  add_plugin(inspect);

  std::string plan_file, cluster_file;
  auto* plan = app.add_subcommand("plan", "Place a graph on a cluster's hosts and GPUs; print where and why");
  plan->add_option("file", plan_file, "Graph file")->required();
  plan->add_option("--cluster", cluster_file,
                   "Cluster file (hosts, their cpus, memory, GPUs, labels), or `slurm`: the current allocation")
      ->required()
      ->check(cluster_check);
  add_plugin(plan);
  worker_options worker;
  auto* worker_cmd = app.add_subcommand("worker", "Serve runs from a driver on this host: loom run FILE --cluster C");
  worker_cmd->add_option("--listen", worker.listen, "Address to listen on, tcp://HOST:PORT")->required();
  worker_cmd->add_option("--name", worker.name, "Name on the wire (default: worker@ADDRESS)");
  worker_cmd->add_option("--key", worker.key, "CurveZMQ key pair PREFIX (from loom keygen): encrypt and authenticate");
  worker_cmd->add_option("--allow", worker.allow, "Public key file of a client allowed in (default: the worker's own)");
  worker_cmd->add_option("--address-file", worker.address_file,
                         "Write the address bound (with PORT 0: the port chosen) to this file; `%t`: the task rank "
                         "under srun");
  worker_cmd->add_option("--metrics", worker.metrics,
                         "Serve GET /metrics (Prometheus text format) on HOST:PORT: this worker's samples");
  worker_cmd->add_flag("--once", worker.once, "Leave after one run (how loom run --cluster slurm starts workers)");
  worker_cmd->add_flag("--insecure", worker.insecure,
                       "Without --key: plain TCP, no authentication, on any address (anyone who reaches the port, "
                       "every local user on loopback, can run graphs as this user). Default: the per-user keys");
  worker_cmd->add_option("--max-message-size", worker.max_message_size,
                         "Largest message part accepted, e.g. 64MiB (default), as the cluster file's max_message_size");
  worker_cmd
      ->add_option("--scheduler", worker.scheduler,
                   "How the run's actors share this host's threads: `sharing` (default: one queue, idle threads sleep "
                   "until work comes) or `stealing` (a queue per thread, idle threads poll: what loom run uses)")
      ->check(CLI::IsMember({"sharing", "stealing"}));
  add_plugin(worker_cmd);

  std::string key_prefix;
  auto* keygen = app.add_subcommand("keygen", "Make a CurveZMQ key pair: PREFIX.key (secret, 0600), PREFIX.pub");
  keygen->add_option("--out", key_prefix, "Path prefix of the two key files")->required();

  serve_options serve;
  auto* serve_cmd = app.add_subcommand("serve", "Serve a graph as an OpenAI-compatible chat-completions endpoint");
  serve_cmd->add_option("file", serve.file, "Graph file")->required();
  serve_cmd->add_option("--port", serve.port, "TCP port (0: any free port, printed)")->required()->check(CLI::Range(0, 65535));
  serve_cmd->add_option("--host", serve.host, "Address to listen on")->capture_default_str();
  serve_cmd->add_option("--set", serve.sets, "Override a param: node.param=value (repeatable)");
  serve_cmd->add_option("--input", serve.input, "Node the user message enters at (default: the only source)");
  serve_cmd->add_option("--output", serve.output, "Node whose input is the answer (default: the only sink)");
  serve_cmd->add_option("--max-concurrent", serve.max_concurrent, "Requests run at once; beyond: 429")
      ->capture_default_str()->check(CLI::PositiveNumber);
  serve_cmd->add_option("--threads", serve.threads, "Scheduler threads (default: one per core)");
  serve_cmd->add_option("--max-body", serve.max_body, "Largest request body (bytes, or 64KiB, 1MiB...); beyond: 413")
      ->transform(CLI::AsSizeValue(false))->default_str("1MiB");
  serve_cmd->add_option("--max-output", serve.max_output, "Longest whole (not streamed) answer; beyond: 500")
      ->transform(CLI::AsSizeValue(false))->default_str("16MiB");
  serve_cmd->add_option("--api-key-env", serve.api_key_env,
                        "Environment variable holding the API key that /v1/ requests must send as a Bearer token");
  serve_cmd->add_option("--body-timeout", serve.body_timeout, "Seconds a request body may take to arrive; beyond: 408")
      ->capture_default_str()->check(CLI::PositiveNumber);
  serve_cmd->add_flag("--mcp", serve.mcp, "Also serve the graph over MCP (Streamable HTTP) at /mcp");
  serve_cmd->add_option("--mcp-session-idle", serve.mcp_session_idle,
                        "Seconds an MCP session lives without a request (then: 404, initialize again)")
      ->capture_default_str()->check(CLI::PositiveNumber);
  serve_cmd->add_option("--allow-host", serve.allow_hosts,
                        "A Host name /mcp accepts besides the address, localhost and IP addresses (repeatable)");
  serve_cmd->add_option("--ui", serve.ui, "Serve a live view of the served graph at ADDR: PORT, :PORT or HOST:PORT");
  serve_cmd->add_option("--otlp", serve.otlp,
                        "Export each request's run as an OpenTelemetry trace (OTLP/HTTP JSON) to URL/v1/traces");
  serve_cmd->add_option("--metrics", serve.metrics, "Serve GET /metrics (Prometheus text format) on HOST:PORT");
  serve_cmd->add_option("--state", serve.state,
                        "Keep conversations in DIR/state.sqlite: a request's thread (X-Loom-Thread, else `user`) "
                        "keeps its agents' memory across requests and restarts (docs/durability.md, Threads)");
  std::string thread_idle = "24h";
  serve_cmd->add_option("--thread-idle", thread_idle, "With --state: forget a thread unused this long (1s, 30m, 24h)")
      ->capture_default_str()
      ->check(duration_check);
  std::string approval_timeout = "1h";
  serve_cmd->add_option("--approval-timeout", approval_timeout,
                        "With --state: a request that waits this long for a decision (human.approve, approve_tools) "
                        "is stopped (504)")
      ->capture_default_str()
      ->check(duration_check);
  add_plugin(serve_cmd);

  slurm_options slurm;
  auto* slurm_cmd = app.add_subcommand(
      "slurm", "Write an sbatch script that runs a graph on Slurm with the tasks and GPUs its plan needs");
  slurm_cmd->add_option("file", slurm.file, "Graph file")->required();
  slurm_cmd->add_option("--set", slurm.sets, "Override a param: node.param=value (repeatable; passed to loom run)");
  slurm_cmd->add_option("--script", slurm.output, "Write the script to this file (default: print it)");
  slurm_cmd->add_flag("--submit", slurm.submit, "Submit the script with sbatch");
  slurm_cmd->allow_extras();  // everything else is an sbatch option, copied into the script
  slurm_cmd->footer("Other options (e.g. --time=1:00:00 --partition=gpu --account=A) become #SBATCH lines.");
  add_plugin(slurm_cmd);

  mcp_options mcp;
  auto* mcp_cmd = app.add_subcommand("mcp", "Serve a graph's tools, and the graph itself as a tool, over MCP on stdio");
  mcp_cmd->add_option("file", mcp.file, "Graph file")->required();
  mcp_cmd->add_option("--set", mcp.sets, "Override a param: node.param=value (repeatable)");
  mcp_cmd->add_option("--input", mcp.input, "Node the graph tool's prompt enters at (default: the only source)");
  mcp_cmd->add_option("--output", mcp.output, "Node whose input is the graph tool's result (default: the only sink)");
  add_plugin(mcp_cmd);

  auto* route_cmd = add_route_command(app);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int code = app.exit(e);
    return code == 0 ? ok : invalid;
  }

  if (*validate) return validate_command(common, validate_files);
  if (*run_cmd) {
    run.plugins = common.plugins;
    run.checkpoint_every_ms = *parse_duration_ms(checkpoint_every);
    return run_command(common, run);
  }
  if (*serve_cmd) {
    serve.thread_idle_ms = *parse_duration_ms(thread_idle);
    serve.approval_timeout_ms = *parse_duration_ms(approval_timeout);
  }
  if (*resume_cmd) {
    if (!resume_every.empty()) resume.checkpoint_every = *parse_duration_ms(resume_every);
    return resume_command(common, resume);
  }
  if (*runs_cmd) return runs_admin.any() ? runs_admin_command(common, runs_dir, runs_admin) : runs_command(runs_dir, runs_json);
  if (*approve_cmd) return approve_command(common, approve);
  if (*slurm_cmd) {
    slurm.extra = slurm_cmd->remaining();
    return slurm_command(common, slurm);
  }
  if (*graph_cmd) return graph_command(common, graph_file, format);
  if (*inspect && !inspect_graph.empty()) return inspect_node_command(common, inspect_graph, kind);
  if (*inspect) return inspect_command(common, kind);
  if (*plan) return plan_command(common, plan_file, cluster_file);
  if (*keygen) return keygen_command(key_prefix);
  if (*worker_cmd) return worker_command(common, worker);
  if (*serve_cmd) return serve_command(common, serve);
  if (*mcp_cmd) return mcp_command(common, mcp);
  if (*route_cmd) return route_command();
  return invalid;
}
