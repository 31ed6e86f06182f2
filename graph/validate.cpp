// graph/validate.cpp: checking each node of a graph against its kind (kind, params, counts, references),
// filling defaults, and applying `--set` overrides. Edge checks are in validate_edges.cpp.
#include "loom/graph/validate.hpp"

#include <filesystem>
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <map>

#include "loom/graph/detail/edge_syntax.hpp"
#include "loom/graph/load.hpp"
#include "loom/graph/detail/validate_parts.hpp"

namespace loom::graph {

std::string describe(const node& n) { return fmt::format("`{}` ({})", n.name, n.kind); }

std::vector<std::string> node_names(const graph& g) {
  std::vector<std::string> names;
  for (const auto& n : g.nodes) names.push_back(n.name);
  return names;
}

namespace {

bool type_matches(param_type t, const config& v) {
  switch (t) {
    case param_type::boolean: return v.is_bool();
    case param_type::integer: return v.is_int();
    case param_type::floating: return v.is_number();
    case param_type::string: return v.is_string();
    case param_type::list: return v.is_list();
    case param_type::map: return v.is_map();
    case param_type::any: return true;
  }
  return false;
}

std::string fmt_bound(double v) {
  if (v == static_cast<double>(static_cast<std::int64_t>(v))) return fmt::format("{}", static_cast<std::int64_t>(v));
  return config(v).str();
}

// "string `ten`", "list `[1, 2]`": the type and the value as written.
std::string found(const config& v) { return fmt::format("{} `{}`", config::type_name(v.kind()), v.is_string() ? v.as_string() : v.str()); }

void check_param_value(const node& n, const param_spec& p, const config& v, const location& where,
                       diagnostics& diags) {
  std::string what = fmt::format("param `{}` of node {}", p.name, describe(n));
  if (!type_matches(p.type, v)) {
    diags.error(where, fmt::format("{} expects {}, found {}", what, param_type_name(p.type), found(v)),
                p.doc.empty() ? std::string() : fmt::format("`{}`: {}", p.name, p.doc));
    return;
  }
  if (v.is_number() && (p.type == param_type::integer || p.type == param_type::floating)) {
    double x = v.as_float();
    if (p.min && x < *p.min)
      diags.error(where, fmt::format("{} must be at least {}, found {}", what, fmt_bound(*p.min), v.str()));
    if (p.max && x > *p.max)
      diags.error(where, fmt::format("{} must be at most {}, found {}", what, fmt_bound(*p.max), v.str()));
  }
  if (v.is_string() && !p.choices.empty() &&
      std::find(p.choices.begin(), p.choices.end(), v.as_string()) == p.choices.end()) {
    std::string near = closest(v.as_string(), p.choices);
    diags.error(where, fmt::format("{} must be one of: {}; found `{}`", what, fmt::join(p.choices, ", "),
                                   v.as_string()),
                near.empty() ? std::string() : fmt::format("did you mean `{}`?", near));
  }
}

void check_params(const node& n, const kind_spec& spec, diagnostics& diags) {
  const location& params_at = n.field_where("params");
  if (!n.params.is_map()) {
    diags.error(params_at, fmt::format("params of node {} must be a map", describe(n)));
    return;
  }
  std::vector<std::string> names;
  for (const auto& p : spec.params) names.push_back(p.name);
  for (const auto& [key, value] : n.params.as_map()) {
    const location& where = value.where().known() ? value.where() : params_at;
    const param_spec* p = spec.find_param(key);
    if (p == nullptr) {
      diags.error(where, fmt::format("unknown param `{}` for node {}", key, describe(n)),
                  names.empty() ? fmt::format("{} takes no params", spec.name) : suggest(key, names));
      continue;
    }
    check_param_value(n, *p, value, where, diags);
  }
  for (const auto& p : spec.params)
    if (p.required && n.params.find(p.name) == nullptr)
      diags.error(params_at, fmt::format("node {} needs param `{}`", describe(n), p.name),
                  p.doc.empty() ? std::string() : fmt::format("`{}` ({}): {}", p.name, param_type_name(p.type), p.doc));
}

void check_references(const graph& g, const node& n, const kind_catalog& catalog, diagnostics& diags) {
  if (n.colocate.empty() && n.tools.empty()) return;
  auto names = node_names(g);
  auto check = [&](const std::vector<std::string>& refs, const std::string& field) {
    for (const auto& ref : refs) {
      if (ref == n.name && field == "colocate")
        diags.error(n.field_where(field), fmt::format("node `{}` lists itself in `colocate`", n.name));
      else if (g.find(ref) == nullptr)
        diags.error(n.field_where(field),
                    fmt::format("`{}` of node `{}` names `{}`, which is not a node", field, n.name, ref),
                    suggest(ref, names));
      else if (field == "tools") {
        const auto* tool = g.find(ref);
        const kind_spec* k = catalog.find_kind(tool->kind);
        if (k != nullptr && !k->call)
          diags.error(n.field_where(field),
                      fmt::format("`tools` of node `{}` names `{}` ({}), which cannot be called: its kind declares "
                                  "no call",
                                  n.name, ref, tool->kind),
                      "tools are kinds like tool.calculator; `loom inspect` shows which kinds declare a call");
      }
    }
  };
  check(n.colocate, "colocate");
  check(n.tools, "tools");
}

// `recover: replace` moves a node's instances to a surviving host with nothing carried over, and replays
// what its producers had not seen acknowledged (docs/cluster.md): only a node with no state across values
// can do that, and its inputs must be numbered by producers that do not move themselves.
void check_replace(const graph& g, const node& n, const kind_spec& spec, diagnostics& diags) {
  auto where = n.field_where("recover");
  if (spec.holds_state(n.params))
    diags.error(where, fmt::format("node `{}` ({}) holds state across values: `recover: replace` would lose it",
                                   n.name, n.kind),
                "only stateless kinds (flow.forward, flow.router, flow.throttle, ...) can move; use `recover: fail`");
  if (spec.call)
    diags.error(where, fmt::format("node `{}` ({}) is a tool: tools cannot move yet (`recover: replace`)", n.name,
                                   n.kind));
  for (const auto& e : g.edges) {
    if (e.to.node != n.name) continue;
    if (const node* m = g.find(e.from.node); m != nullptr && m->replace)
      diags.error(where, fmt::format("node `{}` is fed by `{}`, which has `recover: replace` too: two moving nodes "
                                     "in a row are not supported yet",
                                     n.name, m->name),
                  "give one of them `recover: fail`");
  }
}

void check_node(const graph& g, const node& n, const kind_catalog& catalog, diagnostics& diags) {
  if (n.replicas < 1)
    diags.error(n.field_where("replicas"), fmt::format("`replicas` of node `{}` must be at least 1, found {}",
                                                       n.name, n.replicas));
  if (n.restarts < 0)
    diags.error(n.field_where("restarts"), fmt::format("`restarts` of node `{}` must be at least 0, found {}",
                                                       n.name, n.restarts));
  if (n.res.cpus < 0 || n.res.gpus < 0)
    diags.error(n.field_where("resources"), fmt::format("`resources` of node `{}` must not be negative", n.name));
  check_references(g, n, catalog, diags);
  if (n.kind.empty()) return;  // the loader said so already
  const kind_spec* spec = catalog.find_kind(n.kind);
  if (spec == nullptr) {
    diags.error(n.field_where("kind"), fmt::format("unknown kind `{}` for node `{}`", n.kind, n.name),
                suggest(n.kind, catalog.kind_names()));
    return;
  }
  auto errors = diags.error_count();
  check_params(n, *spec, diags);
  if (spec->check && diags.error_count() == errors) spec->check(g, n, catalog, diags);
  if (n.replace) check_replace(g, n, *spec, diags);
}

}  // namespace

void validate(const graph& g, const kind_catalog& catalog, diagnostics& diags) {
  std::map<std::string, const node*> seen;
  for (const auto& n : g.nodes) {
    if (!is_node_name(n.name))
      diags.error(n.where, fmt::format("`{}` is not a valid node name", n.name),
                  "a node name is a letter or `_`, then letters, digits, `_` or `-`");
    if (auto [first, inserted] = seen.emplace(n.name, &n); !inserted) {
      diags.error(n.where, fmt::format("duplicate node name `{}`", n.name),
                  fmt::format("`{}` is first defined at {}", n.name, first->second->where.str()));
      continue;
    }
    check_node(g, n, catalog, diags);
  }
  if (g.default_capacity < 1)
    diags.error(g.where, fmt::format("`defaults.capacity` must be at least 1, found {}", g.default_capacity));
  validate_edges(g, catalog, diags);
}

void apply_defaults(graph& g, const kind_catalog& catalog) {
  for (auto& n : g.nodes) {
    const kind_spec* spec = catalog.find_kind(n.kind);
    if (spec == nullptr || !n.params.is_map()) continue;
    for (const auto& p : spec->params) {
      if (p.default_value && n.params.find(p.name) == nullptr) n.params.set(p.name, *p.default_value);
      // A relative path resolves against the graph file's folder, so the graph runs the same from any
      // working folder (and a cluster run sends its workers the resolved paths).
      const config* v = n.params.find(p.name);
      if (!p.is_path || g.base_dir.empty() || v == nullptr || !v->is_string() || v->as_string().empty()) continue;
      std::filesystem::path path(v->as_string());
      if (path.is_relative())
        n.params.set(p.name, config((std::filesystem::path(g.base_dir) / path).lexically_normal().string()).at(v->where()));
    }
  }
}

void apply_override(graph& g, std::string_view assignment, diagnostics& diags) {
  location where{std::make_shared<const std::string>("--set"), 0, 0};
  auto eq = assignment.find('=');
  auto dot = assignment.substr(0, eq).find('.');
  if (eq == std::string_view::npos || dot == std::string_view::npos || dot == 0 || dot + 1 == eq) {
    diags.error(where, fmt::format("bad override `{}`", assignment), "write --set NODE.PARAM=VALUE, e.g. src.count=5");
    return;
  }
  std::string node_name(assignment.substr(0, dot));
  std::string param(assignment.substr(dot + 1, eq - dot - 1));
  node* n = g.find(node_name);
  if (n == nullptr) {
    diags.error(where, fmt::format("override `{}` names node `{}`, which is not in the graph", assignment, node_name),
                suggest(node_name, node_names(g)));
    return;
  }
  n->params.set(param, parse_scalar(assignment.substr(eq + 1)).at(where));
}

}  // namespace loom::graph
