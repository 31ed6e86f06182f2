// graph/location.hpp: where a value came from (a YAML file's line and column, or a C++ builder call).
// Every node, edge, param and field of a graph carries one, so every error can point at its source.
#pragma once

#include <memory>
#include <string>

namespace loom::graph {

struct location {
  std::shared_ptr<const std::string> file;  // shared by every location of one file
  int line = 0;                             // 1-based; 0 when unknown
  int column = 0;                           // 1-based; 0 when unknown

  bool known() const { return file != nullptr && line > 0; }
  // "FILE:LINE:COL" (or "FILE:LINE", "FILE", "<unknown>" as far as known).
  std::string str() const;
};

}  // namespace loom::graph
