// graph/load_edges.cpp: reading the `edges:` section: edge strings (`a -> b`, chains, lists) and long-form
// maps ({from, to, capacity}), each endpoint located at its text.
#include <fmt/format.h>

#include "loom/graph/detail/edge_syntax.hpp"
#include "loom/graph/detail/load_parts.hpp"

namespace loom::graph {

namespace {

// Where offset `offset` of a scalar's text is in the file: exact for a one-line scalar, else the scalar.
location text_at(const yaml_reader& r, const YAML::Node& scalar, std::size_t offset) {
  if (scalar.Scalar().find('\n') != std::string::npos) return r.at(scalar);
  int shift = static_cast<int>(offset) + r.text_shift(scalar);
  return r.at(scalar.Mark(), shift);
}

port_ref to_port(const yaml_reader& r, const YAML::Node& scalar, const endpoint_text& e) {
  return port_ref{e.node, e.port, text_at(r, scalar, e.offset)};
}

void read_edge_string(yaml_reader& r, const YAML::Node& item, graph& g) {
  auto parsed = parse_edge_text(item.Scalar());
  if (auto* error = std::get_if<edge_syntax_error>(&parsed)) {
    r.diags().error(text_at(r, item, error->offset), fmt::format("bad edge `{}`: {}", item.Scalar(), error->message),
                    "write `a -> b`, `a.port -> b.port`, `a -> b -> c` or `a.out -> [x, y]`");
    return;
  }
  const auto& groups = std::get<std::vector<endpoint_group>>(parsed);
  for (std::size_t i = 0; i + 1 < groups.size(); ++i)
    for (const auto& from : groups[i])
      for (const auto& to : groups[i + 1]) {
        edge e{to_port(r, item, from), to_port(r, item, to), std::nullopt, {}};
        e.where = e.from.where;
        g.edges.push_back(std::move(e));
      }
}

std::optional<port_ref> read_endpoint(yaml_reader& r, const yaml_entry& f) {
  if (!f.value.IsScalar()) {
    r.diags().error(f.value_at, fmt::format("`{}` of an edge must be `node` or `node.port`", f.key));
    return std::nullopt;
  }
  auto parsed = parse_endpoint_text(f.value.Scalar());
  if (auto* error = std::get_if<edge_syntax_error>(&parsed)) {
    r.diags().error(text_at(r, f.value, error->offset),
                    fmt::format("bad `{}` endpoint `{}`: {}", f.key, f.value.Scalar(), error->message),
                    "write `node` or `node.port`");
    return std::nullopt;
  }
  return to_port(r, f.value, std::get<endpoint_text>(parsed));
}

void read_edge_map(yaml_reader& r, const YAML::Node& item, graph& g) {
  edge e;
  e.where = r.at(item);
  bool ok = true, has_from = false, has_to = false;
  for (const auto& f : r.entries(item, {"from", "to", "capacity"}, "edge field", "")) {
    if (f.key == "capacity") {
      auto v = r.int_of(f, "edge `capacity`");
      if (v && *v < 1) r.diags().error(f.value_at, fmt::format("edge `capacity` must be at least 1, found {}", *v));
      if (v && *v >= 1) e.capacity = *v;
      continue;
    }
    auto p = read_endpoint(r, f);
    ok = ok && p.has_value();
    if (p) (f.key == "from" ? e.from : e.to) = std::move(*p);
    (f.key == "from" ? has_from : has_to) = true;
  }
  if (!has_from || !has_to) {
    r.diags().error(e.where, fmt::format("an edge map needs both `from` and `to`; `{}` is missing",
                                         has_from ? "to" : "from"),
                    "write {from: a.out, to: b.in}");
    return;
  }
  if (ok) g.edges.push_back(std::move(e));
}

}  // namespace

void read_edges(yaml_reader& r, const yaml_entry& edges, graph& g) {
  if (edges.value.IsNull()) return;
  if (!edges.value.IsSequence()) {
    r.diags().error(edges.value_at, "`edges` must be a list of edges such as `- a -> b`");
    return;
  }
  for (const auto& item : edges.value) {
    if (item.IsScalar()) read_edge_string(r, item, g);
    else if (item.IsMap()) read_edge_map(r, item, g);
    else r.diags().error(r.at(item), "an edge must be a string `a -> b` or a map {from: a, to: b}");
  }
}

}  // namespace loom::graph
