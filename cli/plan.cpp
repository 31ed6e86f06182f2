// cli/plan.cpp: `loom plan FILE --cluster C`: loads and validates the graph as `loom validate` does, loads
// the cluster file, plans, and prints the plan with its reasons. Exit 2 when any file is invalid or no
// plan exists (the error names the node and the constraint).
#include <cstdio>
#include <optional>

#include "actors/builtins.hpp"
#include "cli/commands.hpp"
#include "graph/load.hpp"
#include "graph/validate.hpp"
#include "runtime/placement/cluster.hpp"
#include "runtime/placement/planner.hpp"
#include "runtime/registry.hpp"

namespace loom::cli {
namespace {

void print(const graph::diagnostics& diags, const std::string& file) {
  if (!diags.all().empty()) std::fprintf(stderr, "%s", diags.str().c_str());
  if (diags.error_count() > 1) std::fprintf(stderr, "%s: %zu errors\n", file.c_str(), diags.error_count());
}

// The registry and graph as in commands.cpp's load(): built-ins and plugins, validate, defaults.
std::optional<graph::graph> load_graph(const std::string& file, const registry& kinds) {
  graph::diagnostics diags;
  auto g = graph::load_graph_file(file, diags);
  if (g) graph::validate(*g, kinds, diags);
  print(diags, file);
  if (!g || diags.has_errors()) return std::nullopt;
  graph::apply_defaults(*g, kinds);
  return g;
}

}  // namespace

int plan_command(const common_options& common, const std::string& file, const std::string& cluster_file) {
  registry kinds;
  actors::register_builtins(kinds);
  for (const auto& path : common.plugins) {
    try {
      load_plugin(kinds, path);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "loom: error: %s\n", e.what());
      return invalid;
    }
  }
  auto g = load_graph(file, kinds);
  graph::diagnostics cluster_diags;
  auto c = placement::load_cluster_file(cluster_file, cluster_diags);
  print(cluster_diags, cluster_file);
  if (!g || !c) return invalid;
  graph::diagnostics diags;
  auto p = placement::make_plan(*g, kinds, *c, diags);
  if (diags.has_errors()) {
    print(diags, file);
    std::fprintf(stderr, "loom: error: no plan of `%s` on `%s`\n", file.c_str(), cluster_file.c_str());
    return invalid;
  }
  std::printf("%s", placement::explain(p, *g, *c).c_str());
  return ok;
}

}  // namespace loom::cli
