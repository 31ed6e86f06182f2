// graph/location.cpp: rendering a location as FILE:LINE:COL.
#include "loom/graph/location.hpp"

#include <fmt/format.h>

namespace loom::graph {

std::string location::str() const {
  if (file == nullptr) return "<unknown>";
  if (line <= 0) return *file;
  if (column <= 0) return fmt::format("{}:{}", *file, line);
  return fmt::format("{}:{}:{}", *file, line, column);
}

}  // namespace loom::graph
