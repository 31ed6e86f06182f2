// graph/yaml_reader.cpp: yaml-cpp nodes to loom values, with locations and diagnostics.
#include "loom/graph/detail/yaml_reader.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <map>

#include "loom/graph/detail/scalar.hpp"

namespace loom::graph {

location yaml_reader::at(const YAML::Mark& mark, int offset) const {
  if (mark.is_null() || mark.line < 0) return location{file_, 0, 0};
  return location{file_, mark.line + 1, mark.column + 1 + offset};
}

int yaml_reader::text_shift(const YAML::Node& scalar) const {
  if (!quoted(scalar)) return 0;
  int line = scalar.Mark().line + 1;
  return std::find(quoted_lines_.begin(), quoted_lines_.end(), line) != quoted_lines_.end() ? 0 : 1;
}

std::vector<yaml_entry> yaml_reader::entries(const YAML::Node& map, const std::vector<std::string>& allowed,
                                             std::string_view noun, std::string_view context) {
  std::vector<yaml_entry> out;
  std::map<std::string, int> seen;  // key -> line first written
  for (auto it = map.begin(); it != map.end(); ++it) {
    YAML::Node key = it->first;  // a copy: `it->` yields a temporary
    location key_at = at(key);
    if (!key.IsScalar()) {
      diags_.error(key_at, fmt::format("a {}{} must be a name, not a list or map", noun, context));
      continue;
    }
    std::string name = key.Scalar();
    if (!allowed.empty() && std::find(allowed.begin(), allowed.end(), name) == allowed.end()) {
      diags_.error(key_at, fmt::format("unknown {} `{}`{}", noun, name, context), suggest(name, allowed));
      continue;
    }
    if (auto [first, inserted] = seen.emplace(name, key_at.line); !inserted) {
      diags_.error(key_at, fmt::format("duplicate {} `{}`{}", noun, name, context),
                   fmt::format("`{}` was first written at line {}", name, first->second));
      continue;
    }
    YAML::Node value = it->second;
    location value_at = at(value);
    if (value.IsNull() && (value_at.line != key_at.line || value_at.line == 0)) value_at = key_at;
    out.push_back({std::move(name), value, key_at, value_at});
  }
  return out;
}

config yaml_reader::scalar(const YAML::Node& node) const {
  if (node.IsNull()) return config{};
  if (node.Tag() == "?") return resolve_plain_scalar(node.Scalar());
  return config{node.Scalar()};
}

std::optional<config> yaml_reader::to_config(const YAML::Node& node, const location& where, int depth) {
  if (budget_ == 0 || depth > max_yaml_depth) {
    bool& reported = budget_ == 0 ? reported_budget_ : reported_depth_;
    if (!reported)
      diags_.error(where, budget_ == 0 ? "the file expands to too many values (more than 1000000; aliases?)"
                                       : fmt::format("values are nested deeper than {} levels", max_yaml_depth));
    reported = true;
    return std::nullopt;
  }
  --budget_;
  if (node.IsSequence()) {
    config_list items;
    for (const auto& item : node) {
      auto value = to_config(item, at(item), depth + 1);
      if (!value) return std::nullopt;
      items.push_back(std::move(*value));
    }
    return config{std::move(items)}.at(where);
  }
  if (node.IsMap()) {
    config_map items;
    for (auto& e : entries(node, {}, "key", "")) {
      auto value = to_config(e.value, e.value_at, depth + 1);
      if (!value) return std::nullopt;
      items.emplace_back(std::move(e.key), std::move(*value));
    }
    return config{std::move(items)}.at(where);
  }
  return scalar(node).at(where);
}

void yaml_reader::type_error(const yaml_entry& e, std::string_view what, std::string_view expected) {
  std::string found = e.value.IsSequence() ? "a list" : e.value.IsMap() ? "a map" : e.value.IsNull() ? "nothing"
                                                                                   : fmt::format("`{}`", e.value.Scalar());
  diags_.error(e.value_at, fmt::format("{} must be {}, found {}", what, expected, found));
}

std::optional<std::string> yaml_reader::string_of(const yaml_entry& e, std::string_view what) {
  if (e.value.IsScalar()) return e.value.Scalar();
  type_error(e, what, "a string");
  return std::nullopt;
}

std::optional<std::int64_t> yaml_reader::int_of(const yaml_entry& e, std::string_view what) {
  if (e.value.IsScalar()) {
    config c = scalar(e.value);
    if (c.is_int()) return c.as_int();
  }
  type_error(e, what, "an integer");
  return std::nullopt;
}

std::optional<bool> yaml_reader::bool_of(const yaml_entry& e, std::string_view what) {
  if (e.value.IsScalar()) {
    config c = scalar(e.value);
    if (c.is_bool()) return c.as_bool();
  }
  type_error(e, what, "`true` or `false`");
  return std::nullopt;
}

std::optional<double> yaml_reader::number_of(const yaml_entry& e, std::string_view what) {
  if (e.value.IsScalar()) {
    config c = scalar(e.value);
    if (c.is_number()) return c.as_float();
  }
  type_error(e, what, "a number");
  return std::nullopt;
}

std::optional<std::uint64_t> yaml_reader::size_of(const yaml_entry& e, std::string_view what) {
  if (!e.value.IsScalar()) {
    type_error(e, what, "a size (bytes, or a string such as 512MiB)");
    return std::nullopt;
  }
  config c = scalar(e.value);
  if (c.is_int() && c.as_int() >= 0) return static_cast<std::uint64_t>(c.as_int());
  std::string error;
  auto bytes = parse_size(e.value.Scalar(), error);
  if (!bytes) diags_.error(e.value_at, fmt::format("{}: {}", what, error));
  return bytes;
}

std::optional<std::vector<std::pair<std::string, location>>> yaml_reader::names_of(const yaml_entry& e,
                                                                                   std::string_view what) {
  std::vector<std::pair<std::string, location>> names;
  if (e.value.IsScalar()) {
    names.emplace_back(e.value.Scalar(), e.value_at);
    return names;
  }
  if (e.value.IsSequence()) {
    for (const auto& item : e.value) {
      if (!item.IsScalar()) {
        diags_.error(at(item), fmt::format("{} must be a list of node names", what));
        return std::nullopt;
      }
      names.emplace_back(item.Scalar(), at(item));
    }
    return names;
  }
  type_error(e, what, "a node name or a list of node names");
  return std::nullopt;
}

}  // namespace loom::graph
