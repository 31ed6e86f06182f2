// graph/export.cpp: Graphviz DOT and Mermaid renderings of a graph.
#include "loom/graph/export.hpp"

#include <fmt/format.h>

namespace loom::graph {

std::string dot_quote(std::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
  return out + "\"";
}

namespace {

// An edge's label: `out→in`, plus the capacity when the edge sets one.
std::string edge_label(const edge& e, std::string_view arrow) {
  std::string label = fmt::format("{}{}{}", e.from.port.empty() ? "out" : e.from.port, arrow,
                                  e.to.port.empty() ? "in" : e.to.port);
  if (e.capacity) label += fmt::format(" (capacity {})", *e.capacity);
  return label;
}

// Mermaid ids: letters, digits and `_` only, distinct for distinct names (`_` -> `__`, `-` -> `_d`, others
// `_xHH`); a prefix keeps them clear of Mermaid keywords such as `end`.
std::string mermaid_id(std::string_view name) {
  std::string id = "n_";
  for (char c : name) {
    if (std::isalnum(static_cast<unsigned char>(c))) id += c;
    else if (c == '_') id += "__";
    else if (c == '-') id += "_d";
    else id += fmt::format("_x{:02X}", static_cast<unsigned char>(c));
  }
  return id;
}

// Mermaid label text: inside double quotes, `"` is written as the entity `#quot;`.
std::string mermaid_text(std::string_view s) {
  std::string out;
  for (char c : s) {
    if (c == '"') out += "#quot;";
    else if (c == '|') out += "#124;";
    else if (c == '\n') out += "<br/>";
    else out += c;
  }
  return out;
}

}  // namespace

std::string to_dot(const graph& g) {
  std::string out = fmt::format("digraph {} {{\n  rankdir=LR;\n  node [shape=box];\n", dot_quote(g.name));
  for (const auto& n : g.nodes)
    out += fmt::format("  {} [label={}];\n", dot_quote(n.name), dot_quote(n.name + "\n" + n.kind));
  for (const auto& e : g.edges)
    out += fmt::format("  {} -> {} [label={}];\n", dot_quote(e.from.node), dot_quote(e.to.node),
                       dot_quote(edge_label(e, "→")));
  return out + "}\n";
}

std::string to_mermaid(const graph& g) {
  std::string out = "flowchart LR\n";
  for (const auto& n : g.nodes)
    out += fmt::format("  {}[\"{}<br/>{}\"]\n", mermaid_id(n.name), mermaid_text(n.name), mermaid_text(n.kind));
  for (const auto& e : g.edges)
    out += fmt::format("  {} -->|\"{}\"| {}\n", mermaid_id(e.from.node), mermaid_text(edge_label(e, "→")),
                       mermaid_id(e.to.node));
  return out;
}

}  // namespace loom::graph
