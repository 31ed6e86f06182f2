// cli/cluster.cpp: `loom worker` and `loom run FILE --cluster C` (the driver).
#include <fmt/format.h>

#include <algorithm>
#include <cstdio>
#include <ctime>
#include <filesystem>

#include "cli/load.hpp"
#include "cli/progress.hpp"
#include "graph/emit.hpp"
#include "graph/scalar.hpp"
#include "runtime/cluster/driver.hpp"
#include "runtime/cluster/worker.hpp"
#include "runtime/placement/cluster.hpp"
#include "runtime/placement/planner.hpp"

namespace loom::cli {
namespace {

void log_line(const std::string& who, const std::string& line) {
  char stamp[32];
  auto t = std::time(nullptr);
  std::strftime(stamp, sizeof stamp, "%H:%M:%S", std::localtime(&t));
  std::fprintf(stderr, "[%s] %s: %s\n", stamp, who.c_str(), line.c_str());
  std::fflush(stderr);
}

// "keys/cluster.key" or "keys/cluster" -> "keys/cluster", the prefix load_keypair() takes.
std::string key_prefix(std::string path) {
  if (path.size() > 4 && (path.ends_with(".key") || path.ends_with(".pub"))) path.resize(path.size() - 4);
  return path;
}

}  // namespace

int run_cluster(const graph::graph& g, const registry& kinds, const run_options& options) {
  graph::diagnostics cluster_diags;
  auto c = placement::load_cluster_file(options.cluster, cluster_diags);
  print_diagnostics(cluster_diags, options.cluster);
  if (!c) return invalid;
  graph::diagnostics diags;
  auto p = placement::make_plan(g, kinds, *c, diags);
  if (diags.has_errors()) {
    print_diagnostics(diags, options.file);
    print_error(fmt::format("no plan of `{}` on `{}`", options.file, options.cluster));
    return invalid;
  }

  cluster::driver_options o;
  o.kinds = &kinds;
  o.max_message_bytes = static_cast<std::int64_t>(c->max_message_bytes);
  o.connect_timeout = std::chrono::milliseconds(static_cast<long>(options.connect_timeout * 1000));
  bool host_keys = std::any_of(c->hosts.begin(), c->hosts.end(), [](const auto& h) { return h.public_key.has_value(); });
  if (host_keys && !c->curve) {
    print_error(fmt::format("{}: hosts have `public_key` but there is no `security.curve.client_key_file` (the "
                            "driver's own key pair)",
                            options.cluster));
    return invalid;
  }
  if (c->curve) {
    // Either every host has its own key pair (`public_key` per host; the driver's pair is client_key_file),
    // or all share one (server_key_file), the older setup.
    for (const auto& h : c->hosts) {
      if (h.public_key || !host_keys) continue;
      print_error(fmt::format("{}:{}: host `{}` has no `public_key`, but other hosts do: give each host its own key "
                              "pair (loom keygen --out keys/{})",
                              options.cluster, h.where.line, h.name, h.name));
      return invalid;
    }
    for (const auto& h : c->hosts) {
      if (!h.public_key) continue;
      try {
        o.host_keys[h.name] = transport::load_public_key(key_prefix(h.public_key->resolved) + ".pub");
      } catch (const std::exception& e) {
        print_error(fmt::format("{}:{}: `public_key` of host `{}`: {}", options.cluster, h.public_key->where.line,
                                h.name, e.what()));
        return invalid;
      }
    }
    try {
      const auto& server = c->curve->server_key_file;
      const auto& client = c->curve->client_key_file ? c->curve->client_key_file : server;
      if (!host_keys && !server) throw transport::key_error("security.curve needs server_key_file (or a `public_key` per host)");
      if (!client) throw transport::key_error("security.curve needs client_key_file: the driver's own key pair");
      if (server) o.server_key = transport::load_public_key(key_prefix(server->resolved) + ".pub");
      o.curve = transport::load_keypair(key_prefix(client->resolved));
    } catch (const std::exception& e) {
      print_error(fmt::format("{}: security.curve: {}", options.cluster, e.what()));
      return invalid;
    }
  }
  install_sigint();
  progress bar{!options.quiet};
  o.interrupted = [] { return interrupted_by_user(); };
  o.on_progress = [&](const local::run_report& r) { bar.update(r); };
  if (!options.quiet) o.log = [](const std::string& line) { log_line("driver", line); };
  auto report = cluster::run_distributed(g, graph::to_yaml(g), *c, p, o);
  bar.clear();
  return report_run(report, g.name, options.quiet);
}

int worker_command(const common_options& common, const worker_options& options) {
  auto kinds = make_registry(common);
  if (!kinds) return invalid;
  cluster::worker_options o;
  o.listen = options.listen;
  o.insecure = options.insecure;
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
  o.name = options.name;
  o.kinds = &*kinds;
  try {
    if (!options.key.empty()) {
      o.curve = transport::load_keypair(key_prefix(options.key));
      for (const auto& f : options.allow) o.allowed_clients.push_back(transport::load_public_key(f));
    } else if (!options.allow.empty()) {
      throw transport::key_error("--allow needs --key: driver keys only mean something with CurveZMQ");
    }
  } catch (const std::exception& e) {
    print_error(e.what());
    return invalid;
  }
  install_sigint();
  o.stopping = [] { return interrupted_by_user(); };
  auto who = options.name.empty() ? "worker " + options.listen : "worker " + options.name;
  o.log = [who](const std::string& line) { log_line(who, line); };
  return cluster::run_worker(o);
}

}  // namespace loom::cli
