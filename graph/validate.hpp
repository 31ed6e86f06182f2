// graph/validate.hpp: one function that checks a graph, whatever made it (YAML or builder), against the
// kind catalog: kinds, ports, params (types, ranges, required, unknown), edges to missing nodes,
// duplicate names, unconnected inputs, cycles, replicas and restart counts. Every error goes to `diags`.
#pragma once

#include "loom/graph/diagnostics.hpp"
#include "loom/graph/graph.hpp"
#include "loom/graph/kind_spec.hpp"

namespace loom::graph {

void validate(const graph& g, const kind_catalog& catalog, diagnostics& diags);

// Fills defaulted params in each node from its kind's spec (after a successful validate()), and resolves
// relative path params (kind_spec: param_spec::is_path) against g.base_dir, the graph file's folder.
void apply_defaults(graph& g, const kind_catalog& catalog);

// Applies `--set node.param=value` overrides; an unknown node is an error in `diags` with a hint.
void apply_override(graph& g, std::string_view assignment, diagnostics& diags);

}  // namespace loom::graph
