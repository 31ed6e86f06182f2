// runtime/cluster/session.cpp: hosts, plan, workers started, the run, workers stopped (session.hpp).
#include "loom/runtime/cluster/session.hpp"

#include <fmt/format.h>

#include "loom/graph/emit.hpp"

namespace loom::cluster {

session::session(const std::string& spec, const host_source_options& options)
    : source_(make_host_source(spec, options)) {}

session::~session() { stop(); }

const placement::cluster* session::hosts(graph::diagnostics& diags) {
  hosts_ = source_->hosts(diags);
  return hosts_ ? &*hosts_ : nullptr;
}

const placement::plan* session::plan(const graph::graph& g, const graph::kind_catalog& kinds,
                                     graph::diagnostics& diags) {
  plan_ = placement::make_plan(g, kinds, *hosts_, diags);
  if (diags.has_errors()) plan_.reset();
  return plan_ ? &*plan_ : nullptr;
}

local::run_report session::run(const graph::graph& g, driver_options o) {
  o.max_message_bytes = static_cast<std::int64_t>(hosts_->max_message_bytes);
  if (auto why = source_->start_workers(*hosts_, *plan_, o); !why.empty()) {
    source_->stop_workers();
    local::run_report r;
    r.result = local::run_report::outcome::failed;
    r.error = fmt::format("{}: {}", source_->describe(), why);
    return r;
  }
  started_ = true;
  std::string gone;  // the workers went away on their own (Slurm: the step ended, the job was cancelled)
  auto asked = o.interrupted;
  o.interrupted = [&] {
    if (gone.empty()) gone = source_->workers_gone();
    return (asked && asked()) || !gone.empty();
  };
  auto report = run_distributed(g, graph::to_yaml(g), *hosts_, *plan_, o);
  if (report.result == local::run_report::outcome::interrupted && !gone.empty() && !(asked && asked())) {
    report.result = local::run_report::outcome::failed;
    report.error = fmt::format("{}: {}", source_->describe(), gone);
  }
  return report;
}

void session::stop() {
  if (source_) source_->stop_workers();
}

}  // namespace loom::cluster
