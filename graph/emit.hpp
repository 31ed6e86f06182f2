// graph/emit.hpp: writes a graph back as a graph file (YAML), every field as the loader reads it. The
// driver of a distributed run sends this to its workers, so each works from the graph as validated, with
// --set overrides and defaults applied. load_graph_text(to_yaml(g)) == g.
#pragma once

#include <string>

#include "loom/graph/graph.hpp"

namespace loom::graph {

std::string to_yaml(const graph& g);

}  // namespace loom::graph
