// graph/load.cpp: the YAML loader's entry points: reading the file, checking it is text, pre-scanning it,
// parsing it with yaml-cpp, turning syntax errors into located diagnostics, and reading the top level.
#include "graph/load.hpp"

#include <fmt/format.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "graph/load_parts.hpp"
#include "graph/scalar.hpp"
#include "graph/yaml_text.hpp"

namespace loom::graph {

namespace {

const std::vector<std::string> top_level_keys{"graph", "description", "defaults", "nodes", "edges"};

location at(const std::shared_ptr<const std::string>& file, text_position p) {
  return location{file, p.line, p.column};
}

// The hint for yaml-cpp's terse messages.
std::string syntax_hint(const std::string& message) {
  if (message.find("illegal map value") != std::string::npos)
    return "check this line's indentation, or quote a value that contains `: `";
  if (message.find("end of map not found") != std::string::npos ||
      message.find("end of sequence not found") != std::string::npos)
    return "check the indentation of this line against the lines above it";
  return {};
}

// A yaml-cpp parser error, placed at the mistake where the pre-scan can tell better than the parser.
void report_syntax_error(const YAML::Exception& e, const text_scan& scan,
                         const std::shared_ptr<const std::string>& file, diagnostics& diags) {
  int error_line = e.mark.line + 1;
  for (const auto& q : scan.quotes) {
    if (q.close_line == 0) {
      diags.error(at(file, q.open), fmt::format("unclosed quote: this `{}` is never closed", q.quote),
                  fmt::format("end the string with a matching `{}`", q.quote));
      return;
    }
  }
  if (e.msg.find("flow") != std::string::npos && !scan.open_brackets.empty()) {
    diags.error(at(file, scan.open_brackets.back()), "this bracket is never closed", "close it with `]` or `}`");
    return;
  }
  const quoted_span* suspect = nullptr;
  for (const auto& q : scan.quotes)
    if (q.open.line <= error_line && q.close_line > q.open.line) suspect = &q;
  if (suspect != nullptr) {
    diags.error(at(file, suspect->open),
                fmt::format("unclosed quote: this `{}` runs on to line {}", suspect->quote, suspect->close_line),
                fmt::format("end the string on this line with a matching `{}`", suspect->quote));
    return;
  }
  location where{file, e.mark.line >= 0 ? e.mark.line + 1 : 1, e.mark.column >= 0 ? e.mark.column + 1 : 0};
  diags.error(where, fmt::format("YAML syntax error: {}", e.msg), syntax_hint(e.msg));
}

// Problems in the raw text that stop loading before yaml-cpp sees it; true when there were some.
bool text_problems(std::string_view text, const text_scan& scan, const std::shared_ptr<const std::string>& file,
                   diagnostics& diags) {
  for (const auto& tab : scan.indent_tabs)
    diags.error(at(file, tab), "a tab character in the indentation", "YAML forbids tabs for indentation; use spaces");
  if (scan.too_deep)
    diags.error(at(file, *scan.too_deep), fmt::format("values are nested deeper than {} levels", max_yaml_depth));
  return !scan.indent_tabs.empty() || scan.too_deep;
}

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
  auto file_ptr = std::make_shared<const std::string>(file);
  if (auto binary = binary_problem(text)) {
    diags.error(at(file_ptr, binary->second), binary->first);
    return std::nullopt;
  }
  if (text.find_first_not_of(" \t\r\n") == std::string_view::npos) {
    diags.error(location{file_ptr, 0, 0}, "the file is empty", "a graph file needs at least a `nodes:` map");
    return std::nullopt;
  }
  text_scan scan = scan_yaml_text(text, max_yaml_depth);
  if (text_problems(text, scan, file_ptr, diags)) return std::nullopt;
  std::string yaml(text);
  std::vector<int> quoted_lines = quote_list_edges(yaml);
  YAML::Node root;
  try {
    root = YAML::Load(yaml);
  } catch (const YAML::Exception& e) {
    report_syntax_error(e, scan, file_ptr, diags);
    return std::nullopt;
  }
  for (const auto& q : scan.quotes) {
    if (q.close_line == 0) {  // yaml-cpp reads an unclosed quote to the end of the file without a word
      diags.error(at(file_ptr, q.open), fmt::format("unclosed quote: this `{}` is never closed", q.quote),
                  fmt::format("end the string with a matching `{}`", q.quote));
      return std::nullopt;
    }
  }
  if (!root.IsMap()) {
    diags.error(location{file_ptr, root.IsNull() ? 1 : root.Mark().line + 1, root.IsNull() ? 1 : root.Mark().column + 1},
                "the top level of a graph file must be a map with `nodes:` (and `graph:`, `edges:`, ...)");
    return std::nullopt;
  }
  yaml_reader r(file_ptr, diags);
  r.set_quoted_lines(std::move(quoted_lines));
  graph g;
  g.where = location{file_ptr, 0, 0};
  g.name = std::filesystem::path(file).stem().string();
  read_top_level(r, root, g);
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
  std::ifstream in(path, std::ios::binary);
  std::error_code ec;
  if (!in || std::filesystem::is_directory(path, ec)) {
    int err = in ? EISDIR : errno;
    diags.error(location{std::make_shared<const std::string>(path), 0, 0},
                fmt::format("cannot read: {}", std::strerror(err != 0 ? err : ENOENT)));
    return std::nullopt;
  }
  std::ostringstream buffer;
  buffer << in.rdbuf();
  return load_graph_text(buffer.str(), path, diags);
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
