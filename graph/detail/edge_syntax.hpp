// graph/edge_syntax.hpp (private): the edge string syntax shared by the YAML loader and the C++ builder:
// `a -> b`, `a.port -> b.port`, chains `a -> b -> c`, and lists `a.tasks -> [x, y]`, `[x, y] -> g`.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace loom::graph {

struct endpoint_text {
  std::string node;
  std::string port;     // empty when not written
  std::size_t offset = 0;  // where the endpoint starts in the text
};

// One side of an arrow: a single endpoint or a bracketed list of them.
using endpoint_group = std::vector<endpoint_text>;

struct edge_syntax_error {
  std::string message;
  std::size_t offset = 0;  // where in the text the problem is
};

// The groups of an edge string, in order (at least two), or the first syntax error.
std::variant<std::vector<endpoint_group>, edge_syntax_error> parse_edge_text(std::string_view text);

// One endpoint, "node" or "node.port", surrounded by optional spaces.
std::variant<endpoint_text, edge_syntax_error> parse_endpoint_text(std::string_view text);

// Whether `name` is a valid node name: [A-Za-z_][A-Za-z0-9_-]*.
bool is_node_name(std::string_view name);

}  // namespace loom::graph
