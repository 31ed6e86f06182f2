// graph/load_parts.hpp (private): the sections of a graph file, each read by its own file of the loader.
#pragma once

#include "loom/graph/graph.hpp"
#include "loom/graph/detail/yaml_reader.hpp"

namespace loom::graph {

// `nodes:`: a map of node name -> node fields (load_nodes.cpp).
void read_nodes(yaml_reader& r, const yaml_entry& nodes, graph& g);

// `edges:`: a list of edge strings and long-form edge maps (load_edges.cpp).
void read_edges(yaml_reader& r, const yaml_entry& edges, graph& g);

}  // namespace loom::graph
