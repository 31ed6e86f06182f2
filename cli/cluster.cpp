// cli/cluster.cpp: `loom worker` and `loom run FILE --cluster C` (the driver).
#include <fmt/format.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <ctime>

#include "cli/load.hpp"
#include "cli/metrics.hpp"
#include "loom/runtime/observe/run_metrics.hpp"
#include "cli/progress.hpp"
#include "cli/state.hpp"
#include "cli/ui.hpp"
#include "loom/graph/detail/scalar.hpp"
#include "loom/runtime/cluster/address_file.hpp"
#include "loom/runtime/cluster/driver.hpp"
#include "loom/runtime/cluster/session.hpp"
#include "loom/runtime/cluster/worker.hpp"
#include "loom/runtime/transport/keys.hpp"

namespace loom::cli {
namespace {

void log_line(const std::string& who, const std::string& line) {
  char stamp[32];
  auto t = std::time(nullptr);
  std::strftime(stamp, sizeof stamp, "%H:%M:%S", std::localtime(&t));
  std::fprintf(stderr, "[%s] %s: %s\n", stamp, who.c_str(), line.c_str());
  std::fflush(stderr);
}

// `%t` in a worker's --name or --address-file: its task rank under srun (SLURM_PROCID), as in srun's own
// file name patterns; "0" outside srun.
std::string expand_task(std::string text) {
  const char* rank = std::getenv("SLURM_PROCID");
  for (auto at = text.find("%t"); at != std::string::npos; at = text.find("%t", at))
    text.replace(at, 2, rank ? rank : "0");
  return text;
}

}  // namespace

int run_cluster(const graph::graph& g, const registry& kinds, const run_options& options,
                const std::shared_ptr<observe::tracer>& trace, const std::function<durable_run*()>& make_durable,
                std::shared_ptr<const local::snapshot> restore) {
  cluster::host_source_options so;
  so.plugins = options.plugins;
  if (const char* keys = std::getenv("LOOM_SLURM_KEYS_DIR")) so.keys_parent = keys;  // else the working directory
  so.start_timeout = std::chrono::milliseconds(static_cast<long>(std::max(30.0, options.connect_timeout) * 1000));
  if (!options.quiet) so.log = [](const std::string& line) { log_line("driver", line); };
  so.interrupted = [] { return interrupted_by_user(); };
  so.insecure = options.insecure;
  cluster::session session(options.cluster, so);
  graph::diagnostics cluster_diags;
  const auto* c = session.hosts(cluster_diags);
  print_diagnostics(cluster_diags, options.cluster);
  if (!c) return invalid;
  // The plan comes first: a graph that does not fit fails here, before any worker is started.
  graph::diagnostics diags;
  const auto* p = session.plan(g, kinds, diags);
  if (!p) {
    print_diagnostics(diags, options.file);
    print_error(fmt::format("no plan of `{}` on {}", options.file, session.describe()));
    return invalid;
  }
  durable_run* durable = nullptr;  // --state: made now that the hosts and the plan are known
  if (make_durable && !(durable = make_durable())) return invalid;

  cluster::driver_options o;
  o.kinds = &kinds;
  o.connect_timeout = std::chrono::milliseconds(static_cast<long>(options.connect_timeout * 1000));
  // The live view groups the nodes by the host of their instance 0, as planned.
  observe::ui::host_map hosts;
  for (std::size_t i = 0; i < g.nodes.size(); ++i)
    if (auto h = p->at(static_cast<int>(i), 0).host; h >= 0) hosts[g.nodes[i].name] = c->hosts[static_cast<std::size_t>(h)].name;
  bool ui_failed = false;
  auto ui = start_live_view(g, options.ui, ui_failed, std::move(hosts));
  if (ui_failed) return invalid;
  auto log = [&ui, quiet = options.quiet](const std::string& line) {
    if (!quiet) log_line("driver", line);
    if (ui) ui->server().log("driver: " + line);
  };
  auto metrics = start_metrics(options.metrics);
  if (!metrics) return invalid;
  install_sigint();
  install_sighup();
  std::optional<observe::cluster_view> view;  // the workers' samples, with host labels
  if (*metrics) {
    view.emplace();
    o.on_samples = [&](const std::string& host, const std::string& samples) { view->set(host, samples); };
  }
  progress bar{!options.quiet};
  o.interrupted = [] { return interrupted_by_user(); };
  o.on_progress = [&](const local::run_report& r) {
    bar.update(r);
    if (ui) ui->server().publish(r);
    if (durable) durable->progress(r);
  };
  if (!options.quiet || ui) o.log = log;
  o.trace = trace;
  o.restore = std::move(restore);
  if (durable) durable->start(o.snapshot_every, o.on_snapshot, o.poll_decisions, o.detach_on_pause);  // the driver holds the run's state
  auto report = session.run(g, o);  // starts the workers first (Slurm: a job step)
  if (durable) durable->finish(report);
  if (!session.started()) {
    print_error(report.error);
    return interrupted_by_user() ? interrupted : run_failed;
  }
  if (ui) ui->server().finish(report);
  bar.clear();
  std::fflush(stdout);
  session.stop();
  auto status = report_run(report, g.name, options.quiet);
  hold_metrics(metrics->get(), options.metrics_hold);
  return status;
}

int worker_command(const common_options& common, const worker_options& options) {
  auto kinds = make_registry(common);
  if (!kinds) return invalid;
  cluster::worker_options o;
  o.listen = options.listen;
  o.name = expand_task(options.name);
  o.once = options.once;
  o.insecure = options.insecure;
  o.scheduler = options.scheduler == "stealing" ? cluster::scheduler_policy::stealing : cluster::scheduler_policy::sharing;
  if (!options.max_message_size.empty()) {
    std::string error;
    auto bytes = graph::parse_size(options.max_message_size, error);
    if (!bytes || *bytes < 4096) {
      print_error(fmt::format("--max-message-size `{}`: {}", options.max_message_size,
                              bytes ? std::string("at least 4 KiB, please") : error));
      return invalid;
    }
    o.max_message_bytes = static_cast<std::int64_t>(*bytes);
  }
  o.kinds = &*kinds;
  try {
    if (!options.key.empty()) {
      o.curve = transport::load_keypair(transport::keypair_prefix(options.key));
      for (const auto& f : options.allow) o.allowed_clients.push_back(transport::load_public_key(f));
    } else if (!options.allow.empty()) {
      throw transport::key_error("--allow needs --key: driver keys only mean something with CurveZMQ");
    }
    // No key options and no --insecure: run_worker() takes the per-user pair, which only this user's
    // drivers can read (made on first use).
  } catch (const std::exception& e) {
    print_error(e.what());
    return invalid;
  }
  install_sigint();
  auto metrics = start_metrics(options.metrics);
  if (!metrics) return invalid;
  o.stopping = [] { return interrupted_by_user(); };
  auto who = o.name.empty() ? "worker " + options.listen : "worker " + o.name;
  o.log = [who](const std::string& line) { log_line(who, line); };
  if (!options.address_file.empty()) {
    o.on_listening = [path = expand_task(options.address_file)](const std::string& bound) {
      const char* node = std::getenv("SLURMD_NODENAME");
      cluster::write_address_file(path, {bound, node ? node : ""});
    };
  }
  return cluster::run_worker(o);
}

}  // namespace loom::cli
