// graph/load.hpp: the YAML loader. Reads the graph format of docs/graph-format.md into a graph::graph,
// keeping every value's location, and reports every problem of the file (syntax, unknown keys, malformed
// edges, duplicate nodes) into `diagnostics` in one pass. It checks shape, not meaning: kinds, ports and
// params are checked by validate(), which needs the kind catalog.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "loom/graph/diagnostics.hpp"
#include "loom/graph/graph.hpp"

namespace loom::graph {

// Parses `text` as the graph file `file` (used in locations only). Returns the graph when it could be
// read well enough to validate, even if `diags` holds errors; nullopt when nothing usable was read.
std::optional<graph> load_graph_text(std::string_view text, const std::string& file, diagnostics& diags);

// Reads and parses a file. An unreadable, empty or binary file is an error in `diags`, never an exception.
std::optional<graph> load_graph_file(const std::string& path, diagnostics& diags);

// Parses one scalar written as in YAML (`10`, `1.5`, `true`, `"x"`, `[1, 2]`): used by `--set node.p=v`.
config parse_scalar(std::string_view text);

}  // namespace loom::graph
