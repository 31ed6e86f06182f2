// graph/load_nodes.cpp: reading the `nodes:` section of a graph file: each node's kind, params,
// resources, placement and options, keeping where each was written.
#include <fmt/format.h>

#include <limits>
#include <map>

#include "loom/graph/detail/edge_syntax.hpp"
#include "loom/graph/detail/load_parts.hpp"

namespace loom::graph {

namespace {

const std::vector<std::string> node_fields{"kind",   "params",   "resources", "placement", "colocate",
                                           "spread", "replicas", "restarts",  "tools",
                                           "recover"};

std::string in_node(const node& n) { return fmt::format(" in node `{}`", n.name); }

void read_resources(yaml_reader& r, const yaml_entry& e, node& n) {
  n.res.where = e.value_at;
  if (!e.value.IsMap()) {
    r.diags().error(e.value_at, fmt::format("`resources` of node `{}` must be a map: "
                                            "{{cpus: N, memory: SIZE, gpus: N, gpu_memory: SIZE}}", n.name));
    return;
  }
  for (const auto& f : r.entries(e.value, {"cpus", "memory", "gpus", "gpu_memory"}, "resource", in_node(n))) {
    std::string what = fmt::format("`resources.{}` of node `{}`", f.key, n.name);
    if (f.key == "cpus") {
      if (auto v = r.number_of(f, what)) n.res.cpus = *v;
    } else if (f.key == "gpus") {
      auto v = r.int_of(f, what);
      if (v && (*v < 0 || *v > 1'000'000)) r.diags().error(f.value_at, fmt::format("{} must be >= 0, found {}", what, *v));
      else if (v) n.res.gpus = static_cast<int>(*v);
    } else if (auto v = r.size_of(f, what)) {
      (f.key == "memory" ? n.res.memory : n.res.gpu_memory) = *v;
    }
  }
}

void read_placement(yaml_reader& r, const yaml_entry& e, node& n) {
  n.place.where = e.value_at;
  if (!e.value.IsMap()) {
    r.diags().error(e.value_at, fmt::format("`placement` of node `{}` must be a map: {{host: NAME, labels: {{K: V}}}}",
                                            n.name));
    return;
  }
  for (const auto& f : r.entries(e.value, {"host", "labels"}, "placement field", in_node(n))) {
    if (f.key == "host") {
      if (auto v = r.string_of(f, fmt::format("`placement.host` of node `{}`", n.name))) n.place.host = *v;
      continue;
    }
    if (!f.value.IsMap()) {
      r.diags().error(f.value_at, fmt::format("`placement.labels` of node `{}` must be a map of label: value", n.name));
      continue;
    }
    for (const auto& l : r.entries(f.value, {}, "label", in_node(n)))
      if (auto v = r.string_of(l, fmt::format("label `{}` of node `{}`", l.key, n.name))) n.place.labels.emplace_back(l.key, *v);
  }
}

// `spread: G`, or `spread: {group: G, strict: true}` (the group holds when a replica moves off a lost host).
void read_spread(yaml_reader& r, const yaml_entry& e, node& n) {
  std::string what = fmt::format("`spread` of node `{}`", n.name);
  if (!e.value.IsMap()) {
    if (auto v = r.string_of(e, what)) n.spread = *v;
    return;
  }
  bool has_group = false;
  for (const auto& f : r.entries(e.value, {"group", "strict"}, "spread field", in_node(n))) {
    if (f.key == "group") {
      has_group = true;
      if (auto v = r.string_of(f, fmt::format("`spread.group` of node `{}`", n.name))) n.spread = *v;
    } else if (auto v = r.bool_of(f, fmt::format("`spread.strict` of node `{}`", n.name))) {
      n.spread_strict = *v;
    }
  }
  if (!has_group)
    r.diags().error(e.value_at, fmt::format("{} has no `group`", what),
                    "for example:  spread: {group: workers, strict: true}");
}

std::optional<int> small_int(yaml_reader& r, const yaml_entry& e, const std::string& what) {
  auto v = r.int_of(e, what);
  if (!v) return std::nullopt;
  if (*v < std::numeric_limits<int>::min() || *v > std::numeric_limits<int>::max()) {
    r.diags().error(e.value_at, fmt::format("{} is too large: {}", what, *v));
    return std::nullopt;
  }
  return static_cast<int>(*v);
}

std::vector<std::string> names(yaml_reader& r, const yaml_entry& e, const std::string& what) {
  std::vector<std::string> out;
  if (auto list = r.names_of(e, what))
    for (auto& [name, where] : *list) out.push_back(std::move(name));
  return out;
}

void read_field(yaml_reader& r, const yaml_entry& f, node& n) {
  std::string what = fmt::format("`{}` of node `{}`", f.key, n.name);
  if (f.key == "kind") {
    if (auto v = r.string_of(f, what)) n.kind = *v;
  } else if (f.key == "params") {
    if (f.value.IsNull()) return;
    if (!f.value.IsMap()) {
      r.diags().error(f.value_at, fmt::format("{} must be a map of param: value", what));
      return;
    }
    if (auto v = r.to_config(f.value, f.value_at)) n.params = std::move(*v);
  } else if (f.key == "resources") {
    read_resources(r, f, n);
  } else if (f.key == "placement") {
    read_placement(r, f, n);
  } else if (f.key == "colocate") {
    n.colocate = names(r, f, what);
  } else if (f.key == "tools") {
    n.tools = names(r, f, what);
  } else if (f.key == "spread") {
    read_spread(r, f, n);
  } else if (f.key == "replicas") {
    if (auto v = small_int(r, f, what)) n.replicas = *v;
  } else if (f.key == "restarts") {
    if (auto v = small_int(r, f, what)) n.restarts = *v;
  } else if (f.key == "recover") {
    if (auto v = r.string_of(f, what)) {
      if (*v == "replace" || *v == "fail")
        n.replace = *v == "replace";
      else
        r.diags().error(f.value_at, fmt::format("{} must be `fail` or `replace`, found `{}`", what, *v),
                        "`replace`: a stateless node moves to a surviving host when its host is lost");
    }
  }
}

void read_node(yaml_reader& r, const yaml_entry& e, node& n) {
  if (e.value.IsNull() || !e.value.IsMap()) {
    r.diags().error(e.value_at, fmt::format("node `{}` must be a map with at least a `kind`", n.name),
                    "for example:  " + n.name + ": {kind: flow.forward}");
    return;
  }
  bool has_kind = false;
  for (const auto& f : r.entries(e.value, node_fields, "field", in_node(n))) {
    n.fields[f.key] = f.value_at;
    has_kind = has_kind || f.key == "kind";
    read_field(r, f, n);
  }
  if (!has_kind) r.diags().error(n.where, fmt::format("node `{}` has no `kind`", n.name), "add `kind: FAMILY.NAME`");
}

}  // namespace

void read_nodes(yaml_reader& r, const yaml_entry& nodes, graph& g) {
  if (nodes.value.IsNull()) return;
  if (!nodes.value.IsMap()) {
    r.diags().error(nodes.value_at, "`nodes` must be a map of node name -> node");
    return;
  }
  std::map<std::string, int> first_line;
  for (auto it = nodes.value.begin(); it != nodes.value.end(); ++it) {
    yaml_entry e{it->first.IsScalar() ? it->first.Scalar() : "", it->second, r.at(it->first), r.at(it->second)};
    if (e.value.IsNull() && e.value_at.line != e.key_at.line) e.value_at = e.key_at;
    if (!is_node_name(e.key)) {
      r.diags().error(e.key_at, fmt::format("`{}` is not a valid node name", e.key),
                      "a node name is a letter or `_`, then letters, digits, `_` or `-` (no dots: they separate ports)");
      continue;
    }
    if (auto [first, inserted] = first_line.emplace(e.key, e.key_at.line); !inserted) {
      r.diags().error(e.key_at, fmt::format("duplicate node name `{}`", e.key),
                      fmt::format("`{}` is first defined at line {}", e.key, first->second));
      continue;
    }
    node n;
    n.name = e.key;
    n.where = e.key_at;
    read_node(r, e, n);
    g.nodes.push_back(std::move(n));
  }
}

}  // namespace loom::graph
