// cli/commands.cpp: what each `loom` subcommand does: build the registry (built-ins and plugins), load and
// validate graphs with FILE:LINE:COL errors, run them on CAF, print graphs and kind descriptions.
#include "cli/commands.hpp"

#include <caf/all.hpp>
#include <fmt/format.h>

#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <thread>

#include "loom/actors/builtins.hpp"
#include "cli/load.hpp"
#include "cli/metrics.hpp"
#include "cli/progress.hpp"
#include "cli/state.hpp"
#include "cli/ui.hpp"
#include "loom/graph/export.hpp"
#include "loom/graph/load.hpp"
#include "loom/graph/validate.hpp"
#include "loom/kernels/device/device.hpp"
#include "loom/runtime/json.hpp"
#include "loom/runtime/json_reader.hpp"
#include "loom/runtime/local/executor.hpp"
#include "loom/runtime/observe/node_probes.hpp"
#include "loom/runtime/observe/run_metrics.hpp"
#include "loom/runtime/observe/trace.hpp"
#include "loom/runtime/registry.hpp"

namespace loom::cli {
namespace {

std::string range_text(const graph::param_spec& p) {
  if (p.min && p.max) return fmt::format("{:g}..{:g}", *p.min, *p.max);
  if (p.min) return fmt::format(">= {:g}", *p.min);
  if (p.max) return fmt::format("<= {:g}", *p.max);
  if (!p.choices.empty()) return fmt::format("{}", fmt::join(p.choices, "|"));
  return "";
}

// One line per param or call argument: name, type, default, range or choices, doc.
void print_params(const std::vector<graph::param_spec>& params) {
  for (const auto& p : params) {
    auto def = p.required ? std::string("required") : p.default_value ? "default " + p.default_value->str() : "optional";
    std::printf("  %-21s %-7s %-18s %-14s %s\n", p.name.c_str(), graph::param_type_name(p.type), def.c_str(),
                range_text(p).c_str(), p.doc.c_str());
  }
}

void print_kind(const graph::kind_spec& k) {
  std::printf("%s: %s\n", k.name.c_str(), k.doc.c_str());
  auto ports = [](const char* title, const std::vector<graph::port_spec>& ps, const char* none) {
    std::printf("\n%s\n", title);
    if (ps.empty()) std::printf("  (none%s)\n", none);
    // What `loom validate` says of an output left unconnected, where it says anything.
    for (const auto& p : ps)
      std::printf("  %-10s %s%s\n", p.name.c_str(), p.doc.c_str(),
                  p.unconnected == graph::if_unconnected::warn    ? " [unconnected: a warning]"
                  : p.unconnected == graph::if_unconnected::error ? " [unconnected: an error]"
                                                                  : "");
  };
  ports("inputs:", k.inputs, k.call ? ": a tool, called by agents" : ": a source");
  ports(k.outputs_for ? "outputs (and more from its params):" : "outputs:", k.outputs,
        k.call ? ": a tool replies to its caller" : ": a sink");
  std::printf("\nparams:\n");
  if (k.params.empty()) std::printf("  (none)\n");
  print_params(k.params);
  if (k.call) {
    std::printf("\ncall (a tool: agents may call it): %s\n", k.call->doc.c_str());
    print_params(k.call->arguments);
  }
  const auto& r = k.resources;
  std::printf("\nresources: ");
  if (k.blocking_for)
    std::printf("(own thread when its params make it wait: blocking I/O) ");
  else if (k.blocking)
    std::printf("(own thread: blocking I/O) ");
  if (r.cpus == 0 && r.memory == 0 && r.gpus == 0) std::printf("none declared\n");
  else
    std::printf("cpus %g, memory %llu bytes, gpus %d%s\n", r.cpus, static_cast<unsigned long long>(r.memory),
                r.gpus, r.gpus > 0 && r.cpu_fallback ? " (CPU path when none is placed)" : "");
  if (!k.example.empty()) std::printf("\nexample (a whole graph file):\n%s", k.example.c_str());
}

}  // namespace

int validate_command(const common_options& common, const std::vector<std::string>& files) {
  auto kinds = make_registry(common);
  if (!kinds) return invalid;
  int status = ok;
  for (const auto& f : files) {
    auto g = load(f, *kinds);
    if (!g) {
      status = invalid;
      continue;
    }
    std::printf("%s: ok (graph `%s`: %zu nodes, %zu edges)\n", f.c_str(), g->name.c_str(), g->nodes.size(),
                g->edges.size());
  }
  return status;
}

int report_run(const local::run_report& report, const std::string& graph, bool quiet) {
  switch (report.result) {
    case local::run_report::outcome::ok:
      if (!quiet)
        std::fprintf(stderr, "loom: run `%s` ok in %.3f s%s (devices: %s)\n", graph.c_str(), report.seconds,
                     report.peak_rss_kib ? fmt::format(", peak memory {:.1f} MiB", report.peak_rss_kib / 1024.0).c_str()
                                         : "",
                     kernels::describe_devices().c_str());
      break;
    case local::run_report::outcome::failed:
      std::fprintf(stderr, "loom: run `%s` failed after %.3f s: %s\n", graph.c_str(), report.seconds,
                   report.error.c_str());
      break;
    case local::run_report::outcome::interrupted:
      std::fprintf(stderr, "loom: run `%s` interrupted after %.3f s; sinks flushed\n", graph.c_str(), report.seconds);
      break;
    case local::run_report::outcome::paused:
      std::fprintf(stderr, "loom: run `%s` paused after %.3f s: it waits for decisions; its state is kept\n",
                   graph.c_str(), report.seconds);
      break;
  }
  if (!quiet) std::fprintf(stderr, "%s", report.table().c_str());
  switch (report.result) {
    case local::run_report::outcome::ok: return ok;
    case local::run_report::outcome::failed: return run_failed;
    case local::run_report::outcome::interrupted: return interrupted;
    case local::run_report::outcome::paused: return paused;
  }
  return run_failed;
}

namespace {

// --trace/--otlp: a tracer for the run (null when neither is given); nullopt for a bad URL (reported).
std::optional<std::shared_ptr<observe::tracer>> make_tracer(const run_options& options) {
  if (options.trace.empty() && options.otlp.empty()) return std::shared_ptr<observe::tracer>{};
  if (!options.otlp.empty())
    if (auto why = observe::check_otlp_url(options.otlp)) {
      print_error(fmt::format("--otlp {}", *why));
      return std::nullopt;
    }
  // The trace file is written after the run: make its folder and check it can be written now, so a bad
  // path fails at start and not after a long run.
  if (!options.trace.empty()) {
    std::error_code ec;
    auto parent = std::filesystem::path(options.trace).parent_path();
    if (!parent.empty()) std::filesystem::create_directories(parent, ec);
    if (ec) {
      print_error(fmt::format("--trace {}: cannot create folder {}: {}", options.trace, parent.string(), ec.message()));
      return std::nullopt;
    }
    if (!std::ofstream(options.trace, std::ios::app)) {
      print_error(fmt::format("--trace {}: cannot open the file for writing: {}", options.trace, std::strerror(errno)));
      return std::nullopt;
    }
  }
  return std::make_shared<observe::tracer>(options.cluster.empty() ? "loom" : "driver");
}

// Writes the trace file and exports the spans once the run is over; a failure there fails the command.
int finish_trace(const std::shared_ptr<observe::tracer>& trace, const run_options& options, const std::string& graph,
                 int status) {
  if (!trace) return status;
  trace->finish(graph);
  try {
    if (!options.trace.empty()) observe::write_chrome(*trace, options.trace);
    if (!options.otlp.empty()) observe::export_otlp(*trace, options.otlp);
  } catch (const std::exception& e) {
    print_error(e.what());
    return status == ok ? run_failed : status;
  }
  return status;
}

}  // namespace

int run_command(const common_options& common, const run_options& options) {
  auto kinds = make_registry(common);
  if (!kinds) return invalid;
  auto g = load(options.file, *kinds, options.sets);
  if (!g) return invalid;
  if (options.state.empty()) {
    if (options.detach_on_pause) {
      print_error("--detach-on-pause needs --state DIR: a paused run is resumed from its state (docs/durability.md)");
      return invalid;
    }
    for (const auto& n : g->nodes) {
      const auto* approve = n.kind == "agent.llm" ? n.params.find("approve_tools") : nullptr;
      if (n.kind == "human.approve" || (approve && approve->is_list() && !approve->as_list().empty())) {
        print_error(fmt::format("{}: node `{}` ({}) waits for decisions, which are given with `loom approve DIR {}`: "
                                "run it with --state DIR",
                                n.where.str(), n.name, n.kind == "human.approve" ? "human.approve" : "agent.llm with approve_tools",
                                n.name));
        return invalid;
      }
    }
  }
  std::unique_ptr<durable_run> durable;
  auto make_durable = [&]() -> durable_run* {
    durable_run::settings s;
    s.detach_on_pause = options.detach_on_pause;
    s.every = std::chrono::milliseconds(options.checkpoint_every_ms);
    s.keep = options.keep;
    durable = durable_run::create(options.state, options, *g, *kinds, s);
    return durable.get();
  };
  if (!options.state.empty() && !options.cluster.empty())  // made once the cluster's hosts and plan are known
    return run_here(options, *g, *kinds, nullptr, nullptr, make_durable);
  if (!options.state.empty() && !make_durable()) return invalid;
  return run_here(options, *g, *kinds, durable.get(), nullptr);
}

int run_here(const run_options& options, const graph::graph& graph_in, const registry& kinds_in, durable_run* durable,
             std::shared_ptr<const local::snapshot> restore, const std::function<durable_run*()>& make_durable) {
  const auto* g = &graph_in;
  const auto* kinds = &kinds_in;
  auto trace = make_tracer(options);
  if (!trace) return invalid;
  if (!options.cluster.empty())
    return finish_trace(*trace, options, g->name,
                        run_cluster(*g, *kinds, options, *trace,
                                    durable ? std::function<durable_run*()>([durable] { return durable; }) : make_durable,
                                    std::move(restore)));
  auto metrics = start_metrics(options.metrics);
  if (!metrics) return invalid;
  std::optional<observe::run_metrics> run_metrics;
  if (*metrics) run_metrics.emplace(g->name, observe::new_run_id());

  caf::actor_system_config cfg;
  auto threads = options.threads ? options.threads : std::max(2u, std::thread::hardware_concurrency());
  cfg.set("scheduler.max-threads", static_cast<size_t>(threads));
  caf::actor_system system{cfg};

  bool ui_failed = false;
  auto ui = start_live_view(*g, options.ui, ui_failed);
  if (ui_failed) return invalid;
  if (ui) ui->server().log(fmt::format("run `{}` started: {} nodes, {} edges", g->name, g->nodes.size(), g->edges.size()));
  if (ui && durable) {
    // The page shows the decisions the run waits for and records a click where `loom approve` does.
    observe::ui::decision_hooks hooks;
    hooks.pending = [durable] {
      std::vector<observe::ui::ui_decision> out;
      for (const auto& p : durable->pending())
        out.push_back({p.node, p.instance, p.id, to_json_line(p.shown), p.asked_unix_ms, p.deadline_unix_ms});
      return out;
    };
    hooks.decide = [dir = durable->store().dir(), by = who_decides() + " (live view)"](
                       std::uint32_t instance, std::uint64_t id, const std::string& verdict,
                       const std::string& value_json, const std::string& reason) {
      state::decision_record d;
      d.instance = instance;
      d.id = id;
      d.verdict = verdict;
      d.reason = reason;
      d.by = by;
      d.at_unix_ms = unix_ms_now();
      if (verdict == "edit") {
        try {
          d.edited = read_json_value(value_json, "the edited value");
        } catch (const std::exception& e) {
          return std::string(e.what());
        }
      }
      return record_decision(dir, d);
    };
    ui->server().set_decisions(std::move(hooks));
  }
  install_sigint();
  progress bar{!options.quiet};
  local::run_options ro;
  ro.interrupted = [] { return interrupted_by_user(); };
  ro.on_progress = [&](const local::run_report& r) {
    bar.update(r);
    if (ui) ui->server().publish(r);
    if (run_metrics) run_metrics->update(r);
    if (durable) durable->progress(r);
  };
  ro.probes = observe::probes_for(*trace);  // tool calls counted; spans recorded when traced
  ro.restore = std::move(restore);
  if (durable) durable->arm(ro);
  auto report = durable ? local::run_slice(system, durable->plan(), ro) : local::run_graph(system, *g, *kinds, ro);
  if (durable) durable->finish(report);
  report.peak_rss_kib = local::peak_rss_kib();
  if (ui) {
    ui->server().log(fmt::format("run `{}` ended after {:.3f} s: {}", g->name, report.seconds,
                                 report.result == local::run_report::outcome::ok       ? std::string("ok")
                                 : report.result == local::run_report::outcome::failed ? "failed: " + report.error
                                 : report.result == local::run_report::outcome::paused ? std::string("paused")
                                                                                       : std::string("interrupted")));
    ui->server().finish(report);
  }
  bar.clear();
  std::fflush(stdout);
  if (run_metrics) run_metrics->update(report);

  auto status = finish_trace(*trace, options, g->name, report_run(report, g->name, options.quiet));
  hold_metrics(metrics->get(), options.metrics_hold);  // after the summary: a scraper sees the final values
  return status;
}

int graph_command(const common_options& common, const std::string& file, const std::string& format) {
  auto kinds = make_registry(common);
  if (!kinds) return invalid;
  auto g = load(file, *kinds);
  if (!g) return invalid;
  auto text = format == "mermaid" ? graph::to_mermaid(*g) : graph::to_dot(*g);
  std::printf("%s", text.c_str());
  return ok;
}

int inspect_command(const common_options& common, const std::string& kind) {
  auto kinds = make_registry(common);
  if (!kinds) return invalid;
  if (kind.empty()) {
    std::size_t w = 0;
    for (const auto& n : kinds->kind_names()) w = std::max(w, n.size());
    for (const auto& n : kinds->kind_names())
      std::printf("%-*s  %s\n", static_cast<int>(w), n.c_str(), kinds->find_kind(n)->doc.c_str());
    return ok;
  }
  const auto* spec = kinds->find_kind(kind);
  if (!spec) {
    print_error(fmt::format("unknown kind `{}`; {}", kind, graph::suggest(kind, kinds->kind_names())));
    return invalid;
  }
  print_kind(*spec);
  return ok;
}

}  // namespace loom::cli
