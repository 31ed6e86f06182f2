// cli/plan.cpp: `loom plan FILE --cluster C`: loads and validates the graph as `loom validate` does, reads
// the hosts (a cluster file, or `slurm`: the current allocation), plans, and prints the plan with its
// reasons. Exit 2 when any file is invalid or no plan exists (the error names the node and the constraint).
#include <cstdio>
#include <optional>

#include "loom/actors/builtins.hpp"
#include "cli/commands.hpp"
#include "cli/load.hpp"
#include "loom/graph/load.hpp"
#include "loom/graph/validate.hpp"
#include "loom/runtime/cluster/hosts.hpp"
#include "loom/runtime/placement/cluster.hpp"
#include "loom/runtime/placement/planner.hpp"
#include "loom/runtime/registry.hpp"

namespace loom::cli {
int plan_command(const common_options& common, const std::string& file, const std::string& cluster_file) {
  auto registry = make_registry(common);
  if (!registry) return invalid;
  auto& kinds = *registry;
  auto g = load(file, kinds);
  auto source = cluster::make_host_source(cluster_file, {});
  graph::diagnostics cluster_diags;
  auto c = source->hosts(cluster_diags);
  print_diagnostics(cluster_diags, cluster_file);
  if (!g || !c) return invalid;
  graph::diagnostics diags;
  auto p = placement::make_plan(*g, kinds, *c, diags);
  if (diags.has_errors()) {
    print_diagnostics(diags, file);
    std::fprintf(stderr, "loom: error: no plan of `%s` on %s\n", file.c_str(), source->describe().c_str());
    return invalid;
  }
  std::printf("%s", placement::explain(p, *g, *c).c_str());
  return ok;
}

}  // namespace loom::cli
