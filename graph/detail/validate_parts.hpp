// graph/validate_parts.hpp (private): the checks validate() runs, split by what they look at.
#pragma once

#include <string>
#include <vector>

#include "loom/graph/diagnostics.hpp"
#include "loom/graph/graph.hpp"
#include "loom/graph/kind_spec.hpp"

namespace loom::graph {

// "`name` (kind)" for messages about a node.
std::string describe(const node& n);
std::vector<std::string> node_names(const graph& g);

// Edges: endpoints, ports, duplicates, capacities, unconnected inputs and outputs, cycles (validate_edges.cpp).
void validate_edges(const graph& g, const kind_catalog& catalog, diagnostics& diags);

}  // namespace loom::graph
