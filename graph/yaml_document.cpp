// graph/yaml_document.cpp: reading a YAML file up to its top-level map: text checks, the pre-scan, the
// yaml-cpp parse, and syntax errors placed at the mistake where the pre-scan can tell better than the parser.
#include "loom/graph/detail/yaml_document.hpp"

#include <fmt/format.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "loom/graph/detail/yaml_reader.hpp"
#include "loom/graph/detail/yaml_text.hpp"

namespace loom::graph {

namespace {

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

void report_unclosed(const quoted_span& q, const std::shared_ptr<const std::string>& file, diagnostics& diags) {
  diags.error(at(file, q.open), fmt::format("unclosed quote: this `{}` is never closed", q.quote),
              fmt::format("end the string with a matching `{}`", q.quote));
}

// A yaml-cpp parser error, placed at the mistake where the pre-scan can tell better than the parser.
void report_syntax_error(const YAML::Exception& e, const text_scan& scan,
                         const std::shared_ptr<const std::string>& file, diagnostics& diags) {
  int error_line = e.mark.line + 1;
  for (const auto& q : scan.quotes) {
    if (q.close_line == 0) {
      report_unclosed(q, file, diags);
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
bool text_problems(const text_scan& scan, const std::shared_ptr<const std::string>& file, diagnostics& diags) {
  for (const auto& tab : scan.indent_tabs)
    diags.error(at(file, tab), "a tab character in the indentation", "YAML forbids tabs for indentation; use spaces");
  if (scan.too_deep)
    diags.error(at(file, *scan.too_deep), fmt::format("values are nested deeper than {} levels", max_yaml_depth));
  return !scan.indent_tabs.empty() || scan.too_deep;
}

}  // namespace

std::optional<yaml_document> parse_yaml_document(std::string_view text, const std::string& file, diagnostics& diags,
                                                 const yaml_document_options& options) {
  auto file_ptr = std::make_shared<const std::string>(file);
  if (auto binary = binary_problem(text)) {
    diags.error(at(file_ptr, binary->second), binary->first);
    return std::nullopt;
  }
  if (text.find_first_not_of(" \t\r\n") == std::string_view::npos) {
    diags.error(location{file_ptr, 0, 0}, "the file is empty", options.empty_hint);
    return std::nullopt;
  }
  text_scan scan = scan_yaml_text(text, max_yaml_depth);
  if (text_problems(scan, file_ptr, diags)) return std::nullopt;
  yaml_document doc{file_ptr, {}, {}};
  std::string yaml(text);
  if (options.quote_list_edges) doc.quoted_lines = quote_list_edges(yaml);
  try {
    doc.root = YAML::Load(yaml);
  } catch (const YAML::Exception& e) {
    report_syntax_error(e, scan, file_ptr, diags);
    return std::nullopt;
  }
  for (const auto& q : scan.quotes) {
    if (q.close_line == 0) {  // yaml-cpp reads an unclosed quote to the end of the file without a word
      report_unclosed(q, file_ptr, diags);
      return std::nullopt;
    }
  }
  if (!doc.root.IsMap()) {
    bool null = doc.root.IsNull();
    diags.error(location{file_ptr, null ? 1 : doc.root.Mark().line + 1, null ? 1 : doc.root.Mark().column + 1},
                fmt::format("the top level of a {} file must be a map {}", options.what, options.map_hint));
    return std::nullopt;
  }
  return doc;
}

std::optional<std::string> read_text_file(const std::string& path, diagnostics& diags) {
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
  return std::move(buffer).str();
}

}  // namespace loom::graph
