// runtime/observe/ui/layout.hpp: the live view's drawing of a graph. The DOT text gives every node, edge
// and host an id the page finds in the SVG (`n<i>`: graph.nodes[i], `e<i>`: graph.edges[i], `h<i>`: the
// i-th host group); Graphviz (libgvc, the `dot` layout) turns it into SVG on the server.
#pragma once

#include <map>
#include <string>

#include "loom/graph/graph.hpp"

namespace loom::observe::ui {

// Node name -> the host it runs on (a cluster run: the host of its instance 0); empty: one process.
using host_map = std::map<std::string, std::string>;

// The DOT the live view lays out: each node a box with its name, kind and two lines the page fills with
// its counts; nodes of one host inside `subgraph cluster_<i>` labelled with the host.
std::string ui_dot(const graph::graph& g, const host_map& hosts = {});

// Lays `dot` out with Graphviz's `dot` engine and renders SVG. Throws std::runtime_error when Graphviz
// cannot read the text or has no SVG renderer. Serialised: Graphviz keeps global state.
std::string render_svg(const std::string& dot);

}  // namespace loom::observe::ui
