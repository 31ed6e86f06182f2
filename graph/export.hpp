// graph/export.hpp: renders a graph as Graphviz DOT or a Mermaid flowchart (`loom graph FILE --format`).
#pragma once

#include <string>
#include <string_view>

#include "loom/graph/graph.hpp"

namespace loom::graph {

std::string to_dot(const graph& g);
// `s` as a DOT quoted string ("..." with quotes, backslashes and newlines escaped).
std::string dot_quote(std::string_view s);
std::string to_mermaid(const graph& g);

}  // namespace loom::graph
