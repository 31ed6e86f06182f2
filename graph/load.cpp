// graph/load.cpp: the YAML loader's entry points: the file is read and parsed by yaml_document.cpp; this
// reads the top level of a graph file.
#include "loom/graph/load.hpp"

#include <fmt/format.h>

#include <filesystem>

#include "loom/graph/detail/load_parts.hpp"
#include "loom/graph/detail/scalar.hpp"
#include "loom/graph/detail/yaml_document.hpp"

namespace loom::graph {

namespace {

const std::vector<std::string> top_level_keys{"graph", "description", "defaults", "nodes", "edges"};

void read_defaults(yaml_reader& r, const yaml_entry& e, graph& g) {
  if (!e.value.IsMap()) {
    r.diags().error(e.value_at, "`defaults` must be a map, e.g. {capacity: 64}");
    return;
  }
  for (const auto& f : r.entries(e.value, {"capacity"}, "key", " in `defaults`")) {
    auto v = r.int_of(f, "`defaults.capacity`");
    if (v && *v < 1) r.diags().error(f.value_at, fmt::format("`defaults.capacity` must be at least 1, found {}", *v));
    else if (v) g.default_capacity = *v;
  }
}

void read_top_level(yaml_reader& r, const YAML::Node& root, graph& g) {
  bool has_nodes = false;
  for (const auto& e : r.entries(root, top_level_keys, "top-level key", "")) {
    if (e.key == "graph") {
      if (auto v = r.string_of(e, "`graph` (the graph's name)")) g.name = *v;
    } else if (e.key == "description") {
      if (auto v = r.string_of(e, "`description`")) g.description = *v;
    } else if (e.key == "defaults") {
      read_defaults(r, e, g);
    } else if (e.key == "nodes") {
      has_nodes = true;
      read_nodes(r, e, g);
    } else if (e.key == "edges") {
      read_edges(r, e, g);
    }
  }
  if (!has_nodes)
    r.diags().error(location{r.file(), 1, 1}, "the graph has no `nodes`",
                    "add a `nodes:` map of node name -> {kind: ..., params: ...}");
}

std::optional<graph> load(std::string_view text, const std::string& file, diagnostics& diags) {
  yaml_document_options options;
  options.empty_hint = "a graph file needs at least a `nodes:` map";
  options.map_hint = "with `nodes:` (and `graph:`, `edges:`, ...)";
  options.quote_list_edges = true;
  auto doc = parse_yaml_document(text, file, diags, options);
  if (!doc) return std::nullopt;
  yaml_reader r(doc->file, diags);
  r.set_quoted_lines(std::move(doc->quoted_lines));
  graph g;
  g.where = location{doc->file, 0, 0};
  g.name = std::filesystem::path(file).stem().string();
  read_top_level(r, doc->root, g);
  return g;
}

}  // namespace

std::optional<graph> load_graph_text(std::string_view text, const std::string& file, diagnostics& diags) {
  try {
    return load(text, file, diags);
  } catch (const std::exception& e) {  // yaml-cpp may throw from node access; never let it escape
    diags.error(location{std::make_shared<const std::string>(file), 0, 0},
                fmt::format("cannot read the graph: {}", e.what()));
    return std::nullopt;
  }
}

std::optional<graph> load_graph_file(const std::string& path, diagnostics& diags) {
  auto text = read_text_file(path, diags);
  if (!text) return std::nullopt;
  auto g = load_graph_text(*text, path, diags);
  if (g) {
    std::error_code ec;
    auto dir = std::filesystem::absolute(std::filesystem::path(path), ec).parent_path();
    g->base_dir = ec ? std::filesystem::path(path).parent_path().string() : dir.string();
  }
  return g;
}

config parse_scalar(std::string_view text) {
  std::string_view trimmed = text;
  while (!trimmed.empty() && trimmed.front() == ' ') trimmed.remove_prefix(1);
  while (!trimmed.empty() && trimmed.back() == ' ') trimmed.remove_suffix(1);
  if (trimmed.empty()) return config{};
  char first = trimmed.front();
  if (first != '[' && first != '{' && first != '"' && first != '\'') return resolve_plain_scalar(trimmed);
  diagnostics ignored;
  yaml_reader r(std::make_shared<const std::string>("--set"), ignored);
  try {
    YAML::Node node = YAML::Load(std::string(trimmed));
    if (auto value = r.to_config(node, location{}); value && !ignored.has_errors()) return std::move(*value);
  } catch (const std::exception&) {
  }
  return config{std::string(text)};  // not YAML after all: the text as written
}

}  // namespace loom::graph
