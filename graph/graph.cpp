// graph/graph.cpp: lookups and location-blind equality of the graph model.
#include "loom/graph/graph.hpp"

namespace loom::graph {

const location& node::field_where(const std::string& field) const {
  auto it = fields.find(field);
  return it != fields.end() && it->second.known() ? it->second : where;
}

bool operator==(const node& a, const node& b) {
  return a.name == b.name && a.kind == b.kind && a.params == b.params && a.res == b.res && a.place == b.place &&
         a.colocate == b.colocate && a.spread == b.spread && a.spread_strict == b.spread_strict &&
         a.replicas == b.replicas &&
         a.restarts == b.restarts && a.replace == b.replace && a.tools == b.tools;
}

const node* graph::find(std::string_view name) const {
  for (const auto& n : nodes)
    if (n.name == name) return &n;
  return nullptr;
}

node* graph::find(std::string_view name) {
  for (auto& n : nodes)
    if (n.name == name) return &n;
  return nullptr;
}

bool operator==(const graph& a, const graph& b) {
  return a.name == b.name && a.description == b.description && a.nodes == b.nodes && a.edges == b.edges &&
         a.default_capacity == b.default_capacity;
}

}  // namespace loom::graph
