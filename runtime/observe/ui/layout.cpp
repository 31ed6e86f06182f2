// runtime/observe/ui/layout.cpp: DOT with ids for the live view, laid out to SVG by libgvc.
#include "loom/runtime/observe/ui/layout.hpp"

#include "loom/graph/export.hpp"

#include <fmt/format.h>
#include <graphviz/cgraph.h>
#include <graphviz/gvc.h>

#include <algorithm>
#include <mutex>
#include <stdexcept>
#include <vector>

namespace loom::observe::ui {
namespace {

std::string quote(std::string_view s) { return graph::dot_quote(s); }

// Wide enough for the counts the page writes in: Graphviz sizes the box from the label it is given.
constexpr const char* counts_line = "in 0000000000 out 0000000000";
constexpr const char* rate_line = "000000.0/s  queue 000000";

std::string edge_label(const graph::graph& g, const graph::edge& e) {
  return fmt::format("{}→{} ({})", e.from.port.empty() ? "out" : e.from.port, e.to.port.empty() ? "in" : e.to.port,
                     g.capacity_of(e));
}

}  // namespace

std::string ui_dot(const graph::graph& g, const host_map& hosts) {
  std::string out = fmt::format(
      "digraph {} {{\n  rankdir=LR;\n  bgcolor=\"transparent\";\n"
      "  node [shape=box, style=\"rounded,filled\", fillcolor=\"#ffffff\", fontname=\"Helvetica\", fontsize=11];\n"
      "  edge [fontname=\"Helvetica\", fontsize=9];\n",
      quote(g.name));
  auto node_line = [&](std::size_t i) {
    const auto& n = g.nodes[i];
    auto title = n.replicas > 1 ? fmt::format("{} x{}", n.name, n.replicas) : n.name;
    return fmt::format("  n{} [id=\"n{}\", label={}, tooltip={}];\n", i, i,
                       quote(fmt::format("{}\n{}\n{}\n{}", title, n.kind, counts_line, rate_line)), quote(n.name));
  };
  // Hosts in the order they first appear among the nodes, so the ids are stable for a graph and a plan.
  std::vector<std::string> host_order;
  for (const auto& n : g.nodes) {
    auto it = hosts.find(n.name);
    if (it == hosts.end()) continue;
    if (std::find(host_order.begin(), host_order.end(), it->second) == host_order.end())
      host_order.push_back(it->second);
  }
  for (std::size_t h = 0; h < host_order.size(); ++h) {
    out += fmt::format("  subgraph cluster_{} {{\n    id=\"h{}\";\n    label={};\n    style=\"dashed\";\n"
                       "    color=\"#888888\";\n    fontname=\"Helvetica\";\n",
                       h, h, quote("host " + host_order[h]));
    for (std::size_t i = 0; i < g.nodes.size(); ++i) {
      auto it = hosts.find(g.nodes[i].name);
      if (it != hosts.end() && it->second == host_order[h]) out += "  " + node_line(i);
    }
    out += "  }\n";
  }
  for (std::size_t i = 0; i < g.nodes.size(); ++i)
    if (!hosts.contains(g.nodes[i].name)) out += node_line(i);
  std::vector<std::size_t> index(g.edges.size());
  for (std::size_t i = 0; i < g.edges.size(); ++i) {
    const auto& e = g.edges[i];
    auto from = std::find_if(g.nodes.begin(), g.nodes.end(), [&](const auto& n) { return n.name == e.from.node; });
    auto to = std::find_if(g.nodes.begin(), g.nodes.end(), [&](const auto& n) { return n.name == e.to.node; });
    if (from == g.nodes.end() || to == g.nodes.end())
      throw std::invalid_argument(fmt::format("edge {} -> {} names a node that is not in the graph", e.from.str(),
                                              e.to.str()));
    out += fmt::format("  n{} -> n{} [id=\"e{}\", label={}];\n", from - g.nodes.begin(), to - g.nodes.begin(), i,
                       quote(edge_label(g, e)));
  }
  return out + "}\n";
}

std::string render_svg(const std::string& dot) {
  static std::mutex graphviz;  // Graphviz keeps global state (its error buffer, the current graph)
  std::lock_guard lock{graphviz};
  // One context for the process, never freed: Graphviz's pango plugin remembers the last font name it saw in
  // a static pointer into the context's font table, so a second context would compare against freed memory
  // (ASan finds it with libgvc 2.42/2.43). A context reachable from this static is not a leak.
  static GVC_t* gvc = gvContext();
  if (!gvc) throw std::runtime_error("Graphviz: cannot create a context");
  Agraph_t* g = agmemread(dot.c_str());
  if (!g) throw std::runtime_error("Graphviz cannot read the graph's DOT text");
  std::string svg;
  std::string error;
  if (gvLayout(gvc, g, "dot") != 0) {
    error = "Graphviz: the `dot` layout failed (is libgvc's dot plugin installed?)";
  } else {
    char* data = nullptr;
    unsigned int length = 0;
    if (gvRenderData(gvc, g, "svg", &data, &length) != 0 || !data)
      error = "Graphviz: no SVG renderer (is libgvc's core plugin installed?)";
    else
      svg.assign(data, length);
    if (data) gvFreeRenderData(data);
    gvFreeLayout(gvc, g);
  }
  agclose(g);
  if (!error.empty()) throw std::runtime_error(error);
  return svg;
}

}  // namespace loom::observe::ui
