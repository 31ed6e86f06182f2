// graph/export.hpp: renders a graph as Graphviz DOT or a Mermaid flowchart (`loom graph FILE --format`).
#pragma once

#include <string>

#include "graph/graph.hpp"

namespace loom::graph {

std::string to_dot(const graph& g);
std::string to_mermaid(const graph& g);

}  // namespace loom::graph
