// graph/yaml_document.hpp (private): the first steps of every YAML loader (graph files, cluster files):
// reading the file, checking it is text and not empty, pre-scanning it, parsing it with yaml-cpp and
// turning syntax errors into located diagnostics. What the top level holds is the caller's business.
#pragma once

#include <yaml-cpp/yaml.h>

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "loom/graph/diagnostics.hpp"

namespace loom::graph {

struct yaml_document {
  std::shared_ptr<const std::string> file;  // shared by every location read from it
  YAML::Node root;                          // a map
  std::vector<int> quoted_lines;            // lines rewritten by quote_list_edges(), when asked for
};

struct yaml_document_options {
  std::string what = "graph";  // "the top level of a WHAT file must be a map ..."
  std::string empty_hint;      // the hint for an empty file
  std::string map_hint;        // what the top-level map holds, e.g. "with `nodes:` (and `graph:`, ...)"
  bool quote_list_edges = false;  // rewrite `- [x, y] -> g` edge items first (graph files)
};

// Parses `text` as the file `file` (used in locations only). nullopt after reporting why nothing usable
// could be read: binary or empty text, tabs in indentation, nesting too deep, a YAML syntax error, or a
// top level that is not a map.
std::optional<yaml_document> parse_yaml_document(std::string_view text, const std::string& file, diagnostics& diags,
                                                 const yaml_document_options& options);

// The whole content of `path`; nullopt after reporting why it cannot be read (missing, a directory, ...).
std::optional<std::string> read_text_file(const std::string& path, diagnostics& diags);

}  // namespace loom::graph
