// graph/validate_edges.cpp: checking a graph's edges: that their nodes and ports exist (resolving default
// ports), that no edge repeats, that every input is fed, and that the graph has no cycle.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <map>
#include <set>
#include <tuple>

#include "loom/graph/detail/validate_parts.hpp"

namespace loom::graph {

namespace {

enum class side { from, to };

struct resolved_edge {
  const edge* e;
  std::size_t from, to;  // node indices
  std::string from_port, to_port;
};

std::vector<std::string> port_names(const std::vector<port_spec>& ports) {
  std::vector<std::string> names;
  for (const auto& p : ports) names.push_back(p.name);
  return names;
}

// The port an endpoint names, or the kind's default for that side (`out`/`in`, or the only port).
std::optional<std::string> resolve_port(const node& n, const kind_spec& spec, const port_ref& ref, side s,
                                        diagnostics& diags) {
  auto ports = s == side::from ? spec.output_ports(n.params) : spec.inputs;
  auto names = port_names(ports);
  const char* dir = s == side::from ? "output" : "input";
  const location& where = ref.where.known() ? ref.where : n.where;
  if (names.empty()) {
    diags.error(where, fmt::format("node {} has no {} ports, so an edge cannot {} it", describe(n), dir,
                                   s == side::from ? "start at" : "end at"),
                s == side::from ? "a sink only receives" : "a source only sends");
    return std::nullopt;
  }
  if (!ref.port.empty()) {
    if (std::find(names.begin(), names.end(), ref.port) != names.end()) return ref.port;
    std::string near = closest(ref.port, names);
    diags.error(where, fmt::format("node {} has no {} port `{}`; its {}s: {}", describe(n), dir, ref.port, dir,
                                   fmt::join(names, ", ")),
                near.empty() ? std::string() : fmt::format("did you mean `{}.{}`?", n.name, near));
    return std::nullopt;
  }
  std::string preferred = s == side::from ? "out" : "in";
  if (std::find(names.begin(), names.end(), preferred) != names.end()) return preferred;
  if (names.size() == 1) return names.front();
  diags.error(where, fmt::format("node {} has several {}s; name one: {}", describe(n), dir, fmt::join(names, ", ")),
              fmt::format("write `{}.{}`", n.name, names.front()));
  return std::nullopt;
}

using node_index = std::map<std::string, std::size_t, std::less<>>;

node_index index_nodes(const graph& g) {
  node_index index;
  for (std::size_t i = 0; i < g.nodes.size(); ++i) index.emplace(g.nodes[i].name, i);
  return index;
}

std::optional<std::size_t> find_node(const graph& g, const node_index& index, const port_ref& ref, const edge& e,
                                     diagnostics& diags) {
  if (auto it = index.find(ref.node); it != index.end()) return it->second;
  diags.error(ref.where.known() ? ref.where : e.where,
              fmt::format("edge `{} -> {}` names node `{}`, which is not in the graph", e.from.str(), e.to.str(),
                          ref.node),
              suggest(ref.node, node_names(g)));
  return std::nullopt;
}

std::vector<resolved_edge> resolve_edges(const graph& g, const kind_catalog& catalog, diagnostics& diags) {
  std::vector<resolved_edge> out;
  node_index index = index_nodes(g);
  for (const auto& e : g.edges) {
    if (e.capacity && *e.capacity < 1)
      diags.error(e.where, fmt::format("edge capacity must be at least 1, found {}", *e.capacity));
    auto from = find_node(g, index, e.from, e, diags);
    auto to = find_node(g, index, e.to, e, diags);
    if (!from || !to) continue;
    const kind_spec* from_kind = catalog.find_kind(g.nodes[*from].kind);
    const kind_spec* to_kind = catalog.find_kind(g.nodes[*to].kind);
    std::optional<std::string> from_port = e.from.port, to_port = e.to.port;
    if (from_kind) from_port = resolve_port(g.nodes[*from], *from_kind, e.from, side::from, diags);
    if (to_kind) to_port = resolve_port(g.nodes[*to], *to_kind, e.to, side::to, diags);
    if (from_port && to_port) out.push_back({&e, *from, *to, *from_port, *to_port});
  }
  return out;
}

void check_duplicates(const std::vector<resolved_edge>& edges, const graph& g, diagnostics& diags) {
  std::map<std::tuple<std::size_t, std::string, std::size_t, std::string>, const edge*> seen;
  for (const auto& r : edges) {
    auto [first, inserted] = seen.emplace(std::tuple{r.from, r.from_port, r.to, r.to_port}, r.e);
    if (!inserted)
      diags.error(r.e->where, fmt::format("duplicate edge `{}.{} -> {}.{}`", g.nodes[r.from].name, r.from_port,
                                          g.nodes[r.to].name, r.to_port),
                  fmt::format("the same edge is at {}", first->second->where.str()));
  }
}

void check_connected(const graph& g, const std::vector<resolved_edge>& edges, const kind_catalog& catalog,
                     diagnostics& diags) {
  // An edge whose port was wrong still connects its nodes: one error about it is enough.
  node_index index = index_nodes(g);
  std::vector<std::set<std::string>> used(g.nodes.size());  // the output ports edges leave from
  for (const auto& r : edges) used[r.from].insert(r.from_port);
  std::vector<bool> has_in(g.nodes.size()), has_out(g.nodes.size()), is_tool(g.nodes.size());
  auto mark = [&](std::vector<bool>& flags, const std::string& name) {
    if (auto it = index.find(name); it != index.end()) flags[it->second] = true;
  };
  for (const auto& e : g.edges) {
    mark(has_out, e.from.node);
    mark(has_in, e.to.node);
  }
  for (const auto& n : g.nodes)
    for (const auto& t : n.tools) mark(is_tool, t);
  for (std::size_t i = 0; i < g.nodes.size(); ++i) {
    const node& n = g.nodes[i];
    const kind_spec* spec = catalog.find_kind(n.kind);
    if (spec == nullptr) continue;
    if (!spec->inputs.empty() && !has_in[i] && !is_tool[i])
      diags.error(n.where, fmt::format("node {} has no input edge; its kind needs one on: {}", describe(n),
                                       fmt::join(port_names(spec->inputs), ", ")),
                  fmt::format("add an edge such as `- SOURCE -> {}`", n.name));
    auto outputs = spec->output_ports(n.params);
    if (!outputs.empty() && !has_out[i] && !is_tool[i])
      diags.warning(n.where, fmt::format("node {} has no output edge; what it emits goes nowhere", describe(n)));
    for (const auto& p : outputs) {
      if (p.unconnected == if_unconnected::ignore || used[i].contains(p.name)) continue;
      auto hint = fmt::format("connect `{}.{}` (to a sink.file to keep such values){}", n.name, p.name,
                              p.hint.empty() ? "" : "; or " + p.hint);
      if (p.unconnected == if_unconnected::warn)
        diags.warning(n.where,
                      fmt::format("node {}: output `{}` ({}) is not connected, so the first value sent there "
                                  "fails the run",
                                  describe(n), p.name, p.doc),
                      hint);
      else
        diags.error(n.where,
                    fmt::format("node {}: output `{}` ({}) is not connected, and values are sure to be sent "
                                "there: the run would fail at the first",
                                describe(n), p.name, p.doc),
                    hint);
    }
  }
}

// Depth-first search without recursion (graphs may be long chains); each back edge closes a cycle.
void check_cycles(const graph& g, const std::vector<resolved_edge>& edges, diagnostics& diags) {
  std::vector<std::vector<const resolved_edge*>> out(g.nodes.size());
  for (const auto& r : edges) out[r.from].push_back(&r);
  enum color { white, grey, black };
  std::vector<color> state(g.nodes.size(), white);
  for (std::size_t root = 0; root < g.nodes.size(); ++root) {
    if (state[root] != white) continue;
    std::vector<std::pair<std::size_t, std::size_t>> stack{{root, 0}};  // node, next edge index
    state[root] = grey;
    while (!stack.empty()) {
      auto& [u, next] = stack.back();
      if (next == out[u].size()) {
        state[u] = black;
        stack.pop_back();
        continue;
      }
      const resolved_edge* r = out[u][next++];
      if (state[r->to] == white) {
        state[r->to] = grey;
        stack.emplace_back(r->to, 0);
      } else if (state[r->to] == grey) {
        std::vector<std::string> path;
        bool on = false;
        for (const auto& [v, unused] : stack) {
          on = on || v == r->to;
          if (on) path.push_back(g.nodes[v].name);
        }
        path.push_back(g.nodes[r->to].name);
        diags.error(r->e->where, fmt::format("cycle: {}", fmt::join(path, " -> ")),
                    "loom graphs are acyclic; an agent's loop over tools uses `tools:`, not edges");
      }
    }
  }
}

}  // namespace

void validate_edges(const graph& g, const kind_catalog& catalog, diagnostics& diags) {
  auto edges = resolve_edges(g, catalog, diags);
  check_duplicates(edges, g, diags);
  check_connected(g, edges, catalog, diags);
  check_cycles(g, edges, diags);
}

}  // namespace loom::graph
